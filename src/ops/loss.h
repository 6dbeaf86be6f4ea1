/* Multi-label losses on logits, fused forward + gradient, numerically stable
 * (log-sigmoid via log1p(exp(-|x|)), never log(sigmoid)).
 * Layout: logits and targets B x L (targets in [0, 1]); mean over all B*L
 * elements, as PyTorch's reduction="mean".
 *   LOSS_BCE       BCEWithLogitsLoss
 *   LOSS_BCE_LOGW  BCEWithLogitsLoss with per-label weights w (loss_logw_weights),
 *                  as pos_weight (default, PyTorch semantics) or as weight
 *   LOSS_FOCAL     torchvision.ops.sigmoid_focal_loss(alpha, gamma), alpha
 *                  weighting positives and 1 - alpha negatives (alpha < 0: none)
 *   LOSS_ASL       asymmetric loss (Ridnik et al., ICCV 2021), per element
 *                  -y (1-p)^gamma_pos log p - (1-y) p_m^gamma_neg log(1-p_m)
 *                  with p = sigmoid(x) and p_m = max(p - clip, 0): negatives
 *                  below clip cost nothing. Its official code sums; here it
 *                  is the mean like the others, and the gradient is the full
 *                  derivative (the focusing weights are not detached).
 * class_weights (any kind but LOSS_BCE_LOGW, which has its own; NULL: none)
 * multiplies every element of label c, positive or negative, by w_c: the
 * class-balanced weights of loss_class_balanced_weights.
 * loss_forward returns the loss and, when dlogits is not NULL, WRITES
 * d(loss)/d(logits) * grad_scale into it (grad_scale = 1 / accumulation
 * steps when gradients of several micro-batches are summed). */
#ifndef GENRE_OPS_LOSS_H
#define GENRE_OPS_LOSS_H

#include <stdbool.h>

typedef enum { LOSS_BCE, LOSS_BCE_LOGW, LOSS_FOCAL, LOSS_ASL } LossKind;

typedef struct {
    LossKind kind;
    const float *weights; /* LOSS_BCE_LOGW: L per-label weights */
    bool as_pos_weight;   /* LOSS_BCE_LOGW: pos_weight (true) or weight (false) */
    float alpha, gamma;   /* LOSS_FOCAL: 0.375 and 2.0 by default */
    float gamma_pos, gamma_neg, clip; /* LOSS_ASL: 0, 4 and 0.05 by default (the paper's) */
    const float *class_weights;       /* L per-label multipliers, or NULL */
} Loss;

float loss_forward(const Loss *loss, float *dlogits, const float *logits, const float *targets,
                   int B, int L, float grad_scale);

/* w_c = log(N / (n_c + 1)) for label counts n_c over N training examples,
 * divided by their mean (so the weights average 1). */
void loss_logw_weights(float *w, const long *counts, long N, int L);

/* Class-balanced weights by the effective number of samples (Cui et al.,
 * CVPR 2019): w_c = (1 - beta) / (1 - beta^n_c) for the n_c training
 * examples of label c (a label without any gets the weight of n_c = 1),
 * divided by their mean (so the weights average 1). beta in [0, 1). */
void loss_class_balanced_weights(float *w, const long *counts, int L, double beta);

/* Parses "bce", "bce_logw", "focal", "asl" into *kind; false if unknown. */
bool loss_kind_parse(const char *name, LossKind *kind);
/* The name loss_kind_parse reads as kind. */
const char *loss_kind_name(LossKind kind);

#endif
