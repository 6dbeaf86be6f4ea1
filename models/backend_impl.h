/* What a backend implements: models/backend.h's calls, one function each
 * (same arguments, the Backend first), and its open function. For
 * models/backend.c and the backends only. */
#ifndef GENRE_MODELS_BACKEND_IMPL_H
#define GENRE_MODELS_BACKEND_IMPL_H

#include "models/backend.h"

typedef struct {
    const char *name;
    void (*close)(Backend *be);
    int (*reserve)(Backend *be, int max_B, int max_T);
    int (*forward)(Backend *be, const int32_t *ids, const int32_t *mask, int B, int T, const ForwardArgs *fa);
    int (*logits)(Backend *be, float *out);
    int (*hidden)(Backend *be, float *out);
    int (*set_loss)(Backend *be, const Loss *loss);
    int (*loss_backward)(Backend *be, const float *targets, float grad_scale, float *loss);
    int (*zero_grad)(Backend *be);
    int (*step)(Backend *be, const AdamW *opt, float lr, float max_norm, float *grad_norm);
    int (*set_precision)(Backend *be, Precision p);
    Precision (*default_precision)(Backend *be);
    int (*set_graphs)(Backend *be, bool on);
    int (*get_params)(Backend *be, float *out);
    int (*set_params)(Backend *be, const float *in);
    int (*get_grads)(Backend *be, float *out);
    int (*set_comm)(Backend *be, Comm *comm, bool shard);
    int (*allreduce_grads)(Backend *be, Comm *comm);
    int (*get_optimizer)(Backend *be, AdamWState *out);
    int (*set_optimizer)(Backend *be, const AdamWState *in);
    float *(*grads)(Backend *be, size_t *n);
} BackendOps;

/* The part of every backend that backend.c reads; each backend's own
 * struct begins with it. */
struct Backend {
    const BackendOps *ops;
    ModelLayout lay;
};

/* The CPU backend (models/backend_cpu.c). */
Backend *backend_cpu_open(const ModelWeights *w);

/* The CUDA backend (models/backend_cuda.c), in builds with CUDA or the
 * simulator (GENRE_CUDA_BACKEND): whether a GPU is there (0, or -1 with
 * err_set), and the backend on it. */
int backend_cuda_available(void);
int backend_cuda_describe(char *buf, size_t size);
Backend *backend_cuda_open(const ModelWeights *w);
int backend_cuda_select(int local_rank);

#endif
