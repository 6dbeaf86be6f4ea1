#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/distilbert.h"
#include "src/core/err.h"
#include "src/ops/attention.h"
#include "src/ops/dropout.h"
#include "src/ops/embedding.h"
#include "src/ops/gelu.h"
#include "src/ops/layernorm.h"
#include "src/ops/linear.h"
#include "src/ops/relu.h"
#include "src/ops/residual.h"
#include "src/ops/rows.h"
#include "src/ops/softmax.h"


/* Activations of one forward pass and the scratch its backward needs; all
 * views into `mem`. Per-layer tensors are n_layers consecutive blocks. */
struct DistilBertActs {
    int B, T;
    bool train;          /* dropout of the last forward, recomputed by the backward */
    bool cls_only;       /* the last forward's last block ran for [CLS] rows only */
    uint64_t seed, key;
    size_t cap;          /* bytes of mem */
    float *mem;
    int32_t *ids;
    float *mask_add;                               /* B x T, additive */
    float *emb, *emb_ln, *emb_mean, *emb_rstd;     /* embeddings, before dropout */
    float *h;                                      /* (L+1) x B x T x D: block inputs/outputs */
    float *q, *k, *v, *ctx, *res1, *ln1, *res2;    /* L x B x T x D */
    float *ff1, *ffg;                              /* L x B x T x F */
    float *att, *attd;                             /* L x B x H x T x T */
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* L x B x T */
    float *preatt;                                 /* B x H x T x T, scratch */
    float *ff2;                                    /* B x T x D: lin2 before dropout, scratch */
    float *cls, *pre, *relu, *drop, *logits;       /* head */
    float *xc, *dxc;                               /* B x D: [CLS] rows of the last block's input */
    /* backward scratch */
    float *dh, *dres2, *dln1, *dff2, *dres1, *dctx, *dq, *dk, *dv, *demb, *demb_ln;
    float *dffg, *dff1, *datt1, *datt2;
    float *dcls, *dpre, *drelu, *ddrop;
};

ParamView *distilbert_view(const DistilBert *m, ParamId id, int layer)
{
    return &m->views[(size_t)id * m->lay.cfg.n_layers + layer];
}

int distilbert_init(DistilBert *m, const ModelWeights *w)
{
    memset(m, 0, sizeof *m);
    layout_copy(&m->lay, &w->lay);
    m->params = xmalloc(m->lay.n_params * sizeof(float));
    memcpy(m->params, w->params, m->lay.n_params * sizeof(float));
    m->grads = xcalloc(m->lay.n_params, sizeof(float));
    m->views = xcalloc((size_t)P_COUNT * m->lay.cfg.n_layers, sizeof *m->views);
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&m->lay, id); l++) {
            const ParamSlot *s = layout_slot(&m->lay, id, l);
            ParamView *v = distilbert_view(m, id, l);
            v->p = m->params + s->off;
            v->g = m->grads + s->off;
            v->n = s->n;
            memcpy(v->shape, s->shape, sizeof v->shape);
        }
    return 0;
}

void distilbert_free(DistilBert *m)
{
    if (m->acts) {
        free(m->acts->mem);
        free(m->acts->ids);
    }
    free(m->acts);
    free(m->params);
    free(m->grads);
    free(m->views);
    layout_free(&m->lay);
    memset(m, 0, sizeof *m);
}

