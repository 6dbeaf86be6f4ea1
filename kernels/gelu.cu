/* GELU, erf form (HuggingFace DistilBERT's "gelu"), forward and backward,
 * as src/ops/gelu.h computes it: out = 0.5 x (1 + erf(x / sqrt 2)); the
 * backward accumulates dout * (cdf(x) + x pdf(x)) into dinp.
 * Elementwise over n values (size_t): a grid-stride loop
 * (grid_stride_blocks, cuda_common.h), so any n works. */
#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

static const float SQRT1_2 = 0.70710678118654752440f;
static const float INV_SQRT_2PI = 0.3989422804014327f;

template <class T>
__global__ void gelu_forward_kernel(T *out, const T *inp, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x) {
        float x = to_f32(inp[i]);
        out[i] = from_f32<T>(0.5f * x * (1.0f + erff(x * SQRT1_2)));
    }
}

template <class T>
__global__ void gelu_backward_kernel(T *dinp, bool accumulate, const T *dout, const T *inp, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x) {
        float x = to_f32(inp[i]);
        float cdf = 0.5f * (1.0f + erff(x * SQRT1_2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] = from_f32<T>((accumulate ? to_f32(dinp[i]) : 0.0f) + to_f32(dout[i]) * (cdf + x * pdf));
    }
}

template <class T>
static int forward(T *out, const T *inp, size_t n, cudaStream_t stream)
{
    if (n == 0) return 0;
    LAUNCH(gelu_forward_kernel<T>, grid_stride_blocks(n), 256, 0, stream, out, inp, n);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T>
static int backward(T *dinp, bool accumulate, const T *dout, const T *inp, size_t n, cudaStream_t stream)
{
    if (n == 0) return 0;
    LAUNCH(gelu_backward_kernel<T>, grid_stride_blocks(n), 256, 0, stream, dinp, accumulate, dout, inp, n);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

extern "C" {

int gelu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream)
{
    return forward(out, inp, n, stream);
}

int gelu_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, cudaStream_t stream)
{
    return forward(out, inp, n, stream);
}

int gelu_backward_cuda(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n,
                       cudaStream_t stream)
{
    return backward(dinp, accumulate, dout, inp, n, stream);
}

int gelu_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, const bf16 *inp, size_t n,
                            cudaStream_t stream)
{
    return backward(dinp, accumulate, dout, inp, n, stream);
}

}
