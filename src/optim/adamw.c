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

void adamw_update_segments(const AdamW *opt, float *param, const float *grad, float *m, float *v,
                           const AdamWSegment *seg, int nseg, int t, float lr)
{
    for (int i = 0; i < nseg; i++) {
        size_t o = seg[i].off;
        adamw_update(opt, param + o, grad + o, m + o, v + o, seg[i].n, t, lr, seg[i].decay);
    }
}

void adamw_state_init(AdamWState *s, size_t n)
{
    s->n = n;
    s->m = xcalloc(n, sizeof(float));
    s->v = xcalloc(n, sizeof(float));
    s->t = 0;
}

void adamw_state_free(AdamWState *s)
{
    free(s->m);
    free(s->v);
    s->m = s->v = NULL;
    s->n = 0;
    s->t = 0;
}

#define CHUNK ADAMW_NORM_CHUNK

VEC_CLONES double grad_sum_squares(const float *grad, size_t n)
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
    return ss;
}

VEC_CLONES void clip_grad_scale(float *grad, size_t n, float norm, float max_norm)
{
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) {
        #pragma omp parallel for simd schedule(static) if (n > CHUNK)
        for (size_t i = 0; i < n; i++) grad[i] *= coef;
    }
}

void adamw_shard(size_t n, int world, int rank, size_t *shard, size_t *lo, size_t *hi)
{
    size_t per = (n + (size_t)world - 1) / (size_t)world;
    *shard = (per + CHUNK - 1) / CHUNK * CHUNK;
    *lo = (size_t)rank * *shard < n ? (size_t)rank * *shard : n;
    *hi = *lo + *shard < n ? *lo + *shard : n;
}

int adamw_segments_cut(const AdamWSegment *seg, int nseg, size_t lo, size_t hi, AdamWSegment *out)
{
    int k = 0;
    for (int i = 0; i < nseg; i++) {
        size_t a = seg[i].off > lo ? seg[i].off : lo, b = seg[i].off + seg[i].n < hi ? seg[i].off + seg[i].n : hi;
        if (a < b) out[k++] = (AdamWSegment){a - lo, b - a, seg[i].decay};
    }
    return k;
}

float clip_grad_norm(float *grad, size_t n, float max_norm)
{
    float norm = (float)sqrt(grad_sum_squares(grad, n));
    clip_grad_scale(grad, n, norm, max_norm);
    return norm;
}
