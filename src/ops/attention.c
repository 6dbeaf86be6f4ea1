#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "src/ops/attention.h"
#include "src/ops/blas_threads.h"
#include "src/ops/dropout.h"
#include "src/ops/softmax.h"
#include "src/ops/vecmath.h"

/* The per-(batch, head) GEMMs are small (T x T x hs): an OpenMP loop over
 * (batch, head) runs them, each single-threaded (blas_threads.h). */

void attention_forward(float *out, float *preatt, float *att, float *attd, const float *q,
                       const float *k, const float *v, const float *mask, int B, int T, int H,
                       int hs, float p, uint64_t seed, uint64_t stream)
{
    int C = H * hs;
    size_t tt = (size_t)T * T, n = (size_t)B * H * tt;
    blas_single_threaded();
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, q + off, C, k + off,
                    C, 0.0f, preatt + bh * tt, T);
    }
    softmax_forward(att, preatt, mask, 1.0f / sqrtf((float)hs), B * H * T, T, H * T);
    const float *probs = att;
    if (p > 0.0f) {
        dropout_forward(attd, att, n, p, seed, stream);
        probs = attd;
    }
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, probs + bh * tt, T,
                    v + off, C, 0.0f, out + off, C);
    }
}

VEC_CLONES void attention_backward(float *dq, float *dk, float *dv, float *dscratch1,
                                   float *dscratch2, const float *dout, const float *q,
                                   const float *k, const float *v, const float *att,
                                   const float *attd, int B, int T, int H, int hs, float p)
{
    int C = H * hs;
    size_t tt = (size_t)T * T, n = (size_t)B * H * tt;
    const float *probs = p > 0.0f ? attd : att; /* what the forward multiplied v by */
    float *dprobs = dscratch1;
    blas_single_threaded();
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs, a = bh * tt;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dout + off, C,
                    v + off, C, 0.0f, dprobs + a, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, probs + a, T,
                    dout + off, C, 1.0f, dv + off, C);
    }
    if (p > 0.0f) {
        /* Through the dropout, in place. The mask is read off attd: a kept
         * entry is nonzero unless att is 0, and where att is 0 the softmax
         * backward multiplies the gradient by 0 anyway. */
        float scale = 1.0f / (1.0f - p);
        #pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dprobs[i] = vec_select(attd[i] != 0.0f, dprobs[i] * scale, 0.0f);
    }
    float *dpre = dscratch2;
    memset(dpre, 0, n * sizeof(float));
    softmax_backward(dpre, dprobs, att, 1.0f / sqrtf((float)hs), B * H * T, T);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs, a = bh * tt;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, dpre + a, T,
                    k + off, C, 1.0f, dq + off, C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, dpre + a, T,
                    q + off, C, 1.0f, dk + off, C);
    }
}

/* One query row per (batch, head): matrix-vector products. */

void attention_first_forward(float *out, float *preatt, float *att, float *attd, const float *q,
                             const float *k, const float *v, const float *mask, int B, int T,
                             int H, int hs, float p, uint64_t seed, uint64_t stream)
{
    int C = H * hs;
    size_t tt = (size_t)T * T;
    blas_single_threaded();
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, T, hs, 1.0f, k + off, C,
                    q + (size_t)(bh / H) * C + (size_t)(bh % H) * hs, 1, 0.0f,
                    preatt + (size_t)bh * T, 1);
    }
    softmax_forward(att, preatt, mask, 1.0f / sqrtf((float)hs), B * H, T, H);
    const float *probs = att;
    if (p > 0.0f) {
        /* row 0 of (batch, head) bh is element bh * T * T of the full op's */
        dropout_forward_rows(attd, att, B * H, T, 0, tt, p, seed, stream);
        probs = attd;
    }
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        cblas_sgemv(CblasRowMajor, CblasTrans, T, hs, 1.0f, v + off, C, probs + (size_t)bh * T,
                    1, 0.0f, out + (size_t)(bh / H) * C + (size_t)(bh % H) * hs, 1);
    }
}

VEC_CLONES void attention_first_backward(float *dq, float *dk, float *dv, float *dscratch1,
                                         float *dscratch2, const float *dout, const float *q,
                                         const float *k, const float *v, const float *att,
                                         const float *attd, int B, int T, int H, int hs,
                                         float p)
{
    int C = H * hs;
    size_t n = (size_t)B * H * T;
    const float *probs = p > 0.0f ? attd : att;
    float *dprobs = dscratch1, *dpre = dscratch2;
    blas_single_threaded();
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        const float *dy = dout + (size_t)(bh / H) * C + (size_t)(bh % H) * hs;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, T, hs, 1.0f, v + off, C, dy, 1, 0.0f,
                    dprobs + (size_t)bh * T, 1);
        cblas_sger(CblasRowMajor, T, hs, 1.0f, probs + (size_t)bh * T, 1, dy, 1, dv + off, C);
    }
    if (p > 0.0f) { /* through the dropout, as attention_backward */
        float scale = 1.0f / (1.0f - p);
        #pragma omp simd
        for (size_t i = 0; i < n; i++)
            dprobs[i] = vec_select(attd[i] != 0.0f, dprobs[i] * scale, 0.0f);
    }
    memset(dpre, 0, n * sizeof(float));
    softmax_backward(dpre, dprobs, att, 1.0f / sqrtf((float)hs), B * H, T);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * T * C + (size_t)(bh % H) * hs;
        size_t qo = (size_t)(bh / H) * C + (size_t)(bh % H) * hs;
        cblas_sgemv(CblasRowMajor, CblasTrans, T, hs, 1.0f, k + off, C, dpre + (size_t)bh * T, 1,
                    1.0f, dq + qo, 1);
        cblas_sger(CblasRowMajor, T, hs, 1.0f, dpre + (size_t)bh * T, 1, q + qo, 1, dk + off, C);
    }
}
