/* LayerNorm over the last dimension, forward and backward, as
 * src/ops/layernorm.h computes it: out = (x - mean) * rstd * weight + bias,
 * rows x dim row-major, mean and rstd saved per row, backward accumulating.
 *
 * Forward and the input gradient: one warp per row (8 rows per 256-thread
 * block), lanes striding over the row so loads coalesce; two passes (mean,
 * then the centered variance) in fp32, as exact as the CPU's, re-reading the
 * row from cache rather than holding it in registers, so any dim works.
 * Weight and bias gradients: a deterministic two-stage sum, no atomics. Stage
 * one: a block of 32 columns x 8 row lanes sums a chunk of 64 rows, the 8
 * partials combined in a fixed order through shared memory; stage two: one
 * thread per column adds the chunk partials in chunk order and accumulates
 * into dweight and dbias. Identical inputs give identical bits. */
#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

static const int ROWS_PER_BLOCK = 8;   /* warps per 256-thread block */
static const int CHUNK_ROWS = 64;      /* rows per stage-one block of the parameter sums */

template <class T>
__global__ void layernorm_forward_kernel(T *out, float *mean, float *rstd, const T *inp,
                                         const float *weight, const float *bias, int rows,
                                         int dim, float eps)
{
    int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return; /* whole warps leave; there is no block barrier */
    const T *x = inp + (size_t)row * dim;
    T *y = out + (size_t)row * dim;
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

template <class T>
__global__ void layernorm_backward_input_kernel(T *dinp, const T *dout, const T *inp,
                                                const float *weight, const float *mean,
                                                const float *rstd, int rows, int dim)
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
        dx[i] = from_f32<T>(to_f32(dx[i]) + r * (to_f32(dy[i]) * weight[i] - a - n * b));
    }
}

/* Stage one: block (32, 8) sums rows [blockIdx.y * chunk, +chunk) of 32
 * columns; partial sums go to part_w/part_b[blockIdx.y][column]. */
template <class T>
__global__ void layernorm_param_partial_kernel(float *part_w, float *part_b, const T *dout,
                                               const T *inp, const float *mean, const float *rstd,
                                               int rows, int dim, int chunk)
{
    __shared__ float sw[8][33], sb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * chunk;
    int r1 = rows - r0 < chunk ? rows : r0 + chunk;
    float dw = 0.0f, db = 0.0f;
    if (c < dim) {
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            float dy = to_f32(dout[(size_t)r * dim + c]);
            db += dy;
            dw += (to_f32(inp[(size_t)r * dim + c]) - mean[r]) * rstd[r] * dy;
        }
    }
    sw[threadIdx.y][threadIdx.x] = dw;
    sb[threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && c < dim) {
        for (int k = 1; k < 8; k++) {
            dw += sw[k][threadIdx.x];
            db += sb[k][threadIdx.x];
        }
        part_w[(size_t)blockIdx.y * dim + c] = dw;
        part_b[(size_t)blockIdx.y * dim + c] = db;
    }
}

/* Stage two: one thread per column, chunks in order. */
__global__ void layernorm_param_final_kernel(float *dweight, float *dbias, const float *part_w,
                                             const float *part_b, int nchunks, int dim)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float dw = 0.0f, db = 0.0f;
    for (int k = 0; k < nchunks; k++) {
        dw += part_w[(size_t)k * dim + c];
        db += part_b[(size_t)k * dim + c];
    }
    dweight[c] += dw;
    dbias[c] += db;
}

template <class T>
static int forward(T *out, float *mean, float *rstd, const T *inp, const float *weight,
                   const float *bias, int rows, int dim, float eps, cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    LAUNCH(layernorm_forward_kernel<T>, ceil_div(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0,
           stream, out, mean, rstd, inp, weight, bias, rows, dim, eps);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T>
static int backward(T *dinp, float *dweight, float *dbias, const T *dout, const T *inp,
                    const float *weight, const float *mean, const float *rstd, int rows, int dim,
                    cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    LAUNCH(layernorm_backward_input_kernel<T>, ceil_div(rows, ROWS_PER_BLOCK),
           32 * ROWS_PER_BLOCK, 0, stream, dinp, dout, inp, weight, mean, rstd, rows, dim);
    CUDA_CHECK(cudaGetLastError());

    int chunk = CHUNK_ROWS;
    while (ceil_div(rows, chunk) > 65535) chunk *= 2; /* gridDim.y limit */
    int nchunks = (int)ceil_div(rows, chunk);
    float *part = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&part, 2 * (size_t)nchunks * dim * sizeof(float), stream));
    float *part_w = part, *part_b = part + (size_t)nchunks * dim;
    LAUNCH(layernorm_param_partial_kernel<T>, dim3(ceil_div(dim, 32), nchunks), dim3(32, 8), 0,
           stream, part_w, part_b, dout, inp, mean, rstd, rows, dim, chunk);
    CUDA_CHECK(cudaGetLastError());
    LAUNCH(layernorm_param_final_kernel, ceil_div(dim, 256), 256, 0, stream, dweight, dbias,
           part_w, part_b, nchunks, dim);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFreeAsync(part, stream));
    return 0;
}

extern "C" {

int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int rows, int dim, float eps,
                           cudaStream_t stream)
{
    return forward(out, mean, rstd, inp, weight, bias, rows, dim, eps, stream);
}

int layernorm_forward_cuda_bf16(bf16 *out, float *mean, float *rstd, const bf16 *inp,
                                const float *weight, const float *bias, int rows, int dim,
                                float eps, cudaStream_t stream)
{
    return forward(out, mean, rstd, inp, weight, bias, rows, dim, eps, stream);
}

int layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int rows, int dim, cudaStream_t stream)
{
    return backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim, stream);
}

int layernorm_backward_cuda_bf16(bf16 *dinp, float *dweight, float *dbias, const bf16 *dout,
                                 const bf16 *inp, const float *weight, const float *mean,
                                 const float *rstd, int rows, int dim, cudaStream_t stream)
{
    return backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim, stream);
}

}
