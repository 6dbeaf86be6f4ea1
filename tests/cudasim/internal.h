/* What the parts of libcudasim share: the error state, the device memory
 * (runtime.cpp), the stream queue (runtime.cpp) and the kernel scheduler
 * (cudasim.cpp). Single-threaded by design. */
#ifndef GENRE_CUDASIM_INTERNAL_H
#define GENRE_CUDASIM_INTERNAL_H

#include "cudasim.h"

#include <cstdarg>
#include <functional>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDASIM_ASAN 1
#else
#define CUDASIM_ASAN 0
#endif

namespace cudasim {

/* ---- errors ---------------------------------------------------------------- */

/* A fault of device work: sticky (every later call returns err until
 * cudasim_clear_error), message on stderr and in cudasim_last_error(). */
void fault(cudaError_t err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vfault(cudaError_t err, const char *fmt, va_list ap);
/* An argument error: recorded as the last error (cudaGetLastError) with its
 * message, returned. */
cudaError_t api_error(cudaError_t err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The sticky error, or cudaSuccess. */
cudaError_t sticky_error();

/* Checks disabled by CUDASIM_DISABLE (a comma list: protect, async,
 * stream-order, block-order, thread-order, pointer-args, guards), which
 * exists only to show that each self-test depends on its check
 * (test_cudasim.c, each_self_test_fails_without_its_check). */
bool disabled(const char *check);

/* ---- device memory ------------------------------------------------------- */

/* While one exists, the device mapping is readable and writable (device
 * work runs); otherwise PROT_NONE. Nests. */
struct DeviceAccess {
    DeviceAccess();
    ~DeviceAccess();
    DeviceAccess(const DeviceAccess &) = delete;
    DeviceAccess &operator=(const DeviceAccess &) = delete;
};

/* The live device allocation holding [p, p + n) (n may be 0: p may then be
 * its end), or false; *base and *size describe it. */
bool device_block(const void *p, size_t n, const unsigned char **base, size_t *size);
/* Whether [p, p + n) lies in cudaMallocHost/cudaHostAlloc memory. */
bool pinned_block(const void *p, size_t n);
/* Describes where p falls (for messages): "byte 4 of the 400-byte cudaMalloc
 * block at 0x...", "no live device allocation". */
void describe(const void *p, char *out, size_t cap);
/* Flags overwritten guard bytes of any device block (after a launch). */
void check_guards(const char *after);
/* The device mapping (reserved on first use). */
void arena_range(const unsigned char **base, size_t *size);

/* ---- streams ------------------------------------------------------------- */

/* Queues work on stream (0, cudaStreamLegacy, cudaStreamPerThread or a
 * created stream) in CUDA's order; it runs with device memory open when
 * something waits for it, unless a sticky error is pending. Returns the
 * stream's error (cudaErrorInvalidResourceHandle for a bad stream). */
cudaError_t enqueue(cudaStream_t stream, const char *what, std::function<void()> run);
/* Whether stream names a usable stream. */
bool valid_stream(cudaStream_t stream);

/* ---- kernels --------------------------------------------------------------- */

void run_launch(const char *name, dim3 grid, dim3 block, size_t smem, Body body, void *ctx);
extern bool reverse_order;
/* The kernel running now (for crash messages), or NULL. */
const char *running_kernel();
/* Whether addr falls in a fiber stack's guard page. */
bool in_stack_guard(const void *addr);

/* ---- counting (count.cpp; cudasim_count_begin) ----------------------------- */

/* Records one piece of device work other than a kernel while counting. */
void count_work(const char *name, CudasimWorkKind kind, double flops, double bytes_read, double bytes_written);
/* Around a graph launch's nodes: a record of it, and theirs marked in_graph. */
void count_graph_begin();
void count_graph_end();
/* Around a launch: its kernels' accesses (count_access) are its bytes. */
void count_launch_begin();
void count_launch_end(const char *name);
/* One load or store of n bytes at p by a counted kernel. */
void count_access(const void *p, size_t n, bool write);
/* Whether count_access.cpp is linked, so that kernels' bytes are counted. */
extern bool kernel_bytes_counted;

} /* namespace cudasim */

#endif
