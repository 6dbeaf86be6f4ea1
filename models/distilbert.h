/* DistilBERT for multi-label sequence classification, on the CPU, exactly as
 * HuggingFace's DistilBertForSequenceClassification computes it:
 *   x = dropout(LN(wte[ids] + wpe[pos]))
 *   per block: a = out_lin(attention(q_lin x, k_lin x, v_lin x, mask))
 *              x = sa_layer_norm(x + a)
 *              x = output_layer_norm(x + dropout(lin2(gelu(lin1 x))))
 *   head on [CLS]: logits = classifier(dropout(relu(pre_classifier(x[:, 0]))))
 *
 * One table of parameters (distilbert_params) gives each tensor its name,
 * shape, HuggingFace DistilBERT and BERT names and whether weight decay
 * applies; it drives allocation, loading, saving and AdamW. Parameters,
 * gradients and the AdamW moments are each one allocation, in table order;
 * activations one more, sized for the largest (B, T) seen.
 * Gradients accumulate across backward calls until distilbert_zero_grad. */
#ifndef GENRE_DISTILBERT_H
#define GENRE_DISTILBERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/optim/adamw.h"

typedef struct {
    int dim, n_layers, n_heads, hidden_dim, vocab_size, max_position_embeddings, num_labels;
    float layer_norm_eps;      /* 1e-12 for DistilBERT */
    float dropout, attention_dropout, seq_classif_dropout;
    float initializer_range;   /* 0.02: std of a freshly initialised head */
} DistilBertConfig;

/* Each parameter of the table; per-layer ones are repeated n_layers times. */
typedef enum {
    P_WTE, P_WPE, P_EMB_LN_W, P_EMB_LN_B,
    P_Q_W, P_Q_B, P_K_W, P_K_B, P_V_W, P_V_B, P_O_W, P_O_B, P_SA_LN_W, P_SA_LN_B,
    P_FF1_W, P_FF1_B, P_FF2_W, P_FF2_B, P_OUT_LN_W, P_OUT_LN_B,
    P_PRE_W, P_PRE_B, P_CLS_W, P_CLS_B,
    P_COUNT
} ParamId;

/* The symbolic dimensions a shape is made of. */
typedef enum { D_DIM, D_HIDDEN, D_VOCAB, D_MAXPOS, D_LABELS } DimId;

typedef struct {
    const char *name;         /* ours, e.g. "q_w" */
    bool per_layer;
    int ndim;
    DimId shape[2];
    const char *hf_name;      /* DistilBERT; "%d" is the layer */
    const char *bert_name;    /* BERT (without the optional "bert." prefix); NULL: head */
    bool decay;               /* AdamW weight decay (not biases, not LayerNorm) */
} ParamDef;

extern const ParamDef distilbert_params[P_COUNT];

typedef struct {
    float *p, *g; /* views into the parameter and gradient allocations */
    size_t n;
    int64_t shape[2];
} ParamView;

typedef struct DistilBertActs DistilBertActs;

typedef struct {
    DistilBertConfig cfg;
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v; /* same layout; moments from the first step */
    ParamView *views; /* P_COUNT x n_layers, see distilbert_view */
    int adam_t;       /* AdamW steps taken */
    bool cls_only;    /* forward: the last block for [CLS] rows only (see below) */
    DistilBertActs *acts;
} DistilBert;

/* Allocates a model with zeroed parameters; checks the config (dims positive,
 * dim divisible by n_heads). 0, or -1 with err_set. */
int distilbert_init(DistilBert *m, const DistilBertConfig *cfg);
void distilbert_free(DistilBert *m);

/* Elements of one tensor of a definition under cfg, and its shape. */
int distilbert_shape(const DistilBertConfig *cfg, ParamId id, int64_t shape[2]);

/* The view of parameter `id` in `layer` (0 for the others). */
ParamView *distilbert_view(const DistilBert *m, ParamId id, int layer);

/* Fills the classification head as HuggingFace initialises a fresh one:
 * weights normal(0, initializer_range) from Philox keyed by seed, biases 0. */
void distilbert_init_head(DistilBert *m, uint64_t seed);

/* The forward pass over ids and mask (B x T, mask 1 = token, 0 = padding;
 * ids must be < vocab_size, T <= max_position_embeddings). `train` turns on
 * dropout, whose masks come from (seed, step). Returns logits (B x
 * num_labels), valid until the next forward; NULL with err_set on bad input. */
const float *distilbert_forward(DistilBert *m, const int32_t *ids, const int32_t *mask, int B,
                                int T, bool train, uint64_t seed, uint64_t step);

/* The final hidden states (B x T x dim) of the last forward; NULL if it
 * ran with cls_only, which computes the last block's outputs for the [CLS]
 * rows alone (all the head reads): the same logits and gradients for less
 * work. distilbert_init leaves cls_only false. */
const float *distilbert_hidden(const DistilBert *m);

/* Backward from dlogits (B x num_labels) of the last forward, which must
 * have been run with the same (B, T); accumulates into the gradients. */
void distilbert_backward(DistilBert *m, const float *dlogits);

void distilbert_zero_grad(DistilBert *m);

/* Clips the global gradient norm (max_norm <= 0: no clipping; returns 0),
 * then one AdamW step at learning rate lr, weight decay per the table.
 * Returns the gradient norm before clipping. */
float distilbert_adamw_step(DistilBert *m, const AdamW *opt, float lr, float max_norm);

#endif
