#include <cblas.h>

#include "src/ops/blas_threads.h"

void blas_single_threaded(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}
