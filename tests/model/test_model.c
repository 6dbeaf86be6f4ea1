/* DistilBERT against PyTorch: tests/fixtures/ is written by
 * tests/reference/make_model_fixtures.py (transformers). Logits and losses
 * to 1e-5, every parameter gradient under each loss to 1e-4, three AdamW
 * steps (warmup, clipping) to 1e-5; all relative to the reference's scale. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/checkpoint.h"
#include "models/distilbert.h"
#include "src/core/err.h"
#include "src/ops/loss.h"
#include "src/io/safetensors.h"
#include "src/train/schedule.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"
#define REF "tests/fixtures/tiny_distilbert_ref.safetensors"

static StFile ref;
static DistilBert model;

static void setup(void)
{
    cr_assert_eq(st_open(&ref, REF), 0, "%s", err_msg());
    ModelWeights w;
    cr_assert_eq(checkpoint_load(&w, TINY, 0, 0), 0, "%s", err_msg());
    cr_assert_eq(distilbert_init(&model, &w), 0, "%s", err_msg());
    weights_free(&w);
}

static void teardown(void)
{
    distilbert_free(&model);
    st_close(&ref);
}

/* A fixture tensor as floats (the caller frees). */
static float *ref_f32(const char *name, size_t *n)
{
    const StTensor *t = st_find(&ref, name);
    cr_assert(t, "fixture %s missing", name);
    float *x = malloc(t->numel * sizeof(float));
    cr_assert_eq(st_read_f32(&ref, t, x, t->numel), 0, "%s", err_msg());
    if (n) *n = t->numel;
    return x;
}

static int32_t *ref_i32(const char *name)
{
    const StTensor *t = st_find(&ref, name);
    cr_assert(t && t->dtype == ST_I32, "fixture %s missing or not I32", name);
    int32_t *x = malloc(t->nbytes);
    memcpy(x, t->data, t->nbytes);
    return x;
}

#define B 3
#define T 8
#define NL 5

static const ForwardArgs eval_mode = {.train = false};
static const ForwardArgs train_mode = {.train = true, .seed = 123, .key = 4};

static const float *run_forward(void)
{
    int32_t *ids = ref_i32("ids"), *mask = ref_i32("mask");
    const float *logits = distilbert_forward(&model, ids, mask, B, T, &eval_mode);
    cr_assert(logits, "%s", err_msg());
    free(ids);
    free(mask);
    return logits;
}

/* The fixture's loss `name`: its kind, then "_cb" for class-balanced weights cbw. */
static Loss make_loss(const char *name, float *w, float *cbw)
{
    Loss l = {.kind = LOSS_BCE, .weights = w, .as_pos_weight = true, .alpha = 0.375f, .gamma = 2.0f,
              .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f};
    if (!strcmp(name, "bce_logw")) l.kind = LOSS_BCE_LOGW;
    if (!strcmp(name, "bce_logw_weight")) l.kind = LOSS_BCE_LOGW, l.as_pos_weight = false;
    if (!strncmp(name, "focal", 5)) l.kind = LOSS_FOCAL;
    if (!strncmp(name, "asl", 3)) l.kind = LOSS_ASL;
    if (strstr(name, "_cb")) l.class_weights = cbw;
    return l;
}

static const char *const losses[] = {"bce",   "bce_logw", "bce_logw_weight", "focal",
                                     "asl",   "bce_cb",   "focal_cb",        "asl_cb"};

TestSuite(model, .init = setup, .fini = teardown);

Test(model, logits_match_transformers)
{
    const float *logits = run_forward();
    float *want = ref_f32("logits", NULL);
    double e = rel_err(logits, want, B * NL, 1.0);
    cr_log_info("logits: max error %.3g (relative to max(1, |logit|))", e);
    cr_expect_lt(e, 1e-5, "logits error %g", e);
    free(want);
}

static void label_counts(long *counts)
{
    const StTensor *t = st_find(&ref, "label_counts");
    cr_assert(t && t->dtype == ST_I64);
    int64_t c64[NL];
    memcpy(c64, t->data, sizeof c64);
    for (int i = 0; i < NL; i++) counts[i] = (long)c64[i];
}

