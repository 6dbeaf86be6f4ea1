/* cudasim's cuBLAS and cuBLASLt: the GEMM subset cudasim.h lists, as
 * NVIDIA's cublas_api.h and cublasLt.h declare it, following the documented
 * column-major contract. Arguments are checked when called (the documented
 * statuses); operands are checked and the product computed when the work
 * runs on its stream. */
#include "internal.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

/* A cuBLAS handle is also a cuBLASLt one (NVIDIA documents the cast). */
struct cublasLtContext {
    uint32_t magic;
};
struct cublasContext : cublasLtContext {
    cudaStream_t stream;
    cublasPointerMode_t pointer_mode;
    cublasMath_t math;
};

namespace {

using namespace cudasim;

const uint32_t LT_MAGIC = 0x4c74, BLAS_MAGIC = 0x424c;
std::set<const void *> live_handles;

/* ---- the product ---------------------------------------------------------------- */

/* How inputs reach the multiplier: unchanged, or rounded to TF32 or bf16. */
enum Rounding { EXACT, TF32, BF16 };

/* One matrix as stored: element (r, c) of a rows x cols matrix is at
 * c * ld + r (column order) or r * ld + c (row order), matrix b of a batch
 * `stride` elements further. */
struct Matrix {
    const void *p;
    cudaDataType type;
    int64_t rows, cols, ld, stride;
    bool row_order;
    size_t elem() const { return type == CUDA_R_16BF ? 2 : 4; }
    size_t offset(int64_t r, int64_t c) const { return (size_t)(row_order ? r * ld + c : c * ld + r); }
    float get(int b, int64_t r, int64_t c) const
    {
        size_t i = (size_t)(b * stride) + offset(r, c);
        if (type == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
        return ((const float *)p)[i];
    }
    void set(int b, int64_t r, int64_t c, float v) const
    {
        size_t i = (size_t)(b * stride) + offset(r, c);
        if (type == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
        else ((float *)p)[i] = v;
    }
    /* Bytes from p to one past the last element any batch touches. */
    size_t extent(int batch) const
    {
        if (rows == 0 || cols == 0 || batch == 0) return 0;
        size_t last = offset(rows - 1, cols - 1) + (size_t)((int64_t)(batch - 1) * (stride > 0 ? stride : 0));
        return (last + 1) * elem();
    }
};

enum Act { NONE, RELU, GELU };
/* The bias-gradient epilogues (CUBLASLT_EPILOGUE_BGRADA / BGRADB): none, or
 * the sums over k of op(A)'s rows (one per row of D) or of op(B)'s columns
 * (one per column of D), written to the bias pointer. */
enum Bgrad { BGRAD_NONE, BGRAD_A, BGRAD_B };

struct Gemm {
    const char *who;
    int m, n, k, batch;
    bool ta, tb;          /* op(A) = A^T, op(B) = B^T */
    Matrix A, B, C, D;    /* C.p NULL: not read */
    float alpha, beta;
    const float *alpha_dev, *beta_dev; /* device pointer mode: read when run */
    Rounding rounding;
    Act act;
    const void *bias;     /* NULL: none; with bgrad, where the bias gradient goes */
    cudaDataType bias_type;
    int64_t bias_stride;
    Bgrad bgrad;
};

/* Elements of the bias (added) or of the bias gradient (written) per matrix
 * of the batch. */
int64_t bias_len(const Gemm &g) { return g.bgrad == BGRAD_B ? g.n : g.m; }

float round_input(float x, Rounding r)
{
    if (r == BF16) return __bfloat162float(__float2bfloat16(x));
    if (r == TF32) {
        /* Nearest, ties away from zero, to 10 stored mantissa bits. */
        uint32_t u;
        memcpy(&u, &x, 4);
        if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
        memcpy(&x, &u, 4);
    }
    return x;
}

float gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* Whether an operand lies in device memory; flags it otherwise. */
bool operand_ok(const Gemm &g, const char *name, const void *p, size_t bytes)
{
    if (bytes == 0 || device_block(p, bytes, nullptr, nullptr)) return true;
    char where[300];
    const unsigned char *base;
    size_t size;
    if (device_block(p, 0, &base, &size))
        snprintf(where, sizeof where, "its %zu bytes run past the end of the %zu-byte cudaMalloc block at %p",
                 bytes, size, (const void *)base);
    else
        describe(p, where, sizeof where);
    fault(cudaErrorIllegalAddress, "cudasim: %s: %s at %p is not device memory it may use (%s)", g.who, name, p,
          where);
    return false;
}

/* Records a product while counting: 2mnk FLOPs per matrix of the batch, each
 * operand read once and D written once (what a tiled GEMM moves at best). */
void count_gemm(const Gemm &g, bool read_c)
{
    double batch = g.batch, mn = (double)g.m * g.n;
    auto bytes = [&](const Matrix &x, double elems) { return elems * (double)x.elem() * (x.stride > 0 ? batch : 1); };
    double rd = bytes(g.A, (double)g.m * g.k) + bytes(g.B, (double)g.k * g.n) + (read_c ? bytes(g.C, mn) : 0);
    double wr = mn * (double)g.D.elem() * batch;
    /* The bias read, or the bias gradient written (its terms are A's or B's, already read). */
    double bias_bytes = g.bias ? (double)bias_len(g) * (g.bias_type == CUDA_R_16BF ? 2 : 4) *
                                     (g.bias_stride > 0 ? batch : 1)
                               : 0;
    (g.bgrad == BGRAD_NONE ? rd : wr) += bias_bytes;
    char name[160];
    snprintf(name, sizeof name, "%s %dx%dx%d%s%s%s", g.who, g.m, g.n, g.k, g.batch > 1 ? " batched" : "",
             g.bgrad == BGRAD_A ? " +bgrada" : g.bgrad == BGRAD_B ? " +bgradb" : g.bias ? " +bias" : "",
             g.act == GELU ? " +gelu" : g.act == RELU ? " +relu" : "");
    count_work(name, CUDASIM_WORK_GEMM, 2.0 * g.m * g.n * g.k * batch, rd, wr);
}

void run_gemm(const Gemm &g)
{
    bool read_c = g.C.p != nullptr;
    if (!operand_ok(g, "A", g.A.p, g.A.extent(g.batch)) || !operand_ok(g, "B", g.B.p, g.B.extent(g.batch)) ||
        !operand_ok(g, "D", g.D.p, g.D.extent(g.batch)) ||
        (g.alpha_dev && !operand_ok(g, "alpha", g.alpha_dev, sizeof(float))) ||
        (g.beta_dev && !operand_ok(g, "beta", g.beta_dev, sizeof(float))))
        return;
    float alpha = g.alpha_dev ? *g.alpha_dev : g.alpha, beta = g.beta_dev ? *g.beta_dev : g.beta;
    read_c = read_c && beta != 0.0f;
    if (read_c && !operand_ok(g, "C", g.C.p, g.C.extent(g.batch))) return;
    size_t bias_elem = g.bias_type == CUDA_R_16BF ? 2 : 4;
    if (g.bias && !operand_ok(g, g.bgrad == BGRAD_NONE ? "the bias" : "the bias gradient", g.bias,
                              ((size_t)(g.batch - 1) * (size_t)g.bias_stride + (size_t)bias_len(g)) * bias_elem))
        return;
    size_t m = (size_t)g.m, n = (size_t)g.n, k = (size_t)g.k;
    std::vector<float> a(m * k), b(k * n), acc(m);
    for (int bt = 0; bt < g.batch; bt++) {
        /* op(A) column-major m x k, op(B) column-major k x n. */
        for (size_t l = 0; l < k; l++)
            for (size_t i = 0; i < m; i++)
                a[l * m + i] = round_input(g.ta ? g.A.get(bt, l, i) : g.A.get(bt, i, l), g.rounding);
        for (size_t j = 0; j < n; j++)
            for (size_t l = 0; l < k; l++)
                b[j * k + l] = round_input(g.tb ? g.B.get(bt, j, l) : g.B.get(bt, l, j), g.rounding);
        for (size_t j = 0; j < n; j++) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (size_t l = 0; l < k; l++) {
                float blj = b[j * k + l];
                const float *al = &a[l * m];
                for (size_t i = 0; i < m; i++) acc[i] += al[i] * blj;
            }
            for (size_t i = 0; i < m; i++) {
                float v = alpha * acc[i];
                if (read_c) v += beta * g.C.get(bt, i, j);
                if (g.bias && g.bgrad == BGRAD_NONE) {
                    size_t bi = (size_t)bt * (size_t)g.bias_stride + i;
                    v += g.bias_type == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *)g.bias)[bi])
                                                   : ((const float *)g.bias)[bi];
                }
                if (g.act == RELU) v = v > 0.0f ? v : 0.0f;
                if (g.act == GELU) v = gelu_tanh(v);
                g.D.set(bt, i, j, v);
            }
        }
        if (g.bgrad != BGRAD_NONE) {
            /* Written, not added: one fp32 sum over k, in k order, of op(A)'s row i or op(B)'s column j as
             * stored (unscaled, unrounded), stored in the bias type. */
            size_t len = (size_t)bias_len(g);
            for (size_t x = 0; x < len; x++) {
                float sum = 0.0f;
                for (size_t l = 0; l < k; l++)
                    sum += g.bgrad == BGRAD_B ? (g.tb ? g.B.get(bt, x, l) : g.B.get(bt, l, x))
                                              : (g.ta ? g.A.get(bt, l, x) : g.A.get(bt, x, l));
                size_t bi = (size_t)bt * (size_t)g.bias_stride + x;
                if (g.bias_type == CUDA_R_16BF) ((__nv_bfloat16 *)g.bias)[bi] = __float2bfloat16(sum);
                else ((float *)g.bias)[bi] = sum;
            }
        }
    }
    count_gemm(g, read_c);
}

