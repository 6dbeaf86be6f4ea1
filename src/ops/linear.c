#include <cblas.h>
#include <omp.h>
#include <stddef.h>

#include "src/ops/blas_threads.h"
#include "src/ops/linear.h"

/* This thread's share [*lo, *hi) of n rows. */
static void share(int n, int *lo, int *hi)
{
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    *lo = (int)((long)n * t / nt);
    *hi = (int)((long)n * (t + 1) / nt);
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC)
{
    blas_single_threaded();
    #pragma omp parallel
    {
        int r0, r1;
        share(N, &r0, &r1);
        if (r1 > r0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, OC, C, 1.0f,
                        inp + (size_t)r0 * C, C, weight, C, 0.0f, out + (size_t)r0 * OC, OC);
            if (bias) linear_bias_forward(out + (size_t)r0 * OC, bias, r1 - r0, OC);
        }
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC)
{
    blas_single_threaded();
    #pragma omp parallel
    {
        int r0, r1, o0, o1;
        share(N, &r0, &r1);
        share(OC, &o0, &o1);
        /* dinp by rows of the batch; dweight by output rows, each summing
         * over the batch in a fixed order (deterministic). */
        if (dinp && r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, C, OC, 1.0f,
                        dout + (size_t)r0 * OC, OC, weight, C, 1.0f, dinp + (size_t)r0 * C, C);
        if (dweight && o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, C, N, 1.0f, dout + o0,
                        OC, inp, C, 1.0f, dweight + (size_t)o0 * C, C);
    }
    if (dbias) linear_bias_backward(dbias, dout, N, OC);
}

void linear_bias_forward(float *out, const float *bias, int N, int OC)
{
    for (int n = 0; n < N; n++) {
        float *y = out + (size_t)n * OC;
        #pragma omp simd
        for (int o = 0; o < OC; o++) y[o] += bias[o];
    }
}

/* Threads take columns; each sums its columns over the batch in order. */
void linear_bias_backward(float *dbias, const float *dout, int N, int OC)
{
    #pragma omp parallel if ((size_t)N * OC > 65536)
    {
        int o0, o1;
        share(OC, &o0, &o1);
        for (int n = 0; n < N; n++) {
            const float *dy = dout + (size_t)n * OC;
            #pragma omp simd
            for (int o = o0; o < o1; o++) dbias[o] += dy[o];
        }
    }
}
