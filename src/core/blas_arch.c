#include "src/core/blas_arch.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *blas_arch_wanted(const char *corename, int has_avx2_fma, int has_avx512)
{
    /* OpenBLAS's kernels for Intel cores older than Haswell: without AVX2/FMA. */
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                      "Atom", "Sandybridge", NULL};
    int misdetected = 0;
    for (int i = 0; old[i]; i++) misdetected |= !strcasecmp(corename, old[i]);
    if (!misdetected) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2_fma) return "Haswell";
    return NULL;
}

const char *blas_arch_current(void)
{
    return openblas_get_corename();
}

const char *blas_arch_wanted_here(const char *corename)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return blas_arch_wanted(corename, avx2, avx512);
}

void blas_arch_fix(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *want = blas_arch_wanted_here(blas_arch_current());
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");
}
