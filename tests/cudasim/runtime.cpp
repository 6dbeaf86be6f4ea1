/* cudasim's runtime: device memory in a mapping of its own (PROT_NONE while
 * host code runs), the stream queue that runs work only when something
 * waits for it, events, and the CUDA runtime API over them, as NVIDIA's
 * cuda_runtime_api.h declares it. Single-threaded by design. */
#include "internal.h"

#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

/* The handles NVIDIA's headers leave opaque. */
struct Captured {
    std::string what;
    std::function<void()> run;
};
/* A stream capture in progress (cudaStreamBeginCapture): the work issued
 * to the stream, in order, instead of queued. */
struct Capture {
    cudaStreamCaptureMode mode;
    bool invalid; /* a rule was broken: EndCapture returns no graph */
    std::vector<Captured> nodes;
};
struct CUstream_st {
    unsigned flags;
    uint64_t last; /* the stream's latest queued work, 0 for none */
    std::unique_ptr<Capture> capture = nullptr;
};
struct CUgraph_st {
    std::vector<Captured> nodes;
};
struct CUgraphExec_st {
    std::vector<Captured> nodes;
};
struct CUevent_st {
    unsigned flags;
    uint64_t work;   /* the latest record's queue entry, 0 when done or never recorded */
    uint64_t serial; /* records so far: a stale record must not complete a newer one */
    bool recorded, done;
    double ms;
};

