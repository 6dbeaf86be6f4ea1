/* cudasim: runs CUDA kernel source on the CPU, so every kernel is tested
 * without a GPU. The same .cu file is compiled by the host C++ compiler
 * (g++ -std=c++17 -x c++ -DCUDASIM -include cudasim.h): this header must come
 * first, before any CUDA header, or the qualifier macros below vanish.
 *
 * Model: blocks run one after another; the threads of a block are
 * cooperative fibers (hand-written x86-64 stack switching, cudasim.cpp) that
 * switch only at __syncthreads, __syncwarp and the warp operations. Warps run
 * greedily: one warp goes as far as it can before the next one starts, and
 * the order of warps and of lanes is forward or reversed (cudasim_set_order),
 * so a missing barrier makes the two orders disagree.
 *
 * Flagged as errors (message on stderr and from cudasim_last_error(); the
 * launch is abandoned and cudaGetLastError() returns cudaErrorLaunchFailure):
 * a __syncthreads reached by only some threads (others exited or wait at a
 * different __syncthreads), warp operations whose mask names a lane that
 * never arrives or disagrees, shuffles reading a lane outside the mask,
 * writes past either end of a cudaMalloc block or of dynamic shared memory
 * (guard bytes checked after each block and launch). Under AddressSanitizer
 * every cudaMalloc block and the dynamic shared memory are exact-size heap
 * blocks and static __shared__ arrays are instrumented globals (compile
 * with -fsanitize-sections=cudasim_shared, as the Makefile does), so reads
 * and writes out of bounds are caught as they happen, static shared ones
 * included; without it, overflows of static __shared__ arrays are not. Fresh device memory and shared memory
 * (static and dynamic, at every block) are filled with 0xFF bytes (NaN), so
 * reading what nobody wrote shows.
 *
 * What it cannot catch (do not over-trust it): races between blocks and any
 * memory-ordering question (blocks run sequentially, to completion); timing,
 * performance, register pressure, occupancy, launch-bound limits; spin-waits
 * on other threads or blocks (they hang: no preemption); tensor-core, async
 * copy (cp.async, TMA), cooperative-group and other intrinsics it does not
 * define (they fail to compile); fast-math differences of the device math
 * library (host libm is used); out-of-bounds reads without ASan; races
 * within a warp between two warp operations that both orders happen to hide.
 * Streams are ignored (everything is synchronous). */
#ifndef GENRE_CUDASIM_H
#define GENRE_CUDASIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The runtime subset the kernels' launchers and the tests use. */
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorLaunchFailure = 719 };
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
               cudaMemcpyDeviceToDevice, cudaMemcpyDefault } cudaMemcpyKind;
typedef struct cudasim_stream *cudaStream_t;

cudaError_t cudaMalloc(void **ptr, size_t size);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMallocAsync(void **ptr, size_t size, cudaStream_t stream);
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemset(void *dst, int value, size_t n);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t err);

/* Test controls: thread order (0 forward, 1 reverse) for later launches;
 * the message of the last flagged error, or NULL; forget it. */
void cudasim_set_order(int reverse);
const char *cudasim_last_error(void);
void cudasim_clear_error(void);
/* Fiber switches since the process started (for the speed check). */
unsigned long long cudasim_switches(void);

#ifdef __cplusplus
}

#include <math.h>
#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* Static __shared__ arrays are function statics (blocks run one at a time)
 * gathered in one section so every block starts with them poisoned. */
#define __shared__ static __attribute__((section("cudasim_shared"), aligned(16)))
/* Dynamic shared memory: `extern __shared__` cannot become a function
 * static, so kernels declare it with DYNAMIC_SHARED (kernels/cuda_common.h). */
#define CUDASIM_DYNAMIC_SHARED(type, name) type *name = (type *)cudasim::dynamic_shared()

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cudasim {

enum Op { OP_SHFL, OP_SHFL_XOR, OP_SHFL_DOWN, OP_SHFL_UP, OP_BALLOT, OP_ANY, OP_ALL, OP_SYNCWARP };

extern const uint3 *current_idx;     /* threadIdx of the running fiber */
extern uint3 block_idx;
extern dim3 block_dim, grid_dim;
void syncthreads(const char *file, int line);
uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width);
void *dynamic_shared();

typedef void (*Body)(void *);
void launch(const char *name, dim3 grid, dim3 block, size_t smem, Body body, void *ctx);

template <class F> void call_body(void *f) { (*static_cast<F *>(f))(); }

template <class T> uint64_t to_bits(T v)
{
    static_assert(sizeof(T) <= 8, "warp operations move at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    return b;
}
template <class T> T from_bits(uint64_t b)
{
    T v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}

} /* namespace cudasim */

#define threadIdx (*cudasim::current_idx)
#define blockIdx (cudasim::block_idx)
#define blockDim (cudasim::block_dim)
#define gridDim (cudasim::grid_dim)
#define warpSize 32

#define __syncthreads() cudasim::syncthreads(__FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) { cudasim::warp_op(cudasim::OP_SYNCWARP, mask, 0, 0, 32); }

template <class T> T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{ return cudasim::from_bits<T>(cudasim::warp_op(cudasim::OP_SHFL, mask, cudasim::to_bits(v), src, width)); }
template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{ return cudasim::from_bits<T>(cudasim::warp_op(cudasim::OP_SHFL_XOR, mask, cudasim::to_bits(v), lane_mask, width)); }
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{ return cudasim::from_bits<T>(cudasim::warp_op(cudasim::OP_SHFL_DOWN, mask, cudasim::to_bits(v), (int)delta, width)); }
template <class T> T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{ return cudasim::from_bits<T>(cudasim::warp_op(cudasim::OP_SHFL_UP, mask, cudasim::to_bits(v), (int)delta, width)); }
inline unsigned __ballot_sync(unsigned mask, int pred)
{ return (unsigned)cudasim::warp_op(cudasim::OP_BALLOT, mask, pred != 0, 0, 32); }
inline int __any_sync(unsigned mask, int pred)
{ return (int)cudasim::warp_op(cudasim::OP_ANY, mask, pred != 0, 0, 32); }
inline int __all_sync(unsigned mask, int pred)
{ return (int)cudasim::warp_op(cudasim::OP_ALL, mask, pred != 0, 0, 32); }

/* Atomics: fibers never switch inside one, so a plain update is atomic. */
template <class T> T atomicAdd(T *addr, T v) { T old = *addr; *addr = old + v; return old; }
template <class T> T atomicMax(T *addr, T v) { T old = *addr; if (v > old) *addr = v; return old; }

/* Device math: the host libm (results may differ from CUDA's in the last ulp). */
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
template <class T> T __ldg(const T *p) { return *p; }

/* bfloat16 with CUDA's conversions: round to nearest even, NaN -> 0x7fff. */
struct __nv_bfloat16 { unsigned short __x; };
inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) b.__x = 0x7fff;
    else b.__x = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return b;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b)
{
    uint32_t u = (uint32_t)b.__x << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

/* The launch: one body per thread, the kernel called with its arguments. */
template <class... P, class... A>
void cudasim_launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
                    cudaStream_t stream, A &&...args)
{
    (void)stream;
    auto body = [&]() { kernel(args...); };
    cudasim::launch(name, grid, block, smem, cudasim::call_body<decltype(body)>, &body);
}

#endif /* __cplusplus */
#endif
