/* The simulator's cuBLAS and cuBLASLt against the documented column-major
 * contract (C = alpha op(A) op(B) + beta C; op(A) m x k, op(B) k x n, C
 * m x n; element (i, j) of a matrix at j * ld + i), with hand-written inputs
 * and expectations: every transpose pair, leading dimensions larger than the
 * rows (padding NaN in A and B, so reading it shows; sentinels in C, which
 * must stay), strided batches with gaps, alpha and beta (beta = 0 with NaN
 * in C), bf16, the epilogues (the bias-gradient ones too: written, not
 * added), the documented error statuses.
 *
 * The one problem, m = 2, n = 4, k = 3:
 *   op(A) = [1 2 3]   op(B) = [1  0 2 -1]   op(A) op(B) = [10 -1  4  6]
 *           [4 5 6]           [0  1 1  2]                 [22 -1 13 12]
 *                             [3 -1 0  1] */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cudasim.h"

#define P NAN   /* padding of A and B: must never be read */
#define S 768.0f /* padding of C: must never be written (exact in bf16) */

/* op(A) stored as A (lda 4) and as A^T (lda 5). */
static const float A_N[12] = {1, 4, P, P, 2, 5, P, P, 3, 6, P, P};
static const float A_T[10] = {1, 2, 3, P, P, 4, 5, 6, P, P};
/* op(B) stored as B (ldb 5) and as B^T (ldb 6). */
static const float B_N[20] = {1, 0, 3, P, P, 0, 1, -1, P, P, 2, 1, 0, P, P, -1, 2, 1, P, P};
static const float B_T[18] = {1, 0, 2, -1, P, P, 0, 1, 1, 2, P, P, 3, -1, 0, 1, P, P};
/* C (ldc 3): NaN where the result goes, sentinels in the padding. */
static const float C_NAN[12] = {P, P, S, P, P, S, P, P, S, P, P, S};
static const float C_INIT[12] = {2, 4, S, 6, 8, S, 10, 12, S, 14, 16, S};
/* op(A) op(B), and 2 op(A) op(B) + 0.5 C_INIT. */
static const float AB[12] = {10, 22, S, -1, -1, S, 4, 13, S, 6, 12, S};
static const float AB_ALPHA_BETA[12] = {21, 46, S, 1, 2, S, 13, 32, S, 19, 32, S};

static void must(cudaError_t e) { cr_assert_eq(e, cudaSuccess, "%s", cudaGetErrorString(e)); }
static void ok(cublasStatus_t s) { cr_assert_eq(s, CUBLAS_STATUS_SUCCESS, "%s", cublasGetStatusName(s)); }

static void *dev(const void *h, size_t bytes)
{
    void *d;
    must(cudaMalloc(&d, bytes));
    must(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

static void expect_floats(const float *d, const float *want, int n, const char *what)
{
    float got[64];
    cr_assert(n <= 64);
    must(cudaMemcpy(got, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        cr_expect(got[i] == want[i] || (isnan(got[i]) && isnan(want[i])), "%s: [%d] = %g, want %g", what, i,
                  got[i], want[i]);
}

/* bf16 of values exactly representable (small integers): the top 16 bits. */
static uint16_t bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static float unbf(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void *dev_bf16(const float *h, int n)
{
    uint16_t b[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++) {
        b[i] = isnan(h[i]) ? 0x7fc0 : bf(h[i]);
        cr_assert(isnan(h[i]) || unbf(b[i]) == h[i], "%g is not a bf16 value", h[i]);
    }
    return dev(b, (size_t)n * 2);
}

/* The operands for a transpose pair. */
struct operands {
    const float *a, *b;
    int lda, ldb, na, nb;
    cublasOperation_t ta, tb;
};
static struct operands pair(int t)
{
    struct operands o;
    int ta = t / 2, tb = t % 2;
    o.a = ta ? A_T : A_N, o.lda = ta ? 5 : 4, o.na = ta ? 10 : 12;
    o.b = tb ? B_T : B_N, o.ldb = tb ? 6 : 5, o.nb = tb ? 18 : 20;
    /* CUBLAS_OP_C is CUBLAS_OP_T for real types: exercised for A. */
    o.ta = ta ? CUBLAS_OP_C : CUBLAS_OP_N;
    o.tb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    return o;
}

/* ---- cublasSgemm, cublasGemmEx ------------------------------------------------ */

Test(cublas, sgemm_every_transpose_pair_with_padding)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0, two = 2, half = 0.5f;
    for (int t = 0; t < 4; t++) {
        struct operands o = pair(t);
        float *a = dev(o.a, o.na * 4), *b = dev(o.b, o.nb * 4), *c = dev(C_NAN, sizeof C_NAN);
        ok(cublasSgemm(h, o.ta, o.tb, 2, 4, 3, &one, a, o.lda, b, o.ldb, &zero, c, 3));
        expect_floats(c, AB, 12, t == 0 ? "NN" : t == 1 ? "NT" : t == 2 ? "CN" : "CT");
        must(cudaMemcpy(c, C_INIT, sizeof C_INIT, cudaMemcpyHostToDevice));
        ok(cublasSgemm(h, o.ta, o.tb, 2, 4, 3, &two, a, o.lda, b, o.ldb, &half, c, 3));
        expect_floats(c, AB_ALPHA_BETA, 12, "alpha 2, beta 0.5");
        cudaFree(a), cudaFree(b), cudaFree(c);
    }
    ok(cublasDestroy(h));
}

/* k = 0: C = beta C; m = 0: nothing at all. */
Test(cublas, sgemm_empty_products)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, half = 0.5f;
    float *a = dev(A_N, sizeof A_N), *b = dev(B_N, sizeof B_N), *c = dev(C_INIT, sizeof C_INIT);
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 0, &one, a, 4, b, 5, &half, c, 3));
    const float halved[12] = {1, 2, S, 3, 4, S, 5, 6, S, 7, 8, S};
    expect_floats(c, halved, 12, "k = 0");
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 0, 4, 3, &one, a, 4, b, 5, &half, c, 3));
    expect_floats(c, halved, 12, "m = 0");
    cudaFree(a), cudaFree(b), cudaFree(c);
    cublasDestroy(h);
}

