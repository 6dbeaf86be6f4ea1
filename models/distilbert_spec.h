/* What every backend of DistilBERT shares, so that the CPU orchestration
 * (models/distilbert.c) and the CUDA one compute the same model from the
 * same description instead of each keeping a copy of it:
 *  - the configuration and the parameter table: each tensor's name, shape,
 *    HuggingFace DistilBERT and BERT names and whether weight decay applies;
 *    the table drives allocation, loading, saving and AdamW;
 *  - the flat layout: parameters (and so gradients and AdamW moments) are
 *    one array each, tensors in table order, per-layer tensors repeated
 *    n_layers times (ModelLayout); host weights in that layout (ModelWeights)
 *    are what checkpoints read and write and what backends copy in and out;
 *  - the activation plan: every activation of a forward and every scratch
 *    tensor of its backward, with its size for a batch of B x T, laid out in
 *    one arena in plan order;
 *  - the dropout convention: which Philox stream each dropout site draws
 *    from, and the key that numbers the micro-batches.
 *
 * The model, as HuggingFace's DistilBertForSequenceClassification computes it:
 *   x = dropout(LN(wte[ids] + wpe[pos]))
 *   per block: a = out_lin(attention(q_lin x, k_lin x, v_lin x, mask))
 *              x = sa_layer_norm(x + a)
 *              x = output_layer_norm(x + dropout(lin2(gelu(lin1 x))))
 *   head on [CLS]: logits = classifier(dropout(relu(pre_classifier(x[:, 0])))) */
#ifndef GENRE_MODELS_DISTILBERT_SPEC_H
#define GENRE_MODELS_DISTILBERT_SPEC_H

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

/* Elements of one tensor of a definition under cfg, and its shape
 * (shape[1] is 1 for vectors). */
size_t distilbert_shape(const DistilBertConfig *cfg, ParamId id, int64_t shape[2]);

/* Checks a configuration: dims positive, dim divisible by n_heads, LayerNorm
 * eps in (0, 1), dropout probabilities and initializer_range in [0, 1).
 * 0, or -1 with err_set. */
int distilbert_config_check(const DistilBertConfig *cfg);

/* One tensor in the flat layout. */
typedef struct {
    size_t off, n;
    int64_t shape[2];
} ParamSlot;

typedef struct {
    DistilBertConfig cfg;
    size_t n_params;
    ParamSlot *slots; /* P_COUNT x n_layers, see layout_slot */
} ModelLayout;

/* Lays out cfg (checked as distilbert_config_check does). 0, or -1 with err_set. */
int layout_init(ModelLayout *lay, const DistilBertConfig *cfg);
void layout_free(ModelLayout *lay);
/* A copy of src into dst (its own slots). */
void layout_copy(ModelLayout *dst, const ModelLayout *src);
/* Copies of `id` a model has: n_layers for per-layer tensors, else 1. */
int layout_copies(const ModelLayout *lay, ParamId id);
/* The slot of parameter `id` in `layer` (0 for the others). */
const ParamSlot *layout_slot(const ModelLayout *lay, ParamId id, int layer);

/* The layout's weight-decay table for AdamW (src/optim/adamw.h): the
 * tensors in offset order, neighbours with the same distilbert_params[]
 * decay merged, into seg (room for P_COUNT: the copies of a per-layer
 * tensor are neighbours). Returns the number of segments. */
int layout_decay_segments(const ModelLayout *lay, AdamWSegment seg[P_COUNT]);

/* Weights on the host, in the layout. */
typedef struct {
    ModelLayout lay;
    float *params; /* lay.n_params */
} ModelWeights;

/* Zeroed weights for cfg. 0, or -1 with err_set. */
int weights_init(ModelWeights *w, const DistilBertConfig *cfg);
void weights_free(ModelWeights *w);
/* Parameter `id` of `layer` inside w->params. */
float *weights_tensor(const ModelWeights *w, ParamId id, int layer);

/* Fills the classification head as HuggingFace initialises a fresh one:
 * weights normal(0, initializer_range) from Philox keyed by seed, biases 0. */
void weights_init_head(ModelWeights *w, uint64_t seed);

/* How one forward runs. Dropout (train) draws its masks from (seed, key):
 * the same (seed, key) gives the same masks on every backend. cls_only runs
 * the last block for the [CLS] rows alone, all the head reads: the same
 * logits and gradients for less work, but no final hidden states. */