/* Points the activations at the arena laid out by the plan for (B, T). */
static void acts_layout(DistilBert *m, int B, int T)
{
    DistilBertActs *a = m->acts;
    ActPlan plan;
    act_plan(&plan, &m->lay.cfg, B, T, false, false);
    float **v[A_COUNT] = {
        [A_MASK_ADD] = &a->mask_add, [A_EMB] = &a->emb, [A_EMB_LN] = &a->emb_ln,
        [A_EMB_MEAN] = &a->emb_mean, [A_EMB_RSTD] = &a->emb_rstd, [A_H] = &a->h, [A_Q] = &a->q,
        [A_K] = &a->k, [A_V] = &a->v, [A_CTX] = &a->ctx, [A_RES1] = &a->res1, [A_LN1] = &a->ln1,
        [A_RES2] = &a->res2, [A_FF1] = &a->ff1, [A_FFG] = &a->ffg, [A_ATT] = &a->att,
        [A_ATT_DROP] = &a->attd, [A_LN1_MEAN] = &a->ln1_mean, [A_LN1_RSTD] = &a->ln1_rstd,
        [A_LN2_MEAN] = &a->ln2_mean, [A_LN2_RSTD] = &a->ln2_rstd, [A_PREATT] = &a->preatt,
        [A_CLS] = &a->cls, [A_PRE] = &a->pre, [A_RELU] = &a->relu, [A_DROP] = &a->drop,
        [A_LOGITS] = &a->logits, [A_DH] = &a->dh, [A_DRES2] = &a->dres2, [A_DLN1] = &a->dln1,
        [A_DFF2] = &a->dff2, [A_DRES1] = &a->dres1, [A_DCTX] = &a->dctx, [A_DQ] = &a->dq,
        [A_DK] = &a->dk, [A_DV] = &a->dv, [A_DEMB] = &a->demb, [A_DEMB_LN] = &a->demb_ln,
        [A_DFFG] = &a->dffg, [A_DFF1] = &a->dff1, [A_DATT1] = &a->datt1, [A_DATT2] = &a->datt2,
        [A_DCLS] = &a->dcls, [A_DPRE] = &a->dpre, [A_DRELU] = &a->drelu, [A_DDROP] = &a->ddrop,
        [A_FF2] = &a->ff2, [A_XC] = &a->xc, [A_DXC] = &a->dxc,
    };
    if (plan.total > a->cap) {
        free(a->mem);
        a->mem = xmalloc(plan.total);
        a->cap = plan.total;
    }
    a->ids = xrealloc(a->ids, (size_t)B * T * sizeof *a->ids);
    /* A_LSE and A_DSUM, the CUDA backend's fused attention's, are empty here and have no view. */
    for (int i = 0; i < A_COUNT; i++)
        if (v[i]) *v[i] = plan.n[i] ? (float *)((char *)a->mem + plan.off[i]) : NULL;
    a->B = B;
    a->T = T;
}

void distilbert_reserve(DistilBert *m, int max_B, int max_T)
{
    if (!m->acts) m->acts = xcalloc(1, sizeof *m->acts);
    acts_layout(m, max_B, max_T);
}

static float *P(const DistilBert *m, ParamId id, int l) { return distilbert_view(m, id, l)->p; }
/* From m->grads, not the views: the CPU backend points it at scratch to
 * compute one micro-batch's gradient alone (backend.h). */
static float *G(const DistilBert *m, ParamId id, int l) { return m->grads + layout_slot(&m->lay, id, l)->off; }

/* The last block for the [CLS] rows alone (row b * T of each sequence),
 * when the caller reads only logits: keys and values still cover every
 * token, but the queries, attention output, FFN and both LayerNorms run on
 * B rows instead of B x T (about 14% of a step's GEMM work in a 6-layer
 * model). The dropout masks are those the full block draws for these rows,
 * so logits and gradients are the full block's. B-row results sit in the
 * first rows of the block's buffers; the output goes to a->cls. */
