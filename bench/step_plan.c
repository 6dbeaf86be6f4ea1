/* The step plan: what one training step of genre's CUDA backend (forward
 * with dropout, BCE loss, backward, clipping, AdamW, as genre train runs it:
 * the last block for the [CLS] rows only) asks of a GPU, counted in the
 * simulator without one, and the step time a roofline predicts for it.
 *   build/bench/step_plan [--model distilbert-base|all-MiniLM-L6-v2] [--precision bf16|fp32] [--json FILE]
 *   build/bench/step_plan --check    (the scaling claim, on a tiny model: make test)
 * Each model is planned in bf16 mixed precision (genre train's default on
 * such a GPU) and in fp32, unless --precision names one.
 *
 * Counted (cudasim_count_begin, tests/cudasim/cudasim.h): every kernel
 * launch with the distinct 32-byte sectors of device memory it reads and
 * writes (DRAM traffic if a launch's own re-reads hit the cache and nothing
 * survives between launches), every cuBLAS product with 2mnk FLOPs and its
 * operands once, memsets and copies with their bytes. Random weights,
 * batches of 128 real tokens, all distinct ids, the second step of a run
 * (the first sets things up).
 *
 * Scaled: the simulator runs the step at batch 2 and at batch 3 and the plan
 * is for batch 32. The two steps issue the same work in the same order (the
 * program checks; at batch 1 cuBLAS calls differ), and every count of one
 * piece of work is affine in the batch at a fixed sequence length
 * (activations and token GEMM dimensions grow with it, weights, their
 * gradients and AdamW do not), so each is extrapolated on its own:
 * c(32) = c(2) + 30 (c(3) - c(2)). The same for the
 * device memory in use after the step (cudaMemGetInfo: the backend
 * allocates everything ahead of its steps), without cuBLAS's workspace.
 *
 * Roofline (H100 SXM, NVIDIA's datasheet: 3.35 TB/s HBM3; dense 67 TFLOP/s
 * fp32, 494.7 TF32 tensor, 989 bf16 tensor): each piece of work takes max(FLOPs / peak,
 * bytes / bandwidth), the step their sum: no launch overhead, no overlap.
 * bf16's GEMMs are timed at the bf16 peak; fp32's (CUBLAS_PEDANTIC_MATH)
 * at the fp32 peak, and the same counts with tf32=true at the TF32 peak.
 * The fused attention kernels' tensor-core products (bf16 wmma, head sizes
 * 32 and 64) are counted by the simulator (mma_sync) and timed at the bf16
 * peak; the CUDA-core kernels' arithmetic (fp32: fp32 training, other head
 * sizes, the [CLS]-only last layer) is computed from their loops
 * (attention_flops) and timed at the fp32 peak. The tensor-core kernels'
 * own CUDA-core work (the online softmax, dropout) is left out. MFU = model FLOPs / (predicted time x 989 TFLOP/s), model FLOPs
 * per step = 6 N tokens + 12 layers T dim tokens, N the parameters outside
 * the word and position embeddings (the attention scores and the weighted
 * sum, forward and backward, in the second term), as bench/step_plan_torch.py
 * counts them for PyTorch. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cudasim.h"
#include "models/backend.h"
#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/philox.h"
#include "src/ops/loss.h"

#define PLAN_B 32
#define PLAN_T 128
#define LABELS 20

static const double HBM_BYTES_S = 3.35e12, FP32_FLOPS = 67e12, TF32_FLOPS = 494.7e12, BF16_FLOPS = 989e12;

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, hidden_dim;
} ModelDims;

static const ModelDims MODELS[] = {
    {"distilbert-base", 768, 6, 12, 3072},
    {"all-MiniLM-L6-v2", 384, 6, 12, 1536},
};

/* One step's work at one batch size, copied out of the simulator's records. */
typedef struct {
    size_t n;
    CudasimWork *w;
    char **names;
    double mem_bytes;
} Counted;

static DistilBertConfig config_of(const ModelDims *m)
{
    return (DistilBertConfig){.dim = m->dim, .n_layers = m->n_layers, .n_heads = m->n_heads,
                              .hidden_dim = m->hidden_dim, .vocab_size = 30522,
                              .max_position_embeddings = 512, .num_labels = LABELS,
                              .layer_norm_eps = 1e-12f, .dropout = 0.1f, .attention_dropout = 0.1f,
                              .seq_classif_dropout = 0.2f, .initializer_range = 0.02f};
}

