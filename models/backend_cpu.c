/* The CPU backend: the reference model (models/distilbert.c) and its AdamW
 * state behind models/backend.h. Host and backend memory are the same here,
 * so the copies in and out are memcpy. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend_impl.h"
#include "models/distilbert.h"
#include "src/core/err.h"

typedef struct {
    Backend base;
    DistilBert m;
    AdamWState opt;
    Loss loss;
    float *loss_weights;  /* the loss's class weights, our copy */
    const float *logits;  /* of the last forward, B x num_labels */
    int B, T;             /* the last forward's batch; B = 0 before the first */
    float *dlogits;
    size_t dlogits_cap;
    float *scratch;       /* a later micro-batch's own gradient (loss_backward) */
    bool summing;         /* gradients hold a batch's since zero_grad */
    /* ZeRO-1 (set_comm with shard): the moments in opt are this rank's shard
     * [lo, hi) alone, of blocks of `shard` values (a multiple of
     * ADAMW_NORM_CHUNK, so the norm sums the pieces the unsharded one does). */
    Comm *comm;           /* NULL: not sharded */
    size_t lo, hi, shard;
    float *blocks;        /* world x shard: gradients out, parameters in */
    float *mine;          /* shard: this rank's summed gradients, then its parameters */
} CpuBackend;

static CpuBackend *cpu(Backend *be) { return (CpuBackend *)be; }

static void cpu_close(Backend *be)
{
    CpuBackend *c = cpu(be);
    distilbert_free(&c->m);
    adamw_state_free(&c->opt);
    free(c->loss_weights);
    free(c->dlogits);
    free(c->scratch);
    free(c->blocks);
    free(c->mine);
    layout_free(&c->base.lay);
    free(c);
}

/* dlogits for B rows. */
static void reserve_dlogits(CpuBackend *c, int B)
{
    size_t n = (size_t)B * c->base.lay.cfg.num_labels;
    if (n > c->dlogits_cap) {
        c->dlogits = xrealloc(c->dlogits, n * sizeof(float));
        c->dlogits_cap = n;
    }
}

static int cpu_reserve(Backend *be, int max_B, int max_T)
{
    CpuBackend *c = cpu(be);
    distilbert_reserve(&c->m, max_B, max_T);
    reserve_dlogits(c, max_B);
    return 0;
}

static int cpu_forward(Backend *be, const int32_t *ids, const int32_t *mask, int B, int T,
                       const ForwardArgs *fa)
{
    CpuBackend *c = cpu(be);
    c->logits = distilbert_forward(&c->m, ids, mask, B, T, fa);
    c->B = c->logits ? B : 0;
    c->T = T;
    return c->logits ? 0 : -1;
}

static int cpu_logits(Backend *be, float *out)
{
    CpuBackend *c = cpu(be);
    if (!c->B) return err_set("backend: no forward pass to read logits from");
    memcpy(out, c->logits, (size_t)c->B * c->base.lay.cfg.num_labels * sizeof(float));
    return 0;
}

static int cpu_hidden(Backend *be, float *out)
{
    CpuBackend *c = cpu(be);
    const float *h = c->B ? distilbert_hidden(&c->m) : NULL;
    if (!h) return err_set("backend: the last forward kept no hidden states (cls_only)");
    size_t n = (size_t)c->B * c->T * c->base.lay.cfg.dim;
    memcpy(out, h, n * sizeof(float));
    return 0;
}

static int cpu_set_loss(Backend *be, const Loss *loss)
{
    CpuBackend *c = cpu(be);
    c->loss = *loss;
    free(c->loss_weights);
    c->loss_weights = NULL;
    if (loss->weights) {
        size_t n = (size_t)c->base.lay.cfg.num_labels * sizeof(float);
        c->loss_weights = xmalloc(n);
        memcpy(c->loss_weights, loss->weights, n);
    }
    c->loss.weights = c->loss_weights;
    return 0;
}

