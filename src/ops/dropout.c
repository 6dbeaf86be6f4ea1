#include <math.h>

#include "src/ops/dropout.h"
#include "src/core/philox.h"
#include "src/ops/vecmath.h"

/* Elements per group: the 8 draws of each of PHILOX_LANES blocks. */
#define GROUP (8 * PHILOX_LANES)

/* keep[e]: all ones if element GROUP * g + e is kept, else 0. */
static inline void keep_masks(uint64_t seed, uint64_t stream, uint64_t g, uint32_t thr,
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

VEC_CLONES void dropout_forward_at(float *out, const float *inp, size_t n, uint64_t first,
                                   float p, uint64_t seed, uint64_t stream)
{
    if (p <= 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    uint32_t thr = (uint32_t)lrintf(p * 65536.0f);
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (uint64_t g = first / GROUP; g < (first + n + GROUP - 1) / GROUP; g++) {
        uint32_t keep[GROUP];
        keep_masks(seed, stream, g, thr, keep);
        uint64_t lo = g * GROUP > first ? g * GROUP : first;
        uint64_t hi = (g + 1) * GROUP < first + n ? (g + 1) * GROUP : first + n;
        float *o = out + (lo - first);
        const float *x = inp + (lo - first);
        const uint32_t *k = keep + (lo - g * GROUP);
        #pragma omp simd
        for (size_t j = 0; j < hi - lo; j++) o[j] = vec_float(vec_bits(x[j] * scale) & k[j]);
    }
}

VEC_CLONES void dropout_backward_at(float *dinp, const float *dout, size_t n, uint64_t first,
                                    float p, uint64_t seed, uint64_t stream)
{
    if (p <= 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    uint32_t thr = (uint32_t)lrintf(p * 65536.0f);
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (uint64_t g = first / GROUP; g < (first + n + GROUP - 1) / GROUP; g++) {
        uint32_t keep[GROUP];
        keep_masks(seed, stream, g, thr, keep);
        uint64_t lo = g * GROUP > first ? g * GROUP : first;
        uint64_t hi = (g + 1) * GROUP < first + n ? (g + 1) * GROUP : first + n;
        float *d = dinp + (lo - first);
        const float *dy = dout + (lo - first);
        const uint32_t *k = keep + (lo - g * GROUP);
        #pragma omp simd
        for (size_t j = 0; j < hi - lo; j++) d[j] += vec_float(vec_bits(dy[j] * scale) & k[j]);
    }
}

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream)
{
    dropout_forward_at(out, inp, n, 0, p, seed, stream);
}

void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream)
{
    dropout_backward_at(dinp, dout, n, 0, p, seed, stream);
}

void dropout_forward_rows(float *out, const float *inp, int rows, int cols, uint64_t first,
                          uint64_t row_stride, float p, uint64_t seed, uint64_t stream)
{
    for (int r = 0; r < rows; r++)
        dropout_forward_at(out + (size_t)r * cols, inp + (size_t)r * cols, (size_t)cols,
                           first + (uint64_t)r * row_stride, p, seed, stream);
}

void dropout_backward_rows(float *dinp, const float *dout, int rows, int cols, uint64_t first,
                           uint64_t row_stride, float p, uint64_t seed, uint64_t stream)
{
    for (int r = 0; r < rows; r++)
        dropout_backward_at(dinp + (size_t)r * cols, dout + (size_t)r * cols, (size_t)cols,
                            first + (uint64_t)r * row_stride, p, seed, stream);
}
