/* Deterministic column sums of a rows x dim matrix of terms, in one launch
 * and no floating-point atomics, for the parameter gradients that sum over
 * the batch (LayerNorm's weight and bias; a linear layer's bias gradient is
 * cuBLASLt's BGRADB epilogue, models/backend_cuda.c). A Terms
 * functor gives the K terms of element (r, c): terms(r, c, t) fills t[0..K).
 *
 * A block of 32 columns (a slab) x 8 row lanes sums a chunk of rows
 * (COLSUM_CHUNK, doubled until the chunks fit gridDim.y), each lane its rows
 * in order, the 8 lane partials then added in lane order through shared
 * memory, into the workspace: K x chunks x dim floats. The last of a slab's
 * gridDim.y blocks to finish ("last block" reduction) then adds the slab's
 * chunk partials in chunk order and accumulates them into out[k][c], its
 * threads splitting the K x 32 outputs. Which block is last is counted by
 * an integer atomicAdd per slab: each of the 32 threads that write a
 * block's partials fences them (__threadfence) and then adds 1 to its
 * slab's counter, so the thread that brings it to 32 x gridDim.y knows
 * every partial of the slab is written; it fences again and tells its block
 * through shared memory and a barrier (so all threads take the same
 * branch), and the block resets the counter to 0 for the next launch. The
 * sums are the same additions in the same order whichever block is last
 * and whatever order the blocks run in: identical inputs give identical
 * bits (the same bits as the two-launch version before it).
 *
 * The workspace: COLSUM_SLABS unsigned counters (4 KiB), then the partials.
 * The counters must be zero before the first launch (cudaMemset once) and
 * each launch leaves them zero; the partials are scratch. The counter
 * region is the same size whatever the shape, so launches of any shapes
 * may share one workspace (sized for the largest) in one stream, but
 * nothing else may use it, and two launches in flight at once need two.
 * Sums over more than 32 x COLSUM_SLABS columns take one launch per
 * 32 x COLSUM_SLABS columns. */
#ifndef GENRE_KERNELS_COLSUM_H
#define GENRE_KERNELS_COLSUM_H

#include "kernels/cuda_common.h"

static const int COLSUM_CHUNK = 64;
static const int COLSUM_SLABS = 1024; /* counters: slabs (of 32 columns) per launch */
static const size_t COLSUM_COUNTER_BYTES = COLSUM_SLABS * sizeof(unsigned);

static inline int colsum_chunk_rows(int rows)
{
    int chunk = COLSUM_CHUNK;
    while (ceil_div(rows, chunk) > 65535) chunk *= 2; /* gridDim.y limit */
    return chunk;
}

/* Bytes of workspace for K sums of rows x dim: the counters, then
 * K x chunks x dim floats of partials. */
static inline size_t colsum_workspace_size(int rows, int dim, int K)
{
    if (rows <= 0 || dim <= 0) return 0;
    return COLSUM_COUNTER_BYTES + (size_t)K * ceil_div(rows, colsum_chunk_rows(rows)) * dim * sizeof(float);
}

/* Where the sums accumulate: K device arrays of dim floats. */
template <int K> struct ColsumOut {
    float *p[K];
};

/* Columns c0 + [0, 32 gridDim.x) of the sums; count[blockIdx.x] is the slab's counter. */
template <class Terms>
__global__ void colsum_kernel(ColsumOut<Terms::K> out, unsigned *count, float *part, Terms terms, int rows,
                              int dim, int chunk, int c0)
{
    const int K = Terms::K;
    __shared__ float s[K][8][33];
    __shared__ int last;
    int c = c0 + blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * chunk;
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
    if (threadIdx.x == 0 && threadIdx.y == 0) last = 0;
    for (int k = 0; k < K; k++) s[k][threadIdx.y][threadIdx.x] = acc[k];
    __syncthreads();
    if (threadIdx.y == 0) {
        if (c < dim) {
            for (int j = 1; j < 8; j++)
                for (int k = 0; k < K; k++) acc[k] += s[k][j][threadIdx.x];
            for (int k = 0; k < K; k++) part[((size_t)k * gridDim.y + blockIdx.y) * dim + c] = acc[k];
        }
        __threadfence(); /* this thread's partials, then its count */
        if (atomicAdd(&count[blockIdx.x], 1u) == 32 * gridDim.y - 1) {
            __threadfence(); /* every count seen: every partial of the slab is visible */
            last = 1;
        }
    }
    __syncthreads(); /* `last` to the whole block: all its threads take one branch */
    if (!last) return;
    const volatile float *vpart = part; /* written by other blocks: not from this SM's L1 */
    for (int o = threadIdx.y * 32 + threadIdx.x; o < K * 32; o += 32 * 8) {
        int k = o / 32, cc = c0 + blockIdx.x * 32 + o % 32;
        if (cc >= dim) continue;
        float sum = 0.0f;
        for (int j = 0; j < (int)gridDim.y; j++) sum += vpart[((size_t)k * gridDim.y + j) * dim + cc];
        out.p[k][cc] += sum;
    }
    if (threadIdx.x == 0 && threadIdx.y == 0) count[blockIdx.x] = 0; /* every block has counted */
}

/* out[k][c] += the sum over rows of terms(r, c)[k]; work as the header
 * says, of colsum_workspace_size(rows, dim, Terms::K) bytes. */
template <class Terms>
static int colsum(ColsumOut<Terms::K> out, Terms terms, int rows, int dim, void *work,
                  cudaStream_t stream)
{
    if (rows <= 0 || dim <= 0) return 0;
    int chunk = colsum_chunk_rows(rows), nchunks = (int)ceil_div(rows, chunk);
    unsigned *count = (unsigned *)work;
    float *part = (float *)((char *)work + COLSUM_COUNTER_BYTES);
    for (int c0 = 0; c0 < dim; c0 += 32 * COLSUM_SLABS) {
        int slabs = (int)ceil_div(dim - c0, 32);
        if (slabs > COLSUM_SLABS) slabs = COLSUM_SLABS;
        LAUNCH(colsum_kernel<Terms>, dim3(slabs, nchunks), dim3(32, 8), 0, stream, out, count, part, terms,
               rows, dim, chunk, c0);
        CUDA_CHECK(cudaGetLastError());
    }
    return 0;
}

#endif
