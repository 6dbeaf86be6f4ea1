/* GPU benchmark of the LayerNorm, softmax and GELU kernels: time per call
 * (CUDA events, median of 7 timed batches of 20 calls after a warm-up) and
 * the bandwidth it reaches, against the device's peak memory bandwidth.
 * Shapes are DistilBERT's: batch 32 x 128 tokens x 768 features, 12 heads.
 * Prints a Markdown table; bench/kernels_torch.py prints the same table for
 * PyTorch's own ops (`make test-gpu` runs both, same GPU, same run).
 * Bytes counted: every array element read or written once (an accumulated
 * gradient counts twice); the LayerNorm parameters and statistics too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/core/err.h"
#include "src/ops/softmax.h"

enum { BATCH = 32, SEQ = 128, DIM = 768, HEADS = 12, WARMUP = 5, CALLS = 20, BATCHES = 7 };

typedef struct {
    const char *op, *dtype, *shape;
    double bytes;
    int (*run)(void);
} Bench;

static void *a, *b, *c, *d;  /* activation-sized buffers */
static float *w, *bias, *dw, *db, *mean, *rstd, *mask;
static void *ln_work; /* layernorm_backward_workspace_size, zeroed once (kernels.h) */
static const int LN_ROWS = BATCH * SEQ, SM_ROWS = BATCH * HEADS * SEQ;
static const float SCALE = 0.125f;

static int ln_fwd(void)
{
    return layernorm_forward_cuda(b, mean, rstd, a, w, bias, LN_ROWS, DIM, 1e-12f, 0);
}
static int ln_fwd16(void)
{
    return layernorm_forward_cuda_bf16(b, mean, rstd, a, w, bias, LN_ROWS, DIM, 1e-12f, 0);
}
static int ln_bwd(void)
{
    return layernorm_backward_cuda(c, true, dw, db, d, a, w, mean, rstd, LN_ROWS, DIM, ln_work, 0);
}
static int ln_bwd16(void)
{
    return layernorm_backward_cuda_bf16(c, true, dw, db, d, a, w, mean, rstd, LN_ROWS, DIM, ln_work, 0);
}
static int sm_fwd(void)
{
    return softmax_forward_cuda(b, a, mask, SCALE, SM_ROWS, SEQ, HEADS * SEQ, 0);
}
static int sm_fwd16(void)
{
    return softmax_forward_cuda_bf16(b, a, mask, SCALE, SM_ROWS, SEQ, HEADS * SEQ, 0);
}
static int sm_bwd(void) { return softmax_backward_cuda(c, d, b, SCALE, SM_ROWS, SEQ, 0); }
static int sm_bwd16(void) { return softmax_backward_cuda_bf16(c, d, b, SCALE, SM_ROWS, SEQ, 0); }
static int gelu_fwd(void) { return gelu_forward_cuda(b, a, (size_t)LN_ROWS * 4 * DIM, 0); }
static int gelu_fwd16(void) { return gelu_forward_cuda_bf16(b, a, (size_t)LN_ROWS * 4 * DIM, 0); }

/* The bench stops at the first failing call, naming it. */
static void must(int rc)
{
    if (rc) die_err();
}
static void cuda_must(cudaError_t e)
{
    if (e != cudaSuccess) die("CUDA error %d (%s)", (int)e, cudaGetErrorString(e));
}

static int cmp_float(const void *x, const void *y)
{
    float p = *(const float *)x, q = *(const float *)y;
    return (p > q) - (p < q);
}

static float time_ms(int (*run)(void))
{
    cudaEvent_t start, stop;
    float ms[BATCHES];
    cuda_must(cudaEventCreate(&start));
    cuda_must(cudaEventCreate(&stop));
    for (int i = 0; i < WARMUP; i++) must(run());
    for (int k = 0; k < BATCHES; k++) {
        cuda_must(cudaEventRecord(start, 0));
        for (int i = 0; i < CALLS; i++) must(run());
        cuda_must(cudaEventRecord(stop, 0));
        cuda_must(cudaEventSynchronize(stop));
        cuda_must(cudaEventElapsedTime(&ms[k], start, stop));
        ms[k] /= CALLS;
    }
    cuda_must(cudaEventDestroy(start));
    cuda_must(cudaEventDestroy(stop));
    qsort(ms, BATCHES, sizeof ms[0], cmp_float);
    return ms[BATCHES / 2];
}

