/* The CUDA backend against the CPU backend, in the simulated CUDA runtime
 * (built into build/tests/backend-sim only): the same weights, batches and
 * dropout keys give the same logits, losses, gradients of every tensor of
 * every layer and AdamW steps, with dropout on at every site, in both the
 * full and the [CLS]-only forward; bitwise repeatable gradients; the final
 * hidden states embed reads. PyTorch's three AdamW steps on cuda are
 * tests/model/test_backend.c, built here as suite backend_cuda. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_common.h"
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

static StFile ref;
static ModelWeights w;
static int32_t ids[B * T], mask[B * T];
static float targets[B * NL];

static void read_ref(const char *name, void *dst, size_t bytes)
{
    const StTensor *t = st_find(&ref, name);
    cr_assert(t && t->nbytes == bytes, "fixture %s missing or of another size", name);
    memcpy(dst, t->data, bytes);
}

static void setup(void)
{
    cr_assert_eq(st_open(&ref, REF), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load(&w, TINY, 0, 0), 0, "%s", err_msg());
    read_ref("ids", ids, sizeof ids);
    read_ref("mask", mask, sizeof mask);
    read_ref("targets", targets, sizeof targets);
    w.lay.cfg.dropout = w.lay.cfg.attention_dropout = w.lay.cfg.seq_classif_dropout = 0.2f;
}

static void teardown(void)
{
    weights_free(&w);
    st_close(&ref);
}

static Backend *open_on(const char *device, const Loss *loss)
{
    Backend *be = backend_open(device, &w);
    cr_assert(be, "%s: %s", device, err_msg());
    cr_assert_eq(backend_reserve(be, B, T), 0, "%s", err_msg());
    cr_assert_eq(backend_set_loss(be, loss), 0, "%s", err_msg());
    return be;
}

/* What one backend computed in a step, read back to the host. */
typedef struct {
    float logits[B * NL], loss, norm;
    float *grads, *params;
} StepOut;

static void step(Backend *be, const ForwardArgs *fa, StepOut *o, bool update)
{
    AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    cr_assert_eq(backend_zero_grad(be), 0, "%s", err_msg());
    cr_assert_eq(backend_forward(be, ids, mask, B, T, fa), 0, "%s", err_msg());
    cr_assert_eq(backend_logits(be, o->logits), 0, "%s", err_msg());
    cr_assert_eq(backend_loss_backward(be, targets, 1.0f, &o->loss), 0, "%s", err_msg());
    size_t n = w.lay.n_params;
    o->grads = malloc(n * sizeof(float));
    o->params = malloc(n * sizeof(float));
    if (update) cr_assert_eq(backend_step(be, &opt, 1e-3f, 1.0f, &o->norm), 0, "%s", err_msg());
    cr_assert_eq(backend_get_params(be, o->params), 0, "%s", err_msg());
}

/* The gradients, from the backend's memory: device memory on cuda, read
 * with cudaMemcpy as any device data. */
