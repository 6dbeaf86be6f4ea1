/* Fused attention, forward and backward: src/ops/attention.h's math (the
 * softmax of scale q k^T + mask, inverted dropout of the probabilities with
 * the dropout kernels' Philox bits, times v) without its B x H x T x T
 * tensors, which are recomputed from q, k and each row's log-sum-exp.
 *
 * Forward: one block per (tile of QT query rows, batch x head), one thread
 * per query row, keys and values streamed through shared memory in tiles of
 * KT rows; an online softmax keeps the row's running maximum m, the running
 * sum l of exp(s - m) and the output accumulated with the kept probabilities,
 * so out = acc / l and lse = m + log l.
 *
 * Backward, as FlashAttention-2 derives it, with dropout: for P = exp(s -
 * lse), Z the dropout's keep-and-scale and dP~ = dout v^T,
 *   dv = (Z P)^T dout,  dS = P (Z dP~ - D) with D = rowsum(dout * out),
 *   dq = scale dS k,    dk = scale dS^T q.
 * Two kernels, so that every gradient element has one writer and a fixed
 * summation order (deterministic, no atomics): the first, per query row,
 * computes D and dq; the second, per key row, dk and dv, reading D. They
 * add into dq, dk, dv or store them (accumulate false: no zeroing first).
 *
 * Rows: the query rows of each (batch, head): T (q is B x T x C) or 1, the
 * [CLS] row alone (q is B x C), whose dropout bits are row 0's of the full
 * op, as attention_first_forward's. HS, the head size, is a template
 * argument (registers hold a row): 8, 16, 32 and 64 are built.
 *
 * Storage: the template argument T, the type of q, k, v, out and their
 * gradients, is float or bf16, one kernel body for both. Loads widen to
 * fp32 (the shared tiles hold fp32: converted once per element at load, the
 * inner loops the same for both types), all arithmetic is fp32, each store
 * rounds once (an adding backward rounds old + new); lse, dsum and mask are
 * fp32.
 *
 * A first version, CUDA cores and fp32 arithmetic: at HS 64 the dk/dv
 * kernel holds 4 x 64 floats per thread, past a GPU's 255 registers, so it
 * spills (correct, slower); tensor-core tiles are the next step. */
#include <math.h>

#include <type_traits>

#include "kernels/attention_impl.h"

enum { QT = 64, KT = 64 };

/* Loads rows r0 .. r0 + n - 1 (HS values each, zeros past `limit`) of src
 * into dst, widened to fp32, the block's threads striding over the elements. */
template <int HS, class T>
__device__ void load_tile(float *dst, const T *src, const AttnArgs &a, int b, int h, int r0, int n,
                          int limit, bool kv)
{
    for (int e = threadIdx.x; e < n * HS; e += blockDim.x) {
        int r = r0 + e / HS, d = e % HS;
        dst[e] = r < limit ? to_f32(src[(kv ? kv_row(a, b, h, r, HS) : q_row(a, b, h, r, HS)) + d]) : 0.0f;
    }
}

