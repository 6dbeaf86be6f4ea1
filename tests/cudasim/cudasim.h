/* cudasim: runs CUDA source on the CPU, so kernels, host code and cuBLAS
 * calls are tested without a GPU, and code that passes works on the first
 * real one. The same sources are compiled by the host compilers: .cu files
 * with g++ -x c++ -include tests/cudasim/cudasim.h (as nvcc includes
 * cuda_runtime.h implicitly), .c files with gcc, both with
 * -Itests/cudasim/include ahead of the CUDA toolkit's include directory
 * (the Makefile's SIM_CXXFLAGS / SIM_CFLAGS), and linked with
 * build/sim/libcudasim.a instead of cudart, cuBLAS and cuBLASLt.
 *
 * Headers. <cuda_runtime.h>, <cuda_bf16.h>, <cublas_v2.h> and <cublasLt.h>
 * in tests/cudasim/include are NVIDIA's own (#include_next), so types,
 * signatures and enum values are NVIDIA's; this header adds what NVIDIA's
 * leave to nvcc: the built-in variables, __syncthreads, warp operations,
 * atomics, device math, __shared__ storage and the launch. Two things of
 * CUDA C++ g++ cannot parse, so kernels spell them through
 * kernels/cuda_common.h: the launch (LAUNCH(kernel, grid, block, smem,
 * stream, args...) instead of <<<...>>>) and dynamic shared memory
 * (DYNAMIC_SHARED(type, name) instead of extern __shared__), 128-byte
 * aligned as the tensor-core loads need. The warp matrix functions
 * (nvcuda::wmma, m16n16k16 bf16 with fp32 accumulators) come from
 * include/mma.h, which enforces their documented contract (warp-collective
 * calls, 256-bit aligned pointers, ldm multiples of 16 bytes) and scrambles
 * the fragment element mapping, which NVIDIA leaves unspecified.
 *
 * Kernels. Blocks run one after another, each to completion; the threads of
 * a block are cooperative fibers (hand-written x86-64 stack switching,
 * cudasim.cpp) that switch only at __syncthreads, __syncwarp and the warp
 * operations. Warps run greedily: one goes as far as it can before the next
 * starts. cudasim_set_order(1) reverses the order of lanes, of warps and of
 * the blocks of a grid (and of independent stream work, below), so a missing
 * barrier or a race between blocks makes the two orders disagree.
 * CUDASIM_ORDER=reverse sets the reverse order for a whole program.
 *
 * Device memory lives in one mapping of its own, PROT_NONE except while a
 * kernel, a copy, a memset or a cuBLAS call runs: host code that
 * dereferences a device pointer dies of SIGSEGV, as on a GPU, after a line
 * "cudasim: host code reads|writes device memory at ADDR (byte B of the
 * N-byte cudaMalloc block at P)". Fresh device memory, freed device memory
 * (without ASan; with it freed memory is poisoned) and shared memory at
 * every block are filled with 0xFF bytes (NaN), so reading what nobody
 * wrote shows. cudaMalloc blocks are 256-byte aligned; CUDASIM_MEMORY_GB
 * (default 16) sizes the device.
 *
 * Streams are real queues: kernel launches, cudaMemcpyAsync, cudaMemsetAsync,
 * cudaMemset, device-to-device cudaMemcpy, cudaMemcpy{To,From}Symbol{,Async},
 * cudaEventRecord, cudaStreamWaitEvent, cudaFreeAsync and cuBLAS/cuBLASLt
 * calls (on the handle's or the given stream) only run when
 * something waits for them: cudaStreamSynchronize, cudaDeviceSynchronize,
 * cudaEventSynchronize, a blocking cudaMemcpy to or from the host (which
 * waits for the legacy default stream first, as CUDA's does), cudaFree,
 * cudaFreeHost, or a query (cudaStreamQuery/cudaEventQuery answer
 * cudaErrorNotReady for work still queued, then run it). Ordering is CUDA's:
 * each stream in order; the legacy default stream waits for all blocking
 * streams and they for it (cudaStreamNonBlocking streams do not);
 * cudaStreamWaitEvent orders across streams; everything else is independent
 * and, under cudasim_set_order(1), runs latest first. The destination of an
 * asynchronous device-to-host copy reads as 0xFF bytes (NaN) until the copy
 * has run; an asynchronous host-to-device copy from pageable memory reads its
 * source when called, from cudaMallocHost/cudaHostAlloc memory when it runs.
 * cudaMallocAsync memory is usable at once; cudaFreeAsync frees it when its
 * stream gets there. Events time the simulator's own work (milliseconds of
 * host time between the two records).
 *
 * Errors. A fault found while device work runs is sticky, as on a GPU: the
 * waiting call and every later call return it (cudaErrorLaunchFailure,
 * cudaErrorIllegalAddress for addresses), cudaGetErrorString gives the
 * simulator's message, and only cudasim_clear_error() (a test control)
 * resets it. Argument errors (invalid launch configuration, a copy out of an
 * allocation's bounds or in the wrong direction, a bad stream or event) are
 * returned at once and by cudaGetLastError, not sticky. Every message also
 * goes to stderr and to cudasim_last_error().
 *
 * Flagged while device work runs: a __syncthreads reached by only some
 * threads (others exited or wait at a different __syncthreads), warp
 * operations whose mask names a lane that never arrives or disagrees,
 * shuffles reading a lane outside the mask, writes past either end of a
 * cudaMalloc block or of dynamic shared memory (guard bytes checked after
 * each block and launch), a pointer argument of a kernel that is neither
 * device memory nor cudaMallocHost memory (a host pointer, or freed), a cuBLAS
 * operand that is not device memory or runs past its allocation, a kernel
 * that overflows a thread's 256 KiB stack (named, then SIGSEGV).
 *
 * Under AddressSanitizer device memory is still the protected mapping, with
 * ASan's own poisoning around each block and over freed blocks, so
 * out-of-bounds reads and writes and use after free are caught as they
 * happen (the report, then exit 1); the dynamic shared memory is an
 * exact-size heap block and static __shared__ arrays are instrumented
 * globals (compile with -fsanitize-sections=cudasim_shared, as the Makefile
 * does). Without it, only writes out of bounds are caught (by the guard
 * bytes, after the fact), reads out of bounds and use after free read NaN
 * at best, and overflows of static __shared__ arrays are not caught.
 *
 * cuBLAS and cuBLASLt follow the documented column-major contract: op(A)
 * m x k, op(B) k x n, C m x n, leading dimensions of at least the stored
 * rows (columns for cuBLASLt's row order), strided batches, alpha and beta
 * (beta = 0 never reads C), fp32 or bf16 inputs with fp32 accumulation,
 * host or device pointer mode. CUBLAS_TF32_TENSOR_OP_MATH and
 * CUBLAS_COMPUTE_32F_FAST_TF32 round fp32 inputs to TF32 (10 mantissa bits;
 * nearest, ties away, as CUTLASS converts: cuBLAS does not document its
 * own, so rely on TF32 precision, not on its last bit), _FAST_16BF to bf16.
 * Sums run in k order in fp32, so results match the GPU's to rounding, not
 * bit for bit. Implemented: cublasCreate, Destroy, SetStream, GetStream,
 * SetMathMode, GetMathMode, SetPointerMode, GetPointerMode, SetWorkspace,
 * GetStatusString/Name, cublasSgemm, cublasSgemmStridedBatched,
 * cublasGemmEx, cublasGemmStridedBatchedEx; cublasLtCreate/Destroy (a
 * cuBLAS handle cast to cuBLASLt's works too), MatmulDesc
 * Create/Init/Destroy/Set/GetAttribute, MatrixLayout
 * Create/Init/Destroy/Set/GetAttribute (column or row order, batch count,
 * strided batch offset), MatmulPreference Create/Init/Destroy/Set/
 * GetAttribute, cublasLtMatmulAlgoGetHeuristic (one algorithm, no
 * workspace) and cublasLtMatmul (a NULL algorithm or that one) with the
 * epilogues DEFAULT, RELU, BIAS, RELU_BIAS, GELU and GELU_BIAS: D =
 * act(alpha op(A) op(B) + beta C + bias), the bias one value per row of D
 * (fp32, or bf16 with a bf16 D), with a batch stride; GELU is the tanh form,
 * as cuBLASLt's; and BGRADA and BGRADB (cublasLt.h): D = alpha op(A) op(B)
 * + beta C, and the bias gradient WRITTEN (not added) to the bias pointer,
 * with its batch stride: the sums over k of op(A)'s rows (BGRADA, one per
 * row of D) or of op(B)'s columns (BGRADB, one per column of D), each one
 * fp32 sum in k order of the operand's values as stored (neither alpha nor
 * TF32 rounding applied: NVIDIA documents neither way, so call it with
 * alpha = 1 and rely on TF32 precision only), of C's type (fp32 or bf16;
 * "the same type as the output elements (Ctype)"); BGRADB needs transb T
 * (NVIDIA's nvmath-python transposes B for it: "this epilog requires B to
 * be transposed"). Invalid arguments return the documented status when
 * called: CUBLAS_STATUS_NOT_INITIALIZED for a NULL or destroyed handle,
 * CUBLAS_STATUS_INVALID_VALUE for negative sizes, a leading dimension below
 * the stored rows, an unknown operation, mismatched layouts or batch
 * counts, a missing bias, an attribute of the wrong size,
 * CUBLAS_STATUS_NOT_SUPPORTED for a type, compute type, order or epilogue
 * outside the above (a bias gradient of another type than C's, BGRADB with
 * B not transposed). Operands are checked when the work runs.
 *
 * NCCL (<nccl.h>, nccl.cpp, built with MPI): each process is one simulated
 * GPU, the collectives are queued on their stream like other device work
 * and carried, when it runs, by MPI (under mpirun) or by shared memory named
 * after the unique id (processes started without MPI); buffers must be
 * device memory, every rank must have been given rank 0's unique id, and
 * ranks issuing different collectives, or missing, fault instead of hanging.
 * NCCL_DEBUG=INFO says on stderr each communicator made and each collective
 * called ("cudasim: NCCL INFO ..."), so a test can tell that NCCL ran.
 *
 * What it cannot catch (do not over-trust it): timing, performance, register
 * pressure, occupancy, launch-bound limits, bank conflicts; the size of
 * static __shared__ arrays (no limit is applied to them); misaligned accesses
 * (a float4 load from an address not 16-byte aligned faults on a GPU, not
 * here); broken __restrict__ promises; memory-ordering questions (blocks run
 * to completion one at a time, so __threadfence and volatile never matter,
 * and two blocks never run at once: a race between blocks shows only when the
 * two block orders disagree, and only where a test runs both); so a
 * last-block reduction (kernels/colsum.h) missing its __threadfence or its
 * volatile reads of other blocks' partials passes here; concurrency between
 * streams (work never overlaps: a kernel waiting for one on another stream,
 * or host code polling memory a kernel writes instead of synchronizing, waits
 * forever); spin-waits on other threads or blocks (they hang: no preemption);
 * tensor-core operations other than the wmma subset (mma.ptx, wgmma, other
 * shapes and types), async copy (cp.async, TMA), cooperative-group and other
 * intrinsics it does not define (they fail to compile); code relying on one
 * GPU's wmma fragment mapping is caught only where the scramble changes the
 * numbers a test checks; the tensor cores' own summation order and internal
 * precision (mma_sync sums in k order in fp32; results agree to rounding);
 * fast-math differences of the device math library (host libm is used);
 * kernels dereferencing host memory other than through their pointer
 * arguments (a pointer inside a struct, or one computed by the kernel);
 * __constant__ and __device__ variables (plain host globals here, which host
 * code may touch); races within a warp between two warp operations that both
 * orders happen to hide; a missing __syncwarp where another warp operation
 * stands between the accesses (every lane reaches a meeting, shuffle or wmma
 * call, having done all its accesses before it, so a meeting orders memory
 * here, which on a GPU only __syncwarp and the block barriers promise;
 * include/mma.h catches the __syncwarp directly before or after a wmma load
 * or store); reads out of bounds without ASan; host threads other than the
 * caller's touching device memory while a synchronizing call runs work (the
 * whole mapping is open then); the runtime is single-threaded, so CUDA calls
 * from several host threads are not supported; a use of cudaMallocAsync
 * memory on a stream not ordered after the allocation; NCCL's timing, its
 * overlap with compute and its behaviour over real links (the simulated
 * collectives are MPI's, one at a time, and several ranks never share one
 * GPU's memory); what a real graph saves (launch latency) and whether a
 * library call captures on a GPU as it does here (a real cuBLAS may allocate
 * workspace or pick another kernel inside a capture; the backend gives it its
 * own workspace).
 *
 * Graphs. Work issued to a capturing stream becomes the graph's nodes in
 * issue order (one stream, so a chain) instead of running; a launched
 * graph replays each node as captured, kernel arguments by value, so a
 * value the host meant to change per replay (a step count, a dropout key)
 * replays stale, exactly as on a GPU: pass such values through device
 * memory. CUDA's capture rules fail the call and invalidate the capture
 * (cudaStreamEndCapture then returns cudaErrorStreamCaptureInvalidated and
 * no graph): the legacy stream used while a blocking stream captures
 * (cudaErrorStreamCaptureImplicit); in Global and ThreadLocal mode
 * cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost, blocking cudaMemcpy,
 * and synchronizing or querying a stream, an event or the device
 * (cudaErrorStreamCaptureUnsupported).
 *
 * It is stricter than CUDA in four places: events recorded or waited on in
 * a capture (CUDA's fork and join across streams) and asynchronous copies
 * between a capturing stream and pageable host memory are refused
 * (cudaErrorStreamCaptureUnsupported); an asynchronous device-to-host
 * copy into pageable memory, which CUDA completes before returning, is
 * poisoned until a synchronization like any other, and copies must name
 * their direction truthfully (cudaMemcpyHostToDevice with a host
 * destination is an error; cudaMemcpyDefault infers it).
 *
 * The runtime API implemented (NVIDIA's declarations): cudaMalloc, cudaFree,
 * cudaMallocAsync, cudaFreeAsync, cudaMallocHost, cudaHostAlloc,
 * cudaFreeHost, cudaMemcpy, cudaMemcpyAsync, cudaMemset, cudaMemsetAsync,
 * cudaMemcpy{To,From}Symbol{,Async}, cudaMemGetInfo,
 * cudaPointerGetAttributes, cudaStreamCreate{,WithFlags,WithPriority},
 * cudaStreamDestroy, cudaStreamSynchronize, cudaStreamQuery,
 * cudaStreamWaitEvent, cudaStreamGetFlags, cudaEventCreate{,WithFlags},
 * cudaEventRecord, cudaEventQuery, cudaEventSynchronize,
 * cudaEventElapsedTime, cudaEventDestroy, cudaDeviceSynchronize,
 * cudaDeviceReset, cudaGetDeviceCount, cudaGetDeviceProperties (an H100's
 * limits, compute capability 9.0, named "cudasim"), cudaDeviceGetAttribute,
 * cudaSetDevice, cudaGetDevice (one device, 0), cudaFuncSetAttribute (the
 * dynamic shared memory limit, 48 KiB by default, is enforced at launch:
 * cudaErrorInvalidValue), cudaFuncGetAttributes, cudaFuncSetCacheConfig,
 * cudaGetLastError, cudaPeekAtLastError, cudaGetErrorString,
 * cudaGetErrorName, cudaRuntimeGetVersion, cudaDriverGetVersion, stream
 * capture and graphs (cudaStreamBeginCapture, cudaStreamEndCapture,
 * cudaStreamIsCapturing, cudaGraphInstantiate, cudaGraphLaunch,
 * cudaGraphExecDestroy, cudaGraphDestroy: below), and the
 * C++ templates NVIDIA declares only for nvcc (cudaFuncSetAttribute(kernel,
 * ...), cudaMemcpyToSymbol(var, ...) and the like). Not implemented (they
 * fail to link or to compile): cudaLaunchKernel and the other launch APIs
 * taking void ** arguments (no types to call the kernel with), graphs
 * built node by node (cudaGraphAdd*), updating an instantiated graph,
 * managed memory, memory pools, 2D/3D copies, textures, peer access, and
 * CUDA_API_PER_THREAD_DEFAULT_STREAM (it renames the API).
 *
 * CUDASIM_DISABLE=check[,check...] (protect, async, stream-order,
 * block-order, thread-order, pointer-args, guards) switches a check off; it
 * exists only for the self-test that shows each test needs its check.
 * CUDASIM_SKIP_BARRIER=FILE:LINE makes the plain __syncthreads() there
 * return at once, as if deleted (tests/cudasim/remove-barriers). */
