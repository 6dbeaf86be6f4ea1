/* LayerNorm over the last dimension: out = (x - mean) * rstd * weight + bias.
 * Layout: rows x dim, row-major. The forward saves mean and rstd (one per
 * row) for the backward. Backward functions accumulate (+=) into their
 * gradient outputs, so residual branches and parameter gradients add up;
 * callers zero them once per step. */
#ifndef GENRE_OPS_LAYERNORM_H
#define GENRE_OPS_LAYERNORM_H

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int dim, float eps);

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int rows, int dim);

#endif
