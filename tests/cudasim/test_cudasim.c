/* The simulator finds the bugs that matter: each deliberately broken kernel
 * of broken.cu is flagged (an error, a disagreement between thread or block
 * orders, or under AddressSanitizer the sanitizer's report naming the
 * kernel and the object, and exit 1), never
 * a hang; its correct twin passes; the built-ins compute what CUDA defines.
 * Host code that touches device memory dies; a result read before its
 * stream is synchronized reads NaN; streams and events order work as CUDA
 * documents. And each of these tests fails with the simulator's check
 * switched off (each_self_test_fails_without_its_check). */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cudasim.h"
#include "kernels/kernels.h"
#include "src/core/err.h"
#include "tests/testutil.h"

void cudasim_rotate(float *out, const float *in, int n, int with_barrier);
void cudasim_double(float *out, const float *in, int n, int off_by_one);
void cudasim_early_exit(float *out);
void cudasim_split_barrier(float *out);
void cudasim_partial_shuffle(float *out);
void cudasim_shared_overflow(float *out, int n);
void cudasim_static_shared_overflow(float *out, int n);
void cudasim_builtins(float *out, unsigned *bits, int *counter, const float *in);
void cudasim_neighbour(float *out, int n, int racy, cudaStream_t stream);
void cudasim_barrier_reductions(float *out);
void cudasim_double_on(float *out, const float *in, int n, cudaStream_t stream);
void cudasim_launch_config(float *out, unsigned grid, unsigned block, size_t smem);
void cudasim_wmma_gemm(float *c, const bf16 *a, const bf16 *b, int m, int n, int k, int a_col, int b_col);
void cudasim_wmma_misuse(float *c, const bf16 *a, int how);
void cudasim_wmma_unsynced(float *c, const bf16 *eye, int hazard, int with_sync);
void cudasim_wmma_mapping(float *c);

static float *dev_floats(int n, float first)
{
    float *d, h[1024];
    cr_assert(n <= 1024);
    for (int i = 0; i < n; i++) h[i] = first + (float)i;
    cr_assert_eq(cudaMalloc((void **)&d, n * sizeof(float)), cudaSuccess);
    cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice);
    return d;
}

static void must(cudaError_t e) { cr_assert_eq(e, cudaSuccess, "%s", cudaGetErrorString(e)); }

static void expect_message(const char *what)
{
    const char *msg = cudasim_last_error();
    cr_assert(msg && strstr(msg, what), "flagged as \"%s\", expected \"%s\"", msg ? msg : "", what);
}

/* Asserts that the last launch, once run (kernels run when waited for),
 * was flagged with a message containing `what`; the error is sticky. */
static void expect_flagged(const char *what)
{
    cr_assert_neq(cudaDeviceSynchronize(), cudaSuccess, "the simulator did not flag it");
    cr_assert_neq(cudaGetLastError(), cudaSuccess, "the error is not sticky");
    const char *msg = cudasim_last_error();
    cr_assert(msg && strstr(msg, what), "flagged as \"%s\", expected \"%s\"", msg ? msg : "", what);
    cudasim_clear_error();
}

Test(cudasim, missing_barrier_makes_orders_disagree)
{
    enum { N = 96 };
    float *in = dev_floats(N, 1), *out = dev_floats(N, 0), got[2][N];
    for (int with_barrier = 1; with_barrier >= 0; with_barrier--) {
        for (int o = 0; o < 2; o++) {
            cudasim_set_order(o);
            cudasim_rotate(out, in, N, with_barrier);
            cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
            cudaMemcpy(got[o], out, sizeof got[o], cudaMemcpyDeviceToHost);
        }
        if (with_barrier) {
            for (int i = 0; i < N; i++) cr_assert_eq(got[0][i], (float)((i + 1) % N + 1));
            cr_assert(memcmp(got[0], got[1], sizeof got[0]) == 0);
        } else {
            cr_assert(memcmp(got[0], got[1], sizeof got[0]) != 0,
                      "without the barrier both orders still agree");
        }
    }
    cudasim_set_order(0);
    cudaFree(in), cudaFree(out);
}

static int in_child(void (*child)(const void *), const void *arg, char *out, size_t cap);

/* The out-of-bounds kernels. Without AddressSanitizer the simulator's guard
 * bytes flag them, with a message naming the block overrun. Under it the
 * access ends the process with the sanitizer's report when the kernel runs
 * (at the synchronization), so the kernel runs in a child that must exit 1
 * with a report naming the kind of overflow, the kernel and its file
 * (broken.cu) and the object overrun: an unrelated failure (an earlier
 * error, another sanitizer's report) does not pass. */
