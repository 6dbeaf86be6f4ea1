/* What the fused attention's two kernel files share (attention.cu, CUDA
 * cores, every head size and precision; attention_wmma.cu, tensor cores,
 * bf16 at head sizes 32 and 64): the launch arguments, the layout of the
 * q, k, v rows, the dropout's keep factors, and the tensor-core launchers
 * attention.cu dispatches to. */
#ifndef GENRE_KERNELS_ATTENTION_IMPL_H
#define GENRE_KERNELS_ATTENTION_IMPL_H

#include "kernels/cuda_common.h"
#include "kernels/dropout_mask.h"
#include "kernels/kernels.h"
#include "src/core/philox.h"

struct AttnArgs {
    int B, T, H, rows;
    bool accumulate;    /* backward: dq, dk, dv += (else =) */
    float scale;
    uint64_t seed, stream;
    DropoutMask m;      /* of the probabilities, dropout.cu's */
};

/* The launch's arguments with the Philox key read from device memory now,
 * as the kernel runs (a replayed graph draws the key of its step). */
__device__ __forceinline__ AttnArgs keyed(AttnArgs a, const PhiloxKey *key)
{
    if (a.m.apply) a.seed = key->seed, a.stream = key->stream;
    return a;
}

/* Row `i` (a query row index 0 .. rows-1) of (b, h) in a q-shaped tensor. */
__device__ __forceinline__ size_t q_row(const AttnArgs &a, int b, int h, int i, int hs)
{
    int C = a.H * hs;
    return ((size_t)b * a.rows + (size_t)i) * C + (size_t)h * hs;
}

__device__ __forceinline__ size_t kv_row(const AttnArgs &a, int b, int h, int j, int hs)
{
    int C = a.H * hs;
    return ((size_t)b * a.T + (size_t)j) * C + (size_t)h * hs;
}

/* The dropout factor of probability (bh, i, j): element (bh T + i) T + j of
 * the Philox stream, as dropout_kernel draws it (0 or 1 / (1 - p)). */
__device__ __forceinline__ float keep_factor(const AttnArgs &a, int bh, int i, int j)
{
    if (!a.m.apply) return 1.0f;
    uint64_t e = ((uint64_t)bh * a.T + (uint64_t)i) * a.T + (uint64_t)j;
    uint32_t w[4];
    philox_block(a.seed, a.stream, e / 8, w);
    return dropout_value(a.m, w, (int)(e % 8), 1.0f);
}

/* keep_factor of the n consecutive stream elements from e0: op(c, z) for
 * element e0 + c, one Philox call per block of 8. */
template <class Op> __device__ __forceinline__ void keep_run(const AttnArgs &a, uint64_t e0, int n, Op op)
{
    if (!a.m.apply) {
        for (int c = 0; c < n; c++) op(c, 1.0f);
        return;
    }
    for (uint64_t g = e0 / 8; g * 8 < e0 + (uint64_t)n; g++) {
        uint32_t w[4];
        philox_block(a.seed, a.stream, g, w);
        for (int j = 0; j < 8; j++) {
            uint64_t e = g * 8 + (uint64_t)j;
            if (e >= e0 && e < e0 + (uint64_t)n) op((int)(e - e0), dropout_value(a.m, w, j, 1.0f));
        }
    }
}

/* attention_wmma.cu: the bf16 shapes attention_fused_tensor_cores names. */
int attention_wmma_forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const float *mask,
                           const AttnArgs &a, int hs, const PhiloxKey *key, cudaStream_t stream);
int attention_wmma_backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dsum, const bf16 *dout, const bf16 *out,
                            const bf16 *q, const bf16 *k, const bf16 *v, const float *lse, const float *mask,
                            const AttnArgs &a, int hs, const PhiloxKey *key, cudaStream_t stream);

#endif