static void cls_block_forward(DistilBert *m, int l)
{
    const DistilBertConfig *c = &m->lay.cfg;
    DistilBertActs *a = m->acts;
    int B = a->B, T = a->T, D = c->dim, F = c->hidden_dim, H = c->n_heads;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F, A = (size_t)B * H * T * T;
    size_t BD = (size_t)B * D;
    float pd = a->train ? c->dropout : 0.0f, pa = a->train ? c->attention_dropout : 0.0f;
    float *x = a->h + l * ND, *q = a->q + l * ND, *k = a->k + l * ND, *v = a->v + l * ND;
    float *ctx = a->ctx + l * ND, *res1 = a->res1 + l * ND, *ln1 = a->ln1 + l * ND;
    float *res2 = a->res2 + l * ND, *ff1 = a->ff1 + l * NF, *ffg = a->ffg + l * NF;
    float *att = a->att + l * A, *attd = a->attd ? a->attd + l * A : NULL;
    rows_gather(a->xc, x, B, D, T);
    linear_forward(q, a->xc, P(m, P_Q_W, l), P(m, P_Q_B, l), B, D, D);
    linear_forward(k, x, P(m, P_K_W, l), P(m, P_K_B, l), (int)N, D, D);
    linear_forward(v, x, P(m, P_V_W, l), P(m, P_V_B, l), (int)N, D, D);
    attention_first_forward(ctx, a->preatt, att, attd, q, k, v, a->mask_add, B, T, H, D / H, pa,
                            a->seed, dropout_stream(a->key, DROP_ATT + 2 * l));
    linear_forward(res1, ctx, P(m, P_O_W, l), P(m, P_O_B, l), B, D, D);
    residual_add(res1, a->xc, BD);
    layernorm_forward(ln1, a->ln1_mean + l * N, a->ln1_rstd + l * N, res1, P(m, P_SA_LN_W, l),
                      P(m, P_SA_LN_B, l), B, D, c->layer_norm_eps);
    linear_forward(ff1, ln1, P(m, P_FF1_W, l), P(m, P_FF1_B, l), B, D, F);
    gelu_forward(ffg, ff1, (size_t)B * F);
    linear_forward(a->ff2, ffg, P(m, P_FF2_W, l), P(m, P_FF2_B, l), B, F, D);
    /* rows b * T of the full block's dropout */
    dropout_forward_rows(res2, a->ff2, B, D, 0, (uint64_t)T * D, pd, a->seed,
                         dropout_stream(a->key, DROP_FFN + 2 * l));
    residual_add(res2, ln1, BD);
    layernorm_forward(a->cls, a->ln2_mean + l * N, a->ln2_rstd + l * N, res2,
                      P(m, P_OUT_LN_W, l), P(m, P_OUT_LN_B, l), B, D, c->layer_norm_eps);
}