static void expect_out_of_bounds(void (*launch)(const void *), const void *ctx, const char *flagged,
                                 const char *const asan[])
{
    fprintf(stderr, "cudasim test: an out-of-bounds report is expected next\n");
#ifdef __SANITIZE_ADDRESS__
    (void)flagged;
    static char out[1 << 16];
    int status = in_child(launch, ctx, out, sizeof out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x; stderr:\n%s", status, out);
    for (int i = 0; asan[i]; i++)
        cr_expect(strstr(out, asan[i]) != NULL, "the report lacks \"%s\":\n%s", asan[i], out);
#else
    (void)asan;
    launch(ctx);
    expect_flagged(flagged);
#endif
}

struct buffers { float *out, *in; int n; };

static void double_off_by_one(const void *ctx)
{
    const struct buffers *b = ctx;
    cudasim_double(b->out, b->in, b->n, 1);
    cudaDeviceSynchronize();
}

static void shared_overflow(const void *ctx)
{
    const struct buffers *b = ctx;
    cudasim_shared_overflow(b->out, b->n);
    cudaDeviceSynchronize();
}

Test(cudasim, off_by_one_at_ragged_edge_is_flagged)
{
    enum { N = 100 }; /* not a multiple of the block size 64 */
    float *in = dev_floats(N, 0), *out = dev_floats(N, 0);
    cudasim_double(out, in, N, 0);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess, "the correct twin was flagged");
    struct buffers b = {out, in, N};
    /* Device memory is poisoned around each block (cudasim.h), so ASan
     * reports the read past it as use-after-poison, naming the kernel. */
    const char *const asan[] = {"ERROR: AddressSanitizer: use-after-poison",
                                "SUMMARY: AddressSanitizer: use-after-poison tests/cudasim/broken.cu:",
                                " in double_kernel(", NULL};
    expect_out_of_bounds(double_off_by_one, &b, "past the end of the 400-byte cudaMalloc block", asan);
    cudaFree(in), cudaFree(out);
}

Test(cudasim, shared_memory_overflow_is_flagged)
{
    float *out = dev_floats(32, 0);
    struct buffers b = {out, NULL, 32};
    const char *const asan[] = {"ERROR: AddressSanitizer: heap-buffer-overflow",
                                "SUMMARY: AddressSanitizer: heap-buffer-overflow tests/cudasim/broken.cu:",
                                " in shared_overflow_kernel(", "128-byte region", NULL};
    expect_out_of_bounds(shared_overflow, &b, "past the end of the 128-byte dynamic shared memory", asan);
    cudaFree(out);
}

#ifdef __SANITIZE_ADDRESS__
static void static_shared_overflow(const void *ctx)
{
    const struct buffers *b = ctx;
    cudasim_static_shared_overflow(b->out, b->n);
    cudaDeviceSynchronize();
}

/* Static __shared__ arrays have redzones only under AddressSanitizer. */
Test(cudasim, static_shared_overflow_is_flagged)
{
    float *out = dev_floats(32, 0);
    struct buffers b = {out, NULL, 32};
    const char *const asan[] = {"ERROR: AddressSanitizer: global-buffer-overflow",
                                "SUMMARY: AddressSanitizer: global-buffer-overflow tests/cudasim/broken.cu:",
                                " in static_shared_overflow_kernel(",
                                "global variable 's' defined in 'tests/cudasim/broken.cu:", NULL};
    expect_out_of_bounds(static_shared_overflow, &b, NULL, asan);
    cudaFree(out);
}
#endif

Test(cudasim, barrier_after_early_exit_is_flagged, .timeout = 10)
{
    float *out = dev_floats(64, 0);
    cudasim_early_exit(out);
    expect_flagged("reached by 32 of 64 threads");
    cudaFree(out);
}

/* A launcher that finds an earlier failure pending (reported by the
 * synchronization, sticky as on a GPU) returns it as an error naming its
 * file and line, never exiting: the trainer then stops cleanly. */
