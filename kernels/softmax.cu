/* Softmax over the last dimension of scale * x + mask, forward and
 * backward, as src/ops/softmax.h computes it: rows x cols row-major, the
 * additive fp32 mask row r / rows_per_mask (NULL for none; -FLT_MAX entries
 * reproduce HuggingFace's masked_fill, so an all-masked row is uniform), the
 * backward dinp += scale * y * (dy - sum(y * dy)).
 * One block per row, blockDim = cols rounded up to a warp, at most 256;
 * threads stride over the row. Forward: three passes over the (cached) row:
 * the max, the sum of exponentials, the normalized write, the two block
 * reductions going through warp shuffles and 32 floats of shared memory
 * each (separate arrays, so each needs one barrier only).
 * Recomputing scale * x + mask each pass keeps bf16 outputs exact to one
 * rounding and needs no row buffer, so any cols works. */
#include <math.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

template <class T>
__global__ void softmax_forward_kernel(T *out, const T *inp, const float *mask, float scale,
                                       int cols, int rows_per_mask)
{
    __shared__ float s_max[32], s_sum[32];
    const T *x = inp + (size_t)blockIdx.x * cols;
    const float *m = mask ? mask + (size_t)(blockIdx.x / rows_per_mask) * cols : NULL;
    T *y = out + (size_t)blockIdx.x * cols;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        mx = fmaxf(mx, scale * to_f32(x[j]) + (m ? m[j] : 0.0f));
    mx = block_max(mx, s_max);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        sum += expf(scale * to_f32(x[j]) + (m ? m[j] : 0.0f) - mx);
    float inv = 1.0f / block_sum(sum, s_sum);
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        y[j] = from_f32<T>(expf(scale * to_f32(x[j]) + (m ? m[j] : 0.0f) - mx) * inv);
}

template <class T>
__global__ void softmax_backward_kernel(T *dinp, const T *dout, const T *out, float scale,
                                        int cols)
{
    __shared__ float s[32];
    const T *y = out + (size_t)blockIdx.x * cols, *dy = dout + (size_t)blockIdx.x * cols;
    T *dx = dinp + (size_t)blockIdx.x * cols;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += to_f32(y[j]) * to_f32(dy[j]);
    dot = block_sum(dot, s);
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        dx[j] = from_f32<T>(to_f32(dx[j]) + scale * to_f32(y[j]) * (to_f32(dy[j]) - dot));
}

static unsigned block_for(int cols)
{
    unsigned b = ceil_div((size_t)cols, 32) * 32;
    return b < 256 ? b : 256;
}

template <class T>
static int forward(T *out, const T *inp, const float *mask, float scale, int rows, int cols,
                   int rows_per_mask, cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    LAUNCH(softmax_forward_kernel<T>, (unsigned)rows, block_for(cols), 0, stream, out, inp, mask,
           scale, cols, rows_per_mask);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T>
static int backward(T *dinp, const T *dout, const T *out, float scale, int rows, int cols,
                    cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    LAUNCH(softmax_backward_kernel<T>, (unsigned)rows, block_for(cols), 0, stream, dinp, dout, out,
           scale, cols);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

extern "C" {

int softmax_forward_cuda(float *out, const float *inp, const float *mask, float scale, int rows,
                         int cols, int rows_per_mask, cudaStream_t stream)
{
    return forward(out, inp, mask, scale, rows, cols, rows_per_mask, stream);
}

int softmax_forward_cuda_bf16(bf16 *out, const bf16 *inp, const float *mask, float scale,
                              int rows, int cols, int rows_per_mask, cudaStream_t stream)
{
    return forward(out, inp, mask, scale, rows, cols, rows_per_mask, stream);
}

int softmax_backward_cuda(float *dinp, const float *dout, const float *out, float scale, int rows,
                          int cols, cudaStream_t stream)
{
    return backward(dinp, dout, out, scale, rows, cols, stream);
}

int softmax_backward_cuda_bf16(bf16 *dinp, const bf16 *dout, const bf16 *out, float scale,
                               int rows, int cols, cudaStream_t stream)
{
    return backward(dinp, dout, out, scale, rows, cols, stream);
}

}
