#include <math.h>

#include "dropout.h"
#include "philox.h"

/* Bit j set: element 8*b + j is kept (its 16-bit draw is >= p * 65536). */
static unsigned kept(uint64_t seed, uint64_t stream, uint64_t b, float p)
{
    uint32_t w[4], thr = (uint32_t)lrintf(p * 65536.0f);
    philox_block(seed, stream, b, w);
    unsigned bits = 0;
    for (int j = 0; j < 8; j++)
        bits |= (unsigned)((uint16_t)(w[j / 2] >> (16 * (j % 2))) >= thr) << j;
    return bits;
}

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream)
{
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < (n + 7) / 8; b++) {
        unsigned k = p > 0.0f ? kept(seed, stream, b, p) : 0xff;
        for (size_t j = 0, i = 8 * b; j < 8 && i < n; j++, i++)
            out[i] = (k >> j) & 1 ? inp[i] * scale : 0.0f;
    }
}

void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream)
{
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < (n + 7) / 8; b++) {
        unsigned k = p > 0.0f ? kept(seed, stream, b, p) : 0xff;
        for (size_t j = 0, i = 8 * b; j < 8 && i < n; j++, i++)
            if ((k >> j) & 1) dinp[i] += dout[i] * scale;
    }
}
