/* The CUDA backend: DistilBERT's step on an NVIDIA GPU, the same
 * orchestration as the CPU model (models/distilbert.c) over the same spec,
 * op for op: the kernels of kernels/ for everything but the GEMMs, which go
 * through cuBLAS and cuBLASLt.
 *
 * Precision (backend_set_precision): fp32 (tensor-core math off, so fp32
 * means fp32), fp32 with TF32 GEMMs, or bf16 mixed precision: activations
 * and their gradients in bf16 (the activation plan's bf16 tensors), the
 * GEMMs on bf16 copies of the weights (params16, refreshed by AdamW's own
 * pass) accumulating in fp32, and in fp32 the master weights, their
 * gradients (the weight-gradient GEMMs write fp32), the moments, the
 * LayerNorm statistics, the logits, the loss and the gradient norm. Every
 * op dispatches on it in one wrapper below, so the step reads the same in
 * each. bf16 needs the fused attention (the unfused path is fp32 only).
 *
 * Memory: parameters, gradients and the two AdamW moments one device
 * allocation each; the activations one arena laid out by the activation plan
 * for the reserved (B, T); one workspace for the kernels that need scratch,
 * sized for the largest of them, and one of the column sums' own (LayerNorm's
 * parameter gradients; the linear layers' bias gradients come from the
 * weight-gradient GEMM's epilogue), whose counters are zeroed once and left
 * zero by each sum. Nothing is allocated inside a step (unless
 * a batch outgrows what was reserved). Per step only ids, mask and targets
 * go to the device, and the loss and the gradient norm come back. Work runs
 * on the backend's own stream; every read of a result waits for it. Under
 * ZeRO-1 (set_comm with shard) the moments are this rank's shard alone.
 *
 * Row-major tensors seen by cuBLAS (column-major): a row-major X[r][c] is
 * the column-major c x r matrix X^T, so out = inp W^T (nn.Linear) is the
 * column-major out^T = W' inp^T with W' = op_T(W's memory). Each GEMM below
 * names the product it computes in row-major terms. */
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#ifdef GENRE_NCCL
#include <nccl.h>
#endif

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "models/backend_impl.h"
#include "src/core/err.h"

/* A linear layer's GEMM (N rows, C in, OC out) planned for cuBLASLt: the
 * forward with its bias, the input gradient (dout W, plus a C matrix), or
 * the weight gradient with the bias gradient from its epilogue. */
enum { LT_PLANS = 48 };
typedef enum { LT_FORWARD, LT_DINP, LT_DWEIGHT } LtKind;
typedef struct {
    LtKind kind;
    int N, C, OC;
    cublasComputeType_t compute;
    cudaDataType_t in, out;      /* of A and B (weights, activations, gradients); of D and the bias (or its gradient) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulAlgo_t algo;
} LtPlan;

/* A phase of the step captured as a CUDA graph (backend_set_graphs), keyed
 * by everything its kernels take by value. */
enum { GRAPHS = 24, BLAS_WORKSPACE = 32 << 20 };
typedef enum { PHASE_FORWARD, PHASE_BACKWARD, PHASE_STEP } Phase;
typedef struct {
    Phase phase;
    int B, T;
    bool train, cls_only, mask, summing;
    float value; /* the backward's grad_scale, the step's max_norm */
} GraphKey;
typedef struct {
    GraphKey key;
    cudaGraphExec_t exec;
} Graph;

typedef struct {
    Backend base;
    cudaStream_t stream;
    cublasHandle_t blas;
    size_t n;                    /* parameters */
    float *params, *grads, *m, *v;
    bf16 *params16;              /* bf16: the GEMMs' copy of params */
    float *scratch;              /* a later micro-batch's own gradient (loss_backward) */
    float *gdst;                 /* where the backward writes: grads, or scratch */
    bool summing;                /* grads hold a batch's since zero_grad */
#ifdef GENRE_NCCL
    ncclComm_t nccl;             /* made by set_comm */
    cudaStream_t comm_stream;    /* the all-reduces, beside the backward */
    cudaEvent_t *bucket_done;    /* per bucket (bucket_sum): its gradients are final */
    cudaEvent_t summed;          /* the comm stream has summed every bucket */
    int next_bucket;             /* of the reducing backward; 0: none issued this step */
    /* ZeRO-1 (set_comm with shard): m and v hold this rank's part [lo, hi)
     * of the parameters alone, in blocks of `shard` values (adamw_shard);
     * params and grads are padded with zeros to world x shard, so that the
     * collectives move whole blocks. */
    bool sharded;
    int world;
    size_t lo, hi, shard;
    float *mine;                 /* shard: this rank's summed gradients, then its parameters */
    double *chunk_sums;          /* (world + 1) x chunks of a shard: the norm's, this rank's then all ranks' */
#else
    float *host_grads;           /* staging for the all-reduce over MPI */
#endif
    AdamWSegment *seg;           /* device copy of the weight-decay table */
    int nseg, t;
    int max_B, max_T;            /* what the buffers below hold */
    char *acts;                  /* the activation arena, plan for (max_B, max_T) */
    void *work;
    size_t work_size;
    void *colsum_work;           /* the column sums' alone: its counters zeroed once, left zero (kernels.h) */
    int32_t *ids, *mask, *emb_plan; /* device: B x T, B x T, embedding_plan_len(B x T) */
    int32_t *emb_plan_host;
    PhiloxKey *keys, *keys_host; /* device and staging: each dropout site's key for the last forward */
    int n_keys;                  /* dropout sites: 2 + 2 x layers */
    AdamWStep *adam_step;        /* device: the step's AdamW constants */
    void *blas_work;             /* cuBLAS's workspace, ours: no allocation inside a captured graph */
    bool has_mask;               /* the last forward had a padding mask */
    float *targets, *dlogits;    /* device: max_B x labels each */
    bf16 *dlogits16;             /* bf16: dlogits rounded, for the head's GEMMs */
    float *loss_weights;         /* device: 2 x labels, LOSS_BCE_LOGW's weights then the class weights */
    float *scalars;              /* device: the mean loss, the gradient norm */
    Loss loss;                   /* its weights pointing into loss_weights */
    ActPlan plan;                /* of the last forward's (B, T) */
    int B, T;                    /* the last forward's; B = 0 before the first */
    ForwardArgs fa;
    bool fused_attention;        /* kernels/attention.cu builds the head size */
    Precision prec;              /* backend_set_precision */
    bool bf16;                   /* prec == PRECISION_BF16 */
    LtPlan lt[LT_PLANS];         /* the linear layers' cuBLASLt plans, by kind, shape and types */
    int n_lt;
    float grad_scale, max_norm;  /* of the backward, of the step: read by their work */
    bool graphs;                 /* backend_set_graphs */
    Graph graph[GRAPHS];         /* captured phases, by key */
    int n_graphs;
} CudaBackend;

static CudaBackend *cuda(Backend *be) { return (CudaBackend *)be; }

static void lt_plans_free(CudaBackend *c)
{
    for (int i = 0; i < c->n_lt; i++) {
        LtPlan *p = &c->lt[i];
        if (p->op) cublasLtMatmulDescDestroy(p->op);
        if (p->a) cublasLtMatrixLayoutDestroy(p->a);
        if (p->b) cublasLtMatrixLayoutDestroy(p->b);
        if (p->d) cublasLtMatrixLayoutDestroy(p->d);
        if (p->pref) cublasLtMatmulPreferenceDestroy(p->pref);
    }
    c->n_lt = 0;
}

static void graphs_free(CudaBackend *c)
{
    for (int i = 0; i < c->n_graphs; i++) cudaGraphExecDestroy(c->graph[i].exec);
    c->n_graphs = 0;
}

/* Runs work(c), a phase's device work on c->stream, as a CUDA graph:
 * captured the first time its key is seen, replayed after. Without graphs
 * (or on the paths that cannot be captured, direct) it launches directly. */
static int run_phase(CudaBackend *c, bool direct, const GraphKey *key, int (*work)(CudaBackend *))
{
    if (!c->graphs || direct) return work(c);
    for (int i = 0; i < c->n_graphs; i++)
        if (!memcmp(&c->graph[i].key, key, sizeof *key)) {
            CUDA_CHECK(cudaGraphLaunch(c->graph[i].exec, c->stream));
            return 0;
        }
    if (c->n_graphs == GRAPHS) graphs_free(c); /* more shapes than a run uses: start over */
    cudaGraph_t g = NULL;
    CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeGlobal));
    int rc = work(c);
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (rc || e != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        return rc ? -1 : err_set("CUDA graph capture: %s", cudaGetErrorString(e));
    }
    Graph *slot = &c->graph[c->n_graphs];
    e = cudaGraphInstantiate(&slot->exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) return err_set("cudaGraphInstantiate: %s", cudaGetErrorString(e));
    slot->key = *key;
    c->n_graphs++;
    CUDA_CHECK(cudaGraphLaunch(slot->exec, c->stream));
    return 0;
}

/* A zeroed key (its padding too: keys compare with memcmp). */
static GraphKey graph_key(const CudaBackend *c, Phase phase, float value)
{
    GraphKey k;
    memset(&k, 0, sizeof k);
    k.phase = phase, k.B = c->B, k.T = c->T, k.train = c->fa.train, k.cls_only = c->fa.cls_only;
    k.mask = c->has_mask, k.summing = c->summing, k.value = value;
    return k;
}

