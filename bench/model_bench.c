/* Times one training step (forward, BCE loss, backward; with "adamw" also
 * clipping to gradient norm 1 and an AdamW update, lr 5e-5, weight decay
 * 0.01) of our DistilBERT, dropout on, random weights: on the CPU backend,
 * or with "cuda" on the CUDA one at its default precision (bf16 on a GPU
 * with bf16 tensor cores, as genre train's precision=auto) or the one
 * named: "bf16", "fp32", "tf32"; in the all-MiniLM-L6-v2 configuration (dim 384, 6
 * layers, 12 heads, FFN 1536, vocab 30522, 20 labels), or with "base" in
 * DistilBERT-base's (dim 768, FFN 3072). The last block runs for the [CLS]
 * rows only, as genre train runs it (ForwardArgs.cls_only); "full" runs it
 * for every token, the same work as PyTorch.
 *   build/bench/model_bench [B T ITERS [adamw] [full] [cuda] [base] [bf16|fp32|tf32]]   (default 16 128 5)
 * The first step is warm-up; the medians are of the ITERS after it.
 * Prints "genre_step_ms <median> cpu_ms <median>": wall time, and the CPU
 * time of all threads of the process (steadier on a loaded machine: it
 * counts the work, not the waiting); then one line of "key value" pairs:
 * model, device, precision, batch, seq, cls_only, adamw, samples_per_s and
 * tokens_per_s (B and B x T per median step, padding included),
 * first_step_ms (the warm-up step alone), startup_ms (process start, by
 * the kernel's clock, to the end of that step: loading, random weights,
 * device set-up and all) and for cuda device_mem_bytes (what the backend
 * holds on the device), then "gpu <backend_describe's words>". Threads:
 * OMP_NUM_THREADS (OpenBLAS runs single-threaded inside them).
 * bench/model_bench.py runs it beside PyTorch on the CPU,
 * bench/step_bench_torch.py reads its output for the GPU. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef GENRE_CUDA_BACKEND
#include <cuda_runtime_api.h>
#endif

#include "src/core/blas_arch.h"
#include "models/backend.h"
#include "src/core/err.h"
#include "src/ops/loss.h"
#include "src/core/philox.h"

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Milliseconds since the kernel started this process: field 22 of
 * /proc/self/stat, in clock ticks since boot (10 ms at the usual 100 Hz),
 * against CLOCK_BOOTTIME, the clock it counts on. From main() it would miss
 * the loader, the libraries' constructors and blas_arch_fix's re-exec. */