#ifndef GENRE_CUDASIM_H
#define GENRE_CUDASIM_H

#include <stddef.h>

#include <cuda_runtime.h>
#ifndef CUDASIM_CUDA_RUNTIME_WRAPPER
#error "cudasim: put -Itests/cudasim/include ahead of the CUDA include directory (the Makefile's SIM_CFLAGS)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Test controls: the order of threads, warps, blocks and independent stream
 * work for later launches and synchronizations (0 forward, 1 reverse); the
 * message of the last flagged error, or NULL; forget it and any sticky
 * error. */
void cudasim_set_order(int reverse);
const char *cudasim_last_error(void);
void cudasim_clear_error(void);
/* Fiber switches since the process started (for the speed check). */
unsigned long long cudasim_switches(void);
/* Whether p points into a live device allocation. */
int cudasim_is_device_pointer(const void *p);

/* Counting (bench/step_plan): between cudasim_count_begin and
 * cudasim_count_end every piece of device work that runs is recorded, in the
 * order it runs: a kernel launch with the bytes of device memory it read and
 * wrote and its tensor-core FLOPs (wmma mma_sync), a cuBLAS(Lt) product with
 * its FLOPs (2mnk per matrix) and each operand's bytes once (a tiled GEMM's
 * best case; a bias read, a bias gradient written, its terms already read as
 * A or B), a memset or a copy with its bytes (a host copy with the device
 * side's). A kernel's bytes are counted only where it was compiled with the
 * Makefile's CUDASIM_COUNT_FLAGS and the program links count_access.o (then
 * cudasim_counts_kernel_bytes() is 1; otherwise kernels record 0 bytes):
 * every load and store then reaches the counter, which marks the 32-byte
 * sectors of device memory each launch touches, so a sector read many times
 * by one launch counts once: DRAM traffic with a perfect cache within a
 * launch and none across launches. The records (and their names) stay valid
 * until the next cudasim_count_begin. A graph launch is a record of its own
 * (CUDASIM_WORK_GRAPH, no bytes) followed by its nodes' records,
 * each marked in_graph: the host issued the graph, not them. */