/* Element i of activation id (bf16 or fp32, as the plan says); AF: an fp32 one's. */
static void *At(const CudaBackend *c, ActId id, size_t i)
{
    return c->plan.n[id] ? c->acts + c->plan.off[id] + i * c->plan.size[id] : NULL;
}
static void *A(const CudaBackend *c, ActId id) { return At(c, id, 0); }
static float *AF(const CudaBackend *c, ActId id) { return A(c, id); }
static float *P(const CudaBackend *c, ParamId id, int l) { return c->params + layout_slot(&c->base.lay, id, l)->off; }
/* A weight as the GEMMs read it: the bf16 copy, or the fp32 parameters. */
static void *W(const CudaBackend *c, ParamId id, int l)
{
    size_t off = layout_slot(&c->base.lay, id, l)->off;
    return c->bf16 ? (void *)(c->params16 + off) : (void *)(c->params + off);
}
/* Bytes per activation element of the stream's tensors. */
static size_t act_size(const CudaBackend *c) { return c->bf16 ? 2 : 4; }
/* gdst is scratch while a later micro-batch's gradient is computed alone. */
static float *G(const CudaBackend *c, ParamId id, int l) { return c->gdst + layout_slot(&c->base.lay, id, l)->off; }

/* ---- GEMMs ------------------------------------------------------------------ */

/* C (m x n, column-major, ldc) = alpha op(A) op(B) + beta C, batched with
 * strides, all fp32: the unfused attention's products (fp32 only; the
 * linear layers' GEMMs are cuBLASLt's, below). */
static int gemm(CudaBackend *c, bool ta, bool tb, int m, int n, int k, const float *a, int lda, long long sa,
                const float *b, int ldb, long long sb, float beta, float *out, int ldc, long long sc, int batch)
{
    const float one = 1.0f;
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (c->bf16) return err_set("backend: the unfused attention's GEMMs are fp32 only");
    if (batch == 1)
        CUBLAS_CHECK(cublasSgemm(c->blas, oa, ob, m, n, k, &one, a, lda, b, ldb, &beta, out, ldc));
    else
        CUBLAS_CHECK(cublasSgemmStridedBatched(c->blas, oa, ob, m, n, k, &one, a, lda, sa, b, ldb, sb, &beta, out,
                                               ldc, sc, batch));
    return 0;
}

/* The cuBLASLt plan of one linear layer's GEMM, shape and types: its
 * descriptors and the algorithm chosen once, so that a shape always runs
 * the same algorithm (the same bits every step), never one splitting k (no
 * workspace). */
static int lt_plan_for(CudaBackend *c, LtKind kind, int N, int C, int OC, cudaDataType_t out_type,
                       const void *bias, LtPlan **out)
{
    cublasComputeType_t compute = c->prec == PRECISION_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cudaDataType_t in = c->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    for (int i = 0; i < c->n_lt; i++) {
        LtPlan *p = &c->lt[i];
        if (p->kind == kind && p->N == N && p->C == C && p->OC == OC && p->compute == compute && p->in == in &&
            p->out == out_type) {
            *out = p;
            return 0;
        }
    }
    if (c->n_lt == LT_PLANS) lt_plans_free(c); /* more shapes than a run uses: start over */
    LtPlan *p = &c->lt[c->n_lt];
    memset(p, 0, sizeof *p);
    p->kind = kind, p->N = N, p->C = C, p->OC = OC, p->compute = compute, p->in = in, p->out = out_type;
    c->n_lt++; /* owned from here: lt_plans_free destroys what was made */
    cublasLtHandle_t lt = (cublasLtHandle_t)c->blas; /* a cuBLAS handle is a cuBLASLt one (NVIDIA documents the cast) */
    cublasOperation_t t = CUBLAS_OP_T;
    cublasLtEpilogue_t epi = kind == LT_DWEIGHT ? CUBLASLT_EPILOGUE_BGRADB : CUBLASLT_EPILOGUE_BIAS;
    uint32_t no_split = CUBLASLT_REDUCTION_SCHEME_NONE;
    uint64_t no_workspace = 0;
    int found = 0;
    cublasLtMatmulHeuristicResult_t h;
    int32_t bias_type = out_type; /* bias and bias gradient: the output's type (cuBLASLt's rule outside FP8) */
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, compute, CUDA_R_32F));
    if (kind == LT_FORWARD) {
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                    sizeof bias_type));
        /* A bias pointer as the calls will have (its alignment may steer the choice); each call sets its own. */
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        /* Column-major: out^T (OC x N) = W^T (W is C x OC stored) inp^T (C x N), the bias one per row. */
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in, C, OC, C));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in, C, N, C));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, out_type, OC, N, OC));
    } else if (kind == LT_DINP) {
        /* Column-major: dinp^T (C x N) = W (C x OC stored) dout^T (OC x N) + beta C. */
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in, C, OC, C));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in, OC, N, OC));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, out_type, C, N, C));
    } else {
        /* Column-major: dW^T (C x OC, fp32) = inp^T (C x N stored) op_T(dout^T (OC x N stored)) + beta C, so
         * k = N, and BGRADB (cublasLt.h: "bias gradient based on the input matrix B", one value per column of
         * D, "the reduction happens over the GEMM's k dimension") is dout's column sums: dbias[OC]. B is
         * transposed, as BGRADB requires (NVIDIA's nvmath-python: "this epilog requires B to be transposed").
         * The bias gradient is of D's type, fp32 ("the same type as the output elements (Ctype)"), whether the
         * inputs are fp32 or bf16. */
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &t, sizeof t));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                    sizeof bias_type));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in, C, N, C));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in, OC, N, OC));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, out_type, C, OC, C));
    }
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p->pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                      &no_split, sizeof no_split));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &no_workspace, sizeof no_workspace));
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->a, p->b, p->d, p->d, p->pref, 1, &h, &found));
    if (found < 1) return err_set("cuBLASLt: no algorithm for the %d x %d x %d linear layer", OC, N, C);
    p->algo = h.algo;
    *out = p;
    return 0;
}

/* out[N][OC] = inp[N][C] W[OC][C]^T + bias (src/ops/linear.h), the bias added
 * by cuBLASLt's epilogue to the fp32 sums before they are stored. Layer
 * (id, l)'s weight W and bias id + 1; out an activation, or with out32 an
 * fp32 tensor (the logits, their bias the fp32 parameters). */
static int linear_forward_gpu(CudaBackend *c, void *out, bool out32, const void *inp, ParamId id, int l, int N,
                              int C, int OC)
{
    LtPlan *p = NULL;
    const void *w = W(c, id, l), *bias = out32 ? (const void *)P(c, (ParamId)(id + 1), l) : W(c, (ParamId)(id + 1), l);
    if (lt_plan_for(c, LT_FORWARD, N, C, OC, out32 || !c->bf16 ? CUDA_R_32F : CUDA_R_16BF, bias, &p)) return -1;
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    CUBLAS_CHECK(cublasLtMatmul((cublasLtHandle_t)c->blas, p->op, &one, w, p->a, inp, p->b, &zero, out, p->d, out,
                                p->d, &p->algo, NULL, 0, c->stream));
    return 0;
}

/* dinp = dout W + plus (plus: NULL, dinp itself to accumulate, or another
 * gradient the residual brings, read as cuBLASLt's C: no copy, no zeroing),
 * dW += dout^T inp and dbias = the column sums of dout, for layer (id, l)
 * (weight id, bias id + 1); dinp may be NULL. One cuBLASLt call does dW and
 * dbias (LT_DWEIGHT): the GEMM accumulates into dW (beta = 1), its BGRADB
 * epilogue WRITES dbias (cuBLASLt stores the bias gradient, it does not add
 * to it). That equals the += of the CPU's op (src/ops/linear.c) because
 * dbias is zero when written: the backward writes into gdst, which is grads
 * zeroed by cuda_zero_grad (or at open) for the first batch since then, and
 * scratch zeroed in cuda_loss_backward for a later one, and every linear
 * layer's backward runs once per backward (each (id, l) appears once in
 * backward, block_backward and cls_block_backward), so no bias gradient is
 * written twice in one. A second use of a layer within one backward would
 * need its own bias gradient buffer, added afterwards. */
static int linear_backward_gpu(CudaBackend *c, void *dinp, const void *plus, ParamId id, int l, const void *dout,
                               const void *inp, int N, int C, int OC)
{
    float *dw = G(c, id, l), *dbias = G(c, (ParamId)(id + 1), l);
    const cublasLtHandle_t lt = (cublasLtHandle_t)c->blas;
    const float one = 1.0f;
    LtPlan *p = NULL;
    if (dinp) {
        const float beta = plus ? 1.0f : 0.0f;
        if (lt_plan_for(c, LT_DINP, N, C, OC, c->bf16 ? CUDA_R_16BF : CUDA_R_32F, NULL, &p)) return -1;
        CUBLAS_CHECK(cublasLtMatmul(lt, p->op, &one, W(c, id, l), p->a, dout, p->b, &beta, plus ? plus : dinp, p->d,
                                    dinp, p->d, &p->algo, NULL, 0, c->stream));
    }
    if (lt_plan_for(c, LT_DWEIGHT, N, C, OC, CUDA_R_32F, dbias, &p)) return -1;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &dbias, sizeof dbias));
    CUBLAS_CHECK(cublasLtMatmul(lt, p->op, &one, inp, p->a, dout, p->b, &one, dw, p->d, dw, p->d, &p->algo, NULL, 0,
                                c->stream));
    return 0;
}

static int zero(CudaBackend *c, float *p, size_t n)
{
    CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), c->stream));
    return 0;
}

static int copy_dev(CudaBackend *c, float *dst, const float *src, size_t n)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, c->stream));
    return 0;
}

/* ---- the ops at the backend's precision --------------------------------------
 * One wrapper per kernel family: activations are void * here, of the
 * precision's type; parameters, their gradients and statistics fp32. */

static int zero_act(CudaBackend *c, void *p, size_t n)
{
    CUDA_CHECK(cudaMemsetAsync(p, 0, n * act_size(c), c->stream));
    return 0;
}

static int embedding_fwd(CudaBackend *c, void *out, int B, int T, int D)
{
    return c->bf16 ? embedding_forward_cuda_bf16(out, c->ids, P(c, P_WTE, 0), P(c, P_WPE, 0), B, T, D, c->stream)
                   : embedding_forward_cuda(out, c->ids, P(c, P_WTE, 0), P(c, P_WPE, 0), B, T, D, c->stream);
}

