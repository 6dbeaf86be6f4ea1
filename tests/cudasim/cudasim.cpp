/* cudasim runtime: the fiber scheduler, barriers, warp operations, and the
 * checked device memory behind cudasim.h. Single-threaded by design. */
#include "cudasim.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#ifndef __x86_64__
#error "cudasim switches stacks with x86-64 assembly"
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDASIM_ASAN 1
#else
#define CUDASIM_ASAN 0
#endif

/* void cudasim_switch(void **save_sp, void *next_sp): pushes the callee-saved
 * registers, saves the stack pointer, adopts the other one, pops, returns
 * into the other fiber. Nothing else is needed: everything caller-saved is
 * already spilled because this is an ordinary call. */
asm(R"(
    .text
    .globl cudasim_switch
    .type cudasim_switch, @function
cudasim_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudasim_switch, .-cudasim_switch
)");
extern "C" void cudasim_switch(void **save_sp, void *next_sp);

extern "C" char __start_cudasim_shared[] __attribute__((weak));
extern "C" char __stop_cudasim_shared[] __attribute__((weak));

namespace cudasim {

enum State { RUNNABLE, AT_SYNC, AT_WARP, DONE };

struct Thread {
    void *sp;
    char *stack;
    uint3 idx;
    int lane;
    State state;
    const char *sync_file;
    int sync_line;
    Op op;
    unsigned mask;
    uint64_t value, result;
    int arg, width;
#if CUDASIM_ASAN
    void *fake_stack;
#endif
};

static Thread *current;
const uint3 *current_idx;
uint3 block_idx;
dim3 block_dim, grid_dim;

static const size_t STACK_SIZE = 256 << 10;
static const size_t GUARD = 64;                 /* canary bytes around each block */
static const unsigned char CANARY = 0xa5;
static std::vector<Thread> threads;             /* this block's threads */
static std::vector<char *> stacks;              /* reused across launches */
static void *scheduler_sp;
static Body body_fn;
static void *body_ctx;
static int reverse_order;
static bool failed;                             /* the running launch is abandoned */
static char error_msg[1024];
static bool error_pending;
static unsigned long long n_switches;
static unsigned char *dyn_shared;
static size_t dyn_size;
static const char *kernel_name;
static bool in_block;                           /* errors name the block */
#if CUDASIM_ASAN
static const void *sched_stack_bottom;
static size_t sched_stack_size;
#endif

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (failed) return;
    failed = true;
    error_pending = true;
    int n = in_block ? snprintf(error_msg, sizeof error_msg, "cudasim: %s block (%u,%u,%u): ",
                                kernel_name, block_idx.x, block_idx.y, block_idx.z)
                     : snprintf(error_msg, sizeof error_msg, "cudasim: %s: ", kernel_name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_msg + n, sizeof error_msg - n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", error_msg);
}

/* ---- fibers ------------------------------------------------------------ */

static void to_scheduler(bool exiting)
{
    Thread *t = current;
    n_switches++;
#if CUDASIM_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &t->fake_stack, sched_stack_bottom,
                                   sched_stack_size);
#else
    (void)exiting;
#endif
    cudasim_switch(&t->sp, scheduler_sp);
#if CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(t->fake_stack, nullptr, nullptr);
#endif
}

static void fiber_main()
{
#if CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom, &sched_stack_size);
#endif
    body_fn(body_ctx);
    current->state = DONE;
    to_scheduler(true);
    abort(); /* a finished fiber is never resumed */
}

static void resume(Thread *t)
{
    current = t;
    current_idx = &t->idx;
#if CUDASIM_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, t->stack, STACK_SIZE);
    cudasim_switch(&scheduler_sp, t->sp);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    cudasim_switch(&scheduler_sp, t->sp);
#endif
    current = nullptr;
}

/* A fresh stack whose first switch "returns" into fiber_main with the
 * alignment of a normal call (rsp = 8 mod 16 at entry). */
static void start_fiber(Thread *t)
{
    uint64_t *sp = (uint64_t *)(t->stack + STACK_SIZE);
    *--sp = 0;                          /* fiber_main's return address: never used */
    *--sp = (uint64_t)(uintptr_t)&fiber_main;
    for (int i = 0; i < 6; i++) *--sp = 0;  /* rbp rbx r12 r13 r14 r15 */
    t->sp = sp;
    t->state = RUNNABLE;
}

