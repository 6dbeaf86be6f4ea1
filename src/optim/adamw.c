#include <math.h>
#include <stdlib.h>

#include "src/optim/adamw.h"
#include "src/core/err.h"
#include "src/ops/vecmath.h"

VEC_CLONES void adamw_update(const AdamW *opt, float *param, const float *grad, float *m, float *v,
                  size_t n, int t, float lr, int decay)
{
    float b1 = opt->beta1, b2 = opt->beta2;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    float keep = decay ? 1.0f - lr * opt->weight_decay : 1.0f;
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = m[i] + (1.0f - b1) * (g - m[i]); /* PyTorch's lerp form */
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + opt->eps;
        param[i] = param[i] * keep - step_size * m[i] / denom;
    }
}

float lr_linear_schedule(long step, long warmup_steps, long total_steps)
{
    if (step < warmup_steps) return (float)step / (float)(warmup_steps > 1 ? warmup_steps : 1);
    long rest = total_steps - warmup_steps;
    float f = (float)(total_steps - step) / (float)(rest > 1 ? rest : 1);
    return f > 0.0f ? f : 0.0f;
}

long lr_warmup_steps(double ratio, long total_steps)
{
    return (long)ceil(ratio * (double)total_steps);
}

/* Chunks of the squared-norm sum: fixed, so the sum does not depend on the
 * number of threads. */
#define CHUNK 65536

VEC_CLONES float clip_grad_norm(float *grad, size_t n, float max_norm)
{
    size_t chunks = (n + CHUNK - 1) / CHUNK;
    double *part = xmalloc((chunks ? chunks : 1) * sizeof *part), ss = 0.0;
    #pragma omp parallel for schedule(static) if (n > CHUNK)
    for (size_t c = 0; c < chunks; c++) {
        size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double s = 0.0;
        #pragma omp simd reduction(+ : s)
        for (size_t i = c * CHUNK; i < end; i++) s += (double)grad[i] * grad[i];
        part[c] = s;
    }
    for (size_t c = 0; c < chunks; c++) ss += part[c];
    free(part);
    float norm = (float)sqrt(ss);
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) {
        #pragma omp parallel for simd schedule(static) if (n > CHUNK)
        for (size_t i = 0; i < n; i++) grad[i] *= coef;
    }
    return norm;
}