namespace cudasim {

/* ---- errors ---------------------------------------------------------------- */

static char message[1024];
static cudaError_t sticky = cudaSuccess, last_error = cudaSuccess;

static void record(const char *fmt, va_list ap)
{
    vsnprintf(message, sizeof message, fmt, ap);
    fprintf(stderr, "%s\n", message);
}

void vfault(cudaError_t err, const char *fmt, va_list ap)
{
    if (sticky != cudaSuccess) return; /* the first fault is the one to read */
    record(fmt, ap);
    sticky = err;
}

void fault(cudaError_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfault(err, fmt, ap);
    va_end(ap);
}

cudaError_t api_error(cudaError_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
    last_error = err;
    return err;
}

cudaError_t sticky_error() { return sticky; }

bool disabled(const char *check)
{
    static const char *list = getenv("CUDASIM_DISABLE");
    if (!list || !*list) return false;
    size_t n = strlen(check);
    for (const char *p = list; (p = strstr(p, check)) != nullptr; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return true;
    return false;
}

/* ---- device memory ---------------------------------------------------------- */

/* Each allocation is a slot of the mapping: FRONT bytes of guard, the block
 * (256-byte aligned), at least TAIL bytes of guard. Without ASan the GUARD
 * bytes on either side hold canaries; with it the guards are poisoned.
 * Freed slots wait in quarantine before reuse, so a stale pointer does not
 * see the next allocation at once. */
static const size_t FRONT = 256, TAIL = 64, ALIGN = 256, GUARD = 64;
static const size_t QUARANTINE = (size_t)64 << 20;
static const unsigned char CANARY = 0xa5;

struct Block {
    size_t slot, len, size;
    bool freeing; /* a cudaFreeAsync is queued */
};

static unsigned char *arena;
static size_t arena_size, used, open_len, page;
static int depth;
static std::map<const unsigned char *, Block> blocks; /* by base address */
static std::map<size_t, size_t> free_slots;           /* offset -> length */
static std::deque<std::pair<size_t, size_t>> quarantine;
static size_t quarantined;
static std::map<const unsigned char *, size_t> pinned;
static struct sigaction previous_segv;

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static void on_segv(int sig, siginfo_t *si, void *ucv);

static void init()
{
    if (arena) return;
    page = (size_t)sysconf(_SC_PAGESIZE);
    size_t gb = 16;
    if (const char *e = getenv("CUDASIM_MEMORY_GB")) gb = strtoul(e, nullptr, 10);
    /* A whole program (bin/genre-sim) in the reverse order, as tests set it. */
    if (const char *o = getenv("CUDASIM_ORDER")) reverse_order = !strcmp(o, "reverse");
    arena_size = (gb ? gb : 1) << 30;
    void *p = mmap(nullptr, arena_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("cudasim: reserving device memory");
        exit(1);
    }
    arena = (unsigned char *)p;
    stack_t ss;
    if (sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        /* A stack overflow must still reach the handler. */
        ss.ss_size = 64 << 10;
        ss.ss_sp = mmap(nullptr, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ss.ss_flags = 0;
        if (ss.ss_sp != MAP_FAILED) sigaltstack(&ss, nullptr);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    if (getenv("CUDASIM_DISABLE") && *getenv("CUDASIM_DISABLE"))
        fprintf(stderr, "cudasim: checks disabled (CUDASIM_DISABLE=%s): passing proves nothing\n",
                getenv("CUDASIM_DISABLE"));
}

/* Opens [0, used) when device work runs (or always, with protect disabled). */
static void open_used()
{
    size_t want = round_up(used, page);
    if (want > open_len && (depth > 0 || disabled("protect"))) {
        mprotect(arena + open_len, want - open_len, PROT_READ | PROT_WRITE);
        open_len = want;
    }
}

DeviceAccess::DeviceAccess()
{
    init();
    depth++;
    open_used();
}

DeviceAccess::~DeviceAccess()
{
    if (--depth == 0 && open_len && !disabled("protect")) {
        mprotect(arena, open_len, PROT_NONE);
        open_len = 0;
    }
}

static void set_canaries(const unsigned char *base, size_t size)
{
    if (CUDASIM_ASAN) return;
    memset((unsigned char *)base - GUARD, CANARY, GUARD);
    memset((unsigned char *)base + size, CANARY, GUARD);
}

/* Whether the canaries around a block are intact (always, under ASan). */
static bool canaries_intact(const unsigned char *base, size_t size, bool *before)
{
    if (CUDASIM_ASAN || disabled("guards")) return true;
    bool b = false, a = false;
    for (size_t i = 0; i < GUARD; i++) {
        b |= base[-1 - (ptrdiff_t)i] != CANARY;
        a |= base[size + i] != CANARY;
    }
    *before = b;
    return !b && !a;
}

static unsigned char *alloc_block(size_t size)
{
    init();
    size_t len = FRONT + round_up(size + TAIL, ALIGN), off = SIZE_MAX;
    for (auto it = free_slots.begin(); it != free_slots.end(); ++it) {
        if (it->second < len) continue;
        off = it->first;
        size_t rest = it->second - len;
        free_slots.erase(it);
        if (rest) free_slots[off + len] = rest;
        break;
    }
    if (off == SIZE_MAX) {
        if (len > arena_size - used) return nullptr;
        off = used;
        used += len;
    }
    DeviceAccess access;
    unsigned char *base = arena + off + FRONT;
#if CUDASIM_ASAN
    ASAN_POISON_MEMORY_REGION(arena + off, len);
    ASAN_UNPOISON_MEMORY_REGION(base, size);
#endif
    set_canaries(base, size);
    memset(base, 0xff, size);
    blocks[base] = Block{off, len, size, false};
    return base;
}

static void release_slot(size_t off, size_t len)
{
    auto next = free_slots.lower_bound(off);
    if (next != free_slots.end() && off + len == next->first) {
        len += next->second;
        free_slots.erase(next);
    }
    auto prev = free_slots.lower_bound(off);
    if (prev != free_slots.begin()) {
        --prev;
        if (prev->first + prev->second == off) {
            prev->second += len;
            return;
        }
    }
    free_slots[off] = len;
}

static void check_block(const unsigned char *base, const Block &b, const char *when)
{
    bool before = false;
    if (canaries_intact(base, b.size, &before)) return;
    fault(cudaErrorLaunchFailure, "%s: write out of bounds %s the %zu-byte cudaMalloc block at %p", when,
          before ? "before the start of" : "past the end of", b.size, (const void *)base);
    set_canaries(base, b.size);
}

static void free_block(const unsigned char *base)
{
    auto it = blocks.find(base);
    if (it == blocks.end()) return;
    Block b = it->second;
    DeviceAccess access;
    check_block(base, b, "cudasim: cudaFree");
#if CUDASIM_ASAN
    ASAN_POISON_MEMORY_REGION(arena + b.slot, b.len);
#else
    memset((unsigned char *)base, 0xff, b.size);
#endif
    blocks.erase(it);
    quarantine.emplace_back(b.slot, b.len);
    quarantined += b.len;
    while (quarantined > QUARANTINE) {
        release_slot(quarantine.front().first, quarantine.front().second);
        quarantined -= quarantine.front().second;
        quarantine.pop_front();
    }
}

void check_guards(const char *after)
{
    if (CUDASIM_ASAN) return;
    DeviceAccess access;
    for (const auto &kv : blocks) check_block(kv.first, kv.second, after);
}

/* The block whose slot holds p, or blocks.end(). */
static std::map<const unsigned char *, Block>::const_iterator slot_of(const void *p)
{
    const unsigned char *c = (const unsigned char *)p;
    auto it = blocks.upper_bound(c + FRONT);
    if (it == blocks.begin()) return blocks.end();
    --it;
    const unsigned char *slot = arena + it->second.slot;
    return c >= slot && c < slot + it->second.len ? it : blocks.end();
}

bool device_block(const void *p, size_t n, const unsigned char **base, size_t *size)
{
    if (!arena) return false;
    const unsigned char *c = (const unsigned char *)p;
    auto it = blocks.upper_bound(c);
    if (it == blocks.begin()) return false;
    --it;
    if (c < it->first || c > it->first + it->second.size || n > (size_t)(it->first + it->second.size - c))
        return false;
    if (base) *base = it->first;
    if (size) *size = it->second.size;
    return true;
}

bool pinned_block(const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    auto it = pinned.upper_bound(c);
    if (it == pinned.begin()) return false;
    --it;
    return c >= it->first && c <= it->first + it->second && n <= (size_t)(it->first + it->second - c);
}

void arena_range(const unsigned char **base, size_t *size)
{
    init();
    *base = arena;
    *size = arena_size;
}

static bool in_arena(const void *p)
{
    return arena && (const unsigned char *)p >= arena && (const unsigned char *)p < arena + arena_size;
}

void describe(const void *p, char *out, size_t cap)
{
    const unsigned char *c = (const unsigned char *)p;
    if (!in_arena(p)) {
        snprintf(out, cap, "host memory");
        return;
    }
    auto it = slot_of(p);
    if (it == blocks.end())
        snprintf(out, cap, "device memory no live allocation holds: freed, or never allocated");
    else if (c < it->first)
        snprintf(out, cap, "%zu bytes before the %zu-byte cudaMalloc block at %p", (size_t)(it->first - c),
                 it->second.size, (const void *)it->first);
    else if (c >= it->first + it->second.size)
        snprintf(out, cap, "%zu bytes past the end of the %zu-byte cudaMalloc block at %p",
                 (size_t)(c - it->first - it->second.size), it->second.size, (const void *)it->first);
    else
        snprintf(out, cap, "byte %zu of the %zu-byte cudaMalloc block at %p", (size_t)(c - it->first),
                 it->second.size, (const void *)it->first);
}

/* Says what the crash was, then lets it happen again with the previous
 * handler: ASan's report, or death by SIGSEGV. */
static void on_segv(int, siginfo_t *si, void *ucv)
{
    char msg[700], where[300];
    const void *a = si->si_addr;
    bool is_write = false;
#ifdef REG_ERR
    is_write = (((ucontext_t *)ucv)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)ucv;
#endif
    const char *verb = is_write ? "writes" : "reads";
    const char *kernel = running_kernel();
    msg[0] = 0;
    if (in_arena(a)) {
        describe(a, where, sizeof where);
        if (depth == 0)
            snprintf(msg, sizeof msg,
                     "cudasim: host code %s device memory at %p (%s); a GPU crashes here too: copy "
                     "it with cudaMemcpy\n", verb, a, where);
        else
            snprintf(msg, sizeof msg, "cudasim: %s %s device memory at %p outside every allocation (%s)\n",
                     kernel ? kernel : "device work", verb, a, where);
    } else if (in_stack_guard(a)) {
        snprintf(msg, sizeof msg, "cudasim: %s: a thread overflowed its 256 KiB stack\n",
                 kernel ? kernel : "a kernel");
    } else if (kernel) {
        snprintf(msg, sizeof msg, "cudasim: %s block (%u,%u,%u) %s %p, which is not device memory\n",
                 kernel, block_idx.x, block_idx.y, block_idx.z, verb, a);
    }
    if (msg[0]) {
        ssize_t w = write(2, msg, strlen(msg));
        (void)w;
    }
    sigaction(SIGSEGV, &previous_segv, nullptr);
}

/* ---- the stream queue ------------------------------------------------------ */

struct Work {
    std::vector<uint64_t> deps;
    std::function<void()> run;
};

static std::map<uint64_t, Work> queue; /* not yet run, by issue order */
static uint64_t next_id = 1;
static CUstream_st legacy_stream{0, 0}, per_thread_stream{0, 0};
static std::vector<std::unique_ptr<CUstream_st>> all_streams; /* created ones, kept for their work */
static std::set<const CUstream_st *> live_streams;
static std::vector<std::unique_ptr<CUevent_st>> all_events;
static std::set<const CUevent_st *> live_events;

static bool queued(uint64_t id) { return id && queue.count(id); }

static CUstream_st *stream_of(cudaStream_t s)
{
    if (s == nullptr || s == cudaStreamLegacy) return &legacy_stream;
    if (s == cudaStreamPerThread) return &per_thread_stream;
    return live_streams.count(s) ? s : nullptr;
}

bool valid_stream(cudaStream_t stream) { return stream_of(stream) != nullptr; }

/* The stream, or NULL with cudaErrorInvalidResourceHandle recorded. */
static CUstream_st *stream_for(const char *call, cudaStream_t s)
{
    CUstream_st *st = stream_of(s);
    if (!st) api_error(cudaErrorInvalidResourceHandle, "cudasim: %s: %p is not a stream (destroyed?)", call, (void *)s);
    return st;
}

/* ---- stream capture ---------------------------------------------------------
 * Work issued to a capturing stream becomes a node of its graph, in issue
 * order (a chain: one stream, so the nodes depend each on the last), and
 * runs only when an instantiated graph is launched. CUDA's rules are
 * enforced, each breach failing the call and invalidating the capture:
 * work on the legacy stream while a blocking stream captures
 * (cudaErrorStreamCaptureImplicit), and under cudaStreamCaptureModeGlobal
 * or ThreadLocal the potentially unsafe calls: synchronizing, querying,
 * cudaMalloc and cudaFree, blocking copies (cudaErrorStreamCaptureUnsupported).
 * Stricter than CUDA: copies between a capturing stream and pageable host
 * memory are refused (a replay would read a stale staging copy), and so
 * are events in a capture (cross-stream fork and join is not simulated). */

static std::vector<CUstream_st *> capturing_streams()
{
    std::vector<CUstream_st *> out;
    for (const auto &u : all_streams)
        if (u->capture && live_streams.count(u.get())) out.push_back(u.get());
    return out;
}

static void invalidate_captures()
{
    for (CUstream_st *c : capturing_streams()) c->capture->invalid = true;
}

/* An unsafe call while a (non-relaxed) capture runs: refused, the capture invalidated. */
static cudaError_t refuse_in_capture(const char *call)
{
    for (CUstream_st *c : capturing_streams())
        if (c->capture->mode != cudaStreamCaptureModeRelaxed) {
            invalidate_captures();
            return api_error(cudaErrorStreamCaptureUnsupported,
                             "cudasim: %s while a stream is capturing a graph: not permitted (the capture is "
                             "invalidated)", call);
        }
    return cudaSuccess;
}

/* Events in a capture (CUDA's fork and join across streams): refused here. */
static cudaError_t refuse_event_in_capture(cudaStream_t s, const char *call)
{
    CUstream_st *st = stream_of(s);
    if (!st || !st->capture) return cudaSuccess;
    st->capture->invalid = true;
    return api_error(cudaErrorStreamCaptureUnsupported, "cudasim: %s on a capturing stream: events in a capture "
                     "(fork and join across streams) are not simulated; the capture is invalidated", call);
}

static cudaError_t capture_rules(CUstream_st *st, const char *what, uint64_t after)
{
    if (st->capture) {
        if (st->capture->invalid)
            return api_error(cudaErrorStreamCaptureInvalidated, "cudasim: %s: the stream's capture was invalidated "
                             "by an earlier error", what);
        if (after) {
            st->capture->invalid = true;
            return api_error(cudaErrorStreamCaptureUnsupported, "cudasim: %s: a dependency on other work inside a "
                             "capture (events across streams) is not simulated", what);
        }
        return cudaSuccess;
    }
    if (st == &legacy_stream)
        for (CUstream_st *c : capturing_streams())
            if (!(c->flags & cudaStreamNonBlocking)) {
                invalidate_captures();
                return api_error(cudaErrorStreamCaptureImplicit, "cudasim: %s on the legacy stream while a blocking "
                                 "stream is capturing a graph (an implicit dependency; the capture is invalidated)",
                                 what);
            }
    return cudaSuccess;
}

/* Queues run on stream after `after` (another queue entry, or 0). */
static cudaError_t enqueue_after(cudaStream_t s, const char *what, std::function<void()> run, uint64_t after,
                                 uint64_t *id)
{
    if (id) *id = 0;
    CUstream_st *st = stream_for(what, s);
    if (!st) return cudaErrorInvalidResourceHandle;
    cudaError_t refused = capture_rules(st, what, after);
    if (refused != cudaSuccess) return refused;
    if (st->capture) {
        st->capture->nodes.push_back(Captured{what, std::move(run)});
        return cudaSuccess;
    }
    if (disabled("async")) {
        DeviceAccess access;
        if (sticky == cudaSuccess) run();
        return cudaSuccess;
    }
    Work w;
    auto dep = [&](uint64_t d) {
        if (queued(d)) w.deps.push_back(d);
    };
    dep(after);
    dep(st->last);
    if (st == &legacy_stream) {
        dep(per_thread_stream.last);
        for (const auto &u : all_streams)
            if (!(u->flags & cudaStreamNonBlocking)) dep(u->last);
    } else if (!(st->flags & cudaStreamNonBlocking)) {
        dep(legacy_stream.last);
    }
    w.run = std::move(run);
    uint64_t n = next_id++;
    st->last = n;
    queue.emplace(n, std::move(w));
    if (id) *id = n;
    return cudaSuccess;
}

cudaError_t enqueue(cudaStream_t stream, const char *what, std::function<void()> run)
{
    return enqueue_after(stream, what, std::move(run), 0, nullptr);
}

/* Runs the queued entries `targets` and everything they wait for, in issue
 * order, or under cudasim_set_order(1) the latest ready entry first, with
 * device memory open. Entries after a sticky error are dropped. */
static void run_queued(std::vector<uint64_t> targets)
{
    std::set<uint64_t> need;
    while (!targets.empty()) {
        uint64_t id = targets.back();
        targets.pop_back();
        if (!queued(id) || !need.insert(id).second) continue;
        for (uint64_t d : queue[id].deps) targets.push_back(d);
    }
    if (need.empty()) return;
    std::map<uint64_t, int> waiting;
    std::map<uint64_t, std::vector<uint64_t>> dependents;
    std::set<uint64_t> ready;
    for (uint64_t id : need) {
        int c = 0;
        for (uint64_t d : queue[id].deps)
            if (need.count(d)) {
                c++;
                dependents[d].push_back(id);
            }
        waiting[id] = c;
        if (!c) ready.insert(id);
    }
    DeviceAccess access;
    bool latest_first = reverse_order && !disabled("stream-order");
    while (!ready.empty()) {
        uint64_t id = latest_first ? *ready.rbegin() : *ready.begin();
        ready.erase(id);
        std::function<void()> run = std::move(queue[id].run);
        queue.erase(id);
        if (sticky == cudaSuccess) run();
        for (uint64_t d : dependents[id])
            if (--waiting[d] == 0) ready.insert(d);
    }
}

static void run_everything()
{
    std::vector<uint64_t> all;
    for (const auto &kv : queue) all.push_back(kv.first);
    run_queued(all);
}

/* ---- kernels --------------------------------------------------------------- */

static std::map<const void *, int> max_dynamic_smem;
static const size_t DEFAULT_SMEM = 48 << 10, OPTIN_SMEM = 232448;

void enqueue_launch(const char *name, const void *func, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                    Body body, void *ctx, void (*destroy)(void *), const void *const *ptrs, const int *argno,
                    int nptrs)
{
    std::shared_ptr<void> owned(ctx, destroy);
    if (sticky != cudaSuccess) return; /* refused: cudaGetLastError returns the sticky error */
    size_t nthreads = (size_t)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
        grid.y == 0 || grid.z == 0 || grid.x > (unsigned)INT_MAX || grid.y > 65535 || grid.z > 65535) {
        api_error(cudaErrorInvalidConfiguration,
                  "cudasim: %s: invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u)", name, grid.x,
                  grid.y, grid.z, block.x, block.y, block.z);
        return;
    }
    size_t limit = DEFAULT_SMEM;
    auto lim = max_dynamic_smem.find(func);
    if (lim != max_dynamic_smem.end() && (size_t)lim->second > limit) limit = (size_t)lim->second;
    if (smem > limit) {
        api_error(cudaErrorInvalidValue,
                  "cudasim: %s: %zu bytes of dynamic shared memory exceed the %zu allowed (48 KiB unless "
                  "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize) allows more)",
                  name, smem, limit);
        return;
    }
    std::vector<std::pair<const void *, int>> args;
    for (int i = 0; i < nptrs; i++) args.emplace_back(ptrs[i], argno[i]);
    enqueue(stream, name, [=]() {
        if (!disabled("pointer-args"))
            for (const auto &a : args) {
                if (!a.first || device_block(a.first, 0, nullptr, nullptr) || pinned_block(a.first, 0)) continue;
                char where[300];
                describe(a.first, where, sizeof where);
                fault(cudaErrorIllegalAddress,
                      "cudasim: %s: argument %d is %p, which is not device memory (%s): pass device "
                      "pointers to kernels", name, a.second, a.first, where);
                return;
            }
        count_launch_begin();
        run_launch(name, grid, block, smem, body, owned.get());
        count_launch_end(name);
    });
}

/* ---- copies --------------------------------------------------------------------- */

/* Checks one side of a copy: on the device, [p, p + n) within a live block;
 * on the host, outside device memory. */
static cudaError_t check_side(const char *call, const char *side, const void *p, size_t n, bool device)
{
    if (!p) return api_error(cudaErrorInvalidValue, "cudasim: %s: the %s is NULL", call, side);
    if (device) {
        if (device_block(p, n, nullptr, nullptr)) return cudaSuccess;
        char where[300];
        describe(p, where, sizeof where);
        if (!in_arena(p))
            return api_error(cudaErrorInvalidValue, "cudasim: %s: the %s %p is host memory, not device memory",
                             call, side, p);
        const unsigned char *base;
        size_t size;
        if (device_block(p, 0, &base, &size))
            return api_error(cudaErrorInvalidValue,
                             "cudasim: %s: %zu bytes at the %s %p run %zu bytes past the end of the %zu-byte "
                             "cudaMalloc block at %p", call, n, side, p,
                             n - (size_t)(base + size - (const unsigned char *)p), size, (const void *)base);
        return api_error(cudaErrorInvalidValue, "cudasim: %s: the %s %p is %s", call, side, p, where);
    }
    if (in_arena(p))
        return api_error(cudaErrorInvalidValue, "cudasim: %s: the %s %p is device memory, not host memory",
                         call, side, p);
    return cudaSuccess;
}

static cudaError_t check_copy(const char *call, void *dst, const void *src, size_t n, cudaMemcpyKind *kind)
{
    if (*kind == cudaMemcpyDefault) {
        bool d = in_arena(dst), s = in_arena(src);
        *kind = d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                  : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    }
    bool dev_dst, dev_src;
    switch (*kind) {
    case cudaMemcpyHostToHost: dev_dst = false, dev_src = false; break;
    case cudaMemcpyHostToDevice: dev_dst = true, dev_src = false; break;
    case cudaMemcpyDeviceToHost: dev_dst = false, dev_src = true; break;
    case cudaMemcpyDeviceToDevice: dev_dst = true, dev_src = true; break;
    default:
        return api_error(cudaErrorInvalidMemcpyDirection, "cudasim: %s: %d is not a cudaMemcpyKind", call,
                         (int)*kind);
    }
    if (n == 0) return cudaSuccess;
    cudaError_t e = check_side(call, "destination", dst, n, dev_dst);
    return e != cudaSuccess ? e : check_side(call, "source", src, n, dev_src);
}

} /* namespace cudasim */

using namespace cudasim;

#define STICKY()                                  \
    do {                                          \
        if (sticky != cudaSuccess) return sticky; \
    } while (0)

/* ---- the API: errors ----------------------------------------------------------- */

cudaError_t cudaGetLastError(void)
{
    if (sticky != cudaSuccess) return sticky;
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return sticky != cudaSuccess ? sticky : last_error; }

const char *cudaGetErrorName(cudaError_t err)
{
    switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t err)
{
    if (err != cudaSuccess && err == sticky && message[0]) return message;
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "unknown error";
    }
}

const char *cudasim_last_error(void) { return message[0] ? message : nullptr; }

void cudasim_clear_error(void)
{
    message[0] = 0;
    sticky = cudaSuccess;
    last_error = cudaSuccess;
}

int cudasim_is_device_pointer(const void *p) { return device_block(p, 0, nullptr, nullptr); }

/* ---- device ------------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count) return api_error(cudaErrorInvalidValue, "cudasim: cudaGetDeviceCount: count is NULL");
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    STICKY();
    if (device != 0) return api_error(cudaErrorInvalidDevice, "cudasim: cudaSetDevice(%d): one device, 0", device);
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    if (!device) return api_error(cudaErrorInvalidValue, "cudasim: cudaGetDevice: device is NULL");
    *device = 0;
    return cudaSuccess;
}

/* A simulated device with an H100's limits. */
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (!prop) return api_error(cudaErrorInvalidValue, "cudasim: cudaGetDeviceProperties: prop is NULL");
    if (device != 0)
        return api_error(cudaErrorInvalidDevice, "cudasim: cudaGetDeviceProperties(%d): one device, 0", device);
    init();
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "cudasim (simulated on the CPU)");
    prop->totalGlobalMem = arena_size;
    prop->sharedMemPerBlock = DEFAULT_SMEM;
    prop->sharedMemPerBlockOptin = OPTIN_SMEM;
    prop->sharedMemPerMultiprocessor = 233472;
    prop->regsPerBlock = 65536;
    prop->regsPerMultiprocessor = 65536;
    prop->warpSize = 32;
    prop->memPitch = INT_MAX;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024, prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = INT_MAX, prop->maxGridSize[1] = 65535, prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->maxBlocksPerMultiProcessor = 32;
    prop->l2CacheSize = 50 << 20;
    prop->memoryBusWidth = 5120;
    prop->concurrentKernels = 1;
    prop->asyncEngineCount = 2;
    prop->unifiedAddressing = 1;
    prop->canMapHostMemory = 1;
    prop->memoryPoolsSupported = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    if (!value) return api_error(cudaErrorInvalidValue, "cudasim: cudaDeviceGetAttribute: value is NULL");
    struct cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) return e;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    default:
        return api_error(cudaErrorInvalidValue, "cudasim: cudaDeviceGetAttribute: attribute %d not simulated",
                         (int)attr);
    }
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    STICKY();
    init();
    size_t live = 0;
    for (const auto &kv : blocks) live += kv.second.len;
    if (free_bytes) *free_bytes = arena_size - live;
    if (total) *total = arena_size;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    if (!v) return api_error(cudaErrorInvalidValue, "cudasim: cudaRuntimeGetVersion: NULL");
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    if (!v) return api_error(cudaErrorInvalidValue, "cudasim: cudaDriverGetVersion: NULL");
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    if (cudaError_t e = refuse_in_capture("cudaDeviceSynchronize")) return e;
    STICKY();
    run_everything();
    return sticky;
}

