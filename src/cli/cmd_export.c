/* genre export: a fine-tuned model as a HuggingFace model directory
 * (model.safetensors in DistilBERT names, config.json with id2label,
 * vocab.txt) that transformers' from_pretrained and genre itself load.
 * From a pretrained encoder without a head (all-MiniLM-L6-v2, a BERT
 * checkpoint) and a labels.txt, it writes the starting point of a
 * fine-tuning run instead: the encoder as DistilBERT with a fresh head. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/core/outdir.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: genre export --model DIR --out DIR [--labels FILE [--seed N]] [--force]\n\n"
               "Writes the model in DIR (a run directory, meaning its best/, or a model\n"
               "directory) to OUT as a HuggingFace DistilBERT directory: model.safetensors,\n"
               "config.json with the genre names as id2label, vocab.txt. OUT must be new,\n"
               "empty or an earlier export, which is replaced as a whole once the new one\n"
               "is complete; --force replaces anything else.\n\n"
               "  --labels FILE  for a model without genre labels (a pretrained encoder):\n"
               "                 the genre names, one a line (a prepared labels.txt); the\n"
               "                 head is initialised fresh, as genre train does\n"
               "  --seed N       seed of that fresh head (0..2^63-1, default 42, genre\n"
               "                 train's)\n");
}

/* The model directory written whole into out: a new or empty directory, or
 * an earlier export (replaced only once the new one is complete); anything
 * else only with --force. */
static int write_model(const ModelWeights *w, const LabelSet *labels, const char *vocab, float threshold,
                       const float *per_genre, const char *out, bool force)
{
    char *tmp = outdir_begin(out, "model", true, force, "choose another --out");
    if (!tmp) return -1;
    if (classifier_write(w, labels, vocab, threshold, per_genre, tmp) != 0) {
        outdir_abort(tmp);
        return -1;
    }
    return outdir_commit(tmp, out, "model");
}

int cmd_export(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *labels_path = NULL;
    long seed = 42;
    bool force = false;
    const ArgOpt opts[] = {
        ARG_MODEL(&model),
        ARG_OUT(&out, true),
        {.name = "--labels", .str = &labels_path},
        {.name = "--seed", .num = &seed, .range = "[0, 9223372036854775807]"},
        {.name = "--force", .flag = &force},
        {NULL},
    };
    args_parse(&(ArgSpec){.cmd = "export", .opts = opts, .usage = usage}, argc, argv);
    char vocab[4200];
    if (labels_path) {
        LabelSet labels;
        ModelWeights m;
        if (labels_load(&labels, labels_path) != 0 || checkpoint_load(&m, model, labels.n_labels, (uint64_t)seed) != 0)
            die_err();
        snprintf(vocab, sizeof vocab, "%s/vocab.txt", model);
        if (write_model(&m, &labels, vocab, 0.5f, NULL, out, force) != 0) die_err();
        printf("%s: %s with a fresh %d-genre head (seed %ld)\n", out, model, labels.n_labels, seed);
        weights_free(&m);
        labels_free(&labels);
        return 0;
    }
    Classifier c;
    char dir[4096];
    if (classifier_dir(model, dir, sizeof dir) != 0) die_err();
    if (classifier_open(&c, dir) != 0) die("%s (give --labels to start a classifier from an encoder)", err_msg());
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", c.dir);
    if (write_model(&c.weights, &c.labels, vocab, c.threshold, c.per_genre ? c.thresholds : NULL, out, force) != 0)
        die_err();
    printf("%s: %s, %d genres\n", out, c.dir, c.labels.n_labels);
    classifier_close(&c);
    return 0;
}