/* Two products, A's second op(A) = [0 1 0; 1 0 1] after a gap of 2, B
 * shared (stride 0), C's second after a gap of 1. */
Test(cublas, strided_batches)
{
    static const float A2[26] = {1, 4, P, P, 2, 5, P, P, 3, 6, P, P, P, P, 0, 1, P, P, 1, 0, P, P, 0, 1, P, P};
    static const float C2[26] = {P, P, S, P, P, S, P, P, S, P, P, S, -5, P, P, S, P, P, S, P, P, S, P, P, S, -5};
    static const float WANT[26] = {10, 22, S, -1, -1, S, 4, 13, S, 6, 12, S, -5,
                                   0,  4,  S, 1,  -1, S, 1, 2,  S, 2, 0,  S, -5};
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0;
    float *a = dev(A2, sizeof A2), *b = dev(B_N, sizeof B_N), *c = dev(C2, sizeof C2);
    ok(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, a, 4, 14, b, 5, 0, &zero, c, 3, 13,
                                 2));
    expect_floats(c, WANT, 26, "cublasSgemmStridedBatched");
    must(cudaMemcpy(c, C2, sizeof C2, cudaMemcpyHostToDevice));
    ok(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, a, CUDA_R_32F, 4, 14, b, CUDA_R_32F,
                                  5, 0, &zero, c, CUDA_R_32F, 3, 13, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    expect_floats(c, WANT, 26, "cublasGemmStridedBatchedEx");
    cudaFree(a), cudaFree(b), cudaFree(c);
    cublasDestroy(h);
}

Test(cublas, gemm_ex_bf16_inputs_fp32_accumulation)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0;
    for (int t = 0; t < 4; t++) {
        struct operands o = pair(t);
        void *a = dev_bf16(o.a, o.na), *b = dev_bf16(o.b, o.nb);
        float *c = dev(C_NAN, sizeof C_NAN);
        ok(cublasGemmEx(h, o.ta, o.tb, 2, 4, 3, &one, a, CUDA_R_16BF, o.lda, b, CUDA_R_16BF, o.ldb, &zero, c,
                        CUDA_R_32F, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        expect_floats(c, AB, 12, "bf16 in, fp32 out");
        void *cb = dev_bf16(C_NAN, 12);
        uint16_t got[12];
        ok(cublasGemmEx(h, o.ta, o.tb, 2, 4, 3, &one, a, CUDA_R_16BF, o.lda, b, CUDA_R_16BF, o.ldb, &zero, cb,
                        CUDA_R_16BF, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP));
        must(cudaMemcpy(got, cb, sizeof got, cudaMemcpyDeviceToHost));
        for (int i = 0; i < 12; i++) cr_expect_eq(unbf(got[i]), AB[i], "bf16 out [%d] = %g", i, unbf(got[i]));
        cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(cb);
    }
    cublasDestroy(h);
}

/* [1 1] [256 256; 1 3] = [257 259]: exact in fp32, rounded once to bf16
 * (to nearest even: 256 and 260). */
Test(cublas, bf16_output_rounds_once_to_nearest_even)
{
    static const float A1[2] = {1, 1}, B1[4] = {256, 1, 256, 3};
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0;
    void *a = dev_bf16(A1, 2), *b = dev_bf16(B1, 4), *c16 = dev_bf16(A1, 2);
    float *c32 = dev(A1, sizeof A1);
    ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 2, 2, &one, a, CUDA_R_16BF, 1, b, CUDA_R_16BF, 2, &zero, c32,
                    CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    const float exact[2] = {257, 259};
    expect_floats(c32, exact, 2, "fp32 out");
    ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 2, 2, &one, a, CUDA_R_16BF, 1, b, CUDA_R_16BF, 2, &zero, c16,
                    CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    uint16_t got[2];
    must(cudaMemcpy(got, c16, sizeof got, cudaMemcpyDeviceToHost));
    cr_expect_eq(unbf(got[0]), 256.0f, "%g", unbf(got[0]));
    cr_expect_eq(unbf(got[1]), 260.0f, "%g", unbf(got[1]));
    cudaFree(a), cudaFree(b), cudaFree(c16), cudaFree(c32);
    cublasDestroy(h);
}

/* TF32 keeps 10 mantissa bits: 1 + 2^-12 times 1 is 1 under
 * CUBLAS_TF32_TENSOR_OP_MATH and CUBLAS_COMPUTE_32F_FAST_TF32, exact otherwise. */
Test(cublas, tf32_math_rounds_fp32_inputs)
{
    const float x = 1.0f + 1.0f / 4096, one = 1, zero = 0;
    cublasHandle_t h;
    ok(cublasCreate(&h));
    float *a = dev(&x, 4), *b = dev(&one, 4), *c = dev(&zero, 4);
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, a, 1, b, 1, &zero, c, 1));
    expect_floats(c, &x, 1, "default math");
    ok(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH));
    cublasMath_t mode;
    ok(cublasGetMathMode(h, &mode));
    cr_expect_eq(mode, CUBLAS_TF32_TENSOR_OP_MATH);
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, a, 1, b, 1, &zero, c, 1));
    expect_floats(c, &one, 1, "TF32 math");
    ok(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, a, CUDA_R_32F, 1, b, CUDA_R_32F, 1, &zero, c,
                    CUDA_R_32F, 1, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    expect_floats(c, &one, 1, "CUBLAS_COMPUTE_32F_FAST_TF32");
    cudaFree(a), cudaFree(b), cudaFree(c);
    cublasDestroy(h);
}