static int cpu_loss_backward(Backend *be, const float *targets, float grad_scale, float *loss)
{
    CpuBackend *c = cpu(be);
    if (!c->B) return err_set("backend: backward without a forward pass");
    reserve_dlogits(c, c->B);
    *loss = loss_forward(&c->loss, c->dlogits, c->logits, targets, c->B, c->base.lay.cfg.num_labels,
                         grad_scale);
    if (!c->summing) {
        distilbert_backward(&c->m, c->dlogits);
        c->summing = true;
        return 0;
    }
    /* A later batch: its gradient alone, into scratch, then added. */
    size_t n = c->base.lay.n_params;
    if (!c->scratch) c->scratch = xmalloc(n * sizeof(float));
    float *sum = c->m.grads;
    memset(c->scratch, 0, n * sizeof(float));
    c->m.grads = c->scratch;
    distilbert_backward(&c->m, c->dlogits);
    c->m.grads = sum;
    for (size_t i = 0; i < n; i++) sum[i] += c->scratch[i];
    return 0;
}

static int cpu_zero_grad(Backend *be)
{
    distilbert_zero_grad(&cpu(be)->m);
    cpu(be)->summing = false;
    return 0;
}

/* ZeRO-1's step: the norm over every rank's shard, AdamW on this one
 * (the weight-decay table cut to it), the parameters all-gathered. */
static int sharded_step(CpuBackend *c, const AdamW *opt, float lr, float max_norm, float *grad_norm)
{
    size_t n = c->hi - c->lo;
    *grad_norm = 0.0f;
    if (max_norm > 0) {
        double ss = grad_sum_squares(c->mine, n);
        if (comm_allreduce(c->comm, &ss, 1, COMM_F64, COMM_SUM) != 0) return -1;
        *grad_norm = (float)sqrt(ss);
        clip_grad_scale(c->mine, n, *grad_norm, max_norm);
    }
    AdamWSegment all[P_COUNT], cut[P_COUNT];
    int ncut = adamw_segments_cut(all, layout_decay_segments(&c->base.lay, all), c->lo, c->hi, cut);
    c->opt.t++;
    float *p = c->m.params + c->lo;
    adamw_update_segments(opt, p, c->mine, c->opt.m, c->opt.v, cut, ncut, c->opt.t, lr);
    memcpy(c->mine, p, n * sizeof(float));
    memset(c->mine + n, 0, (c->shard - n) * sizeof(float));
    if (comm_allgather(c->comm, c->mine, c->blocks, c->shard * sizeof(float)) != 0) return -1;
    memcpy(c->m.params, c->blocks, c->base.lay.n_params * sizeof(float));
    return 0;
}

static int cpu_step(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm)
{
    CpuBackend *c = cpu(be);
    if (c->comm) return sharded_step(c, opt, lr, max_norm, grad_norm);
    *grad_norm = distilbert_adamw_step(&c->m, &c->opt, opt, lr, max_norm);
    return 0;
}

static int cpu_get_params(Backend *be, float *out)
{
    CpuBackend *c = cpu(be);
    memcpy(out, c->m.params, c->base.lay.n_params * sizeof(float));
    return 0;
}

static int cpu_set_params(Backend *be, const float *in)
{
    CpuBackend *c = cpu(be);
    memcpy(c->m.params, in, c->base.lay.n_params * sizeof(float));
    return 0;
}

/* One moment, whole, from every rank's shard of it. */
static int gather_moment(CpuBackend *c, float *out, const float *part)
{
    size_t n = c->hi - c->lo;
    memcpy(c->mine, part, n * sizeof(float));
    memset(c->mine + n, 0, (c->shard - n) * sizeof(float));
    if (comm_allgather(c->comm, c->mine, c->blocks, c->shard * sizeof(float)) != 0) return -1;
    memcpy(out, c->blocks, c->base.lay.n_params * sizeof(float));
    return 0;
}

static int cpu_get_optimizer(Backend *be, AdamWState *out)
{
    CpuBackend *c = cpu(be);
    out->t = c->opt.t;
    if (c->comm) return gather_moment(c, out->m, c->opt.m) || gather_moment(c, out->v, c->opt.v) ? -1 : 0;
    memcpy(out->m, c->opt.m, c->opt.n * sizeof(float));
    memcpy(out->v, c->opt.v, c->opt.n * sizeof(float));
    return 0;
}