typedef enum {
    CUDASIM_WORK_KERNEL,
    CUDASIM_WORK_GEMM,
    CUDASIM_WORK_MEMSET,
    CUDASIM_WORK_COPY_DEVICE, /* device to device */
    CUDASIM_WORK_COPY_HOST,   /* to or from host memory */
    CUDASIM_WORK_GRAPH        /* cudaGraphLaunch */
} CudasimWorkKind;
typedef struct {
    const char *name; /* the kernel; the cuBLAS call with m x n x k; the runtime call */
    CudasimWorkKind kind;
    double flops, bytes_read, bytes_written;
    int in_graph; /* replayed by a graph launch */
} CudasimWork;
void cudasim_count_begin(void);
const CudasimWork *cudasim_count_end(size_t *n);
int cudasim_counts_kernel_bytes(void);

#ifdef __cplusplus
}

#include <math.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include <cuda_bf16.h>

/* NVIDIA's host_defines.h makes __global__, __device__, __host__ and
 * __shared__ empty for a host compiler; static __shared__ arrays become
 * function statics (blocks run one at a time) gathered in one section, so
 * every block starts with them poisoned. */
#undef __shared__
#define __shared__ static __attribute__((section("cudasim_shared"), aligned(16)))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
/* Dynamic shared memory: `extern __shared__` cannot become a function
 * static, so kernels declare it with DYNAMIC_SHARED (kernels/cuda_common.h). */