Test(cublas, device_pointer_mode_reads_scalars_from_the_device)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    ok(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE));
    const float scalars[2] = {2, 0.5f};
    float *s = dev(scalars, sizeof scalars);
    float *a = dev(A_N, sizeof A_N), *b = dev(B_N, sizeof B_N), *c = dev(C_INIT, sizeof C_INIT);
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, s, a, 4, b, 5, s + 1, c, 3));
    expect_floats(c, AB_ALPHA_BETA, 12, "device alpha, beta");
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(s);
    cublasDestroy(h);
}

/* The product runs on the handle's stream when that is waited for. */
Test(cublas, work_runs_on_the_handles_stream)
{
    cublasHandle_t h;
    cudaStream_t s, got;
    ok(cublasCreate(&h));
    must(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    ok(cublasSetStream(h, s));
    ok(cublasGetStream(h, &got));
    cr_assert_eq(got, s);
    const float one = 1, zero = 0;
    float *a = dev(A_N, sizeof A_N), *b = dev(B_N, sizeof B_N), *c = dev(C_NAN, sizeof C_NAN);
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, a, 4, b, 5, &zero, c, 3));
    expect_floats(c, C_NAN, 12, "before the stream was synchronized");
    must(cudaStreamSynchronize(s));
    expect_floats(c, AB, 12, "after");
    cudaFree(a), cudaFree(b), cudaFree(c);
    cublasDestroy(h);
    cudaStreamDestroy(s);
}

/* An operand that does not fit its allocation, or is host memory, is a
 * device fault. A (2 x 3, lda 4) spans 10 floats. */
Test(cublas, operands_outside_device_memory_are_flagged)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0;
    float *short_a = dev(A_N, 9 * sizeof(float)), *a = dev(A_N, sizeof A_N), *b = dev(B_N, sizeof B_N);
    float *c = dev(C_NAN, sizeof C_NAN), host[12];
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, short_a, 4, b, 5, &zero, c, 3));
    cr_expect_eq(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    const char *msg = cudasim_last_error();
    cr_expect(msg && strstr(msg, "cublasSgemm: A at") &&
                  strstr(msg, "its 40 bytes run past the end of the 36-byte cudaMalloc block"),
              "%s", msg ? msg : "");
    cudasim_clear_error();
    ok(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3, &one, a, 4, b, 5, &zero, host, 3));
    cr_expect_eq(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    msg = cudasim_last_error();
    cr_expect(msg && strstr(msg, "cublasSgemm: D at") && strstr(msg, "(host memory)"), "%s", msg ? msg : "");
    cudasim_clear_error();
    cudaFree(short_a), cudaFree(a), cudaFree(b), cudaFree(c);
    cublasDestroy(h);
}

