/* The dropout-on reference (tests/fixtures/tiny_distilbert_dropout_ref.safetensors):
 * HuggingFace's DistilBERT run in training mode with genre's own dropout
 * masks in place of PyTorch's (tests/reference/make_dropout_fixture.py,
 * masks exported by build/tests/dropout-masks), and check_backend, which
 * drives a backend through models/backend.h alone and requires the
 * fixture's logits, loss (1e-5) and every parameter gradient of every
 * layer (1e-4, relative to each tensor's scale) for the fixture's (seed,
 * key), with the full forward and with cls_only (the last block for the
 * [CLS] rows alone, as training runs it). Included by one test file per
 * binary: tests/model/test_dropout_ref.c (the masks, the CPU backend) and
 * tests/sim/test_dropout_ref.c (the CUDA backend in the simulator). */
#ifndef GENRE_TESTS_DROPOUT_REF_H
#define GENRE_TESTS_DROPOUT_REF_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/io/safetensors.h"
#include "src/ops/loss.h"
#include "tests/model/dropout_sites.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"
#define REF "tests/fixtures/tiny_distilbert_dropout_ref.safetensors"

static StFile ref;
static ModelWeights w; /* the tiny model with the fixture's dropout probabilities */
static uint64_t seed, key;

static float meta_float(const char *name)
{
    const char *v = st_meta(&ref, name);
    cr_assert(v, "%s: metadata %s missing", REF, name);
    return strtof(v, NULL);
}

static void setup(void)
{
    cr_assert_eq(st_open(&ref, REF), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load(&w, TINY, 0, 0), 0, "%s", err_msg());
    DistilBertConfig *c = &w.lay.cfg;
    c->dropout = meta_float("dropout");
    c->attention_dropout = meta_float("attention_dropout");
    c->seq_classif_dropout = meta_float("seq_classif_dropout");
    cr_assert(c->dropout > 0 && c->attention_dropout > 0 && c->seq_classif_dropout > 0);
    cr_assert(st_meta(&ref, "seed") && st_meta(&ref, "key"), "%s: seed or key missing", REF);
    seed = strtoull(st_meta(&ref, "seed"), NULL, 10);
    key = strtoull(st_meta(&ref, "key"), NULL, 10);
}

static void teardown(void)
{
    weights_free(&w);
    st_close(&ref);
}

static const StTensor *tensor(const char *name)
{
    const StTensor *t = st_find(&ref, name);
    cr_assert(t, "%s: %s missing", REF, name);
    return t;
}

static float *ref_f32(const char *name, size_t n)
{
    const StTensor *t = tensor(name);
    cr_assert_eq(t->numel, n, "%s: %zu elements, expected %zu", name, t->numel, n);
    float *x = malloc(n * sizeof *x);
    cr_assert_eq(st_read_f32(&ref, t, x, n), 0, "%s", err_msg());
    return x;
}

static int32_t *ref_i32(const char *name, int *B, int *T)
{
    const StTensor *t = tensor(name);
    cr_assert(t->dtype == ST_I32 && t->ndim == 2, "%s: not a 2-d I32 tensor", name);
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    int32_t *x = malloc(t->nbytes);
    memcpy(x, t->data, t->nbytes);
    return x;
}

/* Logits, loss and every gradient of every layer of the backend on
 * `device`, for the full forward (pass 0) and cls_only (pass 1).
 * grads_to_host copies n floats of the backend's gradients (backend_grads:
 * device memory on a GPU) to host memory. */
static void check_backend(const char *device, void (*grads_to_host)(float *dst, const float *src, size_t n))
{
    int B, T;
    int32_t *ids = ref_i32("ids", &B, &T), *mask = ref_i32("mask", &B, &T);
    int NL = w.lay.cfg.num_labels;
    float *targets = ref_f32("targets", (size_t)B * NL), *want = ref_f32("logits", (size_t)B * NL);
    float *want_loss = ref_f32("loss.bce", 1), *logits = malloc((size_t)B * NL * sizeof *logits);
    Backend *be = backend_open(device, &w);
    cr_assert(be, "%s", err_msg());
    Loss loss = {.kind = LOSS_BCE};
    cr_assert_eq(backend_set_loss(be, &loss), 0, "%s", err_msg());
    const ModelLayout *lay = backend_layout(be);
    int in_fixture = 0;
    for (int i = 0; i < ref.n_tensors; i++) in_fixture += strncmp(ref.tensors[i].name, "grad.", 5) == 0;
    for (int pass = 0; pass < 2; pass++) {
        char how[64];
        snprintf(how, sizeof how, "%s, %s", device, pass ? "cls_only" : "full forward");
        const ForwardArgs fa = {.train = true, .seed = seed, .key = key, .cls_only = pass == 1};
        cr_assert_eq(backend_zero_grad(be), 0, "%s", err_msg());
        cr_assert_eq(backend_forward(be, ids, mask, B, T, &fa), 0, "%s: %s", how, err_msg());
        cr_assert_eq(backend_logits(be, logits), 0, "%s", err_msg());
        double e = rel_err(logits, want, (size_t)B * NL, 1.0);
        cr_log_info("dropout on, %s: logits error %.3g", how, e);
        cr_expect_lt(e, 1e-5, "%s: logits error %g", how, e);
        float value;
        cr_assert_eq(backend_loss_backward(be, targets, 1.0f, &value), 0, "%s: %s", how, err_msg());
        cr_expect_lt(fabs(value - want_loss[0]) / fabs(want_loss[0]), 1e-5, "%s: loss %.8g vs %.8g", how,
                     value, want_loss[0]);
        size_t n;
        const float *dev = backend_grads(be, &n);
        cr_assert_eq(n, lay->n_params);
        float *grads = malloc(n * sizeof *grads);
        grads_to_host(grads, dev, n);
        double worst = 0;
        int checked = 0;
        for (int id = 0; id < P_COUNT; id++)
            for (int l = 0; l < layout_copies(lay, id); l++) {
                char hf[200], name[240];
                snprintf(hf, sizeof hf, distilbert_params[id].hf_name, l);
                snprintf(name, sizeof name, "grad.%s", hf);
                const ParamSlot *s = layout_slot(lay, id, l);
                float *g = ref_f32(name, s->n);
                /* Floor 1e-4: k_lin.bias's gradient is analytically zero
                 * (dropout after the softmax does not change that), so both
                 * sides hold rounding noise; see test_model.c. */
                double ge = rel_err(grads + s->off, g, s->n, 1e-4);
                worst = fmax(worst, ge);
                cr_expect_lt(ge, 1e-4, "%s: %s error %g", how, name, ge);
                free(g);
                checked++;
            }
        cr_expect_eq(checked, in_fixture, "%d gradients compared, the fixture has %d", checked, in_fixture);
        cr_log_info("dropout on, %s: worst gradient error %.3g over %d tensors", how, worst, checked);
        free(grads);
    }
    backend_close(be);
    free(ids), free(mask), free(targets), free(want), free(want_loss), free(logits);
}

#endif