#define CUDASIM_DYNAMIC_SHARED(type, name) type *name = (type *)cudasim::dynamic_shared()

namespace cudasim {

enum Op { OP_SHFL, OP_SHFL_XOR, OP_SHFL_DOWN, OP_SHFL_UP, OP_BALLOT, OP_ANY, OP_ALL, OP_SYNCWARP, OP_EXCHANGE };

extern const uint3 *current_idx;     /* threadIdx of the running fiber */
extern uint3 block_idx;
extern dim3 block_dim, grid_dim;
int syncthreads(const char *file, int line, int kind, int pred);
uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width);
void *dynamic_shared();
/* wmma (include/mma.h): all 32 lanes of the warp meet; each gives `bytes`
 * bytes at mine (the same size in every lane) and gets the warp's 32 blobs,
 * lane by lane, valid until the warp's next warp operation. */
const unsigned char *warp_exchange(const void *mine, size_t bytes);
/* Whether this launch runs its lanes and warps in reverse order: wmma moves
 * its memory accesses across the warp's meeting with it (include/mma.h). */
bool lanes_reversed();
/* A fault of the running thread found by header code (wmma's checks):
 * the launch fails with the message; never returns. */
[[noreturn]] void kernel_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Tensor-core FLOPs of the running launch (mma_sync), for the counter. */
void count_tensor_flops(double flops);

