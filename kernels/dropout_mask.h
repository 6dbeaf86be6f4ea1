/* The dropout mask in device code, for the dropout kernels (dropout.cu) and
 * the LayerNorm kernels that fuse one (layernorm.cu): src/ops/dropout.h's
 * mask bit for bit. Element e of a Philox stream is kept when the 16 bits
 * it draws (word (e % 8) / 2 of Philox block e / 8, low half first) are >=
 * round(p * 65536), and a kept element is scaled by 1 / (1 - p), one
 * rounding; threshold and scale come from the CPU's expressions, on the
 * host. One generator call gives a block's 8 elements, so the kernels walk
 * streams a Philox block at a time. */
#ifndef GENRE_KERNELS_DROPOUT_MASK_H
#define GENRE_KERNELS_DROPOUT_MASK_H

#include <math.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/core/philox.h"

struct DropoutMask {
    uint32_t thr; /* keep when the 16 bits are >= thr */
    float scale;
    bool apply;   /* false: p <= 0, the identity */
};

/* Host: the CPU op's threshold and scale for p. */
static inline DropoutMask dropout_mask(float p)
{
    DropoutMask m = {0, 1.0f, p > 0.0f};
    if (m.apply) {
        m.thr = (uint32_t)lrintf(p * 65536.0f);
        m.scale = 1.0f / (1.0f - p);
    }
    return m;
}

/* x through the mask, element j (0..7) of the Philox block whose words are w. */
__device__ __forceinline__ float dropout_value(DropoutMask m, const uint32_t w[4], int j, float x)
{
    if (!m.apply) return x;
    bool keep = ((w[j / 2] >> (16 * (j & 1))) & 0xffffu) >= m.thr;
    return keep ? fmul_rn(x, m.scale) : 0.0f;
}

/* A DropoutSite (kernels.h) as a kernel takes it: the mask, the key
 * pointer (read when the kernel runs, so a replayed graph draws its step's
 * masks) and the placement of the rows in the stream. */
struct DropoutRows {
    DropoutMask m;
    const PhiloxKey *key;
    uint64_t first, row_stride;
};

/* Host: the site, or (site NULL or p <= 0) the identity. */
static inline DropoutRows dropout_rows(const DropoutSite *site)
{
    DropoutRows d = {dropout_mask(site ? site->p : 0.0f), NULL, 0, 0};
    if (d.m.apply) d.key = site->key, d.first = site->first, d.row_stride = site->row_stride;
    return d;
}

/* One warp's pass over row r of `cols` elements: each lane takes whole
 * Philox blocks of the row's run of the stream (one generator call per 8
 * elements), calling op(c, w, j) for each of the block's elements c of the
 * row (j its place in the block, w the block's words). A lane's elements
 * are not the lanes' strided ones: a kernel that reads what another pass
 * of the warp wrote needs __syncwarp between the two. */
template <class Op>
__device__ __forceinline__ void dropout_row_pass(const DropoutRows &d, int r, int cols, int lane, Op op)
{
    uint64_t seed = d.m.apply ? d.key->seed : 0, stream = d.m.apply ? d.key->stream : 0;
    uint64_t f = d.first + (uint64_t)r * d.row_stride;
    for (uint64_t g = f / 8 + (uint64_t)lane; g * 8 < f + (uint64_t)cols; g += 32) {
        uint32_t w[4] = {0, 0, 0, 0};
        if (d.m.apply) philox_block(seed, stream, g, w);
        for (int j = 0; j < 8; j++) {
            uint64_t e = g * 8 + (uint64_t)j;
            if (e >= f && e < f + (uint64_t)cols) op((int)(e - f), w, j);
        }
    }
}

#endif