Test(cublas, invalid_arguments_return_the_documented_status)
{
    cublasHandle_t h;
    ok(cublasCreate(&h));
    const float one = 1, zero = 0;
    float *a = dev(A_N, sizeof A_N), *b = dev(B_N, sizeof B_N), *c = dev(C_NAN, sizeof C_NAN);
    cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
    cr_expect_eq(cublasSgemm(NULL, N, N, 2, 4, 3, &one, a, 4, b, 5, &zero, c, 3), CUBLAS_STATUS_NOT_INITIALIZED);
    cr_expect_eq(cublasSetStream(NULL, 0), CUBLAS_STATUS_NOT_INITIALIZED);
    /* lda >= m for op N, >= k for op T; ldb >= k for N, >= n for T; ldc >= m. */
    cr_expect_eq(cublasSgemm(h, N, N, 2, 4, 3, &one, a, 1, b, 5, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, T, N, 2, 4, 3, &one, a, 2, b, 5, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, N, N, 2, 4, 3, &one, a, 4, b, 2, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, N, T, 2, 4, 3, &one, a, 4, b, 3, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, N, N, 2, 4, 3, &one, a, 4, b, 5, &zero, c, 1), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, N, N, -1, 4, 3, &one, a, 4, b, 5, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, (cublasOperation_t)7, N, 2, 4, 3, &one, a, 4, b, 5, &zero, c, 3),
                 CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemm(h, N, N, 2, 4, 3, NULL, a, 4, b, 5, &zero, c, 3), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasSgemmStridedBatched(h, N, N, 2, 4, 3, &one, a, 4, 0, b, 5, 0, &zero, c, 3, 0, -1),
                 CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasGemmEx(h, N, N, 2, 4, 3, &one, a, CUDA_R_64F, 4, b, CUDA_R_64F, 5, &zero, c, CUDA_R_64F, 3,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 CUBLAS_STATUS_NOT_SUPPORTED);
    cr_expect_eq(cublasGemmEx(h, N, N, 2, 4, 3, &one, a, CUDA_R_16BF, 4, b, CUDA_R_32F, 5, &zero, c, CUDA_R_32F, 3,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 CUBLAS_STATUS_NOT_SUPPORTED);
    cr_expect_eq(cublasGemmEx(h, N, N, 2, 4, 3, &one, a, CUDA_R_32F, 4, b, CUDA_R_32F, 5, &zero, c, CUDA_R_16BF, 3,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 CUBLAS_STATUS_NOT_SUPPORTED);
    cr_expect_eq(cublasGemmEx(h, N, N, 2, 4, 3, &one, a, CUDA_R_32F, 4, b, CUDA_R_32F, 5, &zero, c, CUDA_R_32F, 3,
                              CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT),
                 CUBLAS_STATUS_NOT_SUPPORTED);
    /* None of them ran; the valid neighbour of the op-T case does. */
    expect_floats(c, C_NAN, 12, "after the refused calls");
    float *at = dev(A_T, sizeof A_T);
    ok(cublasSgemm(h, T, N, 2, 4, 3, &one, at, 5, b, 5, &zero, c, 3));
    expect_floats(c, AB, 12, "op T with lda = 5");
    ok(cublasDestroy(h));
    cr_expect_eq(cublasSgemm(h, N, N, 2, 4, 3, &one, a, 4, b, 5, &zero, c, 3), CUBLAS_STATUS_NOT_INITIALIZED,
                 "a destroyed handle");
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(at);
}

/* ---- cuBLASLt ----------------------------------------------------------------------- */

struct lt {
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c, d;
};

static void lt_open(struct lt *l, cudaDataType ab, cudaDataType cd, cublasOperation_t ta, cublasOperation_t tb,
                    int lda, int ldb, int ldc, int ldd)
{
    ok(cublasLtCreate(&l->h));
    ok(cublasLtMatmulDescCreate(&l->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    ok(cublasLtMatmulDescSetAttribute(l->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    ok(cublasLtMatmulDescSetAttribute(l->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    ok(cublasLtMatrixLayoutCreate(&l->a, ab, ta == CUBLAS_OP_N ? 2 : 3, ta == CUBLAS_OP_N ? 3 : 2, lda));
    ok(cublasLtMatrixLayoutCreate(&l->b, ab, tb == CUBLAS_OP_N ? 3 : 4, tb == CUBLAS_OP_N ? 4 : 3, ldb));
    ok(cublasLtMatrixLayoutCreate(&l->c, cd, 2, 4, ldc));
    ok(cublasLtMatrixLayoutCreate(&l->d, cd, 2, 4, ldd));
}

static void lt_close(struct lt *l)
{
    ok(cublasLtMatrixLayoutDestroy(l->a));
    ok(cublasLtMatrixLayoutDestroy(l->b));
    ok(cublasLtMatrixLayoutDestroy(l->c));
    ok(cublasLtMatrixLayoutDestroy(l->d));
    ok(cublasLtMatmulDescDestroy(l->desc));
    ok(cublasLtDestroy(l->h));
}

static cublasStatus_t lt_matmul(struct lt *l, float alpha, const void *a, const void *b, float beta,
                                const void *c, void *d, const cublasLtMatmulAlgo_t *algo)
{
    return cublasLtMatmul(l->h, l->desc, &alpha, a, l->a, b, l->b, &beta, c, l->c, d, l->d, algo, NULL, 0, 0);
}

/* The one problem with A and B as stored (lda 4, ldb 5), C = D (ldc 3). */
struct mats {
    float *a, *b, *c;
};
static void lt_open_nn(struct lt *l)
{
    lt_open(l, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_N, 4, 5, 3, 3);
}
static struct mats upload_nn(void)
{
    struct mats m = {dev(A_N, sizeof A_N), dev(B_N, sizeof B_N), dev(C_NAN, sizeof C_NAN)};
    return m;
}
static void free_mats(struct mats m) { cudaFree(m.a), cudaFree(m.b), cudaFree(m.c); }

/* The status of D = A B in place over layouts of these types and leading
 * dimensions. */
static cublasStatus_t lt_status(cudaDataType ab, cudaDataType cd, int lda, int ldc, struct mats m)
{
    struct lt l;
    lt_open(&l, ab, cd, CUBLAS_OP_N, CUBLAS_OP_N, lda, 5, ldc, ldc);
    cublasStatus_t st = lt_matmul(&l, 1, m.a, m.b, 0, m.c, m.c, NULL);
    lt_close(&l);
    return st;
}

/* D separate from C: C read with beta, D (ldd 4) written, its padding kept. */
Test(cublaslt, matmul_every_transpose_pair_with_padding)
{
    static const float D_NAN[16] = {P, P, S, S, P, P, S, S, P, P, S, S, P, P, S, S};
    static const float D_WANT[16] = {21, 46, S, S, 1, 2, S, S, 13, 32, S, S, 19, 32, S, S};
    for (int t = 0; t < 4; t++) {
        struct operands o = pair(t);
        struct lt l;
        lt_open(&l, CUDA_R_32F, CUDA_R_32F, o.ta, o.tb, o.lda, o.ldb, 3, 4);
        float *a = dev(o.a, o.na * 4), *b = dev(o.b, o.nb * 4), *c = dev(C_INIT, sizeof C_INIT);
        float *d = dev(D_NAN, sizeof D_NAN);
        ok(lt_matmul(&l, 2, a, b, 0.5f, c, d, NULL));
        expect_floats(d, D_WANT, 16, "D = 2 AB + 0.5 C");
        expect_floats(c, C_INIT, 12, "C unchanged");
        cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(d);
        lt_close(&l);
    }
}

/* In place (C == D, the same layout), beta = 0 over NaN; then with the
 * heuristic's algorithm. */
Test(cublaslt, in_place_and_heuristic_algorithm)
{
    struct lt l;
    lt_open_nn(&l);
    struct mats m = upload_nn();
    float *a = m.a, *b = m.b, *c = m.c;
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    expect_floats(c, AB, 12, "in place, NULL algo");
    cublasLtMatmulPreference_t pref;
    ok(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = 1 << 20;
    ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t r[4];
    int n = 0;
    ok(cublasLtMatmulAlgoGetHeuristic(l.h, l.desc, l.a, l.b, l.c, l.d, pref, 4, r, &n));
    cr_assert_eq(n, 1);
    cr_expect_eq(r[0].state, CUBLAS_STATUS_SUCCESS);
    cr_expect_eq(r[0].workspaceSize, 0);
    cr_expect_eq(cublasLtMatmulAlgoGetHeuristic(l.h, l.desc, l.a, l.b, l.c, l.d, pref, 0, r, &n),
                 CUBLAS_STATUS_INVALID_VALUE);
    must(cudaMemcpy(c, C_INIT, sizeof C_INIT, cudaMemcpyHostToDevice));
    ok(lt_matmul(&l, 2, a, b, 0.5f, c, c, &r[0].algo));
    expect_floats(c, AB_ALPHA_BETA, 12, "in place, heuristic algo");
    cublasLtMatmulAlgo_t junk;
    memset(&junk, 0, sizeof junk);
    cr_expect_eq(lt_matmul(&l, 1, a, b, 0, c, c, &junk), CUBLAS_STATUS_INVALID_VALUE);
    ok(cublasLtMatmulPreferenceDestroy(pref));
    free_mats(m);
    lt_close(&l);
}

/* CUBLASLT_ORDER_ROW: element (r, c) at r * ld + c, ld at least the
 * columns. op(A), op(B) and the product stored by rows with padding. */
Test(cublaslt, row_order_layouts)
{
    static const float A_R[8] = {1, 2, 3, P, 4, 5, 6, P};
    static const float B_R[15] = {1, 0, 2, -1, P, 0, 1, 1, 2, P, 3, -1, 0, 1, P};
    static const float D_R[10] = {P, P, P, P, S, P, P, P, P, S};
    static const float WANT[10] = {10, -1, 4, 6, S, 22, -1, 13, 12, S};
    struct lt l;
    lt_open(&l, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_N, 4, 5, 5, 5);
    int32_t row = CUBLASLT_ORDER_ROW;
    cublasLtMatrixLayout_t all[4] = {l.a, l.b, l.c, l.d};
    for (int i = 0; i < 4; i++)
        ok(cublasLtMatrixLayoutSetAttribute(all[i], CUBLASLT_MATRIX_LAYOUT_ORDER, &row, sizeof row));
    float *a = dev(A_R, sizeof A_R), *b = dev(B_R, sizeof B_R), *d = dev(D_R, sizeof D_R);
    ok(lt_matmul(&l, 1, a, b, 0, d, d, NULL));
    expect_floats(d, WANT, 10, "row order");
    int64_t ld = 3;
    ok(cublasLtMatrixLayoutSetAttribute(l.b, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld));
    cr_expect_eq(lt_matmul(&l, 1, a, b, 0, d, d, NULL), CUBLAS_STATUS_INVALID_VALUE, "ld 3 < 4 columns");
    cudaFree(a), cudaFree(b), cudaFree(d);
    lt_close(&l);
}

/* Batch count and strided offset on every layout: the batches of
 * strided_batches, B shared through stride 0. */
Test(cublaslt, strided_batches_through_layout_attributes)
{
    static const float A2[26] = {1, 4, P, P, 2, 5, P, P, 3, 6, P, P, P, P, 0, 1, P, P, 1, 0, P, P, 0, 1, P, P};
    static const float C2[26] = {P, P, S, P, P, S, P, P, S, P, P, S, -5, P, P, S, P, P, S, P, P, S, P, P, S, -5};
    static const float WANT[26] = {10, 22, S, -1, -1, S, 4, 13, S, 6, 12, S, -5,
                                   0,  4,  S, 1,  -1, S, 1, 2,  S, 2, 0,  S, -5};
    struct lt l;
    lt_open_nn(&l);
    int32_t batch = 2;
    int64_t sa = 14, sb = 0, sc = 13;
    cublasLtMatrixLayout_t all[4] = {l.a, l.b, l.c, l.d};
    int64_t strides[4] = {sa, sb, sc, sc};
    for (int i = 0; i < 4; i++) {
        ok(cublasLtMatrixLayoutSetAttribute(all[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        ok(cublasLtMatrixLayoutSetAttribute(all[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                            sizeof strides[i]));
    }
    int32_t got_batch = 0;
    size_t written = 0;
    ok(cublasLtMatrixLayoutGetAttribute(l.c, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &got_batch, sizeof got_batch,
                                        &written));
    cr_expect_eq(got_batch, 2);
    cr_expect_eq(written, sizeof got_batch);
    cr_expect_eq(cublasLtMatrixLayoutSetAttribute(l.c, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &sa, sizeof sa),
                 CUBLAS_STATUS_INVALID_VALUE, "an int64 where the attribute is int32");
    float *a = dev(A2, sizeof A2), *b = dev(B_N, sizeof B_N), *c = dev(C2, sizeof C2);
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    expect_floats(c, WANT, 26, "batched");
    cudaFree(a), cudaFree(b), cudaFree(c);
    lt_close(&l);
}

/* Bias (one per row of D) added before the activation. */
Test(cublaslt, bias_and_activation_epilogues)
{
    struct lt l;
    lt_open_nn(&l);
    struct mats m = upload_nn();
    float *a = m.a, *b = m.b, *c = m.c;
    const float bias_h[2] = {100, 200}, neg_h[2] = {-10, -20};
    float *bias = dev(bias_h, sizeof bias_h), *neg = dev(neg_h, sizeof neg_h);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    cr_expect_eq(lt_matmul(&l, 1, a, b, 0, c, c, NULL), CUBLAS_STATUS_INVALID_VALUE, "BIAS without a bias");
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    const float with_bias[12] = {110, 222, S, 99, 199, S, 104, 213, S, 106, 212, S};
    expect_floats(c, with_bias, 12, "BIAS");
    /* AB + [-10; -20] = [0 -11 -6 -4; 2 -21 -7 -8], then max(x, 0). */
    epi = CUBLASLT_EPILOGUE_RELU_BIAS;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &neg, sizeof neg));
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    const float relu[12] = {0, 2, S, 0, 0, S, 0, 0, S, 0, 0, S};
    expect_floats(c, relu, 12, "RELU_BIAS");
    epi = CUBLASLT_EPILOGUE_DGELU;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    cr_expect_eq(lt_matmul(&l, 1, a, b, 0, c, c, NULL), CUBLAS_STATUS_NOT_SUPPORTED);
    free_mats(m), cudaFree(bias), cudaFree(neg);
    lt_close(&l);
}

/* GELU is the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * at -1, 0, 1: -0.158808, 0, 0.841192 (the erf form gives 0.841345). */
Test(cublaslt, gelu_epilogue_is_the_tanh_form)
{
    const float one = 1, xs[3] = {-1, 0, 1}, nan3[3] = {P, P, P};
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    ok(cublasLtCreate(&h));
    ok(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_GELU;
    ok(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, 1, 1, 1));
    ok(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, 1, 3, 1));
    ok(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, 1, 3, 1));
    float *a = dev(&one, 4), *b = dev(xs, sizeof xs), *d = dev(nan3, sizeof nan3), got[3];
    const float zero = 0;
    ok(cublasLtMatmul(h, desc, &one, a, la, b, lb, &zero, d, lc, d, lc, NULL, NULL, 0, 0));
    must(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    const float want[3] = {-0.1588080f, 0.0f, 0.8411920f};
    for (int i = 0; i < 3; i++) cr_expect(fabsf(got[i] - want[i]) < 2e-6f, "gelu(%g) = %.7f", xs[i], got[i]);
    cudaFree(a), cudaFree(b), cudaFree(d);
    cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb), cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
}

/* bf16 A, B, C and D with a bf16 bias (the default: D's type). */
Test(cublaslt, bf16_with_bias)
{
    struct lt l;
    lt_open(&l, CUDA_R_16BF, CUDA_R_16BF, CUBLAS_OP_N, CUBLAS_OP_T, 4, 6, 3, 3);
    void *a = dev_bf16(A_N, 12), *b = dev_bf16(B_T, 18), *c = dev_bf16(C_NAN, 12);
    const float bias_h[2] = {100, 200};
    void *bias = dev_bf16(bias_h, 2);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    uint16_t got[12];
    must(cudaMemcpy(got, c, sizeof got, cudaMemcpyDeviceToHost));
    const float want[12] = {110, 222, S, 99, 199, S, 104, 213, S, 106, 212, S};
    for (int i = 0; i < 12; i++) cr_expect_eq(unbf(got[i]), want[i], "[%d] = %g", i, unbf(got[i]));
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bias);
    lt_close(&l);
}

/* CUBLASLT_EPILOGUE_BGRADB (cublasLt.h): the bias gradient "based on the
 * input matrix B", one value per column of D, the reduction over the GEMM's
 * k: op(B)'s column sums [4 0 3 2], WRITTEN to the bias pointer (the 100s
 * there are overwritten, not added to; the sentinel after them stays),
 * while D = AB + C accumulates with beta = 1. op(B) stored as B^T (transb
 * T: the epilogue needs it, below). Twice: the second call writes the same
 * bias gradient again, D adds AB once more. */
static const float BIAS_OLD[5] = {100, 200, 300, 400, S};
static const float BGRADB_WANT[5] = {4, 0, 3, 2, S};
static const float AB_PLUS_C[12] = {12, 26, S, 5, 7, S, 14, 25, S, 20, 28, S};
static const float AB2_PLUS_C[12] = {22, 48, S, 4, 6, S, 18, 38, S, 26, 40, S};

static void bgradb_case(cudaDataType ab)
{
    struct lt l;
    lt_open(&l, ab, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, 4, 6, 3, 3);
    void *a = ab == CUDA_R_16BF ? dev_bf16(A_N, 12) : dev(A_N, sizeof A_N);
    void *b = ab == CUDA_R_16BF ? dev_bf16(B_T, 18) : dev(B_T, sizeof B_T);
    float *c = dev(C_INIT, sizeof C_INIT), *bias = dev(BIAS_OLD, sizeof BIAS_OLD);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BGRADB;
    int32_t fp32 = CUDA_R_32F;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &fp32, sizeof fp32));
    cr_expect_eq(lt_matmul(&l, 1, a, b, 1, c, c, NULL), CUBLAS_STATUS_INVALID_VALUE, "BGRADB without a pointer");
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(lt_matmul(&l, 1, a, b, 1, c, c, NULL));
    expect_floats(bias, BGRADB_WANT, 5, ab == CUDA_R_16BF ? "bf16 in: BGRADB" : "BGRADB");
    expect_floats(c, AB_PLUS_C, 12, "D = AB + C, beta 1");
    ok(lt_matmul(&l, 1, a, b, 1, c, c, NULL));
    expect_floats(bias, BGRADB_WANT, 5, "BGRADB again: written, not added");
    expect_floats(c, AB2_PLUS_C, 12, "D = AB + AB + C");
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bias);
    lt_close(&l);
}

Test(cublaslt, bgradb_writes_op_b_column_sums_fp32) { bgradb_case(CUDA_R_32F); }
Test(cublaslt, bgradb_writes_op_b_column_sums_bf16_inputs) { bgradb_case(CUDA_R_16BF); }

/* bf16 A and B, fp32 D: the bias gradient is fp32 (D's type) and summed in
 * fp32: [1 1] [256 256; 1 3] gives column sums 257 and 259, which bf16
 * would round to 256 and 260. */
Test(cublaslt, bgradb_of_bf16_inputs_is_summed_and_stored_in_fp32)
{
    static const float A1[2] = {1, 1}, B1T[4] = {256, 256, 1, 3}, NAN2[2] = {P, P};
    const float want[2] = {257, 259};
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    ok(cublasLtCreate(&h));
    ok(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BGRADB;
    ok(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &t, sizeof t));
    ok(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, 1, 2, 1));
    ok(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, 2, 2, 2));
    ok(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, 1, 2, 1));
    void *a = dev_bf16(A1, 2), *b = dev_bf16(B1T, 4);
    float *d = dev(NAN2, sizeof NAN2), *bias = dev(NAN2, sizeof NAN2);
    ok(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float one = 1, zero = 0;
    ok(cublasLtMatmul(h, desc, &one, a, la, b, lb, &zero, d, ld, d, ld, NULL, NULL, 0, 0));
    expect_floats(bias, want, 2, "the bias gradient (default type: D's, fp32)");
    expect_floats(d, want, 2, "D");
    cudaFree(a), cudaFree(b), cudaFree(d), cudaFree(bias);
    cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb), cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
}

/* CUBLASLT_EPILOGUE_BGRADA: one value per row of D, op(A)'s row sums over
 * k, for either transa, with a batch stride: the batches of
 * strided_batches_through_layout_attributes (op(A) = [1 2 3; 4 5 6], then
 * [0 1 0; 1 0 1]) give [6 15] and [1 2], 3 floats apart, the gap kept. */
Test(cublaslt, bgrada_writes_op_a_row_sums_per_batch)
{
    static const float A2[26] = {1, 4, P, P, 2, 5, P, P, 3, 6, P, P, P, P, 0, 1, P, P, 1, 0, P, P, 0, 1, P, P};
    static const float C2[26] = {P, P, S, P, P, S, P, P, S, P, P, S, -5, P, P, S, P, P, S, P, P, S, P, P, S, -5};
    static const float BIAS5[5] = {100, 200, S, 300, 400};
    static const float WANT[5] = {6, 15, S, 1, 2};
    struct lt l;
    lt_open_nn(&l);
    int32_t batch = 2;
    int64_t strides[4] = {14, 0, 13, 13}, bias_stride = 3;
    cublasLtMatrixLayout_t all[4] = {l.a, l.b, l.c, l.d};
    for (int i = 0; i < 4; i++) {
        ok(cublasLtMatrixLayoutSetAttribute(all[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        ok(cublasLtMatrixLayoutSetAttribute(all[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                            sizeof strides[i]));
    }
    float *a = dev(A2, sizeof A2), *b = dev(B_N, sizeof B_N), *c = dev(C2, sizeof C2);
    float *bias = dev(BIAS5, sizeof BIAS5);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BGRADA;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                      sizeof bias_stride));
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    expect_floats(bias, WANT, 5, "BGRADA, batched");
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bias);
    lt_close(&l);
    /* op(A) stored as A^T (lda 5): the same row sums of op(A). */
    lt_open(&l, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_T, CUBLAS_OP_N, 5, 5, 3, 3);
    a = dev(A_T, sizeof A_T), b = dev(B_N, sizeof B_N), c = dev(C_NAN, sizeof C_NAN);
    bias = dev(BIAS5, sizeof BIAS5);
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(lt_matmul(&l, 1, a, b, 0, c, c, NULL));
    const float want_t[5] = {6, 15, S, 300, 400};
    expect_floats(bias, want_t, 5, "BGRADA, op T");
    expect_floats(c, AB, 12, "D");
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bias);
    lt_close(&l);
}

/* Refused, as documented, before anything runs: BGRADB with B not
 * transposed, and a bias gradient of a type other than C's and D's (bf16
 * with fp32 D): CUBLAS_STATUS_NOT_SUPPORTED, by cublasLtMatmul and by the
 * heuristic query. */
Test(cublaslt, bgrad_configurations_cublaslt_refuses)
{
    struct lt l;
    lt_open_nn(&l);
    struct mats m = upload_nn();
    float *bias = dev(BIAS_OLD, sizeof BIAS_OLD);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BGRADB;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    cr_expect_eq(lt_matmul(&l, 1, m.a, m.b, 0, m.c, m.c, NULL), CUBLAS_STATUS_NOT_SUPPORTED, "BGRADB, transb N");
    cublasLtMatmulPreference_t pref;
    ok(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t r;
    int n = 0;
    cr_expect_eq(cublasLtMatmulAlgoGetHeuristic(l.h, l.desc, l.a, l.b, l.c, l.d, pref, 1, &r, &n),
                 CUBLAS_STATUS_NOT_SUPPORTED, "the heuristic for BGRADB, transb N");
    lt_close(&l);
    float *bt = dev(B_T, sizeof B_T);
    lt_open(&l, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, 4, 6, 3, 3);
    int32_t bf16 = CUDA_R_16BF;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bf16, sizeof bf16));
    cr_expect_eq(lt_matmul(&l, 1, m.a, bt, 0, m.c, m.c, NULL), CUBLAS_STATUS_NOT_SUPPORTED,
                 "a bf16 bias gradient with fp32 C and D");
    ok(cublasLtMatmulPreferenceDestroy(pref));
    lt_close(&l);
    must(cudaDeviceSynchronize());
    expect_floats(bias, BIAS_OLD, 5, "after the refused calls");
    expect_floats(m.c, C_NAN, 12, "after the refused calls");
    free_mats(m), cudaFree(bias), cudaFree(bt);
}

Test(cublaslt, invalid_layouts_return_the_documented_status)
{
    struct mats m = upload_nn();
    cr_expect_eq(lt_status(CUDA_R_32F, CUDA_R_32F, 1, 3, m), CUBLAS_STATUS_INVALID_VALUE, "lda 1 < 2 rows");
    cr_expect_eq(lt_status(CUDA_R_32F, CUDA_R_32F, 4, 1, m), CUBLAS_STATUS_INVALID_VALUE, "ldc 1 < 2 rows");
    cr_expect_eq(lt_status(CUDA_R_64F, CUDA_R_64F, 4, 3, m), CUBLAS_STATUS_NOT_SUPPORTED, "fp64");
    cr_expect_eq(lt_status(CUDA_R_32F, CUDA_R_16BF, 4, 3, m), CUBLAS_STATUS_NOT_SUPPORTED, "fp32 in, bf16 out");
    struct lt l;
    /* In place with two layouts (ldc 3, ldd 4), even when beta = 0 leaves C unread. */
    lt_open(&l, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_N, 4, 5, 3, 4);
    cr_expect_eq(lt_matmul(&l, 1, m.a, m.b, 0, m.c, m.c, NULL), CUBLAS_STATUS_INVALID_VALUE, "C == D, two layouts");
    lt_close(&l);
    lt_open_nn(&l);
    /* op(A) is 2 x 3; B is 3 x 4 as stored, so with op T k does not match. */
    cublasOperation_t t = CUBLAS_OP_T;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_TRANSB, &t, sizeof t));
    cr_expect_eq(lt_matmul(&l, 1, m.a, m.b, 0, m.c, m.c, NULL), CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_TRANSB, &t, 8),
                 CUBLAS_STATUS_INVALID_VALUE, "the wrong size");
    t = CUBLAS_OP_N;
    ok(cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_TRANSB, &t, sizeof t));
    cr_expect_eq(cublasLtMatmul(NULL, l.desc, &(float){1}, m.a, l.a, m.b, l.b, &(float){0}, m.c, l.c, m.c, l.d,
                                NULL, NULL, 0, 0),
                 CUBLAS_STATUS_NOT_INITIALIZED);
    int32_t two = 2;
    ok(cublasLtMatrixLayoutSetAttribute(l.a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &two, sizeof two));
    cr_expect_eq(lt_matmul(&l, 1, m.a, m.b, 0, m.c, m.c, NULL), CUBLAS_STATUS_INVALID_VALUE,
                 "mismatched batch counts");
    lt_close(&l);
    must(cudaDeviceSynchronize());
    expect_floats(m.c, C_NAN, 12, "after the refused calls");
    free_mats(m);
}

/* NVIDIA documents that a cuBLAS handle serves as a cuBLASLt one. */
Test(cublaslt, a_cublas_handle_serves_as_a_cublaslt_handle)
{
    struct lt l;
    lt_open_nn(&l);
    cublasHandle_t h;
    ok(cublasCreate(&h));
    struct mats m = upload_nn();
    const float one = 1, zero = 0;
    ok(cublasLtMatmul((cublasLtHandle_t)h, l.desc, &one, m.a, l.a, m.b, l.b, &zero, m.c, l.c, m.c, l.d, NULL, NULL,
                      0, 0));
    expect_floats(m.c, AB, 12, "through the cuBLAS handle");
    free_mats(m);
    cublasDestroy(h);
    lt_close(&l);
}