typedef void (*Body)(void *);
/* Queues a launch on stream; ptrs[0..nptrs) are the kernel's pointer
 * arguments (argument numbers in argno), checked when it runs. The runtime
 * owns ctx and calls destroy(ctx) once the launch has run or was refused. */
void enqueue_launch(const char *name, const void *func, dim3 grid, dim3 block, size_t smem,
                    cudaStream_t stream, Body body, void *ctx, void (*destroy)(void *),
                    const void *const *ptrs, const int *argno, int nptrs);

template <class T> uint64_t to_bits(T v)
{
    static_assert(sizeof(T) <= 8, "warp operations move at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, static_cast<const void *>(&v), sizeof v);
    return b;
}
template <class T> T from_bits(uint64_t b)
{
    T v;
    std::memcpy(static_cast<void *>(&v), &b, sizeof v);
    return v;
}

/* A kernel and its arguments, converted to the parameter types as a call
 * would and kept by value until the launch runs. */
template <class... P> struct Launch {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> args;
    static void run(void *p)
    {
        Launch *l = static_cast<Launch *>(p);
        std::apply(l->kernel, l->args);
    }
    static void destroy(void *p) { delete static_cast<Launch *>(p); }
    template <size_t... I>
    int pointers(const void **ptrs, int *argno, std::index_sequence<I...>) const
    {
        int n = 0;
        (note_pointer(std::get<I>(args), (int)I + 1, ptrs, argno, &n), ...);
        (void)ptrs, (void)argno;
        return n;
    }
    template <class T>
    static void note_pointer(const T &v, int i, const void **ptrs, int *argno, int *n)
    {
        if constexpr (std::is_pointer<T>::value) {
            ptrs[*n] = (const void *)v;
            argno[(*n)++] = i;
        } else {
            (void)v, (void)i, (void)ptrs, (void)argno, (void)n;
        }
    }
};

} /* namespace cudasim */