static int cpu_set_optimizer(Backend *be, const AdamWState *in)
{
    CpuBackend *c = cpu(be);
    size_t from = c->comm ? c->lo : 0;
    memcpy(c->opt.m, in->m + from, c->opt.n * sizeof(float));
    memcpy(c->opt.v, in->v + from, c->opt.n * sizeof(float));
    c->opt.t = in->t;
    return 0;
}

static int cpu_get_grads(Backend *be, float *out)
{
    CpuBackend *c = cpu(be);
    memcpy(out, c->m.grads, c->base.lay.n_params * sizeof(float));
    return 0;
}

/* MPI needs nothing per backend unless the moments are sharded: then this
 * rank's shard, and its moments alone (zero, or set_optimizer's slice). */
static int cpu_set_comm(Backend *be, Comm *comm, bool shard)
{
    CpuBackend *c = cpu(be);
    if (!shard) return 0;
    adamw_shard(c->base.lay.n_params, comm_world(comm), comm_rank(comm), &c->shard, &c->lo, &c->hi);
    c->comm = comm;
    c->blocks = xcalloc((size_t)comm_world(comm) * c->shard, sizeof(float));
    c->mine = xcalloc(c->shard, sizeof(float));
    int t = c->opt.t;
    adamw_state_free(&c->opt);
    adamw_state_init(&c->opt, c->hi - c->lo);
    c->opt.t = t;
    return 0;
}

static int cpu_allreduce_grads(Backend *be, Comm *comm)
{
    CpuBackend *c = cpu(be);
    size_t n = c->base.lay.n_params;
    if (!c->comm) return comm_allreduce(comm, c->m.grads, n, COMM_F32, COMM_SUM);
    memcpy(c->blocks, c->m.grads, n * sizeof(float));
    memset(c->blocks + n, 0, (comm_world(comm) * c->shard - n) * sizeof(float));
    return comm_reduce_scatter(comm, c->blocks, c->mine, c->shard, COMM_F32);
}

static float *cpu_grads(Backend *be, size_t *n)
{
    CpuBackend *c = cpu(be);
    *n = c->base.lay.n_params;
    return c->m.grads;
}

static int cpu_set_precision(Backend *be, Precision p)
{
    (void)be;
    return p != PRECISION_FP32 ? err_set("precision %s: the CPU backend computes in fp32 (%s is a GPU's tensor-core format)",
                                         precision_name(p), precision_name(p))
                               : 0;
}

static Precision cpu_default_precision(Backend *be)
{
    (void)be;
    return PRECISION_FP32;
}

static int cpu_set_graphs(Backend *be, bool on)
{
    (void)be;
    return on ? err_set("cuda_graphs=true: CUDA graphs need device=cuda") : 0;
}

static const BackendOps cpu_ops = {
    .name = "cpu",
    .close = cpu_close,
    .reserve = cpu_reserve,
    .forward = cpu_forward,
    .logits = cpu_logits,
    .hidden = cpu_hidden,
    .set_loss = cpu_set_loss,
    .loss_backward = cpu_loss_backward,
    .zero_grad = cpu_zero_grad,
    .step = cpu_step,
    .set_precision = cpu_set_precision,
    .default_precision = cpu_default_precision,
    .set_graphs = cpu_set_graphs,
    .get_params = cpu_get_params,
    .set_params = cpu_set_params,
    .get_grads = cpu_get_grads,
    .set_comm = cpu_set_comm,
    .allreduce_grads = cpu_allreduce_grads,
    .get_optimizer = cpu_get_optimizer,
    .set_optimizer = cpu_set_optimizer,
    .grads = cpu_grads,
};

Backend *backend_cpu_open(const ModelWeights *w)
{
    CpuBackend *c = xcalloc(1, sizeof *c);
    if (distilbert_init(&c->m, w) != 0) {
        free(c);
        return NULL;
    }
    c->base.ops = &cpu_ops;
    layout_copy(&c->base.lay, &w->lay);
    adamw_state_init(&c->opt, w->lay.n_params);
    return &c->base;
}