static void train_step(Backend *be, const int32_t *ids, const int32_t *mask, const float *targets, int B,
                       uint64_t key)
{
    ForwardArgs fa = {.train = true, .seed = 7, .key = key, .cls_only = true};
    AdamW opt = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f};
    float loss, norm;
    if (backend_zero_grad(be) || backend_forward(be, ids, mask, B, PLAN_T, &fa) ||
        backend_loss_backward(be, targets, 1.0f, &loss) || backend_step(be, &opt, 1e-4f, 1.0f, &norm))
        die_err();
}

static Counted count_step(const DistilBertConfig *cfg, int B, Precision prec)
{
    ModelWeights w;
    if (weights_init(&w, cfg)) die_err();
    for (size_t i = 0; i < w.lay.n_params; i++) w.params[i] = 0.02f * philox_normal(1, 0, i);
    Backend *be = backend_open("cuda", &w);
    if (!be || backend_set_precision(be, prec) || backend_reserve(be, B, PLAN_T)) die_err();
    weights_free(&w);
    int32_t *ids = xmalloc((size_t)B * PLAN_T * sizeof *ids), *mask = xmalloc((size_t)B * PLAN_T * sizeof *mask);
    float *targets = xmalloc((size_t)B * LABELS * sizeof *targets);
    /* Distinct ids (7919 is prime to 30522), so every token reads and updates its own embedding row and
     * those bytes grow with the batch exactly: an upper bound, real text repeating tokens. */
    for (int i = 0; i < B * PLAN_T; i++) {
        ids[i] = (int32_t)((uint64_t)i * 7919 % (uint64_t)cfg->vocab_size);
        mask[i] = 1;
    }
    for (int i = 0; i < B * LABELS; i++) targets[i] = philox_uniform(3, 0, i) < 0.2f;
    Loss loss = {.kind = LOSS_BCE};
    if (backend_set_loss(be, &loss)) die_err();
    train_step(be, ids, mask, targets, B, 0);
    cudasim_count_begin();
    train_step(be, ids, mask, targets, B, 1);
    if (cudaDeviceSynchronize() != cudaSuccess) die("step_plan: %s", cudasim_last_error());
    Counted c;
    const CudasimWork *rec = cudasim_count_end(&c.n);
    c.w = xmalloc(c.n * sizeof *c.w);
    c.names = xmalloc(c.n * sizeof *c.names);
    for (size_t i = 0; i < c.n; i++) {
        c.w[i] = rec[i];
        c.names[i] = xstrdup(rec[i].name);
        c.w[i].name = c.names[i];
    }
    size_t free_b, total_b;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) die("step_plan: cudaMemGetInfo failed");
    c.mem_bytes = (double)(total_b - free_b);
    backend_close(be);
    free(ids), free(mask), free(targets);
    return c;
}

static void counted_free(Counted *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names), free(c->w);
}

/* The family a piece of work is tabled under: a kernel's name, a GEMM's
 * call and epilogue without its dimensions. */
static void family_of(const CudasimWork *w, char *out, size_t size)
{
    if (w->kind != CUDASIM_WORK_GEMM) {
        snprintf(out, size, "%s", w->name);
        return;
    }
    const char *dims = strchr(w->name, ' ');
    const char *rest = dims ? strchr(dims + 1, ' ') : NULL;
    snprintf(out, size, "%.*s%s", dims ? (int)(dims - w->name) : (int)strlen(w->name), w->name, rest ? rest : "");
}

typedef struct {
    char name[96];
    int kind;
    double launches, bytes, flops, seconds;
} Family;

#define COUNT_B 2 /* and COUNT_B + 1 */

static double affine(double at_b, double at_b1) { return at_b + (PLAN_B - COUNT_B) * (at_b1 - at_b); }

/* Roofline time: the GEMMs' FLOPs at gemm_flops_s; a kernel's counted
 * FLOPs (its wmma products) at the bf16 tensor peak and its core_flops at
 * the fp32 CUDA-core peak. */
static double seconds_of(const CudasimWork *w, double core_flops, double gemm_flops_s)
{
    bool gemm = w->kind == CUDASIM_WORK_GEMM;
    double t = gemm ? w->flops / gemm_flops_s : w->flops / BF16_FLOPS + core_flops / FP32_FLOPS;
    double m = (w->bytes_read + w->bytes_written) / HBM_BYTES_S;
    return t > m ? t : m;
}

