/* Rows picked out of a larger row-major matrix and put back: the [CLS] rows
 * (row b * T of a B x T x C tensor) that the classification head reads.
 * rows_gather: dst row r = src row r * stride (dst rows x cols, compact).
 * rows_scatter_add: dst row r * stride += src row r, the gather's backward. */
#ifndef GENRE_OPS_ROWS_H
#define GENRE_OPS_ROWS_H

void rows_gather(float *dst, const float *src, int rows, int cols, int stride);
void rows_scatter_add(float *dst, const float *src, int rows, int cols, int stride);

#endif
