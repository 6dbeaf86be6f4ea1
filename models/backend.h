/* The one interface to a model on a device. The trainer, the classifier
 * (eval, predict, embed), checkpoints and benches go through it and nothing
 * else, so the CPU backend (models/backend_cpu.c, the reference ops) and the
 * CUDA one are interchangeable: the same weights, batches, dropout keys and
 * hyperparameters give the same losses, gradients and checkpoints.
 *
 * A backend holds its own copy of the weights, the gradients, the AdamW
 * moments and the activations; the caller's buffers are host memory, in the
 * parameter table's flat order (models/distilbert_spec.h). Per step only
 * ids, mask and targets go in; the loss and the gradient norm come out (and
 * logits or hidden states when asked for).
 *
 * Every call returns 0, or -1 with err_set naming what failed (a CUDA call,
 * a bad batch); nothing below it exits. After an error the backend may only
 * be closed. */
#ifndef GENRE_MODELS_BACKEND_H
#define GENRE_MODELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "models/distilbert_spec.h"
#include "src/dist/comm.h"
#include "src/ops/loss.h"
#include "src/optim/adamw.h"

typedef struct Backend Backend;

/* Whether device names a backend this binary can open here: 0, or -1 with
 * err_set saying why not (unknown, not built, no GPU). */
int backend_available(const char *device);

/* What device names here, in words ("NVIDIA H200, compute 9.0"), into buf:
 * 0, or -1 with err_set saying why it is not available. */
int backend_describe(const char *device, char *buf, size_t size);

/* Which of the node's devices this process uses: for cuda, GPU local_rank
 * (modulo the GPUs present, which then share) for the backends opened
 * after; nothing for cpu. A data-parallel rank calls it with its index
 * on its node before opening a backend. 0, or -1 with err_set. */
int backend_select_device(const char *device, int local_rank);

/* A backend on device "cpu" (or "cuda" where it is built and a GPU is
 * present) holding a copy of w, gradients zeroed, AdamW moments zeroed and
 * t = 0. NULL with err_set for an unknown or unavailable device. */
Backend *backend_open(const char *device, const ModelWeights *w);
void backend_close(Backend *be);

/* The layout of the backend's parameters (cfg included). */
const ModelLayout *backend_layout(const Backend *be);

/* Sizes the activations for batches up to max_B x max_T, so that no step
 * allocates; a larger batch later grows them. */
int backend_reserve(Backend *be, int max_B, int max_T);

/* The forward pass over ids and mask (B x T, host; mask 1 = token, 0 =
 * padding), run as fa says. Ids must be < vocab_size and T <=
 * max_position_embeddings, or it fails naming the offending value. */
int backend_forward(Backend *be, const int32_t *ids, const int32_t *mask, int B, int T,
                    const ForwardArgs *fa);

/* The logits (B x num_labels) of the last forward, into host memory. */
int backend_logits(Backend *be, float *out);

/* The final hidden states (B x T x dim) of the last forward, into host
 * memory; an error if it ran with cls_only. */
int backend_hidden(Backend *be, float *out);

/* The loss that backend_loss_backward computes (src/ops/loss.h); the
 * backend keeps a copy, class weights included. */
int backend_set_loss(Backend *be, const Loss *loss);

/* The loss of the last forward against targets (B x num_labels, host, in
 * [0, 1]), into *loss, and the backward pass of grad_scale x that loss,
 * ACCUMULATED into the gradients (grad_scale = 1 / micro-batches of a step).
 * Each batch's gradient is computed alone and then added, so the gradients
 * are the sum, in call order, of one gradient per batch: exactly what an
 * all-reduce over ranks that each ran one of those batches sums. */
int backend_loss_backward(Backend *be, const float *targets, float grad_scale, float *loss);

int backend_zero_grad(Backend *be);

/* Clips the global gradient norm to max_norm (<= 0: no clipping, *grad_norm
 * = 0), then one AdamW step at learning rate lr (weight decay per the
 * table). *grad_norm is the norm before clipping. */
