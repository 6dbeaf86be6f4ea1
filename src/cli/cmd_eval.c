/* genre eval: the metrics of a fine-tuned classifier (a run directory or a
 * model directory) on a labelled .jsonl file, and the threshold (or the
 * per-genre thresholds) tuned on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/core/atomic.h"
#include "models/classifier.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/core/outdir.h"
#include "src/eval/metrics.h"
#include "src/eval/report.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: genre eval --model DIR --data FILE.jsonl\n"
               "                  [--threshold T | --tune-threshold | --tune-threshold-per-genre]\n"
               "                  [--max-len N] [--device cpu|cuda] [--out DIR [--force]]\n\n"
               "Scores a labelled .jsonl file (genre prepare's format) with a fine-tuned\n"
               "model (a run directory means its best/) and prints the metrics; --out\n"
               "writes metrics.json and the report there (a new or empty directory, or an\n"
               "earlier eval's, replaced whole; --force for anything else). The thresholds default to the\n"
               "model's own (see genre train's tune_threshold and tune_threshold_per_genre);\n"
               "--threshold T applies T to every genre. --tune-threshold picks the one in\n"
               "0.05..0.95 with the best Jaccard on FILE (a validation set, never the test\n"
               "set) and saves it with the model for eval and predict, in place of any\n"
               "per-genre ones; --tune-threshold-per-genre then gives each genre its own,\n"
               "tuned on FILE from that one, and saves them too.\n\n"
               "  --threshold T  a probability in (0, 1)\n"
               "  --max-len N    tokens per text, [CLS] and [SEP] included (in [2, 512],\n"
               "                 default 128)\n");
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL;
    double given_threshold = NAN; /* NAN: the model's own */
    long max_len = 128;
    bool tune = false, tune_per_genre = false, force = false;
    const char *device = "cpu";
    const ArgOpt opts[] = {
        ARG_DEVICE(&device),
        ARG_MODEL(&model),
        {.name = "--data", .str = &data, .required = true},
        ARG_OUT(&out, false),
        ARG_THRESHOLD(&given_threshold),
        {.name = "--tune-threshold", .flag = &tune},
        {.name = "--tune-threshold-per-genre", .flag = &tune_per_genre},
        ARG_MAX_LEN(&max_len),
        {.name = "--force", .flag = &force},
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "eval", .opts = opts, .usage = usage}, argc, argv);
    if ((tune || tune_per_genre) && !isnan(given_threshold))
        args_error("eval", "--threshold and --tune-threshold%s exclude each other", tune_per_genre ? "-per-genre" : "");
    tune |= tune_per_genre;
    /* The report directory is claimed before any work; it appears whole at the end. */
    char *report = out ? outdir_begin(out, "eval", true, force, "choose another --out") : NULL;
    if (out && !report) die_err();
    Classifier c;
    if (classifier_open(&c, model) != 0) die_err();
    /* c.thresholds is what applies: the model's, or T for every genre. */
    float threshold = isnan(given_threshold) ? c.threshold : (float)given_threshold;
    bool per_genre = c.per_genre && isnan(given_threshold);
    if (!per_genre)
        for (int k = 0; k < c.labels.n_labels; k++) c.thresholds[k] = threshold;
    Dataset d;
    if (dataset_load(&d, data, &c.labels) != 0) die_err();
    if (d.n == 0) die("%s: no movies", data);
    Encoded e;
    if (encoded_build(&e, c.tok, &d, (int)max_len) != 0) die("%s: %s", data, err_msg());
    int L = c.labels.n_labels;
    float *scores = xmalloc((size_t)d.n * L * sizeof *scores);
    uint8_t *pred = xmalloc((size_t)d.n * L);
    Backend *be = backend_open(device, &c.weights);
    if (!be || classifier_scores(be, &e, 32, scores) != 0) die_err();
    backend_close(be);
    if (tune) {
        threshold = metrics_tune_probability(scores, d.y, d.n, L, c.threshold);
        for (int k = 0; k < L; k++) c.thresholds[k] = threshold;
        if (tune_per_genre) metrics_tune_probability_per_label(c.thresholds, scores, d.y, d.n, L);
        if (classifier_set_thresholds(c.dir, &c.labels, threshold, tune_per_genre ? c.thresholds : NULL) != 0)
            die_err();
        printf("threshold tuned on %s: %g (was %g%s), saved in %s/config.json\n", data, (double)threshold,
               (double)c.threshold, per_genre && !tune_per_genre ? "; its per-genre thresholds are removed" : "",
               c.dir);
        if (tune_per_genre) {
            printf("per-genre thresholds tuned on %s from it, saved too:", data);
            for (int k = 0; k < L; k++) printf("%s %s %g", k ? "," : "", c.labels.names[k], (double)c.thresholds[k]);
            putchar('\n');
        }
        per_genre = tune_per_genre;
    }
    predict_at_least_one_per_label(pred, scores, d.n, L, c.thresholds);
    Metrics m;
    metrics_compute(&m, d.y, pred, d.n, L);
    const char *names[] = {data};
    const Metrics *ms[] = {&m};
    if (report_compare(NULL, 1, names, ms) != 0) die_err();
    if (out) {
        ReportRun run = {.name = "evaluation", .labels = &c.labels, .test = &m, .test_data = &d,
                         .test_scores = scores, .test_pred = pred, .threshold = &threshold,
                         .genre_thresholds = per_genre ? c.thresholds : NULL, .threshold_tuned = tune};
        if (report_write(report, &run) != 0 || outdir_commit(report, out, "eval") != 0) die_err();
    }
    metrics_free(&m);
    free(scores);
    free(pred);
    encoded_free(&e);
    dataset_free(&d);
    classifier_close(&c);
    return 0;
}
