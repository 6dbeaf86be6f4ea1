/* HOSTDEV marks an inline function that nvcc compiles for the GPU as well
 * as the CPU, so a CUDA kernel runs the very lines its CPU op runs (the
 * Philox rounds, a loss's element): one source for both. Elsewhere (the C
 * build, the simulator's host compiler) it is plain static inline. */
#ifndef GENRE_CORE_HOSTDEV_H
#define GENRE_CORE_HOSTDEV_H

#ifdef __CUDACC__
#define HOSTDEV static __host__ __device__ __forceinline__
#else
#define HOSTDEV static inline
#endif

#endif
