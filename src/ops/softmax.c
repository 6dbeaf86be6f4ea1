#include <math.h>
#include <stddef.h>

#include "softmax.h"

void softmax_forward(float *out, const float *inp, const float *mask, float scale,
                     int rows, int cols, int rows_per_mask)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * cols;
        const float *m = mask ? mask + (size_t)(r / rows_per_mask) * cols : NULL;
        float *y = out + (size_t)r * cols;
        float mx = -INFINITY;
        for (int j = 0; j < cols; j++) {
            y[j] = scale * x[j] + (m ? m[j] : 0.0f);
            mx = fmaxf(mx, y[j]);
        }
        double sum = 0.0;
        for (int j = 0; j < cols; j++) {
            y[j] = expf(y[j] - mx);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < cols; j++) y[j] *= inv;
    }
}

void softmax_backward(float *dinp, const float *dout, const float *out, float scale,
                      int rows, int cols)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++) {
        const float *y = out + (size_t)r * cols, *dy = dout + (size_t)r * cols;
        float *dx = dinp + (size_t)r * cols;
        double dot = 0.0;
        for (int j = 0; j < cols; j++) dot += (double)y[j] * dy[j];
        for (int j = 0; j < cols; j++) dx[j] += scale * y[j] * (dy[j] - (float)dot);
    }
}
