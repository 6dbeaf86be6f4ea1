/* The CPU backend: the reference model (models/distilbert.c) and its AdamW
 * state behind models/backend.h. Host and backend memory are the same here,
 * so the copies in and out are memcpy. */
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

static int cpu_step(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm)
{
    CpuBackend *c = cpu(be);
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

static int cpu_get_optimizer(Backend *be, AdamWState *out)
{
    CpuBackend *c = cpu(be);
    memcpy(out->m, c->opt.m, c->opt.n * sizeof(float));
    memcpy(out->v, c->opt.v, c->opt.n * sizeof(float));
    out->t = c->opt.t;
    return 0;
}

static int cpu_set_optimizer(Backend *be, const AdamWState *in)
{
    CpuBackend *c = cpu(be);
    memcpy(c->opt.m, in->m, c->opt.n * sizeof(float));
    memcpy(c->opt.v, in->v, c->opt.n * sizeof(float));
    c->opt.t = in->t;
    return 0;
}

static int cpu_get_grads(Backend *be, float *out)
{
    CpuBackend *c = cpu(be);
    memcpy(out, c->m.grads, c->base.lay.n_params * sizeof(float));
    return 0;
}

/* MPI needs nothing per backend: the sum runs after the backward. */
static int cpu_set_comm(Backend *be, Comm *comm)
{
    (void)be, (void)comm;
    return 0;
}

static int cpu_allreduce_grads(Backend *be, Comm *comm)
{
    CpuBackend *c = cpu(be);
    return comm_allreduce(comm, c->m.grads, c->base.lay.n_params, COMM_F32, COMM_SUM);
}

static float *cpu_grads(Backend *be, size_t *n)
{
    CpuBackend *c = cpu(be);
    *n = c->base.lay.n_params;
    return c->m.grads;
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