static int embedding_bwd(CudaBackend *c, const void *dout, int B, int T, int D)
{
    float *dwte = G(c, P_WTE, 0), *dwpe = G(c, P_WPE, 0);
    return c->bf16 ? embedding_backward_cuda_bf16(dwte, dwpe, dout, c->ids, c->emb_plan, B, T, D, c->stream)
                   : embedding_backward_cuda(dwte, dwpe, dout, c->ids, c->emb_plan, B, T, D, c->stream);
}

/* LayerNorm of rows x dim with parameters (wid, wid + 1) of layer l. */
static int layernorm_fwd(CudaBackend *c, void *out, float *mean, float *rstd, const void *inp, ParamId wid, int l,
                         int rows)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    const float *w = P(c, wid, l), *b = P(c, (ParamId)(wid + 1), l);
    return c->bf16 ? layernorm_forward_cuda_bf16(out, mean, rstd, inp, w, b, rows, cfg->dim, cfg->layer_norm_eps,
                                                 c->stream)
                   : layernorm_forward_cuda(out, mean, rstd, inp, w, b, rows, cfg->dim, cfg->layer_norm_eps,
                                            c->stream);
}

/* res = dropout(inp) + residual (drop NULL: no dropout), then out = LayerNorm(res): one kernel. */
static int residual_layernorm_fwd(CudaBackend *c, void *out, float *mean, float *rstd, void *res, const void *inp,
                                  const void *residual, const DropoutSite *drop, ParamId wid, int l, int rows)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    const float *w = P(c, wid, l), *b = P(c, (ParamId)(wid + 1), l);
    return c->bf16 ? layernorm_residual_forward_cuda_bf16(out, res, mean, rstd, inp, residual, w, b, rows, cfg->dim,
                                                          cfg->layer_norm_eps, drop, c->stream)
                   : layernorm_residual_forward_cuda(out, res, mean, rstd, inp, residual, w, b, rows, cfg->dim,
                                                     cfg->layer_norm_eps, drop, c->stream);
}

static int layernorm_bwd(CudaBackend *c, void *dinp, const void *dout, const void *inp, const float *mean,
                         const float *rstd, ParamId wid, int l, int rows)
{
    int D = c->base.lay.cfg.dim;
    float *dw = G(c, wid, l), *db = G(c, (ParamId)(wid + 1), l);
    const float *w = P(c, wid, l);
    return c->bf16 ? layernorm_backward_cuda_bf16(dinp, false, dw, db, dout, inp, w, mean, rstd, rows, D,
                                                  c->colsum_work, c->stream)
                   : layernorm_backward_cuda(dinp, false, dw, db, dout, inp, w, mean, rstd, rows, D, c->colsum_work,
                                             c->stream);
}

/* Its backward: dres = LayerNorm's input gradient, dinp = that through the dropout's backward. */
static int residual_layernorm_bwd(CudaBackend *c, void *dres, void *dinp, const void *dout, const void *res,
                                  const float *mean, const float *rstd, const DropoutSite *drop, ParamId wid, int l,
                                  int rows)
{
    int D = c->base.lay.cfg.dim;
    float *dw = G(c, wid, l), *db = G(c, (ParamId)(wid + 1), l);
    const float *w = P(c, wid, l);
    return c->bf16 ? layernorm_residual_backward_cuda_bf16(dres, dinp, dw, db, dout, res, w, mean, rstd, rows, D,
                                                           drop, c->colsum_work, c->stream)
                   : layernorm_residual_backward_cuda(dres, dinp, dw, db, dout, res, w, mean, rstd, rows, D, drop,
                                                      c->colsum_work, c->stream);
}

static int gelu_fwd(CudaBackend *c, void *out, const void *inp, size_t n)
{
    return c->bf16 ? gelu_forward_cuda_bf16(out, inp, n, c->stream) : gelu_forward_cuda(out, inp, n, c->stream);
}

static int gelu_bwd(CudaBackend *c, void *dinp, const void *dout, const void *inp, size_t n)
{
    return c->bf16 ? gelu_backward_cuda_bf16(dinp, false, dout, inp, n, c->stream)
                   : gelu_backward_cuda(dinp, false, dout, inp, n, c->stream);
}

static int relu_fwd(CudaBackend *c, void *out, const void *inp, size_t n)
{
    return c->bf16 ? relu_forward_cuda_bf16(out, inp, n, c->stream) : relu_forward_cuda(out, inp, n, c->stream);
}

static int relu_bwd(CudaBackend *c, void *dinp, const void *dout, const void *inp, size_t n)
{
    return c->bf16 ? relu_backward_cuda_bf16(dinp, false, dout, inp, n, c->stream)
                   : relu_backward_cuda(dinp, false, dout, inp, n, c->stream);
}

/* The [CLS] rows: row b of the compact side is row b * T of the wide one. */
static int cls_gather(CudaBackend *c, void *dst, const void *src)
{
    int B = c->B, D = c->base.lay.cfg.dim, T = c->T;
    return c->bf16 ? rows_gather_cuda_bf16(dst, src, B, D, T, c->stream)
                   : rows_gather_cuda(dst, src, B, D, T, c->stream);
}

static int cls_scatter_add(CudaBackend *c, void *dst, const void *src)
{
    int B = c->B, D = c->base.lay.cfg.dim, T = c->T;
    return c->bf16 ? rows_scatter_add_cuda_bf16(dst, src, B, D, T, c->stream)
                   : rows_scatter_add_cuda(dst, src, B, D, T, c->stream);
}

/* Dropout site `site`'s Philox key (models/distilbert_spec.h), in device
 * memory: the forward writes every site's for its (seed, key) before it
 * runs, so a replayed graph draws this step's masks. */
static const PhiloxKey *K(const CudaBackend *c, int site) { return c->keys + site; }

/* Dropout of n elements at dropout site `site`. */
static int dropout_fwd(CudaBackend *c, void *out, const void *inp, size_t n, float p, int site)
{
    return c->bf16 ? dropout_forward_cuda_bf16(out, inp, n, p, K(c, site), c->stream)
                   : dropout_forward_cuda(out, inp, n, p, K(c, site), c->stream);
}

static int dropout_bwd(CudaBackend *c, void *dinp, const void *dout, size_t n, float p, int site)
{
    return c->bf16 ? dropout_backward_cuda_bf16(dinp, false, dout, n, p, K(c, site), c->stream)
                   : dropout_backward_cuda(dinp, false, dout, n, p, K(c, site), c->stream);
}

/* Layer l's FFN output dropout, fused into the LayerNorm after it; rows of
 * the block's B x T x dim (cls: the [CLS] rows, row b at b x T). */
static DropoutSite ffn_dropout(const CudaBackend *c, int l, bool cls)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    uint64_t D = (uint64_t)cfg->dim;
    return (DropoutSite){c->fa.train ? cfg->dropout : 0.0f, K(c, DROP_FFN + 2 * l), 0, cls ? (uint64_t)c->T * D : D};
}

/* ---- attention (src/ops/attention.h) ----------------------------------------
 * Fused (kernels/attention.cu: no T x T tensors, each row's log-sum-exp
 * kept in A_LSE) where the head size is built, else per head through
 * cuBLAS, batched over the sequences, with the probabilities kept. */

/* Rows: T queries per (batch, head) for the full block, 1 for the [CLS]
 * block (q then holds B rows, one per sequence). Layer l's saved tensors. */
static int attention_forward_gpu(CudaBackend *c, int l, void *out, const void *q, const void *k, const void *v,
                                 int rows, float p, int site)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, H = cfg->n_heads, C = cfg->dim, hs = C / H;
    const PhiloxKey *key = K(c, site);
    float *lse = AF(c, A_LSE) + (size_t)l * B * H * T;
    if (c->fused_attention)
        return c->bf16 ? attention_fused_forward_cuda_bf16(out, lse, q, k, v, AF(c, A_MASK_ADD), B, T, H, hs, rows, p,
                                                           key, c->stream)
                       : attention_fused_forward_cuda(out, lse, q, k, v, AF(c, A_MASK_ADD), B, T, H, hs, rows, p,
                                                      key, c->stream);
    /* fp32 from here: bf16 needs the fused kernels (backend_set_precision) */
    size_t Att = (size_t)B * H * T * T;
    float *preatt = AF(c, A_PREATT), *att = AF(c, A_ATT) + l * Att;
    float *attd = A(c, A_ATT_DROP) ? AF(c, A_ATT_DROP) + l * Att : NULL;
    const float *qf = q, *kf = k, *vf = v;
    float *outf = out;
    long long seq = (long long)T * C, q_seq = rows == 1 ? C : seq, scores = (long long)rows * T;
    for (int h = 0; h < H; h++) /* preatt[b,h] (rows x T) = q[b,h] k[b,h]^T */
        if (gemm(c, true, false, T, rows, hs, kf + h * hs, C, seq, qf + h * hs, C, q_seq, 0.0f,
                 preatt + h * scores, T, H * scores, B))
            return -1;
    if (softmax_forward_cuda(att, preatt, AF(c, A_MASK_ADD), 1.0f / sqrtf((float)hs), B * H * rows, T, H * rows,
                             c->stream))
        return -1;
    const float *probs = att;
    if (p > 0.0f) {
        /* The [CLS] row of (batch, head) bh is row 0 of the full op's T x T block. */
        if (rows == 1 ? dropout_forward_rows_cuda(attd, att, B * H, T, 0, (uint64_t)T * T, p, key, c->stream)
                      : dropout_forward_cuda(attd, att, (size_t)B * H * T * T, p, key, c->stream))
            return -1;
        probs = attd;
    }
    for (int h = 0; h < H; h++) /* out[b,h] (rows x hs) = probs[b,h] v[b,h] */
        if (gemm(c, false, false, hs, rows, T, vf + h * hs, C, seq, probs + h * scores, T, H * scores, 0.0f,
                 outf + h * hs, C, q_seq, B))
            return -1;
    return 0;
}

