/* GELU, erf form (HuggingFace DistilBERT's "gelu"): 0.5 x (1 + erf(x / sqrt 2)).
 * Elementwise over n values; the backward accumulates into dinp. */
#ifndef GENRE_OPS_GELU_H
#define GENRE_OPS_GELU_H

#include <stddef.h>

void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

#endif
