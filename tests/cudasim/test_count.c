/* The simulator's work counter (cudasim_count_begin, cudasim.h), which the
 * step plan (bench/step_plan) reads: a counted kernel's bytes are the
 * distinct sectors it touched, a GEMM's FLOPs are 2mnk, copies and memsets
 * their bytes, each record in the order the work ran (a cuBLASLt bias
 * gradient among the GEMM's bytes written). Not in ASan builds,
 * whose sanitizer owns the callbacks that count (Makefile,
 * CUDASIM_COUNT_FLAGS). */
#ifndef __SANITIZE_ADDRESS__
#include <criterion/criterion.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "cudasim.h"

void cudasim_counted_mirror(float *out, const float *in, int n);

Test(count, records_kernels_gemms_copies_and_memsets)
{
    cr_assert(cudasim_counts_kernel_bytes());
    enum { N = 1000, M = 8, K = 16, NC = 4 };
    float host[N];
    for (int i = 0; i < N; i++) host[i] = (float)i;
    float *in, *out, *a, *b, *c;
    cr_assert_eq(cudaMalloc((void **)&in, N * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&out, N * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&a, M * K * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&b, K * NC * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&c, M * NC * sizeof(float)), cudaSuccess);
    cublasHandle_t h;
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    cudasim_count_begin();
    cr_assert_eq(cudaMemcpy(in, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
    cudasim_counted_mirror(out, in, N);
    cr_assert_eq(cudaMemset(a, 0, M * K * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMemset(b, 0, K * NC * sizeof(float)), cudaSuccess);
    float one = 1, zero = 0;
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, NC, K, &one, a, M, b, K, &zero, c, M),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cudaMemcpy(out, in, 100 * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    size_t n;
    const CudasimWork *w = cudasim_count_end(&n);
    cr_assert_eq(n, 6);
    cr_assert_eq(w[0].kind, CUDASIM_WORK_COPY_HOST);
    cr_assert_eq(w[0].bytes_read, 0);
    cr_assert_eq(w[0].bytes_written, sizeof host);
    cr_assert_eq(w[1].kind, CUDASIM_WORK_KERNEL);
    cr_assert_str_eq(w[1].name, "counted_mirror_kernel");
    /* 4000 bytes from a 256-byte aligned block: 125 sectors each way, the
     * input's read twice but counted once. */
    cr_assert_eq(w[1].bytes_read, N * sizeof(float));
    cr_assert_eq(w[1].bytes_written, N * sizeof(float));
    cr_assert_eq(w[2].kind, CUDASIM_WORK_MEMSET);
    cr_assert_eq(w[2].bytes_written, M * K * sizeof(float));
    cr_assert_eq(w[4].kind, CUDASIM_WORK_GEMM);
    cr_assert_str_eq(w[4].name, "cublasSgemm 8x4x16");
    cr_assert_eq(w[4].flops, 2.0 * M * NC * K);
    cr_assert_eq(w[4].bytes_read, (M * K + K * NC) * sizeof(float), "beta = 0 does not read C");
    cr_assert_eq(w[4].bytes_written, M * NC * sizeof(float));
    cr_assert_eq(w[5].kind, CUDASIM_WORK_COPY_DEVICE);
    cr_assert_eq(w[5].bytes_read, 100 * sizeof(float));
    cr_assert_eq(w[5].bytes_written, 100 * sizeof(float));
    /* Outside begin/end nothing is recorded. */
    cudasim_counted_mirror(out, in, N);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    cudasim_count_begin();
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    cudasim_count_end(&n);
    cr_assert_eq(n, 0);
    cublasDestroy(h);
    cudaFree(in), cudaFree(out), cudaFree(a), cudaFree(b), cudaFree(c);
}

/* CUBLASLT_EPILOGUE_BGRADB: the product's record, its bias gradient (one
 * fp32 per column of D) among the bytes written; its terms are B's, read
 * once already; beta = 1 reads C. */
Test(count, cublaslt_bias_gradient_bytes_are_written_bytes)
{
    enum { M = 8, K = 16, NC = 4 };
    float *a, *b, *c, *bias;
    cr_assert_eq(cudaMalloc((void **)&a, M * K * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&b, K * NC * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&c, M * NC * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&bias, NC * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMemset(a, 0, M * K * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMemset(b, 0, K * NC * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMemset(c, 0, M * NC * sizeof(float)), cudaSuccess);
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cr_assert_eq(cublasLtCreate(&h), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
    cublasOperation_t t = CUBLAS_OP_T;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BGRADB;
    cr_assert_eq(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &t, sizeof t),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, M, K, M), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, NC, K, NC), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, M, NC, M), CUBLAS_STATUS_SUCCESS);
    const float one = 1;
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    cudasim_count_begin();
    cr_assert_eq(cublasLtMatmul(h, desc, &one, a, la, b, lb, &one, c, lc, c, lc, NULL, NULL, 0, 0),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess);
    size_t n;
    const CudasimWork *w = cudasim_count_end(&n);
    cr_assert_eq(n, 1);
    cr_assert_eq(w[0].kind, CUDASIM_WORK_GEMM);
    cr_assert_str_eq(w[0].name, "cublasLtMatmul 8x4x16 +bgradb");
    cr_assert_eq(w[0].flops, 2.0 * M * NC * K);
    cr_assert_eq(w[0].bytes_read, (M * K + K * NC + M * NC) * sizeof(float));
    cr_assert_eq(w[0].bytes_written, (M * NC + NC) * sizeof(float));
    cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb), cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(bias);
}
#endif
