#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "attention.h"
#include "dropout.h"
#include "softmax.h"

void attention_forward(float *out, float *preatt, float *att, float *attd, const float *q,
                       const float *k, const float *v, const float *mask, int B, int T, int H,
                       int hs, float p, uint64_t seed, uint64_t stream)
{
    int C = H * hs;
    size_t tt = (size_t)T * T, n = (size_t)B * H * tt;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * T * C + (size_t)h * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, q + off, C,
                        k + off, C, 0.0f, preatt + ((size_t)b * H + h) * tt, T);
        }
    softmax_forward(att, preatt, mask, 1.0f / sqrtf((float)hs), B * H * T, T, H * T);
    const float *probs = att;
    if (p > 0.0f) {
        dropout_forward(attd, att, n, p, seed, stream);
        probs = attd;
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * T * C + (size_t)h * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f,
                        probs + ((size_t)b * H + h) * tt, T, v + off, C, 0.0f, out + off, C);
        }
}

void attention_backward(float *dq, float *dk, float *dv, float *dscratch1, float *dscratch2,
                        const float *dout, const float *q, const float *k, const float *v,
                        const float *att, const float *attd, int B, int T, int H, int hs, float p,
                        uint64_t seed, uint64_t stream)
{
    int C = H * hs;
    size_t tt = (size_t)T * T, n = (size_t)B * H * tt;
    const float *probs = p > 0.0f ? attd : att; /* what the forward multiplied v by */
    float *dprobs = dscratch1;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * T * C + (size_t)h * hs, a = ((size_t)b * H + h) * tt;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dout + off, C,
                        v + off, C, 0.0f, dprobs + a, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, probs + a, T,
                        dout + off, C, 1.0f, dv + off, C);
        }
    float *datt = dprobs;
    if (p > 0.0f) {
        memset(dscratch2, 0, n * sizeof(float));
        dropout_backward(dscratch2, dprobs, n, p, seed, stream);
        datt = dscratch2;
    }
    /* dpreatt reuses whichever scratch datt is not in. */
    float *dpre = datt == dscratch1 ? dscratch2 : dscratch1;
    memset(dpre, 0, n * sizeof(float));
    softmax_backward(dpre, datt, att, 1.0f / sqrtf((float)hs), B * H * T, T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * T * C + (size_t)h * hs, a = ((size_t)b * H + h) * tt;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, dpre + a, T,
                        k + off, C, 1.0f, dq + off, C);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, dpre + a, T,
                        q + off, C, 1.0f, dk + off, C);
        }
}
