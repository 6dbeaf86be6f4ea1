/* Kernels for testing the simulator itself (compiled only for it): each
 * broken one carries one classic bug the simulator must flag, next to a
 * correct twin, and two exercise the built-ins' semantics. */
#include <mma.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

using namespace nvcuda;

/* out[i] = in[(i + 1) % n] through shared memory, one block of n threads. */
__global__ void rotate_kernel(float *out, const float *in, int n, int with_barrier)
{
    DYNAMIC_SHARED(float, s);
    int i = threadIdx.x;
    s[i] = in[i];
    if (with_barrier) __syncthreads();
    out[i] = s[(i + 1) % n];
}

/* out[i] = 2 in[i] with the bound test off by one at the ragged edge. */
__global__ void double_kernel(float *out, const float *in, int n, int off_by_one)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (off_by_one ? i <= n : i < n) out[i] = 2.0f * in[i];
}

/* Half the block returns early; the other half waits at a barrier. */
__global__ void early_exit_kernel(float *out)
{
    if (threadIdx.x >= blockDim.x / 2) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

/* The two halves wait at two different barriers. */
__global__ void split_barrier_kernel(float *out)
{
    if (threadIdx.x % 2) {
        out[threadIdx.x] = 1.0f;
        __syncthreads();
    } else {
        __syncthreads();
        out[threadIdx.x] = 2.0f;
    }
}

/* A full-mask shuffle that half the warp never reaches. */
__global__ void partial_shuffle_kernel(float *out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

/* Writes one float past the end of n floats of dynamic shared memory. */
__global__ void shared_overflow_kernel(float *out, int n)
{
    DYNAMIC_SHARED(float, s);
    s[threadIdx.x + 1] = 1.0f;
    __syncthreads();
    if (threadIdx.x + 1 < (unsigned)n) out[threadIdx.x] = s[threadIdx.x + 1];
}

/* Writes one float past a static __shared__ array, through a pointer the
 * compiler cannot trace to the array (a volatile one), so that neither the
 * compiler nor UBSan's object-size check sees it: it is AddressSanitizer's
 * redzone that must catch it (the Makefile asks it to instrument the
 * simulator's shared-memory section). */
__global__ void static_shared_overflow_kernel(float *out, int n)
{
    __shared__ float s[32];
    float *volatile p = s;
    p[threadIdx.x + 1 < 32 ? threadIdx.x + 1 : n] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

/* One thread per block: block b writes out[b] = b + 1, then copies a slot
 * to out[n + b]: with `racy` its neighbour's, which another block writes
 * (nothing orders the blocks of a grid), otherwise its own. */
__global__ void neighbour_kernel(float *out, int racy)
{
    unsigned b = blockIdx.x, n = gridDim.x;
    out[b] = (float)(b + 1);
    out[n + b] = racy ? out[(b + 1) % n] : out[b];
}

/* One block of 48 threads: out[t] = __syncthreads_count(t % 3 == 0),
 * out[48 + t] = __syncthreads_and(t < 47), out[96 + t] = __syncthreads_or(t == 47). */
__global__ void barrier_reductions_kernel(float *out)
{
    unsigned t = threadIdx.x;
    out[t] = (float)__syncthreads_count(t % 3 == 0);
    out[48 + t] = (float)__syncthreads_and(t < 47);
    out[96 + t] = (float)__syncthreads_or(t == 47);
}

/* One block of 48 threads (a full warp and a partial one); per thread:
 * [0] __shfl_sync from lane 3, [1] xor 1, [2] down 1 (width 8), [3] up 2,
 * [4] ballot of odd lanes, [5] any (lane == 5), [6] all (lane < 40),
 * [7] atomicAdd's return order, [8] bf16 round trip of in[thread]. */
__global__ void builtins_kernel(float *out, unsigned *bits, int *counter, const float *in)
{
    int t = threadIdx.x, lane = t % 32;
    float v = (float)(t * 10);
    float *o = out + t * 9;
    o[0] = __shfl_sync(0xffffffffu, v, 3);
    o[1] = __shfl_xor_sync(0xffffffffu, v, 1);
    o[2] = __shfl_down_sync(0xffffffffu, v, 1, 8);
    o[3] = __shfl_up_sync(0xffffffffu, v, 2);
    bits[t] = __ballot_sync(0xffffffffu, lane % 2);
    o[5] = (float)__any_sync(0xffffffffu, lane == 5);
    o[6] = (float)__all_sync(0xffffffffu, t < 40);
    o[7] = (float)atomicAdd(counter, 1);
    o[8] = __bfloat162float(__float2bfloat16(in[t]));
    o[4] = 0.0f;
}

/* wmma: one warp per 16 x 16 tile of C (m x n, row-major) = A B, A m x k
 * and B k x n bf16, each row-major or (a_col, b_col) column-major. */
__global__ void wmma_gemm_kernel(float *c, const bf16 *a, const bf16 *b, int m, int n, int k, int a_col, int b_col)
{
    int tm = blockIdx.x * 16, tn = blockIdx.y * 16;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < k; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> ar;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> ac;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> br;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> bc;
        if (a_col) wmma::load_matrix_sync(ac, a + (size_t)kk * m + tm, m);
        else wmma::load_matrix_sync(ar, a + (size_t)tm * k + kk, k);
        if (b_col) wmma::load_matrix_sync(bc, b + (size_t)tn * k + kk, k);
        else wmma::load_matrix_sync(br, b + (size_t)kk * n + tn, n);
        if (a_col && b_col) wmma::mma_sync(acc, ac, bc, acc);
        else if (a_col) wmma::mma_sync(acc, ac, br, acc);
        else if (b_col) wmma::mma_sync(acc, ar, bc, acc);
        else wmma::mma_sync(acc, ar, br, acc);
    }
    wmma::store_matrix_sync(c + (size_t)tm * n + tn, acc, n, wmma::mem_row_major);
}

/* One warp, one 16 x 16 bf16 tile: how = 1 loads it one element off the
 * 256-bit alignment, 2 with an ldm of 12 elements, 3 with lanes 16..31
 * passing another pointer, 4 with lanes 16..31 skipping the mma. */
__global__ void wmma_misuse_kernel(float *c, const bf16 *a, int how)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    const bf16 *p = how == 1 ? a + 1 : how == 3 && threadIdx.x >= 16 ? a + 256 : a;
    wmma::load_matrix_sync(fa, p, how == 2 ? 12 : 16);
    wmma::load_matrix_sync(fb, a, 16);
    if (how != 4 || threadIdx.x < 16) wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

/* One warp and a 16 x 16 tile of shared memory, lane l owning row l / 2,
 * half l % 2, for plain reads and writes; c = the tile's rows, 1 + row,
 * when every hazard has its __syncwarp (with_sync), by hazard:
 *  0: lanes write the tile, a wmma load reads it (then B = identity, c = A B);
 *  1: a wmma load reads the tile (as 0), then lanes overwrite it with zeros;
 *  2: lanes read the tile into registers, then a wmma store overwrites it;
 *  3: a wmma store writes zeros over the tile, then lanes read it (adding
 *     1 + row). */
__global__ void wmma_unsynced_kernel(float *c, const bf16 *eye, int hazard, int with_sync)
{
    DYNAMIC_SHARED(float, tile);
    bf16 *tile16 = (bf16 *)tile;
    int lane = threadIdx.x, r = lane / 2, c0 = (lane % 2) * 8;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    float mine[8];
    if (hazard <= 1) {
        for (int j = 0; j < 8; j++) tile16[r * 16 + c0 + j] = __float2bfloat16(1.0f + (float)r);
        if (hazard == 1 || with_sync) __syncwarp();
        wmma::load_matrix_sync(fa, tile16, 16);
        if (hazard == 1) {
            if (with_sync) __syncwarp();
            for (int j = 0; j < 8; j++) tile16[r * 16 + c0 + j] = __float2bfloat16(0.0f);
        }
        wmma::fill_fragment(acc, 0.0f);
        wmma::load_matrix_sync(fb, eye, 16);
        wmma::mma_sync(acc, fa, fb, acc);
        wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
        return;
    }
    for (int j = 0; j < 8; j++) tile[r * 16 + c0 + j] = hazard == 2 ? 1.0f + (float)r : -100.0f;
    __syncwarp();
    wmma::fill_fragment(acc, 0.0f);
    if (hazard == 2) {
        for (int j = 0; j < 8; j++) mine[j] = tile[r * 16 + c0 + j];
        if (with_sync) __syncwarp();
        wmma::store_matrix_sync(tile, acc, 16, wmma::mem_row_major);
    } else {
        wmma::store_matrix_sync(tile, acc, 16, wmma::mem_row_major);
        if (with_sync) __syncwarp();
        for (int j = 0; j < 8; j++) mine[j] = 1.0f + (float)r + tile[r * 16 + c0 + j];
    }
    for (int j = 0; j < 8; j++) c[r * 16 + c0 + j] = mine[j];
}

/* One warp: an accumulator of ones whose element x[i] is scaled by its row
 * as sm_80's mma.m16n8k16 places it (lane / 4 + 8 ((i / 2) % 2), PTX's
 * figure, which wmma does not promise): c = row, if the guess holds. */
__global__ void wmma_mapping_kernel(float *c)
{
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 1.0f);
    int lane = threadIdx.x;
    for (int i = 0; i < acc.num_elements; i++) acc.x[i] *= (float)(lane / 4 + 8 * ((i / 2) % 2));
    wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

extern "C" {

void cudasim_rotate(float *out, const float *in, int n, int with_barrier)
{
    LAUNCH(rotate_kernel, 1, n, n * sizeof(float), 0, out, in, n, with_barrier);
}

void cudasim_double(float *out, const float *in, int n, int off_by_one)
{
    LAUNCH(double_kernel, ceil_div(n, 64), 64, 0, 0, out, in, n, off_by_one);
}

void cudasim_early_exit(float *out) { LAUNCH(early_exit_kernel, 1, 64, 0, 0, out); }
void cudasim_split_barrier(float *out) { LAUNCH(split_barrier_kernel, 1, 64, 0, 0, out); }
void cudasim_partial_shuffle(float *out) { LAUNCH(partial_shuffle_kernel, 1, 32, 0, 0, out); }

void cudasim_shared_overflow(float *out, int n)
{
    LAUNCH(shared_overflow_kernel, 1, n, n * sizeof(float), 0, out, n);
}

void cudasim_static_shared_overflow(float *out, int n)
{
    LAUNCH(static_shared_overflow_kernel, 1, 32, 0, 0, out, n);
}

void cudasim_neighbour(float *out, int n, int racy, cudaStream_t stream)
{
    LAUNCH(neighbour_kernel, n, 1, 0, stream, out, racy);
}

void cudasim_barrier_reductions(float *out) { LAUNCH(barrier_reductions_kernel, 1, 48, 0, 0, out); }

void cudasim_double_on(float *out, const float *in, int n, cudaStream_t stream)
{
    LAUNCH(double_kernel, ceil_div(n, 64), 64, 0, stream, out, in, n, 0);
}

void cudasim_launch_config(float *out, unsigned grid, unsigned block, size_t smem)
{
    LAUNCH(early_exit_kernel, grid, block, smem, 0, out);
}

void cudasim_builtins(float *out, unsigned *bits, int *counter, const float *in)
{
    LAUNCH(builtins_kernel, 1, 48, 0, 0, out, bits, counter, in);
}

void cudasim_wmma_gemm(float *c, const bf16 *a, const bf16 *b, int m, int n, int k, int a_col, int b_col)
{
    LAUNCH(wmma_gemm_kernel, dim3(m / 16, n / 16), 32, 0, 0, c, a, b, m, n, k, a_col, b_col);
}

void cudasim_wmma_misuse(float *c, const bf16 *a, int how) { LAUNCH(wmma_misuse_kernel, 1, 32, 0, 0, c, a, how); }

void cudasim_wmma_unsynced(float *c, const bf16 *eye, int hazard, int with_sync)
{
    LAUNCH(wmma_unsynced_kernel, 1, 32, 256 * sizeof(float), 0, c, eye, hazard, with_sync);
}

void cudasim_wmma_mapping(float *c) { LAUNCH(wmma_mapping_kernel, 1, 32, 0, 0, c); }

}