/* The counter sees a CUDA-core kernel's bytes, not its arithmetic: the
 * fused attention's FLOPs at batch 32 from its loops (kernels/attention.cu), per
 * (batch, head, query row, key) 4 hs forward (q.k, p v), 6 hs for the dq
 * kernel (q.k, dout.v, ds k) and 8 hs for the dk/dv one (q.k, dout.v, p
 * dout, ds q). Forward launches come in layer order, backward in reverse;
 * the last layer runs the [CLS] row alone (cls_only). */
typedef struct {
    int forward, dq, dkv;
} AttentionSeen;

static double attention_flops(const char *name, const DistilBertConfig *cfg, AttentionSeen *seen)
{
    int L = cfg->n_layers, per = 0, layer = 0;
    if (!strncmp(name, "attention_forward_kernel", 24)) per = 4, layer = seen->forward++;
    else if (!strncmp(name, "attention_backward_dq_kernel", 28)) per = 6, layer = L - 1 - seen->dq++;
    else if (!strncmp(name, "attention_backward_dkv_kernel", 29)) per = 8, layer = L - 1 - seen->dkv++;
    else return 0;
    double rows = layer == L - 1 ? 1 : PLAN_T, hs = (double)cfg->dim / cfg->n_heads;
    return per * hs * PLAN_B * cfg->n_heads * rows * PLAN_T;
}

static double model_flops(const DistilBertConfig *cfg)
{
    ModelLayout lay;
    if (layout_init(&lay, cfg)) die_err();
    double n = (double)lay.n_params - (double)(cfg->vocab_size + cfg->max_position_embeddings) * cfg->dim;
    layout_free(&lay);
    double tokens = (double)PLAN_B * PLAN_T;
    return 6.0 * n * tokens + 12.0 * cfg->n_layers * PLAN_T * cfg->dim * tokens;
}