/* Destroys every allocation and the sticky error, as a new context would. */
cudaError_t cudaDeviceReset(void)
{
    run_everything();
    std::vector<const unsigned char *> live;
    for (const auto &kv : blocks) live.push_back(kv.first);
    for (const unsigned char *b : live) free_block(b);
    cudasim_clear_error();
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    STICKY();
    if (!func) return api_error(cudaErrorInvalidDeviceFunction, "cudasim: cudaFuncSetAttribute: func is NULL");
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > OPTIN_SMEM)
            return api_error(cudaErrorInvalidValue,
                             "cudasim: cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the "
                             "device's %zu", value, OPTIN_SMEM);
        max_dynamic_smem[func] = value;
    }
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
    STICKY();
    if (!attr || !func)
        return api_error(cudaErrorInvalidDeviceFunction, "cudasim: cudaFuncGetAttributes: NULL argument");
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = 1024;
    attr->ptxVersion = attr->binaryVersion = 90;
    auto lim = max_dynamic_smem.find(func);
    attr->maxDynamicSharedSizeBytes = lim != max_dynamic_smem.end() ? lim->second : (int)DEFAULT_SMEM;
    return cudaSuccess;
}

cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache)
{
    STICKY();
    return func ? cudaSuccess
                : api_error(cudaErrorInvalidDeviceFunction, "cudasim: cudaFuncSetCacheConfig: func is NULL");
}

