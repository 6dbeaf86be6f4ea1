#include <stddef.h>
#include <string.h>

#include "src/ops/rows.h"

void rows_gather(float *dst, const float *src, int rows, int cols, int stride)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * cols, src + (size_t)r * stride * cols, (size_t)cols * sizeof *dst);
}

void rows_scatter_add(float *dst, const float *src, int rows, int cols, int stride)
{
    for (int r = 0; r < rows; r++) {
        float *d = dst + (size_t)r * stride * cols;
        const float *s = src + (size_t)r * cols;
        for (int c = 0; c < cols; c++) d[c] += s[c];
    }
}
