#include <math.h>

#include "dropout.h"
#include "philox.h"

/* The 16-bit draws of the eight elements of Philox block b. */
static void draws(uint64_t seed, uint64_t stream, uint64_t b, uint16_t u[8])
{
    uint32_t w[4];
    philox_block(seed, stream, b, w);
    for (int j = 0; j < 4; j++) {
        u[2 * j] = (uint16_t)w[j];
        u[2 * j + 1] = (uint16_t)(w[j] >> 16);
    }
}

static uint32_t threshold(float p) { return (uint32_t)lrintf(p * 65536.0f); }

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream)
{
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
    uint32_t thr = threshold(p);
    size_t blocks = (n + 7) / 8;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        uint16_t u[8];
        draws(seed, stream, b, u);
        for (size_t j = 0, i = 8 * b; j < 8 && i < n; j++, i++)
            out[i] = u[j] < thr ? 0.0f : inp[i] * scale;
    }
}

void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream)
{
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
    uint32_t thr = threshold(p);
    size_t blocks = (n + 7) / 8;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        uint16_t u[8];
        draws(seed, stream, b, u);
        for (size_t j = 0, i = 8 * b; j < 8 && i < n; j++, i++)
            if (u[j] >= thr) dinp[i] += dout[i] * scale;
    }
}