static void grads_to_host(Backend *be, bool on_device, float *out)
{
    size_t n;
    const float *g = backend_grads(be, &n);
    if (on_device) cr_assert_eq(cudaMemcpy(out, g, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    else memcpy(out, g, n * sizeof(float));
}

static void compare_step(const char *what, const ForwardArgs *fa, const Loss *loss)
{
    Backend *cpu = open_on("cpu", loss), *gpu = open_on("cuda", loss);
    StepOut a = {0}, b = {0};
    step(cpu, fa, &a, false);
    step(gpu, fa, &b, false);
    grads_to_host(cpu, false, a.grads);
    grads_to_host(gpu, true, b.grads);
    double le = rel_err(b.logits, a.logits, B * NL, 1.0), lo = fabs(b.loss - a.loss) / fabs(a.loss);
    cr_expect_lt(le, 1e-5, "%s: logits differ by %g", what, le);
    cr_expect_lt(lo, 1e-5, "%s: loss %g vs %g", what, b.loss, a.loss);
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&w.lay, id); l++) {
            if (id == P_K_B) continue; /* analytically zero: rounding noise on both sides */
            const ParamSlot *s = layout_slot(&w.lay, id, l);
            double e = rel_err(b.grads + s->off, a.grads + s->off, s->n, 1e-4);
            worst = fmax(worst, e);
            cr_expect_lt(e, 1e-5, "%s: gradient of %s layer %d differs by %g", what, distilbert_params[id].name, l, e);
        }
    /* Three AdamW steps from there. */
    AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    for (int k = 0; k < 3; k++) {
        float na, nb;
        cr_assert_eq(backend_step(cpu, &opt, 1e-3f, 1.0f, &na), 0);
        cr_assert_eq(backend_step(gpu, &opt, 1e-3f, 1.0f, &nb), 0, "%s", err_msg());
        cr_expect_lt(fabs(na - nb) / na, 1e-5, "%s: step %d gradient norm %g vs %g", what, k, nb, na);
        if (k < 2) {
            float l1, l2;
            cr_assert_eq(backend_zero_grad(cpu) || backend_zero_grad(gpu), 0);
            cr_assert_eq(backend_forward(cpu, ids, mask, B, T, fa) || backend_forward(gpu, ids, mask, B, T, fa), 0);
            cr_assert_eq(backend_loss_backward(cpu, targets, 1.0f, &l1), 0);
            cr_assert_eq(backend_loss_backward(gpu, targets, 1.0f, &l2), 0, "%s", err_msg());
        }
    }
    cr_assert_eq(backend_get_params(cpu, a.params) || backend_get_params(gpu, b.params), 0);
    double pe = 0;
    const char *pe_at = "";
    int pe_layer = 0;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&w.lay, id); l++) {
            const ParamSlot *s = layout_slot(&w.lay, id, l);
            double e = rel_err(b.params + s->off, a.params + s->off, s->n, 1.0);
            /* k_lin.bias: Adam turns its rounding-noise gradient into steps of
             * up to lr either way (tests/model/test_model.c); only the bound holds. */
            if (id == P_K_B) cr_expect_leq(e, 3 * 1e-3, "%s: k_b layer %d moved %g", what, l, e);
            else if (e > pe) pe = e, pe_at = distilbert_params[id].name, pe_layer = l;
        }
    /* At most 1% of the 3 lr that three AdamW steps can move a parameter:
     * Adam scales each element's step to about lr whatever its gradient, so
     * elements whose gradient is near rounding noise (k_w's and o_w's
     * under the asymmetric loss, with the fused attention's online softmax
     * rounding apart from the CPU's three passes) differ by more than their
     * gradients do. The gradients above hold to 1e-5. */
    cr_expect_lt(pe, 0.01 * 3 * 1e-3, "%s: parameters after 3 steps differ by %g (%s layer %d)", what, pe, pe_at,
                 pe_layer);
    cr_log_info("%s: logits %.2g, loss %.2g, worst gradient %.2g, parameters after 3 steps %.2g", what, le, lo, worst,
                pe);
    free(a.grads), free(a.params), free(b.grads), free(b.params);
    backend_close(cpu);
    backend_close(gpu);
}

TestSuite(parity, .init = setup, .fini = teardown, .timeout = 600);

Test(parity, every_loss_with_dropout_on_matches_the_cpu)
{
    float logw[NL];
    read_ref("logw", logw, sizeof logw);
    /* Near 1: weights as uneven as logw's (0.1 to 2) leave elements of ff2_w
     * whose gradient is 1e-4 of its tensor's largest, and Adam turns their
     * rounding differences into steps that differ by 10% of lr. */
    static const float class_w[NL] = {0.8f, 1.2f, 0.9f, 1.1f, 1.05f};
    const Loss losses[] = {
        {.kind = LOSS_BCE},
        {.kind = LOSS_BCE_LOGW, .weights = logw, .as_pos_weight = true},
        {.kind = LOSS_BCE_LOGW, .weights = logw, .as_pos_weight = false},
        {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f},
        {.kind = LOSS_ASL, .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f},
        {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f, .class_weights = class_w},
        {.kind = LOSS_ASL, .gamma_pos = 1.0f, .gamma_neg = 4.0f, .clip = 0.05f, .class_weights = class_w},
    };
    const char *names[] = {"bce", "bce_logw", "bce_logw_weight", "focal", "asl", "focal class-weighted",
                           "asl class-weighted"};
    for (int k = 0; k < 7; k++)
        for (int cls = 0; cls < 2; cls++) {
            ForwardArgs fa = {.train = true, .seed = 11, .key = 3 + (uint64_t)k, .cls_only = cls};
            char what[64];
            snprintf(what, sizeof what, "%s, %s", names[k], cls ? "[CLS]-only last block" : "full forward");
            compare_step(what, &fa, &losses[k]);
        }
}

