#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/baseline/vectorizer.h"

void csr_free(Csr *m)
{
    free(m->indptr);
    free(m->indices);
    free(m->data);
    memset(m, 0, sizeof *m);
}

static uint64_t term_key(int32_t w1, int32_t w2) { return ((uint64_t)(uint32_t)w1 << 32) | (uint32_t)(w2 + 1); }

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* A growable map term key -> dense index, open addressing. */
typedef struct TermMap {
    uint64_t *keys;
    int32_t *vals;
    uint64_t mask;
    int n;
} KeyMap;

static void keymap_init(KeyMap *m, uint64_t n_slots)
{
    m->keys = xmalloc(n_slots * sizeof *m->keys);
    m->vals = xmalloc(n_slots * sizeof *m->vals);
    memset(m->vals, 0xff, n_slots * sizeof *m->vals);
    m->mask = n_slots - 1;
    m->n = 0;
}

static void keymap_free(KeyMap *m)
{
    free(m->keys);
    free(m->vals);
}

static int32_t keymap_get(const KeyMap *m, uint64_t key)
{
    for (uint64_t h = mix(key) & m->mask;; h = (h + 1) & m->mask) {
        if (m->vals[h] < 0) return -1;
        if (m->keys[h] == key) return m->vals[h];
    }
}

/* Index of key, inserting it with the next index when new. */
static int32_t keymap_put(KeyMap *m, uint64_t key)
{
    uint64_t h = mix(key) & m->mask;
    for (; m->vals[h] >= 0; h = (h + 1) & m->mask)
        if (m->keys[h] == key) return m->vals[h];
    m->keys[h] = key;
    m->vals[h] = m->n++;
    /* Grown after the insert: the new key's index is m->n - 1 either way. */
    if ((uint64_t)m->n * 2 > m->mask + 1) {
        KeyMap g;
        keymap_init(&g, (m->mask + 1) * 2);
        for (uint64_t i = 0; i <= m->mask; i++) {
            if (m->vals[i] < 0) continue;
            uint64_t j = mix(m->keys[i]) & g.mask;
            while (g.vals[j] >= 0) j = (j + 1) & g.mask;
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
        }
        g.n = m->n;
        keymap_free(m);
        *m = g;
    }
    return m->n - 1;
}

typedef struct {
    char *str;
    int32_t w[2];
    int64_t tf;
    int df;
} Cand;

static int cmp_str(const void *a, const void *b) { return strcmp(((const Cand *)a)->str, ((const Cand *)b)->str); }

static int cmp_tf_then_str(const void *a, const void *b)
{
    const Cand *x = a, *y = b;
    if (x->tf != y->tf) return x->tf > y->tf ? -1 : 1;
    return strcmp(x->str, y->str);
}

static char *term_string(const Lexicon *lx, int32_t w1, int32_t w2)
{
    const char *a = lexicon_word(lx, w1);
    if (w2 < 0) return xstrdup(a);
    const char *b = lexicon_word(lx, w2);
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 2);
    memcpy(s, a, la);
    s[la] = ' ';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

/* Runs the body (the variadic part) for every term occurrence of document i (unigrams, then bigrams). */
#define FOR_TERMS(docs, i, ngram_max, W1, W2, ...)                                   \
    do {                                                                             \
        const int32_t *ids_ = (docs)->ids + (docs)->off[i];                          \
        int64_t n_ = (docs)->off[(i) + 1] - (docs)->off[i];                          \
        for (int64_t t_ = 0; t_ < n_; t_++) {                                        \
            int32_t W1 = ids_[t_], W2 = -1;                                          \
            __VA_ARGS__;                                                             \
        }                                                                            \
        if ((ngram_max) >= 2)                                                        \
            for (int64_t t_ = 0; t_ + 1 < n_; t_++) {                                \
                int32_t W1 = ids_[t_], W2 = ids_[t_ + 1];                            \
                __VA_ARGS__;                                                         \
            }                                                                        \
    } while (0)

