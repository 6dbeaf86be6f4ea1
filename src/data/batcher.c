#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/data/batcher.h"
#include "src/core/err.h"
#include "src/core/rng.h"

int encoded_build(Encoded *e, const Tokenizer *t, const Dataset *d, int max_len)
{
    memset(e, 0, sizeof *e);
    if (max_len < 2) return err_set("max_len must be at least 2 (room for [CLS] and [SEP])");
    e->n = d->n;
    e->max_len = max_len;
    e->n_labels = d->n_labels;
    e->y = d->y;
    e->pad_id = tokenizer_special(t).pad;
    e->tokens = xmalloc((size_t)d->n * max_len * sizeof *e->tokens);
    e->lengths = xmalloc((size_t)(d->n ? d->n : 1) * sizeof *e->lengths);
    int32_t *mask = xmalloc((size_t)max_len * sizeof *mask);
    for (int i = 0; i < d->n; i++) {
        const char *text = d->texts[i];
        if (tokenizer_encode_batch(t, &text, 1, max_len, e->tokens + (size_t)i * max_len, mask,
                                   &e->lengths[i]) != 0) {
            err_set("movie %d (\"%s\"): %s", i + 1, d->titles[i], err_msg());
            free(mask);
            encoded_free(e);
            return -1;
        }
    }
    free(mask);
    return 0;
}

void encoded_free(Encoded *e)
{
    free(e->tokens);
    free(e->lengths);
    memset(e, 0, sizeof *e);
}

void oversample_weights(double *w, const Encoded *e, double power)
{
    int L = e->n_labels;
    long *count = xcalloc((size_t)L, sizeof *count);
    long most = 1;
    for (int i = 0; i < e->n; i++)
        for (int c = 0; c < L; c++) count[c] += e->y[(size_t)i * L + c];
    for (int c = 0; c < L; c++) most = count[c] > most ? count[c] : most;
    for (int i = 0; i < e->n; i++) {
        double best = 1.0;
        for (int c = 0; c < L; c++)
            if (e->y[(size_t)i * L + c]) {
                double r = (double)most / (double)count[c];
                double v = power == 0.0 ? 1.0 : pow(r, power);
                best = v > best ? v : best;
            }
        w[i] = best;
    }
    free(count);
}

static const Encoded *sort_set; /* qsort has no context argument in C11 */

static int by_length(const void *a, const void *b)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    int la = sort_set->lengths[ia], lb = sort_set->lengths[ib];
    if (la != lb) return la < lb ? -1 : 1;
    return ia < ib ? -1 : ia > ib; /* ties by index keep the sort deterministic */
}

static void sort_by_length(const Encoded *e, int *a, int n)
{
    sort_set = e;
    qsort(a, (size_t)n, sizeof *a, by_length);
    sort_set = NULL;
}

static void make_batches(EpochPlan *p, int batch_size)
{
    p->n_batches = (p->n_items + batch_size - 1) / batch_size;
    p->batch_start = xmalloc((size_t)(p->n_batches + 1) * sizeof *p->batch_start);
    for (int k = 0; k <= p->n_batches; k++)
        p->batch_start[k] = k * batch_size < p->n_items ? k * batch_size : p->n_items;
}

/* Draws n indices with replacement proportional to w (inverse CDF). */
static void weighted_draw(int *out, int n, const double *w, Rng *r)
{
    double *cdf = xmalloc((size_t)n * sizeof *cdf), total = 0.0;
    for (int i = 0; i < n; i++) cdf[i] = (total += w[i]);
    for (int k = 0; k < n; k++) {
        double u = rng_uniform(r) * total;
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] > u) hi = mid; else lo = mid + 1;
        }
        out[k] = lo;
    }
    free(cdf);
}

void epoch_plan_train(EpochPlan *p, const Encoded *e, int batch_size, uint64_t seed, int epoch,
                      int window, const double *weights)
{
    Rng r;
    rng_seed(&r, seed * 0x100000001b3ULL + (uint64_t)epoch);
    p->n_items = e->n;
    p->items = xmalloc((size_t)(e->n ? e->n : 1) * sizeof *p->items);
    if (weights) {
        weighted_draw(p->items, e->n, weights, &r);
    } else {
        for (int i = 0; i < e->n; i++) p->items[i] = i;
        rng_shuffle(&r, p->items, e->n);
    }
    make_batches(p, batch_size);
    if (window <= 1) return;
    int span = window * batch_size;
    for (int s = 0; s < p->n_items; s += span)
        sort_by_length(e, p->items + s, p->n_items - s < span ? p->n_items - s : span);
    /* Shuffle whole batches so the lengths do not rise and fall in a pattern;
     * the last, possibly short, batch stays last. */
    int full = p->n_items / batch_size;
    int *order = xmalloc((size_t)(full ? full : 1) * sizeof *order);
    int *copy = xmalloc((size_t)(p->n_items ? p->n_items : 1) * sizeof *copy);
    for (int k = 0; k < full; k++) order[k] = k;
    rng_shuffle(&r, order, full);
    memcpy(copy, p->items, (size_t)p->n_items * sizeof *copy);
    for (int k = 0; k < full; k++)
        memcpy(p->items + (size_t)k * batch_size, copy + (size_t)order[k] * batch_size,
               (size_t)batch_size * sizeof *copy);
    free(order);
    free(copy);
}

void epoch_plan_eval(EpochPlan *p, const Encoded *e, int batch_size)
{
    p->n_items = e->n;
    p->items = xmalloc((size_t)(e->n ? e->n : 1) * sizeof *p->items);
    for (int i = 0; i < e->n; i++) p->items[i] = i;
    sort_by_length(e, p->items, e->n);
    make_batches(p, batch_size);
}

void epoch_plan_free(EpochPlan *p)
{
    free(p->items);
    free(p->batch_start);
    memset(p, 0, sizeof *p);
}

void batch_alloc(Batch *b, int batch_size, int max_len, int n_labels)
{
    b->B = b->T = 0;
    b->ids = xmalloc((size_t)batch_size * max_len * sizeof *b->ids);
    b->mask = xmalloc((size_t)batch_size * max_len * sizeof *b->mask);
    b->labels = xmalloc((size_t)batch_size * n_labels * sizeof *b->labels);
    b->index = xmalloc((size_t)batch_size * sizeof *b->index);
}

void batch_free(Batch *b)
{
    free(b->ids);
    free(b->mask);
    free(b->labels);
    free(b->index);
    memset(b, 0, sizeof *b);
}

void batch_fill(Batch *b, const Encoded *e, const EpochPlan *p, int k)
{
    int begin = p->batch_start[k], end = p->batch_start[k + 1], L = e->n_labels;
    b->B = end - begin;
    b->T = 1;
    for (int j = begin; j < end; j++)
        if (e->lengths[p->items[j]] > b->T) b->T = e->lengths[p->items[j]];
    for (int r = 0; r < b->B; r++) {
        int i = p->items[begin + r], len = e->lengths[i];
        const int32_t *src = e->tokens + (size_t)i * e->max_len;
        for (int t = 0; t < b->T; t++) {
            b->ids[(size_t)r * b->T + t] = t < len ? src[t] : e->pad_id;
            b->mask[(size_t)r * b->T + t] = t < len;
        }
        for (int c = 0; c < L; c++) b->labels[(size_t)r * L + c] = e->y[(size_t)i * L + c];
        b->index[r] = i;
    }
}