Test(model, logw_weights_match)
{
    long counts[NL];
    label_counts(counts);
    int64_t n;
    memcpy(&n, st_find(&ref, "n_examples")->data, sizeof n);
    float w[NL], *want = ref_f32("logw", NULL);
    loss_logw_weights(w, counts, (long)n, NL);
    cr_expect_lt(rel_err(w, want, NL, 1.0), 1e-6);
    free(want);
}

/* The fixture's beta (metadata cb_beta) is 0.99. */
Test(model, class_balanced_weights_match)
{
    long counts[NL];
    label_counts(counts);
    float w[NL], *want = ref_f32("cbw", NULL);
    loss_class_balanced_weights(w, counts, NL, 0.99);
    cr_expect_lt(rel_err(w, want, NL, 1.0), 1e-6);
    free(want);
}

Test(model, losses_and_gradients_match_pytorch)
{
    float *targets = ref_f32("targets", NULL), *w = ref_f32("logw", NULL), *cbw = ref_f32("cbw", NULL);
    for (size_t k = 0; k < sizeof losses / sizeof *losses; k++) {
        const float *logits = run_forward();
        Loss loss = make_loss(losses[k], w, cbw);
        float dlogits[B * NL];
        float value = loss_forward(&loss, dlogits, logits, targets, B, NL, 1.0f);
        char name[256];
        snprintf(name, sizeof name, "loss.%s", losses[k]);
        float *want = ref_f32(name, NULL);
        double le = fabs(value - want[0]) / fabs(want[0]);
        cr_log_info("%s: loss %.8g, relative error %.3g", losses[k], value, le);
        cr_expect_lt(le, 1e-5, "%s loss %g vs %g", losses[k], value, want[0]);
        free(want);

        distilbert_zero_grad(&model);
        distilbert_backward(&model, dlogits);
        double worst = 0;
        for (int id = 0; id < P_COUNT; id++) {
            const ParamDef *d = &distilbert_params[id];
            for (int l = 0; l < (d->per_layer ? model.lay.cfg.n_layers : 1); l++) {
                char hf[200];
                snprintf(hf, sizeof hf, d->hf_name, l);
                snprintf(name, sizeof name, "grad.%s.%s", losses[k], hf);
                const ParamView *v = distilbert_view(&model, id, l);
                size_t n;
                float *g = ref_f32(name, &n);
                cr_assert_eq(n, v->n, "%s size", name);
                /* Floor 1e-4 (the smallest real gradient here is ~1e-2): k_lin.bias
                 * has an analytically zero gradient (softmax ignores a shift of a
                 * whole score row), so both sides hold only ~1e-9 rounding noise. */
                double e = rel_err(v->g, g, n, 1e-4);
                worst = fmax(worst, e);
                cr_expect_lt(e, 1e-4, "%s: error %g", name, e);
                free(g);
            }
        }
        cr_log_info("%s: worst gradient error %.3g (relative to each tensor's max)", losses[k],
                    worst);
    }
    free(targets);
    free(w);
    free(cbw);
}