static double process_age_ms(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces:
     * count from the last ')', where field 3 begins. */
    char *p = strrchr(buf, ')'), *save = NULL, *tok = p ? strtok_r(p + 1, " ", &save) : NULL;
    for (int field = 3; tok && field < 22; field++) tok = strtok_r(NULL, " ", &save);
    if (!tok) die("model_bench: no start time in /proc/self/stat");
    return now_ms(CLOCK_BOOTTIME) - strtod(tok, NULL) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

/* Bytes in use on the current GPU (the whole device, every process). */
static double device_used_bytes(void)
{
#ifdef GENRE_CUDA_BACKEND
    size_t free_b, total_b;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) die("model_bench: cudaMemGetInfo: %s", cudaGetErrorString(e));
    return (double)(total_b - free_b);
#else
    die("model_bench: built without the CUDA backend");
#endif
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    blas_arch_fix(argv);
    int B = argc > 1 ? atoi(argv[1]) : 16, T = argc > 2 ? atoi(argv[2]) : 128;
    int iters = argc > 3 ? atoi(argv[3]) : 5;
    bool adamw = false, full = false, cuda = false, base = false, bad = false;
    int prec = -1; /* the backend's default */
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "adamw")) adamw = true;
        else if (!strcmp(argv[i], "full")) full = true;
        else if (!strcmp(argv[i], "cuda")) cuda = true;
        else if (!strcmp(argv[i], "base")) base = true;
        else if (!strcmp(argv[i], "bf16")) prec = PRECISION_BF16;
        else if (!strcmp(argv[i], "fp32")) prec = PRECISION_FP32;
        else if (!strcmp(argv[i], "tf32")) prec = PRECISION_TF32;
        else bad = true;
    }
    if (B <= 0 || T <= 0 || iters <= 0 || iters > 100 || bad)
        die("usage: model_bench [B T ITERS [adamw] [full] [cuda] [base] [bf16|fp32|tf32]]");
    DistilBertConfig cfg = {.dim = base ? 768 : 384, .n_layers = 6, .n_heads = 12, .hidden_dim = base ? 3072 : 1536,
                            .vocab_size = 30522, .max_position_embeddings = 512,
                            .num_labels = 20, .layer_norm_eps = 1e-12f, .dropout = 0.1f,
                            .attention_dropout = 0.1f, .seq_classif_dropout = 0.2f,
                            .initializer_range = 0.02f};
    ModelWeights w;
    if (weights_init(&w, &cfg)) die_err();
    for (size_t i = 0; i < w.lay.n_params; i++) w.params[i] = 0.02f * philox_normal(1, 0, i);
    /* The device's use before the backend opens (the CUDA context alone),
     * so that what it holds afterwards is the backend's own. */
    double mem0 = cuda ? device_used_bytes() : 0;
    Backend *be = backend_open(cuda ? "cuda" : "cpu", &w);
    if (!be) die_err();
    Precision p = prec < 0 ? backend_default_precision(be) : (Precision)prec;
    if (backend_set_precision(be, p) || backend_reserve(be, B, T)) die_err();
    weights_free(&w);
    int32_t *ids = xmalloc((size_t)B * T * sizeof *ids), *mask = xmalloc((size_t)B * T * sizeof *mask);
    float *targets = xmalloc((size_t)B * 20 * sizeof *targets);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)(philox_uniform(2, 0, i) * cfg.vocab_size);
        mask[i] = (i % T) < T - (i / T) % 16; /* some padding, as real batches have */
    }
    for (int i = 0; i < B * 20; i++) targets[i] = philox_uniform(3, 0, i) < 0.2f;
    Loss loss = {.kind = LOSS_BCE};
    if (backend_set_loss(be, &loss)) die_err();
    AdamW opt = {5e-5f, 0.9f, 0.999f, 1e-8f, 0.01f};
    double *ms = xmalloc((size_t)(iters + 1) * sizeof *ms);
    double *cpu = xmalloc((size_t)(iters + 1) * sizeof *cpu);
    double startup = 0;
    for (int it = 0; it <= iters; it++) { /* the first is warm-up */
        double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        /* cls_only as genre train runs it, unless "full" */
        ForwardArgs fa = {.train = true, .seed = 7, .key = (uint64_t)it, .cls_only = !full};
        float l, norm;
        if (backend_zero_grad(be) || backend_forward(be, ids, mask, B, T, &fa) ||
            backend_loss_backward(be, targets, 1.0f, &l) || (adamw && backend_step(be, &opt, 5e-5f, 1.0f, &norm)))
            die_err();
        ms[it] = now_ms(CLOCK_MONOTONIC) - t0;
        cpu[it] = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (it == 0) startup = process_age_ms();
    }
    /* Whatever the steps need is allocated by the end of the first (the
     * backend's buffers at open and reserve, cuBLAS's at its first calls)
     * and never freed between steps, so the use after them is the peak. */
    double mem = cuda ? device_used_bytes() - mem0 : 0;
    qsort(ms + 1, iters, sizeof *ms, cmp);
    qsort(cpu + 1, iters, sizeof *cpu, cmp);
    double med = ms[1 + iters / 2];
    printf("genre_step_ms %.1f cpu_ms %.1f\n", med, cpu[1 + iters / 2]);
    printf("model %s device %s precision %s batch %d seq %d cls_only %d adamw %d samples_per_s %.1f "
           "tokens_per_s %.0f first_step_ms %.1f startup_ms %.0f",
           base ? "distilbert-base" : "all-MiniLM-L6-v2", cuda ? "cuda" : "cpu", precision_name(p), B, T, !full, adamw,
           B * 1e3 / med, (double)B * T * 1e3 / med, ms[0], startup);
    if (cuda) {
        char gpu[256];
        if (backend_describe("cuda", gpu, sizeof gpu)) die_err();
        printf(" device_mem_bytes %.0f\ngpu %s", mem, gpu);
    }
    printf("\n");
    free(ms), free(cpu), free(ids), free(mask), free(targets);
    backend_close(be);
    return 0;
}
