/* Inverted dropout with masks from Philox (philox.h): element i draws the 16
 * bits (word (i % 8) / 2, low half first) of Philox block i / 8 of `stream`
 * under key `seed`, and is kept when they are >= round(p * 65536); kept
 * elements are scaled by 1 / (1 - p). Eight elements per generator call; p
 * is thus resolved to 1/65536. Blocks are drawn PHILOX_LANES at a time
 * (philox_blocks, vectorized); tests/model/test_ops_grad.c pins the mapping. The
 * mask is never stored: the backward recomputes it from (seed, stream), and
 * a GPU kernel can reproduce it bit for bit. p = 0 copies. The forward writes out; the backward accumulates
 * into dinp. */
#ifndef GENRE_OPS_DROPOUT_H
#define GENRE_OPS_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

void dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed,
                     uint64_t stream);
void dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed,
                      uint64_t stream);

/* The same for elements first .. first + n - 1 of the stream (a part of a
 * larger tensor, with the masks the whole tensor's dropout would give it). */
void dropout_forward_at(float *out, const float *inp, size_t n, uint64_t first, float p,
                        uint64_t seed, uint64_t stream);
void dropout_backward_at(float *dinp, const float *dout, size_t n, uint64_t first, float p,
                         uint64_t seed, uint64_t stream);

/* The same for rows x cols elements (out and inp compact, row-major) that
 * sit `row_stride` elements apart in the stream: element (r, c) is element
 * first + r * row_stride + c of the stream, as for the [CLS] rows of a
 * B x T x C tensor (first 0, row_stride T * C). */
void dropout_forward_rows(float *out, const float *inp, int rows, int cols, uint64_t first,
                          uint64_t row_stride, float p, uint64_t seed, uint64_t stream);
void dropout_backward_rows(float *dinp, const float *dout, int rows, int cols, uint64_t first,
                           uint64_t row_stride, float p, uint64_t seed, uint64_t stream);

#endif
