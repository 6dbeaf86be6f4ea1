/* Finite-difference checks of every op's backward (src/ops/) on small random
 * shapes. The ops compute in float, so each objective sum(out * R) is summed
 * in double and differenced centrally with a step of 1e-2 (truncation error
 * ~1e-4, rounding ~1e-5); the analytic gradient must agree to 2e-3 of the
 * tensor's largest gradient. Backward calls accumulate, so every check also
 * starts its gradient buffer at a nonzero value and subtracts it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/ops/attention.h"
#include "src/ops/dropout.h"
#include "src/ops/embedding.h"
#include "src/ops/gelu.h"
#include "src/ops/layernorm.h"
#include "src/ops/linear.h"
#include "src/ops/loss.h"
#include "src/ops/relu.h"
#include "src/ops/softmax.h"
#include "src/core/philox.h"

#define STEP 1e-2f
#define TOL 2e-3

static uint64_t stream_counter = 1000;

static float *randn(size_t n, float scale)
{
    float *x = malloc(n * sizeof(float));
    uint64_t s = stream_counter++;
    for (size_t i = 0; i < n; i++) x[i] = scale * philox_normal(7, s, i);
    return x;
}

/* The op under test: fills its output from its current inputs. */
typedef struct {
    void (*forward)(void *ctx);
    void *ctx;
    const float *out;
    const float *r; /* the objective's weights, one per output */
    size_t n_out;
} Objective;

static double objective(const Objective *o)
{
    o->forward(o->ctx);
    double s = 0;
    for (size_t i = 0; i < o->n_out; i++) s += (double)o->out[i] * o->r[i];
    return s;
}

/* Compares grad (the backward's accumulation minus the 0.5 it started at)
 * with central differences of the objective in each of x's n entries. */
static void check(const char *what, float *x, size_t n, const float *grad, const Objective *o)
{
    double scale = 1e-3, worst = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(grad[i] - 0.5));
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + STEP;
        double fp = objective(o);
        x[i] = keep - STEP;
        double fm = objective(o);
        x[i] = keep;
        double fd = (fp - fm) / (2.0 * STEP);
        worst = fmax(worst, fabs(fd - (grad[i] - 0.5)) / scale);
    }
    objective(o); /* leave the forward state as it was */
    cr_expect_lt(worst, TOL, "%s: finite-difference error %g of the gradient scale", what, worst);
}

static float *filled(size_t n)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 0.5f;
    return x;
}

/* ---- linear ---- */
typedef struct { float *out, *inp, *w, *b; int N, C, OC; } LinearCtx;
static void linear_fwd(void *p)
{
    LinearCtx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
}

Test(ops_grad, linear)
{
    LinearCtx c = {.N = 5, .C = 7, .OC = 3};
    c.inp = randn(35, 1), c.w = randn(21, 0.5f), c.b = randn(3, 0.5f), c.out = malloc(15 * sizeof(float));
    float *r = randn(15, 1), *din = filled(35), *dw = filled(21), *db = filled(3);
    Objective o = {linear_fwd, &c, c.out, r, 15};
    objective(&o);
    linear_backward(din, dw, db, r, c.inp, c.w, c.N, c.C, c.OC);
    check("linear dinp", c.inp, 35, din, &o);
    check("linear dweight", c.w, 21, dw, &o);
    check("linear dbias", c.b, 3, db, &o);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(r), free(din), free(dw), free(db);
}

/* ---- embedding ---- */
typedef struct { float *out, *wte, *wpe; const int32_t *ids; int B, T, C; } EmbCtx;
static void emb_fwd(void *p)
{
    EmbCtx *c = p;
    embedding_forward(c->out, c->ids, c->wte, c->wpe, c->B, c->T, c->C);
}

Test(ops_grad, embedding)
{
    static const int32_t ids[] = {1, 3, 3, 0, 2, 1}; /* repeats accumulate */
    EmbCtx c = {.ids = ids, .B = 2, .T = 3, .C = 4};
    c.wte = randn(5 * 4, 1), c.wpe = randn(4 * 4, 1), c.out = malloc(24 * sizeof(float));
    float *r = randn(24, 1), *dwte = filled(20), *dwpe = filled(16);
    Objective o = {emb_fwd, &c, c.out, r, 24};
    objective(&o);
    embedding_backward(dwte, dwpe, r, ids, c.B, c.T, c.C);
    check("embedding dwte", c.wte, 20, dwte, &o);
    check("embedding dwpe", c.wpe, 16, dwpe, &o);
    free(c.wte), free(c.wpe), free(c.out), free(r), free(dwte), free(dwpe);
}