/* ---- memory ------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **ptr, size_t size)
{
    if (cudaError_t e = refuse_in_capture("cudaMalloc")) return e;
    STICKY();
    if (!ptr) return api_error(cudaErrorInvalidValue, "cudasim: cudaMalloc: ptr is NULL");
    *ptr = nullptr;
    if (size == 0) return cudaSuccess;
    unsigned char *p = alloc_block(size);
    if (!p)
        return api_error(cudaErrorMemoryAllocation, "cudasim: cudaMalloc(%zu): out of the %zu bytes simulated "
                         "(CUDASIM_MEMORY_GB)", size, arena_size);
    *ptr = p;
    return cudaSuccess;
}

/* Waits for all device work first, as CUDA's does. */
cudaError_t cudaFree(void *ptr)
{
    if (cudaError_t e = refuse_in_capture("cudaFree")) return e;
    STICKY();
    run_everything();
    STICKY();
    if (!ptr) return cudaSuccess;
    if (!blocks.count((const unsigned char *)ptr)) {
        char where[300];
        describe(ptr, where, sizeof where);
        return api_error(cudaErrorInvalidValue,
                         "cudasim: cudaFree(%p): not the start of a live device allocation (%s)", ptr, where);
    }
    free_block((const unsigned char *)ptr);
    return sticky;
}

