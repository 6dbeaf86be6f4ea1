/* A fine-tuned classifier on disk and in use: model directory resolution
 * (a run directory means its best/), loading weights + tokenizer + labels,
 * and batched scoring (sigmoid probabilities) on a backend, shared by train,
 * eval and predict. */
#ifndef GENRE_CLASSIFIER_H
#define GENRE_CLASSIFIER_H

#include <stdbool.h>

#include "src/data/batcher.h"
#include "src/data/dataset.h"
#include "models/backend.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    ModelWeights weights; /* on the host: open a backend on them to score */
    Tokenizer *tok;
    LabelSet labels;
    float threshold;   /* the single decision threshold the model was saved with */
    float *thresholds; /* n_labels: each genre's own when per_genre, else all `threshold` */
    bool per_genre;    /* the model was saved with per-genre thresholds */
    char dir[4096];
} Classifier;

/* The model directory that DIR names, into out (size bytes): DIR/best for
 * a run directory (one with best/), else DIR. -1 with err_set when DIR is
 * missing, or is a training run (src/core/outdir.h) without best/ yet.
 * What eval, predict and export's --model and train's init mean. */
int classifier_dir(const char *dir, char *out, size_t size);

/* Opens classifier_dir(DIR). The labels come from
 * config.json's id2label, the threshold from its genre_threshold (0.5 when
 * absent), per-genre thresholds from its genre_thresholds ({genre: value},
 * optional; every genre once, each in (0, 1): a genre unknown or missing or
 * a value outside is an error naming config.json). 0, or -1 with err_set. */
int classifier_open(Classifier *c, const char *dir);
void classifier_close(Classifier *c);

/* Probabilities (e->n x num_labels, row i for movie i) of every encoded
 * text, in eval mode on be, batch_size texts at a time. 0, or -1 with
 * err_set. */
int classifier_scores(Backend *be, const Encoded *e, int batch_size, float *scores);

/* classifier_scores for share `part` of `parts` only: a contiguous run of
 * the same batches classifier_scores forms, so each row gets the bits it
 * gets there. Rows outside the share are left as they are (data-parallel
 * validation: each rank scores its share into zeros, and a sum over ranks
 * gathers them). */
int classifier_scores_share(Backend *be, const Encoded *e, int batch_size, int part, int parts, float *scores);

/* Fills dir (new, or empty: see atomic_dir_begin) with a complete model
 * directory: model.safetensors, config.json with the label names and the
 * decision thresholds (classifier_set_thresholds), and vocab.txt copied
 * from `vocab`. 0, or -1 with err_set. */
int classifier_write(const ModelWeights *w, const LabelSet *labels, const char *vocab, float threshold,
                     const float *per_genre, const char *dir);

/* classifier_write into a fresh directory swapped in over dir as a whole. */
int classifier_save(const ModelWeights *w, const LabelSet *labels, const char *vocab, float threshold,
                    const float *per_genre, const char *dir);

/* Replaces the thresholds in dir/config.json (atomically): genre_threshold,
 * and genre_thresholds {genre: value} from per_genre (labels' n_labels
 * values), or none when per_genre is NULL (a model tuned again to one
 * threshold applies that one). transformers keeps both as unused
 * attributes. 0, or -1 with err_set. */
int classifier_set_thresholds(const char *dir, const LabelSet *labels, float threshold, const float *per_genre);

#endif