/* ---- elementwise: gelu, relu, dropout ---- */
typedef struct { float *out, *inp; size_t n; int op; float p; } EwCtx;
static void ew_fwd(void *p)
{
    EwCtx *c = p;
    if (c->op == 0) gelu_forward(c->out, c->inp, c->n);
    if (c->op == 1) relu_forward(c->out, c->inp, c->n);
    if (c->op == 2) dropout_forward(c->out, c->inp, c->n, c->p, 3, 9);
}

Test(ops_grad, elementwise)
{
    size_t n = 40;
    for (int op = 0; op < 3; op++) {
        EwCtx c = {.n = n, .op = op, .p = 0.5f};
        c.inp = randn(n, 2), c.out = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) /* keep ReLU's kink out of the step's reach */
            if (fabsf(c.inp[i]) < 0.05f) c.inp[i] = 0.3f;
        float *r = randn(n, 1), *d = filled(n);
        Objective o = {ew_fwd, &c, c.out, r, n};
        objective(&o);
        if (op == 0) gelu_backward(d, r, c.inp, n);
        if (op == 1) relu_backward(d, r, c.inp, n);
        if (op == 2) dropout_backward(d, r, n, c.p, 3, 9);
        check(op == 0 ? "gelu" : op == 1 ? "relu" : "dropout", c.inp, n, d, &o);
        free(c.inp), free(c.out), free(r), free(d);
    }
}

Test(ops_grad, dropout_keeps_about_1_minus_p_and_scales)
{
    size_t n = 20000, kept = 0;
    float *x = filled(n), *y = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    dropout_forward(y, x, n, 0.25f, 11, 5);
    dropout_forward(y2, x, n, 0.25f, 11, 6);
    int same = 1;
    for (size_t i = 0; i < n; i++) {
        cr_assert(y[i] == 0.0f || fabsf(y[i] - 0.5f / 0.75f) < 1e-6f);
        kept += y[i] != 0.0f;
        same &= (y[i] == 0.0f) == (y2[i] == 0.0f);
    }
    cr_expect(fabs((double)kept / n - 0.75) < 0.01, "kept %zu of %zu", kept, n);
    cr_expect(!same, "another stream must give another mask");
    free(x), free(y), free(y2);
}

/* The mask is the documented function of (seed, stream, element), as a GPU
 * kernel reproduces it: checked against philox4x32_10 directly, on more
 * elements than the parallel threshold and a length that ends mid-block;
 * the _at variants on a part of the tensor. */
Test(ops_grad, dropout_mask_is_philox_16_bit_draws)
{
    size_t n = 100003;
    uint64_t seed = 0x123456789abcdefULL, stream = (5ULL << 20) | 3;
    float p = 0.1f, *x = filled(n), *y = malloc(n * sizeof(float)), *d = filled(n);
    uint32_t thr = (uint32_t)lrintf(p * 65536.0f);
    dropout_forward(y, x, n, p, seed, stream);
    dropout_backward(d, x, n, p, seed, stream);
    for (size_t i = 0; i < n; i++) {
        uint64_t b = i / 8;
        uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                           (uint32_t)(stream >> 32)};
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, w[4];
        philox4x32_10(ctr, key, w);
        int keep = (uint16_t)(w[i % 8 / 2] >> (16 * (i % 2))) >= thr;
        cr_assert_eq(y[i] != 0.0f, keep, "element %zu", i);
        cr_assert_eq(d[i] != 0.5f, keep, "element %zu (backward)", i);
    }
    /* a part starting mid-group gets the whole tensor's masks */
    float *part = malloc(5000 * sizeof(float)), *dpart = filled(5000);
    dropout_forward_at(part, x, 5000, 777, p, seed, stream);
    dropout_backward_at(dpart, x, 5000, 777, p, seed, stream);
    for (size_t i = 0; i < 5000; i++) {
        cr_assert_eq(part[i], y[777 + i], "part element %zu", i);
        cr_assert_eq(dpart[i], d[777 + i], "part element %zu (backward)", i);
    }
    free(x), free(y), free(d), free(part), free(dpart);
}

/* ---- layernorm ---- */
typedef struct { float *out, *mean, *rstd, *inp, *w, *b; int rows, dim; } LnCtx;
static void ln_fwd(void *p)
{
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->rows, c->dim, 1e-5f);
}

