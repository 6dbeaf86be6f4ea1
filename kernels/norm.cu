/* The global gradient L2 norm and clipping by it, as clip_grad_norm
 * (src/optim/adamw.h) computes them, and a finite check.
 * The norm, deterministic without atomics: stage one, one 256-thread block
 * per fixed chunk of ADAMW_NORM_CHUNK values (the CPU op's chunk): thread t
 * adds the squares of values t, t + 256, ... of its chunk in double, in
 * order, then a fixed binary tree over the 256 partials gives the chunk's
 * sum (chunks doubles). Stage two, one block: the same over the chunk sums
 * in chunk order, then sqrt, rounded to float, to *norm. The order depends
 * on the indices alone, so the same bits every run; the CPU sums other
 * partials, also in double, so the two norms agree to well below a float's
 * rounding. Zeros after the values add nothing, not even rounding, so the
 * chunk sums of ZeRO-1's shards (multiples of the chunk, zero-padded),
 * gathered in rank order, give stage two the whole gradient's norm bit for
 * bit.
 * Clipping reads the norm on the device: coef = max_norm / (norm + 1e-6f),
 * rounded as the CPU's, and grad *= coef where coef < 1 (one product per
 * element: bit for bit the CPU's for the same norm). */
#include <math.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

static const size_t NORM_CHUNK = ADAMW_NORM_CHUNK;
static const int NORM_THREADS = 256;

/* Thread 0 gets the tree sum of the block's 256 values (s: shared). */
__device__ __forceinline__ double tree_sum(double v, double *s)
{
    s[threadIdx.x] = v;
    __syncthreads();
    for (int half = NORM_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    return s[0];
}

__global__ void norm_chunks_kernel(double *part, const float *grad, size_t n)
{
    __shared__ double s[NORM_THREADS];
    size_t lo = (size_t)blockIdx.x * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
    double acc = 0.0;
    for (size_t i = lo + threadIdx.x; i < hi; i += NORM_THREADS) acc += (double)grad[i] * grad[i];
    double sum = tree_sum(acc, s);
    if (threadIdx.x == 0) part[blockIdx.x] = sum;
}

__global__ void norm_final_kernel(float *norm, const double *part, size_t chunks)
{
    __shared__ double s[NORM_THREADS];
    double acc = 0.0;
    for (size_t c = threadIdx.x; c < chunks; c += NORM_THREADS) acc += part[c];
    double sum = tree_sum(acc, s);
    if (threadIdx.x == 0) *norm = (float)sqrt(sum);
}

__global__ void clip_kernel(float *grad, const float *norm, size_t n, float max_norm)
{
    float coef = fdiv_rn(max_norm, fadd_rn(*norm, 1e-6f));
    if (!(coef < 1.0f)) return;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x)
        grad[i] = fmul_rn(grad[i], coef);
}

__global__ void finite_kernel(int *flag, const float *x, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x)
        if (!isfinite(x[i])) *flag = 1; /* every writer writes the same 1 */
}

static size_t chunks_of(size_t n) { return (n + NORM_CHUNK - 1) / NORM_CHUNK; }

extern "C" {

size_t grad_norm_workspace_size(size_t n) { return (chunks_of(n) ? chunks_of(n) : 1) * sizeof(double); }

int grad_sum_squares_chunks_cuda(double *part, const float *grad, size_t n, cudaStream_t stream)
{
    if (n == 0) return 0;
    LAUNCH(norm_chunks_kernel, (unsigned)chunks_of(n), NORM_THREADS, 0, stream, part, grad, n);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

int grad_norm_of_chunks_cuda(float *norm, const double *part, size_t chunks, cudaStream_t stream)
{
    /* no chunks: the block writes a norm of 0 */
    LAUNCH(norm_final_kernel, 1, NORM_THREADS, 0, stream, norm, part, chunks);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

int grad_norm_cuda(float *norm, const float *grad, size_t n, void *work, cudaStream_t stream)
{
    return grad_sum_squares_chunks_cuda((double *)work, grad, n, stream) ||
                   grad_norm_of_chunks_cuda(norm, (const double *)work, chunks_of(n), stream)
               ? -1 : 0;
}

int grad_clip_cuda(float *grad, const float *norm, size_t n, float max_norm, cudaStream_t stream)
{
    if (n == 0) return 0;
    LAUNCH(clip_kernel, grid_stride_blocks(n), 256, 0, stream, grad, norm, n, max_norm);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

int clip_grad_norm_cuda(float *grad, float *norm, size_t n, float max_norm, void *work,
                        cudaStream_t stream)
{
    if (grad_norm_cuda(norm, grad, n, work, stream)) return -1;
    return grad_clip_cuda(grad, norm, n, max_norm, stream);
}

int finite_check_cuda(int *flag, const float *x, size_t n, cudaStream_t stream)
{
    if (n == 0) return 0;
    LAUNCH(finite_kernel, grid_stride_blocks(n), 256, 0, stream, flag, x, n);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

}