Test(cudasim, a_failed_launch_is_an_error_naming_the_launcher, .timeout = 10)
{
    float *out = dev_floats(64, 0);
    cudasim_split_barrier(out);
    cr_expect_eq(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    cr_expect_eq(gelu_forward_cuda(out, out, 64, 0), -1, "the pending failure was not reported");
    cr_expect(strstr(err_msg(), "kernels/gelu.cu:") && strstr(err_msg(), "in cudaGetLastError()"), "%s",
              err_msg());
    cudasim_clear_error();
    cr_expect_eq(gelu_forward_cuda(out, out, 64, 0), 0, "%s", err_msg());
    cudaFree(out);
}

Test(cudasim, two_different_barriers_are_flagged, .timeout = 10)
{
    float *out = dev_floats(64, 0);
    cudasim_split_barrier(out);
    expect_flagged("divergent barrier");
    cudaFree(out);
}

Test(cudasim, shuffle_missing_lanes_is_flagged, .timeout = 10)
{
    float *out = dev_floats(32, 0);
    cudasim_partial_shuffle(out);
    expect_flagged("waits forever in __shfl_xor_sync");
    cudaFree(out);
}

Test(cudasim, warp_builtins_follow_cuda)
{
    enum { T = 48 };
    float *out = dev_floats(T * 9, 0), h[T * 9], in_h[T];
    unsigned *bits, hb[T];
    int *counter, zero = 0;
    for (int t = 0; t < T; t++) in_h[t] = 1.0f + (float)t / 256; /* odd t: a tie for bf16 */
    float *in = dev_floats(T, 0);
    cudaMemcpy(in, in_h, sizeof in_h, cudaMemcpyHostToDevice);
    cudaMalloc((void **)&bits, sizeof hb);
    cudaMalloc((void **)&counter, sizeof zero);
    cudaMemcpy(counter, &zero, sizeof zero, cudaMemcpyHostToDevice);
    cudasim_builtins(out, bits, counter, in);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost);
    cudaMemcpy(hb, bits, sizeof hb, cudaMemcpyDeviceToHost);
    int seen[T] = {0};
    for (int t = 0; t < T; t++) {
        int lane = t % 32, base = t - lane, nl = t < 32 ? 32 : T - 32;
        const float *o = h + t * 9;
        cr_expect_eq(o[0], (float)((base + 3) * 10), "shfl t=%d", t);
        cr_expect_eq(o[1], (float)((t ^ 1) * 10), "xor t=%d", t);
        int down = lane % 8 == 7 ? t : t + 1;
        cr_expect_eq(o[2], (float)(down * 10), "down t=%d", t);
        cr_expect_eq(o[3], (float)((lane < 2 ? t : t - 2) * 10), "up t=%d", t);
        unsigned odd = 0;
        for (int l = 1; l < nl; l += 2) odd |= 1u << l;
        cr_expect_eq(hb[t], odd, "ballot t=%d: %08x", t, hb[t]);
        cr_expect_eq(o[5], 1.0f, "any t=%d", t); /* both warps have a lane 5 */
        cr_expect_eq(o[6], t < 32 ? 1.0f : 0.0f, "all t=%d", t);
        cr_assert(o[7] >= 0 && o[7] < T && !seen[(int)o[7]]++, "atomicAdd t=%d", t);
        /* bf16 keeps 1 + m/128; 1 + t/256 with t odd is a tie, rounded to even m. */
        int k = t % 2 == 0 ? t : ((t - 1) / 2 % 2 == 0 ? t - 1 : t + 1);
        cr_expect_eq(o[8], 1.0f + (float)k / 256, "bf16 t=%d: %.9g", t, o[8]);
    }
    cudaFree(out), cudaFree(in), cudaFree(bits), cudaFree(counter);
}

/* ---- wmma (include/mma.h) ---------------------------------------------------- */

static bf16 *dev_bf16(const float *h, size_t n)
{
    bf16 *d, *tmp = malloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++) tmp[i] = (bf16){bf16_bits(h[i])};
    must(cudaMalloc((void **)&d, n * sizeof *d));
    must(cudaMemcpy(d, tmp, n * sizeof *d, cudaMemcpyHostToDevice));
    free(tmp);
    return d;
}

/* C = A B through 16 x 16 x 16 fragments, every layout, both orders: the
 * CPU's fp32 sums in k order of the same bf16 values, bit for bit. */
Test(cudasim, wmma_products_follow_the_documented_layouts)
{
    enum { M = 32, N = 48, K = 64 };
    static float a[M * K], b[K * N], at[M * K], bt[K * N], ref[M * N], got[M * N];
    for (int i = 0; i < M * K; i++) a[i] = round_bf16((float)((i * 37) % 23 - 11) / 7);
    for (int i = 0; i < K * N; i++) b[i] = round_bf16((float)((i * 29) % 19 - 9) / 5);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < K; c++) at[c * M + r] = a[r * K + c];
    for (int r = 0; r < K; r++)
        for (int c = 0; c < N; c++) bt[c * K + r] = b[r * N + c];
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += a[r * K + k] * b[k * N + c];
            ref[r * N + c] = s;
        }
    bf16 *da = dev_bf16(a, M * K), *dat = dev_bf16(at, M * K), *db = dev_bf16(b, K * N), *dbt = dev_bf16(bt, K * N);
    float *dc;
    must(cudaMalloc((void **)&dc, sizeof got));
    for (int layout = 0; layout < 4; layout++)
        for (int o = 0; o < 2; o++) {
            int a_col = layout & 1, b_col = layout >> 1;
            cudasim_set_order(o);
            cudasim_wmma_gemm(dc, a_col ? dat : da, b_col ? dbt : db, M, N, K, a_col, b_col);
            must(cudaDeviceSynchronize());
            must(cudaMemcpy(got, dc, sizeof got, cudaMemcpyDeviceToHost));
            for (int i = 0; i < M * N; i++)
                cr_assert_eq(got[i], ref[i], "layout a %s b %s order %d: c[%d] = %.9g, CPU %.9g", a_col ? "col" : "row",
                             b_col ? "col" : "row", o, i, got[i], ref[i]);
        }
    cudasim_set_order(0);
    cudaFree(da), cudaFree(dat), cudaFree(db), cudaFree(dbt), cudaFree(dc);
}

Test(cudasim, wmma_misuse_is_flagged, .timeout = 10)
{
    static const char *what[5] = {NULL, "not 256-bit aligned", "not a multiple of 16 bytes", "warp-collective",
                                  "call different wmma operations"};
    float h[512];
    for (int i = 0; i < 512; i++) h[i] = 1.0f;
    bf16 *a = dev_bf16(h, 512);
    float *c;
    must(cudaMalloc((void **)&c, 256 * sizeof(float)));
    cudasim_wmma_misuse(c, a, 0);
    must(cudaDeviceSynchronize());
    for (int how = 1; how <= 4; how++) {
        cudasim_wmma_misuse(c, a, how);
        expect_flagged(what[how]);
    }
    cudaFree(a), cudaFree(c);
}

