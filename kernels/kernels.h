/* The CUDA kernels' launchers, callable from C. Each computes exactly what
 * its CPU op in src/ops/ (or src/optim/) computes, with the same arguments
 * in the same order (outputs, saved statistics, inputs, weights, sizes)
 * plus, where named below, a caller's workspace, and the stream last; all
 * pointers are device pointers unless said otherwise. Backward launchers
 * ACCUMULATE (+=) into their parameter gradients, like the CPU ops; into
 * the input gradient too when `accumulate` is true, else they store it,
 * with the bits adding into zeros gives (a memset and a read saved). The
 * launchers are asynchronous and check the launch but not its execution:
 * 0, or -1 with err_set naming file:line. They never allocate and never
 * read device memory from the host.
 *
 * Precision: the *_bf16 variants take activations and their gradients in
 * bfloat16 and accumulate in fp32; parameters (LayerNorm weight and bias,
 * embedding tables), their gradients, the saved statistics (LayerNorm's
 * mean and rstd, attention's lse and dsum) and the softmax mask stay fp32
 * (a -FLT_MAX mask would round to -inf in bf16). Each computes in fp32 from
 * the bf16 inputs what its fp32 twin computes, and rounds each stored value
 * once, to nearest even: where the fp32 twin is one rounding per element
 * (residual, ReLU, rows, dropout, embedding forward), the bf16 result is
 * exactly the fp32 twin's on the same (bf16-valued) inputs, rounded.
 *
 * Sizes are int per dimension, their products size_t; any size works (no
 * multiple of a block size is needed).
 *
 * Determinism: no floating-point atomics anywhere; every sum runs in a fixed
 * order, so identical inputs give identical bits on every run, whatever
 * order the blocks run in. Where a launcher takes `void *work`, it is device
 * memory of at least the bytes its *_workspace_size() names (8-byte
 * aligned, as cudaMalloc's is), owned by the caller, scratch between calls:
 * two launches in flight at once need two workspaces. Except the column
 * sums' (layernorm_backward's parameter gradients): their work is device
 * memory of *_workspace_size bytes whose counters (the first 4 KiB) are
 * zero before the first launch (cudaMemset once); each launch leaves them
 * zero; only column sums may use it (of any shapes, one workspace sized for
 * the largest); two launches in flight need two. */
#ifndef GENRE_KERNELS_H
#define GENRE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/ops/loss.h"
#include "src/optim/adamw.h"

#ifdef CUDASIM
#include "cudasim.h"
#else
#include <cuda_runtime_api.h>
#endif

#ifdef __cplusplus
#ifndef CUDASIM
#include <cuda_bf16.h>
#endif
typedef __nv_bfloat16 bf16;
extern "C" {
#else
/* Same size and alignment as __nv_bfloat16: C code only moves them around. */
typedef struct { unsigned short bits; } bf16;
#endif

/* A Philox key and stream (src/core/philox.h's seed and stream) for the
 * kernels that draw dropout masks, passed as a pointer to device memory. */
typedef struct {
    uint64_t seed, stream;
} PhiloxKey;

/* A dropout that a LayerNorm kernel fuses, placed as the _rows dropout
 * launchers place theirs: element (r, c) of the rows x dim tensor is
 * element first + r * row_stride + c of stream key->stream (row_stride dim
 * for a whole tensor, T x dim for the [CLS] rows of B x T x dim); the masks
 * and values are the dropout kernels' bit for bit. A host pointer to it;
 * NULL, or p <= 0, is no dropout (key unread, may be NULL). */
typedef struct {
    float p;
    const PhiloxKey *key;
    uint64_t first, row_stride;
} DropoutSite;

/* ---- LayerNorm (layernorm.cu): src/ops/layernorm.h ----------------------
 * The weight and bias gradients are column sums over the rows, in one
 * launch of fixed-order sums through `work`, a column-sum workspace (its
 * counters zero before the first launch; see the top of this file). */
size_t layernorm_backward_workspace_size(int rows, int dim);
int layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int rows, int dim, float eps,
                           cudaStream_t stream);
int layernorm_forward_cuda_bf16(bf16 *out, float *mean, float *rstd, const bf16 *inp,
                                const float *weight, const float *bias, int rows, int dim,
                                float eps, cudaStream_t stream);
