/* cudasim's kernel scheduler: the fibers, barriers and warp operations
 * behind cudasim.h, and the launch itself (run when its stream is waited
 * for, runtime.cpp). Single-threaded by design. */
#include "internal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#ifndef __x86_64__
#error "cudasim switches stacks with x86-64 assembly"
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
    int sync_kind, sync_pred, sync_result;
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
static const size_t GUARD = 128;                /* canary bytes around dynamic shared memory */
static const size_t SMEM_ALIGN = 128;           /* DYNAMIC_SHARED's declared alignment (kernels/cuda_common.h) */
static const unsigned char CANARY = 0xa5;
static std::vector<Thread> threads;             /* this block's threads */
static std::vector<char *> stacks;              /* reused across launches */
static void *scheduler_sp;
static Body body_fn;
static void *body_ctx;
static bool thread_reverse;                     /* this launch's lanes and warps run backwards */
bool reverse_order;
static bool failed;                             /* the running launch is abandoned */
static unsigned long long n_switches;
static unsigned char *dyn_shared;
static size_t dyn_size;
static const char *kernel_name;
static bool in_block;                           /* errors name the block */
static bool running;                            /* a launch is running */
#if CUDASIM_ASAN
static const void *sched_stack_bottom;
static size_t sched_stack_size;
#endif

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (failed) return;
    failed = true;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in_block)
        fault(cudaErrorLaunchFailure, "cudasim: %s block (%u,%u,%u): %s", kernel_name, block_idx.x,
              block_idx.y, block_idx.z, msg);
    else
        fault(cudaErrorLaunchFailure, "cudasim: %s: %s", kernel_name, msg);
}

const char *running_kernel() { return running ? kernel_name : nullptr; }

bool in_stack_guard(const void *addr)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (char *s : stacks)
        if ((const char *)addr >= s && (const char *)addr < s + page) return true;
    return false;
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

/* CUDASIM_SKIP_BARRIER=FILE:LINE (tests/cudasim/remove-barriers): the
 * __syncthreads() at that place returns at once, as if it had been deleted
 * from the source; the first one skipped says so on stderr. Only plain
 * __syncthreads() (kind 0): the counting and voting forms return values. FILE is as the
 * compiler names it (kernels/x.cu or ./kernels/x.h), a leading "./" ignored. */
static const char *strip_dot(const char *f) { return strncmp(f, "./", 2) == 0 ? f + 2 : f; }

static bool barrier_skipped(const char *file, int line)
{
    static int skip_line = -2; /* -2: not read yet; -1: none */
    static char skip_file[512];
    static bool said;
    if (skip_line == -2) {
        const char *v = getenv("CUDASIM_SKIP_BARRIER"), *colon = v ? strrchr(v, ':') : nullptr;
        skip_line = -1;
        if (colon && (size_t)(colon - v) < sizeof skip_file) {
            snprintf(skip_file, sizeof skip_file, "%.*s", (int)(colon - v), v);
            skip_line = atoi(colon + 1);
        }
    }
    if (line != skip_line || strcmp(strip_dot(file), strip_dot(skip_file)) != 0) return false;
    if (!said) fprintf(stderr, "cudasim: skipping the __syncthreads() at %s:%d\n", strip_dot(file), line);
    said = true;
    return true;
}