cudaError_t cudaMallocAsync(void **ptr, size_t size, cudaStream_t stream)
{
    STICKY();
    if (!stream_for("cudaMallocAsync", stream)) return cudaErrorInvalidResourceHandle;
    return cudaMalloc(ptr, size);
}

cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream)
{
    STICKY();
    if (!ptr) return cudaSuccess;
    auto it = blocks.find((const unsigned char *)ptr);
    if (it == blocks.end() || it->second.freeing) {
        char where[300];
        describe(ptr, where, sizeof where);
        return api_error(cudaErrorInvalidValue,
                         "cudasim: cudaFreeAsync(%p): not the start of a live device allocation (%s%s)", ptr,
                         it == blocks.end() ? "" : "already being freed: ", where);
    }
    cudaError_t e = enqueue(stream, "cudaFreeAsync", [ptr]() { free_block((const unsigned char *)ptr); });
    if (e == cudaSuccess) it->second.freeing = true;
    return e;
}

cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    if (cudaError_t e = refuse_in_capture("cudaMallocHost")) return e;
    STICKY();
    if (!ptr) return api_error(cudaErrorInvalidValue, "cudasim: cudaMallocHost: ptr is NULL");
    void *p = nullptr;
    if (posix_memalign(&p, 256, size ? size : 1))
        return api_error(cudaErrorMemoryAllocation, "cudasim: cudaMallocHost(%zu): out of memory", size);
    pinned[(const unsigned char *)p] = size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int) { return cudaMallocHost(ptr, size); }