typedef struct {
    bool train;
    uint64_t seed, key;
    bool cls_only;
    bool reduce; /* data parallel: this batch's backward completes the step's
                    gradients here; a backend may start summing them over the
                    job (backend_set_comm) as they are produced */
} ForwardArgs;

/* The dropout key of a micro-batch: its index among all micro-batches of the
 * run, counted step by step,
 *     key = step * per_step + index
 * where per_step is the micro-batches of one optimizer step over all ranks
 * (accumulation x ranks) and index the micro-batch's place among them. Who
 * computes a micro-batch (which rank, which accumulation round) does not
 * enter, so one rank accumulating N and N ranks give every example the same
 * key, and so the same masks. */
uint64_t dropout_key(long step, int per_step, int index);

/* The dropout sites, each drawing from its own Philox stream for each key
 * (dropout_stream) so that every mask differs:
 *   DROP_EMB                      after the embedding LayerNorm
 *   DROP_HEAD                     after the head's ReLU
 *   DROP_ATT + 2 * layer          attention probabilities of a block
 *   DROP_FFN + 2 * layer          the FFN output of a block, before its residual
 * Element i of a site's tensor (row-major, as the activation plan lays it
 * out) is element i of its stream: a row computed alone draws its own bits. */
enum { DROP_EMB = 0, DROP_HEAD = 1, DROP_ATT = 2, DROP_FFN = 3 };
uint64_t dropout_stream(uint64_t key, int site);

/* The activation plan. Per-layer tensors hold n_layers consecutive blocks;
 * A_ATT_DROP is empty when attention dropout is 0 (the probabilities are
 * used as they are). With fused attention (the CUDA backend's
 * kernels/attention.cu) the B x H x T x T tensors are empty and A_LSE and
 * A_DSUM take their place; without it those two are empty. N = B x T rows,
 * D = dim, F = hidden_dim, H = heads. */
typedef enum {
    A_MASK_ADD,                              /* N: additive attention mask */
    A_EMB, A_EMB_LN, A_EMB_MEAN, A_EMB_RSTD, /* N x D, N x D, N, N */
    A_H,                                     /* (layers + 1) x N x D: block inputs and outputs */
    A_Q, A_K, A_V, A_CTX, A_RES1, A_LN1, A_RES2, /* layers x N x D */
    A_FF1, A_FFG,                            /* layers x N x F */
    A_ATT, A_ATT_DROP,                       /* layers x B x H x T x T */
    A_LN1_MEAN, A_LN1_RSTD, A_LN2_MEAN, A_LN2_RSTD, /* layers x N */
    A_PREATT,                                /* B x H x T x T, scratch */
    A_CLS, A_PRE, A_RELU, A_DROP,            /* B x D: head */
    A_LOGITS,                                /* B x labels */
    A_DH, A_DRES2, A_DLN1, A_DFF2, A_DRES1, A_DCTX, A_DQ, A_DK, A_DV, A_DEMB, A_DEMB_LN, /* N x D */
    A_DFFG, A_DFF1,                          /* N x F */
    A_DATT1, A_DATT2,                        /* B x H x T x T */
    A_DCLS, A_DPRE, A_DRELU, A_DDROP,        /* B x D */
    A_FF2,                                   /* N x D: lin2 before dropout, scratch */
    A_XC, A_DXC,                             /* B x D: [CLS] rows of the last block's input */
    A_LSE,                                   /* layers x B x H x T: each score row's log-sum-exp */
    A_DSUM,                                  /* B x H x T: rowsum(dout * out), scratch */
    A_COUNT
} ActId;

/* n: elements; size: bytes per element (4, or 2 for a bf16 tensor); off:
 * bytes from the arena's start, each tensor 256-byte aligned (as
 * cudaMalloc's blocks: cuBLAS picks its kernels by alignment). */
typedef struct {
    size_t off[A_COUNT], n[A_COUNT];
    unsigned char size[A_COUNT];
    size_t total; /* bytes */
} ActPlan;

/* The plan for batches of B x T under cfg. With bf16 (mixed precision)
 * every tensor is bf16 except those kept in fp32: the attention mask, the
 * LayerNorm statistics, the logits and the fused attention's lse and dsum. */
void act_plan(ActPlan *p, const DistilBertConfig *cfg, int B, int T, bool fused_attention, bool bf16);

#endif
