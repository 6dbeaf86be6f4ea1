#include "dropout.h"
#include "philox.h"

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream)
{
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        out[i] = (p > 0.0f && philox_uniform(seed, stream, i) < p) ? 0.0f : inp[i] * scale;
}

void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream)
{
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        if (!(p > 0.0f && philox_uniform(seed, stream, i) < p)) dinp[i] += dout[i] * scale;
}