static char *new_stack()
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(nullptr, STACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { perror("cudasim: mmap"); exit(1); }
    mprotect(p, page, PROT_NONE); /* overflow faults instead of corrupting */
    return (char *)p;
}

/* ---- barriers and warp operations ------------------------------------- */

void syncthreads(const char *file, int line)
{
    current->state = AT_SYNC;
    current->sync_file = file;
    current->sync_line = line;
    to_scheduler(false);
}

uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width)
{
    Thread *t = current;
    if (!(mask >> t->lane & 1u)) {
        fail("thread (%u,%u,%u) calls a warp operation whose mask 0x%08x leaves out its own lane %d",
             t->idx.x, t->idx.y, t->idx.z, mask, t->lane);
        to_scheduler(false);
    }
    t->state = AT_WARP;
    t->op = op;
    t->mask = mask;
    t->value = value;
    t->arg = arg;
    t->width = width;
    to_scheduler(false);
    return t->result;
}

void *dynamic_shared() { return dyn_shared; }

static const char *op_name(Op op)
{
    static const char *names[] = {"__shfl_sync", "__shfl_xor_sync", "__shfl_down_sync", "__shfl_up_sync",
                                  "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp"};
    return names[op];
}

/* Releases every group of lanes of warp w whose warp operation can complete:
 * all lanes of the mask (that exist) wait at the same operation with the
 * same mask. Returns whether any lane was released. */
static bool release_warp(int w)
{
    int nthreads = (int)threads.size(), base = w * 32;
    int nlanes = nthreads - base < 32 ? nthreads - base : 32;
    unsigned exist = nlanes == 32 ? 0xffffffffu : (1u << nlanes) - 1;
    bool released = false;
    for (int l = 0; l < nlanes; l++) {
        Thread *t = &threads[base + l];
        if (t->state != AT_WARP) continue;
        unsigned group = t->mask & exist;
        bool ready = true;
        for (int k = 0; k < nlanes && ready; k++) {
            if (!(group >> k & 1u)) continue;
            Thread *o = &threads[base + k];
            ready = o->state == AT_WARP && (o->mask & exist) == group && o->op == t->op;
        }
        if (!ready) continue;
        uint64_t ballot = 0;
        for (int k = 0; k < nlanes; k++)
            if (group >> k & 1u) ballot |= (uint64_t)(threads[base + k].value != 0) << k;
        for (int k = 0; k < nlanes; k++) {
            if (!(group >> k & 1u)) continue;
            Thread *o = &threads[base + k];
            int width = o->width, seg = k & ~(width - 1), src = k;
            switch (o->op) {
            case OP_SHFL: src = seg + (o->arg & (width - 1)); break;
            case OP_SHFL_XOR: src = k ^ o->arg; if (src < seg || src >= seg + width) src = k; break;
            case OP_SHFL_DOWN: src = k + o->arg; if (src >= seg + width) src = k; break;
            case OP_SHFL_UP: src = k - o->arg; if (src < seg) src = k; break;
            default: break;
            }
            switch (o->op) {
            case OP_SHFL: case OP_SHFL_XOR: case OP_SHFL_DOWN: case OP_SHFL_UP:
                if (src < 0 || src >= 32 || !(group >> src & 1u)) {
                    fail("lane %d of warp %d: %s reads lane %d, outside the mask 0x%08x", k, w,
                         op_name(o->op), src, o->mask);
                    return false;
                }
                o->result = threads[base + src].value;
                break;
            case OP_BALLOT: o->result = ballot; break;
            case OP_ANY: o->result = ballot != 0; break;
            case OP_ALL: o->result = ballot == (uint64_t)group; break;
            case OP_SYNCWARP: o->result = 0; break;
            }
        }
        for (int k = 0; k < nlanes; k++)
            if (group >> k & 1u) threads[base + k].state = RUNNABLE;
        released = true;
    }
    return released;
}

/* Runs warp w as far as it goes: lanes in order until all wait at a block
 * barrier, have exited, or wait at a warp operation that cannot complete. */