#define threadIdx (*cudasim::current_idx)
#define blockIdx (cudasim::block_idx)
#define blockDim (cudasim::block_dim)
#define gridDim (cudasim::grid_dim)
/* A constant, not a macro: cudaDeviceProp has a member of that name. */
static constexpr int warpSize = 32;

#define __syncthreads() ((void)cudasim::syncthreads(__FILE__, __LINE__, 0, 0))
#define __syncthreads_count(p) cudasim::syncthreads(__FILE__, __LINE__, 1, (p) != 0)
#define __syncthreads_and(p) cudasim::syncthreads(__FILE__, __LINE__, 2, (p) != 0)
#define __syncthreads_or(p) cudasim::syncthreads(__FILE__, __LINE__, 3, (p) != 0)
inline void __syncwarp(unsigned mask = 0xffffffffu) { cudasim::warp_op(cudasim::OP_SYNCWARP, mask, 0, 0, 32); }
/* Blocks run one at a time and threads switch only at barriers: every
 * write is visible to everyone before any other thread runs. */
inline void __threadfence() {}
inline void __threadfence_block() {}

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
inline unsigned __activemask() { return 0xffffffffu; }

/* Atomics: fibers never switch inside one, so a plain update is atomic. */
template <class T> T atomicAdd(T *addr, T v) { T old = *addr; *addr = old + v; return old; }
template <class T> T atomicSub(T *addr, T v) { T old = *addr; *addr = old - v; return old; }
template <class T> T atomicExch(T *addr, T v) { T old = *addr; *addr = v; return old; }
template <class T> T atomicMax(T *addr, T v) { T old = *addr; if (v > old) *addr = v; return old; }
template <class T> T atomicMin(T *addr, T v) { T old = *addr; if (v < old) *addr = v; return old; }
template <class T> T atomicCAS(T *addr, T compare, T v) { T old = *addr; if (old == compare) *addr = v; return old; }
template <class T> T atomicAnd(T *addr, T v) { T old = *addr; *addr = old & v; return old; }
template <class T> T atomicOr(T *addr, T v) { T old = *addr; *addr = old | v; return old; }
inline unsigned atomicInc(unsigned *addr, unsigned limit)
{ unsigned old = *addr; *addr = old >= limit ? 0 : old + 1; return old; }