static void plan(const ModelDims *m, Precision prec, FILE *json, bool first)
{
    DistilBertConfig cfg = config_of(m);
    bool bf16 = prec == PRECISION_BF16;
    Counted c1 = count_step(&cfg, COUNT_B, prec), c2 = count_step(&cfg, COUNT_B + 1, prec);
    if (c1.n != c2.n)
        die("step_plan: %s: %zu pieces of work at batch %d, %zu at %d", m->name, c1.n, COUNT_B, c2.n, COUNT_B + 1);
    Family *fam = xcalloc(c1.n, sizeof *fam);
    int nfam = 0;
    double launches = 0, gemm_launches = 0, host_launches = 0, host_copies = 0, host_bytes = 0, gemm_flops = 0,
           gemm_bytes = 0,
           other_bytes = 0, core_flops = 0, tensor_flops = 0, t_main = 0, t_tf32 = 0;
    AttentionSeen seen = {0, 0, 0};
    for (size_t i = 0; i < c1.n; i++) {
        const CudasimWork *a = &c1.w[i], *b = &c2.w[i];
        char fa[96], fb[96];
        family_of(a, fa, sizeof fa);
        family_of(b, fb, sizeof fb);
        if (a->kind != b->kind || strcmp(fa, fb))
            die("step_plan: %s: work %zu is %s at batch %d and %s at %d", m->name, i, fa, COUNT_B, fb, COUNT_B + 1);
        CudasimWork s = {a->name, a->kind, affine(a->flops, b->flops), affine(a->bytes_read, b->bytes_read),
                         affine(a->bytes_written, b->bytes_written), a->in_graph};
        if (s.kind == CUDASIM_WORK_GRAPH || (!s.in_graph && s.kind != CUDASIM_WORK_COPY_HOST)) host_launches++;
        if (s.kind == CUDASIM_WORK_GRAPH) continue;
        double bytes = s.bytes_read + s.bytes_written;
        if (s.kind == CUDASIM_WORK_COPY_HOST) {
            host_copies++;
            host_bytes += bytes;
            continue;
        }
        launches++;
        double core = 0;
        if (s.kind == CUDASIM_WORK_GEMM) {
            gemm_launches++;
            gemm_flops += s.flops;
            gemm_bytes += bytes;
        } else {
            core = attention_flops(s.name, &cfg, &seen);
            other_bytes += bytes;
            core_flops += core;
            tensor_flops += s.flops;
        }
        double sec = seconds_of(&s, core, bf16 ? BF16_FLOPS : FP32_FLOPS);
        t_main += sec;
        t_tf32 += seconds_of(&s, core, TF32_FLOPS);
        int f = 0;
        while (f < nfam && strcmp(fam[f].name, fa)) f++;
        if (f == nfam) {
            snprintf(fam[nfam].name, sizeof fam[nfam].name, "%s", fa);
            fam[nfam++].kind = s.kind;
        }
        fam[f].launches++;
        fam[f].bytes += bytes;
        fam[f].flops += s.flops + core;
        fam[f].seconds += sec;
    }
    double mf = model_flops(&cfg), mem = affine(c1.mem_bytes, c2.mem_bytes);
    const char *pname = bf16 ? "bf16 mixed precision" : "fp32";
    printf("%s (dim %d, %d layers, %d heads, FFN %d, vocab %d, %d labels), batch %d x %d tokens, %s\n",
           m->name, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.hidden_dim, cfg.vocab_size, LABELS, PLAN_B, PLAN_T,
           pname);
    printf("  counted at batch %d and %d, extrapolated per piece of work (affine in the batch)\n", COUNT_B,
           COUNT_B + 1);
    printf("  launches per step         %8.0f  (%0.f cuBLAS GEMMs, %0.f other kernels, memsets, device copies)\n",
           launches, gemm_launches, launches - gemm_launches);
    printf("  launched by the host      %8.0f  (CUDA graphs: each phase's kernels replayed by one launch)\n",
           host_launches);
    printf("  host transfers            %8.0f  (%.2f MB)\n", host_copies, host_bytes / 1e6);
    printf("  non-GEMM bytes            %8.2f GB\n", other_bytes / 1e9);
    printf("  GEMM FLOPs                %8.3f TFLOP  (model FLOPs %.3f TFLOP)\n", gemm_flops / 1e12, mf / 1e12);
    printf("  GEMM bytes                %8.2f GB\n", gemm_bytes / 1e9);
    printf("  fused attention FLOPs     %8.3f TFLOP  on tensor cores (bf16 wmma, counted)\n", tensor_flops / 1e12);
    printf("                            %8.3f TFLOP  on CUDA cores (fp32, from the kernels' loops)\n",
           core_flops / 1e12);
    printf("  device memory             %8.2f GB  (after the step, cuBLAS's 32 MiB workspace included)\n", mem / 1e9);
    printf("  roofline, H100 SXM: %.2f ms (GEMMs at the %s peak), MFU %.1f%%\n", t_main * 1e3, bf16 ? "bf16" : "fp32",
           100 * mf / (t_main * BF16_FLOPS));
    if (!bf16)
        printf("  tf32=true (TF32 peak):   %.2f ms, MFU %.1f%%\n", t_tf32 * 1e3, 100 * mf / (t_tf32 * BF16_FLOPS));
    printf("  %-44s %8s %10s %10s %9s\n", "work", "launches", "GB", "TFLOP", "us");
    for (int f = 0; f < nfam; f++)
        printf("  %-44s %8.0f %10.3f %10.4f %9.1f\n", fam[f].name, fam[f].launches, fam[f].bytes / 1e9,
               fam[f].flops / 1e12, fam[f].seconds * 1e6);
    if (json) {
        fprintf(json,
                "%s{\"name\": \"%s\", \"dim\": %d, \"layers\": %d, \"heads\": %d, \"ffn\": %d, \"vocab\": %d, "
                "\"labels\": %d, \"batch\": %d, \"seq\": %d, \"precision\": \"%s\", "
                "\"launches\": %.0f, \"host_launches\": %.0f, \"gemm_launches\": %.0f, \"gemm_flops\": %.6g, "
                "\"gemm_bytes\": %.6g, "
                "\"nongemm_bytes\": %.6g, \"model_flops\": %.6g, \"predicted_ms\": %.4f, \"mfu\": %.4f, ",
                first ? "" : ", ", m->name, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.hidden_dim, cfg.vocab_size,
                LABELS, PLAN_B, PLAN_T, bf16 ? "bf16" : "fp32", launches, host_launches, gemm_launches, gemm_flops,
                gemm_bytes,
                other_bytes, mf, t_main * 1e3, mf / (t_main * BF16_FLOPS));
        if (!bf16) fprintf(json, "\"predicted_ms_tf32\": %.4f, ", t_tf32 * 1e3);
        fprintf(json, "\"device_memory_bytes\": %.6g, \"host_transfers\": %.0f, \"attention_flops\": %.6g, "
                      "\"attention_tensor_flops\": %.6g, \"kernels\": [", mem, host_copies, core_flops + tensor_flops,
                tensor_flops);
        for (int f = 0; f < nfam; f++)
            fprintf(json, "%s{\"name\": \"%s\", \"launches\": %.0f, \"bytes\": %.6g, \"flops\": %.6g}",
                    f ? ", " : "", fam[f].name, fam[f].launches, fam[f].bytes, fam[f].flops);
        fprintf(json, "]}");
    }
    free(fam);
    counted_free(&c1);
    counted_free(&c2);
}

