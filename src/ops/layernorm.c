#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "err.h"
#include "layernorm.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int dim, float eps)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < dim; i++) m += x[i];
        m /= dim;
        for (int i = 0; i < dim; i++) v += (x[i] - m) * (x[i] - m);
        v /= dim;
        float s = (float)(1.0 / sqrt(v + eps));
        for (int i = 0; i < dim; i++) y[i] = ((x[i] - (float)m) * s) * weight[i] + bias[i];
        mean[r] = (float)m;
        rstd[r] = s;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int rows, int dim)
{
    /* Parameter gradients: a fixed row order, so the result is deterministic;
     * summed in double (a float running sum over thousands of rows drifts by
     * more than 1e-5) and added to the gradients once. */
    double *acc = xcalloc(2 * (size_t)dim, sizeof *acc), *acc_w = acc, *acc_b = acc + dim;
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * dim, *dy = dout + (size_t)r * dim;
        for (int i = 0; i < dim; i++) {
            acc_b[i] += dy[i];
            acc_w[i] += (x[i] - mean[r]) * rstd[r] * dy[i];
        }
    }
    for (int i = 0; i < dim; i++) {
        dbias[i] += (float)acc_b[i];
        dweight[i] += (float)acc_w[i];
    }
    free(acc);
    #pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * dim, *dy = dout + (size_t)r * dim;
        float *dx = dinp + (size_t)r * dim;
        double sum_dn = 0.0, sum_dn_n = 0.0;
        for (int i = 0; i < dim; i++) {
            float n = (x[i] - mean[r]) * rstd[r];
            float dn = dy[i] * weight[i];
            sum_dn += dn;
            sum_dn_n += dn * n;
        }
        float a = (float)(sum_dn / dim), b = (float)(sum_dn_n / dim);
        for (int i = 0; i < dim; i++) {
            float n = (x[i] - mean[r]) * rstd[r];
            dx[i] += rstd[r] * (dy[i] * weight[i] - a - n * b);
        }
    }
}