/* Device math: the host libm (results may differ from CUDA's in the last ulp). */
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanhf(float x) { return std::tanh(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x != x ? 0.0f : x; }
inline float __int_as_float(int i) { return cudasim::from_bits<float>((uint32_t)i); }
inline int __float_as_int(float f) { return (int)(uint32_t)cudasim::to_bits(f); }
inline float __uint_as_float(unsigned u) { return cudasim::from_bits<float>(u); }
inline unsigned __float_as_uint(float f) { return (uint32_t)cudasim::to_bits(f); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x)
{
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= (x >> i & 1u) << (31 - i);
    return r;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
template <class T> T __ldg(const T *p) { return *p; }

/* The host templates NVIDIA's cuda_runtime.h declares only for nvcc
 * (#if defined(__CUDACC__)): kernels and symbols by type. A __constant__
 * or __device__ variable is a plain host variable here. */
template <class T> static inline cudaError_t cudaFuncSetAttribute(T *entry, enum cudaFuncAttribute attr, int value)
{ return ::cudaFuncSetAttribute((const void *)entry, attr, value); }
template <class T> static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, T *entry)
{ return ::cudaFuncGetAttributes(attr, (const void *)entry); }
template <class T> static inline cudaError_t cudaFuncSetCacheConfig(T *func, enum cudaFuncCache config)
{ return ::cudaFuncSetCacheConfig((const void *)func, config); }
template <class T>
static inline cudaError_t cudaMemcpyToSymbol(const T &symbol, const void *src, size_t count = sizeof(T),
                                             size_t offset = 0, enum cudaMemcpyKind kind = cudaMemcpyHostToDevice)
{ return ::cudaMemcpyToSymbol((const void *)&symbol, src, count, offset, kind); }
template <class T>
static inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t count = sizeof(T),
                                               size_t offset = 0, enum cudaMemcpyKind kind = cudaMemcpyDeviceToHost)
{ return ::cudaMemcpyFromSymbol(dst, (const void *)&symbol, count, offset, kind); }
template <class T>
static inline cudaError_t cudaMemcpyToSymbolAsync(const T &symbol, const void *src, size_t count = sizeof(T),
                                                  size_t offset = 0, enum cudaMemcpyKind kind = cudaMemcpyHostToDevice,
                                                  cudaStream_t stream = 0)
{ return ::cudaMemcpyToSymbolAsync((const void *)&symbol, src, count, offset, kind, stream); }
template <class T>
static inline cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const T &symbol, size_t count = sizeof(T),
                                                    size_t offset = 0, enum cudaMemcpyKind kind = cudaMemcpyDeviceToHost,
                                                    cudaStream_t stream = 0)
{ return ::cudaMemcpyFromSymbolAsync(dst, (const void *)&symbol, count, offset, kind, stream); }

/* The launch: the arguments are copied now, converted to the kernel's
 * parameter types; the kernel runs when its stream is waited for. */
template <class... P, class... A>
void cudasim_launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
                    cudaStream_t stream, A &&...args)
{
    static_assert(sizeof...(P) == sizeof...(A), "wrong number of kernel arguments");
    using L = cudasim::Launch<P...>;
    L *l = new L{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    const void *ptrs[sizeof...(P) + 1];
    int argno[sizeof...(P) + 1];
    int n = l->pointers(ptrs, argno, std::index_sequence_for<P...>());
    cudasim::enqueue_launch(name, (const void *)kernel, grid, block, smem, stream, &L::run, l,
                            &L::destroy, ptrs, argno, n);
}

#endif /* __cplusplus */
#endif