Test(ops_grad, layernorm)
{
    LnCtx c = {.rows = 3, .dim = 8};
    size_t n = 24;
    c.inp = randn(n, 1), c.w = randn(8, 1), c.b = randn(8, 1), c.out = malloc(n * sizeof(float));
    c.mean = malloc(3 * sizeof(float)), c.rstd = malloc(3 * sizeof(float));
    float *r = randn(n, 1), *din = filled(n), *dw = filled(8), *db = filled(8);
    Objective o = {ln_fwd, &c, c.out, r, n};
    objective(&o);
    layernorm_backward(din, dw, db, r, c.inp, c.w, c.mean, c.rstd, c.rows, c.dim);
    check("layernorm dinp", c.inp, n, din, &o);
    check("layernorm dweight", c.w, 8, dw, &o);
    check("layernorm dbias", c.b, 8, db, &o);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd);
    free(r), free(din), free(dw), free(db);
}

/* ---- softmax with mask and scale ---- */
typedef struct { float *out, *inp, *mask; int rows, cols; } SmCtx;
static void sm_fwd(void *p)
{
    SmCtx *c = p;
    softmax_forward(c->out, c->inp, c->mask, 0.7f, c->rows, c->cols, 2);
}

Test(ops_grad, softmax)
{
    SmCtx c = {.rows = 4, .cols = 5};
    float mask[10] = {0, 0, 0, SOFTMAX_MASKED, SOFTMAX_MASKED, 0, 0, 0, 0, 0};
    c.mask = mask, c.inp = randn(20, 1), c.out = malloc(20 * sizeof(float));
    float *r = randn(20, 1), *d = filled(20);
    Objective o = {sm_fwd, &c, c.out, r, 20};
    objective(&o);
    softmax_backward(d, r, c.out, 0.7f, c.rows, c.cols);
    check("softmax", c.inp, 20, d, &o);
    free(c.inp), free(c.out), free(r), free(d);
}

/* ---- attention, with padding and with dropout ---- */
typedef struct {
    float *out, *preatt, *att, *attd, *q, *k, *v, *mask;
    int B, T, H, hs;
    float p;
} AttCtx;
static void att_fwd(void *p)
{
    AttCtx *c = p;
    attention_forward(c->out, c->preatt, c->att, c->attd, c->q, c->k, c->v, c->mask, c->B, c->T,
                      c->H, c->hs, c->p, 5, 77);
}

Test(ops_grad, attention)
{
    for (int with_dropout = 0; with_dropout < 2; with_dropout++) {
        AttCtx c = {.B = 2, .T = 4, .H = 2, .hs = 3, .p = with_dropout ? 0.3f : 0.0f};
        size_t n = 2 * 4 * 6, a = 2 * 2 * 4 * 4;
        float mask[8] = {0, 0, 0, 0, 0, 0, SOFTMAX_MASKED, SOFTMAX_MASKED};
        c.mask = mask;
        c.q = randn(n, 1), c.k = randn(n, 1), c.v = randn(n, 1), c.out = malloc(n * sizeof(float));
        c.preatt = malloc(a * sizeof(float)), c.att = malloc(a * sizeof(float));
        c.attd = malloc(a * sizeof(float));
        float *r = randn(n, 1), *dq = filled(n), *dk = filled(n), *dv = filled(n);
        float *s1 = malloc(a * sizeof(float)), *s2 = malloc(a * sizeof(float));
        Objective o = {att_fwd, &c, c.out, r, n};
        objective(&o);
        attention_backward(dq, dk, dv, s1, s2, r, c.q, c.k, c.v, c.att, c.attd, c.B, c.T, c.H, c.hs,
                           c.p);
        check(with_dropout ? "attention dq (dropout)" : "attention dq", c.q, n, dq, &o);
        check(with_dropout ? "attention dk (dropout)" : "attention dk", c.k, n, dk, &o);
        check(with_dropout ? "attention dv (dropout)" : "attention dv", c.v, n, dv, &o);
        free(c.q), free(c.k), free(c.v), free(c.out), free(c.preatt), free(c.att), free(c.attd);
        free(r), free(dq), free(dk), free(dv), free(s1), free(s2);
    }
}

