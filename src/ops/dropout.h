/* Inverted dropout with masks from Philox (philox.h): element i is kept when
 * philox_uniform(seed, stream, i) >= p and then scaled by 1 / (1 - p). The
 * mask is never stored: the backward recomputes it from (seed, stream), and
 * a GPU kernel can reproduce it bit for bit. p = 0 copies. The forward
 * writes out; the backward accumulates into dinp. */
#ifndef GENRE_OPS_DROPOUT_H
#define GENRE_OPS_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream);
void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream);

#endif