/* Writes dq, dk, dv (the fused kernels store them, the unfused path adds
 * into zeros); out is the forward's. */
static int attention_backward_gpu(CudaBackend *c, int l, void *dq_, void *dk_, void *dv_, const void *dout_,
                                  const void *out, const void *q_, const void *k_, const void *v_, int rows, float p,
                                  int site)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, H = cfg->n_heads, C = cfg->dim, hs = C / H;
    const PhiloxKey *key = K(c, site);
    size_t nq = (size_t)B * rows * C, nkv = (size_t)B * T * C;
    const float *lse = AF(c, A_LSE) + (size_t)l * B * H * T, *mask = AF(c, A_MASK_ADD);
    if (c->fused_attention)
        return c->bf16 ? attention_fused_backward_cuda_bf16(dq_, dk_, dv_, false, AF(c, A_DSUM), dout_, out, q_, k_,
                                                            v_, lse, mask, B, T, H, hs, rows, p, key, c->stream)
                       : attention_fused_backward_cuda(dq_, dk_, dv_, false, AF(c, A_DSUM), dout_, out, q_, k_, v_,
                                                       lse, mask, B, T, H, hs, rows, p, key, c->stream);
    /* fp32 from here, as the forward */
    float *dq = dq_, *dk = dk_, *dv = dv_;
    const float *dout = dout_, *q = q_, *k = k_, *v = v_;
    if (zero(c, dq, nq) || zero(c, dk, nkv) || zero(c, dv, nkv)) return -1;
    size_t Att = (size_t)B * H * T * T;
    const float *att = AF(c, A_ATT) + l * Att, *attd = A(c, A_ATT_DROP) ? AF(c, A_ATT_DROP) + l * Att : NULL;
    float *dprobs_raw = AF(c, A_DATT1), *dprobs = AF(c, A_DATT2);
    long long seq = (long long)T * C, q_seq = rows == 1 ? C : seq, scores = (long long)rows * T;
    size_t n = (size_t)B * H * rows * T;
    const float *probs = p > 0.0f ? attd : att;
    for (int h = 0; h < H; h++) {
        /* dprobs[b,h] (rows x T) = dout[b,h] v[b,h]^T; dv[b,h] += probs[b,h]^T dout[b,h] */
        if (gemm(c, true, false, T, rows, hs, v + h * hs, C, seq, dout + h * hs, C, q_seq, 0.0f,
                 dprobs_raw + h * scores, T, H * scores, B) ||
            gemm(c, false, true, hs, T, rows, dout + h * hs, C, q_seq, probs + h * scores, T, H * scores, 1.0f,
                 dv + h * hs, C, seq, B))
            return -1;
    }
    /* Through the dropout: its mask comes again from Philox. */
    float *dpre = dprobs_raw;
    if (p > 0.0f) {
        if (rows == 1 ? dropout_backward_rows_cuda(dprobs, false, dprobs_raw, B * H, T, 0, (uint64_t)T * T, p,
                                                   key, c->stream)
                      : dropout_backward_cuda(dprobs, false, dprobs_raw, n, p, key, c->stream))
            return -1;
    } else {
        CUDA_CHECK(cudaMemcpyAsync(dprobs, dprobs_raw, n * sizeof(float), cudaMemcpyDeviceToDevice, c->stream));
    }
    CUDA_CHECK(cudaMemsetAsync(dpre, 0, n * sizeof(float), c->stream));
    if (softmax_backward_cuda(dpre, dprobs, att, 1.0f / sqrtf((float)hs), B * H * rows, T, c->stream)) return -1;
    for (int h = 0; h < H; h++) {
        /* dq[b,h] += dpre[b,h] k[b,h]; dk[b,h] += dpre[b,h]^T q[b,h] */
        if (gemm(c, false, false, hs, rows, T, k + h * hs, C, seq, dpre + h * scores, T, H * scores, 1.0f,
                 dq + h * hs, C, q_seq, B) ||
            gemm(c, false, true, hs, T, rows, q + h * hs, C, q_seq, dpre + h * scores, T, H * scores, 1.0f,
                 dk + h * hs, C, seq, B))
            return -1;
    }
    return 0;
}

/* ---- memory -------------------------------------------------------------------- */