/* res = dropout(inp) + residual (the sublayer's output through `drop`, a
 * dropout site or NULL, rounded to T as the dropout kernel stores it, then
 * one fp32 addition rounded once to T, as residual_add_cuda adds), stored
 * (the backward needs it), and out = LayerNorm(res) as
 * layernorm_forward_cuda computes it from the stored (rounded) res: res,
 * out, mean, rstd bit for bit what the dropout, residual_add and
 * layernorm_forward kernels give. res may be the same pointer as inp (in
 * place). */
int layernorm_residual_forward_cuda(float *out, float *res, float *mean, float *rstd, const float *inp,
                                    const float *residual, const float *weight, const float *bias,
                                    int rows, int dim, float eps, const DropoutSite *drop,
                                    cudaStream_t stream);
int layernorm_residual_forward_cuda_bf16(bf16 *out, bf16 *res, float *mean, float *rstd, const bf16 *inp,
                                         const bf16 *residual, const float *weight, const float *bias,
                                         int rows, int dim, float eps, const DropoutSite *drop,
                                         cudaStream_t stream);
/* Its backward: dres = the gradient of res (LayerNorm's input gradient,
 * stored: the residual's), dinp = that through the dropout's backward
 * (stored: inp's), the parameter gradients accumulated; bit for bit
 * layernorm_backward (accumulate false) then the dropout's backward
 * (accumulate false). dres and dinp must not overlap. */
int layernorm_residual_backward_cuda(float *dres, float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *res, const float *weight, const float *mean, const float *rstd,
                                     int rows, int dim, const DropoutSite *drop, void *work, cudaStream_t stream);
int layernorm_residual_backward_cuda_bf16(bf16 *dres, bf16 *dinp, float *dweight, float *dbias, const bf16 *dout,
                                          const bf16 *res, const float *weight, const float *mean,
                                          const float *rstd, int rows, int dim, const DropoutSite *drop,
                                          void *work, cudaStream_t stream);
int layernorm_backward_cuda(float *dinp, bool accumulate, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int rows, int dim, void *work,
                            cudaStream_t stream);
int layernorm_backward_cuda_bf16(bf16 *dinp, bool accumulate, float *dweight, float *dbias, const bf16 *dout,
                                 const bf16 *inp, const float *weight, const float *mean,
                                 const float *rstd, int rows, int dim, void *work,
                                 cudaStream_t stream);

/* ---- GELU (gelu.cu): src/ops/gelu.h --------------------------------------- */
int gelu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream);
int gelu_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, cudaStream_t stream);
int gelu_backward_cuda(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n,
                       cudaStream_t stream);
int gelu_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, const bf16 *inp, size_t n,
                            cudaStream_t stream);

/* ---- softmax (softmax.cu): src/ops/softmax.h ------------------------------ */
int softmax_forward_cuda(float *out, const float *inp, const float *mask, float scale, int rows,
                         int cols, int rows_per_mask, cudaStream_t stream);
int softmax_forward_cuda_bf16(bf16 *out, const bf16 *inp, const float *mask, float scale,
                              int rows, int cols, int rows_per_mask, cudaStream_t stream);
int softmax_backward_cuda(float *dinp, const float *dout, const float *out, float scale, int rows,
                          int cols, cudaStream_t stream);
int softmax_backward_cuda_bf16(bf16 *dinp, const bf16 *dout, const bf16 *out, float scale,
                               int rows, int cols, cudaStream_t stream);

/* ---- embeddings (embedding.cu): src/ops/embedding.h ------------------------
 * Forward and backward equal the CPU op's bit for bit. The backward sums
 * each vocabulary row's gradient over its positions in position order, as
 * the CPU does, one thread per (distinct id, column): no atomics, and a
 * repeated token adds up the same way every run. That needs the positions
 * grouped by id, which the host builds (the ids are on the host each step,
 * and a sort of a few thousand ids costs microseconds there):
 * embedding_backward_plan fills `plan` (HOST memory, embedding_plan_len(n)
 * int32 entries, n = B * T) and returns the number of distinct ids; the
 * caller copies the plan to the device and passes it to
 * embedding_backward_cuda with the same ids (also on the device). Plan
 * layout: plan[0] the number of distinct ids; plan[1..n] the positions
 * sorted by (id, position); plan[1 + n + s] .. plan[1 + n + s + 1] - 1 the
 * sorted entries of the s-th distinct id. The kernel reads the count from
 * the plan when it runs, so one launch (or a captured graph) serves every
 * plan of n positions. */
