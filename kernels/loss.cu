/* The multi-label losses fused with their gradient, as loss_forward
 * (src/ops/loss.h) computes them: each element's loss and derivative in
 * double by the CPU's own formulas (src/ops/loss_element.h, compiled for
 * the device), dlogits = derivative / (B * L) * grad_scale rounded to float
 * as on the CPU, and the mean loss.
 * Stage one, a grid-stride loop over the B x L elements: dlogits and each
 * element's loss (double) into the workspace. Stage two, one block of 256
 * threads: thread t adds losses t, t + 256, ... in order, then a fixed
 * binary tree over the 256 partials in shared memory (each level adding
 * element k + half into k); thread 0 writes the mean as a float. The order
 * is fixed by the indices alone: identical bits every run. The CPU adds the
 * losses one after another; both sums are double, so the float means agree
 * to rounding (~1e-16 before the final rounding to float). */
#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/ops/loss_element.h"

static const int SUM_THREADS = 256;

__global__ void loss_elements_kernel(double *elem, float *dlogits, Loss ls, const float *logits,
                                     const float *targets, int L, size_t n, double inv,
                                     float grad_scale)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x) {
        double g;
        elem[i] = loss_element(&ls, (int)(i % L), logits[i], targets[i], &g);
        if (dlogits) dlogits[i] = (float)(g * inv * grad_scale);
    }
}

__global__ void loss_mean_kernel(float *mean, const double *elem, size_t n, double inv)
{
    __shared__ double s[SUM_THREADS];
    double acc = 0.0;
    for (size_t i = threadIdx.x; i < n; i += SUM_THREADS) acc += elem[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = SUM_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) *mean = (float)(s[0] * inv);
}

extern "C" {

size_t loss_workspace_size(int B, int L)
{
    return B > 0 && L > 0 ? (size_t)B * L * sizeof(double) : 0;
}

int loss_forward_cuda(const Loss *loss, float *mean_loss, float *dlogits, const float *logits,
                      const float *targets, int B, int L, float grad_scale, void *work,
                      cudaStream_t stream)
{
    if (B <= 0 || L <= 0) return 0;
    size_t n = (size_t)B * L;
    double inv = 1.0 / ((double)B * L);
    LAUNCH(loss_elements_kernel, grid_stride_blocks(n), 256, 0, stream, (double *)work, dlogits,
           *loss, logits, targets, L, n, inv, grad_scale);
    CUDA_CHECK(cudaGetLastError());
    LAUNCH(loss_mean_kernel, 1, SUM_THREADS, 0, stream, mean_loss, (const double *)work, n, inv);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

}
