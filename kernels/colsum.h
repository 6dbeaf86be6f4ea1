/* Deterministic column sums of a rows x dim matrix of terms, in two stages
 * and no atomics, for the parameter gradients that sum over the batch
 * (LayerNorm's weight and bias, a linear layer's bias). A Terms functor
 * gives the K terms of element (r, c): terms(r, c, t) fills t[0..K).
 * Stage one: a block of 32 columns x 8 row lanes sums a chunk of rows
 * (COLSUM_CHUNK, doubled until the chunks fit gridDim.y), each lane its rows
 * in order, the 8 lane partials then added in lane order through shared
 * memory, into the workspace: K x chunks x dim floats. Stage two: one
 * thread per column adds the chunk partials in chunk order and accumulates
 * them into out[k][c]. Identical inputs give identical bits. */
#ifndef GENRE_KERNELS_COLSUM_H
#define GENRE_KERNELS_COLSUM_H

#include "kernels/cuda_common.h"

static const int COLSUM_CHUNK = 64;

static inline int colsum_chunk_rows(int rows)
{
    int chunk = COLSUM_CHUNK;
    while (ceil_div(rows, chunk) > 65535) chunk *= 2; /* gridDim.y limit */
    return chunk;
}

/* Bytes of workspace for K sums of rows x dim. */
static inline size_t colsum_workspace_size(int rows, int dim, int K)
{
    if (rows <= 0 || dim <= 0) return 0;
    return (size_t)K * ceil_div(rows, colsum_chunk_rows(rows)) * dim * sizeof(float);
}

/* Where stage two accumulates: K device arrays of dim floats. */
template <int K> struct ColsumOut {
    float *p[K];
};

template <class Terms>
__global__ void colsum_partial_kernel(float *part, Terms terms, int rows, int dim, int chunk)
{
    const int K = Terms::K;
    __shared__ float s[K][8][33];
    int c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * chunk;
    int r1 = rows - r0 < chunk ? rows : r0 + chunk;
    float acc[K];
    for (int k = 0; k < K; k++) acc[k] = 0.0f;
    if (c < dim) {
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            float t[K];
            terms(r, c, t);
            for (int k = 0; k < K; k++) acc[k] += t[k];
        }
    }
    for (int k = 0; k < K; k++) s[k][threadIdx.y][threadIdx.x] = acc[k];
    __syncthreads();
    if (threadIdx.y == 0 && c < dim) {
        for (int j = 1; j < 8; j++)
            for (int k = 0; k < K; k++) acc[k] += s[k][j][threadIdx.x];
        for (int k = 0; k < K; k++) part[((size_t)k * gridDim.y + blockIdx.y) * dim + c] = acc[k];
    }
}

template <int K>
__global__ void colsum_final_kernel(ColsumOut<K> out, const float *part, int nchunks, int dim)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    for (int k = 0; k < K; k++) {
        float s = 0.0f;
        for (int j = 0; j < nchunks; j++) s += part[((size_t)k * nchunks + j) * dim + c];
        out.p[k][c] += s;
    }
}

/* out[k][c] += the sum over rows of terms(r, c)[k]; work as
 * colsum_workspace_size(rows, dim, Terms::K) says. */
template <class Terms>
static int colsum(ColsumOut<Terms::K> out, Terms terms, int rows, int dim, void *work,
                  cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    int chunk = colsum_chunk_rows(rows), nchunks = (int)ceil_div(rows, chunk);
    LAUNCH(colsum_partial_kernel<Terms>, dim3(ceil_div(dim, 32), nchunks), dim3(32, 8), 0, stream,
           (float *)work, terms, rows, dim, chunk);
    CUDA_CHECK(cudaGetLastError());
    LAUNCH(colsum_final_kernel<Terms::K>, ceil_div(dim, 256), 256, 0, stream, out,
           (const float *)work, nchunks, dim);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

#endif
