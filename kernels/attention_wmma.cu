/* Fused attention on tensor cores: attention.cu's math and its two-kernel,
 * atomic-free backward for bf16 at head sizes 32 and 64 over the full op
 * (rows == T), its four products of each tile (scale q k^T, P v, dout v^T,
 * dS k, and the transposed ones of the dk/dv kernel) as wmma 16 x 16 x 16
 * bf16 products with fp32 accumulation. Everything else (the online
 * softmax, the dropout's keep factors, dS) is fp32 on CUDA cores, one lane
 * pair per tile row.
 *
 * Blocks are 4 warps; each warp owns 16 rows (query rows in the forward and
 * the dq kernel, key rows in the dk/dv kernel) of its block's 64 and sweeps
 * the other side in tiles of 32, staged in shared memory as bf16. The
 * products' operands are bf16, so the probabilities P (forward), Z P and dS
 * (backward) are rounded to bf16 before their products, as FlashAttention
 * does: each product term is off by at most 2^-8 of itself, on top of the
 * CUDA-core kernels' error (tests/kernels states the bounds it checks).
 * Row statistics (m, l, lse, D) and the accumulators stay fp32.
 *
 * Synchronization: a lane's shared-memory writes reach another lane's wmma
 * load only through a __syncwarp, and a wmma store reaches other lanes'
 * reads the same way (the warp functions order nothing themselves). */
#include <math.h>

#include <mma.h>

#include "kernels/attention_impl.h"

using namespace nvcuda;

enum { WARPS = 4, ROWS = 16 * WARPS, TILE = 32 };

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBt; /* B^T stored row-major */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

int attention_fused_tensor_cores(int hs, int rows, int T) { return (hs == 32 || hs == 64) && rows == T; }

/* Rows r0 .. r0 + n - 1 (HS values each, zeros past `limit`) of src into
 * dst (n x HS bf16), the block's threads striding over the elements. */
template <int HS>
__device__ void stage_rows(bf16 *dst, const bf16 *src, const AttnArgs &a, int b, int h, int r0, int n, int limit,
                           bool kv)
{
    for (int e = threadIdx.x; e < n * HS; e += blockDim.x) {
        int r = r0 + e / HS, d = e % HS;
        dst[e] = r < limit ? src[(kv ? kv_row(a, b, h, r, HS) : q_row(a, b, h, r, HS)) + d] : from_f32<bf16>(0.0f);
    }
}

/* out (16 x TILE fp32, ldm TILE) = X Y^T over the head dimension: X the
 * warp's 16 rows as HS / 16 fragments, Y TILE rows of HS in shared memory. */
template <int HS>
__device__ void product_xyt(float *out, const FragA (&x)[HS / 16], const bf16 *y)
{
    for (int n = 0; n < TILE / 16; n++) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < HS / 16; kk++) {
            FragBt yt;
            wmma::load_matrix_sync(yt, y + n * 16 * HS + kk * 16, HS);
            wmma::mma_sync(acc, x[kk], yt, acc);
        }
        wmma::store_matrix_sync(out + n * 16, acc, TILE, wmma::mem_row_major);
    }
}

/* acc[n] += W Y: W 16 x TILE bf16 (ldm TILE), Y TILE x HS bf16 (ldm HS). */
template <int HS>
__device__ void product_add(FragC (&acc)[HS / 16], const bf16 *w, const bf16 *y)
{
    for (int kk = 0; kk < TILE / 16; kk++) {
        FragA wa;
        wmma::load_matrix_sync(wa, w + kk * 16, TILE);
        for (int n = 0; n < HS / 16; n++) {
            FragB yb;
            wmma::load_matrix_sync(yb, y + kk * 16 * HS + n * 16, HS);
            wmma::mma_sync(acc[n], wa, yb, acc[n]);
        }
    }
}

template <int HS> __device__ void load_rows_a(FragA (&x)[HS / 16], const bf16 *rows16)
{
    for (int kk = 0; kk < HS / 16; kk++) wmma::load_matrix_sync(x[kk], rows16 + kk * 16, HS);
}

