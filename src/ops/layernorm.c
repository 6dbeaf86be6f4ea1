#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "src/core/err.h"
#include "src/ops/layernorm.h"
#include "src/ops/vecmath.h"

/* Columns per task of the parameter gradients: one task sums its columns
 * over every row, in row order, so the result does not depend on threads. */
#define COLS 32

VEC_CLONES void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int rows, int dim,
                                  float eps)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double m = 0.0, v = 0.0;
        #pragma omp simd reduction(+ : m)
        for (int i = 0; i < dim; i++) m += x[i];
        m /= dim;
        #pragma omp simd reduction(+ : v)
        for (int i = 0; i < dim; i++) v += (x[i] - m) * (x[i] - m);
        v /= dim;
        float s = (float)(1.0 / sqrt(v + eps)), mf = (float)m;
        #pragma omp simd
        for (int i = 0; i < dim; i++) y[i] = ((x[i] - mf) * s) * weight[i] + bias[i];
        mean[r] = mf;
        rstd[r] = s;
    }
}

VEC_CLONES void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int rows, int dim)
{
    /* Parameter gradients summed in double (a float running sum over
     * thousands of rows drifts by more than 1e-5), added once. */
    double *acc = xcalloc(2 * (size_t)dim, sizeof *acc), *acc_w = acc, *acc_b = acc + dim;
    #pragma omp parallel if ((size_t)rows * dim > 65536)
    {
        #pragma omp for schedule(static) nowait
        for (int c = 0; c < dim; c += COLS) {
            int c1 = c + COLS < dim ? c + COLS : dim;
            for (int r = 0; r < rows; r++) {
                const float *x = inp + (size_t)r * dim, *dy = dout + (size_t)r * dim;
                #pragma omp simd
                for (int i = c; i < c1; i++) {
                    acc_b[i] += dy[i];
                    acc_w[i] += (x[i] - mean[r]) * rstd[r] * dy[i];
                }
            }
            for (int i = c; i < c1; i++) {
                dbias[i] += (float)acc_b[i];
                dweight[i] += (float)acc_w[i];
            }
        }
        #pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (size_t)r * dim, *dy = dout + (size_t)r * dim;
            float *dx = dinp + (size_t)r * dim;
            double sum_dn = 0.0, sum_dn_n = 0.0;
            #pragma omp simd reduction(+ : sum_dn, sum_dn_n)
            for (int i = 0; i < dim; i++) {
                float n = (x[i] - mean[r]) * rstd[r];
                float dn = dy[i] * weight[i];
                sum_dn += dn;
                sum_dn_n += dn * n;
            }
            float a = (float)(sum_dn / dim), b = (float)(sum_dn_n / dim);
            #pragma omp simd
            for (int i = 0; i < dim; i++) {
                float n = (x[i] - mean[r]) * rstd[r];
                dx[i] += rstd[r] * (dy[i] * weight[i] - a - n * b);
            }
        }
    }
    free(acc);
}
