#include "dropout.h"
#include "philox.h"

/* Both directions walk the elements in Philox blocks of four: one generator
 * call per block (philox_uniform4), element i using word i % 4 of block i / 4. */

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream)
{
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) out[i] = inp[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
    size_t blocks = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        float u[4];
        philox_uniform4(seed, stream, b, u);
        for (size_t j = 0, i = 4 * b; j < 4 && i < n; j++, i++)
            out[i] = u[j] < p ? 0.0f : inp[i] * scale;
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
    size_t blocks = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        float u[4];
        philox_uniform4(seed, stream, b, u);
        for (size_t j = 0, i = 4 * b; j < 4 && i < n; j++, i++)
            if (u[j] >= p) dinp[i] += dout[i] * scale;
    }
}