Test(parity, eval_hidden_states_match_the_cpu)
{
    const ForwardArgs eval = {.cls_only = false};
    Loss loss = {.kind = LOSS_BCE};
    Backend *cpu = open_on("cpu", &loss), *gpu = open_on("cuda", &loss);
    float *h[2];
    Backend *both[2] = {cpu, gpu};
    for (int k = 0; k < 2; k++) {
        h[k] = malloc((size_t)B * T * w.lay.cfg.dim * sizeof(float));
        cr_assert_eq(backend_forward(both[k], ids, mask, B, T, &eval), 0, "%s", err_msg());
        cr_assert_eq(backend_hidden(both[k], h[k]), 0, "%s", err_msg());
    }
    double e = rel_err(h[1], h[0], (size_t)B * T * w.lay.cfg.dim, 1.0);
    cr_expect_lt(e, 1e-5, "hidden states differ by %g", e);
    const ForwardArgs cls = {.cls_only = true};
    cr_assert_eq(backend_forward(gpu, ids, mask, B, T, &cls), 0);
    cr_expect_eq(backend_hidden(gpu, h[1]), -1, "cls_only kept hidden states on cuda");
    free(h[0]), free(h[1]);
    backend_close(cpu);
    backend_close(gpu);
}

/* The hidden states of a bf16 forward come back as the bf16 activations
 * widened exactly (each value's low 16 bits zero), near the CPU's fp32
 * ones (the bound of bf16_forward_and_gradients_track_fp32's logits). */
Test(parity, bf16_hidden_states_are_the_bf16_activations_widened)
{
    const ForwardArgs eval = {.cls_only = false};
    Loss loss = {.kind = LOSS_BCE};
    Backend *cpu = open_on("cpu", &loss), *gpu = open_on("cuda", &loss);
    cr_assert_eq(backend_set_precision(gpu, PRECISION_BF16), 0, "%s", err_msg());
    size_t n = (size_t)B * T * w.lay.cfg.dim;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    cr_assert_eq(backend_forward(cpu, ids, mask, B, T, &eval) || backend_hidden(cpu, a), 0, "%s", err_msg());
    cr_assert_eq(backend_forward(gpu, ids, mask, B, T, &eval) || backend_hidden(gpu, b), 0, "%s", err_msg());
    size_t wide = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &b[i], sizeof u);
        wide += (u & 0xffffu) != 0;
    }
    cr_expect_eq(wide, 0, "%zu of %zu hidden values are not bf16 values", wide, n);
    double e = rel_err(b, a, n, 1.0);
    cr_expect_gt(e, 1e-5, "bf16 hidden states %g from fp32's: bf16 not in use", e);
    cr_expect_lt(e, 4e-2, "bf16 hidden states differ from fp32's by %g", e);
    cr_log_info("bf16 hidden states: %.3g from the CPU's fp32", e);
    free(a), free(b);
    backend_close(cpu);
    backend_close(gpu);
}

/* No atomics anywhere: the same inputs give the same bits, every run. */
Test(parity, cuda_gradients_are_bitwise_repeatable)
{
    Loss loss = {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f};
    ForwardArgs fa = {.train = true, .seed = 5, .key = 9, .cls_only = true};
    size_t n = w.lay.n_params;
    float *g[2];
    for (int k = 0; k < 2; k++) {
        Backend *gpu = open_on("cuda", &loss);
        StepOut o = {0};
        step(gpu, &fa, &o, false);
        g[k] = o.grads;
        grads_to_host(gpu, true, g[k]);
        free(o.params);
        backend_close(gpu);
    }
    cr_expect_eq(memcmp(g[0], g[1], n * sizeof(float)), 0, "two identical cuda steps differ");
    free(g[0]), free(g[1]);
}

/* tf32: the GEMMs round their inputs to TF32's 10 mantissa bits, so the
 * logits move off the CPU's by about 2^-11 relative (not the fp32 path's
 * 1e-5) and stay within 1e-2 of them; the CPU backend refuses it. */
