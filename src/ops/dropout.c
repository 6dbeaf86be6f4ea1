#include <math.h>

#include "dropout.h"
#include "philox.h"
#include "vecmath.h"

/* Elements per group: the 8 draws of each of PHILOX_LANES blocks. */
#define GROUP (8 * PHILOX_LANES)

/* keep[e]: all ones if element GROUP * g + e is kept, else 0. */
static inline void keep_masks(uint64_t seed, uint64_t stream, size_t g, uint32_t thr,
                              uint32_t keep[GROUP])
{
    uint32_t w[4][PHILOX_LANES];
    philox_blocks(seed, stream, (uint64_t)g * PHILOX_LANES, w);
    #pragma omp simd
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint32_t *k = keep + 8 * l;
        k[0] = 0u - (uint32_t)((w[0][l] & 0xffff) >= thr);
        k[1] = 0u - (uint32_t)((w[0][l] >> 16) >= thr);
        k[2] = 0u - (uint32_t)((w[1][l] & 0xffff) >= thr);
        k[3] = 0u - (uint32_t)((w[1][l] >> 16) >= thr);
        k[4] = 0u - (uint32_t)((w[2][l] & 0xffff) >= thr);
        k[5] = 0u - (uint32_t)((w[2][l] >> 16) >= thr);
        k[6] = 0u - (uint32_t)((w[3][l] & 0xffff) >= thr);
        k[7] = 0u - (uint32_t)((w[3][l] >> 16) >= thr);
    }
}

VEC_CLONES void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                                uint64_t stream)
{
    if (p <= 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    uint32_t thr = (uint32_t)lrintf(p * 65536.0f);
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t g = 0; g < (n + GROUP - 1) / GROUP; g++) {
        uint32_t keep[GROUP];
        keep_masks(seed, stream, g, thr, keep);
        size_t i0 = g * GROUP, m = n - i0 < GROUP ? n - i0 : GROUP;
        #pragma omp simd
        for (size_t e = 0; e < m; e++)
            out[i0 + e] = vec_float(vec_bits(inp[i0 + e] * scale) & keep[e]);
    }
}

VEC_CLONES void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                                 uint64_t stream)
{
    if (p <= 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    uint32_t thr = (uint32_t)lrintf(p * 65536.0f);
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t g = 0; g < (n + GROUP - 1) / GROUP; g++) {
        uint32_t keep[GROUP];
        keep_masks(seed, stream, g, thr, keep);
        size_t i0 = g * GROUP, m = n - i0 < GROUP ? n - i0 : GROUP;
        #pragma omp simd
        for (size_t e = 0; e < m; e++)
            dinp[i0 + e] += vec_float(vec_bits(dout[i0 + e] * scale) & keep[e]);
    }
}
