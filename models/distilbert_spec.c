#include <stdlib.h>
#include <string.h>

#include "models/distilbert_spec.h"
#include "src/core/err.h"
#include "src/core/philox.h"

#define DL "distilbert.transformer.layer.%d."
#define BL "encoder.layer.%d."
const ParamDef distilbert_params[P_COUNT] = {
    [P_WTE] = {"wte", false, 2, {D_VOCAB, D_DIM}, "distilbert.embeddings.word_embeddings.weight",
               "embeddings.word_embeddings.weight", true},
    [P_WPE] = {"wpe", false, 2, {D_MAXPOS, D_DIM},
               "distilbert.embeddings.position_embeddings.weight",
               "embeddings.position_embeddings.weight", true},
    [P_EMB_LN_W] = {"emb_ln_w", false, 1, {D_DIM}, "distilbert.embeddings.LayerNorm.weight",
                    "embeddings.LayerNorm.weight", false},
    [P_EMB_LN_B] = {"emb_ln_b", false, 1, {D_DIM}, "distilbert.embeddings.LayerNorm.bias",
                    "embeddings.LayerNorm.bias", false},
    [P_Q_W] = {"q_w", true, 2, {D_DIM, D_DIM}, DL "attention.q_lin.weight",
               BL "attention.self.query.weight", true},
    [P_Q_B] = {"q_b", true, 1, {D_DIM}, DL "attention.q_lin.bias", BL "attention.self.query.bias",
               false},
    [P_K_W] = {"k_w", true, 2, {D_DIM, D_DIM}, DL "attention.k_lin.weight",
               BL "attention.self.key.weight", true},
    [P_K_B] = {"k_b", true, 1, {D_DIM}, DL "attention.k_lin.bias", BL "attention.self.key.bias",
               false},
    [P_V_W] = {"v_w", true, 2, {D_DIM, D_DIM}, DL "attention.v_lin.weight",
               BL "attention.self.value.weight", true},
    [P_V_B] = {"v_b", true, 1, {D_DIM}, DL "attention.v_lin.bias", BL "attention.self.value.bias",
               false},
    [P_O_W] = {"o_w", true, 2, {D_DIM, D_DIM}, DL "attention.out_lin.weight",
               BL "attention.output.dense.weight", true},
    [P_O_B] = {"o_b", true, 1, {D_DIM}, DL "attention.out_lin.bias",
               BL "attention.output.dense.bias", false},
    [P_SA_LN_W] = {"sa_ln_w", true, 1, {D_DIM}, DL "sa_layer_norm.weight",
                   BL "attention.output.LayerNorm.weight", false},
    [P_SA_LN_B] = {"sa_ln_b", true, 1, {D_DIM}, DL "sa_layer_norm.bias",
                   BL "attention.output.LayerNorm.bias", false},
    [P_FF1_W] = {"ff1_w", true, 2, {D_HIDDEN, D_DIM}, DL "ffn.lin1.weight",
                 BL "intermediate.dense.weight", true},
    [P_FF1_B] = {"ff1_b", true, 1, {D_HIDDEN}, DL "ffn.lin1.bias", BL "intermediate.dense.bias",
                 false},
    [P_FF2_W] = {"ff2_w", true, 2, {D_DIM, D_HIDDEN}, DL "ffn.lin2.weight",
                 BL "output.dense.weight", true},
    [P_FF2_B] = {"ff2_b", true, 1, {D_DIM}, DL "ffn.lin2.bias", BL "output.dense.bias", false},
    [P_OUT_LN_W] = {"out_ln_w", true, 1, {D_DIM}, DL "output_layer_norm.weight",
                    BL "output.LayerNorm.weight", false},
    [P_OUT_LN_B] = {"out_ln_b", true, 1, {D_DIM}, DL "output_layer_norm.bias",
                    BL "output.LayerNorm.bias", false},
    [P_PRE_W] = {"pre_w", false, 2, {D_DIM, D_DIM}, "pre_classifier.weight", NULL, true},
    [P_PRE_B] = {"pre_b", false, 1, {D_DIM}, "pre_classifier.bias", NULL, false},
    [P_CLS_W] = {"cls_w", false, 2, {D_LABELS, D_DIM}, "classifier.weight", NULL, true},
    [P_CLS_B] = {"cls_b", false, 1, {D_LABELS}, "classifier.bias", NULL, false},
};
#undef DL
#undef BL