/* Plain shared-memory accesses and another lane's wmma load or store are
 * ordered only by a __syncwarp, before a load or a store (reads after
 * writes, writes after reads) and after either: without it the two lane
 * orders disagree, for each of the four hazards. */
Test(cudasim, wmma_without_syncwarp_makes_orders_disagree)
{
    static const char *name[4] = {"writes, then a load", "a load, then writes", "reads, then a store",
                                  "a store, then reads"};
    float eye[256], got[2][256];
    for (int i = 0; i < 256; i++) eye[i] = i / 16 == i % 16;
    bf16 *d_eye = dev_bf16(eye, 256);
    float *c;
    must(cudaMalloc((void **)&c, sizeof got[0]));
    for (int hazard = 0; hazard < 4; hazard++)
        for (int with_sync = 1; with_sync >= 0; with_sync--) {
            for (int o = 0; o < 2; o++) {
                cudasim_set_order(o);
                cudasim_wmma_unsynced(c, d_eye, hazard, with_sync);
                must(cudaDeviceSynchronize());
                must(cudaMemcpy(got[o], c, sizeof got[o], cudaMemcpyDeviceToHost));
            }
            if (with_sync)
                for (int o = 0; o < 2; o++)
                    for (int i = 0; i < 256; i++)
                        cr_assert_eq(got[o][i], 1.0f + (float)(i / 16), "%s, order %d: c[%d] = %g", name[hazard], o,
                                     i, got[o][i]);
            else
                cr_assert(memcmp(got[0], got[1], sizeof got[0]) != 0, "%s without the __syncwarp: both orders agree",
                          name[hazard]);
        }
    cudasim_set_order(0);
    cudaFree(d_eye), cudaFree(c);
}

/* A kernel that assumes a GPU's fragment layout gets wrong numbers here. */
Test(cudasim, wmma_fragment_layout_is_not_promised)
{
    float got[256];
    float *c;
    must(cudaMalloc((void **)&c, sizeof got));
    cudasim_wmma_mapping(c);
    must(cudaDeviceSynchronize());
    must(cudaMemcpy(got, c, sizeof got, cudaMemcpyDeviceToHost));
    int right = 0;
    for (int i = 0; i < 256; i++) right += got[i] == (float)(i / 16);
    cr_assert_lt(right, 256, "the guessed layout held");
    cudaFree(c);
}