template <class T, int HS>
__global__ void attention_forward_kernel(T *out, float *lse, const T *q, const T *k, const T *v,
                                         const float *mask, AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(float, smem);
    float *ks = smem, *vs = smem + KT * HS;
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, i = blockIdx.x * QT + threadIdx.x;
    bool active = i < a.rows;
    float qr[HS], acc[HS];
    for (int d = 0; d < HS; d++) {
        qr[d] = active ? to_f32(q[q_row(a, b, h, i, HS) + d]) : 0.0f;
        acc[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < a.T; j0 += KT) {
        load_tile<HS>(ks, k, a, b, h, j0, KT, a.T, true);
        load_tile<HS>(vs, v, a, b, h, j0, KT, a.T, true);
        __syncthreads();
        for (int jj = 0; active && jj < KT && j0 + jj < a.T; jj++) {
            int j = j0 + jj;
            float dot = 0.0f;
            for (int d = 0; d < HS; d++) dot += qr[d] * ks[jj * HS + d];
            float s = a.scale * dot + mask[(size_t)b * a.T + j];
            if (s > m) {
                float corr = expf(m - s);
                l *= corr;
                for (int d = 0; d < HS; d++) acc[d] *= corr;
                m = s;
            }
            float e = expf(s - m);
            l += e;
            float w = e * keep_factor(a, bh, i, j);
            for (int d = 0; d < HS; d++) acc[d] += w * vs[jj * HS + d];
        }
        __syncthreads();
    }
    if (!active) return;
    float inv = 1.0f / l;
    for (int d = 0; d < HS; d++) out[q_row(a, b, h, i, HS) + d] = from_f32<T>(acc[d] * inv);
    lse[(size_t)bh * a.rows + i] = m + logf(l);
}

/* Per query row: D = dout . out (kept in dsum for the second kernel) and
 * dq += scale sum_j dS_ij k_j. */
template <class T, int HS>
__global__ void attention_backward_dq_kernel(T *dq, float *dsum, const T *dout, const T *out, const T *q,
                                             const T *k, const T *v, const float *lse, const float *mask,
                                             AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(float, smem);
    float *ks = smem, *vs = smem + KT * HS;
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, i = blockIdx.x * QT + threadIdx.x;
    bool active = i < a.rows;
    float qr[HS], dor[HS], g[HS];
    float D = 0.0f, L = active ? lse[(size_t)bh * a.rows + i] : 0.0f;
    for (int d = 0; d < HS; d++) {
        size_t at = q_row(a, b, h, i, HS) + d;
        qr[d] = active ? to_f32(q[at]) : 0.0f;
        dor[d] = active ? to_f32(dout[at]) : 0.0f;
        D += active ? dor[d] * to_f32(out[at]) : 0.0f;
        g[d] = 0.0f;
    }
    for (int j0 = 0; j0 < a.T; j0 += KT) {
        load_tile<HS>(ks, k, a, b, h, j0, KT, a.T, true);
        load_tile<HS>(vs, v, a, b, h, j0, KT, a.T, true);
        __syncthreads();
        for (int jj = 0; active && jj < KT && j0 + jj < a.T; jj++) {
            int j = j0 + jj;
            float dot = 0.0f, dp = 0.0f;
            for (int d = 0; d < HS; d++) {
                dot += qr[d] * ks[jj * HS + d];
                dp += dor[d] * vs[jj * HS + d];
            }
            float p = expf(a.scale * dot + mask[(size_t)b * a.T + j] - L);
            float ds = p * (keep_factor(a, bh, i, j) * dp - D);
            for (int d = 0; d < HS; d++) g[d] += ds * ks[jj * HS + d];
        }
        __syncthreads();
    }
    if (!active) return;
    dsum[(size_t)bh * a.rows + i] = D;
    for (int d = 0; d < HS; d++) {
        size_t at = q_row(a, b, h, i, HS) + d;
        dq[at] = from_f32<T>((a.accumulate ? to_f32(dq[at]) : 0.0f) + a.scale * g[d]);
    }
}

/* Per key row: dv += sum_i Z_ij P_ij dout_i, dk += scale sum_i dS_ij q_i,
 * the query rows (q, dout, lse, D) streamed through shared memory. */
template <class T, int HS>
__global__ void attention_backward_dkv_kernel(T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v,
                                              const float *lse, const float *dsum, const float *mask,
                                              AttnArgs args, const PhiloxKey *key)
{
    const AttnArgs a = keyed(args, key);
    DYNAMIC_SHARED(float, smem);
    float *qs = smem, *ds_ = smem + QT * HS, *ls = smem + 2 * QT * HS, *dd = ls + QT;
    int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, j = blockIdx.x * KT + threadIdx.x;
    bool active = j < a.T;
    float kr[HS], vr[HS], gk[HS], gv[HS];
    for (int d = 0; d < HS; d++) {
        size_t at = kv_row(a, b, h, j, HS) + d;
        kr[d] = active ? to_f32(k[at]) : 0.0f;
        vr[d] = active ? to_f32(v[at]) : 0.0f;
        gk[d] = gv[d] = 0.0f;
    }
    float mj = active ? mask[(size_t)b * a.T + j] : 0.0f;
    for (int i0 = 0; i0 < a.rows; i0 += QT) {
        load_tile<HS>(qs, q, a, b, h, i0, QT, a.rows, false);
        load_tile<HS>(ds_, dout, a, b, h, i0, QT, a.rows, false);
        for (int r = threadIdx.x; r < QT; r += blockDim.x) {
            bool in = i0 + r < a.rows;
            ls[r] = in ? lse[(size_t)bh * a.rows + i0 + r] : 0.0f;
            dd[r] = in ? dsum[(size_t)bh * a.rows + i0 + r] : 0.0f;
        }
        __syncthreads();
        for (int ii = 0; active && ii < QT && i0 + ii < a.rows; ii++) {
            int i = i0 + ii;
            float dot = 0.0f, dp = 0.0f;
            for (int d = 0; d < HS; d++) {
                dot += qs[ii * HS + d] * kr[d];
                dp += ds_[ii * HS + d] * vr[d];
            }
            float p = expf(a.scale * dot + mj - ls[ii]);
            float z = keep_factor(a, bh, i, j);
            float ds = p * (z * dp - dd[ii]);
            for (int d = 0; d < HS; d++) {
                gv[d] += z * p * ds_[ii * HS + d];
                gk[d] += ds * qs[ii * HS + d];
            }
        }
        __syncthreads();
    }
    if (!active) return;
    for (int d = 0; d < HS; d++) {
        size_t at = kv_row(a, b, h, j, HS) + d;
        dk[at] = from_f32<T>((a.accumulate ? to_f32(dk[at]) : 0.0f) + a.scale * gk[d]);
        dv[at] = from_f32<T>((a.accumulate ? to_f32(dv[at]) : 0.0f) + gv[d]);
    }
}

int attention_fused_supported(int hs) { return hs == 8 || hs == 16 || hs == 32 || hs == 64; }

static AttnArgs args_of(int B, int T, int H, int hs, int rows, bool accumulate, float p)
{
    return AttnArgs{B, T, H, rows, accumulate, 1.0f / sqrtf((float)hs), 0, 0, dropout_mask(p)};
}

/* The kernels in parentheses: LAUNCH takes the kernel as one macro argument. */
template <class T, int HS>
static int forward(T *out, float *lse, const T *q, const T *k, const T *v, const float *mask, const AttnArgs &a,
                   const PhiloxKey *key, cudaStream_t stream)
{
    dim3 grid(ceil_div((size_t)a.rows, QT), (unsigned)(a.B * a.H));
    LAUNCH((attention_forward_kernel<T, HS>), grid, QT, 2 * KT * HS * sizeof(float), stream, out, lse, q, k, v, mask,
           a, key);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T, int HS>
static int backward(T *dq, T *dk, T *dv, float *dsum, const T *dout, const T *out, const T *q, const T *k,
                    const T *v, const float *lse, const float *mask, const AttnArgs &a, const PhiloxKey *key,
                    cudaStream_t stream)
{
    dim3 qgrid(ceil_div((size_t)a.rows, QT), (unsigned)(a.B * a.H));
    LAUNCH((attention_backward_dq_kernel<T, HS>), qgrid, QT, 2 * KT * HS * sizeof(float), stream, dq, dsum, dout, out, q, k,
           v, lse, mask, a, key);
    CUDA_CHECK(cudaGetLastError());
    dim3 kgrid(ceil_div((size_t)a.T, KT), (unsigned)(a.B * a.H));
    LAUNCH((attention_backward_dkv_kernel<T, HS>), kgrid, KT, (2 * QT * HS + 2 * QT) * sizeof(float), stream, dk, dv, dout,
           q, k, v, lse, dsum, mask, a, key);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class T>
static int forward_any(T *out, float *lse, const T *q, const T *k, const T *v, const float *mask, int B, int seq,
                       int H, int hs, int rows, float p, const PhiloxKey *key, cudaStream_t stream)
{
    if (B <= 0 || seq <= 0) return 0;
    AttnArgs a = args_of(B, seq, H, hs, rows, false, p);
    if constexpr (std::is_same<T, bf16>::value)
        if (attention_fused_tensor_cores(hs, rows, seq))
            return attention_wmma_forward(out, lse, q, k, v, mask, a, hs, key, stream);
    switch (hs) {
    case 8: return forward<T, 8>(out, lse, q, k, v, mask, a, key, stream);
    case 16: return forward<T, 16>(out, lse, q, k, v, mask, a, key, stream);
    case 32: return forward<T, 32>(out, lse, q, k, v, mask, a, key, stream);
    case 64: return forward<T, 64>(out, lse, q, k, v, mask, a, key, stream);
    default: return err_set("fused attention: head size %d is not built (8, 16, 32, 64)", hs);
    }
}

template <class T>
static int backward_any(T *dq, T *dk, T *dv, bool accumulate, float *dsum, const T *dout, const T *out, const T *q,
                        const T *k, const T *v, const float *lse, const float *mask, int B, int seq, int H, int hs,
                        int rows, float p, const PhiloxKey *key, cudaStream_t stream)
{
    if (B <= 0 || seq <= 0) return 0;
    AttnArgs a = args_of(B, seq, H, hs, rows, accumulate, p);
    if constexpr (std::is_same<T, bf16>::value)
        if (attention_fused_tensor_cores(hs, rows, seq))
            return attention_wmma_backward(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, hs, key, stream);
    switch (hs) {
    case 8: return backward<T, 8>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream);
    case 16: return backward<T, 16>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream);
    case 32: return backward<T, 32>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream);
    case 64: return backward<T, 64>(dq, dk, dv, dsum, dout, out, q, k, v, lse, mask, a, key, stream);
    default: return err_set("fused attention: head size %d is not built (8, 16, 32, 64)", hs);
    }
}