int syncthreads(const char *file, int line, int kind, int pred)
{
    if (kind == 0 && barrier_skipped(file, line)) return 0;
    current->state = AT_SYNC;
    current->sync_file = file;
    current->sync_line = line;
    current->sync_kind = kind;
    current->sync_pred = pred;
    to_scheduler(false);
    return current->sync_result;
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

/* Each warp's table of its lanes' blobs, filled when an exchange releases;
 * read by every lane before any of them reaches the next warp operation
 * (a release needs all of them there), so one table per warp suffices. */
static std::vector<unsigned char> exchange_table[32];

const unsigned char *warp_exchange(const void *mine, size_t bytes)
{
    Thread *t = current;
    int w = (int)((t - threads.data()) / 32);
    if ((size_t)(w + 1) * 32 > threads.size()) {
        fail("thread (%u,%u,%u) calls a wmma operation in a warp of fewer than 32 threads", t->idx.x, t->idx.y,
             t->idx.z);
        to_scheduler(false);
    }
    warp_op(OP_EXCHANGE, 0xffffffffu, (uint64_t)(uintptr_t)mine, (int)bytes, 32);
    return exchange_table[w].data();
}

void kernel_fail(const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail("thread (%u,%u,%u): %s", current->idx.x, current->idx.y, current->idx.z, msg);
    to_scheduler(false);
    abort(); /* an abandoned launch never resumes its threads */
}

static const char *op_name(Op op)
{
    static const char *names[] = {"__shfl_sync", "__shfl_xor_sync", "__shfl_down_sync", "__shfl_up_sync",
                                  "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp",
                                  "a wmma operation"};
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
        if (t->op == OP_EXCHANGE) {
            for (int k = 0; k < nlanes; k++)
                if (threads[base + k].arg != t->arg) {
                    fail("lanes %d and %d of warp %d call different wmma operations", l, k, w);
                    return false;
                }
            size_t bytes = (size_t)t->arg;
            exchange_table[w].resize(32 * bytes);
            for (int k = 0; k < nlanes; k++)
                memcpy(exchange_table[w].data() + k * bytes, (const void *)(uintptr_t)threads[base + k].value,
                       bytes);
        }
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
            case OP_SYNCWARP: case OP_EXCHANGE: o->result = 0; break;
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
            Thread *t = &threads[base + (thread_reverse ? nlanes - 1 - i : i)];
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
        if (t.sync_line != first->sync_line || strcmp(t.sync_file, first->sync_file) != 0 ||
            t.sync_kind != first->sync_kind) {
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
    int count = 0;
    for (const Thread &t : threads) count += t.sync_pred;
    int n = (int)threads.size();
    int result = first->sync_kind == 1 ? count : first->sync_kind == 2 ? count == n : count > 0;
    for (Thread &t : threads) {
        t.state = RUNNABLE;
        t.sync_result = result;
    }
    return true;
}

/* ---- dynamic shared memory ----------------------------------------------- */

/* Under ASan an exact-size heap block; otherwise guarded by canaries. */
static unsigned char *smem_alloc(size_t size)
{
    void *v = nullptr;
#if CUDASIM_ASAN
    return posix_memalign(&v, SMEM_ALIGN, size ? size : 1) ? nullptr : (unsigned char *)v;
#else
    if (posix_memalign(&v, SMEM_ALIGN, size + 2 * GUARD)) return nullptr;
    unsigned char *p = (unsigned char *)v;
    memset(p, CANARY, GUARD);
    memset(p + GUARD + size, CANARY, GUARD);
    return p + GUARD;
#endif
}

static void smem_free(unsigned char *p)
{
    if (p) free(CUDASIM_ASAN ? p : p - GUARD);
}

static void check_smem_guards(unsigned char *p, size_t size)
{
    if (CUDASIM_ASAN || !p || disabled("guards")) return;
    bool before = false, after = false;
    for (size_t i = 0; i < GUARD; i++) {
        before |= p[-1 - (ptrdiff_t)i] != CANARY;
        after |= p[size + i] != CANARY;
    }
    if (!before && !after) return;
    fail("write out of bounds %s the %zu-byte dynamic shared memory",
         before ? "before the start of" : "past the end of", size);
}

/* Byte by byte through volatile: no memset call for ASan to intercept, and
 * the redzones between the instrumented arrays are written without a report. */
__attribute__((no_sanitize_address)) static void poison_static_shared()
{
    for (volatile char *p = __start_cudasim_shared; p < __stop_cudasim_shared; p++) *p = (char)0xff;
}

/* ---- launch -------------------------------------------------------------- */

void run_launch(const char *name, dim3 grid, dim3 block, size_t smem, Body body, void *ctx)
{
    kernel_name = name;
    failed = false;
    running = true;
    thread_reverse = reverse_order && !disabled("thread-order");
    bool block_reverse = reverse_order && !disabled("block-order");
    size_t nthreads = (size_t)block.x * block.y * block.z;
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
    dyn_shared = smem ? smem_alloc(smem) : nullptr;
    int nwarps = (int)((nthreads + 31) / 32);
    size_t nblocks = (size_t)grid.x * grid.y * grid.z;
    for (size_t b = 0; b < nblocks && !failed; b++) {
        size_t lin = block_reverse ? nblocks - 1 - b : b;
        block_idx = uint3{(unsigned)(lin % grid.x), (unsigned)(lin / grid.x % grid.y),
                          (unsigned)(lin / ((size_t)grid.x * grid.y))};
        in_block = true;
        poison_static_shared();
        if (dyn_shared) memset(dyn_shared, 0xff, smem);
        for (Thread &t : threads) start_fiber(&t);
        do {
            for (int i = 0; i < nwarps && !failed; i++) run_warp(thread_reverse ? nwarps - 1 - i : i);
        } while (!failed && release_block());
        if (!failed) check_smem_guards(dyn_shared, dyn_size);
    }
    in_block = false;
    if (!failed) {
        char after[300];
        snprintf(after, sizeof after, "cudasim: %s", name);
        check_guards(after);
    }
    smem_free(dyn_shared);
    dyn_shared = nullptr;
    running = false;
#if CUDASIM_ASAN
    /* Abandoned fibers never returned: their frames' redzones stay poisoned. */
    if (failed)
        for (size_t i = 0; i < nthreads; i++)
            ASAN_UNPOISON_MEMORY_REGION(stacks[i] + sysconf(_SC_PAGESIZE),
                                        STACK_SIZE - sysconf(_SC_PAGESIZE));
#endif
}

} /* namespace cudasim */

void cudasim_set_order(int reverse) { cudasim::reverse_order = reverse != 0; }

bool cudasim::lanes_reversed() { return thread_reverse; }
unsigned long long cudasim_switches(void) { return cudasim::n_switches; }