Test(model, adamw_steps_match_pytorch)
{
    float *targets = ref_f32("targets", NULL), *want_losses = ref_f32("adamw.losses", NULL);
    float *want_norms = ref_f32("adamw.grad_norms", NULL);
    float lr = strtof(st_meta(&ref, "lr"), NULL), max_norm = strtof(st_meta(&ref, "max_norm"), NULL);
    long warmup = atol(st_meta(&ref, "warmup")), total = atol(st_meta(&ref, "total"));
    AdamW opt = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                 .weight_decay = strtof(st_meta(&ref, "weight_decay"), NULL)};
    Loss loss = make_loss("bce", NULL, NULL);
    AdamWState state;
    adamw_state_init(&state, model.lay.n_params);
    for (int step = 0; step < 3; step++) {
        const float *logits = run_forward();
        float dlogits[B * NL];
        float value = loss_forward(&loss, dlogits, logits, targets, B, NL, 1.0f);
        cr_expect_lt(fabs(value - want_losses[step]) / want_losses[step], 1e-5,
                     "step %d loss %g vs %g", step, value, want_losses[step]);
        distilbert_zero_grad(&model);
        distilbert_backward(&model, dlogits);
        float norm = distilbert_adamw_step(&model, &state, &opt, lr * lr_linear_schedule(step, warmup, total),
                                           max_norm);
        cr_expect_lt(fabs(norm - want_norms[step]) / want_norms[step], 1e-4, "step %d norm", step);
    }
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++) {
        const ParamDef *d = &distilbert_params[id];
        for (int l = 0; l < (d->per_layer ? model.lay.cfg.n_layers : 1); l++) {
            char hf[200], name[256];
            snprintf(hf, sizeof hf, d->hf_name, l);
            snprintf(name, sizeof name, "adamw.%s", hf);
            size_t n;
            float *p = ref_f32(name, &n);
            double e = rel_err(distilbert_view(&model, id, l)->p, p, n, 1.0);
            if (id == P_K_B) {
                /* Its gradient is rounding noise (see above), which Adam's
                 * normalisation turns into steps of up to lr in both
                 * implementations: only the bound is comparable. */
                cr_expect_leq(e, 3 * lr, "%s: error %g", name, e);
                free(p);
                continue;
            }
            worst = fmax(worst, e);
            cr_expect_lt(e, 1e-5, "%s: error %g", name, e);
            free(p);
        }
    }
    cr_log_info("adamw: worst parameter error after 3 steps %.3g", worst);
    adamw_state_free(&state);
    free(targets);
    free(want_losses);
    free(want_norms);
}

/* Trainer rounds warmup_ratio * steps up (math.ceil in Python gives these);
 * truncating gave 18 warmup steps where transformers takes 19 for the CPU
 * preset's 188 steps, and none at all for short runs. */
Test(model, warmup_steps_round_up_as_trainer)
{
    cr_expect_eq(lr_warmup_steps(0.1, 188), 19);
    cr_expect_eq(lr_warmup_steps(0.1, 5), 1);
    cr_expect_eq(lr_warmup_steps(0.1, 3), 1);
    cr_expect_eq(lr_warmup_steps(0.1, 180), 18);
    cr_expect_eq(lr_warmup_steps(0.06, 1000), 60);
    cr_expect_eq(lr_warmup_steps(0.0, 100), 0);
}

/* Training mode: dropout everywhere, masks recomputed by the backward from
 * (seed, step). The gradient must still be the derivative of the loss the
 * same forward computes: central differences (step 2e-3) on entries of every tensor. */
Test(model, train_mode_gradients_match_finite_differences)
{
    model.lay.cfg.dropout = model.lay.cfg.attention_dropout = model.lay.cfg.seq_classif_dropout = 0.2f;
    int32_t *ids = ref_i32("ids"), *mask = ref_i32("mask");
    float *targets = ref_f32("targets", NULL);
    Loss loss = make_loss("bce", NULL, NULL);
    float dlogits[B * NL];
    const float *logits = distilbert_forward(&model, ids, mask, B, T, &train_mode);
    loss_forward(&loss, dlogits, logits, targets, B, NL, 1.0f);
    distilbert_zero_grad(&model);
    distilbert_backward(&model, dlogits);
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++) {
        if (id == P_K_B) continue; /* analytically zero, see above */
        ParamView *v = distilbert_view(&model, id, 0);
        double scale = 1e-3;
        for (size_t i = 0; i < v->n; i++) scale = fmax(scale, fabs(v->g[i]));
        for (int j = 0; j < 3; j++) {
            /* the entry with the largest gradient, and two spread out */
            size_t i = 0;
            if (j == 0)
                for (size_t t = 1; t < v->n; t++) i = fabsf(v->g[t]) > fabsf(v->g[i]) ? t : i;
            else
                i = (v->n * j) / 3;
            float keep = v->p[i], h = 2e-3f;
            v->p[i] = keep + h;
            double fp = loss_forward(&loss, NULL, distilbert_forward(&model, ids, mask, B, T, &train_mode), targets, B, NL, 1.0f);
            v->p[i] = keep - h;
            double fm = loss_forward(&loss, NULL, distilbert_forward(&model, ids, mask, B, T, &train_mode), targets, B, NL, 1.0f);
            v->p[i] = keep;
            double e = fabs((fp - fm) / (2 * h) - v->g[i]) / scale;
            worst = fmax(worst, e);
            cr_expect_lt(e, 1e-2, "%s[%zu]: fd %g analytic %g", distilbert_params[id].name, i,
                         (fp - fm) / (2 * h), v->g[i]);
        }
    }
    cr_log_info("train mode: worst finite-difference error %.3g of each tensor's gradient scale",
                worst);
    free(ids);
    free(mask);
    free(targets);
}

