/* VEC_CLONES on a function compiles it twice on x86-64 with GCC: for
 * x86-64-v3 (AVX2, 8 lanes) and the baseline, chosen once at load time, so
 * the product stays portable. The build is ISO C (-std=c11: no
 * floating-point contraction), so both clones round alike: the same bits on
 * every CPU. */
#ifndef GENRE_CORE_CLONES_H
#define GENRE_CORE_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VEC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VEC_CLONES
#endif

#endif
