/* DistilBERT on the CPU: the reference orchestration of the ops in src/ops/
 * over the shared spec (models/distilbert_spec.h), exactly as HuggingFace's
 * DistilBertForSequenceClassification computes it. The CPU backend
 * (models/backend_cpu.c) is this model behind models/backend.h; the tests
 * use it directly to check it against PyTorch.
 *
 * Parameters and gradients are one allocation each, in the layout's order;
 * activations one more, laid out by the activation plan for the largest
 * (B, T) seen. Gradients accumulate across backward calls until
 * distilbert_zero_grad. The optimizer state is the caller's (AdamWState). */
#ifndef GENRE_MODELS_DISTILBERT_H
#define GENRE_MODELS_DISTILBERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/distilbert_spec.h"
#include "src/optim/adamw.h"

typedef struct {
    float *p, *g; /* views into the parameter and gradient allocations */
    size_t n;
    int64_t shape[2];
} ParamView;

typedef struct DistilBertActs DistilBertActs;

typedef struct {
    ModelLayout lay;       /* lay.cfg is the configuration every pass reads */
    float *params, *grads; /* lay.n_params each */
    ParamView *views;      /* P_COUNT x n_layers, see distilbert_view */
    DistilBertActs *acts;
} DistilBert;

/* A model holding a copy of w, gradients zeroed. 0, or -1 with err_set. */
int distilbert_init(DistilBert *m, const ModelWeights *w);
void distilbert_free(DistilBert *m);

/* Sizes the activations for batches up to max_B x max_T (forward grows
 * them for a larger batch). */
void distilbert_reserve(DistilBert *m, int max_B, int max_T);

/* The view of parameter `id` in `layer` (0 for the others). */
ParamView *distilbert_view(const DistilBert *m, ParamId id, int layer);

/* The forward pass over ids and mask (B x T, mask 1 = token, 0 = padding;
 * ids must be < vocab_size, T <= max_position_embeddings), run as fa says.
 * Returns logits (B x num_labels), valid until the next forward; NULL with
 * err_set on bad input. */
const float *distilbert_forward(DistilBert *m, const int32_t *ids, const int32_t *mask, int B,
                                int T, const ForwardArgs *fa);

/* The final hidden states (B x T x dim) of the last forward; NULL if it ran
 * with cls_only. */
const float *distilbert_hidden(const DistilBert *m);

/* Backward from dlogits (B x num_labels) of the last forward, which must
 * have been run with the same (B, T); accumulates into the gradients. */
void distilbert_backward(DistilBert *m, const float *dlogits);

void distilbert_zero_grad(DistilBert *m);

/* Clips the global gradient norm (max_norm <= 0: no clipping; returns 0),
 * then one AdamW step at learning rate lr on the moments in s (s->n =
 * lay.n_params), weight decay per the table. Returns the gradient norm
 * before clipping. */
float distilbert_adamw_step(DistilBert *m, AdamWState *s, const AdamW *opt, float lr, float max_norm);

#endif
