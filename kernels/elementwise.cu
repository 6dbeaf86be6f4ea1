/* The small ops of a training step around the GEMMs, each equal to its CPU
 * op: the residual add (src/ops/residual.h), ReLU (src/ops/relu.h), the
 * [CLS] row gather and scatter-add (src/ops/rows.h) and the additive
 * attention mask (softmax_mask_additive, src/ops/softmax.h); a linear
 * layer's bias is cuBLASLt's, added by the forward GEMM's epilogue and its
 * gradient summed by the weight-gradient GEMM's (models/backend_cuda.c).
 * Each is one rounding per element or none, so they equal the CPU's bit
 * for bit: grid-stride loops over the elements (grid_stride_blocks),
 * consecutive threads on consecutive elements.
 * Templates over the element type (float or bf16): the bf16 variants
 * compute in fp32 and round each stored value once, and convert_bf16_cuda
 * rounds fp32 to bf16. */
#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/ops/softmax.h"

#define FOR_EACH(i, n)                                                         \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)blockDim.x * gridDim.x)

template <class T>
__global__ void residual_add_kernel(T *y, const T *x, size_t n)
{
    FOR_EACH(i, n) y[i] = from_f32<T>(fadd_rn(to_f32(y[i]), to_f32(x[i])));
}

template <class T>
__global__ void relu_forward_kernel(T *out, const T *inp, size_t n)
{
    FOR_EACH(i, n) {
        float x = to_f32(inp[i]);
        out[i] = from_f32<T>(x > 0.0f ? x : 0.0f);
    }
}

template <class T>
__global__ void relu_backward_kernel(T *dinp, bool accumulate, const T *dout, const T *inp, size_t n)
{
    FOR_EACH(i, n) {
        if (to_f32(inp[i]) > 0.0f)
            dinp[i] = from_f32<T>(fadd_rn(accumulate ? to_f32(dinp[i]) : 0.0f, to_f32(dout[i])));
        else if (!accumulate)
            dinp[i] = from_f32<T>(0.0f);
    }
}

/* Element i of the rows x cols compact side is element (r, c) of row
 * r * stride of the wide side. */
template <bool SCATTER, class T>
__global__ void rows_kernel(T *dst, const T *src, int cols, int stride, size_t n)
{
    FOR_EACH(i, n) {
        size_t r = i / cols, wide = (r * stride) * cols + i % cols;
        if (SCATTER)
            dst[wide] = from_f32<T>(fadd_rn(to_f32(dst[wide]), to_f32(src[i])));
        else
            dst[i] = src[wide];
    }
}

__global__ void convert_bf16_kernel(__nv_bfloat16 *out, const float *inp, size_t n)
{
    FOR_EACH(i, n) out[i] = from_f32<__nv_bfloat16>(inp[i]);
}

__global__ void mask_additive_kernel(float *out, const int32_t *mask, size_t n)
{
    FOR_EACH(i, n) out[i] = mask && !mask[i] ? SOFTMAX_MASKED : 0.0f;
}

#undef FOR_EACH

/* One grid-stride launch of `kernel` over n elements. */
#define LAUNCH_N(kernel, n, stream, ...)                                          \
    do {                                                                          \
        if ((n) == 0) return 0;                                                   \
        LAUNCH(kernel, grid_stride_blocks(n), 256, 0, stream, __VA_ARGS__, (size_t)(n)); \
        CUDA_CHECK(cudaGetLastError());                                           \
        return 0;                                                                 \
    } while (0)

template <class T> static int residual_add(T *y, const T *x, size_t n, cudaStream_t stream)
{
    LAUNCH_N(residual_add_kernel<T>, n, stream, y, x);
}

template <class T> static int relu_forward(T *out, const T *inp, size_t n, cudaStream_t stream)
{
    LAUNCH_N(relu_forward_kernel<T>, n, stream, out, inp);
}

template <class T>
static int relu_backward(T *dinp, bool accumulate, const T *dout, const T *inp, size_t n, cudaStream_t stream)
{
    LAUNCH_N(relu_backward_kernel<T>, n, stream, dinp, accumulate, dout, inp);
}

template <bool SCATTER, class T>
static int rows_op(T *dst, const T *src, int rows, int cols, int stride, cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    /* parenthesized, or LAUNCH would split the template at its comma */
    LAUNCH_N((rows_kernel<SCATTER, T>), (size_t)rows * cols, stream, dst, src, cols, stride);
}

extern "C" {

int residual_add_cuda(float *y, const float *x, size_t n, cudaStream_t stream)
{
    return residual_add(y, x, n, stream);
}

int relu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream)
{
    return relu_forward(out, inp, n, stream);
}

int relu_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, cudaStream_t stream)
{
    return relu_forward(out, inp, n, stream);
}

int relu_backward_cuda(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n,
                       cudaStream_t stream)
{
    return relu_backward(dinp, accumulate, dout, inp, n, stream);
}

int relu_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, const bf16 *inp, size_t n,
                            cudaStream_t stream)
{
    return relu_backward(dinp, accumulate, dout, inp, n, stream);
}

int rows_gather_cuda(float *dst, const float *src, int rows, int cols, int stride,
                     cudaStream_t stream)
{
    return rows_op<false>(dst, src, rows, cols, stride, stream);
}

int rows_gather_cuda_bf16(bf16 *dst, const bf16 *src, int rows, int cols, int stride,
                          cudaStream_t stream)
{
    return rows_op<false>(dst, src, rows, cols, stride, stream);
}

int rows_scatter_add_cuda(float *dst, const float *src, int rows, int cols, int stride,
                          cudaStream_t stream)
{
    return rows_op<true>(dst, src, rows, cols, stride, stream);
}

int rows_scatter_add_cuda_bf16(bf16 *dst, const bf16 *src, int rows, int cols, int stride,
                               cudaStream_t stream)
{
    return rows_op<true>(dst, src, rows, cols, stride, stream);
}

int softmax_mask_additive_cuda(float *out, const int32_t *mask, size_t n, cudaStream_t stream)
{
    LAUNCH_N(mask_additive_kernel, n, stream, out, mask);
}

int convert_bf16_cuda(bf16 *out, const float *inp, size_t n, cudaStream_t stream)
{
    LAUNCH_N(convert_bf16_kernel, n, stream, out, inp);
}

}