cudaError_t cudaFreeHost(void *ptr)
{
    if (cudaError_t e = refuse_in_capture("cudaFreeHost")) return e;
    STICKY();
    run_everything();
    if (!ptr) return sticky;
    auto it = pinned.find((const unsigned char *)ptr);
    if (it == pinned.end())
        return api_error(cudaErrorInvalidValue, "cudasim: cudaFreeHost(%p): not cudaMallocHost memory", ptr);
    pinned.erase(it);
    free(ptr);
    return sticky;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *ptr)
{
    if (!attr) return api_error(cudaErrorInvalidValue, "cudasim: cudaPointerGetAttributes: attr is NULL");
    memset(attr, 0, sizeof *attr);
    if (device_block(ptr, 0, nullptr, nullptr)) {
        attr->type = cudaMemoryTypeDevice;
        attr->devicePointer = (void *)ptr;
    } else if (pinned_block(ptr, 0)) {
        attr->type = cudaMemoryTypeHost;
        attr->devicePointer = attr->hostPointer = (void *)ptr;
    } else {
        attr->type = cudaMemoryTypeUnregistered;
        attr->device = -2;
        attr->hostPointer = (void *)ptr;
    }
    return cudaSuccess;
}

/* A copy as it runs, recorded while counting: device to device, or across
 * PCIe with the device side's bytes. */
static void copy_counted(const char *call, void *dst, const void *src, size_t n)
{
    memmove(dst, src, n);
    bool from = in_arena(src), to = in_arena(dst);
    count_work(call, from && to ? CUDASIM_WORK_COPY_DEVICE : CUDASIM_WORK_COPY_HOST, 0, from ? (double)n : 0,
               to ? (double)n : 0);
}

/* Blocking copies to or from the host wait for the legacy stream (CUDA's
 * "stream sync before the copy") and run at once; device to device ones
 * are queued, as CUDA's do not wait. */
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    if (cudaError_t e = refuse_in_capture("cudaMemcpy")) return e;
    STICKY();
    cudaError_t e = check_copy("cudaMemcpy", dst, src, n, &kind);
    if (e != cudaSuccess || n == 0) return e;
    if (kind == cudaMemcpyHostToHost) {
        memmove(dst, src, n);
        return cudaSuccess;
    }
    uint64_t id;
    e = enqueue_after(cudaStreamLegacy, "cudaMemcpy", [=]() { copy_counted("cudaMemcpy", dst, src, n); }, 0, &id);
    if (e != cudaSuccess || kind == cudaMemcpyDeviceToDevice) return e;
    run_queued({id});
    return sticky;
}

/* Copies in stream order. From pageable host memory the source is read now
 * (CUDA stages it before returning), from pinned memory when the copy runs;
 * a host destination reads as 0xFF bytes until then. */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t stream)
{
    STICKY();
    cudaError_t e = check_copy("cudaMemcpyAsync", dst, src, n, &kind);
    if (e != cudaSuccess) return e;
    CUstream_st *st = stream_for("cudaMemcpyAsync", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (n == 0) return cudaSuccess;
    bool host_side = kind == cudaMemcpyHostToDevice ? !pinned_block(src, n)
                     : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost ? !pinned_block(dst, n)
                                                                                        : false;
    if (st->capture && host_side) {
        st->capture->invalid = true;
        return api_error(cudaErrorStreamCaptureUnsupported, "cudasim: cudaMemcpyAsync between pageable host memory "
                         "and a capturing stream: a replayed graph would copy stale data (use cudaMallocHost "
                         "memory; the capture is invalidated)");
    }
    if (kind == cudaMemcpyHostToDevice && !pinned_block(src, n)) {
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                   (const unsigned char *)src + n);
        return enqueue(stream, "cudaMemcpyAsync", [=]() { copy_counted("cudaMemcpyAsync", dst, staged->data(), n); });
    }
    if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost) memset(dst, 0xff, n);
    return enqueue(stream, "cudaMemcpyAsync", [=]() { copy_counted("cudaMemcpyAsync", dst, src, n); });
}