const float *distilbert_forward(DistilBert *m, const int32_t *ids, const int32_t *mask, int B,
                                int T, const ForwardArgs *fa)
{
    bool train = fa->train;
    uint64_t seed = fa->seed, key = fa->key;
    const DistilBertConfig *c = &m->lay.cfg;
    if (B <= 0 || T <= 0) return err_set("forward: empty batch (%d x %d)", B, T), NULL;
    if (T > c->max_position_embeddings)
        return err_set("forward: sequence length %d exceeds max_position_embeddings %d", T,
                       c->max_position_embeddings), NULL;
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return err_set("forward: token id %d outside the vocabulary (%d)", ids[i],
                           c->vocab_size), NULL;
    if (!m->acts) m->acts = xcalloc(1, sizeof *m->acts);
    acts_layout(m, B, T);
    DistilBertActs *a = m->acts;
    a->train = train;
    a->seed = seed;
    a->key = key;
    int D = c->dim, F = c->hidden_dim, H = c->n_heads, hs = D / H, Lab = c->num_labels;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F, A = (size_t)B * H * T * T;
    float pd = train ? c->dropout : 0.0f, pa = train ? c->attention_dropout : 0.0f;
    float pc = train ? c->seq_classif_dropout : 0.0f;

    memcpy(a->ids, ids, N * sizeof *ids);
    softmax_mask_additive(a->mask_add, mask, N);
    embedding_forward(a->emb, ids, P(m, P_WTE, 0), P(m, P_WPE, 0), B, T, D);
    layernorm_forward(a->emb_ln, a->emb_mean, a->emb_rstd, a->emb, P(m, P_EMB_LN_W, 0),
                      P(m, P_EMB_LN_B, 0), (int)N, D, c->layer_norm_eps);
    dropout_forward(a->h, a->emb_ln, ND, pd, seed, dropout_stream(key, DROP_EMB));

    a->cls_only = fa->cls_only;
    for (int l = 0; l < c->n_layers; l++) {
        if (a->cls_only && l == c->n_layers - 1) {
            cls_block_forward(m, l);
            break;
        }
        float *x = a->h + l * ND, *q = a->q + l * ND, *k = a->k + l * ND, *v = a->v + l * ND;
        float *ctx = a->ctx + l * ND, *res1 = a->res1 + l * ND, *ln1 = a->ln1 + l * ND;
        float *res2 = a->res2 + l * ND, *ff1 = a->ff1 + l * NF, *ffg = a->ffg + l * NF;
        float *att = a->att + l * A, *attd = a->attd ? a->attd + l * A : NULL;
        linear_forward(q, x, P(m, P_Q_W, l), P(m, P_Q_B, l), (int)N, D, D);
        linear_forward(k, x, P(m, P_K_W, l), P(m, P_K_B, l), (int)N, D, D);
        linear_forward(v, x, P(m, P_V_W, l), P(m, P_V_B, l), (int)N, D, D);
        attention_forward(ctx, a->preatt, att, attd, q, k, v, a->mask_add, B, T, H, hs, pa, seed,
                          dropout_stream(key, DROP_ATT + 2 * l));
        linear_forward(res1, ctx, P(m, P_O_W, l), P(m, P_O_B, l), (int)N, D, D);
        residual_add(res1, x, ND);
        layernorm_forward(ln1, a->ln1_mean + l * N, a->ln1_rstd + l * N, res1,
                          P(m, P_SA_LN_W, l), P(m, P_SA_LN_B, l), (int)N, D, c->layer_norm_eps);
        linear_forward(ff1, ln1, P(m, P_FF1_W, l), P(m, P_FF1_B, l), (int)N, D, F);
        gelu_forward(ffg, ff1, NF);
        linear_forward(a->ff2, ffg, P(m, P_FF2_W, l), P(m, P_FF2_B, l), (int)N, F, D);
        dropout_forward(res2, a->ff2, ND, pd, seed, dropout_stream(key, DROP_FFN + 2 * l));
        residual_add(res2, ln1, ND);
        layernorm_forward(x + ND, a->ln2_mean + l * N, a->ln2_rstd + l * N, res2,
                          P(m, P_OUT_LN_W, l), P(m, P_OUT_LN_B, l), (int)N, D, c->layer_norm_eps);
    }

    const float *top = a->h + (size_t)c->n_layers * ND;
    if (!a->cls_only) rows_gather(a->cls, top, B, D, T);
    linear_forward(a->pre, a->cls, P(m, P_PRE_W, 0), P(m, P_PRE_B, 0), B, D, D);
    relu_forward(a->relu, a->pre, (size_t)B * D);
    dropout_forward(a->drop, a->relu, (size_t)B * D, pc, seed, dropout_stream(key, DROP_HEAD));
    linear_forward(a->logits, a->drop, P(m, P_CLS_W, 0), P(m, P_CLS_B, 0), B, D, Lab);
    return a->logits;
}

const float *distilbert_hidden(const DistilBert *m)
{
    const DistilBertActs *a = m->acts;
    if (a->cls_only) return NULL;
    return a->h + (size_t)m->lay.cfg.n_layers * a->B * a->T * m->lay.cfg.dim;
}

void distilbert_zero_grad(DistilBert *m) { memset(m->grads, 0, m->lay.n_params * sizeof(float)); }

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

/* The backward of cls_block_forward, from dcls; dh (zeroed) gets the
 * gradient of the block's input. */