int backend_step(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm);

/* How a backend computes. fp32: fp32 throughout (every backend, and the
 * default when opened). tf32: the GEMMs take TF32 inputs (CUDA tensor
 * cores: 10 mantissa bits, fp32 accumulation). bf16: mixed precision
 * (CUDA): activations, their gradients and the GEMMs' copy of the weights
 * in bfloat16, the GEMMs accumulating in fp32; master weights, gradients,
 * AdamW moments, LayerNorm statistics, logits, loss and gradient norm in
 * fp32, so checkpoints are what fp32 training writes. */
typedef enum { PRECISION_FP32, PRECISION_TF32, PRECISION_BF16 } Precision;

/* The name of p ("fp32", "tf32", "bf16"). */
const char *precision_name(Precision p);

/* Sets how be computes, before or between steps: 0, or -1 with err_set
 * when the backend cannot (the CPU computes in fp32 only). */
int backend_set_precision(Backend *be, Precision p);

/* What be computes fastest at without giving up what training needs: bf16
 * on a GPU with bf16 tensor cores, else fp32. */
Precision backend_default_precision(Backend *be);

/* Whether be replays its device work as CUDA graphs (the CUDA backend: on
 * when opened). Each call's kernels (the forward's, the loss and backward's,
 * the optimizer step's) are captured once per shape and arguments (batch
 * size, sequence length, train or not, cls_only, the loss's grad_scale,
 * max_norm) and replayed after, so a step costs three launches on the host
 * instead of hundreds; what changes per step (ids, mask, targets, dropout
 * keys, the embedding plan, AdamW's step count and learning rate) reaches
 * the replay through device memory. Results equal direct launches bit for
 * bit. The data-parallel paths that overlap NCCL with the backward, and
 * ZeRO-1's step, launch directly. 0, or -1 with err_set where be has no
 * graphs (the CPU) and on is asked. */
int backend_set_graphs(Backend *be, bool on);

/* Parameters to and from host memory (lay.n_params floats). */
int backend_get_params(Backend *be, float *out);
int backend_set_params(Backend *be, const float *in);

/* The AdamW state to and from host memory (s->n must be lay.n_params). */
int backend_get_optimizer(Backend *be, AdamWState *out);
int backend_set_optimizer(Backend *be, const AdamWState *in);

/* The job whose ranks sum their gradients (src/dist/comm.h): called by
 * every rank at the same point, after open and before the first step
 * (the CUDA backend makes its NCCL communicator here). A world of one
 * needs neither this nor backend_allreduce_grads, but may take them to run
 * the data-parallel path alone, which must change no bit. With shard (ZeRO-1;
 * the CUDA backend needs NCCL for it) each rank keeps the AdamW moments of
 * its shard (adamw_shard) alone: backend_allreduce_grads reduce-scatters,
 * so a rank holds the sum of its shard only; backend_step clips by the
 * norm over all shards, steps its shard and all-gathers the parameters;
 * backend_get_optimizer gathers the whole state and so must be called by
 * every rank at once. */
int backend_set_comm(Backend *be, Comm *comm, bool shard);

/* Sums the gradients over the job's ranks in place, so that every rank
 * steps with the same: the all-reduce of data parallel, after
 * backend_set_comm. Where the last backward of the step ran with fa.reduce,
 * the CUDA backend has already summed most of them, bucket by bucket
 * during that backward (a layer's gradients once the backward is past it),
 * and this completes the sum. */
int backend_allreduce_grads(Backend *be, Comm *comm);

/* The gradients to host memory (lay.n_params floats, table order). */
int backend_get_grads(Backend *be, float *out);

/* The gradients as one flat array of *n floats in the backend's memory
 * (device memory on a GPU), table order: what an all-reduce sums. */
float *backend_grads(Backend *be, size_t *n);

#endif