int vectorizer_fit(Vectorizer *v, const FeatOptions *opt, const WordDocs *train, const Lexicon *lx)
{
    memset(v, 0, sizeof *v);
    v->opt = *opt;
    KeyMap all;
    keymap_init(&all, 1 << 16);
    int64_t cap = 1 << 16;
    int64_t *tf = xcalloc((size_t)cap, sizeof *tf);
    int *df = xcalloc((size_t)cap, sizeof *df), *last = xmalloc((size_t)cap * sizeof *last);
    int32_t(*w)[2] = xmalloc((size_t)cap * sizeof *w);
    memset(last, 0xff, (size_t)cap * sizeof *last);
    for (int i = 0; i < train->n; i++) {
        FOR_TERMS(train, i, opt->ngram_max, a, b, {
            int32_t k = keymap_put(&all, term_key(a, b));
            if (k >= cap) {
                int64_t old = cap;
                cap *= 2;
                tf = xrealloc(tf, (size_t)cap * sizeof *tf);
                df = xrealloc(df, (size_t)cap * sizeof *df);
                last = xrealloc(last, (size_t)cap * sizeof *last);
                w = xrealloc(w, (size_t)cap * sizeof *w);
                memset(tf + old, 0, (size_t)(cap - old) * sizeof *tf);
                memset(df + old, 0, (size_t)(cap - old) * sizeof *df);
                memset(last + old, 0xff, (size_t)(cap - old) * sizeof *last);
            }
            w[k][0] = a;
            w[k][1] = b;
            tf[k]++;
            if (last[k] != i) {
                last[k] = i;
                df[k]++;
            }
        });
    }
    double max_count = opt->max_df * train->n;
    int n_all = all.n, n_keep = 0;
    Cand *c = xmalloc((size_t)(n_all ? n_all : 1) * sizeof *c);
    for (int k = 0; k < n_all; k++) {
        if (df[k] < opt->min_df || df[k] > max_count) continue;
        c[n_keep++] = (Cand){term_string(lx, w[k][0], w[k][1]), {w[k][0], w[k][1]}, tf[k], df[k]};
    }
    keymap_free(&all);
    free(tf);
    free(last);
    free(w);
    free(df);
    if (n_keep == 0) {
        free(c);
        return err_set("after pruning, no terms remain (%d training documents, min_df=%d, max_df=%g)", train->n,
                       opt->min_df, opt->max_df);
    }
    if (opt->max_features > 0 && n_keep > opt->max_features) {
        qsort(c, (size_t)n_keep, sizeof *c, cmp_tf_then_str);
        for (int j = opt->max_features; j < n_keep; j++) free(c[j].str);
        n_keep = opt->max_features;
    }
    qsort(c, (size_t)n_keep, sizeof *c, cmp_str);

    v->n_terms = n_keep;
    v->words = xmalloc((size_t)n_keep * sizeof *v->words);
    KeyMap cols;
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)n_keep) slots *= 2;
    keymap_init(&cols, slots);
    if (opt->tfidf) v->idf = xmalloc((size_t)n_keep * sizeof *v->idf);
    for (int j = 0; j < n_keep; j++) {
        v->words[j][0] = c[j].w[0];
        v->words[j][1] = c[j].w[1];
        keymap_put(&cols, term_key(c[j].w[0], c[j].w[1]));
        if (opt->tfidf) {
            double n = train->n, d = c[j].df;
            v->idf[j] = opt->smooth_idf ? log((1 + n) / (1 + d)) + 1 : log(n / d) + 1;
        }
        free(c[j].str);
    }
    free(c);
    /* keymap_put numbered the terms 0..n_keep-1 in sorted order: their columns. */
    v->columns = xmalloc(sizeof *v->columns);
    *v->columns = cols;
    return 0;
}

typedef struct {
    int32_t col;
    int32_t count;
} Entry;

static int cmp_col(const void *a, const void *b) { return ((const Entry *)a)->col - ((const Entry *)b)->col; }

void vectorizer_transform(const Vectorizer *v, const WordDocs *docs, Csr *out)
{
    const FeatOptions *o = &v->opt;
    out->rows = docs->n;
    out->cols = v->n_terms;
    out->indptr = xmalloc((size_t)(docs->n + 1) * sizeof *out->indptr);
    out->indptr[0] = 0;
    int64_t cap = 1024, nnz = 0, tmp_cap = 256;
    out->indices = xmalloc((size_t)cap * sizeof *out->indices);
    out->data = xmalloc((size_t)cap * sizeof *out->data);
    Entry *tmp = xmalloc((size_t)tmp_cap * sizeof *tmp);
    for (int i = 0; i < docs->n; i++) {
        int64_t n = 0;
        FOR_TERMS(docs, i, o->ngram_max, a, b, {
            int32_t col = keymap_get(v->columns, term_key(a, b));
            if (col >= 0) {
                if (n == tmp_cap) tmp = xrealloc(tmp, (size_t)(tmp_cap *= 2) * sizeof *tmp);
                tmp[n++] = (Entry){col, 1};
            }
        });
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_col);
        int64_t m = 0;
        for (int64_t k = 0; k < n; k++) {
            if (m > 0 && tmp[m - 1].col == tmp[k].col) tmp[m - 1].count++;
            else tmp[m++] = tmp[k];
        }
        if (nnz + m > cap) {
            while (nnz + m > cap) cap *= 2;
            out->indices = xrealloc(out->indices, (size_t)cap * sizeof *out->indices);
            out->data = xrealloc(out->data, (size_t)cap * sizeof *out->data);
        }
        double sq = 0;
        for (int64_t k = 0; k < m; k++) {
            double x = tmp[k].count;
            if (o->binary) x = 1;
            else if (o->tfidf && o->sublinear_tf) x = 1 + log(x);
            if (o->tfidf) x *= v->idf[tmp[k].col];
            out->indices[nnz + k] = tmp[k].col;
            out->data[nnz + k] = x;
            sq += x * x;
        }
        if (o->norm_l2 && sq > 0) {
            double norm = sqrt(sq);
            for (int64_t k = 0; k < m; k++) out->data[nnz + k] /= norm;
        }
        nnz += m;
        out->indptr[i + 1] = nnz;
    }
    free(tmp);
}

void vectorizer_free(Vectorizer *v)
{
    free(v->words);
    free(v->idf);
    if (v->columns) keymap_free(v->columns);
    free(v->columns);
    memset(v, 0, sizeof *v);
}

void vectorizer_term(const Vectorizer *v, const Lexicon *lx, int j, char *buf, int cap)
{
    if (v->words[j][1] < 0) snprintf(buf, (size_t)cap, "%s", lexicon_word(lx, v->words[j][0]));
    else snprintf(buf, (size_t)cap, "%s %s", lexicon_word(lx, v->words[j][0]), lexicon_word(lx, v->words[j][1]));
}
