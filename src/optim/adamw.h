/* AdamW with PyTorch's semantics (torch.optim.AdamW, non-fused): decoupled
 * weight decay p -= lr * wd * p, then the bias-corrected Adam step
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Also clipping by the global gradient norm, as HuggingFace's Trainer does
 * before each step (its learning-rate schedule is src/train/schedule.h).
 * Gradient accumulation is the caller summing micro-batch gradients (each
 * loss scaled by 1 / steps, loss.h) before one adamw_update. */
#ifndef GENRE_OPTIM_ADAMW_H
#define GENRE_OPTIM_ADAMW_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay; /* 5e-5, 0.9, 0.999, 1e-8, 0.01 */
} AdamW;

/* One step (t counts from 1) for n parameters with their moments; `decay`
 * is 0 for parameters without weight decay (biases, LayerNorm weights). */
void adamw_update(const AdamW *opt, float *param, const float *grad, float *m, float *v,
                  size_t n, int t, float lr, int decay);

/* A run of the flat parameter array with one weight-decay setting:
 * parameters off .. off + n - 1, decayed when `decay` is nonzero. A model's
 * table of them (sorted by off, together covering every parameter) steps
 * all parameters in one call here, or in one launch on a GPU
 * (kernels/adamw.cu). */
typedef struct {
    size_t off, n;
    int decay;
} AdamWSegment;

/* adamw_update of each of the nseg segments of param, grad, m and v. */
void adamw_update_segments(const AdamW *opt, float *param, const float *grad, float *m, float *v,
                           const AdamWSegment *seg, int nseg, int t, float lr);

/* The moments of n parameters and the steps taken (t = 0 before the first):
 * the optimizer's state, kept apart from the model it updates. */
typedef struct {
    size_t n;
    float *m, *v;
    int t;
} AdamWState;

/* Zeroed moments for n parameters, t = 0. */
void adamw_state_init(AdamWState *s, size_t n);
void adamw_state_free(AdamWState *s);

/* torch.nn.utils.clip_grad_norm_: scales grad (n values) by
 * min(1, max_norm / (norm + 1e-6)); returns the norm before clipping. */
float clip_grad_norm(float *grad, size_t n, float max_norm);

/* Its two halves, for a gradient split over ranks (ZeRO-1): the sum of
 * squares, in double over pieces of ADAMW_NORM_CHUNK values summed in order
 * (fixed, so neither threads nor a split at multiples of it change the
 * pieces), and the scaling by a norm. */
#define ADAMW_NORM_CHUNK 4096
double grad_sum_squares(const float *grad, size_t n);
void clip_grad_scale(float *grad, size_t n, float norm, float max_norm);

/* ZeRO-1's split of n parameters over world ranks, the same on every
 * backend: blocks of *shard values, a multiple of ADAMW_NORM_CHUNK (so a
 * block's squared-norm pieces are the whole's), rank's block starting at
 * rank x *shard; [*lo, *hi) is its part of the n (empty, at n, for a rank
 * past them). */
void adamw_shard(size_t n, int world, int rank, size_t *shard, size_t *lo, size_t *hi);

/* The parts of the nseg segments seg within [lo, hi), offsets from lo,
 * into out (room for nseg): a shard's weight-decay table. Their count. */
int adamw_segments_cut(const AdamWSegment *seg, int nseg, size_t lo, size_t hi, AdamWSegment *out);

#endif
