/* genre predict: the genres and scores a fine-tuned classifier (a run
 * directory or a model directory) gives each text on stdin. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "models/classifier.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/lines.h"
#include "src/core/err.h"
#include "src/eval/metrics.h"

/* Scores texts[0..n) and writes their JSON lines: the answer to what has
 * been read, flushed so that it reaches a pipe or a terminal now. */
static void answer(const Classifier *c, Backend *be, char **texts, int n, long top, long max_len)
{
    int L = c->labels.n_labels;
    char **titles = xmalloc((size_t)n * sizeof *titles);
    for (int i = 0; i < n; i++) titles[i] = "";
    Dataset d = {.n = n, .n_labels = L, .titles = titles, .texts = texts, .y = xcalloc((size_t)n * L, 1)};
    Encoded e;
    if (encoded_build(&e, c->tok, &d, (int)max_len) != 0) die("predict: stdin: %s", err_msg());
    float *scores = xmalloc((size_t)n * L * sizeof *scores);
    uint8_t *pred = xmalloc((size_t)n * L);
    if (classifier_scores(be, &e, 32, scores) != 0) die_err();
    predict_at_least_one_per_label(pred, scores, n, L, c->thresholds);
    int *order = xmalloc((size_t)L * sizeof *order);
    for (int i = 0; i < n; i++) {
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
            if (pred[(size_t)i * L + order[j]]) json_array_append_new(g, json_string(c->labels.names[order[j]]));
        for (int j = 0; j < (top ? (top < L ? top : L) : L); j++)
            json_object_set_new(sc, c->labels.names[order[j]], json_real(round(s[order[j]] * 1e4) / 1e4));
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
    free(d.y);
    free(titles);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: genre predict --model DIR [--top K] [--threshold T] [--max-len N] [--device cpu|cuda] < texts\n\n"
               "Reads one text a line on stdin and writes one JSON line per text:\n"
               "{\"genres\": [...], \"scores\": {\"Action\": 0.91, ...}}. A genre is predicted\n"
               "when its probability exceeds its threshold (default: the model's, saved by\n"
               "train, 0.5 unless tune_threshold chose another, or one per genre with\n"
               "tune_threshold_per_genre; --threshold T for every genre), and the top one\n"
               "when none does. Each line is answered as soon as it has come; lines that\n"
               "come together are scored together.\n\n"
               "  --top K        list only the K highest scores (K >= 1)\n"
               "  --threshold T  a probability in (0, 1)\n"
               "  --max-len N    tokens per text, [CLS] and [SEP] included (in [2, 512],\n"
               "                 default 128)\n");
}

int cmd_predict(int argc, char **argv)
{
    const char *model = NULL;
    double given_threshold = NAN; /* NAN: the model's own */
    long top = 0, max_len = 128;
    const char *device = "cpu";
    const ArgOpt opts[] = {
        ARG_DEVICE(&device),
        ARG_MODEL(&model),
        {.name = "--top", .num = &top, .range = "[1, 2147483647]"},
        ARG_THRESHOLD(&given_threshold),
        ARG_MAX_LEN(&max_len),
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "predict", .opts = opts, .usage = usage}, argc, argv);
    Classifier c;
    if (classifier_open(&c, model) != 0) die_err();
    /* --threshold overrides the model's, per-genre ones included. */
    if (!isnan(given_threshold))
        for (int k = 0; k < c.labels.n_labels; k++) c.thresholds[k] = (float)given_threshold;
    Backend *be = backend_open(device, &c.weights);
    if (!be) die_err();
    LineReader in;
    lines_open(&in, "predict", true);
    char **texts = NULL, *line;
    int n = 0, cap = 0;
    /* Lines are answered whenever the next one is not there yet: a pipe or a
     * terminal gets each answer as soon as its line has come, a file on
     * stdin (always ready) is one batch, as when predict read all first. */
    for (;;) {
        long len = lines_next(&in, &line);
        if (len >= 0) {
            if (n == cap) texts = xrealloc(texts, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *texts);
            texts[n++] = xstrdup(line);
        }
        if (n && (len < 0 || !lines_ready(&in))) {
            answer(&c, be, texts, n, top, max_len);
            while (n) free(texts[--n]);
        }
        if (len < 0) break;
    }
    lines_close(&in);
    free(texts);
    backend_close(be);
    classifier_close(&c);
    return 0;
}
