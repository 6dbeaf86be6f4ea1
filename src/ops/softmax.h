/* Softmax over the last dimension of scale * x + mask, as attention needs.
 * Layout: rows x cols, row-major. `mask` is additive, shape
 * (rows / rows_per_mask) x cols, row r using mask row r / rows_per_mask
 * (for attention scores B x H x T x T: rows_per_mask = H * T); NULL for none.
 * Masked entries hold -FLT_MAX (SOFTMAX_MASKED), which reproduces
 * HuggingFace's masked_fill(finfo.min): an all-masked row comes out uniform.
 * The backward accumulates into dinp and includes the scale. */
#ifndef GENRE_OPS_SOFTMAX_H
#define GENRE_OPS_SOFTMAX_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#define SOFTMAX_MASKED (-FLT_MAX)

void softmax_forward(float *out, const float *inp, const float *mask, float scale,
                     int rows, int cols, int rows_per_mask);

void softmax_backward(float *dinp, const float *dout, const float *out, float scale,
                      int rows, int cols);

/* The additive mask of n positions from a 0/1 attention mask (1: attend):
 * out[i] = 0 where mask[i] is nonzero, SOFTMAX_MASKED where it is 0; all 0
 * for mask NULL (every position attended). */
void softmax_mask_additive(float *out, const int32_t *mask, size_t n);

#endif