static void cls_block_backward(DistilBert *m, int l)
{
    const DistilBertConfig *c = &m->lay.cfg;
    DistilBertActs *a = m->acts;
    int B = a->B, T = a->T, D = c->dim, F = c->hidden_dim, H = c->n_heads;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F, A = (size_t)B * H * T * T;
    size_t BD = (size_t)B * D, BF = (size_t)B * F;
    float pd = a->train ? c->dropout : 0.0f, pa = a->train ? c->attention_dropout : 0.0f;
    float *x = a->h + l * ND, *q = a->q + l * ND, *k = a->k + l * ND, *v = a->v + l * ND;
    float *ctx = a->ctx + l * ND, *res1 = a->res1 + l * ND, *ln1 = a->ln1 + l * ND;
    float *res2 = a->res2 + l * ND, *ff1 = a->ff1 + l * NF, *ffg = a->ffg + l * NF;
    float *att = a->att + l * A, *attd = a->attd ? a->attd + l * A : NULL;
    zero(a->dres2, BD);
    layernorm_backward(a->dres2, G(m, P_OUT_LN_W, l), G(m, P_OUT_LN_B, l), a->dcls, res2,
                       P(m, P_OUT_LN_W, l), a->ln2_mean + l * N, a->ln2_rstd + l * N, B, D);
    memcpy(a->dln1, a->dres2, BD * sizeof(float));
    zero(a->dff2, BD);
    dropout_backward_rows(a->dff2, a->dres2, B, D, 0, (uint64_t)T * D, pd, a->seed,
                          dropout_stream(a->key, DROP_FFN + 2 * l));
    zero(a->dffg, BF);
    linear_backward(a->dffg, G(m, P_FF2_W, l), G(m, P_FF2_B, l), a->dff2, ffg, P(m, P_FF2_W, l),
                    B, F, D);
    zero(a->dff1, BF);
    gelu_backward(a->dff1, a->dffg, ff1, BF);
    linear_backward(a->dln1, G(m, P_FF1_W, l), G(m, P_FF1_B, l), a->dff1, ln1, P(m, P_FF1_W, l),
                    B, D, F);
    zero(a->dres1, BD);
    layernorm_backward(a->dres1, G(m, P_SA_LN_W, l), G(m, P_SA_LN_B, l), a->dln1, res1,
                       P(m, P_SA_LN_W, l), a->ln1_mean + l * N, a->ln1_rstd + l * N, B, D);
    memcpy(a->dxc, a->dres1, BD * sizeof(float)); /* the residual */
    zero(a->dctx, BD);
    linear_backward(a->dctx, G(m, P_O_W, l), G(m, P_O_B, l), a->dres1, ctx, P(m, P_O_W, l), B, D,
                    D);
    zero(a->dq, BD);
    zero(a->dk, ND);
    zero(a->dv, ND);
    attention_first_backward(a->dq, a->dk, a->dv, a->datt1, a->datt2, a->dctx, q, k, v, att,
                             attd, B, T, H, D / H, pa);
    linear_backward(a->dxc, G(m, P_Q_W, l), G(m, P_Q_B, l), a->dq, a->xc, P(m, P_Q_W, l), B, D,
                    D);
    linear_backward(a->dh, G(m, P_K_W, l), G(m, P_K_B, l), a->dk, x, P(m, P_K_W, l), (int)N, D,
                    D);
    linear_backward(a->dh, G(m, P_V_W, l), G(m, P_V_B, l), a->dv, x, P(m, P_V_W, l), (int)N, D,
                    D);
    rows_scatter_add(a->dh, a->dxc, B, D, T);
}

