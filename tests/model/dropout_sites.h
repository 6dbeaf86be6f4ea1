/* The dropout sites of DistilBERT's forward pass (models/distilbert_spec.h),
 * in the order the forward reaches them, with the Philox stream each draws
 * from (dropout_stream), and their keep-masks computed by the dropout op the
 * models use (src/ops/dropout.h). Shared by tests/tools/dropout_masks.c,
 * which exports the masks for tests/reference/make_dropout_fixture.py
 * (PyTorch applies them in place of its own dropout), and by
 * tests/model/test_dropout_ref.c.
 *   emb            B x T x D        after the embedding LayerNorm      DROP_EMB
 *   layer.L.attn   B x H x T x T    attention probabilities of block L DROP_ATT + 2L
 *   layer.L.ffn    B x T x D        FFN output (lin2) of block L       DROP_FFN + 2L
 *   head           B x D            after the pre-classifier's ReLU    DROP_HEAD
 * A backend that drew other masks at these sites would fail
 * test_dropout_ref's comparison with PyTorch. */
#ifndef GENRE_TESTS_DROPOUT_SITES_H
#define GENRE_TESTS_DROPOUT_SITES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/distilbert_spec.h"
#include "src/ops/dropout.h"

typedef struct {
    char name[32];
    int ndim;
    int64_t shape[4];
    size_t n;
    float p;
    uint64_t stream;
} DropoutSite;

#define DROPOUT_SITES_MAX 64

static inline void dropout_site_set(DropoutSite *s, const char *name, int ndim, const int64_t *shape,
                                    float p, uint64_t key, int site)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->n = 1;
    for (int i = 0; i < ndim; i++) s->n *= (size_t)(s->shape[i] = shape[i]);
    s->p = p;
    s->stream = dropout_stream(key, site);
}

/* Fills sites (room for DROPOUT_SITES_MAX) in forward order for a batch of
 * B x T under dropout key `key`; returns their number, or -1 if the model
 * has too many layers. */
static inline int dropout_sites(DropoutSite *sites, const DistilBertConfig *c, int B, int T,
                                uint64_t key)
{
    if (2 + 2 * c->n_layers > DROPOUT_SITES_MAX) return -1;
    int n = 0;
    const int64_t btd[] = {B, T, c->dim}, bhtt[] = {B, c->n_heads, T, T}, bd[] = {B, c->dim};
    dropout_site_set(&sites[n++], "emb", 3, btd, c->dropout, key, DROP_EMB);
    for (int l = 0; l < c->n_layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "layer.%d.attn", l);
        dropout_site_set(&sites[n++], name, 4, bhtt, c->attention_dropout, key, DROP_ATT + 2 * l);
        snprintf(name, sizeof name, "layer.%d.ffn", l);
        dropout_site_set(&sites[n++], name, 3, btd, c->dropout, key, DROP_FFN + 2 * l);
    }
    dropout_site_set(&sites[n++], "head", 2, bd, c->seq_classif_dropout, key, DROP_HEAD);
    return n;
}

/* keep[i] = 1 where the site's dropout keeps element i, 0 where it drops it:
 * dropout_forward of ones under `seed`, nonzero exactly where kept. The
 * caller frees the result. */
static inline uint8_t *dropout_site_keep(const DropoutSite *s, uint64_t seed)
{
    float *ones = malloc(s->n * sizeof *ones), *out = malloc(s->n * sizeof *out);
    uint8_t *keep = malloc(s->n ? s->n : 1);
    for (size_t i = 0; i < s->n; i++) ones[i] = 1.0f;
    dropout_forward(out, ones, s->n, s->p, seed, s->stream);
    for (size_t i = 0; i < s->n; i++) keep[i] = out[i] != 0.0f;
    free(ones);
    free(out);
    return keep;
}

#endif