/* Forward. Lane pair (2r, 2r + 1) owns the warp's row r, each lane half of
 * a tile's columns and half of the head dimension; the output accumulates
 * in shared memory (os, fp32), where the online softmax rescales it. */
template <int HS>
__global__ void __launch_bounds__(32 * WARPS)
    attention_forward_wmma_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                  const float *mask, AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(unsigned char, smem);
    bf16 *qs = (bf16 *)smem, *ks = qs + ROWS * HS, *vs = ks + TILE * HS;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
    unsigned char *mine = (unsigned char *)(vs + TILE * HS) + warp * (TILE * 16 * 6 + HS * 16 * 4);
    float *ss = (float *)mine, *os = (float *)(mine + TILE * 16 * 6);
    bf16 *ps = (bf16 *)(mine + TILE * 16 * 4);
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, i = blockIdx.x * ROWS + warp * 16 + r;
    stage_rows<HS>(qs, q, a, b, h, blockIdx.x * ROWS, ROWS, a.rows, false);
    for (int d = half * HS / 2; d < (half + 1) * HS / 2; d++) os[r * HS + d] = 0.0f;
    __syncthreads();
    FragA qa[HS / 16];
    load_rows_a<HS>(qa, qs + warp * 16 * HS);
    float m = -INFINITY, l = 0.0f;
    const int c0 = half * TILE / 2;
    for (int j0 = 0; j0 < a.T; j0 += TILE) {
        stage_rows<HS>(ks, k, a, b, h, j0, TILE, a.T, true);
        stage_rows<HS>(vs, v, a, b, h, j0, TILE, a.T, true);
        __syncthreads();
        product_xyt<HS>(ss, qa, ks);
        __syncwarp();
        float s[TILE / 2], tmax = -INFINITY;
        for (int c = 0; c < TILE / 2; c++) {
            int j = j0 + c0 + c;
            s[c] = j < a.T ? a.scale * ss[r * TILE + c0 + c] + mask[(size_t)b * a.T + j] : -INFINITY;
            tmax = fmaxf(tmax, s[c]);
        }
        float mnew = fmaxf(m, fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1)));
        float base = mnew == -INFINITY ? 0.0f : mnew, corr = expf(m - base), sum = 0.0f;
        float z[TILE / 2];
        int valid = a.T - (j0 + c0) < TILE / 2 ? a.T - (j0 + c0) : TILE / 2;
        for (int c = 0; c < TILE / 2; c++) z[c] = 0.0f;
        if (valid > 0)
            keep_run(a, ((uint64_t)bh * a.T + (uint64_t)i) * a.T + (uint64_t)(j0 + c0), valid,
                     [&](int c, float f) { z[c] = f; });
        for (int c = 0; c < TILE / 2; c++) {
            float e = expf(s[c] - base);
            sum += e;
            ps[r * TILE + c0 + c] = from_f32<bf16>(e * z[c]);
        }
        l = l * corr + (sum + __shfl_xor_sync(0xffffffffu, sum, 1)); /* the same in both lanes */
        m = mnew;
        for (int d = half * HS / 2; d < (half + 1) * HS / 2; d++) os[r * HS + d] *= corr;
        __syncwarp();
        FragC acc[HS / 16];
        for (int n = 0; n < HS / 16; n++) wmma::load_matrix_sync(acc[n], os + n * 16, HS, wmma::mem_row_major);
        product_add<HS>(acc, ps, vs);
        for (int n = 0; n < HS / 16; n++) wmma::store_matrix_sync(os + n * 16, acc[n], HS, wmma::mem_row_major);
        __syncthreads();
    }
    if (i >= a.rows) return;
    float inv = 1.0f / l;
    for (int d = half * HS / 2; d < (half + 1) * HS / 2; d++)
        out[q_row(a, b, h, i, HS) + d] = from_f32<bf16>(os[r * HS + d] * inv);
    if (half == 0) lse[(size_t)bh * a.rows + i] = m + logf(l);
}

/* Per query row, as attention.cu's: D = dout . out (into dsum) and dq +=
 * scale dS k. dq accumulates in fragments; at the end they go through the
 * staging area of q and dout (no longer read) to the lanes that store. */
