/* Linear layer, PyTorch layout: out = inp @ weight^T + bias.
 * Layout: inp N x C, weight OC x C (nn.Linear's [out, in]), bias OC (or
 * NULL), out N x OC; row-major. GEMMs through OpenBLAS, split into row
 * blocks across OpenMP threads (blas_threads.h). The backward accumulates
 * into dinp, dweight and dbias; any of them may be NULL to skip it. */
#ifndef GENRE_OPS_LINEAR_H
#define GENRE_OPS_LINEAR_H

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC);
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC);

/* The bias halves alone, as a GPU backend runs them around its GEMMs:
 * out[n, o] += bias[o] over N x OC; dbias[o] += the sum of dout[n, o] over
 * n, taken in order of n (so the same bits for any number of threads). */
void linear_bias_forward(float *out, const float *bias, int N, int OC);
void linear_bias_backward(float *dbias, const float *dout, int N, int OC);

#endif