int attention_fused_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                 const float *mask, int B, int T, int H, int hs, int rows, float p, const PhiloxKey *key,
                                 cudaStream_t stream)
{
    return forward_any(out, lse, q, k, v, mask, B, T, H, hs, rows, p, key, stream);
}

int attention_fused_forward_cuda_bf16(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                      const float *mask, int B, int T, int H, int hs, int rows, float p,
                                      const PhiloxKey *key, cudaStream_t stream)
{
    return forward_any(out, lse, q, k, v, mask, B, T, H, hs, rows, p, key, stream);
}

int attention_fused_backward_cuda(float *dq, float *dk, float *dv, bool accumulate, float *dsum, const float *dout,
                                  const float *out, const float *q, const float *k, const float *v,
                                  const float *lse, const float *mask, int B, int T, int H, int hs, int rows,
                                  float p, const PhiloxKey *key, cudaStream_t stream)
{
    return backward_any(dq, dk, dv, accumulate, dsum, dout, out, q, k, v, lse, mask, B, T, H, hs, rows, p, key, stream);
}

int attention_fused_backward_cuda_bf16(bf16 *dq, bf16 *dk, bf16 *dv, bool accumulate, float *dsum,
                                       const bf16 *dout, const bf16 *out, const bf16 *q, const bf16 *k,
                                       const bf16 *v, const float *lse, const float *mask, int B, int T,
                                       int H, int hs, int rows, float p, const PhiloxKey *key, cudaStream_t stream)
{
    return backward_any(dq, dk, dv, accumulate, dsum, dout, out, q, k, v, lse, mask, B, T, H, hs, rows, p, key, stream);
}