size_t embedding_plan_len(int n);
int embedding_backward_plan(int32_t *plan, const int32_t *ids, int n);
int embedding_forward_cuda(float *out, const int32_t *ids, const float *wte, const float *wpe,
                           int B, int T, int C, cudaStream_t stream);
int embedding_backward_cuda(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                            const int32_t *plan, int B, int T, int C,
                            cudaStream_t stream);
/* bf16: the fp32 tables' sum rounded into out; dout in bf16, the table
 * gradients fp32, summed as above. */
int embedding_forward_cuda_bf16(bf16 *out, const int32_t *ids, const float *wte, const float *wpe,
                                int B, int T, int C, cudaStream_t stream);
int embedding_backward_cuda_bf16(float *dwte, float *dwpe, const bf16 *dout, const int32_t *ids,
                                 const int32_t *plan, int B, int T, int C,
                                 cudaStream_t stream);

/* ---- fused attention (attention.cu): src/ops/attention.h's math --------------
 * attention_forward's out (and attention_first_forward's when rows = 1)
 * without the B x H x T x T tensors: lse (B x H x rows) keeps each query
 * row's log-sum-exp of scale q k^T + mask, from which the backward
 * recomputes the probabilities; the dropout keeps the elements
 * dropout_forward_cuda keeps of the full op's B x H x T x T probabilities
 * (the stream and seed *key names; the [CLS] row is row 0). q and out are
 * B x rows x C (rows T) or B x C (rows 1), k, v B x T x C, mask additive
 * B x T. The backward adds into dq, dk, dv or stores them (accumulate, as
 * above) and uses dsum (B x H x rows) as scratch. Equal to the unfused path to rounding (an online
 * softmax sums in another order), not bit for bit; deterministic. Head
 * sizes attention_fused_supported names (8, 16, 32, 64); others fail. */
int attention_fused_supported(int hs);
int attention_fused_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                 const float *mask, int B, int T, int H, int hs, int rows, float p,
                                 const PhiloxKey *key, cudaStream_t stream);
int attention_fused_backward_cuda(float *dq, float *dk, float *dv, bool accumulate, float *dsum,
                                  const float *dout, const float *out, const float *q, const float *k, const float *v,
                                  const float *lse, const float *mask, int B, int T, int H, int hs,
                                  int rows, float p, const PhiloxKey *key,
                                  cudaStream_t stream);
/* bf16: q, k, v, out, dout, dq, dk, dv in bf16; lse, dsum and mask fp32;
 * scores, the online softmax and every sum in fp32. */
int attention_fused_forward_cuda_bf16(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                      const float *mask, int B, int T, int H, int hs, int rows, float p,
                                      const PhiloxKey *key, cudaStream_t stream);
int attention_fused_backward_cuda_bf16(bf16 *dq, bf16 *dk, bf16 *dv, bool accumulate, float *dsum,
                                       const bf16 *dout, const bf16 *out, const bf16 *q, const bf16 *k,
                                       const bf16 *v, const float *lse, const float *mask, int B, int T,
                                       int H, int hs, int rows, float p, const PhiloxKey *key, cudaStream_t stream);
/* Whether the bf16 launchers run a shape on tensor cores (attention_wmma.cu:
 * head sizes 32 and 64, the full op, rows == T): there P, Z P and dS are
 * rounded to bf16 as the products' operands, one rounding more per term
 * than the CUDA-core kernels, which serve every other shape. */
int attention_fused_tensor_cores(int hs, int rows, int T);