Test(cudasim, barrier_reductions_follow_cuda)
{
    float *out = dev_floats(144, 0), h[144];
    cudasim_barrier_reductions(out);
    must(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    for (int t = 0; t < 48; t++) {
        cr_expect_eq(h[t], 16.0f, "__syncthreads_count t=%d: %g", t, h[t]);
        cr_expect_eq(h[48 + t], 0.0f, "__syncthreads_and t=%d", t);
        cr_expect_eq(h[96 + t], 1.0f, "__syncthreads_or t=%d", t);
    }
    cudaFree(out);
}

/* ---- races between blocks --------------------------------------------------- */

Test(cudasim, race_between_blocks_makes_orders_disagree)
{
    enum { N = 8 };
    float *out, got[2][2][2 * N];
    must(cudaMalloc((void **)&out, sizeof got[0][0]));
    for (int racy = 0; racy < 2; racy++)
        for (int o = 0; o < 2; o++) {
            cudasim_set_order(o);
            must(cudaMemset(out, 0, sizeof got[0][0]));
            cudasim_neighbour(out, N, racy, 0);
            must(cudaMemcpy(got[racy][o], out, sizeof got[0][0], cudaMemcpyDeviceToHost));
        }
    cudasim_set_order(0);
    for (int b = 0; b < N; b++) cr_expect_eq(got[0][0][N + b], (float)(b + 1), "own slot b=%d", b);
    cr_assert(memcmp(got[0][0], got[0][1], sizeof got[0][0]) == 0, "the race-free twin disagrees");
    cr_assert(memcmp(got[1][0], got[1][1], sizeof got[1][0]) != 0,
              "a block reading its neighbour's slot gives the same result in both block orders");
    cudaFree(out);
}

/* ---- device memory is out of the host's reach ------------------------------ */

/* Runs child(arg) in a child process, its stdout and stderr captured into
 * out (the rest read and dropped); returns the wait status. */
static int in_child(void (*child)(const void *), const void *arg, char *out, size_t cap)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        child(arg);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    char sink[4096];
    while ((r = read(fd[0], got + 1 < cap ? out + got : sink, got + 1 < cap ? cap - 1 - got : sizeof sink)) > 0)
        if (got + 1 < cap) got += (size_t)r;
    out[got] = 0;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

static void host_reads(const void *d)
{
    volatile float x = ((const volatile float *)d)[0];
    (void)x;
}
static void host_writes(const void *d) { ((volatile float *)d)[1] = 1.0f; }

/* Dies of SIGSEGV (under ASan: its SEGV report, exit 1) after saying what. */
static void expect_crash(void (*fn)(const void *), const char *what)
{
    float *d = dev_floats(16, 0), h[16];
    char out[8192];
    int status = in_child(fn, d, out, sizeof out);
#ifdef __SANITIZE_ADDRESS__
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x; stderr: %s", status, out);
    cr_assert(strstr(out, "AddressSanitizer: SEGV"), "no ASan report: %s", out);
#else
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x; stderr: %s", status, out);
#endif
    cr_assert(strstr(out, what), "expected \"%s\" in: %s", what, out);
    /* The API still reaches it. */
    must(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    cr_assert_eq(h[15], 15.0f);
    cudaFree(d);
}

Test(cudasim, host_read_of_device_memory_crashes)
{
    expect_crash(host_reads, "cudasim: host code reads device memory at");
    expect_crash(host_reads, "(byte 0 of the 64-byte cudaMalloc block at");
}

Test(cudasim, host_write_of_device_memory_crashes)
{
    expect_crash(host_writes, "cudasim: host code writes device memory at");
    expect_crash(host_writes, "(byte 4 of the 64-byte cudaMalloc block at");
}

Test(cudasim, host_pointer_passed_to_a_kernel_is_flagged)
{
    float host[16] = {0}, *out = dev_floats(16, 0);
    cudasim_double(out, host, 16, 0);
    expect_flagged("cudasim: double_kernel: argument 2 is");
    cudasim_double(out, host, 16, 0);
    expect_flagged("which is not device memory (host memory)");
    cudaFree(out);
}

Test(cudasim, copies_check_direction_and_bounds)
{
    float *d = dev_floats(16, 0), h[17];
    cr_expect_eq(cudaMemcpy(h, d, 17 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    expect_message("68 bytes at the source");
    expect_message("run 4 bytes past the end of the 64-byte cudaMalloc block");
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidValue);
    cr_expect_eq(cudaGetLastError(), cudaSuccess, "an argument error is not sticky");
    cr_expect_eq(cudaMemcpy(d, h, sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    expect_message("is device memory, not host memory");
    cr_expect_eq(cudaMemcpy(h, d, sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    expect_message("is host memory, not device memory");
    cr_expect_eq(cudaMemset(d + 8, 0, 9 * sizeof(float)), cudaErrorInvalidValue);
    expect_message("run 4 bytes past the end");
    must(cudaMemcpy(h, d, 16 * sizeof(float), cudaMemcpyDefault));
    cr_expect_eq(h[3], 3.0f);
    cudaFree(d);
    cr_expect_eq(cudaFree(d), cudaErrorInvalidValue, "a double free");
    expect_message("not the start of a live device allocation");
}

/* ---- streams: work runs when waited for ------------------------------------- */

/* The device-to-host copy's destination is NaN until the stream is
 * synchronized: reading it early is the missing synchronization. */
Test(cudasim, reading_an_async_copy_before_synchronizing_reads_nan)
{
    enum { N = 100 };
    float *in = dev_floats(N, 1), *out = dev_floats(N, 0), h[N];
    uint32_t bits;
    cudaStream_t s;
    must(cudaStreamCreate(&s));
    for (int i = 0; i < N; i++) h[i] = -1.0f;
    cudasim_double_on(out, in, N, s);
    must(cudaMemcpyAsync(h, out, sizeof h, cudaMemcpyDeviceToHost, s));
    for (int i = 0; i < N; i++) {
        memcpy(&bits, &h[i], 4);
        cr_assert_eq(bits, 0xffffffffu, "h[%d] = %g before the stream was synchronized", i, h[i]);
    }
    must(cudaStreamSynchronize(s));
    for (int i = 0; i < N; i++) cr_assert_eq(h[i], 2.0f * (i + 1), "h[%d] = %g after", i, h[i]);
    must(cudaStreamDestroy(s));
    cudaFree(in), cudaFree(out);
}

/* A kernel on a non-blocking stream has not run when a blocking copy on the
 * legacy stream reads its output; on a blocking stream it has (the legacy
 * stream waits for those). */
Test(cudasim, a_blocking_copy_waits_for_the_legacy_stream_only)
{
    enum { N = 64 };
    float *in = dev_floats(N, 1), *out = dev_floats(N, 0), h[N];
    cudaStream_t nb, bl;
    must(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    must(cudaStreamCreate(&bl));
    cudasim_double_on(out, in, N, nb);
    must(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    cr_assert_eq(h[5], 5.0f, "the non-blocking stream's kernel ran before anyone waited for it");
    must(cudaStreamSynchronize(nb));
    must(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    cr_assert_eq(h[5], 12.0f);
    must(cudaMemset(out, 0, sizeof h));
    cudasim_double_on(out, in, N, bl);
    must(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    cr_assert_eq(h[5], 12.0f, "the legacy stream did not wait for the blocking stream");
    cudaStreamDestroy(nb), cudaStreamDestroy(bl);
    cudaFree(in), cudaFree(out);
}

/* cudaStreamWaitEvent makes a copy on one stream wait for a kernel on
 * another; without it the copy reads the old contents. */
Test(cudasim, an_event_orders_two_streams)
{
    enum { N = 64 };
    float *in = dev_floats(N, 1), *out = dev_floats(N, 0), *copy = dev_floats(N, 0), h[N];
    cudaStream_t a, b;
    cudaEvent_t done;
    must(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    must(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    must(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    for (int wait = 0; wait < 2; wait++) {
        must(cudaMemset(out, 0, sizeof h));
        must(cudaDeviceSynchronize());
        cudasim_double_on(out, in, N, a);
        must(cudaEventRecord(done, a));
        if (wait) must(cudaStreamWaitEvent(b, done, 0));
        must(cudaMemcpyAsync(copy, out, sizeof h, cudaMemcpyDeviceToDevice, b));
        must(cudaStreamSynchronize(b));
        must(cudaMemcpyAsync(h, copy, sizeof h, cudaMemcpyDeviceToHost, b));
        must(cudaStreamSynchronize(b));
        if (wait) cr_assert_eq(h[7], 16.0f, "the copy did not wait for the event");
        else cr_assert_eq(h[7], 0.0f, "the copy saw a kernel nothing ordered it after");
        must(cudaDeviceSynchronize());
    }
    cudaEventDestroy(done);
    cudaStreamDestroy(a), cudaStreamDestroy(b);
    cudaFree(in), cudaFree(out), cudaFree(copy);
}

/* Two streams writing one buffer with nothing between them: the order of
 * independent work flips with cudasim_set_order, so the race shows; an
 * event between them fixes the order. */
Test(cudasim, unordered_streams_make_orders_disagree)
{
    unsigned char *d, got[2][2];
    cudaStream_t a, b;
    cudaEvent_t e;
    must(cudaMalloc((void **)&d, 1));
    must(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    must(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    must(cudaEventCreate(&e));
    for (int ordered = 0; ordered < 2; ordered++)
        for (int o = 0; o < 2; o++) {
            cudasim_set_order(o);
            must(cudaMemsetAsync(d, 0x11, 1, a));
            must(cudaEventRecord(e, a));
            if (ordered) must(cudaStreamWaitEvent(b, e, 0));
            must(cudaMemsetAsync(d, 0x22, 1, b));
            must(cudaDeviceSynchronize());
            must(cudaMemcpy(&got[ordered][o], d, 1, cudaMemcpyDeviceToHost));
        }
    cudasim_set_order(0);
    cr_expect_eq(got[1][0], 0x22);
    cr_expect_eq(got[1][1], 0x22, "the event did not order the streams");
    cr_expect_neq(got[0][0], got[0][1], "unordered streams gave the same result in both orders");
    cudaEventDestroy(e);
    cudaStreamDestroy(a), cudaStreamDestroy(b);
    cudaFree(d);
}

Test(cudasim, events_complete_when_their_stream_gets_there)
{
    float *in = dev_floats(64, 1), *out = dev_floats(64, 0), ms = -1;
    cudaEvent_t start, stop;
    must(cudaEventCreate(&start));
    must(cudaEventCreate(&stop));
    cr_expect_eq(cudaEventQuery(stop), cudaSuccess, "a never recorded event counts as complete");
    must(cudaEventRecord(start, 0));
    cudasim_double_on(out, in, 64, 0);
    must(cudaEventRecord(stop, 0));
    cr_expect_eq(cudaEventElapsedTime(&ms, start, stop), cudaErrorNotReady);
    expect_message("an event has not completed");
    cr_expect_eq(cudaEventQuery(stop), cudaErrorNotReady);
    cr_expect_eq(cudaEventQuery(stop), cudaSuccess, "a query lets queued work run");
    must(cudaEventSynchronize(stop));
    must(cudaEventElapsedTime(&ms, start, stop));
    cr_expect(ms >= 0.0f, "%g ms", ms);
    cudaEventDestroy(start), cudaEventDestroy(stop);
    cudaFree(in), cudaFree(out);
}

Test(cudasim, stream_ordered_allocation)
{
    cudaStream_t s;
    float *p, h[8];
    must(cudaStreamCreate(&s));
    must(cudaMallocAsync((void **)&p, sizeof h, s));
    cr_assert(cudasim_is_device_pointer(p));
    must(cudaMemsetAsync(p, 0, sizeof h, s));
    must(cudaMemcpyAsync(h, p, sizeof h, cudaMemcpyDeviceToHost, s));
    must(cudaFreeAsync(p, s));
    cr_assert(cudasim_is_device_pointer(p), "freed before its stream got there");
    cr_expect_eq(cudaFreeAsync(p, s), cudaErrorInvalidValue, "freed twice");
    must(cudaStreamSynchronize(s));
    cr_assert(!cudasim_is_device_pointer(p));
    cr_assert_eq(h[7], 0.0f);
    cudaStreamDestroy(s);
}

/* ---- errors and the device ------------------------------------------------------ */

Test(cudasim, launch_configuration_errors_are_not_sticky)
{
    float *out = dev_floats(64, 0);
    cudasim_launch_config(out, 1, 2048, 0);
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
    expect_message("invalid launch configuration: grid (1,1,1), block (2048,1,1)");
    cudasim_launch_config(out, 0, 32, 0);
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
    cudasim_launch_config(out, 1, 32, 64 << 10);
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidValue);
    expect_message("65536 bytes of dynamic shared memory exceed the 49152 allowed");
    cr_expect_eq(cudaGetLastError(), cudaSuccess);
    must(cudaDeviceSynchronize());
    cudaFree(out);
}

Test(cudasim, device_faults_are_sticky_until_cleared)
{
    float *out = dev_floats(64, 0), *p;
    cudasim_early_exit(out);
    cr_expect_eq(cudaStreamSynchronize(0), cudaErrorLaunchFailure);
    cr_expect_eq(cudaMalloc((void **)&p, 4), cudaErrorLaunchFailure);
    cr_expect_eq(cudaGetLastError(), cudaErrorLaunchFailure);
    cr_expect(strstr(cudaGetErrorString(cudaErrorLaunchFailure), "reached by 32 of 64 threads"), "%s",
              cudaGetErrorString(cudaErrorLaunchFailure));
    cudasim_clear_error();
    must(cudaMalloc((void **)&p, 4));
    cudaFree(p), cudaFree(out);
}

Test(cudasim, one_simulated_device)
{
    int n = 0, dev = -1;
    struct cudaDeviceProp prop;
    must(cudaGetDeviceCount(&n));
    cr_expect_eq(n, 1);
    must(cudaSetDevice(0));
    must(cudaGetDevice(&dev));
    cr_expect_eq(dev, 0);
    cr_expect_eq(cudaSetDevice(1), cudaErrorInvalidDevice);
    must(cudaGetDeviceProperties(&prop, 0));
    cr_expect(strstr(prop.name, "cudasim"), "%s", prop.name);
    cr_expect_eq(prop.warpSize, 32);
    cr_expect_eq(prop.maxThreadsPerBlock, 1024);
    cr_expect_eq(prop.major, 9);
    cr_expect_eq(cudaGetDeviceProperties(&prop, 1), cudaErrorInvalidDevice);
}

/* ---- graphs ----------------------------------------------------------------------- */

/* Work issued to a capturing stream does not run; each launch of the
 * instantiated graph runs it again, reading device memory as it is then
 * (the kernel's arguments as captured). */
Test(cudasim, a_captured_graph_replays_its_work_at_each_launch)
{
    enum { N = 64 };
    float *in = dev_floats(N, 1), *out = dev_floats(N, 0), *copy = dev_floats(N, 0), h[N];
    cudaStream_t s;
    cudaGraph_t g;
    cudaGraphExec_t x;
    enum cudaStreamCaptureStatus status;
    must(cudaStreamCreate(&s));
    must(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    must(cudaStreamIsCapturing(s, &status));
    cr_expect_eq(status, cudaStreamCaptureStatusActive);
    cudasim_double_on(out, in, N, s);
    must(cudaMemcpyAsync(copy, out, sizeof h, cudaMemcpyDeviceToDevice, s));
    must(cudaStreamEndCapture(s, &g));
    must(cudaStreamSynchronize(s));
    must(cudaMemcpy(h, copy, sizeof h, cudaMemcpyDeviceToHost));
    cr_expect_eq(h[3], 3.0f, "captured work ran without a launch");
    must(cudaGraphInstantiate(&x, g, 0));
    must(cudaGraphDestroy(g));
    for (int r = 1; r <= 2; r++) {
        float fresh[N];
        for (int i = 0; i < N; i++) fresh[i] = (float)(10 * r + i);
        must(cudaMemcpy(in, fresh, sizeof fresh, cudaMemcpyHostToDevice));
        must(cudaGraphLaunch(x, s));
        must(cudaStreamSynchronize(s));
        must(cudaMemcpy(h, copy, sizeof h, cudaMemcpyDeviceToHost));
        cr_expect_eq(h[3], 2.0f * (float)(10 * r + 3), "replay %d did not read the input as it is now", r);
    }
    must(cudaGraphExecDestroy(x));
    cr_expect_eq(cudaGraphLaunch(x, s), cudaErrorInvalidValue, "a destroyed graph launched");
    cudaStreamDestroy(s);
    cudaFree(in), cudaFree(out), cudaFree(copy);
}

typedef struct {
    cudaStream_t s;
    float *d, *h;
} CaptureCtx;

static cudaError_t malloc_in_capture(const CaptureCtx *c)
{
    (void)c;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, 64);
    if (p) cudaFree(p);
    return e;
}
static cudaError_t sync_in_capture(const CaptureCtx *c) { return cudaStreamSynchronize(c->s); }
static cudaError_t blocking_copy_in_capture(const CaptureCtx *c)
{
    return cudaMemcpy(c->d, c->h, 16, cudaMemcpyHostToDevice);
}
static cudaError_t pageable_copy_in_capture(const CaptureCtx *c)
{
    return cudaMemcpyAsync(c->d, c->h, 16, cudaMemcpyHostToDevice, c->s);
}
static cudaError_t legacy_launch_in_capture(const CaptureCtx *c)
{
    cudasim_double_on(c->d, c->d, 4, 0);
    return cudaGetLastError();
}
static cudaError_t event_in_capture(const CaptureCtx *c)
{
    cudaEvent_t ev;
    must(cudaEventCreate(&ev));
    cudaError_t e = cudaEventRecord(ev, c->s);
    cudaEventDestroy(ev);
    return e;
}

/* CUDA's capture rules: each breach fails the call with CUDA's error and
 * invalidates the capture, so cudaStreamEndCapture returns no graph. */
Test(cudasim, a_capture_refuses_what_a_replay_could_not_repeat)
{
    static const struct {
        const char *what;
        cudaError_t (*breach)(const CaptureCtx *);
        cudaError_t want;
    } cases[] = {
        {"cudaMalloc", malloc_in_capture, cudaErrorStreamCaptureUnsupported},
        {"cudaStreamSynchronize", sync_in_capture, cudaErrorStreamCaptureUnsupported},
        {"a blocking cudaMemcpy", blocking_copy_in_capture, cudaErrorStreamCaptureUnsupported},
        {"a copy from pageable memory", pageable_copy_in_capture, cudaErrorStreamCaptureUnsupported},
        {"a legacy-stream launch", legacy_launch_in_capture, cudaErrorStreamCaptureImplicit},
        {"an event record", event_in_capture, cudaErrorStreamCaptureUnsupported},
    };
    float host[4] = {1, 2, 3, 4};
    CaptureCtx c = {NULL, dev_floats(4, 0), host};
    must(cudaStreamCreate(&c.s));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cudaGraph_t g = NULL;
        must(cudaStreamBeginCapture(c.s, cudaStreamCaptureModeGlobal));
        cudasim_double_on(c.d, c.d, 4, c.s);
        cr_expect_eq(cases[i].breach(&c), cases[i].want, "%s in a capture: not refused as CUDA does", cases[i].what);
        cudaGetLastError();
        cr_expect_eq(cudaStreamEndCapture(c.s, &g), cudaErrorStreamCaptureInvalidated,
                     "%s left the capture valid", cases[i].what);
        cr_expect_null(g);
        cudaGetLastError();
    }
    must(cudaStreamSynchronize(c.s));
    cudaStreamDestroy(c.s);
    cudaFree(c.d);
}

/* ---- each self-test needs its check ------------------------------------------- */

/* This binary, running one test (argv[0]) with CUDASIM_DISABLE=argv[1]. */
static void run_test(const void *argv)
{
    const char *const *a = argv;
    char exe[4096], filter[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) _exit(126);
    exe[n] = 0;
    snprintf(filter, sizeof filter, "--filter=%s", a[0]);
    setenv("CUDASIM_DISABLE", a[1], 1);
    unsetenv("BXFI_MAP"); /* else Criterion takes it for one of its workers */
    execl(exe, exe, filter, "--jobs=1", (char *)NULL);
    _exit(127);
}

static int run_without(const char *check, const char *name, char *out, size_t cap)
{
    const char *argv[2] = {name, check};
    return in_child(run_test, argv, out, cap);
}

/* Switching off the simulator's check (CUDASIM_DISABLE) makes the test
 * that relies on it fail, and the test passes with it on: the tests above
 * prove the checks, not luck. */
Test(cudasim_checks, each_self_test_fails_without_its_check, .timeout = 120)
{
    static const char *const cases[][2] = {
        {"protect", "cudasim/host_read_of_device_memory_crashes"},
        {"protect", "cudasim/host_write_of_device_memory_crashes"},
        {"async", "cudasim/reading_an_async_copy_before_synchronizing_reads_nan"},
        {"async", "cudasim/a_blocking_copy_waits_for_the_legacy_stream_only"},
        {"async", "cudasim/an_event_orders_two_streams"},
        {"async", "cudasim/events_complete_when_their_stream_gets_there"},
        {"async", "cudasim/stream_ordered_allocation"},
        {"async", "cublas/work_runs_on_the_handles_stream"},
        {"stream-order", "cudasim/unordered_streams_make_orders_disagree"},
        {"block-order", "cudasim/race_between_blocks_makes_orders_disagree"},
        {"thread-order", "cudasim/missing_barrier_makes_orders_disagree"},
        {"pointer-args", "cudasim/host_pointer_passed_to_a_kernel_is_flagged"},
#ifndef __SANITIZE_ADDRESS__
        {"guards", "cudasim/off_by_one_at_ragged_edge_is_flagged"},
        {"guards", "cudasim/shared_memory_overflow_is_flagged"},
#endif
    };
    static char out[1 << 16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int with = run_without("", cases[i][1], out, sizeof out);
        cr_expect(WIFEXITED(with) && WEXITSTATUS(with) == 0, "%s fails with every check on (status %#x):\n%s",
                  cases[i][1], with, out);
        cr_expect(strstr(out, "Tested: 1 "), "%s did not run:\n%s", cases[i][1], out);
        int without = run_without(cases[i][0], cases[i][1], out, sizeof out);
        cr_expect(!(WIFEXITED(without) && WEXITSTATUS(without) == 0),
                  "%s still passes with CUDASIM_DISABLE=%s:\n%s", cases[i][1], cases[i][0], out);
        cr_expect(strstr(out, "Tested: 1 ") && strstr(out, "Failing: 1 "),
                  "%s with CUDASIM_DISABLE=%s did not fail as a test:\n%s", cases[i][1], cases[i][0], out);
    }
}
