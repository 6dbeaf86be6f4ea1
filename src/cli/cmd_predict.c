/* genre predict: the genres and scores a fine-tuned classifier (a run
 * directory or a model directory) gives each text on stdin. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "models/classifier.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/eval/metrics.h"

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

static void usage(FILE *f)
{
    fprintf(f, "usage: genre predict --model DIR [--top K] [--threshold T] [--max-len N] < texts\n\n"
               "Reads one text a line on stdin and writes one JSON line per text:\n"
               "{\"genres\": [...], \"scores\": {\"Action\": 0.91, ...}}. A genre is predicted\n"
               "when its probability exceeds the threshold (default: the model's, saved by\n"
               "train, 0.5 unless tune_threshold chose another), and the top one when\n"
               "none does.\n\n"
               "  --top K        list only the K highest scores (K >= 1)\n"
               "  --threshold T  a probability in (0, 1)\n"
               "  --max-len N    tokens per text, [CLS] and [SEP] included (2..512,\n"
               "                 default 128)\n");
}

int cmd_predict(int argc, char **argv)
{
    const char *model = NULL;
    double given_threshold = NAN; /* NAN: the model's own */
    long top = 0, max_len = 128;
    const ArgOpt opts[] = {
        ARG_MODEL(&model),
        {.name = "--top", .num = &top, .min = 1, .max = INT_MAX},
        ARG_THRESHOLD(&given_threshold),
        ARG_MAX_LEN(&max_len),
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "predict", .opts = opts, .usage = usage}, argc, argv);
    Classifier c;
    if (classifier_open(&c, model) != 0) die_err();
    float threshold = isnan(given_threshold) ? c.threshold : (float)given_threshold;
    int L = c.labels.n_labels;
    Dataset d = {0};
    d.n = read_lines(&d.texts);
    d.n_labels = L;
    d.y = xcalloc((size_t)(d.n ? d.n : 1) * L, 1);
    d.titles = xcalloc((size_t)(d.n ? d.n : 1), sizeof *d.titles);
    for (int i = 0; i < d.n; i++) d.titles[i] = xstrdup("");
    d.years = xcalloc((size_t)(d.n ? d.n : 1), sizeof *d.years);
    Encoded e;
    if (encoded_build(&e, c.tok, &d, (int)max_len) != 0) die("predict: stdin: %s", err_msg());
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
