/* The backend interface (models/backend.h) on every device, as ggml's
 * test-backend-ops: a whole training step driven through it against
 * PyTorch's three AdamW steps, the host copies in and out, bad batches,
 * and the dropout-key rule that lets accumulation and ranks be exchanged.
 * Built into genre-tests on the CPU and into backend-sim (the simulated
 * CUDA runtime, CUDASIM) on cuda, as suite backend_cuda. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/io/safetensors.h"
#include "src/train/schedule.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"
#define REF "tests/fixtures/tiny_distilbert_ref.safetensors"
#define B 3
#define T 8
#define NL 5

#ifdef CUDASIM
#define DEVICE "cuda"
#define SUITE backend_cuda
#else
#define DEVICE "cpu"
#define SUITE backend
#endif

static StFile ref;
static ModelWeights w;

static void setup(void)
{
    cr_assert_eq(st_open(&ref, REF), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load(&w, TINY, 0, 0), 0, "%s", err_msg());
}

static void teardown(void)
{
    weights_free(&w);
    st_close(&ref);
}

static void *ref_data(const char *name)
{
    const StTensor *t = st_find(&ref, name);
    cr_assert(t, "fixture %s missing", name);
    void *x = malloc(t->nbytes);
    if (t->dtype == ST_F32 || t->dtype == ST_I32) memcpy(x, t->data, t->nbytes);
    else cr_assert_fail("fixture %s: unexpected dtype", name);
    return x;
}

static Backend *open_dev(const ModelWeights *weights)
{
    Backend *be = backend_open(DEVICE, weights);
    cr_assert(be, "%s", err_msg());
    cr_assert_eq(backend_reserve(be, B, T), 0, "%s", err_msg());
    return be;
}

TestSuite(SUITE, .init = setup, .fini = teardown);

/* Three steps of forward, loss, backward and AdamW with warmup and
 * clipping, through the interface alone: the losses, gradient norms and
 * final parameters of PyTorch's run. */
Test(SUITE, training_steps_match_pytorch)
{
    int32_t *ids = ref_data("ids"), *mask = ref_data("mask");
    float *targets = ref_data("targets"), *want_losses = ref_data("adamw.losses");
    float *want_norms = ref_data("adamw.grad_norms");
    float lr = strtof(st_meta(&ref, "lr"), NULL), max_norm = strtof(st_meta(&ref, "max_norm"), NULL);
    long warmup = atol(st_meta(&ref, "warmup")), total = atol(st_meta(&ref, "total"));
    AdamW opt = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                 .weight_decay = strtof(st_meta(&ref, "weight_decay"), NULL)};
    Backend *be = open_dev(&w);
    Loss loss = {.kind = LOSS_BCE};
    cr_assert_eq(backend_set_loss(be, &loss), 0);
    const ForwardArgs eval = {.train = false};
    for (int step = 0; step < 3; step++) {
        float value, norm;
        cr_assert_eq(backend_zero_grad(be), 0);
        cr_assert_eq(backend_forward(be, ids, mask, B, T, &eval), 0, "%s", err_msg());
        cr_assert_eq(backend_loss_backward(be, targets, 1.0f, &value), 0, "%s", err_msg());
        cr_assert_eq(backend_step(be, &opt, lr * lr_linear_schedule(step, warmup, total), max_norm, &norm), 0);
        cr_expect_lt(fabs(value - want_losses[step]) / want_losses[step], 1e-5, "step %d loss %g vs %g", step,
                     value, want_losses[step]);
        cr_expect_lt(fabs(norm - want_norms[step]) / want_norms[step], 1e-4, "step %d norm %g vs %g", step, norm,
                     want_norms[step]);
    }
    float *params = malloc(w.lay.n_params * sizeof(float));
    cr_assert_eq(backend_get_params(be, params), 0);
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&w.lay, id); l++) {
            if (id == P_K_B) continue; /* rounding noise amplified by Adam (test_model.c) */
            char hf[200], name[256];
            snprintf(hf, sizeof hf, distilbert_params[id].hf_name, l);
            snprintf(name, sizeof name, "adamw.%s", hf);
            float *want = ref_data(name);
            const ParamSlot *s = layout_slot(&w.lay, id, l);
            double e = rel_err(params + s->off, want, s->n, 1.0);
            worst = fmax(worst, e);
            cr_expect_lt(e, 1e-5, "%s: error %g", name, e);
            free(want);
        }
    cr_log_info("backend: worst parameter error after 3 steps %.3g", worst);
    AdamWState st;
    adamw_state_init(&st, w.lay.n_params);
    cr_assert_eq(backend_get_optimizer(be, &st), 0);
    cr_expect_eq(st.t, 3);
    adamw_state_free(&st);
    free(params);
    backend_close(be);
    free(ids), free(mask), free(targets), free(want_losses), free(want_norms);
}