size_t distilbert_shape(const DistilBertConfig *cfg, ParamId id, int64_t shape[2])
{
    const ParamDef *d = &distilbert_params[id];
    size_t n = 1;
    for (int i = 0; i < d->ndim; i++) {
        int64_t s = 0;
        switch (d->shape[i]) {
        case D_DIM: s = cfg->dim; break;
        case D_HIDDEN: s = cfg->hidden_dim; break;
        case D_VOCAB: s = cfg->vocab_size; break;
        case D_MAXPOS: s = cfg->max_position_embeddings; break;
        case D_LABELS: s = cfg->num_labels; break;
        }
        shape[i] = s;
        n *= (size_t)s;
    }
    if (d->ndim == 1) shape[1] = 1;
    return n;
}

int distilbert_config_check(const DistilBertConfig *c)
{
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->hidden_dim <= 0 ||
        c->vocab_size <= 0 || c->max_position_embeddings <= 0 || c->num_labels <= 0)
        return err_set("model config: every dimension must be positive");
    if (c->dim % c->n_heads)
        return err_set("model config: dim %d is not divisible by n_heads %d", c->dim, c->n_heads);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return err_set("model config: layer_norm_eps %g must be in (0, 1)", c->layer_norm_eps);
    const float p[] = {c->dropout, c->attention_dropout, c->seq_classif_dropout};
    const char *names[] = {"dropout", "attention_dropout", "seq_classif_dropout"};
    for (int i = 0; i < 3; i++)
        if (!(p[i] >= 0 && p[i] < 1)) return err_set("model config: %s %g must be in [0, 1)", names[i], p[i]);
    if (!(c->initializer_range >= 0 && c->initializer_range < 1))
        return err_set("model config: initializer_range %g must be in [0, 1)", c->initializer_range);
    return 0;
}

int layout_copies(const ModelLayout *lay, ParamId id)
{
    return distilbert_params[id].per_layer ? lay->cfg.n_layers : 1;
}

const ParamSlot *layout_slot(const ModelLayout *lay, ParamId id, int layer)
{
    return &lay->slots[(size_t)id * lay->cfg.n_layers + layer];
}

int layout_init(ModelLayout *lay, const DistilBertConfig *cfg)
{
    memset(lay, 0, sizeof *lay);
    if (distilbert_config_check(cfg)) return -1;
    lay->cfg = *cfg;
    lay->slots = xcalloc((size_t)P_COUNT * cfg->n_layers, sizeof *lay->slots);
    for (int id = 0; id < P_COUNT; id++) {
        int64_t shape[2];
        size_t n = distilbert_shape(cfg, id, shape);
        for (int l = 0; l < layout_copies(lay, id); l++) {
            ParamSlot *s = &lay->slots[(size_t)id * cfg->n_layers + l];
            s->off = lay->n_params;
            s->n = n;
            memcpy(s->shape, shape, sizeof shape);
            lay->n_params += n;
        }
    }
    return 0;
}

void layout_free(ModelLayout *lay)
{
    free(lay->slots);
    memset(lay, 0, sizeof *lay);
}

void layout_copy(ModelLayout *dst, const ModelLayout *src)
{
    *dst = *src;
    size_t n = (size_t)P_COUNT * src->cfg.n_layers;
    dst->slots = xmalloc(n * sizeof *dst->slots);
    memcpy(dst->slots, src->slots, n * sizeof *dst->slots);
}

int layout_decay_segments(const ModelLayout *lay, AdamWSegment seg[P_COUNT])
{
    int n = 0;
    for (int id = 0; id < P_COUNT; id++) { /* the layout's order: id, then layer */
        const ParamSlot *first = layout_slot(lay, id, 0);
        const ParamSlot *last = layout_slot(lay, id, layout_copies(lay, id) - 1);
        size_t len = last->off + last->n - first->off;
        int decay = distilbert_params[id].decay;
        if (n > 0 && seg[n - 1].decay == decay && seg[n - 1].off + seg[n - 1].n == first->off)
            seg[n - 1].n += len;
        else
            seg[n++] = (AdamWSegment){first->off, len, decay};
    }
    return n;
}

