/* LayerNorm over the last dimension, forward and backward, as
 * src/ops/layernorm.h computes it: out = (x - mean) * rstd * weight + bias,
 * rows x dim row-major, mean and rstd saved per row, backward accumulating.
 *
 * Forward and the input gradient: one warp per row (8 rows per 256-thread
 * block), lanes striding over the row so loads coalesce; two passes (mean,
 * then the centered variance) in fp32, as exact as the CPU's, re-reading the
 * row from cache rather than holding it in registers, so any dim works.
 * The residual variant adds the block's input first, in the same kernel:
 * res = dropout(inp) + residual, each element rounded as the dropout and
 * residual kernels round it and stored (the backward needs it), then
 * normalised exactly as the plain forward normalises a stored res, so the
 * bits equal dropout, residual_add then layernorm_forward. The dropout
 * pass walks the row a Philox block per lane (dropout_mask.h), the sums
 * then read the row back lane-strided, after a __syncwarp; its backward
 * passes the input gradient, once stored, through the dropout the same way.
 * Weight and bias gradients: the deterministic one-launch column sums of
 * colsum.h (no floating-point atomics) through the caller's column-sum
 * workspace, layernorm_backward_workspace_size(rows, dim) bytes: colsum.h's
 * counters (zero before the first launch, left zero), then 2 x ceil(rows /
 * 64) x dim floats for up to 4M rows. Identical inputs give identical bits. */
#include "kernels/colsum.h"
#include "kernels/cuda_common.h"
#include "kernels/dropout_mask.h"
#include "kernels/kernels.h"

static const int ROWS_PER_BLOCK = 8;   /* warps per 256-thread block */

/* With `residual` non-null, the row normalised is res = dropout(inp) +
 * residual, rounded to T as the unfused kernels round it and stored; the
 * passes after re-read it from res. Each element is read and written by
 * one lane only, so res may be inp. */
