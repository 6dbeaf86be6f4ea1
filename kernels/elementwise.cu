/* The small ops of a training step around the GEMMs, each equal to its CPU
 * op: the residual add (src/ops/residual.h), ReLU (src/ops/relu.h), the
 * [CLS] row gather and scatter-add (src/ops/rows.h), the additive attention
 * mask (softmax_mask_additive, src/ops/softmax.h) and a linear layer's bias
 * backward (src/ops/linear.h; cuBLASLt's epilogue adds the bias forward).
 * All but the bias backward are one rounding per element or none, so they
 * equal the CPU's bit for bit: grid-stride loops over the elements
 * (grid_stride_blocks), consecutive threads on consecutive elements. The
 * bias backward is a column sum over the N rows: the deterministic
 * two-stage sum of colsum.h through the caller's workspace
 * (linear_bias_backward_workspace_size: ceil(N / 64) x OC floats for up to
 * 4M rows), in a different order from the CPU's row-by-row sum. */
#include "kernels/colsum.h"
#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/ops/softmax.h"

#define FOR_EACH(i, n)                                                         \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)blockDim.x * gridDim.x)

__global__ void residual_add_kernel(float *y, const float *x, size_t n)
{
    FOR_EACH(i, n) y[i] = fadd_rn(y[i], x[i]);
}

__global__ void relu_forward_kernel(float *out, const float *inp, size_t n)
{
    FOR_EACH(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

__global__ void relu_backward_kernel(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n)
{
    FOR_EACH(i, n) {
        if (inp[i] > 0.0f) dinp[i] = fadd_rn(accumulate ? dinp[i] : 0.0f, dout[i]);
        else if (!accumulate) dinp[i] = 0.0f;
    }
}

/* Element i of the rows x cols compact side is element (r, c) of row
 * r * stride of the wide side. */
template <bool SCATTER>
__global__ void rows_kernel(float *dst, const float *src, int cols, int stride, size_t n)
{
    FOR_EACH(i, n) {
        size_t r = i / cols, wide = (r * stride) * cols + i % cols;
        if (SCATTER)
            dst[wide] = fadd_rn(dst[wide], src[i]);
        else
            dst[i] = src[wide];
    }
}

__global__ void mask_additive_kernel(float *out, const int32_t *mask, size_t n)
{
    FOR_EACH(i, n) out[i] = mask && !mask[i] ? SOFTMAX_MASKED : 0.0f;
}

/* The bias gradient's one term of element (r, c): dout itself. */
struct BiasTerms {
    static const int K = 1;
    const float *dout;
    int dim;
    __device__ void operator()(int r, int c, float t[K]) const { t[0] = dout[(size_t)r * dim + c]; }
};

#undef FOR_EACH

/* One grid-stride launch of `kernel` over n elements. */
#define LAUNCH_N(kernel, n, stream, ...)                                          \
    do {                                                                          \
        if ((n) == 0) return 0;                                                   \
        LAUNCH(kernel, grid_stride_blocks(n), 256, 0, stream, __VA_ARGS__, (size_t)(n)); \
        CUDA_CHECK(cudaGetLastError());                                           \
        return 0;                                                                 \
    } while (0)

extern "C" {

int residual_add_cuda(float *y, const float *x, size_t n, cudaStream_t stream)
{
    LAUNCH_N(residual_add_kernel, n, stream, y, x);
}

int relu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream)
{
    LAUNCH_N(relu_forward_kernel, n, stream, out, inp);
}

int relu_backward_cuda(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n,
                       cudaStream_t stream)
{
    LAUNCH_N(relu_backward_kernel, n, stream, dinp, accumulate, dout, inp);
}

int rows_gather_cuda(float *dst, const float *src, int rows, int cols, int stride,
                     cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    LAUNCH_N(rows_kernel<false>, (size_t)rows * cols, stream, dst, src, cols, stride);
}

int rows_scatter_add_cuda(float *dst, const float *src, int rows, int cols, int stride,
                          cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    LAUNCH_N(rows_kernel<true>, (size_t)rows * cols, stream, dst, src, cols, stride);
}

int softmax_mask_additive_cuda(float *out, const int32_t *mask, size_t n, cudaStream_t stream)
{
    LAUNCH_N(mask_additive_kernel, n, stream, out, mask);
}

size_t linear_bias_backward_workspace_size(int N, int OC) { return colsum_workspace_size(N, OC, 1); }

int linear_bias_backward_cuda(float *dbias, const float *dout, int N, int OC, void *work,
                              cudaStream_t stream)
{
    BiasTerms terms = {dout, OC};
    return colsum(ColsumOut<1>{{dbias}}, terms, N, OC, work, stream);
}

}