Test(parity, tf32_gemms_round_their_inputs)
{
    Loss loss = {.kind = LOSS_BCE};
    const ForwardArgs eval = {.cls_only = true};
    Backend *cpu = open_on("cpu", &loss), *gpu = open_on("cuda", &loss);
    cr_expect_eq(backend_set_precision(cpu, PRECISION_TF32), -1, "the CPU backend took tf32");
    cr_expect_eq(backend_set_precision(cpu, PRECISION_BF16), -1, "the CPU backend took bf16");
    cr_assert_eq(backend_set_precision(gpu, PRECISION_TF32), 0, "%s", err_msg());
    float a[B * NL], b[B * NL];
    cr_assert_eq(backend_forward(cpu, ids, mask, B, T, &eval) || backend_logits(cpu, a), 0, "%s", err_msg());
    cr_assert_eq(backend_forward(gpu, ids, mask, B, T, &eval) || backend_logits(gpu, b), 0, "%s", err_msg());
    double e = rel_err(b, a, B * NL, 1.0);
    cr_expect_gt(e, 1e-5, "tf32 logits %g from the CPU's: as close as fp32's", e);
    cr_expect_lt(e, 1e-2, "tf32 logits %g from the CPU's", e);
    cr_assert_eq(backend_set_precision(gpu, PRECISION_FP32), 0, "%s", err_msg());
    cr_assert_eq(backend_forward(gpu, ids, mask, B, T, &eval) || backend_logits(gpu, b), 0, "%s", err_msg());
    e = rel_err(b, a, B * NL, 1.0);
    cr_expect_lt(e, 1e-5, "fp32 again: logits %g from the CPU's", e);
    backend_close(cpu);
    backend_close(gpu);
}

/* ||got - want|| / ||want|| (the L2 norms over n values). */
static double l2_err(const float *got, const float *want, size_t n)
{
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        w += (double)want[i] * want[i];
    }
    return w > 0 ? sqrt(d / w) : sqrt(d);
}

/* bf16 mixed precision against the CPU's fp32, dropout on and off, full
 * and [CLS]-only, three losses. bf16 keeps 8 significant bits (relative
 * rounding 2^-9), and every activation and activation gradient is rounded
 * once per op. Two cases. Weights already bf16 values (round_weights):
 * only the activations' rounding separates the two, and the gradients
 * agree to about 1-2% in L2 per tensor with bce and focal, 9% with asl
 * (its clip, a kink at p = 0.05, switches elements on and off). The fixture's own
 * weights: the GEMMs' bf16 copy rounds them as well, and on this tiny
 * random model the gradients are badly conditioned: rounding the weights
 * alone to bf16 on the CPU, everything else fp32, moves the whole gradient
 * by 9-14% in L2 and single elements of pre_w's by 0.6 of its largest (the
 * head's ReLU switches units on and off), so those bounds are loose. The
 * bounds are about 2.5x what this fixture measures. Also: bf16 is really
 * used (the logits move by more than fp32 rounding) and is the default on a
 * GPU that has it (the simulator reports compute 9.0). What L2 bounds
 * cannot show the kernel tests do: each bf16 kernel is its fp32 twin
 * rounded, bit for bit. */
typedef struct {
    double logits, all, tensor;
} Bf16Bounds;