/* ---- dropout (dropout.cu): src/ops/dropout.h -------------------------------
 * The CPU's masks bit for bit: element i of Philox stream key->stream
 * under key->seed (the CPU op's `stream` and `seed`), drawn by the same
 * Philox rounds (src/core/philox.h, compiled for the device). *key is
 * device memory, read when the kernel runs (not when it is launched), so a
 * captured graph replays with whatever key the step wrote there; with
 * p <= 0 it is not read and may be NULL. Outputs equal the CPU op's
 * bit for bit. _at: elements first .. first + n - 1 of the stream; _rows:
 * rows x cols (compact) whose element (r, c) is element first + r *
 * row_stride + c of the stream (the [CLS] rows). */
int dropout_forward_cuda(float *out, const float *inp, size_t n, float p, const PhiloxKey *key, cudaStream_t stream);
int dropout_backward_cuda(float *dinp, bool accumulate, const float *dout, size_t n, float p, const PhiloxKey *key,
                          cudaStream_t stream);
int dropout_forward_at_cuda(float *out, const float *inp, size_t n, uint64_t first, float p,
                            const PhiloxKey *key, cudaStream_t stream);
int dropout_backward_at_cuda(float *dinp, bool accumulate, const float *dout, size_t n, uint64_t first, float p,
                             const PhiloxKey *key, cudaStream_t stream);
int dropout_forward_rows_cuda(float *out, const float *inp, int rows, int cols, uint64_t first,
                              uint64_t row_stride, float p, const PhiloxKey *key,
                              cudaStream_t stream);
int dropout_backward_rows_cuda(float *dinp, bool accumulate, const float *dout, int rows, int cols,
                               uint64_t first, uint64_t row_stride, float p, const PhiloxKey *key, cudaStream_t stream);
/* bf16: the same masks; each output the fp32 twin's, rounded. */
int dropout_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, float p, const PhiloxKey *key, cudaStream_t stream);
int dropout_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, size_t n, float p,
                               const PhiloxKey *key, cudaStream_t stream);
int dropout_forward_rows_cuda_bf16(bf16 *out, const bf16 *inp, int rows, int cols, uint64_t first,
                                   uint64_t row_stride, float p, const PhiloxKey *key,
                                   cudaStream_t stream);
int dropout_backward_rows_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, int rows, int cols,
                                    uint64_t first, uint64_t row_stride, float p, const PhiloxKey *key,
                                    cudaStream_t stream);

/* ---- elementwise (elementwise.cu) ------------------------------------------
 * residual_add (src/ops/residual.h), ReLU (src/ops/relu.h), the [CLS] row
 * gather and scatter-add (src/ops/rows.h), the additive attention mask from
 * the 0/1 int mask (softmax_mask_additive, src/ops/softmax.h; mask NULL: all
 * 0): all bit for bit the CPU's. The linear layer's bias halves
 * (src/ops/linear.h) have no kernel: cuBLASLt's epilogues add the bias in
 * the forward GEMM and sum its gradient in the weight-gradient GEMM
 * (models/backend_cuda.c). */
int residual_add_cuda(float *y, const float *x, size_t n, cudaStream_t stream);
int relu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream);
int relu_backward_cuda(float *dinp, bool accumulate, const float *dout, const float *inp, size_t n,
                       cudaStream_t stream);
int rows_gather_cuda(float *dst, const float *src, int rows, int cols, int stride,
                     cudaStream_t stream);
int rows_scatter_add_cuda(float *dst, const float *src, int rows, int cols, int stride,
                          cudaStream_t stream);
int softmax_mask_additive_cuda(float *out, const int32_t *mask, size_t n, cudaStream_t stream);
/* bf16 activations (the bf16 step's residual adds are
 * layernorm_residual_forward's). convert_bf16_cuda rounds n fp32
 * values to bf16 (nearest even; NaN stays NaN): the GEMMs' copies of the
 * weights, the loss's dlogits. */
int relu_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, cudaStream_t stream);
int relu_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, const bf16 *inp, size_t n,
                            cudaStream_t stream);
int rows_gather_cuda_bf16(bf16 *dst, const bf16 *src, int rows, int cols, int stride,
                          cudaStream_t stream);
int rows_scatter_add_cuda_bf16(bf16 *dst, const bf16 *src, int rows, int cols, int stride,
                               cudaStream_t stream);
int convert_bf16_cuda(bf16 *out, const float *inp, size_t n, cudaStream_t stream);

