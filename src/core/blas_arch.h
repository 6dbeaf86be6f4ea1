/* OpenBLAS picks its GEMM kernels from the CPU model when it loads. Virtual
 * machines that hide the model make it fall back to Prescott (SSE3), about
 * 4x slower than the AVX-512 kernels the same CPU runs. Since the choice is
 * made before main, the fix is to set OPENBLAS_CORETYPE and start again. */
#ifndef GENRE_BLAS_ARCH_H
#define GENRE_BLAS_ARCH_H

/* The OpenBLAS core type a CPU with these features should use when OpenBLAS
 * chose `corename`, or NULL when its choice stands: only a pre-AVX2 Intel
 * core on a CPU with AVX2+FMA (or AVX-512) counts as a misdetection. */
const char *blas_arch_wanted(const char *corename, int has_avx2_fma, int has_avx512);

/* The core OpenBLAS runs on now. */
const char *blas_arch_current(void);

/* blas_arch_wanted with the features of the CPU this runs on. */
const char *blas_arch_wanted_here(const char *corename);

/* Called first in main: when OpenBLAS misdetected this CPU and the user did
 * not set OPENBLAS_CORETYPE, sets it and re-executes the program with the
 * same arguments. Returns (and changes nothing) otherwise or on failure. */
void blas_arch_fix(char **argv);

#endif