/* What goes in comes out: parameters and optimizer state round-trip through
 * host memory, a backend opened on the copies continues identically, and
 * the flat gradient view is the gradient the step uses. */
Test(SUITE, host_copies_round_trip_and_resume_the_same_step)
{
    int32_t *ids = ref_data("ids"), *mask = ref_data("mask");
    float *targets = ref_data("targets");
    AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    Loss loss = {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f};
    const ForwardArgs fa = {.train = true, .seed = 9, .key = 1};
    Backend *a = open_dev(&w);
    cr_assert_eq(backend_set_loss(a, &loss), 0);
    float l, norm;
    cr_assert_eq(backend_forward(a, ids, mask, B, T, &fa), 0);
    cr_assert_eq(backend_loss_backward(a, targets, 1.0f, &l), 0);
    size_t n;
    backend_grads(a, &n);
    cr_assert_eq(n, w.lay.n_params);
    float *g = malloc(n * sizeof(float));
    cr_assert_eq(backend_get_grads(a, g), 0, "%s", err_msg());
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    cr_assert_eq(backend_step(a, &opt, 1e-3f, 0.0f, &norm), 0);
    cr_expect_eq(norm, 0.0f, "no clipping asked: no norm");

    /* A second backend from a's state continues exactly as a does. */
    ModelWeights copy;
    cr_assert_eq(weights_init(&copy, &w.lay.cfg), 0);
    cr_assert_eq(backend_get_params(a, copy.params), 0);
    AdamWState st;
    adamw_state_init(&st, n);
    cr_assert_eq(backend_get_optimizer(a, &st), 0);
    Backend *b = open_dev(&copy);
    cr_assert_eq(backend_set_optimizer(b, &st), 0);
    cr_assert_eq(backend_set_loss(b, &loss), 0);
    float out[2][B * NL];
    Backend *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(backend_zero_grad(both[k]), 0);
        cr_assert_eq(backend_forward(both[k], ids, mask, B, T, &fa), 0);
        cr_assert_eq(backend_loss_backward(both[k], targets, 1.0f, &l), 0);
        cr_assert_eq(backend_step(both[k], &opt, 1e-3f, 1.0f, &norm), 0);
        cr_assert_eq(backend_forward(both[k], ids, mask, B, T, &fa), 0);
        cr_assert_eq(backend_logits(both[k], out[k]), 0);
    }
    cr_expect_eq(memcmp(out[0], out[1], sizeof out[0]), 0, "a copied backend continues differently");
    cr_expect(ss > 0, "the gradient view is empty");
    free(g);

    /* cls_only keeps no hidden states, and says so. */
    float *h = malloc((size_t)B * T * w.lay.cfg.dim * sizeof(float));
    const ForwardArgs cls = {.cls_only = true};
    cr_assert_eq(backend_forward(a, ids, mask, B, T, &cls), 0);
    cr_expect_eq(backend_hidden(a, h), -1);
    cr_expect(strstr(err_msg(), "cls_only") != NULL, "%s", err_msg());
    AdamWState wrong;
    adamw_state_init(&wrong, n - 1);
    cr_expect_eq(backend_set_optimizer(a, &wrong), -1);
    cr_expect(strstr(err_msg(), "optimizer state of") != NULL, "%s", err_msg());
    adamw_state_free(&wrong);
    free(h);
    adamw_state_free(&st);
    weights_free(&copy);
    backend_close(a);
    backend_close(b);
    free(ids), free(mask), free(targets);
}

/* A bad batch is an error that names the value, not a crash. */
Test(SUITE, bad_batches_are_errors)
{
    Backend *be = open_dev(&w);
    int32_t ids[2] = {2, 1 << 20}, mask[2] = {1, 1};
    const ForwardArgs eval = {0};
    cr_expect_eq(backend_forward(be, ids, mask, 1, 2, &eval), -1);
    cr_expect(strstr(err_msg(), "token id 1048576 outside the vocabulary") != NULL, "%s", err_msg());
    float l, t[NL] = {0};
    cr_expect_eq(backend_loss_backward(be, t, 1.0f, &l), -1, "a backward without a forward");
    backend_close(be);
    cr_expect_null(backend_open("tpu", &w));
    cr_expect(strstr(err_msg(), "device 'tpu': unknown") != NULL, "%s", err_msg());
}