/* ---- losses: the fused gradient against differences of the loss ---- */
Test(ops_grad, losses)
{
    int B = 3, L = 4;
    float w[4] = {0.5f, 1.5f, 0.8f, 1.2f};
    float y[12] = {1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0};
    Loss kinds[] = {{.kind = LOSS_BCE},
                    {.kind = LOSS_BCE_LOGW, .weights = w, .as_pos_weight = true},
                    {.kind = LOSS_BCE_LOGW, .weights = w, .as_pos_weight = false},
                    {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f},
                    {.kind = LOSS_FOCAL, .alpha = -1.0f, .gamma = 0.5f},
                    {.kind = LOSS_ASL, .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f},
                    {.kind = LOSS_ASL, .gamma_pos = 1.0f, .gamma_neg = 2.0f, .clip = 0.2f},
                    {.kind = LOSS_ASL, .gamma_pos = 0.5f, .gamma_neg = 1.5f, .clip = 0.0f},
                    {.kind = LOSS_BCE, .class_weights = w},
                    {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f, .class_weights = w},
                    {.kind = LOSS_ASL, .gamma_neg = 4.0f, .clip = 0.05f, .class_weights = w}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        float *x = randn(12, 3), g[12];
        loss_forward(&kinds[k], g, x, y, B, L, 0.5f);
        double worst = 0, scale = 1e-6;
        for (int i = 0; i < 12; i++) scale = fmax(scale, fabs(g[i]));
        for (int i = 0; i < 12; i++) {
            float keep = x[i];
            x[i] = keep + 1e-2f;
            double fp = loss_forward(&kinds[k], NULL, x, y, B, L, 1.0f);
            x[i] = keep - 1e-2f;
            double fm = loss_forward(&kinds[k], NULL, x, y, B, L, 1.0f);
            x[i] = keep;
            worst = fmax(worst, fabs(0.5 * (fp - fm) / 2e-2 - g[i]) / scale);
        }
        cr_expect_lt(worst, TOL, "loss %zu: finite-difference error %g", k, worst);
        free(x);
    }
}

/* The paper's formulas at hand-computed points: a negative at p = 0.5 costs
 * p_m^4 * -log(1 - p_m) with p_m = 0.45; a negative below the clip costs
 * nothing; a positive at p = 0.5 costs log 2 (gamma_pos 0). */
Test(ops_grad, asl_and_class_balanced_known_values)
{
    Loss asl = {.kind = LOSS_ASL, .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f};
    float x0 = 0.0f, y0 = 0.0f, y1 = 1.0f, below = -3.5f; /* sigmoid(-3.5) = 0.0293 < 0.05 */
    cr_expect_float_eq(loss_forward(&asl, NULL, &x0, &y0, 1, 1, 1.0f), pow(0.45, 4) * -log(0.55), 1e-7);
    cr_expect_float_eq(loss_forward(&asl, NULL, &x0, &y1, 1, 1, 1.0f), log(2.0), 1e-7);
    float g = 1.0f;
    cr_expect_eq(loss_forward(&asl, &g, &below, &y0, 1, 1, 1.0f), 0.0f);
    cr_expect_eq(g, 0.0f);

    /* (1 - beta) / (1 - beta^n), n = 1, 10, 100 and 0 (counted as 1), over their mean */
    long counts[4] = {1, 10, 100, 0};
    double inv[4], mean = 0;
    for (int c = 0; c < 4; c++) mean += (inv[c] = 0.1 / (1.0 - pow(0.9, counts[c] ? (double)counts[c] : 1.0))) / 4;
    float w[4];
    loss_class_balanced_weights(w, counts, 4, 0.9);
    for (int c = 0; c < 4; c++) cr_expect_float_eq(w[c], inv[c] / mean, 1e-6, "w[%d] = %g", c, w[c]);
    loss_class_balanced_weights(w, counts, 4, 0.0); /* beta 0: no reweighting */
    for (int c = 0; c < 4; c++) cr_expect_eq(w[c], 1.0f);
}

Test(ops_grad, losses_are_stable_for_huge_logits)
{
    float x[4] = {1e4f, -1e4f, 80.0f, -80.0f}, y[4] = {0, 1, 1, 0}, g[4];
    Loss kinds[] = {{.kind = LOSS_BCE},
                    {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f},
                    {.kind = LOSS_ASL, .gamma_pos = 1.0f, .gamma_neg = 4.0f, .clip = 0.05f},
                    {.kind = LOSS_ASL, .gamma_neg = 4.0f, .clip = 0.0f}};
    for (int k = 0; k < 4; k++) {
        float l = loss_forward(&kinds[k], g, x, y, 1, 4, 1.0f);
        cr_expect(isfinite(l) && l > 0, "loss %d = %g", k, l);
        for (int i = 0; i < 4; i++) cr_expect(isfinite(g[i]));
    }
    /* BCE of a wrong logit of 1e4 is 1e4 (mean over 4: 5e3 from the two). */
    cr_expect_float_eq(loss_forward(&kinds[0], NULL, x, y, 1, 4, 1.0f), 5000.0f, 1e-3f);
}

/* Random123's known-answer vectors for Philox4x32-10, so a GPU implementation
 * (or cuRAND's) gives the same bits. */
Test(ops_grad, philox_known_answers)
{
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof *kat; i++) {
        uint32_t out[4];
        philox4x32_10(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++) cr_expect_eq(out[j], kat[i].out[j], "vector %zu word %d: %08x", i, j, out[j]);
    }
}
