/* The per-movie predictions of a scored part (the test_predictions.jsonl
 * of a training run and of a baseline), so that runs can be compared movie
 * by movie after the fact (genre sweep's paired bootstrap, Jaccard by
 * length). One JSON line per movie, in the part's order:
 *   {"title": ..., "year": ..., "chars": 182, "tokens": 41,
 *    "labels": ["Drama"], "predicted": ["Crime", "Drama"], "scores": [...]}
 * chars: code points of the description; tokens: its length as the model
 * saw it (a training run: [CLS] and [SEP] included, cut at max_len; a
 * baseline: the words it kept); scores: one per genre in the order of
 * labels.txt, what the threshold applied to (probabilities; an SVM
 * baseline's decision values). */
#ifndef GENRE_EVAL_PREDICTIONS_H
#define GENRE_EVAL_PREDICTIONS_H

#include <stdint.h>

#include "src/data/dataset.h"

typedef struct {
    int n, n_labels;
    char **titles;
    int *years, *chars, *tokens;
    uint8_t *y, *pred; /* n x n_labels, 1 where true / predicted */
    float *scores;     /* n x n_labels */
} Predictions;

/* Writes the file atomically (atomic.h). tokens: n lengths. 0, or -1
 * with err_set. */
int predictions_write(const char *path, const Dataset *d, const LabelSet *labels, const float *scores,
                      const uint8_t *pred, const int *tokens);

/* Reads a file predictions_write wrote; every genre must be one of
 * `labels`. 0, or -1 with err_set naming the file and line. */
int predictions_read(Predictions *p, const char *path, const LabelSet *labels);
void predictions_free(Predictions *p);

#endif