template <int HS>
__global__ void __launch_bounds__(32 * WARPS)
    attention_backward_dq_wmma_kernel(bf16 *dq, float *dsum, const bf16 *dout, const bf16 *out, const bf16 *q,
                                      const bf16 *k, const bf16 *v, const float *lse, const float *mask,
                                      AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(unsigned char, smem);
    bf16 *qs = (bf16 *)smem, *dos = qs + ROWS * HS, *ks = dos + ROWS * HS, *vs = ks + TILE * HS;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
    unsigned char *mine = (unsigned char *)(vs + TILE * HS) + warp * (TILE * 16 * 6);
    float *ss = (float *)mine;
    bf16 *dss = (bf16 *)(mine + TILE * 16 * 4);
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, i = blockIdx.x * ROWS + warp * 16 + r;
    bool active = i < a.rows;
    stage_rows<HS>(qs, q, a, b, h, blockIdx.x * ROWS, ROWS, a.rows, false);
    stage_rows<HS>(dos, dout, a, b, h, blockIdx.x * ROWS, ROWS, a.rows, false);
    float D = 0.0f, L = active ? lse[(size_t)bh * a.rows + i] : 0.0f;
    for (int d = half * HS / 2; active && d < (half + 1) * HS / 2; d++) {
        size_t at = q_row(a, b, h, i, HS) + d;
        D += to_f32(dout[at]) * to_f32(out[at]);
    }
    D += __shfl_xor_sync(0xffffffffu, D, 1);
    __syncthreads();
    FragA qa[HS / 16], da[HS / 16];
    load_rows_a<HS>(qa, qs + warp * 16 * HS);
    load_rows_a<HS>(da, dos + warp * 16 * HS);
    FragC g[HS / 16];
    for (int n = 0; n < HS / 16; n++) wmma::fill_fragment(g[n], 0.0f);
    const int c0 = half * TILE / 2;
    for (int j0 = 0; j0 < a.T; j0 += TILE) {
        stage_rows<HS>(ks, k, a, b, h, j0, TILE, a.T, true);
        stage_rows<HS>(vs, v, a, b, h, j0, TILE, a.T, true);
        __syncthreads();
        product_xyt<HS>(ss, qa, ks);
        __syncwarp();
        float p[TILE / 2], z[TILE / 2];
        for (int c = 0; c < TILE / 2; c++) {
            int j = j0 + c0 + c;
            p[c] = j < a.T ? expf(a.scale * ss[r * TILE + c0 + c] + mask[(size_t)b * a.T + j] - L) : 0.0f;
            z[c] = 0.0f;
        }
        int valid = a.T - (j0 + c0) < TILE / 2 ? a.T - (j0 + c0) : TILE / 2;
        if (valid > 0)
            keep_run(a, ((uint64_t)bh * a.T + (uint64_t)i) * a.T + (uint64_t)(j0 + c0), valid,
                     [&](int c, float f) { z[c] = f; });
        __syncwarp();
        product_xyt<HS>(ss, da, vs);
        __syncwarp();
        for (int c = 0; c < TILE / 2; c++)
            dss[r * TILE + c0 + c] = from_f32<bf16>(p[c] * (z[c] * ss[r * TILE + c0 + c] - D));
        __syncwarp();
        product_add<HS>(g, dss, ks);
        __syncthreads();
    }
    float *gs = (float *)smem + warp * 16 * HS; /* over qs and dos: read by nobody since the first tile */
    for (int n = 0; n < HS / 16; n++) wmma::store_matrix_sync(gs + n * 16, g[n], HS, wmma::mem_row_major);
    __syncwarp();
    if (!active) return;
    if (half == 0) dsum[(size_t)bh * a.rows + i] = D;
    for (int d = half * HS / 2; d < (half + 1) * HS / 2; d++) {
        size_t at = q_row(a, b, h, i, HS) + d;
        dq[at] = from_f32<bf16>((a.accumulate ? to_f32(dq[at]) : 0.0f) + a.scale * gs[r * HS + d]);
    }
}

