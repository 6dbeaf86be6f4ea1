/* The simulator finds the bugs that matter: each deliberately broken kernel
 * of broken.cu is flagged (an error, a disagreement between thread orders,
 * or under AddressSanitizer the sanitizer's report and exit), never a hang;
 * its correct twin passes; the warp built-ins compute what CUDA defines. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cudasim.h"
#include "kernels/kernels.h"
#include "src/core/err.h"

void cudasim_rotate(float *out, const float *in, int n, int with_barrier);
void cudasim_double(float *out, const float *in, int n, int off_by_one);
void cudasim_early_exit(float *out);
void cudasim_split_barrier(float *out);
void cudasim_partial_shuffle(float *out);
void cudasim_shared_overflow(float *out, int n);
void cudasim_static_shared_overflow(float *out, int n);
void cudasim_builtins(float *out, unsigned *bits, int *counter, const float *in);

static float *dev_floats(int n, float first)
{
    float *d, h[1024];
    cr_assert(n <= 1024);
    for (int i = 0; i < n; i++) h[i] = first + (float)i;
    cr_assert_eq(cudaMalloc((void **)&d, n * sizeof(float)), cudaSuccess);
    cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice);
    return d;
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

/* Under AddressSanitizer the out-of-bounds access ends the process (exit 1)
 * with the sanitizer's report when the kernel runs (at the synchronization);
 * otherwise the guard bytes flag it. */
#ifdef __SANITIZE_ADDRESS__
#define OOB_TEST(name) Test(cudasim, name, .exit_code = 1)
#define OOB_EXPECT(what)                                 \
    do {                                                 \
        cudaDeviceSynchronize();                         \
        cr_assert_fail("AddressSanitizer did not stop it"); \
    } while (0)
#else
#define OOB_TEST(name) Test(cudasim, name)
#define OOB_EXPECT(what) expect_flagged(what)
#endif

OOB_TEST(off_by_one_at_ragged_edge_is_flagged)
{
    enum { N = 100 }; /* not a multiple of the block size 64 */
    float *in = dev_floats(N, 0), *out = dev_floats(N, 0);
    cudasim_double(out, in, N, 0);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess, "the correct twin was flagged");
    fprintf(stderr, "cudasim test: an out-of-bounds report is expected next\n");
    cudasim_double(out, in, N, 1);
    OOB_EXPECT("past the end of the 400-byte cudaMalloc block");
    cudaFree(in), cudaFree(out);
}

OOB_TEST(shared_memory_overflow_is_flagged)
{
    float *out = dev_floats(32, 0);
    fprintf(stderr, "cudasim test: an out-of-bounds report is expected next\n");
    cudasim_shared_overflow(out, 32);
    OOB_EXPECT("past the end of the 128-byte dynamic shared memory");
    cudaFree(out);
}

#ifdef __SANITIZE_ADDRESS__
/* Static __shared__ arrays have redzones only under AddressSanitizer. */
Test(cudasim, static_shared_overflow_is_flagged, .exit_code = 1)
{
    float *out = dev_floats(32, 0);
    fprintf(stderr, "cudasim test: an out-of-bounds report is expected next\n");
    cudasim_static_shared_overflow(out, 32);
    OOB_EXPECT("");
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
