/* AdamW with PyTorch's semantics (torch.optim.AdamW, non-fused): decoupled
 * weight decay p -= lr * wd * p, then the bias-corrected Adam step
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Also the pieces around it that HuggingFace's Trainer uses: the linear
 * warmup + linear decay schedule and clipping by the global gradient norm.
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

/* The learning-rate multiplier before optimizer step `step` (from 0), as
 * transformers' get_linear_schedule_with_warmup: step / warmup during warmup,
 * then decaying linearly to 0 at total_steps. */
float lr_linear_schedule(long step, long warmup_steps, long total_steps);

/* Warmup steps for a warmup ratio, as transformers' Trainer counts them
 * (TrainingArguments.get_warmup_steps): ceil(ratio * total_steps). */
long lr_warmup_steps(double ratio, long total_steps);

/* torch.nn.utils.clip_grad_norm_: scales grad (n values) by
 * min(1, max_norm / (norm + 1e-6)); returns the norm before clipping. */
float clip_grad_norm(float *grad, size_t n, float max_norm);

#endif
