/* ReLU, elementwise over n values (the classification head's activation).
 * The backward accumulates into dinp; it reads the forward's input. */
#ifndef GENRE_OPS_RELU_H
#define GENRE_OPS_RELU_H

#include <stddef.h>

void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, const float *dout, const float *inp, size_t n);

#endif
