/* Multi-label losses on logits, fused forward + gradient, numerically stable
 * (log-sigmoid via log1p(exp(-|x|)), never log(sigmoid)).
 * Layout: logits and targets B x L (targets in [0, 1]); mean over all B*L
 * elements, as PyTorch's reduction="mean".
 *   LOSS_BCE       BCEWithLogitsLoss
 *   LOSS_BCE_LOGW  BCEWithLogitsLoss with per-label weights w (loss_logw_weights),
 *                  as pos_weight (default, PyTorch semantics) or as weight
 *   LOSS_FOCAL     torchvision.ops.sigmoid_focal_loss(alpha, gamma), alpha
 *                  weighting positives and 1 - alpha negatives (alpha < 0: none)
 * loss_forward returns the loss and, when dlogits is not NULL, WRITES
 * d(loss)/d(logits) * grad_scale into it (grad_scale = 1 / accumulation
 * steps when gradients of several micro-batches are summed). */
#ifndef GENRE_OPS_LOSS_H
#define GENRE_OPS_LOSS_H

#include <stdbool.h>

typedef enum { LOSS_BCE, LOSS_BCE_LOGW, LOSS_FOCAL } LossKind;

typedef struct {
    LossKind kind;
    const float *weights; /* LOSS_BCE_LOGW: L per-label weights */
    bool as_pos_weight;   /* LOSS_BCE_LOGW: pos_weight (true) or weight (false) */
    float alpha, gamma;   /* LOSS_FOCAL: 0.375 and 2.0 by default */
} Loss;

float loss_forward(const Loss *loss, float *dlogits, const float *logits, const float *targets,
                   int B, int L, float grad_scale);

/* w_c = log(N / (n_c + 1)) for label counts n_c over N training examples,
 * divided by their mean (so the weights average 1). */
void loss_logw_weights(float *w, const long *counts, long N, int L);

/* Parses "bce", "bce_logw", "focal" into *kind; false if unknown. */
bool loss_kind_parse(const char *name, LossKind *kind);
/* The name loss_kind_parse reads as kind. */
const char *loss_kind_name(LossKind kind);

#endif