static void free_batch_buffers(CudaBackend *c)
{
    cudaFree(c->acts), cudaFree(c->work), cudaFree(c->colsum_work), cudaFree(c->ids), cudaFree(c->mask);
    cudaFree(c->emb_plan), cudaFree(c->targets), cudaFree(c->dlogits), cudaFree(c->dlogits16);
    free(c->emb_plan_host);
    c->acts = NULL, c->work = c->colsum_work = NULL, c->ids = c->mask = c->emb_plan = NULL;
    c->targets = c->dlogits = NULL;
    c->dlogits16 = NULL;
    c->emb_plan_host = NULL;
    c->max_B = c->max_T = 0;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static int cuda_reserve(Backend *be, int max_B, int max_T)
{
    CudaBackend *c = cuda(be);
    if (max_B <= c->max_B && max_T <= c->max_T) return 0;
    if (max_B < c->max_B) max_B = c->max_B;
    if (max_T < c->max_T) max_T = c->max_T;
    CUDA_CHECK(cudaStreamSynchronize(c->stream)); /* nothing in flight uses the old buffers */
    free_batch_buffers(c);
    graphs_free(c); /* they name the old buffers */
    const DistilBertConfig *cfg = &be->lay.cfg;
    int N = max_B * max_T, L = cfg->num_labels;
    ActPlan plan;
    act_plan(&plan, cfg, max_B, max_T, c->fused_attention, c->bf16);
    /* The column sums (LayerNorm's parameter gradients, at most N rows of
     * dim; the biases' come from cuBLASLt's epilogue) have their own
     * workspace: its counters must stay zero between them, which scratch
     * shared with other kernels would not keep. */
    size_t colsum_work = layernorm_backward_workspace_size(N, cfg->dim);
    size_t work = max_size(loss_workspace_size(max_B, L), grad_norm_workspace_size(c->n));
    CUDA_CHECK(cudaMalloc((void **)&c->acts, plan.total));
    CUDA_CHECK(cudaMalloc(&c->work, work));
    CUDA_CHECK(cudaMalloc(&c->colsum_work, colsum_work));
    CUDA_CHECK(cudaMemsetAsync(c->colsum_work, 0, colsum_work, c->stream)); /* once: its counters */
    CUDA_CHECK(cudaMalloc((void **)&c->ids, (size_t)N * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc((void **)&c->mask, (size_t)N * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc((void **)&c->emb_plan, embedding_plan_len(N) * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc((void **)&c->targets, (size_t)max_B * L * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&c->dlogits, (size_t)max_B * L * sizeof(float)));
    if (c->bf16) CUDA_CHECK(cudaMalloc((void **)&c->dlogits16, (size_t)max_B * L * sizeof(bf16)));
    c->emb_plan_host = xmalloc(embedding_plan_len(N) * sizeof(int32_t));
    c->work_size = work;
    c->max_B = max_B;
    c->max_T = max_T;
    return 0;
}

static void cuda_close(Backend *be)
{
    CudaBackend *c = cuda(be);
    if (c->stream) cudaStreamSynchronize(c->stream);
    free_batch_buffers(c);
#ifdef GENRE_NCCL
    if (c->nccl) ncclCommDestroy(c->nccl);
    for (int b = 0; c->bucket_done && b < c->base.lay.cfg.n_layers + 2; b++) cudaEventDestroy(c->bucket_done[b]);
    free(c->bucket_done);
    if (c->summed) cudaEventDestroy(c->summed);
    if (c->comm_stream) cudaStreamDestroy(c->comm_stream);
    cudaFree(c->mine), cudaFree(c->chunk_sums);
#else
    free(c->host_grads);
#endif
    cudaFree(c->params), cudaFree(c->params16), cudaFree(c->grads), cudaFree(c->scratch), cudaFree(c->m), cudaFree(c->v), cudaFree(c->seg);
    cudaFree(c->loss_weights), cudaFree(c->scalars), cudaFree(c->keys), cudaFree(c->adam_step);
    cudaFree(c->blas_work);
    free(c->keys_host);
    graphs_free(c);
    lt_plans_free(c);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    layout_free(&c->base.lay);
    free(c);
}

/* ---- forward ---------------------------------------------------------------------- */

/* The block for the [CLS] rows alone (cls_block_forward in distilbert.c):
 * keys and values over every token, the rest over B rows. */
static int cls_block_forward(CudaBackend *c, int l)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim, F = cfg->hidden_dim;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F;
    float pa = c->fa.train ? cfg->attention_dropout : 0.0f;
    DropoutSite drop = ffn_dropout(c, l, true);
    void *x = At(c, A_H, l * ND), *q = At(c, A_Q, l * ND), *k = At(c, A_K, l * ND), *v = At(c, A_V, l * ND);
    void *ctx = At(c, A_CTX, l * ND), *res1 = At(c, A_RES1, l * ND), *ln1 = At(c, A_LN1, l * ND);
    void *res2 = At(c, A_RES2, l * ND), *ff1 = At(c, A_FF1, l * NF), *ffg = At(c, A_FFG, l * NF);
    void *xc = A(c, A_XC), *ff2 = A(c, A_FF2);
    return cls_gather(c, xc, x) ||
           linear_forward_gpu(c, q, false, xc, P_Q_W, l, B, D, D) ||
           linear_forward_gpu(c, k, false, x, P_K_W, l, (int)N, D, D) ||
           linear_forward_gpu(c, v, false, x, P_V_W, l, (int)N, D, D) ||
           attention_forward_gpu(c, l, ctx, q, k, v, 1, pa, DROP_ATT + 2 * l) ||
           linear_forward_gpu(c, res1, false, ctx, P_O_W, l, B, D, D) ||
           residual_layernorm_fwd(c, ln1, AF(c, A_LN1_MEAN) + l * N, AF(c, A_LN1_RSTD) + l * N, res1, res1, xc,
                                  NULL, P_SA_LN_W, l, B) ||
           linear_forward_gpu(c, ff1, false, ln1, P_FF1_W, l, B, D, F) ||
           gelu_fwd(c, ffg, ff1, (size_t)B * F) ||
           linear_forward_gpu(c, ff2, false, ffg, P_FF2_W, l, B, F, D) ||
           residual_layernorm_fwd(c, A(c, A_CLS), AF(c, A_LN2_MEAN) + l * N, AF(c, A_LN2_RSTD) + l * N, res2, ff2,
                                  ln1, &drop, P_OUT_LN_W, l, B)
               ? -1 : 0;
}

static int block_forward(CudaBackend *c, int l)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim, F = cfg->hidden_dim;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F;
    float pa = c->fa.train ? cfg->attention_dropout : 0.0f;
    DropoutSite drop = ffn_dropout(c, l, false);
    void *x = At(c, A_H, l * ND), *q = At(c, A_Q, l * ND), *k = At(c, A_K, l * ND), *v = At(c, A_V, l * ND);
    void *ctx = At(c, A_CTX, l * ND), *res1 = At(c, A_RES1, l * ND), *ln1 = At(c, A_LN1, l * ND);
    void *res2 = At(c, A_RES2, l * ND), *ff1 = At(c, A_FF1, l * NF), *ffg = At(c, A_FFG, l * NF);
    void *ff2 = A(c, A_FF2);
    return linear_forward_gpu(c, q, false, x, P_Q_W, l, (int)N, D, D) ||
           linear_forward_gpu(c, k, false, x, P_K_W, l, (int)N, D, D) ||
           linear_forward_gpu(c, v, false, x, P_V_W, l, (int)N, D, D) ||
           attention_forward_gpu(c, l, ctx, q, k, v, T, pa, DROP_ATT + 2 * l) ||
           linear_forward_gpu(c, res1, false, ctx, P_O_W, l, (int)N, D, D) ||
           residual_layernorm_fwd(c, ln1, AF(c, A_LN1_MEAN) + l * N, AF(c, A_LN1_RSTD) + l * N, res1, res1, x,
                                  NULL, P_SA_LN_W, l, (int)N) ||
           linear_forward_gpu(c, ff1, false, ln1, P_FF1_W, l, (int)N, D, F) ||
           gelu_fwd(c, ffg, ff1, NF) ||
           linear_forward_gpu(c, ff2, false, ffg, P_FF2_W, l, (int)N, F, D) ||
           residual_layernorm_fwd(c, At(c, A_H, (l + 1) * ND), AF(c, A_LN2_MEAN) + l * N, AF(c, A_LN2_RSTD) + l * N,
                                  res2, ff2, ln1, &drop, P_OUT_LN_W, l, (int)N)
               ? -1 : 0;
}

/* The same checks, in the same words, as the CPU model's forward. */
static int check_batch(const DistilBertConfig *cfg, const int32_t *ids, int B, int T)
{
    if (B <= 0 || T <= 0) return err_set("forward: empty batch (%d x %d)", B, T);
    if (T > cfg->max_position_embeddings)
        return err_set("forward: sequence length %d exceeds max_position_embeddings %d", T,
                       cfg->max_position_embeddings);
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return err_set("forward: token id %d outside the vocabulary (%d)", ids[i], cfg->vocab_size);
    return 0;
}

/* The forward's device work, for the batch and arguments cuda_forward set. */
static int forward_work(CudaBackend *c)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim, L = cfg->n_layers;
    size_t N = (size_t)B * T, ND = N * D, BD = (size_t)B * D;
    const ForwardArgs *fa = &c->fa;
    float pd = fa->train ? cfg->dropout : 0.0f, pc = fa->train ? cfg->seq_classif_dropout : 0.0f;
    if (softmax_mask_additive_cuda(AF(c, A_MASK_ADD), c->has_mask ? c->mask : NULL, N, c->stream) ||
        embedding_fwd(c, A(c, A_EMB), B, T, D) ||
        layernorm_fwd(c, A(c, A_EMB_LN), AF(c, A_EMB_MEAN), AF(c, A_EMB_RSTD), A(c, A_EMB), P_EMB_LN_W, 0, (int)N) ||
        dropout_fwd(c, A(c, A_H), A(c, A_EMB_LN), ND, pd, DROP_EMB))
        return -1;
    for (int l = 0; l < L; l++)
        if (fa->cls_only && l == L - 1 ? cls_block_forward(c, l) : block_forward(c, l)) return -1;
    return (!fa->cls_only && cls_gather(c, A(c, A_CLS), At(c, A_H, L * ND))) ||
                   linear_forward_gpu(c, A(c, A_PRE), false, A(c, A_CLS), P_PRE_W, 0, B, D, D) ||
                   relu_fwd(c, A(c, A_RELU), A(c, A_PRE), BD) ||
                   dropout_fwd(c, A(c, A_DROP), A(c, A_RELU), BD, pc, DROP_HEAD) ||
                   linear_forward_gpu(c, A(c, A_LOGITS), true, A(c, A_DROP), P_CLS_W, 0, B, D, cfg->num_labels)
               ? -1 : 0;
}

static int cuda_forward(Backend *be, const int32_t *ids, const int32_t *mask, int B, int T, const ForwardArgs *fa)
{
    CudaBackend *c = cuda(be);
    const DistilBertConfig *cfg = &be->lay.cfg;
    c->B = 0;
    if (check_batch(cfg, ids, B, T) || cuda_reserve(be, B, T)) return -1;
    size_t N = (size_t)B * T;
    act_plan(&c->plan, cfg, B, T, c->fused_attention, c->bf16);
    c->B = B, c->T = T, c->fa = *fa, c->has_mask = mask != NULL;
    /* What the step's work reads from device memory (the same whether it
     * replays a graph or not); blocking copies: the caller may reuse its
     * buffers once we return, and the work before has finished with them. */
    for (int site = 0; site < c->n_keys; site++)
        c->keys_host[site] = (PhiloxKey){fa->seed, dropout_stream(fa->key, site)};
    CUDA_CHECK(cudaMemcpy(c->keys, c->keys_host, (size_t)c->n_keys * sizeof *c->keys, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(c->ids, ids, N * sizeof(int32_t), cudaMemcpyHostToDevice));
    if (mask) CUDA_CHECK(cudaMemcpy(c->mask, mask, N * sizeof(int32_t), cudaMemcpyHostToDevice));
    /* The embedding backward's grouping of positions by id, while the ids are here. */
    embedding_backward_plan(c->emb_plan_host, ids, (int)N);
    CUDA_CHECK(cudaMemcpy(c->emb_plan, c->emb_plan_host, embedding_plan_len((int)N) * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
    GraphKey key = graph_key(c, PHASE_FORWARD, 0.0f);
    if (run_phase(c, false, &key, forward_work)) {
        c->B = 0;
        return -1;
    }
    return 0;
}

static int read_back(CudaBackend *c, void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return 0;
}

static int cuda_logits(Backend *be, float *out)
{
    CudaBackend *c = cuda(be);
    if (!c->B) return err_set("backend: no forward pass to read logits from");
    return read_back(c, out, AF(c, A_LOGITS), (size_t)c->B * be->lay.cfg.num_labels * sizeof(float));
}

static int cuda_hidden(Backend *be, float *out)
{
    CudaBackend *c = cuda(be);
    if (!c->B || c->fa.cls_only) return err_set("backend: the last forward kept no hidden states (cls_only)");
    size_t ND = (size_t)c->B * c->T * be->lay.cfg.dim;
    const void *h = At(c, A_H, (size_t)be->lay.cfg.n_layers * ND);
    if (!c->bf16) return read_back(c, out, h, ND * sizeof(float));
    /* bf16 into out's upper half, then widened in place (exactly) in ascending order: each store lands on halves
     * already read */
    uint16_t *half = (uint16_t *)out + ND;
    if (read_back(c, half, h, ND * sizeof(uint16_t))) return -1;
    for (size_t i = 0; i < ND; i++) {
        uint32_t bits = (uint32_t)half[i] << 16;
        memcpy(&out[i], &bits, sizeof bits);
    }
    return 0;
}

/* ---- backward ---------------------------------------------------------------------- */

static int cls_block_backward(CudaBackend *c, int l)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim, F = cfg->hidden_dim;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F;
    size_t BF = (size_t)B * F;
    float pa = c->fa.train ? cfg->attention_dropout : 0.0f;
    DropoutSite drop = ffn_dropout(c, l, true);
    void *x = At(c, A_H, l * ND), *q = At(c, A_Q, l * ND), *k = At(c, A_K, l * ND), *v = At(c, A_V, l * ND);
    void *ctx = At(c, A_CTX, l * ND), *res1 = At(c, A_RES1, l * ND), *ln1 = At(c, A_LN1, l * ND);
    void *res2 = At(c, A_RES2, l * ND), *ff1 = At(c, A_FF1, l * NF), *ffg = At(c, A_FFG, l * NF);
    void *dres2 = A(c, A_DRES2), *dln1 = A(c, A_DLN1), *dff2 = A(c, A_DFF2), *dffg = A(c, A_DFFG);
    void *dff1 = A(c, A_DFF1), *dres1 = A(c, A_DRES1), *dctx = A(c, A_DCTX), *dxc = A(c, A_DXC);
    return residual_layernorm_bwd(c, dres2, dff2, A(c, A_DCLS), res2, AF(c, A_LN2_MEAN) + l * N,
                                  AF(c, A_LN2_RSTD) + l * N, &drop, P_OUT_LN_W, l, B) ||
           linear_backward_gpu(c, dffg, NULL, P_FF2_W, l, dff2, ffg, B, F, D) ||
           gelu_bwd(c, dff1, dffg, ff1, BF) ||
           /* the residual: dres2 flows into ln1's gradient as well */
           linear_backward_gpu(c, dln1, dres2, P_FF1_W, l, dff1, ln1, B, D, F) ||
           layernorm_bwd(c, dres1, dln1, res1, AF(c, A_LN1_MEAN) + l * N, AF(c, A_LN1_RSTD) + l * N, P_SA_LN_W, l, B) ||
           linear_backward_gpu(c, dctx, NULL, P_O_W, l, dres1, ctx, B, D, D) ||
           attention_backward_gpu(c, l, A(c, A_DQ), A(c, A_DK), A(c, A_DV), dctx, ctx, q, k, v, 1, pa,
                                  DROP_ATT + 2 * l) ||
           linear_backward_gpu(c, dxc, dres1, P_Q_W, l, A(c, A_DQ), A(c, A_XC), B, D, D) ||
           linear_backward_gpu(c, A(c, A_DH), A(c, A_DH), P_K_W, l, A(c, A_DK), x, (int)N, D, D) ||
           linear_backward_gpu(c, A(c, A_DH), A(c, A_DH), P_V_W, l, A(c, A_DV), x, (int)N, D, D) ||
           cls_scatter_add(c, A(c, A_DH), dxc)
               ? -1 : 0;
}

/* dh holds the gradient of block l's output; on return, of its input. */
static int block_backward(CudaBackend *c, int l)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim, F = cfg->hidden_dim;
    size_t N = (size_t)B * T, ND = N * D, NF = N * F;
    float pa = c->fa.train ? cfg->attention_dropout : 0.0f;
    DropoutSite drop = ffn_dropout(c, l, false);
    void *x = At(c, A_H, l * ND), *q = At(c, A_Q, l * ND), *k = At(c, A_K, l * ND), *v = At(c, A_V, l * ND);
    void *ctx = At(c, A_CTX, l * ND), *res1 = At(c, A_RES1, l * ND), *ln1 = At(c, A_LN1, l * ND);
    void *res2 = At(c, A_RES2, l * ND), *ff1 = At(c, A_FF1, l * NF), *ffg = At(c, A_FFG, l * NF);
    void *dh = A(c, A_DH), *dres2 = A(c, A_DRES2), *dln1 = A(c, A_DLN1), *dff2 = A(c, A_DFF2);
    void *dffg = A(c, A_DFFG), *dff1 = A(c, A_DFF1), *dres1 = A(c, A_DRES1), *dctx = A(c, A_DCTX);
    return residual_layernorm_bwd(c, dres2, dff2, dh, res2, AF(c, A_LN2_MEAN) + l * N, AF(c, A_LN2_RSTD) + l * N,
                                  &drop, P_OUT_LN_W, l, (int)N) ||
           linear_backward_gpu(c, dffg, NULL, P_FF2_W, l, dff2, ffg, (int)N, F, D) ||
           gelu_bwd(c, dff1, dffg, ff1, NF) ||
           /* the residual: dres2 flows into ln1's gradient as well */
           linear_backward_gpu(c, dln1, dres2, P_FF1_W, l, dff1, ln1, (int)N, D, F) ||
           layernorm_bwd(c, dres1, dln1, res1, AF(c, A_LN1_MEAN) + l * N, AF(c, A_LN1_RSTD) + l * N, P_SA_LN_W, l,
                         (int)N) ||
           linear_backward_gpu(c, dctx, NULL, P_O_W, l, dres1, ctx, (int)N, D, D) ||
           attention_backward_gpu(c, l, A(c, A_DQ), A(c, A_DK), A(c, A_DV), dctx, ctx, q, k, v, T, pa,
                                  DROP_ATT + 2 * l) ||
           /* and dres1 straight into the block input's */
           linear_backward_gpu(c, dh, dres1, P_Q_W, l, A(c, A_DQ), x, (int)N, D, D) ||
           linear_backward_gpu(c, dh, dh, P_K_W, l, A(c, A_DK), x, (int)N, D, D) ||
           linear_backward_gpu(c, dh, dh, P_V_W, l, A(c, A_DV), x, (int)N, D, D)
               ? -1 : 0;
}

static bool bucketed(const CudaBackend *c);
static int bucket_passed(CudaBackend *c, int b);
#ifdef GENRE_NCCL
static int sharded_step(CudaBackend *c, float max_norm, float *grad_norm);
static int gather_moment(CudaBackend *c, float *out, const float *part);
#endif

/* The backward of the last forward, into gdst; each bucket of gradients
 * (head, blocks from the last, embeddings) handed to bucket_passed once
 * the backward is past it. */
static int backward(CudaBackend *c)
{
    const DistilBertConfig *cfg = &c->base.lay.cfg;
    int B = c->B, T = c->T, D = cfg->dim;
    size_t N = (size_t)B * T, ND = N * D, BD = (size_t)B * D;
    float pd = c->fa.train ? cfg->dropout : 0.0f, pc = c->fa.train ? cfg->seq_classif_dropout : 0.0f;
    const void *dlogits = c->bf16 ? (const void *)c->dlogits16 : (const void *)c->dlogits;
    /* the head */
    if (linear_backward_gpu(c, A(c, A_DDROP), NULL, P_CLS_W, 0, dlogits, A(c, A_DROP), B, D, cfg->num_labels) ||
        dropout_bwd(c, A(c, A_DRELU), A(c, A_DDROP), BD, pc, DROP_HEAD) ||
        relu_bwd(c, A(c, A_DPRE), A(c, A_DRELU), A(c, A_PRE), BD) ||
        linear_backward_gpu(c, A(c, A_DCLS), NULL, P_PRE_W, 0, A(c, A_DPRE), A(c, A_CLS), B, D, D) ||
        bucket_passed(c, 0) || zero_act(c, A(c, A_DH), ND))
        return -1;
    int L = cfg->n_layers, top = L;
    if (c->fa.cls_only ? cls_block_backward(c, --top) || bucket_passed(c, L - top)
                       : cls_scatter_add(c, A(c, A_DH), A(c, A_DCLS)))
        return -1;
    for (int l = top - 1; l >= 0; l--)
        if (block_backward(c, l) || bucket_passed(c, L - l)) return -1;
    /* the embeddings */
    return dropout_bwd(c, A(c, A_DEMB_LN), A(c, A_DH), ND, pd, DROP_EMB) ||
           layernorm_bwd(c, A(c, A_DEMB), A(c, A_DEMB_LN), A(c, A_EMB), AF(c, A_EMB_MEAN), AF(c, A_EMB_RSTD),
                         P_EMB_LN_W, 0, (int)N) ||
           embedding_bwd(c, A(c, A_DEMB), B, T, D) ||
           bucket_passed(c, L + 1)
               ? -1 : 0;
}

static int cuda_set_loss(Backend *be, const Loss *loss)
{
    CudaBackend *c = cuda(be);
    int L = be->lay.cfg.num_labels;
    graphs_free(c); /* they hold the old loss's arguments */
    c->loss = *loss;
    if (loss->weights)
        CUDA_CHECK(cudaMemcpy(c->loss_weights, loss->weights, (size_t)L * sizeof(float), cudaMemcpyHostToDevice));
    if (loss->class_weights)
        CUDA_CHECK(cudaMemcpy(c->loss_weights + L, loss->class_weights, (size_t)L * sizeof(float),
                              cudaMemcpyHostToDevice));
    c->loss.weights = loss->weights ? c->loss_weights : NULL;
    c->loss.class_weights = loss->class_weights ? c->loss_weights + L : NULL;
    return 0;
}

/* The loss and the backward's device work: into grads, or (summing) a
 * later micro-batch's alone into scratch, then added (bucket by bucket in
 * backward when it is summed over the job meanwhile). */
static int loss_backward_work(CudaBackend *c)
{
    int L = c->base.lay.cfg.num_labels;
    if (loss_forward_cuda(&c->loss, c->scalars, c->dlogits, AF(c, A_LOGITS), c->targets, c->B, L, c->grad_scale,
                          c->work, c->stream) ||
        (c->bf16 && convert_bf16_cuda(c->dlogits16, c->dlogits, (size_t)c->B * L, c->stream)))
        return -1;
    if (!c->summing) return backward(c);
    if (zero(c, c->scratch, c->n)) return -1;
    c->gdst = c->scratch;
    int rc = backward(c);
    c->gdst = c->grads;
    return rc || (!bucketed(c) && residual_add_cuda(c->grads, c->scratch, c->n, c->stream)) ? -1 : 0;
}

static int cuda_loss_backward(Backend *be, const float *targets, float grad_scale, float *loss)
{
    CudaBackend *c = cuda(be);
    if (!c->B) return err_set("backend: backward without a forward pass");
    int L = be->lay.cfg.num_labels;
    CUDA_CHECK(cudaMemcpy(c->targets, targets, (size_t)c->B * L * sizeof(float), cudaMemcpyHostToDevice));
    if (c->summing && !c->scratch) CUDA_CHECK(cudaMalloc((void **)&c->scratch, c->n * sizeof(float)));
    c->grad_scale = grad_scale;
    /* the NCCL buckets record events across streams: launched directly */
    GraphKey key = graph_key(c, PHASE_BACKWARD, grad_scale);
    if (run_phase(c, bucketed(c), &key, loss_backward_work)) return -1;
    c->summing = true;
    return read_back(c, loss, c->scalars, sizeof(float));
}

static int cuda_zero_grad(Backend *be)
{
    CudaBackend *c = cuda(be);
    c->summing = false;
    return zero(c, c->grads, c->n);
}

/* fp32 means fp32 (no reduced-precision math); TF32 and bf16 take the
 * tensor cores. bf16 lays the activations out anew (the arena is regrown
 * at the next forward) and makes the weights' bf16 copy. */
static int cuda_set_precision(Backend *be, Precision p)
{
    CudaBackend *c = cuda(be);
    bool half = p == PRECISION_BF16;
    if (half && !c->fused_attention)
        return err_set("precision=bf16: head size %d has no fused attention kernel (8, 16, 32, 64); use precision=fp32",
                       be->lay.cfg.dim / be->lay.cfg.n_heads);
    /* fp32: pedantic, no reduced-precision math; bf16: the default, which takes the tensor cores for bf16 */
    CUBLAS_CHECK(cublasSetMathMode(c->blas, p == PRECISION_TF32   ? CUBLAS_TF32_TENSOR_OP_MATH
                                            : p == PRECISION_BF16 ? CUBLAS_DEFAULT_MATH
                                                                  : CUBLAS_PEDANTIC_MATH));
    if (half != c->bf16) {
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        free_batch_buffers(c);
        c->B = 0;
    }
    graphs_free(c); /* captured at the old precision */
    c->prec = p, c->bf16 = half; /* the cuBLASLt plans take it from their types */
    if (!half) return 0;
    if (!c->params16) CUDA_CHECK(cudaMalloc((void **)&c->params16, c->n * sizeof(bf16)));
    return convert_bf16_cuda(c->params16, c->params, c->n, c->stream);
}

/* bf16 where the GPU has bf16 tensor cores (compute capability 8.0 on) and
 * the head size a fused attention kernel; else fp32. */
static Precision cuda_default_precision(Backend *be)
{
    CudaBackend *c = cuda(be);
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
        return PRECISION_FP32;
    return major >= 8 && c->fused_attention ? PRECISION_BF16 : PRECISION_FP32;
}

/* The step's AdamW constants into device memory (adamw_step_constants). */
static int set_step_constants(CudaBackend *c, const AdamW *opt, float lr)
{
    AdamWStep k;
    adamw_step_constants(&k, opt, c->t, lr);
    CUDA_CHECK(cudaMemcpy(c->adam_step, &k, sizeof k, cudaMemcpyHostToDevice));
    return 0;
}

static int step_work(CudaBackend *c)
{
    return (c->max_norm > 0 && clip_grad_norm_cuda(c->grads, c->scalars + 1, c->n, c->max_norm, c->work, c->stream)) ||
                   adamw_update_cuda(c->params, c->bf16 ? c->params16 : NULL, c->grads, c->m, c->v, c->seg, c->nseg,
                                     c->n, c->adam_step, c->stream)
               ? -1 : 0;
}

static int cuda_set_graphs(Backend *be, bool on)
{
    CudaBackend *c = cuda(be);
    c->graphs = on;
    if (!on) graphs_free(c);
    return 0;
}

static int cuda_step(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm)
{
    CudaBackend *c = cuda(be);
    *grad_norm = 0.0f;
    c->t++;
    if (set_step_constants(c, opt, lr)) return -1;
#ifdef GENRE_NCCL
    if (c->sharded) return sharded_step(c, max_norm, grad_norm);
#endif
    c->max_norm = max_norm;
    GraphKey key;
    memset(&key, 0, sizeof key);
    key.phase = PHASE_STEP, key.value = max_norm;
    if (run_phase(c, false, &key, step_work)) return -1;
    if (max_norm > 0) return read_back(c, grad_norm, c->scalars + 1, sizeof(float));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return 0;
}

static int copy_in(CudaBackend *c, float *dst, const float *src, size_t n)
{
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
    return 0;
}

static int cuda_get_params(Backend *be, float *out)
{
    CudaBackend *c = cuda(be);
    return read_back(c, out, c->params, c->n * sizeof(float));
}

static int cuda_set_params(Backend *be, const float *in)
{
    CudaBackend *c = cuda(be);
    return copy_in(c, c->params, in, c->n) || (c->bf16 && convert_bf16_cuda(c->params16, c->params, c->n, c->stream))
               ? -1 : 0;
}

static int cuda_get_grads(Backend *be, float *out)
{
    CudaBackend *c = cuda(be);
    return read_back(c, out, c->grads, c->n * sizeof(float));
}

#ifdef GENRE_NCCL
static int nccl_check(ncclResult_t r, const char *what)
{
    return r == ncclSuccess ? 0 : err_set("%s: %s", what, ncclGetErrorString(r));
}

/* *buf (device) regrown to n floats: its first keep kept, the rest zero. */
static int regrow(CudaBackend *c, float **buf, size_t keep, size_t n)
{
    float *fresh, *old = *buf;
    CUDA_CHECK(cudaMalloc((void **)&fresh, n * sizeof(float)));
    *buf = fresh; /* close frees it, whatever fails next */
    CUDA_CHECK(cudaMemcpyAsync(fresh, old, keep * sizeof(float), cudaMemcpyDeviceToDevice, c->stream));
    CUDA_CHECK(cudaMemsetAsync(fresh + keep, 0, (n - keep) * sizeof(float), c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    CUDA_CHECK(cudaFree(old));
    return 0;
}

/* ZeRO-1's state, as the CPU backend's: this rank's shard, the moments of
 * it alone (zero, or set_optimizer's slice), params and grads padded for
 * the collectives (the padding zero: it adds nothing to sums or norms),
 * and the weight-decay table cut to the shard. */
static int shard_state(CudaBackend *c, Comm *comm)
{
    c->world = comm_world(comm);
    adamw_shard(c->n, c->world, comm_rank(comm), &c->shard, &c->lo, &c->hi);
    size_t all = (size_t)c->world * c->shard, chunks = c->shard / ADAMW_NORM_CHUNK;
    if (regrow(c, &c->params, c->n, all) || regrow(c, &c->grads, c->n, all) || regrow(c, &c->m, 0, c->shard) ||
        regrow(c, &c->v, 0, c->shard))
        return -1;
    c->gdst = c->grads;
    CUDA_CHECK(cudaMalloc((void **)&c->mine, c->shard * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&c->chunk_sums, (size_t)(c->world + 1) * chunks * sizeof(double)));
    AdamWSegment seg[P_COUNT], cut[P_COUNT];
    c->nseg = adamw_segments_cut(seg, layout_decay_segments(&c->base.lay, seg), c->lo, c->hi, cut);
    CUDA_CHECK(cudaMemcpy(c->seg, cut, (size_t)c->nseg * sizeof *cut, cudaMemcpyHostToDevice));
    c->sharded = true;
    return 0;
}

/* The communicator (rank 0's unique id reaches the others over the job's
 * MPI), then ZeRO-1's state, or a stream for the bucketed all-reduces and
 * their events. */
static int cuda_set_comm(Backend *be, Comm *comm, bool shard)
{
    CudaBackend *c = cuda(be);
    if (c->nccl) return err_set("backend: set_comm called twice");
    graphs_free(c); /* ZeRO-1 regrows the parameters */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if ((comm_rank(comm) == 0 && nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId")) ||
        comm_broadcast(comm, &id, sizeof id, 0) ||
        nccl_check(ncclCommInitRank(&c->nccl, comm_world(comm), id, comm_rank(comm)), "ncclCommInitRank"))
        return -1;
    if (shard) return shard_state(c, comm);
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->comm_stream, cudaStreamNonBlocking));
    int buckets = be->lay.cfg.n_layers + 2;
    c->bucket_done = xcalloc((size_t)buckets, sizeof *c->bucket_done);
    for (int b = 0; b < buckets; b++) CUDA_CHECK(cudaEventCreateWithFlags(&c->bucket_done[b], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&c->summed, cudaEventDisableTiming));
    return 0;
}

/* Whether this backward sums its buckets over the job as it goes (ZeRO-1
 * reduce-scatters the whole gradient after it instead). */
static bool bucketed(const CudaBackend *c) { return c->fa.reduce && c->nccl && !c->sharded; }

/* Bucket b of the gradients, in the order the backward finishes them: 0 the
 * head, 1..L the blocks from the last, L + 1 the embeddings. The same on
 * every rank, whatever its batch (cls_only included). */
static bool in_bucket(const ModelLayout *lay, ParamId id, int l, int b)
{
    int L = lay->cfg.n_layers;
    if (b == 0) return id >= P_PRE_W;
    if (b == L + 1) return id < P_Q_W;
    return distilbert_params[id].per_layer && l == L - b;
}

/* Bucket b's gradients are final on the compute stream (a later
 * micro-batch's scratch added first): the comm stream sums them over the
 * job while the backward goes on. */
static int sum_bucket(CudaBackend *c, int b)
{
    const ModelLayout *lay = &c->base.lay;
    for (int id = 0; id < P_COUNT && c->gdst != c->grads; id++)
        for (int l = 0; l < layout_copies(lay, (ParamId)id); l++)
            if (in_bucket(lay, (ParamId)id, l, b)) {
                const ParamSlot *s = layout_slot(lay, (ParamId)id, l);
                if (residual_add_cuda(c->grads + s->off, c->scratch + s->off, s->n, c->stream)) return -1;
            }
    CUDA_CHECK(cudaEventRecord(c->bucket_done[b], c->stream));
    CUDA_CHECK(cudaStreamWaitEvent(c->comm_stream, c->bucket_done[b], 0));
    if (nccl_check(ncclGroupStart(), "ncclGroupStart")) return -1;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(lay, (ParamId)id); l++)
            if (in_bucket(lay, (ParamId)id, l, b)) {
                const ParamSlot *s = layout_slot(lay, (ParamId)id, l);
                float *g = c->grads + s->off;
                if (nccl_check(ncclAllReduce(g, g, s->n, ncclFloat32, ncclSum, c->nccl, c->comm_stream),
                               "ncclAllReduce of the gradients")) {
                    ncclGroupEnd();
                    return -1;
                }
            }
    if (nccl_check(ncclGroupEnd(), "ncclGroupEnd")) return -1;
    c->next_bucket = b + 1;
    return 0;
}

/* Called by the backward as it passes each bucket: sums it when this is the
 * step's last backward here. */
static int bucket_passed(CudaBackend *c, int b) { return bucketed(c) ? sum_bucket(c, b) : 0; }

/* The buckets the backward did not sum (all, on a rank without a batch this
 * step), then the step waits for the comm stream. ZeRO-1: this rank's
 * block of the sum into mine, on the compute stream. */
static int cuda_allreduce_grads(Backend *be, Comm *comm)
{
    CudaBackend *c = cuda(be);
    (void)comm;
    if (!c->nccl) return err_set("backend: all-reduce before set_comm");
    if (c->sharded)
        return nccl_check(ncclReduceScatter(c->grads, c->mine, c->shard, ncclFloat32, ncclSum, c->nccl, c->stream),
                          "ncclReduceScatter of the gradients");
    for (int b = c->next_bucket; b < be->lay.cfg.n_layers + 2; b++)
        if (sum_bucket(c, b)) return -1;
    c->next_bucket = 0;
    CUDA_CHECK(cudaEventRecord(c->summed, c->comm_stream));
    CUDA_CHECK(cudaStreamWaitEvent(c->stream, c->summed, 0));
    return 0;
}

/* ZeRO-1's step, as the CPU backend's: the norm over every rank's shard
 * (each shard's chunk sums gathered in rank order: the unsharded norm's
 * bits), clipping and AdamW on this shard, the parameters all-gathered. */
static int sharded_step(CudaBackend *c, float max_norm, float *grad_norm)
{
    size_t n = c->hi - c->lo, chunks = c->shard / ADAMW_NORM_CHUNK;
    double *all = c->chunk_sums + chunks;
    *grad_norm = 0.0f;
    if (max_norm > 0 &&
        (grad_sum_squares_chunks_cuda(c->chunk_sums, c->mine, c->shard, c->stream) ||
         nccl_check(ncclAllGather(c->chunk_sums, all, chunks, ncclFloat64, c->nccl, c->stream),
                    "ncclAllGather of the gradient norm's pieces") ||
         grad_norm_of_chunks_cuda(c->scalars + 1, all, (size_t)c->world * chunks, c->stream) ||
         grad_clip_cuda(c->mine, c->scalars + 1, n, max_norm, c->stream)))
        return -1;
    /* mine's tail past n (zero sums) lands in the padding of params. */
    if (adamw_update_cuda(c->params + c->lo, NULL, c->mine, c->m, c->v, c->seg, c->nseg, n, c->adam_step, c->stream) ||
        (n && copy_dev(c, c->mine, c->params + c->lo, n)) ||
        nccl_check(ncclAllGather(c->mine, c->params, c->shard, ncclFloat32, c->nccl, c->stream),
                   "ncclAllGather of the parameters") ||
        (c->bf16 && convert_bf16_cuda(c->params16, c->params, c->n, c->stream)))
        return -1;
    if (max_norm > 0) return read_back(c, grad_norm, c->scalars + 1, sizeof(float));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return 0;
}

/* One moment, whole, into out: each rank's block of it broadcast in turn
 * through mine (free between steps) and read back into place. */
static int gather_moment(CudaBackend *c, float *out, const float *part)
{
    for (size_t at = 0, r = 0; at < c->n; at += c->shard, r++) {
        size_t len = c->n - at < c->shard ? c->n - at : c->shard;
        if (nccl_check(ncclBroadcast(part, c->mine, c->shard, ncclFloat32, (int)r, c->nccl, c->stream),
                       "ncclBroadcast of the AdamW moments") ||
            read_back(c, out + at, c->mine, len * sizeof(float)))
            return -1;
    }
    return 0;
}
#else
static bool bucketed(const CudaBackend *c)
{
    (void)c;
    return false;
}

static int bucket_passed(CudaBackend *c, int b)
{
    (void)c, (void)b;
    return 0;
}

/* Without NCCL: MPI sums after the backward, through host memory. */
static int cuda_set_comm(Backend *be, Comm *comm, bool shard)
{
    (void)be, (void)comm;
    return shard ? err_set("shard_optimizer=true on device=cuda needs NCCL, and this genre was built without it") : 0;
}

static int cuda_allreduce_grads(Backend *be, Comm *comm)
{
    CudaBackend *c = cuda(be);
    if (!c->host_grads) c->host_grads = xmalloc(c->n * sizeof(float));
    if (read_back(c, c->host_grads, c->grads, c->n * sizeof(float)) ||
        comm_allreduce(comm, c->host_grads, c->n, COMM_F32, COMM_SUM))
        return -1;
    CUDA_CHECK(cudaMemcpy(c->grads, c->host_grads, c->n * sizeof(float), cudaMemcpyHostToDevice));
    return 0;
}
#endif

static int cuda_get_optimizer(Backend *be, AdamWState *out)
{
    CudaBackend *c = cuda(be);
    out->t = c->t;
#ifdef GENRE_NCCL
    if (c->sharded) return gather_moment(c, out->m, c->m) || gather_moment(c, out->v, c->v) ? -1 : 0;
#endif
    return read_back(c, out->m, c->m, c->n * sizeof(float)) || read_back(c, out->v, c->v, c->n * sizeof(float))
               ? -1 : 0;
}

static int cuda_set_optimizer(Backend *be, const AdamWState *in)
{
    CudaBackend *c = cuda(be);
    size_t from = 0, n = c->n;
#ifdef GENRE_NCCL
    if (c->sharded) from = c->lo, n = c->hi - c->lo;
#endif
    c->t = in->t;
    return copy_in(c, c->m, in->m + from, n) || copy_in(c, c->v, in->v + from, n) ? -1 : 0;
}

static float *cuda_grads(Backend *be, size_t *n)
{
    CudaBackend *c = cuda(be);
    *n = c->n;
    return c->grads;
}

static const BackendOps cuda_ops = {
    .name = "cuda",
    .close = cuda_close,
    .reserve = cuda_reserve,
    .forward = cuda_forward,
    .logits = cuda_logits,
    .hidden = cuda_hidden,
    .set_loss = cuda_set_loss,
    .loss_backward = cuda_loss_backward,
    .zero_grad = cuda_zero_grad,
    .step = cuda_step,
    .set_precision = cuda_set_precision,
    .default_precision = cuda_default_precision,
    .set_graphs = cuda_set_graphs,
    .get_params = cuda_get_params,
    .set_params = cuda_set_params,
    .get_grads = cuda_get_grads,
    .set_comm = cuda_set_comm,
    .allreduce_grads = cuda_allreduce_grads,
    .get_optimizer = cuda_get_optimizer,
    .set_optimizer = cuda_set_optimizer,
    .grads = cuda_grads,
};

static int open_device(CudaBackend *c, const ModelWeights *w)
{
    size_t bytes = c->n * sizeof(float);
    AdamWSegment seg[P_COUNT];
    c->nseg = layout_decay_segments(&w->lay, seg);
    CUDA_CHECK(cudaStreamCreate(&c->stream));
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    /* Our own workspace for cuBLAS (after SetStream, which resets it): a captured graph must not make cuBLAS
     * allocate one. 32 MiB, NVIDIA's recommendation for Hopper (4 MiB elsewhere). */
    CUDA_CHECK(cudaMalloc(&c->blas_work, BLAS_WORKSPACE));
    CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->blas_work, BLAS_WORKSPACE));
    c->n_keys = 2 + 2 * w->lay.cfg.n_layers;
    c->keys_host = xcalloc((size_t)c->n_keys, sizeof *c->keys_host);
    CUDA_CHECK(cudaMalloc((void **)&c->keys, (size_t)c->n_keys * sizeof *c->keys));
    CUDA_CHECK(cudaMalloc((void **)&c->adam_step, sizeof *c->adam_step));
    CUDA_CHECK(cudaMalloc((void **)&c->params, bytes));
    CUDA_CHECK(cudaMalloc((void **)&c->grads, bytes));
    c->gdst = c->grads;
    CUDA_CHECK(cudaMalloc((void **)&c->m, bytes));
    CUDA_CHECK(cudaMalloc((void **)&c->v, bytes));
    CUDA_CHECK(cudaMalloc((void **)&c->seg, (size_t)c->nseg * sizeof *c->seg));
    CUDA_CHECK(cudaMalloc((void **)&c->loss_weights, 2 * (size_t)w->lay.cfg.num_labels * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&c->scalars, 2 * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(c->params, w->params, bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(c->seg, seg, (size_t)c->nseg * sizeof *c->seg, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemsetAsync(c->grads, 0, bytes, c->stream));
    CUDA_CHECK(cudaMemsetAsync(c->m, 0, bytes, c->stream));
    CUDA_CHECK(cudaMemsetAsync(c->v, 0, bytes, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    return cuda_set_precision(&c->base, PRECISION_FP32);
}

Backend *backend_cuda_open(const ModelWeights *w)
{
    CudaBackend *c = xcalloc(1, sizeof *c);
    c->base.ops = &cuda_ops;
    layout_copy(&c->base.lay, &w->lay);
    c->n = w->lay.n_params;
    c->fused_attention = attention_fused_supported(w->lay.cfg.dim / w->lay.cfg.n_heads);
    c->graphs = true;
    if (open_device(c, w) != 0) {
        cuda_close(&c->base);
        return NULL;
    }
    return &c->base;
}

int backend_cuda_available(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return err_set("device=cuda: no CUDA GPU found (%s); use device=cpu",
                       e == cudaSuccess ? "none present" : cudaGetErrorString(e));
    return 0;
}

int backend_cuda_select(int local_rank)
{
    int n = 0;
    if (backend_cuda_available() != 0) return -1;
    CUDA_CHECK(cudaGetDeviceCount(&n));
    CUDA_CHECK(cudaSetDevice(local_rank % n));
    return 0;
}

int backend_cuda_describe(char *buf, size_t size)
{
    int dev = 0;
    struct cudaDeviceProp prop;
    if (backend_cuda_available() != 0) return -1;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(buf, size, "%s, compute %d.%d, %.0f GiB", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1 << 30));
    return 0;
}