static void run_warp(int w)
{
    int nthreads = (int)threads.size(), base = w * 32;
    int nlanes = nthreads - base < 32 ? nthreads - base : 32;
    for (;;) {
        bool ran = false;
        for (int i = 0; i < nlanes && !failed; i++) {
            Thread *t = &threads[base + (reverse_order ? nlanes - 1 - i : i)];
            if (t->state != RUNNABLE) continue;
            resume(t);
            ran = true;
        }
        if (failed) return;
        if (!release_warp(w) && !ran) return;
    }
}

/* Every live thread is blocked: release a consistent __syncthreads, or say
 * why it cannot be. Returns false when the block is finished or failed. */
static bool release_block()
{
    int live = 0, at_sync = 0;
    const Thread *first = nullptr;
    for (const Thread &t : threads) {
        if (t.state == DONE) continue;
        live++;
        if (t.state == AT_WARP) {
            const Thread &o = t;
            fail("thread (%u,%u,%u) waits forever in %s with mask 0x%08x (a lane of the mask "
                 "exited, waits at a barrier, or uses another mask or operation)",
                 o.idx.x, o.idx.y, o.idx.z, op_name(o.op), o.mask);
            return false;
        }
        if (!first) first = &t;
        at_sync++;
        if (t.sync_line != first->sync_line || strcmp(t.sync_file, first->sync_file) != 0) {
            fail("divergent barrier: thread (%u,%u,%u) waits at __syncthreads %s:%d while thread "
                 "(%u,%u,%u) waits at %s:%d", first->idx.x, first->idx.y, first->idx.z,
                 first->sync_file, first->sync_line, t.idx.x, t.idx.y, t.idx.z, t.sync_file,
                 t.sync_line);
            return false;
        }
    }
    if (live == 0) return false;
    if (live != (int)threads.size()) {
        fail("divergent barrier: __syncthreads at %s:%d reached by %d of %zu threads (the others "
             "exited)", first->sync_file, first->sync_line, at_sync, threads.size());
        return false;
    }
    for (Thread &t : threads) t.state = RUNNABLE;
    return true;
}

/* ---- checked memory ------------------------------------------------------ */

struct Alloc { unsigned char *base; size_t size; };
static std::vector<Alloc> allocs;

static unsigned char *checked_alloc(size_t size)
{
#if CUDASIM_ASAN
    unsigned char *p = (unsigned char *)malloc(size ? size : 1);
    if (!p) return nullptr;
    memset(p, 0xff, size);
    return p;
#else
    unsigned char *p = (unsigned char *)malloc(size + 2 * GUARD);
    if (!p) return nullptr;
    memset(p, CANARY, GUARD);
    memset(p + GUARD, 0xff, size);
    memset(p + GUARD + size, CANARY, GUARD);
    return p + GUARD;
#endif
}

static void checked_free(unsigned char *p)
{
    if (p) free(CUDASIM_ASAN ? p : p - GUARD);
}

/* Whether the guard bytes around [p, p + size) are intact; flags the
 * overflow once and restores them. */
static bool guards_intact(unsigned char *p, size_t size, const char *what)
{
    if (CUDASIM_ASAN || !p) return true;
    bool before = false, after = false;
    for (size_t i = 0; i < GUARD; i++) {
        before |= p[-1 - (ptrdiff_t)i] != CANARY;
        after |= p[size + i] != CANARY;
    }
    if (!before && !after) return true;
    fail("write out of bounds %s the %zu-byte %s", before ? "before the start of" : "past the end of",
         size, what);
    memset(p - GUARD, CANARY, GUARD);
    memset(p + size, CANARY, GUARD);
    return false;
}

static void check_device_memory()
{
    in_block = false;
    for (const Alloc &a : allocs)
        if (!guards_intact(a.base, a.size, "cudaMalloc block")) return;
}

/* Byte by byte through volatile: no memset call for ASan to intercept, and
 * the redzones between the instrumented arrays are written without a report. */
__attribute__((no_sanitize_address)) static void poison_static_shared()
{
    for (volatile char *p = __start_cudasim_shared; p < __stop_cudasim_shared; p++) *p = (char)0xff;
}

/* ---- launch -------------------------------------------------------------- */

