/* Times one training step (forward, BCE loss, backward; with "adamw" also
 * clipping to gradient norm 1 and an AdamW update, lr 5e-5, weight decay
 * 0.01) of our DistilBERT on the CPU backend in the all-MiniLM-L6-v2 configuration (dim
 * 384, 6 layers, 12 heads, FFN 1536, vocab 30522, 20 labels), dropout on,
 * random weights. The last block runs for the [CLS] rows only, as genre
 * train runs it (ForwardArgs.cls_only); "full" runs it for every token,
 * the same work as PyTorch.
 *   build/bench/model_bench [B T ITERS [adamw] [full]]   (default 16 128 5)
 * Prints "genre_step_ms <median> cpu_ms <median>": wall time, and the CPU
 * time of all threads of the process (steadier on a loaded machine: it
 * counts the work, not the waiting). Threads: OMP_NUM_THREADS (OpenBLAS runs
 * single-threaded inside them). bench/model_bench.py runs it beside PyTorch. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    bool adamw = false, full = false, bad = false;
    for (int i = 4; i < argc; i++) {
        adamw |= !strcmp(argv[i], "adamw");
        full |= !strcmp(argv[i], "full");
        bad |= strcmp(argv[i], "adamw") && strcmp(argv[i], "full");
    }
    if (B <= 0 || T <= 0 || iters <= 0 || iters > 100 || bad)
        die("usage: model_bench [B T ITERS [adamw] [full]]");
    DistilBertConfig cfg = {.dim = 384, .n_layers = 6, .n_heads = 12, .hidden_dim = 1536,
                            .vocab_size = 30522, .max_position_embeddings = 512,
                            .num_labels = 20, .layer_norm_eps = 1e-12f, .dropout = 0.1f,
                            .attention_dropout = 0.1f, .seq_classif_dropout = 0.2f,
                            .initializer_range = 0.02f};
    ModelWeights w;
    if (weights_init(&w, &cfg)) die_err();
    for (size_t i = 0; i < w.lay.n_params; i++) w.params[i] = 0.02f * philox_normal(1, 0, i);
    Backend *be = backend_open("cpu", &w);
    if (!be || backend_reserve(be, B, T)) die_err();
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
    }
    qsort(ms + 1, iters, sizeof *ms, cmp);
    qsort(cpu + 1, iters, sizeof *cpu, cmp);
    printf("genre_step_ms %.1f cpu_ms %.1f\n", ms[1 + iters / 2], cpu[1 + iters / 2]);
    free(ms), free(cpu), free(ids), free(mask), free(targets);
    backend_close(be);
    return 0;
}