template <class T>
__global__ void layernorm_forward_kernel(T *out, T *res, float *mean, float *rstd, const T *inp,
                                         const T *residual, DropoutRows drop, const float *weight,
                                         const float *bias, int rows, int dim, float eps)
{
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return; /* whole warps leave; there is no block barrier */
    const T *x = inp + (size_t)row * dim;
    T *y = out + (size_t)row * dim;
    if (residual) {
        const T *a = residual + (size_t)row * dim;
        T *z = res + (size_t)row * dim;
        dropout_row_pass(drop, row, dim, lane, [&](int i, const uint32_t *w, int j) {
            float d = to_f32(from_f32<T>(dropout_value(drop.m, w, j, to_f32(x[i]))));
            z[i] = from_f32<T>(fadd_rn(d, to_f32(a[i])));
        });
        __syncwarp(); /* the sums read elements other lanes stored */
        x = z;
    }
    float s = 0.0f;
    for (int i = lane; i < dim; i += 32) s += to_f32(x[i]);
    float m = warp_sum(s) / dim;
    float v = 0.0f;
    for (int i = lane; i < dim; i += 32) {
        float d = to_f32(x[i]) - m;
        v += d * d;
    }
    float r = rsqrtf(warp_sum(v) / dim + eps);
    for (int i = lane; i < dim; i += 32)
        y[i] = from_f32<T>(((to_f32(x[i]) - m) * r) * weight[i] + bias[i]);
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* With `ddrop` non-null, also ddrop = the dropout's backward of the
 * stored dinp (accumulate is false there). */
template <class T>
__global__ void layernorm_backward_input_kernel(T *dinp, bool accumulate, T *ddrop, DropoutRows drop,
                                                const T *dout, const T *inp, const float *weight,
                                                const float *mean, const float *rstd, int rows, int dim)
{
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T *x = inp + (size_t)row * dim, *dy = dout + (size_t)row * dim;
    T *dx = dinp + (size_t)row * dim;
    float m = mean[row], r = rstd[row];
    float sum_dn = 0.0f, sum_dn_n = 0.0f;
    for (int i = lane; i < dim; i += 32) {
        float n = (to_f32(x[i]) - m) * r, dn = to_f32(dy[i]) * weight[i];
        sum_dn += dn;
        sum_dn_n += dn * n;
    }
    float a = warp_sum(sum_dn) / dim, b = warp_sum(sum_dn_n) / dim;
    for (int i = lane; i < dim; i += 32) {
        float n = (to_f32(x[i]) - m) * r;
        dx[i] = from_f32<T>((accumulate ? to_f32(dx[i]) : 0.0f) + r * (to_f32(dy[i]) * weight[i] - a - n * b));
    }
    if (ddrop) {
        __syncwarp(); /* the pass reads elements other lanes stored */
        T *dd = ddrop + (size_t)row * dim;
        dropout_row_pass(drop, row, dim, lane, [&](int i, const uint32_t *w, int j) {
            dd[i] = from_f32<T>(fadd_rn(0.0f, dropout_value(drop.m, w, j, to_f32(dx[i]))));
        });
    }
}

/* The parameter gradients' terms of element (r, c): dy * xhat for the
 * weight, dy for the bias (colsum.h sums them over the rows). */
template <class T> struct LayerNormParamTerms {
    static const int K = 2;
    const T *dout, *inp;
    const float *mean, *rstd;
    int dim;
    __device__ void operator()(int r, int c, float t[K]) const
    {
        float dy = to_f32(dout[(size_t)r * dim + c]);
        t[0] = (to_f32(inp[(size_t)r * dim + c]) - mean[r]) * rstd[r] * dy;
        t[1] = dy;
    }
};

template <class T>
static int forward(T *out, T *res, float *mean, float *rstd, const T *inp, const T *residual,
                   const float *weight, const float *bias, int rows, int dim, float eps,
                   const DropoutSite *drop, cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    LAUNCH(layernorm_forward_kernel<T>, ceil_div(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0,
           stream, out, res, mean, rstd, inp, residual, dropout_rows(drop), weight, bias, rows, dim, eps);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T>
static int backward(T *dinp, bool accumulate, T *ddrop, const DropoutSite *drop, float *dweight, float *dbias,
                    const T *dout, const T *inp, const float *weight, const float *mean, const float *rstd,
                    int rows, int dim, void *work, cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    LAUNCH(layernorm_backward_input_kernel<T>, ceil_div(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0,
           stream, dinp, accumulate, ddrop, dropout_rows(drop), dout, inp, weight, mean, rstd, rows, dim);
    CUDA_CHECK(cudaGetLastError());
    LayerNormParamTerms<T> terms = {dout, inp, mean, rstd, dim};
    return colsum(ColsumOut<2>{{dweight, dbias}}, terms, rows, dim, work, stream);
}

extern "C" {

size_t layernorm_backward_workspace_size(int rows, int dim)
{
    return colsum_workspace_size(rows, dim, 2);
}

int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int rows, int dim, float eps,
                           cudaStream_t stream)
{
    return forward(out, (float *)NULL, mean, rstd, inp, (const float *)NULL, weight, bias, rows, dim,
                   eps, NULL, stream);
}

int layernorm_forward_cuda_bf16(bf16 *out, float *mean, float *rstd, const bf16 *inp,
                                const float *weight, const float *bias, int rows, int dim,
                                float eps, cudaStream_t stream)
{
    return forward(out, (bf16 *)NULL, mean, rstd, inp, (const bf16 *)NULL, weight, bias, rows, dim,
                   eps, NULL, stream);
}

int layernorm_residual_forward_cuda(float *out, float *res, float *mean, float *rstd, const float *inp,
                                    const float *residual, const float *weight, const float *bias,
                                    int rows, int dim, float eps, const DropoutSite *drop,
                                    cudaStream_t stream)
{
    return forward(out, res, mean, rstd, inp, residual, weight, bias, rows, dim, eps, drop, stream);
}

int layernorm_residual_forward_cuda_bf16(bf16 *out, bf16 *res, float *mean, float *rstd, const bf16 *inp,
                                         const bf16 *residual, const float *weight, const float *bias,
                                         int rows, int dim, float eps, const DropoutSite *drop,
                                         cudaStream_t stream)
{
    return forward(out, res, mean, rstd, inp, residual, weight, bias, rows, dim, eps, drop, stream);
}

int layernorm_residual_backward_cuda(float *dres, float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *res, const float *weight, const float *mean, const float *rstd,
                                     int rows, int dim, const DropoutSite *drop, void *work, cudaStream_t stream)
{
    return backward(dres, false, dinp, drop, dweight, dbias, dout, res, weight, mean, rstd, rows, dim, work,
                    stream);
}

int layernorm_residual_backward_cuda_bf16(bf16 *dres, bf16 *dinp, float *dweight, float *dbias, const bf16 *dout,
                                          const bf16 *res, const float *weight, const float *mean,
                                          const float *rstd, int rows, int dim, const DropoutSite *drop,
                                          void *work, cudaStream_t stream)
{
    return backward(dres, false, dinp, drop, dweight, dbias, dout, res, weight, mean, rstd, rows, dim, work,
                    stream);
}

int layernorm_backward_cuda(float *dinp, bool accumulate, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int rows, int dim, void *work,
                            cudaStream_t stream)
{
    return backward(dinp, accumulate, (float *)NULL, NULL, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim,
                    work, stream);
}

int layernorm_backward_cuda_bf16(bf16 *dinp, bool accumulate, float *dweight, float *dbias, const bf16 *dout,
                                 const bf16 *inp, const float *weight, const float *mean,
                                 const float *rstd, int rows, int dim, void *work,
                                 cudaStream_t stream)
{
    return backward(dinp, accumulate, (bf16 *)NULL, NULL, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim,
                    work, stream);
}

}