/* The dropout key of a micro-batch is its global index: one rank with
 * accumulation 2 and two ranks with accumulation 1 give each micro-batch the
 * same key, every micro-batch of a run a different one; the gradients one
 * backend accumulates equal, bit for bit, the sum of the ranks' (what the
 * all-reduce of two ranks computes). */
Test(SUITE, one_rank_accumulating_two_equals_two_ranks)
{
    for (uint64_t k = 1; k < 200; k++) {
        cr_expect_neq(dropout_key((long)k, 3, 0), dropout_key((long)k - 1, 3, 2));
        cr_expect_eq(dropout_key((long)k, 3, 0), dropout_key((long)k - 1, 3, 2) + 1, "keys are consecutive");
    }

    /* Micro-batches: rows 0-1 and row 2 of the fixture batch, dropout on. */
    w.lay.cfg.dropout = w.lay.cfg.attention_dropout = w.lay.cfg.seq_classif_dropout = 0.2f;
    int32_t *ids = ref_data("ids"), *mask = ref_data("mask");
    float *targets = ref_data("targets");
    const int rows[2][2] = {{0, 2}, {2, 1}};
    Loss loss = {.kind = LOSS_BCE};
    const long step = 7;
    float l;
    Backend *one = open_dev(&w);
    cr_assert_eq(backend_set_loss(one, &loss), 0);
    for (int a = 0; a < 2; a++) {
        ForwardArgs fa = {.train = true, .seed = 5, .key = dropout_key(step, 2, a)};
        cr_assert_eq(backend_forward(one, ids + rows[a][0] * T, mask + rows[a][0] * T, rows[a][1], T, &fa), 0);
        cr_assert_eq(backend_loss_backward(one, targets + rows[a][0] * NL, 0.5f, &l), 0);
    }
    size_t n = w.lay.n_params;
    float *g1 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *sum = calloc(n, sizeof(float));
    cr_assert_eq(backend_get_grads(one, g1), 0, "%s", err_msg());
    for (int r = 0; r < 2; r++) { /* each rank its own backend; the all-reduce is this sum */
        Backend *rank = open_dev(&w);
        cr_assert_eq(backend_set_loss(rank, &loss), 0);
        ForwardArgs fa = {.train = true, .seed = 5, .key = dropout_key(step, 2, r)};
        cr_assert_eq(backend_forward(rank, ids + rows[r][0] * T, mask + rows[r][0] * T, rows[r][1], T, &fa), 0);
        cr_assert_eq(backend_loss_backward(rank, targets + rows[r][0] * NL, 0.5f, &l), 0);
        cr_assert_eq(backend_get_grads(rank, g), 0, "%s", err_msg());
        for (size_t i = 0; i < n; i++) sum[i] = r ? sum[i] + g[i] : g[i];
        backend_close(rank);
    }
    cr_expect_eq(memcmp(sum, g1, n * sizeof(float)), 0, "1 rank x accumulation 2 and 2 ranks x 1: gradients differ by %g",
                 rel_err(sum, g1, n, 1e-4));

    /* The masks matter: another key for the second micro-batch moves the gradient. */
    Backend *other = open_dev(&w);
    cr_assert_eq(backend_set_loss(other, &loss), 0);
    for (int a = 0; a < 2; a++) {
        ForwardArgs fa = {.train = true, .seed = 5, .key = dropout_key(step, 2, 0)};
        cr_assert_eq(backend_forward(other, ids + rows[a][0] * T, mask + rows[a][0] * T, rows[a][1], T, &fa), 0);
        cr_assert_eq(backend_loss_backward(other, targets + rows[a][0] * NL, 0.5f, &l), 0);
    }
    cr_assert_eq(backend_get_grads(other, g), 0, "%s", err_msg());
    cr_expect_gt(rel_err(g, g1, n, 1e-4), 1e-3, "the key does not reach the masks");
    backend_close(other);
    backend_close(one);
    free(sum), free(g), free(g1), free(ids), free(mask), free(targets);
}