static void compare_bf16(bool round_weights, const Bf16Bounds *bound)
{
    if (round_weights)
        for (size_t i = 0; i < w.lay.n_params; i++) w.params[i] = round_bf16(w.params[i]);
    const Loss losses[] = {{.kind = LOSS_BCE}, {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f},
                           {.kind = LOSS_ASL, .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f}};
    const char *names[] = {"bce", "focal", "asl"};
    double worst_l = 0, worst_all = 0, worst_t = 0;
    const char *worst_at = "";
    size_t n = w.lay.n_params;
    for (int k = 0; k < 3; k++)
        for (int mode = 0; mode < 3; mode++) {
            ForwardArgs fa = {.train = mode < 2, .seed = 11, .key = 3 + (uint64_t)k, .cls_only = mode == 1};
            const char *how = mode == 0 ? "dropout on" : mode == 1 ? "dropout on, [CLS]-only" : "dropout off";
            Backend *cpu = open_on("cpu", &losses[k]), *gpu = open_on("cuda", &losses[k]);
            cr_expect_eq(backend_default_precision(gpu), PRECISION_BF16, "bf16 is not the simulated GPU's default");
            cr_assert_eq(backend_set_precision(gpu, PRECISION_BF16), 0, "%s", err_msg());
            StepOut a = {0}, b = {0};
            step(cpu, &fa, &a, false);
            step(gpu, &fa, &b, false);
            grads_to_host(cpu, false, a.grads);
            grads_to_host(gpu, true, b.grads);
            double le = rel_err(b.logits, a.logits, B * NL, 1.0), lo = fabs(b.loss - a.loss) / fabs(a.loss);
            cr_expect_gt(le, 1e-5, "%s, %s: bf16 logits %g from fp32's: bf16 not in use", names[k], how, le);
            cr_expect_lt(le, bound->logits, "%s, %s: bf16 logits %g from fp32's", names[k], how, le);
            cr_expect_lt(lo, bound->logits, "%s, %s: bf16 loss %g vs %g", names[k], how, b.loss, a.loss);
            worst_l = fmax(worst_l, fmax(le, lo));
            double all = l2_err(b.grads, a.grads, n);
            cr_expect_lt(all, bound->all, "%s, %s: bf16 gradient off by %g (L2)", names[k], how, all);
            worst_all = fmax(worst_all, all);
            for (int id = 0; id < P_COUNT; id++)
                for (int l = 0; l < layout_copies(&w.lay, id); l++) {
                    if (id == P_K_B) continue; /* analytically zero */
                    const ParamSlot *sl = layout_slot(&w.lay, id, l);
                    double e = l2_err(b.grads + sl->off, a.grads + sl->off, sl->n);
                    if (e > worst_t) worst_t = e, worst_at = distilbert_params[id].name;
                    cr_expect_lt(e, bound->tensor, "%s, %s: bf16 gradient of %s layer %d off by %g (L2)", names[k],
                                 how, distilbert_params[id].name, l, e);
                }
            free(a.grads), free(a.params), free(b.grads), free(b.params);
            backend_close(cpu);
            backend_close(gpu);
        }
    cr_log_info("bf16 against fp32 (%s weights; L2): logits and loss %.3g, whole gradient %.3g, worst tensor %.3g (%s)",
                round_weights ? "bf16-valued" : "the fixture's", worst_l, worst_all, worst_t, worst_at);
}

Test(parity, bf16_activations_track_fp32)
{
    compare_bf16(true, &(Bf16Bounds){.logits = 2.5e-2, .all = 0.12, .tensor = 0.2});
}

Test(parity, bf16_forward_and_gradients_track_fp32)
{
    compare_bf16(false, &(Bf16Bounds){.logits = 4e-2, .all = 0.4, .tensor = 0.6});
}

/* bf16 is deterministic too: three steps from the same state, twice, end
 * with the same fp32 master weights, bit for bit; and the checkpointed
 * parameters are the fp32 masters (set_params round-trips exactly). */
Test(parity, bf16_steps_are_bitwise_repeatable)
{
    Loss loss = {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f};
    size_t n = w.lay.n_params;
    float *p[2];
    for (int r = 0; r < 2; r++) {
        Backend *gpu = open_on("cuda", &loss);
        cr_assert_eq(backend_set_precision(gpu, PRECISION_BF16), 0, "%s", err_msg());
        for (int k = 0; k < 3; k++) {
            ForwardArgs fa = {.train = true, .seed = 5, .key = 9 + (uint64_t)k, .cls_only = k == 1};
            StepOut o = {0};
            step(gpu, &fa, &o, true);
            free(o.grads);
            p[r] = o.params;
            if (k < 2) free(o.params);
        }
        float *back = malloc(n * sizeof(float));
        cr_assert_eq(backend_set_params(gpu, p[r]) || backend_get_params(gpu, back), 0, "%s", err_msg());
        cr_expect_eq(memcmp(back, p[r], n * sizeof(float)), 0, "set_params then get_params changed the masters");
        free(back);
        backend_close(gpu);
    }
    cr_expect_eq(memcmp(p[0], p[1], n * sizeof(float)), 0, "two identical bf16 runs differ");
    cr_expect_neq(memcmp(p[0], w.params, n * sizeof(float)), 0, "three steps changed nothing");
    free(p[0]), free(p[1]);
}

/* A head size without a fused attention kernel has no bf16 path: refused
 * with a reason, and fp32 is the default there. */
Test(parity, bf16_needs_the_fused_attention)
{
    Loss loss = {.kind = LOSS_BCE};
    w.lay.cfg.n_heads = 16; /* head size 2: the unfused, fp32-only attention */
    Backend *gpu = open_on("cuda", &loss);
    cr_expect_eq(backend_default_precision(gpu), PRECISION_FP32);
    cr_expect_eq(backend_set_precision(gpu, PRECISION_BF16), -1, "bf16 taken without fused attention");
    cr_expect(strstr(err_msg(), "head size 2") != NULL, "message: %s", err_msg());
    backend_close(gpu);
}


