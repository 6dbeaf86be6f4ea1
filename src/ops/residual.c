#include "src/ops/residual.h"

void residual_add(float *y, const float *x, size_t n)
{
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