/* The claim the plan rests on, checked where it is cheap: on a tiny model
 * (dim 32, 2 layers, 4 heads, as tests/fixtures/tiny_distilbert) the counts
 * at batch 4 are those extrapolated from batches 2 and 3, launch for launch:
 * FLOPs exactly, bytes within 1 KiB or 2% (32-byte sectors round the ends
 * of each array and of each strided row, which start anywhere in the
 * activation arena). 0, or 1 naming the first that is not. */
static int check_scaling(Precision prec)
{
    const ModelDims tiny = {"tiny", 32, 2, 4, 37};
    DistilBertConfig cfg = config_of(&tiny);
    Counted c[3] = {count_step(&cfg, 2, prec), count_step(&cfg, 3, prec), count_step(&cfg, 4, prec)};
    if (c[0].n != c[1].n || c[1].n != c[2].n) {
        fprintf(stderr, "step_plan --check: %s: %zu, %zu and %zu pieces of work at batches 2, 3, 4\n",
                precision_name(prec), c[0].n, c[1].n, c[2].n);
        return 1;
    }
    double worst = 0;
    int rc = 0;
    for (size_t i = 0; i < c[0].n && !rc; i++) {
        const CudasimWork *a = &c[0].w[i], *b = &c[1].w[i], *m = &c[2].w[i];
        double got[3] = {m->flops, m->bytes_read, m->bytes_written};
        double want[3] = {2 * b->flops - a->flops, 2 * b->bytes_read - a->bytes_read,
                          2 * b->bytes_written - a->bytes_written};
        for (int k = 0; k < 3; k++) {
            double off = got[k] > want[k] ? got[k] - want[k] : want[k] - got[k];
            worst = off > worst ? off : worst;
            if (off > (k ? fmax(1024.0, 0.02 * got[k]) : 0.0)) {
                fprintf(stderr, "step_plan --check: %s: work %zu (%s): %s %.0f at batch 4, %.0f extrapolated\n",
                        precision_name(prec), i, m->name, k == 0 ? "FLOPs" : k == 1 ? "bytes read" : "bytes written",
                        got[k], want[k]);
                rc = 1;
                break;
            }
        }
    }
    if (!rc) printf("step_plan --check: %s: %zu pieces of work at batch 4 as extrapolated from 2 and 3 (largest "
                    "difference %.0f bytes)\n", precision_name(prec), c[0].n, worst);
    for (int k = 0; k < 3; k++) counted_free(&c[k]);
    return rc;
}

int main(int argc, char **argv)
{
    const char *only = NULL, *json_path = NULL, *prec_name = NULL;
    if (!cudasim_counts_kernel_bytes()) die("step_plan: built without counted kernels (CUDASIM_COUNT_FLAGS)");
    if (argc == 2 && !strcmp(argv[1], "--check"))
        return check_scaling(PRECISION_BF16) || check_scaling(PRECISION_FP32);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) prec_name = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else die("usage: step_plan [--model distilbert-base|all-MiniLM-L6-v2] [--precision bf16|fp32] [--json FILE] "
                 "| --check");
    }
    if (prec_name && strcmp(prec_name, "bf16") && strcmp(prec_name, "fp32"))
        die("step_plan: --precision %s: bf16 or fp32", prec_name);
    FILE *json = NULL;
    AtomicFile *af = NULL;
    if (json_path) {
        if (!(af = atomic_open(json_path))) die_err();
        json = atomic_stream(af);
        fprintf(json, "{\"gpu\": {\"name\": \"H100 SXM\", \"bf16_tflops\": 989, \"fp32_tflops\": 67, "
                      "\"tb_per_s\": 3.35}, \"models\": [");
    }
    bool first = true, any = false;
    for (size_t k = 0; k < sizeof MODELS / sizeof *MODELS; k++) {
        if (only && strcmp(only, MODELS[k].name)) continue;
        for (int p = 0; p < 2; p++) {
            Precision prec = p ? PRECISION_FP32 : PRECISION_BF16;
            if (prec_name && strcmp(prec_name, precision_name(prec))) continue;
            plan(&MODELS[k], prec, json, first);
            first = false;
        }
        any = true;
    }
    if (!any) die("step_plan: unknown model %s", only);
    if (json) {
        fprintf(json, "]}\n");
        if (atomic_commit(af)) die_err();
    }
    return 0;
}
