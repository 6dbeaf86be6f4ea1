/* What every CUDA source shares: the error check for CUDA and cuBLAS calls
 * (an err_set naming file:line, then return -1), the one launch macro (the only `<<<...>>>` in the
 * project, so kernels also compile for the simulator in tests/cudasim), and
 * the device helpers the kernels share (bf16 conversion, warp and block
 * reductions). The checks are usable from C; the rest is for .cu files.
 * Under CUDASIM the simulator's header (force-included first) provides the
 * runtime and the built-ins. */
#ifndef GENRE_CUDA_COMMON_H
#define GENRE_CUDA_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "src/core/err.h"

#ifdef CUDASIM
#include "cudasim.h"
#else
#include <cuda_runtime_api.h>
#endif

/* 0, or -1 with err_set("file:line: CUDA error N (text) in call"). */
static inline int cuda_ok(cudaError_t err, const char *call, const char *file, int line)
{
    if (err == cudaSuccess) return 0;
    return err_set("%s:%d: CUDA error %d (%s) in %s", file, line, (int)err, cudaGetErrorString(err), call);
}
/* In a function returning int: a failing call returns -1 with err_set. */
#define CUDA_CHECK(call)                                                 \
    do {                                                                 \
        if (cuda_ok((call), #call, __FILE__, __LINE__)) return -1;       \
    } while (0)

#include <cublas_api.h>
static inline int cublas_ok(cublasStatus_t st, const char *call, const char *file, int line)
{
    if (st == CUBLAS_STATUS_SUCCESS) return 0;
    return err_set("%s:%d: cuBLAS error %d (%s) in %s", file, line, (int)st, cublasGetStatusString(st), call);
}
#define CUBLAS_CHECK(call)                                               \
    do {                                                                 \
        if (cublas_ok((call), #call, __FILE__, __LINE__)) return -1;     \
    } while (0)

#if defined(__CUDACC__) || (defined(CUDASIM) && defined(__cplusplus))

#ifdef CUDASIM
#define LAUNCH(kernel, grid, block, smem, stream, ...) \
    cudasim_launch(#kernel, kernel, grid, block, smem, stream, __VA_ARGS__)
#define DYNAMIC_SHARED(type, name) CUDASIM_DYNAMIC_SHARED(type, name)
#else
#include <cuda_bf16.h>
#define LAUNCH(kernel, grid, block, smem, stream, ...) \
    kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define DYNAMIC_SHARED(type, name)                           \
    extern __shared__ __align__(128) unsigned char name##_[]; \
    type *name = (type *)name##_
#endif

static inline unsigned ceil_div(size_t a, unsigned b) { return (unsigned)((a + b - 1) / b); }

/* Blocks of 256 threads for a grid-stride loop over n elements: at most
 * 1024 (enough to fill any current GPU), so any n works and consecutive
 * threads touch consecutive elements. */
static inline unsigned grid_stride_blocks(size_t n)
{
    unsigned blocks = ceil_div(n < (size_t)1 << 30 ? n : (size_t)1 << 30, 256);
    return blocks < 1024 ? blocks : 1024;
}

/* fp32 arithmetic rounded once per operation and never contracted into a
 * fused multiply-add (nvcc contracts a * b + c by default), for kernels
 * whose results equal their CPU op's bit for bit: the CPU build is ISO C,
 * which does not contract. Under the simulator the host compiler does not
 * contract either (no FMA in the baseline x86-64 target). */
#ifdef CUDASIM
__device__ __forceinline__ float fmul_rn(float a, float b) { return a * b; }
__device__ __forceinline__ float fadd_rn(float a, float b) { return a + b; }
__device__ __forceinline__ float fsub_rn(float a, float b) { return a - b; }
__device__ __forceinline__ float fdiv_rn(float a, float b) { return a / b; }
__device__ __forceinline__ float fsqrt_rn(float a) { return sqrtf(a); }
#else
__device__ __forceinline__ float fmul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float fadd_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float fsub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float fdiv_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float fsqrt_rn(float a) { return __fsqrt_rn(a); }
#endif

/* Loads and stores in fp32 whatever the storage type. */
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x)
{
    return __float2bfloat16(x);
}

/* Butterfly reductions: every lane ends with the warp's result. */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide reductions for blockDim.x a multiple of 32 (at most 1024):
 * every thread gets the result. `s` is 32 floats of shared memory that the
 * block may not touch again before its next barrier: give each successive
 * reduction its own array. Every thread combines the warps' partials in the
 * same order, so all see identical bits. */
__device__ __forceinline__ float block_sum(float v, float *s)
{
    int warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_sum(v);
    if (threadIdx.x % 32 == 0) s[warp] = v;
    __syncthreads();
    float r = s[0];
    for (int w = 1; w < nwarps; w++) r += s[w];
    return r;
}
__device__ __forceinline__ float block_max(float v, float *s)
{
    int warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_max(v);
    if (threadIdx.x % 32 == 0) s[warp] = v;
    __syncthreads();
    float r = s[0];
    for (int w = 1; w < nwarps; w++) r = fmaxf(r, s[w]);
    return r;
}

#endif /* device code */
#endif
