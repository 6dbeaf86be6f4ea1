/* The residual connection: y += x over n values (a block's sublayer output
 * plus its input). Its backward is the identity: the gradient of y flows
 * to x unchanged, a copy (or an accumulation) the caller does itself. */
#ifndef GENRE_OPS_RESIDUAL_H
#define GENRE_OPS_RESIDUAL_H

#include <stddef.h>

void residual_add(float *y, const float *x, size_t n);

#endif
