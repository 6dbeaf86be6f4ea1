#include <stddef.h>

#include "src/ops/embedding.h"

void embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe,
                       int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *w = wte + (size_t)ids[b * T + t] * C, *p = wpe + (size_t)t * C;
            float *o = out + ((size_t)b * T + t) * C;
            for (int i = 0; i < C; i++) o[i] = w[i] + p[i];
        }
}

void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                        int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *dw = dwte + (size_t)ids[b * T + t] * C, *dp = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                dw[i] += d[i];
                dp[i] += d[i];
            }
        }
}