void distilbert_backward(DistilBert *m, const float *dlogits)
{
    const DistilBertConfig *c = &m->lay.cfg;
    DistilBertActs *a = m->acts;
    int B = a->B, T = a->T, D = c->dim, F = c->hidden_dim, H = c->n_heads, hs = D / H;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F, A = (size_t)B * H * T * T;
    float pd = a->train ? c->dropout : 0.0f, pa = a->train ? c->attention_dropout : 0.0f;
    float pc = a->train ? c->seq_classif_dropout : 0.0f;
    uint64_t seed = a->seed, key = a->key;

    /* head */
    zero(a->ddrop, (size_t)B * D);
    linear_backward(a->ddrop, G(m, P_CLS_W, 0), G(m, P_CLS_B, 0), dlogits, a->drop,
                    P(m, P_CLS_W, 0), B, D, c->num_labels);
    zero(a->drelu, (size_t)B * D);
    dropout_backward(a->drelu, a->ddrop, (size_t)B * D, pc, seed, dropout_stream(key, DROP_HEAD));
    zero(a->dpre, (size_t)B * D);
    relu_backward(a->dpre, a->drelu, a->pre, (size_t)B * D);
    zero(a->dcls, (size_t)B * D);
    linear_backward(a->dcls, G(m, P_PRE_W, 0), G(m, P_PRE_B, 0), a->dpre, a->cls,
                    P(m, P_PRE_W, 0), B, D, D);
    zero(a->dh, ND);
    int top = c->n_layers;
    if (a->cls_only)
        cls_block_backward(m, --top);
    else
        rows_scatter_add(a->dh, a->dcls, B, D, T);

    /* blocks, last first; dh holds the gradient of the current block's output */
    for (int l = top - 1; l >= 0; l--) {
        float *x = a->h + l * ND, *q = a->q + l * ND, *k = a->k + l * ND, *v = a->v + l * ND;
        float *ctx = a->ctx + l * ND, *res1 = a->res1 + l * ND, *ln1 = a->ln1 + l * ND;
        float *res2 = a->res2 + l * ND, *ff1 = a->ff1 + l * NF, *ffg = a->ffg + l * NF;
        zero(a->dres2, ND);
        layernorm_backward(a->dres2, G(m, P_OUT_LN_W, l), G(m, P_OUT_LN_B, l), a->dh, res2,
                           P(m, P_OUT_LN_W, l), a->ln2_mean + l * N, a->ln2_rstd + l * N,
                           (int)N, D);
        memcpy(a->dln1, a->dres2, ND * sizeof(float));
        zero(a->dff2, ND);
        dropout_backward(a->dff2, a->dres2, ND, pd, seed, dropout_stream(key, DROP_FFN + 2 * l));
        zero(a->dffg, NF);
        linear_backward(a->dffg, G(m, P_FF2_W, l), G(m, P_FF2_B, l), a->dff2, ffg,
                        P(m, P_FF2_W, l), (int)N, F, D);
        zero(a->dff1, NF);
        gelu_backward(a->dff1, a->dffg, ff1, NF);
        linear_backward(a->dln1, G(m, P_FF1_W, l), G(m, P_FF1_B, l), a->dff1, ln1,
                        P(m, P_FF1_W, l), (int)N, D, F);
        zero(a->dres1, ND);
        layernorm_backward(a->dres1, G(m, P_SA_LN_W, l), G(m, P_SA_LN_B, l), a->dln1, res1,
                           P(m, P_SA_LN_W, l), a->ln1_mean + l * N, a->ln1_rstd + l * N,
                           (int)N, D);
        /* The residual: dres1 flows straight into the block input. */
        memcpy(a->dh, a->dres1, ND * sizeof(float));
        zero(a->dctx, ND);
        linear_backward(a->dctx, G(m, P_O_W, l), G(m, P_O_B, l), a->dres1, ctx, P(m, P_O_W, l),
                        (int)N, D, D);
        zero(a->dq, ND);
        zero(a->dk, ND);
        zero(a->dv, ND);
        attention_backward(a->dq, a->dk, a->dv, a->datt1, a->datt2, a->dctx, q, k, v,
                           a->att + l * A, a->attd ? a->attd + l * A : NULL, B, T, H, hs, pa);
        linear_backward(a->dh, G(m, P_Q_W, l), G(m, P_Q_B, l), a->dq, x, P(m, P_Q_W, l), (int)N,
                        D, D);
        linear_backward(a->dh, G(m, P_K_W, l), G(m, P_K_B, l), a->dk, x, P(m, P_K_W, l), (int)N,
                        D, D);
        linear_backward(a->dh, G(m, P_V_W, l), G(m, P_V_B, l), a->dv, x, P(m, P_V_W, l), (int)N,
                        D, D);
    }

    /* embeddings */
    zero(a->demb_ln, ND);
    dropout_backward(a->demb_ln, a->dh, ND, pd, seed, dropout_stream(key, DROP_EMB));
    zero(a->demb, ND);
    layernorm_backward(a->demb, G(m, P_EMB_LN_W, 0), G(m, P_EMB_LN_B, 0), a->demb_ln, a->emb,
                       P(m, P_EMB_LN_W, 0), a->emb_mean, a->emb_rstd, (int)N, D);
    embedding_backward(G(m, P_WTE, 0), G(m, P_WPE, 0), a->demb, a->ids, B, T, D);
}

float distilbert_adamw_step(DistilBert *m, AdamWState *s, const AdamW *opt, float lr, float max_norm)
{
    float norm = max_norm > 0 ? clip_grad_norm(m->grads, m->lay.n_params, max_norm) : 0.0f;
    s->t++;
    AdamWSegment seg[P_COUNT];
    int nseg = layout_decay_segments(&m->lay, seg);
    adamw_update_segments(opt, m->params, m->grads, s->m, s->v, seg, nseg, s->t, lr);
    return norm;
}