/* ---- the classic API ---------------------------------------------------------------- */

cublasContext *blas_of(cublasHandle_t h)
{
    return h && live_handles.count(h) && h->magic == BLAS_MAGIC ? h : nullptr;
}

bool valid_op(cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C; }

int64_t at_least_1(int64_t v) { return v > 1 ? v : 1; }

/* The documented INVALID_VALUE cases of cublas<t>gemm and its Ex and
 * strided-batched forms. */
cublasStatus_t check_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                          int ldc, const void *alpha, const void *beta, int batch)
{
    if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < at_least_1(ta == CUBLAS_OP_N ? m : k) || ldb < at_least_1(tb == CUBLAS_OP_N ? k : n) ||
        ldc < at_least_1(m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

/* Rounding for fp32 inputs under a compute type and math mode. */
bool compute_rounding(cublasComputeType_t ct, cublasMath_t math, cudaDataType ab, Rounding *r)
{
    switch (ct) {
    case CUBLAS_COMPUTE_32F: *r = ab == CUDA_R_32F && (math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH ? TF32 : EXACT; break;
    case CUBLAS_COMPUTE_32F_PEDANTIC: *r = EXACT; break;
    case CUBLAS_COMPUTE_32F_FAST_TF32: *r = ab == CUDA_R_32F ? TF32 : EXACT; break;
    case CUBLAS_COMPUTE_32F_FAST_16BF: *r = ab == CUDA_R_32F ? BF16 : EXACT; break;
    default: return false;
    }
    return true;
}

/* A and B of one type, fp32 or bf16; C fp32, or bf16 with bf16 inputs. */
bool types_supported(cudaDataType ab_a, cudaDataType ab_b, cudaDataType c)
{
    if (ab_a != ab_b) return false;
    if (ab_a == CUDA_R_32F) return c == CUDA_R_32F;
    if (ab_a == CUDA_R_16BF) return c == CUDA_R_32F || c == CUDA_R_16BF;
    return false;
}

cublasStatus_t gemm_ex(const char *who, cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                       int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda,
                       long long strideA, const void *B, cudaDataType Btype, int ldb, long long strideB,
                       const void *beta, void *C, cudaDataType Ctype, int ldc, long long strideC, int batch,
                       cublasComputeType_t computeType, int algo)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasStatus_t st = check_gemm(transa, transb, m, n, k, lda, ldb, ldc, alpha, beta, batch);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    Rounding r;
    if (!types_supported(Atype, Btype, Ctype) || !compute_rounding(computeType, h->math, Atype, &r))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!(algo == CUBLAS_GEMM_DEFAULT || (algo >= CUBLAS_GEMM_ALGO0 && algo <= CUBLAS_GEMM_ALGO23) ||
          (algo >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && algo <= CUBLAS_GEMM_ALGO15_TENSOR_OP)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (sticky_error() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    Gemm g{};
    g.who = who;
    g.m = m, g.n = n, g.k = k, g.batch = batch;
    g.ta = transa != CUBLAS_OP_N, g.tb = transb != CUBLAS_OP_N;
    g.A = Matrix{A, Atype, g.ta ? k : m, g.ta ? m : k, lda, strideA, false};
    g.B = Matrix{B, Btype, g.tb ? n : k, g.tb ? k : n, ldb, strideB, false};
    g.C = Matrix{C, Ctype, m, n, ldc, strideC, false};
    g.D = g.C;
    if (h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) {
        g.alpha_dev = (const float *)alpha;
        g.beta_dev = (const float *)beta;
    } else {
        g.alpha = *(const float *)alpha;
        g.beta = *(const float *)beta;
    }
    g.rounding = r;
    g.act = NONE;
    cudaError_t e = enqueue(h->stream, who, [g]() { run_gemm(g); });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

/* ---- cuBLASLt descriptors -------------------------------------------------------- */

const uint32_t DESC_MAGIC = 0x44455343, LAYOUT_MAGIC = 0x4c41594f, PREF_MAGIC = 0x50524546,
               ALGO_MAGIC = 0x414c474f;

struct Desc {
    uint32_t magic;
    int32_t compute, scale, pointer_mode, transa, transb, transc;
    uint32_t epilogue;
    int32_t bias_type;
    const void *bias;
    int64_t bias_stride;
};
struct Layout {
    uint32_t magic;
    uint32_t type;
    int32_t order, batch;
    uint64_t rows, cols;
    int64_t ld, stride;
};
struct Pref {
    uint32_t magic;
    uint32_t search_mode;
    uint64_t max_workspace;
    uint32_t reduction_mask; /* kept: the one algorithm never splits k, whatever it allows */
};
static_assert(sizeof(Desc) <= sizeof(cublasLtMatmulDescOpaque_t), "Desc fits NVIDIA's opaque storage");
static_assert(sizeof(Layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "Layout fits");
static_assert(sizeof(Pref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "Pref fits");

Desc *desc_of(cublasLtMatmulDesc_t d)
{
    Desc *x = (Desc *)d;
    return x && x->magic == DESC_MAGIC ? x : nullptr;
}
Layout *layout_of(cublasLtMatrixLayout_t l)
{
    Layout *x = (Layout *)l;
    return x && x->magic == LAYOUT_MAGIC ? x : nullptr;
}
Pref *pref_of(cublasLtMatmulPreference_t p)
{
    Pref *x = (Pref *)p;
    return x && x->magic == PREF_MAGIC ? x : nullptr;
}
bool lt_valid(cublasLtHandle_t h) { return h && live_handles.count(h) && (h->magic == LT_MAGIC || h->magic == BLAS_MAGIC); }

/* An attribute's storage in a descriptor, and its size. */
struct Field {
    void *p;
    size_t size;
};
template <class T> Field field(T *p) { return Field{p, sizeof(T)}; }

/* Copies an attribute in when the size matches its type. */
cublasStatus_t set_field(Field f, const void *buf, size_t size)
{
    if (!f.p || !buf || size != f.size) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(f.p, buf, f.size);
    return CUBLAS_STATUS_SUCCESS;
}

/* Copies it out, or says its size when asked with size 0. */
cublasStatus_t get_field(Field f, void *buf, size_t size, size_t *written)
{
    if (!f.p) return CUBLAS_STATUS_INVALID_VALUE;
    if (size == 0) {
        if (!written) return CUBLAS_STATUS_INVALID_VALUE;
        *written = f.size;
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!buf || size != f.size) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, f.p, f.size);
    if (written) *written = f.size;
    return CUBLAS_STATUS_SUCCESS;
}

/* The attributes simulated; any other is CUBLAS_STATUS_INVALID_VALUE. */
Field desc_field(Desc *d, cublasLtMatmulDescAttributes_t attr)
{
    if (!d) return Field{nullptr, 0};
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return field(&d->compute);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return field(&d->scale);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return field(&d->pointer_mode);
    case CUBLASLT_MATMUL_DESC_TRANSA: return field(&d->transa);
    case CUBLASLT_MATMUL_DESC_TRANSB: return field(&d->transb);
    case CUBLASLT_MATMUL_DESC_TRANSC: return field(&d->transc);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return field(&d->epilogue);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return field(&d->bias);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return field(&d->bias_stride);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return field(&d->bias_type);
    default: return Field{nullptr, 0};
    }
}

Field layout_field(Layout *l, cublasLtMatrixLayoutAttribute_t attr)
{
    if (!l) return Field{nullptr, 0};
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return field(&l->type);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return field(&l->order);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return field(&l->rows);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return field(&l->cols);
    case CUBLASLT_MATRIX_LAYOUT_LD: return field(&l->ld);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return field(&l->batch);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return field(&l->stride);
    default: return Field{nullptr, 0};
    }
}

Field pref_field(Pref *p, cublasLtMatmulPreferenceAttributes_t attr)
{
    if (!p) return Field{nullptr, 0};
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return field(&p->search_mode);
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return field(&p->max_workspace);
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: return field(&p->reduction_mask);
    default: return Field{nullptr, 0};
    }
}

/* The matmul of cublasLtMatmul and of the heuristic query, checked: the
 * statuses cublasLt.h documents. */
cublasStatus_t lt_plan(const Desc *d, const Layout *la, const Layout *lb, const Layout *lc, const Layout *ld,
                       Gemm *g)
{
    if (!d || !la || !lb || !lc || !ld) return CUBLAS_STATUS_INVALID_VALUE;
    Rounding r;
    if (d->scale != CUDA_R_32F || !compute_rounding((cublasComputeType_t)d->compute, CUBLAS_DEFAULT_MATH,
                                                    (cudaDataType)la->type, &r))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!types_supported((cudaDataType)la->type, (cudaDataType)lb->type, (cudaDataType)ld->type) ||
        lc->type != ld->type)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    for (const Layout *l : {la, lb, lc, ld})
        if (l->order != CUBLASLT_ORDER_COL && l->order != CUBLASLT_ORDER_ROW) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->pointer_mode != CUBLASLT_POINTER_MODE_HOST && d->pointer_mode != CUBLASLT_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!valid_op((cublasOperation_t)d->transa) || !valid_op((cublasOperation_t)d->transb) ||
        d->transc != CUBLAS_OP_N)
        return CUBLAS_STATUS_INVALID_VALUE;
    Act act = NONE;
    bool bias = false;
    Bgrad bgrad = BGRAD_NONE;
    switch (d->epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT: break;
    case CUBLASLT_EPILOGUE_RELU: act = RELU; break;
    case CUBLASLT_EPILOGUE_BIAS: bias = true; break;
    case CUBLASLT_EPILOGUE_RELU_BIAS: act = RELU, bias = true; break;
    case CUBLASLT_EPILOGUE_GELU: act = GELU; break;
    case CUBLASLT_EPILOGUE_GELU_BIAS: act = GELU, bias = true; break;
    case CUBLASLT_EPILOGUE_BGRADA: bias = true, bgrad = BGRAD_A; break;
    case CUBLASLT_EPILOGUE_BGRADB: bias = true, bgrad = BGRAD_B; break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    int32_t bias_type = d->bias_type == -1 ? (int32_t)ld->type : d->bias_type;
    /* A bias: fp32, or bf16 with a bf16 D. A bias gradient: "the same type as the output elements (Ctype)"
     * (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER; C and D are of one type here). */
    if (bias && bgrad == BGRAD_NONE &&
        !(bias_type == CUDA_R_32F || (bias_type == CUDA_R_16BF && ld->type == CUDA_R_16BF)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (bgrad != BGRAD_NONE && bias_type != (int32_t)lc->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    bool ta = d->transa != CUBLAS_OP_N, tb = d->transb != CUBLAS_OP_N;
    /* BGRADB needs B transposed: NVIDIA's own nvmath-python transposes B for it, "since this epilog requires B
     * to be transposed" (nvmath/linalg/advanced/matmulmod.py). No such rule is stated for BGRADA's A. */
    if (bgrad == BGRAD_B && !tb) return CUBLAS_STATUS_NOT_SUPPORTED;
    uint64_t m = ta ? la->cols : la->rows, k = ta ? la->rows : la->cols;
    uint64_t kb = tb ? lb->cols : lb->rows, n = tb ? lb->rows : lb->cols;
    if (k != kb || lc->rows != m || lc->cols != n || ld->rows != m || ld->cols != n)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) return CUBLAS_STATUS_NOT_SUPPORTED;
    for (const Layout *l : {la, lb, lc, ld}) {
        int64_t need = at_least_1((int64_t)(l->order == CUBLASLT_ORDER_COL ? l->rows : l->cols));
        if (l->ld < need || l->stride < 0) return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (la->batch < 1 || la->batch != lb->batch || la->batch != lc->batch || la->batch != ld->batch)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (bias && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
    auto matrix = [](const Layout *l) {
        return Matrix{nullptr, (cudaDataType)l->type, (int64_t)l->rows, (int64_t)l->cols, l->ld, l->stride,
                      l->order == CUBLASLT_ORDER_ROW};
    };
    *g = Gemm{};
    g->m = (int)m, g->n = (int)n, g->k = (int)k, g->batch = la->batch;
    g->ta = ta, g->tb = tb;
    g->A = matrix(la), g->B = matrix(lb), g->C = matrix(lc), g->D = matrix(ld);
    g->rounding = r;
    g->act = act;
    g->bias = bias ? d->bias : nullptr;
    g->bias_type = (cudaDataType)bias_type;
    g->bias_stride = d->bias_stride;
    g->bgrad = bgrad;
    return CUBLAS_STATUS_SUCCESS;
}

bool same_layout(const Matrix &a, const Matrix &b)
{
    return a.type == b.type && a.rows == b.rows && a.cols == b.cols && a.ld == b.ld && a.stride == b.stride &&
           a.row_order == b.row_order;
}

const char *status_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *status_string(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "the functionality requested requires some license";
    }
    return "unknown error";
}

} /* namespace */

/* ---- cuBLAS ----------------------------------------------------------------------- */

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
{
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    cublasContext *h = new cublasContext;
    h->magic = BLAS_MAGIC;
    h->stream = nullptr;
    h->pointer_mode = CUBLAS_POINTER_MODE_HOST;
    h->math = CUBLAS_DEFAULT_MATH;
    live_handles.insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    live_handles.erase(h);
    h->magic = 0;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t *mode)
{
    cublasContext *h = blas_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

/* No algorithm here needs a workspace; accepted for compatibility. */
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *, size_t)
{
    return blas_of(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char *cublasGetStatusName(cublasStatus_t status) { return status_name(status); }
const char *cublasGetStatusString(cublasStatus_t status) { return status_string(status); }

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                              int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc)
{
    return gemm_ex("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F,
                   ldb, 0, beta, C, CUDA_R_32F, ldc, 0, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                         const float *A, int lda, long long int strideA, const float *B, int ldb,
                                         long long int strideB, const float *beta, float *C, int ldc,
                                         long long int strideC, int batchCount)
{
    return gemm_ex("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda,
                   strideA, B, CUDA_R_32F, ldb, strideB, beta, C, CUDA_R_32F, ldc, strideC, batchCount,
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda,
                            const void *B, cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
    return gemm_ex("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                   beta, C, Ctype, ldc, 0, 1, computeType, algo);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k, const void *alpha,
                                          const void *A, cudaDataType Atype, int lda, long long int strideA,
                                          const void *B, cudaDataType Btype, int ldb, long long int strideB,
                                          const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo)
{
    return gemm_ex("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
                   B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
}

/* ---- cuBLASLt ---------------------------------------------------------------------- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle)
{
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtContext *h = new cublasLtContext{LT_MAGIC};
    live_handles.insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle)
{
    if (!handle || !live_handles.count(handle) || handle->magic != LT_MAGIC) return CUBLAS_STATUS_NOT_INITIALIZED;
    live_handles.erase(handle);
    handle->magic = 0;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusName(cublasStatus_t status) { return status_name(status); }
const char *cublasLtGetStatusString(cublasStatus_t status) { return status_string(status); }
size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }

cublasStatus_t cublasLtMatmulDescInit_internal(cublasLtMatmulDesc_t matmulDesc, size_t size,
                                               cublasComputeType_t computeType, cudaDataType_t scaleType)
{
    if (!matmulDesc || size < sizeof(Desc)) return CUBLAS_STATUS_ALLOC_FAILED;
    Desc d{};
    d.magic = DESC_MAGIC;
    d.compute = computeType;
    d.scale = scaleType;
    d.pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d.transa = d.transb = d.transc = CUBLAS_OP_N;
    d.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d.bias_type = -1;
    memcpy((void *)matmulDesc, &d, sizeof d);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType)
{
    if (!matmulDesc) return CUBLAS_STATUS_INVALID_VALUE;
    *matmulDesc = new cublasLtMatmulDescOpaque_t();
    return cublasLtMatmulDescInit_internal(*matmulDesc, sizeof **matmulDesc, computeType, scaleType);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc)
{
    if (!desc_of(matmulDesc)) return matmulDesc ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
    desc_of(matmulDesc)->magic = 0;
    delete matmulDesc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t sizeInBytes)
{
    return set_field(desc_field(desc_of(matmulDesc), attr), buf, sizeInBytes);
}

cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr,
                                              void *buf, size_t sizeInBytes, size_t *sizeWritten)
{
    return get_field(desc_field(desc_of(matmulDesc), attr), buf, sizeInBytes, sizeWritten);
}

cublasStatus_t cublasLtMatrixLayoutInit_internal(cublasLtMatrixLayout_t matLayout, size_t size, cudaDataType type,
                                                 uint64_t rows, uint64_t cols, int64_t ld)
{
    if (!matLayout || size < sizeof(Layout)) return CUBLAS_STATUS_ALLOC_FAILED;
    Layout l{LAYOUT_MAGIC, (uint32_t)type, CUBLASLT_ORDER_COL, 1, rows, cols, ld, 0};
    memcpy((void *)matLayout, &l, sizeof l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld)
{
    if (!matLayout) return CUBLAS_STATUS_INVALID_VALUE;
    *matLayout = new cublasLtMatrixLayoutOpaque_t();
    return cublasLtMatrixLayoutInit_internal(*matLayout, sizeof **matLayout, type, rows, cols, ld);
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout)
{
    if (!layout_of(matLayout)) return matLayout ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
    layout_of(matLayout)->magic = 0;
    delete matLayout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t sizeInBytes)
{
    return set_field(layout_field(layout_of(matLayout), attr), buf, sizeInBytes);
}

cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t matLayout, cublasLtMatrixLayoutAttribute_t attr,
                                                void *buf, size_t sizeInBytes, size_t *sizeWritten)
{
    return get_field(layout_field(layout_of(matLayout), attr), buf, sizeInBytes, sizeWritten);
}

cublasStatus_t cublasLtMatmulPreferenceInit_internal(cublasLtMatmulPreference_t pref, size_t size)
{
    if (!pref || size < sizeof(Pref)) return CUBLAS_STATUS_ALLOC_FAILED;
    Pref p{PREF_MAGIC, 0, 0, CUBLASLT_REDUCTION_SCHEME_MASK};
    memcpy((void *)pref, &p, sizeof p);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
{
    if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
    *pref = new cublasLtMatmulPreferenceOpaque_t();
    return cublasLtMatmulPreferenceInit_internal(*pref, sizeof **pref);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)
{
    if (!pref_of(pref)) return pref ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
    pref_of(pref)->magic = 0;
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t sizeInBytes)
{
    return set_field(pref_field(pref_of(pref), attr), buf, sizeInBytes);
}

cublasStatus_t cublasLtMatmulPreferenceGetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, void *buf,
                                                    size_t sizeInBytes, size_t *sizeWritten)
{
    return get_field(pref_field(pref_of(pref), attr), buf, sizeInBytes, sizeWritten);
}

/* One algorithm, needing no workspace, for every supported problem. */
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int *returnAlgoCount)
{
    if (!lt_valid(lightHandle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount || !pref_of(preference))
        return CUBLAS_STATUS_INVALID_VALUE;
    Gemm g;
    cublasStatus_t st = lt_plan(desc_of(operationDesc), layout_of(Adesc), layout_of(Bdesc), layout_of(Cdesc),
                                layout_of(Ddesc), &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    r.algo.data[0] = ALGO_MAGIC;
    r.workspaceSize = 0;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    heuristicResultsArray[0] = r;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                              cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t stream)
{
    if (!lt_valid(lightHandle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    Gemm g;
    cublasStatus_t st = lt_plan(desc_of(computeDesc), layout_of(Adesc), layout_of(Bdesc), layout_of(Cdesc),
                                layout_of(Ddesc), &g);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!alpha || !beta || !A || !B || !D) return CUBLAS_STATUS_INVALID_VALUE;
    if (algo && algo->data[0] != ALGO_MAGIC) return CUBLAS_STATUS_INVALID_VALUE;
    if (!valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    const Desc *d = desc_of(computeDesc);
    if (C == D && !same_layout(g.C, g.D)) return CUBLAS_STATUS_INVALID_VALUE; /* in place: one layout */
    g.who = "cublasLtMatmul";
    g.A.p = A, g.B.p = B, g.D.p = D;
    if (d->pointer_mode == CUBLASLT_POINTER_MODE_DEVICE) {
        g.alpha_dev = (const float *)alpha;
        g.beta_dev = (const float *)beta;
    } else {
        g.alpha = *(const float *)alpha;
        g.beta = *(const float *)beta;
    }
    bool beta_zero = d->pointer_mode == CUBLASLT_POINTER_MODE_HOST && g.beta == 0.0f;
    if (!C && !beta_zero) return CUBLAS_STATUS_INVALID_VALUE;
    g.C.p = beta_zero ? nullptr : C; /* never read */
    if (sticky_error() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (g.m == 0 || g.n == 0) return CUBLAS_STATUS_SUCCESS;
    cudaError_t e = enqueue(stream, "cublasLtMatmul", [g]() { run_gemm(g); });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