/* Per key row: dv += (Z P)^T dout, dk += scale dS^T q. Lane c owns query
 * column c of each 16 x 32 tile of S^T (the warp's 16 keys by 32 queries),
 * so its 16 keys are consecutive in the dropout's stream. dk and dv
 * accumulate in fragments and leave through the staging area of k and v. */
template <int HS>
__global__ void __launch_bounds__(32 * WARPS)
    attention_backward_dkv_wmma_kernel(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q, const bf16 *k,
                                       const bf16 *v, const float *lse, const float *dsum, const float *mask,
                                       AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(unsigned char, smem);
    bf16 *ks = (bf16 *)smem, *vs = ks + ROWS * HS, *qs = vs + ROWS * HS, *dos = qs + TILE * HS;
    float *ls = (float *)(dos + TILE * HS), *dd = ls + TILE;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    unsigned char *mine = (unsigned char *)(dd + TILE) + warp * (TILE * 16 * 8);
    float *ss = (float *)mine;
    bf16 *zps = (bf16 *)(mine + TILE * 16 * 4), *dst = zps + TILE * 16;
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, jb = blockIdx.x * ROWS + warp * 16;
    stage_rows<HS>(ks, k, a, b, h, blockIdx.x * ROWS, ROWS, a.T, true);
    stage_rows<HS>(vs, v, a, b, h, blockIdx.x * ROWS, ROWS, a.T, true);
    float mk[16];
    for (int rr = 0; rr < 16; rr++) mk[rr] = jb + rr < a.T ? mask[(size_t)b * a.T + jb + rr] : 0.0f;
    int keys = a.T - jb < 16 ? a.T - jb : 16;
    __syncthreads();
    FragA ka[HS / 16], va[HS / 16];
    load_rows_a<HS>(ka, ks + warp * 16 * HS);
    load_rows_a<HS>(va, vs + warp * 16 * HS);
    FragC gk[HS / 16], gv[HS / 16];
    for (int n = 0; n < HS / 16; n++) wmma::fill_fragment(gk[n], 0.0f), wmma::fill_fragment(gv[n], 0.0f);
    for (int i0 = 0; i0 < a.rows; i0 += TILE) {
        stage_rows<HS>(qs, q, a, b, h, i0, TILE, a.rows, false);
        stage_rows<HS>(dos, dout, a, b, h, i0, TILE, a.rows, false);
        for (int c = threadIdx.x; c < TILE; c += blockDim.x) {
            bool in = i0 + c < a.rows;
            ls[c] = in ? lse[(size_t)bh * a.rows + i0 + c] : 0.0f;
            dd[c] = in ? dsum[(size_t)bh * a.rows + i0 + c] : 0.0f;
        }
        __syncthreads();
        product_xyt<HS>(ss, ka, qs);
        __syncwarp();
        int i = i0 + lane;
        float p[16], z[16];
        for (int rr = 0; rr < 16; rr++) {
            p[rr] = i < a.rows && rr < keys ? expf(a.scale * ss[rr * TILE + lane] + mk[rr] - ls[lane]) : 0.0f;
            z[rr] = 0.0f;
        }
        if (i < a.rows && keys > 0)
            keep_run(a, ((uint64_t)bh * a.T + (uint64_t)i) * a.T + (uint64_t)jb, keys,
                     [&](int rr, float f) { z[rr] = f; });
        for (int rr = 0; rr < 16; rr++) zps[rr * TILE + lane] = from_f32<bf16>(z[rr] * p[rr]);
        __syncwarp();
        product_xyt<HS>(ss, va, dos);
        __syncwarp();
        for (int rr = 0; rr < 16; rr++)
            dst[rr * TILE + lane] = from_f32<bf16>(p[rr] * (z[rr] * ss[rr * TILE + lane] - dd[lane]));
        __syncwarp();
        product_add<HS>(gv, zps, dos);
        product_add<HS>(gk, dst, qs);
        __syncthreads();
    }
    float *gs = (float *)smem + warp * 16 * HS; /* over ks and vs: read by nobody since the first tile */
    int r = lane / 2, half = lane % 2, j = jb + r;
    for (int n = 0; n < HS / 16; n++) wmma::store_matrix_sync(gs + n * 16, gk[n], HS, wmma::mem_row_major);
    __syncwarp();
    for (int d = half * HS / 2; j < a.T && d < (half + 1) * HS / 2; d++) {
        size_t at = kv_row(a, b, h, j, HS) + d;
        dk[at] = from_f32<bf16>((a.accumulate ? to_f32(dk[at]) : 0.0f) + a.scale * gs[r * HS + d]);
    }
    __syncwarp();
    for (int n = 0; n < HS / 16; n++) wmma::store_matrix_sync(gs + n * 16, gv[n], HS, wmma::mem_row_major);
    __syncwarp();
    for (int d = half * HS / 2; j < a.T && d < (half + 1) * HS / 2; d++) {
        size_t at = kv_row(a, b, h, j, HS) + d;
        dv[at] = from_f32<bf16>((a.accumulate ? to_f32(dv[at]) : 0.0f) + gs[r * HS + d]);
    }
}