/* ---- losses (loss.cu): loss_forward, src/ops/loss.h -------------------------
 * `loss` is a host struct whose weights (LOSS_BCE_LOGW) are a device array
 * of L floats. One kernel computes each element in double, by the CPU's own
 * formulas (src/ops/loss_element.h), writes dlogits * grad_scale (dlogits
 * may be NULL) and the element's loss into `work`; a second, one block,
 * sums the B * L losses in a fixed order (thread t adds elements t, t + 256,
 * ... in order, then a fixed tree over the 256 partials, all in double) and
 * writes the mean, as a float, to *mean_loss (device memory). */
size_t loss_workspace_size(int B, int L);
int loss_forward_cuda(const Loss *loss, float *mean_loss, float *dlogits, const float *logits,
                      const float *targets, int B, int L, float grad_scale, void *work,
                      cudaStream_t stream);

/* ---- AdamW (adamw.cu): adamw_update_segments, src/optim/adamw.h -------------
 * Every parameter in one launch: elements 0 .. n - 1 of param, grad, m and
 * v, each updated as its segment says (seg: a device copy of the nseg
 * segments, sorted by offset, as layout_decay_segments builds them once per
 * model); elements in no segment are left alone. The step's constants (the
 * bias corrections, the step size, the decay factor) are computed on the
 * host by adamw_step_constants exactly as adamw_update computes them, for
 * step t at learning rate lr, and reach the kernel in device memory (*k,
 * read when it runs, so a captured graph replays each step's); the update is
 * rounded operation by operation as the CPU's (no fused multiply-add), so
 * the results equal the CPU's bit for bit. param_bf16 (NULL: none) gets
 * each updated parameter rounded to bf16, as convert_bf16_cuda rounds it:
 * mixed precision's GEMM copy of the weights, in the same pass. */
typedef struct {
    float b1, b2, one_m_b1, one_m_b2, eps, step_size, bc2_sqrt, keep_decay;
} AdamWStep;
void adamw_step_constants(AdamWStep *k, const AdamW *opt, int t, float lr);
int adamw_update_cuda(float *param, bf16 *param_bf16, const float *grad, float *m, float *v, const AdamWSegment *seg,
                      int nseg, size_t n, const AdamWStep *k, cudaStream_t stream);

/* ---- the gradient norm (norm.cu): clip_grad_norm, src/optim/adamw.h ---------
 * grad_norm_cuda writes the L2 norm of grad (n values) to *norm (device):
 * squares summed in double over fixed chunks of ADAMW_NORM_CHUNK values (as
 * the CPU op's chunks), each by one block in a fixed order, then the chunk
 * sums in chunk order; sqrt, rounded to float. A NaN or infinite gradient
 * makes the norm NaN or infinite (squares in double cannot overflow). Its
 * two stages apart, for a gradient split over ranks (ZeRO-1):
 * grad_sum_squares_chunks_cuda writes the chunk sums of n values to part
 * (ceil(n / ADAMW_NORM_CHUNK) doubles, device), grad_norm_of_chunks_cuda
 * the norm of `chunks` such sums; trailing zero sums change no bit, so the
 * sums of zero-padded shards of whole chunks, in order, give the whole
 * gradient's norm exactly. grad_clip_cuda
 * scales grad by max_norm / (*norm + 1e-6) when that is below 1, reading
 * the norm on the device (no host round trip); clip_grad_norm_cuda is the
 * two, as the CPU op. finite_check_cuda sets *flag (device int) to 1 when
 * any of x's n values is NaN or infinite and leaves it alone otherwise:
 * zero it once, then check several arrays. */
size_t grad_norm_workspace_size(size_t n);
int grad_norm_cuda(float *norm, const float *grad, size_t n, void *work, cudaStream_t stream);
int grad_sum_squares_chunks_cuda(double *part, const float *grad, size_t n, cudaStream_t stream);
int grad_norm_of_chunks_cuda(float *norm, const double *part, size_t chunks, cudaStream_t stream);
int grad_clip_cuda(float *grad, const float *norm, size_t n, float max_norm, cudaStream_t stream);
int clip_grad_norm_cuda(float *grad, float *norm, size_t n, float max_norm, void *work,
                        cudaStream_t stream);
int finite_check_cuda(int *flag, const float *x, size_t n, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