/* cls_only (the last block for the [CLS] rows alone), in training mode
 * with dropout everywhere: the logits and every gradient of every layer are
 * the full forward's, up to float rounding. */
Test(model, cls_only_matches_the_full_forward)
{
    model.lay.cfg.dropout = model.lay.cfg.attention_dropout = model.lay.cfg.seq_classif_dropout = 0.2f;
    int32_t *ids = ref_i32("ids"), *mask = ref_i32("mask");
    float *targets = ref_f32("targets", NULL), dlogits[B * NL], want_logits[B * NL];
    float *want = malloc(model.lay.n_params * sizeof(float));
    Loss loss = make_loss("bce", NULL, NULL);
    for (int pass = 0; pass < 2; pass++) {
        ForwardArgs fa = train_mode;
        fa.cls_only = pass == 1;
        const float *logits = distilbert_forward(&model, ids, mask, B, T, &fa);
        cr_assert(logits, "%s", err_msg());
        loss_forward(&loss, dlogits, logits, targets, B, NL, 1.0f);
        distilbert_zero_grad(&model);
        distilbert_backward(&model, dlogits);
        if (pass == 0) {
            memcpy(want_logits, logits, sizeof want_logits);
            memcpy(want, model.grads, model.lay.n_params * sizeof(float));
            continue;
        }
        double e = rel_err(logits, want_logits, B * NL, 1.0), worst = 0;
        cr_expect_lt(e, 1e-6, "logits error %g", e);
        cr_expect_null(distilbert_hidden(&model));
        for (int id = 0; id < P_COUNT; id++)
            for (int l = 0; l < (distilbert_params[id].per_layer ? model.lay.cfg.n_layers : 1); l++) {
                if (id == P_K_B) continue; /* analytically zero: rounding noise on both sides */
                ParamView *v = distilbert_view(&model, id, l);
                e = rel_err(v->g, want + (v->g - model.grads), v->n, 1e-4);
                worst = fmax(worst, e);
                cr_expect_lt(e, 1e-5, "%s layer %d: error %g", distilbert_params[id].name, l, e);
            }
        cr_log_info("cls_only: worst gradient error %.3g", worst);
    }
    free(ids);
    free(mask);
    free(targets);
    free(want);
}

/* Gradient accumulation: micro-batches of 2 and 1 rows, each loss scaled by
 * its share of the batch, sum to the full batch's gradient. */
Test(model, accumulated_micro_batches_equal_the_full_batch)
{
    int32_t *ids = ref_i32("ids"), *mask = ref_i32("mask");
    float *targets = ref_f32("targets", NULL), dlogits[B * NL];
    Loss loss = make_loss("bce", NULL, NULL);
    loss_forward(&loss, dlogits, run_forward(), targets, B, NL, 1.0f);
    distilbert_zero_grad(&model);
    distilbert_backward(&model, dlogits);
    float *full = malloc(model.lay.n_params * sizeof(float));
    memcpy(full, model.grads, model.lay.n_params * sizeof(float));
    distilbert_zero_grad(&model);
    const int rows[2][2] = {{0, 2}, {2, 1}}; /* first row, row count */
    for (int k = 0; k < 2; k++) {
        int r0 = rows[k][0], n = rows[k][1];
        const float *logits = distilbert_forward(&model, ids + r0 * T, mask + r0 * T, n, T, &eval_mode);
        loss_forward(&loss, dlogits, logits, targets + r0 * NL, n, NL, (float)n / B);
        distilbert_backward(&model, dlogits);
    }
    double e = rel_err(model.grads, full, model.lay.n_params, 1e-4);
    cr_log_info("accumulation: error %.3g", e);
    cr_expect_lt(e, 1e-5, "accumulated gradient error %g", e);
    free(full);
    free(ids);
    free(mask);
    free(targets);
}