/* Shared memory per block, in bytes: the staged rows, then each warp's
 * tiles (forward: scores fp32, P bf16, output fp32; dq: scores fp32, dS
 * bf16; dk/dv: scores fp32, Z P and dS bf16), all 32-byte aligned. */
template <int HS> static size_t forward_smem() { return 2 * (ROWS + 2 * TILE) * HS + WARPS * (TILE * 16 * 6 + HS * 16 * 4); }
template <int HS> static size_t dq_smem() { return 2 * (2 * ROWS + 2 * TILE) * HS + WARPS * TILE * 16 * 6; }
template <int HS> static size_t dkv_smem()
{
    return 2 * (2 * ROWS + 2 * TILE) * HS + 2 * TILE * sizeof(float) + WARPS * TILE * 16 * 8;
}

/* The kernels in parentheses: LAUNCH takes the kernel as one macro argument. */
template <int HS>
static int forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const float *mask,
                   const AttnArgs &a, const PhiloxKey *key, cudaStream_t stream)
{
    dim3 grid(ceil_div((size_t)a.rows, ROWS), (unsigned)(a.B * a.H));
    LAUNCH((attention_forward_wmma_kernel<HS>), grid, 32 * WARPS, forward_smem<HS>(), stream, out, lse, q, k, v,
           mask, a, key);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <int HS>
static int backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dsum, const bf16 *dout, const bf16 *out, const bf16 *q,
                    const bf16 *k, const bf16 *v, const float *lse, const float *mask, const AttnArgs &a,
                    const PhiloxKey *key, cudaStream_t stream)
{
    dim3 qgrid(ceil_div((size_t)a.rows, ROWS), (unsigned)(a.B * a.H));
    LAUNCH((attention_backward_dq_wmma_kernel<HS>), qgrid, 32 * WARPS, dq_smem<HS>(), stream, dq, dsum, dout, out,
           q, k, v, lse, mask, a, key);
    CUDA_CHECK(cudaGetLastError());
    dim3 kgrid(ceil_div((size_t)a.T, ROWS), (unsigned)(a.B * a.H));
    LAUNCH((attention_backward_dkv_wmma_kernel<HS>), kgrid, 32 * WARPS, dkv_smem<HS>(), stream, dk, dv, dout, q, k,
           v, lse, dsum, mask, a, key);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

int attention_wmma_forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const float *mask,
                           const AttnArgs &a, int hs, const PhiloxKey *key, cudaStream_t stream)
{
    return hs == 32 ? forward<32>(out, lse, q, k, v, mask, a, key, stream)
                    : forward<64>(out, lse, q, k, v, mask, a, key, stream);
}

int attention_wmma_backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dsum, const bf16 *dout, const bf16 *out,
                            const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, const float *mask,
                            const AttnArgs &a, int hs, const PhiloxKey *key, cudaStream_t stream)
{
    return hs == 32 ? backward<32>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream)
                    : backward<64>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream);
}