static cudaError_t memset_on(const char *call, void *dst, int value, size_t n, cudaStream_t stream)
{
    STICKY();
    if (n == 0) return cudaSuccess;
    cudaError_t e = check_side(call, "destination", dst, n, true);
    if (e != cudaSuccess) return e;
    return enqueue(stream, call, [=]() {
        memset(dst, value, n);
        count_work(call, CUDASIM_WORK_MEMSET, 0, 0, (double)n);
    });
}

cudaError_t cudaMemset(void *dst, int value, size_t n) { return memset_on("cudaMemset", dst, value, n, 0); }

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t stream)
{
    return memset_on("cudaMemsetAsync", dst, value, n, stream);
}

/* __constant__ and __device__ variables are host variables here: a copy
 * to or from one is a copy to or from host memory, in stream order. */
static cudaError_t symbol_copy(const char *call, void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                               bool to_symbol, cudaStream_t stream, bool blocking)
{
    STICKY();
    bool ok_kind = to_symbol ? kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice ||
                                   kind == cudaMemcpyDefault
                             : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice ||
                                   kind == cudaMemcpyDefault;
    if (!ok_kind) return api_error(cudaErrorInvalidMemcpyDirection, "cudasim: %s: invalid direction %d", call, (int)kind);
    if (n == 0) return cudaSuccess;
    const void *other = to_symbol ? src : dst;
    bool device = kind == cudaMemcpyDeviceToDevice || (kind == cudaMemcpyDefault && in_arena(other));
    cudaError_t e = check_side(call, to_symbol ? "source" : "destination", other, n, device);
    if (e != cudaSuccess) return e;
    if (to_symbol && !device && !blocking) {
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                   (const unsigned char *)src + n);
        return enqueue(stream, call, [=]() { copy_counted(call, dst, staged->data(), n); });
    }
    if (!to_symbol && !device && !blocking) memset(dst, 0xff, n);
    uint64_t id;
    e = enqueue_after(stream, call, [=]() { copy_counted(call, dst, src, n); }, 0, &id);
    if (e != cudaSuccess || !blocking) return e;
    run_queued({id});
    return sticky;
}

cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count, size_t offset,
                               enum cudaMemcpyKind kind)
{
    return symbol_copy("cudaMemcpyToSymbol", (unsigned char *)symbol + offset, src, count, kind, true, 0, true);
}

cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count, size_t offset,
                                 enum cudaMemcpyKind kind)
{
    return symbol_copy("cudaMemcpyFromSymbol", dst, (const unsigned char *)symbol + offset, count, kind, false, 0,
                       true);
}

cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count, size_t offset,
                                    enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return symbol_copy("cudaMemcpyToSymbolAsync", (unsigned char *)symbol + offset, src, count, kind, true,
                       stream, false);
}

cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count, size_t offset,
                                      enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return symbol_copy("cudaMemcpyFromSymbolAsync", dst, (const unsigned char *)symbol + offset, count, kind,
                       false, stream, false);
}

/* ---- streams ------------------------------------------------------------------ */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    STICKY();
    if (!stream) return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamCreate: stream is NULL");
    if (flags & ~(unsigned)cudaStreamNonBlocking)
        return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamCreateWithFlags: unknown flags %#x", flags);
    all_streams.emplace_back(new CUstream_st{flags, 0});
    *stream = all_streams.back().get();
    live_streams.insert(*stream);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *stream, unsigned int flags, int)
{
    return cudaStreamCreateWithFlags(stream, flags);
}

/* Its queued work still runs, as CUDA's does. */
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    STICKY();
    if (!live_streams.erase(stream))
        return api_error(cudaErrorInvalidResourceHandle, "cudasim: cudaStreamDestroy(%p): not a created stream",
                         (void *)stream);
    return cudaSuccess;
}

cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int *flags)
{
    CUstream_st *st = stream_for("cudaStreamGetFlags", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (!flags) return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamGetFlags: flags is NULL");
    *flags = st->flags;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    if (cudaError_t e = refuse_in_capture("cudaStreamSynchronize")) return e;
    STICKY();
    CUstream_st *st = stream_for("cudaStreamSynchronize", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    run_queued({st->last});
    return sticky;
}

/* Work still queued: cudaErrorNotReady, and it runs (as time passes). */
static cudaError_t query(uint64_t work)
{
    if (!queued(work)) return cudaSuccess;
    run_queued({work});
    return sticky != cudaSuccess ? sticky : cudaErrorNotReady;
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    if (cudaError_t e = refuse_in_capture("cudaStreamQuery")) return e;
    STICKY();
    CUstream_st *st = stream_for("cudaStreamQuery", stream);
    return st ? query(st->last) : cudaErrorInvalidResourceHandle;
}

/* The event, or NULL with cudaErrorInvalidResourceHandle recorded. */
static CUevent_st *event_for(const char *call, cudaEvent_t e)
{
    if (live_events.count(e)) return e;
    api_error(cudaErrorInvalidResourceHandle, "cudasim: %s: %p is not an event", call, (void *)e);
    return nullptr;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int)
{
    STICKY();
    CUevent_st *ev = event_for("cudaStreamWaitEvent", event);
    if (!ev) return cudaErrorInvalidResourceHandle;
    if (cudaError_t e = refuse_event_in_capture(stream, "cudaStreamWaitEvent")) return e;
    return enqueue_after(stream, "cudaStreamWaitEvent", []() {}, ev->work, nullptr);
}

/* ---- events ------------------------------------------------------------------- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    STICKY();
    if (!event) return api_error(cudaErrorInvalidValue, "cudasim: cudaEventCreate: event is NULL");
    unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    if ((flags & ~known) || ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming)))
        return api_error(cudaErrorInvalidValue, "cudasim: cudaEventCreateWithFlags: invalid flags %#x", flags);
    all_events.emplace_back(new CUevent_st{flags, 0, 0, false, false, 0.0});
    *event = all_events.back().get();
    live_events.insert(*event);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    STICKY();
    if (!live_events.erase(event))
        return api_error(cudaErrorInvalidResourceHandle, "cudasim: cudaEventDestroy(%p): not an event",
                         (void *)event);
    return cudaSuccess;
}

static double now_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    STICKY();
    CUevent_st *ev = event_for("cudaEventRecord", event);
    if (!ev) return cudaErrorInvalidResourceHandle;
    if (cudaError_t e = refuse_event_in_capture(stream, "cudaEventRecord")) return e;
    uint64_t serial = ++ev->serial;
    ev->recorded = true;
    ev->done = false;
    uint64_t id;
    cudaError_t e = enqueue_after(stream, "cudaEventRecord", [ev, serial]() {
        if (ev->serial != serial) return; /* recorded again since */
        ev->ms = now_ms();
        ev->done = true;
        ev->work = 0;
    }, 0, &id);
    if (e == cudaSuccess && ev->serial == serial && !ev->done) ev->work = id;
    return e;
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
    if (cudaError_t e = refuse_in_capture("cudaEventQuery")) return e;
    STICKY();
    CUevent_st *ev = event_for("cudaEventQuery", event);
    return ev ? query(ev->work) : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    if (cudaError_t e = refuse_in_capture("cudaEventSynchronize")) return e;
    STICKY();
    CUevent_st *ev = event_for("cudaEventSynchronize", event);
    if (!ev) return cudaErrorInvalidResourceHandle;
    run_queued({ev->work});
    return sticky;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    STICKY();
    if (!ms) return api_error(cudaErrorInvalidValue, "cudasim: cudaEventElapsedTime: ms is NULL");
    CUevent_st *a = event_for("cudaEventElapsedTime", start), *b = a ? event_for("cudaEventElapsedTime", end) : a;
    if (!a || !b) return cudaErrorInvalidResourceHandle;
    if ((a->flags | b->flags) & cudaEventDisableTiming)
        return api_error(cudaErrorInvalidResourceHandle,
                         "cudasim: cudaEventElapsedTime: an event was created with cudaEventDisableTiming");
    if (!a->recorded || !b->recorded)
        return api_error(cudaErrorInvalidResourceHandle,
                         "cudasim: cudaEventElapsedTime: an event was never recorded");
    if (!a->done || !b->done)
        return api_error(cudaErrorNotReady,
                         "cudasim: cudaEventElapsedTime: an event has not completed (synchronize the end event "
                         "first)");
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}

/* ---- graphs (stream capture) ------------------------------------------------- */

static std::set<const CUgraph_st *> live_graphs;
static std::set<const CUgraphExec_st *> live_execs;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    STICKY();
    CUstream_st *st = stream_for("cudaStreamBeginCapture", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (st == &legacy_stream || st == &per_thread_stream)
        return api_error(cudaErrorStreamCaptureUnsupported,
                         "cudasim: cudaStreamBeginCapture: the legacy or per-thread default stream cannot capture");
    if (st->capture)
        return api_error(cudaErrorIllegalState, "cudasim: cudaStreamBeginCapture: the stream is already capturing");
    if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
        mode != cudaStreamCaptureModeRelaxed)
        return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamBeginCapture: unknown mode %d", (int)mode);
    st->capture.reset(new Capture{mode, false, {}});
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    CUstream_st *st = stream_for("cudaStreamEndCapture", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (!graph) return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamEndCapture: graph is NULL");
    *graph = nullptr;
    if (!st->capture)
        return api_error(cudaErrorStreamCaptureUnmatched, "cudasim: cudaStreamEndCapture: the stream is not capturing");
    std::unique_ptr<Capture> c = std::move(st->capture);
    if (c->invalid)
        return api_error(cudaErrorStreamCaptureInvalidated,
                         "cudasim: cudaStreamEndCapture: the capture was invalidated by an earlier error");
    CUgraph_st *g = new CUgraph_st{std::move(c->nodes)};
    live_graphs.insert(g);
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
    CUstream_st *st = stream_for("cudaStreamIsCapturing", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (!status) return api_error(cudaErrorInvalidValue, "cudasim: cudaStreamIsCapturing: status is NULL");
    *status = !st->capture           ? cudaStreamCaptureStatusNone
              : st->capture->invalid ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    STICKY();
    if (!exec) return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphInstantiate: exec is NULL");
    *exec = nullptr;
    if (!live_graphs.count(graph))
        return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphInstantiate: %p is not a graph (destroyed?)",
                         (void *)graph);
    if (flags)
        return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphInstantiate: flags %llu are not simulated", flags);
    CUgraphExec_st *x = new CUgraphExec_st{graph->nodes};
    live_execs.insert(x);
    *exec = x;
    return cudaSuccess;
}

/* The graph's nodes, in capture order, as one piece of the stream's work:
 * the replay runs each node's work as captured (kernel arguments, pointers
 * and sizes as they were), reading device memory as it is now. */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    STICKY();
    if (!live_execs.count(exec))
        return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphLaunch: %p is not an instantiated graph "
                         "(destroyed?)", (void *)exec);
    CUstream_st *st = stream_for("cudaGraphLaunch", stream);
    if (!st) return cudaErrorInvalidResourceHandle;
    if (st->capture) {
        st->capture->invalid = true;
        return api_error(cudaErrorStreamCaptureUnsupported,
                         "cudasim: cudaGraphLaunch into a capturing stream (a child graph) is not simulated");
    }
    std::shared_ptr<std::vector<Captured>> nodes = std::make_shared<std::vector<Captured>>(exec->nodes);
    return enqueue(stream, "cudaGraphLaunch", [nodes]() {
        count_graph_begin();
        for (const Captured &n : *nodes)
            if (sticky == cudaSuccess) n.run();
        count_graph_end();
    });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    if (!live_execs.erase(exec))
        return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphExecDestroy(%p): not an instantiated graph",
                         (void *)exec);
    delete exec; /* a launch still queued holds its own copy of the nodes */
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    if (!live_graphs.erase(graph))
        return api_error(cudaErrorInvalidValue, "cudasim: cudaGraphDestroy(%p): not a graph", (void *)graph);
    delete graph;
    return cudaSuccess;
}
