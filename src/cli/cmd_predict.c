/* genre eval and genre predict: use a fine-tuned classifier (a run
 * directory or a model directory) on a labelled .jsonl file or on texts. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "models/classifier.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/eval/metrics.h"
#include "src/eval/report.h"

/* The options eval and predict share: --threshold T and --max-len N.
 * Returns 1 when argv[*i] was one of them (and consumes its value). */
static int shared_option(const char *cmd, int argc, char **argv, int *i, float *threshold, int *max_len)
{
    if (*i + 1 >= argc) return 0;
    if (!strcmp(argv[*i], "--threshold")) {
        char *end;
        const char *v = argv[++*i];
        errno = 0;
        *threshold = strtof(v, &end);
        if (errno || *end || end == v || !(*threshold > 0 && *threshold < 1))
            die("%s: --threshold: expected a number in (0, 1), got '%s'", cmd, v);
        return 1;
    }
    if (!strcmp(argv[*i], "--max-len")) {
        *max_len = atoi(argv[++*i]);
        if (*max_len < 2 || *max_len > 512) die("%s: --max-len: expected 2..512", cmd);
        return 1;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL;
    float threshold = NAN; /* unless given: the model's own */
    int max_len = 128;
    bool tune = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: genre eval --model DIR --data FILE.jsonl [--threshold T | --tune-threshold]\n"
                   "                  [--max-len N] [--out DIR]\n\n"
                   "Scores a labelled .jsonl file (genre prepare's format) with a fine-tuned\n"
                   "model (a run directory means its best/) and prints the metrics; --out\n"
                   "writes metrics.json and the report there. The threshold defaults to the\n"
                   "model's own (see genre train's tune_threshold). --tune-threshold picks\n"
                   "the one in 0.05..0.95 with the best Jaccard on FILE (a validation set,\n"
                   "never the test set) and saves it with the model for eval and predict.\n");
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--tune-threshold")) {
            tune = true;
        } else if (shared_option("eval", argc, argv, &i, &threshold, &max_len)) {
            continue;
        } else {
            fprintf(stderr, "genre eval: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!model || !data) die("eval: --model and --data are required (see --help)");
    if (tune && !isnan(threshold)) die("eval: --threshold and --tune-threshold exclude each other");
    Classifier c;
    if (classifier_open(&c, model) != 0) die_err();
    if (isnan(threshold)) threshold = c.threshold;
    Dataset d;
    if (dataset_load(&d, data, &c.labels) != 0) die_err();
    if (d.n == 0) die("%s: no movies", data);
    Encoded e;
    if (encoded_build(&e, c.tok, &d, max_len) != 0) die("%s: %s", data, err_msg());
    int L = c.labels.n_labels;
    float *scores = xmalloc((size_t)d.n * L * sizeof *scores);
    uint8_t *pred = xmalloc((size_t)d.n * L);
    Backend *be = backend_open("cpu", &c.weights);
    if (!be || classifier_scores(be, &e, 32, scores) != 0) die_err();
    backend_close(be);
    if (tune) {
        threshold = metrics_tune_probability(scores, d.y, d.n, L, c.threshold);
        if (classifier_set_threshold(c.dir, threshold) != 0) die_err();
        printf("threshold tuned on %s: %g (was %g), saved in %s/config.json\n", data, (double)threshold,
               (double)c.threshold, c.dir);
    }
    predict_at_least_one(pred, scores, d.n, L, threshold);
    Metrics m;
    metrics_compute(&m, d.y, pred, d.n, L);
    const char *names[] = {data};
    const Metrics *ms[] = {&m};
    if (report_compare(NULL, 1, names, ms) != 0) die_err();
    if (out) {
        ReportRun run = {.name = "evaluation", .labels = &c.labels, .test = &m, .test_data = &d,
                         .test_scores = scores, .test_pred = pred, .threshold = &threshold,
                         .threshold_tuned = tune};
        if (make_dirs(out) != 0 || report_write(out, &run) != 0) die_err();
    }
    metrics_free(&m);
    free(scores);
    free(pred);
    encoded_free(&e);
    dataset_free(&d);
    classifier_close(&c);
    return 0;
}

/* Reads stdin into lines (without \r\n); returns the count. */
static int read_lines(char ***lines)
{
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    *lines = NULL;
    while ((len = getline(&line, &lcap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (n == cap) *lines = xrealloc(*lines, (size_t)(cap = cap ? 2 * cap : 256) * sizeof **lines);
        (*lines)[n++] = xstrdup(line);
    }
    free(line);
    if (ferror(stdin)) die("predict: reading stdin: %s", strerror(errno));
    return n;
}

int cmd_predict(int argc, char **argv)
{
    const char *model = NULL;
    float threshold = NAN; /* unless given: the model's own */
    int top = 0, max_len = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: genre predict --model DIR [--top K] [--threshold T] [--max-len N] < texts\n\n"
                   "Reads one text a line on stdin and writes one JSON line per text:\n"
                   "{\"genres\": [...], \"scores\": {\"Action\": 0.91, ...}}. A genre is predicted\n"
                   "when its probability exceeds the threshold (default: the model's, saved by\n"
                   "train, 0.5 unless tune_threshold chose another), and the top one when\n"
                   "none does. --top K lists only the K highest scores.\n");
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            top = atoi(argv[++i]);
            if (top < 1) die("predict: --top: expected a positive integer");
        } else if (shared_option("predict", argc, argv, &i, &threshold, &max_len)) {
            continue;
        } else {
            fprintf(stderr, "genre predict: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!model) die("predict: --model is required (see --help)");
    Classifier c;
    if (classifier_open(&c, model) != 0) die_err();
    if (isnan(threshold)) threshold = c.threshold;
    int L = c.labels.n_labels;
    Dataset d = {0};
    d.n = read_lines(&d.texts);
    d.n_labels = L;
    d.y = xcalloc((size_t)(d.n ? d.n : 1) * L, 1);
    d.titles = xcalloc((size_t)(d.n ? d.n : 1), sizeof *d.titles);
    for (int i = 0; i < d.n; i++) d.titles[i] = xstrdup("");
    d.years = xcalloc((size_t)(d.n ? d.n : 1), sizeof *d.years);
    Encoded e;
    if (encoded_build(&e, c.tok, &d, max_len) != 0) die("predict: stdin: %s", err_msg());
    float *scores = xmalloc((size_t)(d.n ? d.n : 1) * L * sizeof *scores);
    uint8_t *pred = xmalloc((size_t)(d.n ? d.n : 1) * L);
    Backend *be = backend_open("cpu", &c.weights);
    if (!be || classifier_scores(be, &e, 32, scores) != 0) die_err();
    backend_close(be);
    predict_at_least_one(pred, scores, d.n, L, threshold);
    int *order = xmalloc((size_t)L * sizeof *order);
    for (int i = 0; i < d.n; i++) {
        const float *s = scores + (size_t)i * L;
        for (int j = 0; j < L; j++) order[j] = j;
        for (int j = 1; j < L; j++) /* insertion sort by score, highest first */
            for (int k = j; k > 0 && s[order[k]] > s[order[k - 1]]; k--) {
                int t = order[k];
                order[k] = order[k - 1];
                order[k - 1] = t;
            }
        json_t *o = json_object(), *g = json_array(), *sc = json_object();
        for (int j = 0; j < L; j++)
            if (pred[(size_t)i * L + order[j]]) json_array_append_new(g, json_string(c.labels.names[order[j]]));
        for (int j = 0; j < (top ? (top < L ? top : L) : L); j++)
            json_object_set_new(sc, c.labels.names[order[j]], json_real(round(s[order[j]] * 1e4) / 1e4));
        json_object_set_new(o, "genres", g);
        json_object_set_new(o, "scores", sc);
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
        puts(line);
        free(line);
        json_decref(o);
    }
    if (fflush(stdout) != 0) die("predict: writing stdout: %s", strerror(errno));
    free(order);
    free(scores);
    free(pred);
    encoded_free(&e);
    dataset_free(&d);
    classifier_close(&c);
    return 0;
}