/* Six optimizer steps of three micro-batches each (the later ones summed
 * through scratch; the first two differ in that alone), dropout keys and learning rate changing every step, [CLS]-only
 * and full forwards, clipping, and an eval forward between steps: with
 * graphs (captured at the first step of each kind, replayed after) and with
 * direct launches. Everything read back must be the same bits. */
typedef struct {
    float loss[18], norm[6], logits[B * NL];
    float *params, *m, *v;
} GraphRun;

static void graph_run(Precision prec, bool graphs, GraphRun *out)
{
    Loss loss = {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f};
    AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    size_t n = w.lay.n_params;
    Backend *gpu = open_on("cuda", &loss);
    cr_assert_eq(backend_set_precision(gpu, prec) || backend_set_graphs(gpu, graphs), 0, "%s", err_msg());
    for (int s = 0; s < 6; s++) {
        cr_assert_eq(backend_zero_grad(gpu), 0, "%s", err_msg());
        for (int j = 0; j < 3; j++) {
            ForwardArgs fa = {.train = true, .seed = 5, .key = dropout_key(s, 3, j), .cls_only = j == 2};
            cr_assert_eq(backend_forward(gpu, ids, mask, B, T, &fa), 0, "%s", err_msg());
            cr_assert_eq(backend_loss_backward(gpu, targets, 1.0f / 3, &out->loss[3 * s + j]), 0, "%s", err_msg());
        }
        float lr = 1e-3f * (float)(6 - s) / 6.0f;
        cr_assert_eq(backend_step(gpu, &opt, lr, 1.0f, &out->norm[s]), 0, "%s", err_msg());
        ForwardArgs eval = {.train = false};
        cr_assert_eq(backend_forward(gpu, ids, s % 2 ? NULL : mask, B, T, &eval), 0, "%s", err_msg());
        cr_assert_eq(backend_logits(gpu, out->logits), 0, "%s", err_msg());
    }
    AdamWState st;
    adamw_state_init(&st, n);
    out->params = malloc(n * sizeof(float));
    cr_assert_eq(backend_get_params(gpu, out->params) || backend_get_optimizer(gpu, &st), 0, "%s", err_msg());
    out->m = st.m, out->v = st.v;
    cr_expect_eq(st.t, 6);
    backend_close(gpu);
}

Test(parity, graph_replays_equal_direct_launches_bit_for_bit)
{
    size_t n = w.lay.n_params;
    Precision precs[2] = {PRECISION_FP32, PRECISION_BF16};
    for (int p = 0; p < 2; p++) {
        GraphRun g, d;
        graph_run(precs[p], true, &g);
        graph_run(precs[p], false, &d);
        const char *name = precision_name(precs[p]);
        cr_expect_eq(memcmp(g.loss, d.loss, sizeof g.loss), 0, "%s: the losses differ with graphs", name);
        cr_expect_eq(memcmp(g.norm, d.norm, sizeof g.norm), 0, "%s: the gradient norms differ with graphs", name);
        cr_expect_eq(memcmp(g.logits, d.logits, sizeof g.logits), 0, "%s: the eval logits differ with graphs", name);
        cr_expect_eq(memcmp(g.params, d.params, n * sizeof(float)), 0, "%s: the weights differ with graphs", name);
        cr_expect_eq(memcmp(g.m, d.m, n * sizeof(float)) || memcmp(g.v, d.v, n * sizeof(float)), 0,
                     "%s: the AdamW moments differ with graphs", name);
        cr_expect_neq(g.loss[0], g.loss[3], "%s: the steps' losses do not move", name);
        free(g.params), free(g.m), free(g.v), free(d.params), free(d.m), free(d.v);
    }
}

/* The CPU has no graphs: asking for them is an error, naming the fix. */
Test(parity, graphs_need_the_cuda_backend)
{
    Loss loss = {.kind = LOSS_BCE};
    Backend *cpu = open_on("cpu", &loss);
    cr_expect_eq(backend_set_graphs(cpu, false), 0);
    cr_expect_eq(backend_set_graphs(cpu, true), -1);
    cr_expect(strstr(err_msg(), "device=cuda") != NULL, "message: %s", err_msg());
    backend_close(cpu);
}