int weights_init(ModelWeights *w, const DistilBertConfig *cfg)
{
    memset(w, 0, sizeof *w);
    if (layout_init(&w->lay, cfg)) return -1;
    w->params = xcalloc(w->lay.n_params, sizeof(float));
    return 0;
}

void weights_free(ModelWeights *w)
{
    free(w->params);
    layout_free(&w->lay);
}

float *weights_tensor(const ModelWeights *w, ParamId id, int layer)
{
    return w->params + layout_slot(&w->lay, id, layer)->off;
}

void weights_init_head(ModelWeights *w, uint64_t seed)
{
    static const ParamId weights[] = {P_PRE_W, P_CLS_W}, biases[] = {P_PRE_B, P_CLS_B};
    for (int i = 0; i < 2; i++) {
        float *wt = weights_tensor(w, weights[i], 0), *b = weights_tensor(w, biases[i], 0);
        size_t nw = layout_slot(&w->lay, weights[i], 0)->n, nb = layout_slot(&w->lay, biases[i], 0)->n;
        for (size_t j = 0; j < nw; j++)
            wt[j] = w->lay.cfg.initializer_range * philox_normal(seed, (uint64_t)weights[i], j);
        memset(b, 0, nb * sizeof(float));
    }
}

uint64_t dropout_key(long step, int per_step, int index)
{
    return (uint64_t)step * (uint64_t)per_step + (uint64_t)index;
}

/* 20 bits of sites: 2 + 2 x layers of them fit for any real model. */
uint64_t dropout_stream(uint64_t key, int site) { return (key << 20) | (uint64_t)site; }

void act_plan(ActPlan *p, const DistilBertConfig *c, int B, int T, bool fused_attention, bool bf16)
{
    size_t L = c->n_layers, N = (size_t)B * T, D = c->dim, F = c->hidden_dim;
    size_t A = fused_attention ? 0 : (size_t)B * c->n_heads * T * T, BD = (size_t)B * D;
    size_t rows = fused_attention ? (size_t)B * c->n_heads * T : 0;
    size_t *n = p->n;
    n[A_MASK_ADD] = N;
    n[A_EMB] = n[A_EMB_LN] = N * D;
    n[A_EMB_MEAN] = n[A_EMB_RSTD] = N;
    n[A_H] = (L + 1) * N * D;
    n[A_Q] = n[A_K] = n[A_V] = n[A_CTX] = n[A_RES1] = n[A_LN1] = n[A_RES2] = L * N * D;
    n[A_FF1] = n[A_FFG] = L * N * F;
    n[A_ATT] = L * A;
    n[A_ATT_DROP] = c->attention_dropout > 0 ? L * A : 0;
    n[A_LN1_MEAN] = n[A_LN1_RSTD] = n[A_LN2_MEAN] = n[A_LN2_RSTD] = L * N;
    n[A_PREATT] = A;
    n[A_CLS] = n[A_PRE] = n[A_RELU] = n[A_DROP] = BD;
    n[A_LOGITS] = (size_t)B * c->num_labels;
    n[A_DH] = n[A_DRES2] = n[A_DLN1] = n[A_DFF2] = n[A_DRES1] = n[A_DCTX] = N * D;
    n[A_DQ] = n[A_DK] = n[A_DV] = n[A_DEMB] = n[A_DEMB_LN] = N * D;
    n[A_DFFG] = n[A_DFF1] = N * F;
    n[A_DATT1] = n[A_DATT2] = A;
    n[A_DCLS] = n[A_DPRE] = n[A_DRELU] = n[A_DDROP] = BD;
    n[A_FF2] = N * D;
    n[A_XC] = n[A_DXC] = BD;
    n[A_LSE] = L * rows;
    n[A_DSUM] = rows;
    static const ActId fp32[] = {A_MASK_ADD, A_EMB_MEAN, A_EMB_RSTD, A_LN1_MEAN, A_LN1_RSTD,
                                 A_LN2_MEAN, A_LN2_RSTD, A_LOGITS, A_LSE, A_DSUM};
    memset(p->size, bf16 ? 2 : 4, sizeof p->size);
    for (size_t i = 0; i < sizeof fp32 / sizeof *fp32; i++) p->size[fp32[i]] = 4;
    p->total = 0;
    for (int i = 0; i < A_COUNT; i++) {
        p->off[i] = p->total;
        p->total += (n[i] * p->size[i] + 255) / 256 * 256;
    }
}
