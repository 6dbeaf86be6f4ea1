#include <stdio.h>
#include <string.h>

#include "models/backend_impl.h"
#include "src/core/err.h"
#include "src/core/failpoint.h"

int backend_available(const char *device)
{
    if (!strcmp(device, "cpu")) return 0;
#ifdef GENRE_CUDA_BACKEND
    if (!strcmp(device, "cuda")) return backend_cuda_available();
#else
    if (!strcmp(device, "cuda"))
        return err_set("device=cuda: this genre was built without CUDA (nvcc was not found); use device=cpu");
#endif
    return err_set("device '%s': unknown (cpu or cuda)", device);
}

int backend_describe(const char *device, char *buf, size_t size)
{
    if (backend_available(device) != 0) return -1;
#ifdef GENRE_CUDA_BACKEND
    if (!strcmp(device, "cuda")) return backend_cuda_describe(buf, size);
#endif
    snprintf(buf, size, "the CPU (OpenBLAS, OpenMP)");
    return 0;
}

int backend_select_device(const char *device, int local_rank)
{
    if (backend_available(device) != 0) return -1;
#ifdef GENRE_CUDA_BACKEND
    if (!strcmp(device, "cuda")) return backend_cuda_select(local_rank);
#endif
    (void)local_rank;
    return 0;
}

Backend *backend_open(const char *device, const ModelWeights *w)
{
    if (backend_available(device) != 0) return NULL;
#ifdef GENRE_CUDA_BACKEND
    if (!strcmp(device, "cuda")) return backend_cuda_open(w);
#endif
    return backend_cpu_open(w);
}

void backend_close(Backend *be)
{
    if (be) be->ops->close(be);
}

const ModelLayout *backend_layout(const Backend *be) { return &be->lay; }

int backend_reserve(Backend *be, int max_B, int max_T)
{
    if (max_B <= 0 || max_T <= 0) return err_set("backend: cannot reserve %d x %d", max_B, max_T);
    return be->ops->reserve(be, max_B, max_T);
}

int backend_forward(Backend *be, const int32_t *ids, const int32_t *mask, int B, int T,
                    const ForwardArgs *fa)
{
    return be->ops->forward(be, ids, mask, B, T, fa);
}

int backend_logits(Backend *be, float *out) { return be->ops->logits(be, out); }

int backend_hidden(Backend *be, float *out) { return be->ops->hidden(be, out); }

int backend_set_loss(Backend *be, const Loss *loss) { return be->ops->set_loss(be, loss); }

int backend_loss_backward(Backend *be, const float *targets, float grad_scale, float *loss)
{
    return be->ops->loss_backward(be, targets, grad_scale, loss);
}

int backend_zero_grad(Backend *be) { return be->ops->zero_grad(be); }

int backend_step(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm)
{
    if (failpoint("backend_step")) return -1;
    return be->ops->step(be, opt, lr, max_norm, grad_norm);
}

int backend_set_precision(Backend *be, Precision p) { return be->ops->set_precision(be, p); }
Precision backend_default_precision(Backend *be) { return be->ops->default_precision(be); }
int backend_set_graphs(Backend *be, bool on) { return be->ops->set_graphs(be, on); }

const char *precision_name(Precision p)
{
    switch (p) {
    case PRECISION_TF32: return "tf32";
    case PRECISION_BF16: return "bf16";
    default: return "fp32";
    }
}

int backend_get_params(Backend *be, float *out) { return be->ops->get_params(be, out); }

int backend_set_params(Backend *be, const float *in) { return be->ops->set_params(be, in); }

int backend_get_grads(Backend *be, float *out) { return be->ops->get_grads(be, out); }

int backend_set_comm(Backend *be, Comm *comm, bool shard) { return be->ops->set_comm(be, comm, shard); }

int backend_allreduce_grads(Backend *be, Comm *comm) { return be->ops->allreduce_grads(be, comm); }

int backend_get_optimizer(Backend *be, AdamWState *out)
{
    if (out->n != be->lay.n_params)
        return err_set("backend: optimizer state of %zu values for %zu parameters", out->n, be->lay.n_params);
    return be->ops->get_optimizer(be, out);
}

int backend_set_optimizer(Backend *be, const AdamWState *in)
{
    if (in->n != be->lay.n_params)
        return err_set("backend: optimizer state of %zu values for %zu parameters", in->n, be->lay.n_params);
    return be->ops->set_optimizer(be, in);
}

float *backend_grads(Backend *be, size_t *n) { return be->ops->grads(be, n); }