void launch(const char *name, dim3 grid, dim3 block, size_t smem, Body body, void *ctx)
{
    kernel_name = name;
    failed = false;
    size_t nthreads = (size_t)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
        in_block = false;
        fail("invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u)", grid.x, grid.y,
             grid.z, block.x, block.y, block.z);
        return;
    }
    while (stacks.size() < nthreads) stacks.push_back(new_stack());
    threads.assign(nthreads, Thread());
    for (size_t i = 0; i < nthreads; i++) {
        Thread &t = threads[i];
        t.stack = stacks[i];
        t.idx = uint3{(unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                      (unsigned)(i / ((size_t)block.x * block.y))};
        t.lane = (int)(i % 32);
    }
    block_dim = block;
    grid_dim = grid;
    body_fn = body;
    body_ctx = ctx;
    dyn_size = smem;
    dyn_shared = smem ? checked_alloc(smem) : nullptr;
    int nwarps = (int)((nthreads + 31) / 32);
    size_t nblocks = (size_t)grid.x * grid.y * grid.z;
    for (size_t b = 0; b < nblocks && !failed; b++) {
        size_t lin = reverse_order ? nblocks - 1 - b : b;
        block_idx = uint3{(unsigned)(lin % grid.x), (unsigned)(lin / grid.x % grid.y),
                          (unsigned)(lin / ((size_t)grid.x * grid.y))};
        in_block = true;
        poison_static_shared();
        if (dyn_shared) memset(dyn_shared, 0xff, smem);
        for (Thread &t : threads) start_fiber(&t);
        do {
            for (int i = 0; i < nwarps && !failed; i++) run_warp(reverse_order ? nwarps - 1 - i : i);
        } while (!failed && release_block());
        if (!failed) guards_intact(dyn_shared, dyn_size, "dynamic shared memory");
    }
    if (!failed) check_device_memory();
    checked_free(dyn_shared);
    dyn_shared = nullptr;
#if CUDASIM_ASAN
    /* Abandoned fibers never returned: their frames' redzones stay poisoned. */
    if (failed)
        for (size_t i = 0; i < nthreads; i++)
            ASAN_UNPOISON_MEMORY_REGION(stacks[i] + sysconf(_SC_PAGESIZE),
                                        STACK_SIZE - sysconf(_SC_PAGESIZE));
#endif
}

} /* namespace cudasim */

/* ---- the C API ------------------------------------------------------------ */

using namespace cudasim;

static cudaError_t last_error;

cudaError_t cudaMalloc(void **ptr, size_t size)
{
    unsigned char *p = checked_alloc(size);
    if (!p) return last_error = cudaErrorMemoryAllocation;
    allocs.push_back(Alloc{p, size});
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    for (size_t i = 0; i < allocs.size(); i++) {
        if (allocs[i].base != ptr) continue;
        kernel_name = "cudaFree";
        in_block = false;
        failed = false;
        if (!guards_intact(allocs[i].base, allocs[i].size, "cudaMalloc block"))
            last_error = cudaErrorLaunchFailure;
        checked_free(allocs[i].base);
        allocs.erase(allocs.begin() + (ptrdiff_t)i);
        return cudaSuccess;
    }
    return ptr ? cudaErrorLaunchFailure : cudaSuccess;
}

cudaError_t cudaMallocAsync(void **ptr, size_t size, cudaStream_t) { return cudaMalloc(ptr, size); }
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t) { return cudaFree(ptr); }

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind)
{
    memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t n)
{
    memset(dst, value, n);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaGetLastError(); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaGetLastError(); }

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    if (error_pending) e = cudaErrorLaunchFailure;
    last_error = cudaSuccess;
    error_pending = false;
    return e;
}

const char *cudaGetErrorString(cudaError_t err)
{
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return error_msg[0] ? error_msg : "unspecified launch failure";
    }
}

void cudasim_set_order(int reverse) { reverse_order = reverse != 0; }
const char *cudasim_last_error(void) { return error_msg[0] ? error_msg : nullptr; }
void cudasim_clear_error(void)
{
    error_msg[0] = 0;
    error_pending = false;
    last_error = cudaSuccess;
}
unsigned long long cudasim_switches(void) { return n_switches; }
