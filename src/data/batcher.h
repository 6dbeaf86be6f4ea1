/* Batches for training and evaluation, with dynamic padding.
 *
 * Every text is tokenized once ([CLS] ... [SEP], truncated to max_len). An
 * epoch's order is a pure function of (seed, epoch): a seeded shuffle (or,
 * with oversampling, a seeded weighted draw that repeats movies of rare
 * genres), then sorting by length inside windows of `window` batches so short
 * descriptions share batches and do not pay for long ones, then a shuffle of
 * the batches. A resumed run therefore sees exactly the batches an
 * uninterrupted one would. */
#ifndef GENRE_BATCHER_H
#define GENRE_BATCHER_H

#include <stdint.h>

#include "src/data/dataset.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int n, max_len, n_labels;
    int32_t *tokens;     /* n x max_len; row i holds lengths[i] ids, then [PAD] */
    int *lengths;
    const uint8_t *y;    /* n x n_labels, borrowed from the Dataset */
    int32_t pad_id;
} Encoded;

/* Tokenizes every text of d. 0, or -1 with err_set naming the movie. */
int encoded_build(Encoded *e, const Tokenizer *t, const Dataset *d, int max_len);
void encoded_free(Encoded *e);

typedef struct {
    int n_items;         /* movies in the epoch (repeats when oversampling) */
    int *items;          /* movie indices in batch order */
    int n_batches;
    int *batch_start;    /* n_batches + 1 offsets into items */
} EpochPlan;

/* Per-movie sampling weights for oversampling low-support genres: a movie
 * weighs max over its labels of (largest label count / label count)^power;
 * power 0 gives uniform weights. `w` has e->n entries. */
void oversample_weights(double *w, const Encoded *e, double power);

/* The training order of one epoch. `weights` NULL: every movie once, in a
 * seeded shuffle; else n draws with replacement proportional to weights.
 * window: batches per length-sorting window (<= 1: no sorting). */
void epoch_plan_train(EpochPlan *p, const Encoded *e, int batch_size, uint64_t seed, int epoch,
                      int window, const double *weights);

/* Evaluation order: every movie once, sorted by length (fastest); the
 * predictions go back to their movie through the items. */
void epoch_plan_eval(EpochPlan *p, const Encoded *e, int batch_size);
void epoch_plan_free(EpochPlan *p);

typedef struct {
    int B, T;            /* this batch's size and padded length */
    int32_t *ids, *mask; /* B x T */
    float *labels;       /* B x n_labels */
    int *index;          /* B movie indices */
} Batch;

/* A batch buffer for up to batch_size x max_len. */
void batch_alloc(Batch *b, int batch_size, int max_len, int n_labels);
void batch_free(Batch *b);
/* Fills batch k of plan p: T is the longest length in the batch. */
void batch_fill(Batch *b, const Encoded *e, const EpochPlan *p, int k);

#endif
