#include <math.h>
#include <stddef.h>

#include "src/ops/softmax.h"
#include "src/ops/vecmath.h"

/* Each row in three vectorized passes (scores and their maximum, vec_expf
 * and the sum, the normalisation); sums in double. */

VEC_CLONES void softmax_forward(float *out, const float *inp, const float *mask, float scale,
                                int rows, int cols, int rows_per_mask)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * cols;
        const float *m = mask ? mask + (size_t)(r / rows_per_mask) * cols : NULL;
        float *y = out + (size_t)r * cols;
        float mx = -INFINITY;
        if (m) {
            #pragma omp simd reduction(max : mx)
            for (int j = 0; j < cols; j++) {
                y[j] = scale * x[j] + m[j];
                mx = vec_select(y[j] > mx, y[j], mx);
            }
        } else {
            #pragma omp simd reduction(max : mx)
            for (int j = 0; j < cols; j++) {
                y[j] = scale * x[j];
                mx = vec_select(y[j] > mx, y[j], mx);
            }
        }
        double sum = 0.0;
        #pragma omp simd reduction(+ : sum)
        for (int j = 0; j < cols; j++) {
            y[j] = vec_expf(y[j] - mx);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        #pragma omp simd
        for (int j = 0; j < cols; j++) y[j] *= inv;
    }
}

VEC_CLONES void softmax_backward(float *dinp, const float *dout, const float *out, float scale,
                                 int rows, int cols)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++) {
        const float *y = out + (size_t)r * cols, *dy = dout + (size_t)r * cols;
        float *dx = dinp + (size_t)r * cols;
        double dot = 0.0;
        #pragma omp simd reduction(+ : dot)
        for (int j = 0; j < cols; j++) dot += (double)y[j] * dy[j];
        #pragma omp simd
        for (int j = 0; j < cols; j++) dx[j] += scale * y[j] * (dy[j] - (float)dot);
    }
}

void softmax_mask_additive(float *out, const int32_t *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = mask && !mask[i] ? SOFTMAX_MASKED : 0.0f;
}
