/* All CPU parallelism in genre is OpenMP's: GEMMs are split into row blocks
 * inside OpenMP loops and each OpenBLAS call runs single-threaded. Two thread
 * pools (OpenMP's and OpenBLAS's) on the same cores hand the CPU back and
 * forth (sched_yield) after every call; one pool does not. */
#ifndef GENRE_OPS_BLAS_THREADS_H
#define GENRE_OPS_BLAS_THREADS_H

/* Makes OpenBLAS single-threaded (process-wide); cheap, call before GEMMs. */
void blas_single_threaded(void);

#endif
