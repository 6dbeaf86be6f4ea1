/* A kernel compiled with CUDASIM_COUNT_FLAGS, for the counter's own test
 * (tests/cudasim/test_count.c): out[i] = in[i] + in[n - 1 - i], so every
 * input sector is read twice and must count once. */
#include "kernels/cuda_common.h"

__global__ void counted_mirror_kernel(float *out, const float *in, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] + in[n - 1 - i];
}

extern "C" void cudasim_counted_mirror(float *out, const float *in, int n)
{
    LAUNCH(counted_mirror_kernel, ceil_div((size_t)n, 128), 128, 0, 0, out, in, n);
}