static void *device_random(size_t bytes)
{
    unsigned short *h = malloc(bytes);
    for (size_t i = 0; i < bytes / 2; i++) h[i] = (unsigned short)(0x3c00 + (rand() & 0x3ff)); /* bf16 ~1..2, fp32 finite */
    void *p;
    cuda_must(cudaMalloc(&p, bytes));
    cuda_must(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice));
    free(h);
    return p;
}

int main(void)
{
    int dev, clock_khz, bus_bits;
    struct cudaDeviceProp prop;
    cuda_must(cudaGetDevice(&dev));
    cuda_must(cudaGetDeviceProperties(&prop, dev));
    cuda_must(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev));
    cuda_must(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    double peak = 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9; /* GB/s, double data rate */

    size_t big = (size_t)LN_ROWS * 4 * DIM * sizeof(float); /* the largest: GELU's 3072 wide */
    if ((size_t)SM_ROWS * SEQ * sizeof(float) > big) big = (size_t)SM_ROWS * SEQ * sizeof(float);
    a = device_random(big), b = device_random(big), c = device_random(big), d = device_random(big);
    w = device_random(DIM * 4), bias = device_random(DIM * 4);
    dw = device_random(DIM * 4), db = device_random(DIM * 4);
    mean = device_random(LN_ROWS * 4), rstd = device_random(LN_ROWS * 4);
    cuda_must(cudaMalloc(&ln_work, layernorm_backward_workspace_size(LN_ROWS, DIM)));
    cuda_must(cudaMemset(ln_work, 0, layernorm_backward_workspace_size(LN_ROWS, DIM))); /* its counters */
    float *hmask = malloc((size_t)BATCH * SEQ * sizeof *hmask);
    for (int i = 0; i < BATCH * SEQ; i++) hmask[i] = i % SEQ < SEQ * 3 / 4 ? 0.0f : SOFTMAX_MASKED;
    cuda_must(cudaMalloc((void **)&mask, (size_t)BATCH * SEQ * sizeof *hmask));
    cuda_must(cudaMemcpy(mask, hmask, (size_t)BATCH * SEQ * sizeof *hmask, cudaMemcpyHostToDevice));
    free(hmask);
    /* LayerNorm statistics must be valid for the backward. */
    ln_fwd();

    double ln = (double)LN_ROWS * DIM, sm = (double)SM_ROWS * SEQ, ge = ln * 4;
    double params = 2.0 * DIM * 4, stats = 2.0 * LN_ROWS * 4, msk = (double)BATCH * SEQ * 4;
    char ln_shape[64], sm_shape[64], ge_shape[64];
    snprintf(ln_shape, sizeof ln_shape, "%d x %d", LN_ROWS, DIM);
    snprintf(sm_shape, sizeof sm_shape, "%d x %d", SM_ROWS, SEQ);
    snprintf(ge_shape, sizeof ge_shape, "%d x %d", LN_ROWS, 4 * DIM);
    Bench benches[] = {
        {"layernorm forward", "fp32", ln_shape, ln * 4 * 2 + params + stats, ln_fwd},
        {"layernorm forward", "bf16", ln_shape, ln * 2 * 2 + params + stats, ln_fwd16},
        {"layernorm backward", "fp32", ln_shape, ln * 4 * 4 + 3 * params + stats, ln_bwd},
        {"layernorm backward", "bf16", ln_shape, ln * 2 * 4 + 3 * params + stats, ln_bwd16},
        {"softmax forward (scale, mask)", "fp32", sm_shape, sm * 4 * 2 + msk, sm_fwd},
        {"softmax forward (scale, mask)", "bf16", sm_shape, sm * 2 * 2 + msk, sm_fwd16},
        {"softmax backward", "fp32", sm_shape, sm * 4 * 4, sm_bwd},
        {"softmax backward", "bf16", sm_shape, sm * 2 * 4, sm_bwd16},
        {"gelu forward", "fp32", ge_shape, ge * 4 * 2, gelu_fwd},
        {"gelu forward", "bf16", ge_shape, ge * 2 * 2, gelu_fwd16},
    };
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("genre kernels, %s, %s, peak memory bandwidth %.0f GB/s\n\n", date, prop.name, peak);
    printf("| op | dtype | shape | us per call | GB/s | of peak |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        const Bench *k = &benches[i];
        float ms = time_ms(k->run);
        double gbs = k->bytes / (ms * 1e-3) / 1e9;
        printf("| %s | %s | %s | %.1f | %.0f | %.0f%% |\n", k->op, k->dtype, k->shape, ms * 1e3, gbs,
               100 * gbs / peak);
    }
    void *all[] = {a, b, c, d, w, bias, dw, db, mean, rstd, mask, ln_work};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cuda_must(cudaFree(all[i]));
    return 0;
}
