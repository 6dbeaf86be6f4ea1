#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/baseline/word2vec.h"

enum { EXP_TABLE = 1000, MAX_EXP = 6, MAX_SENTENCE = 10000 };
#define CUM_DOMAIN 2147483647.0

/* The first v with cum[v] > r. */
static int bisect(const uint32_t *cum, int V, uint32_t r)
{
    int lo = 0, hi = V - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > r) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

typedef struct {
    int32_t lex;
    int64_t count;
} VocabWord;

static int cmp_count(const void *a, const void *b)
{
    const VocabWord *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->lex - y->lex; /* first seen first, like a stable sort */
}

static uint64_t lcg(uint64_t *r) { return *r = *r * 25214903917ull + 11; }

/* One (input, output) pair's step: f = l1 . l2, then neu1e += g l2 and
 * l2 += g l1 in one sweep (both read the old l2). Cloned for AVX2 where the
 * CPU has it (dispatched at load time): gensim's BLAS sdot/saxpy do the same. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void pair_step(const float *restrict l1, float *restrict l2, float *restrict neu1e, int dim, int label,
                      float alpha, const float *exp_table)
{
    float f = 0, g;
    /* simd reductions reassociate: what BLAS's sdot (gensim) does too. */
#pragma omp simd reduction(+ : f)
    for (int k = 0; k < dim; k++) f += l1[k] * l2[k];
    if (f > MAX_EXP) g = (float)(label - 1) * alpha;
    else if (f < -MAX_EXP) g = (float)label * alpha;
    else g = (label - exp_table[(int)((f + MAX_EXP) * (EXP_TABLE / MAX_EXP / 2))]) * alpha;
#pragma omp simd
    for (int k = 0; k < dim; k++) {
        neu1e[k] += g * l2[k];
        l2[k] += g * l1[k];
    }
}

int w2v_train(W2vModel *m, const WordDocs *corpus, const Lexicon *lx, const W2vOptions *opt)
{
    memset(m, 0, sizeof *m);
    int n_lex = lexicon_size(lx), dim = opt->dim;
    VocabWord *vw = xmalloc((size_t)(n_lex ? n_lex : 1) * sizeof *vw);
    for (int i = 0; i < n_lex; i++) vw[i] = (VocabWord){i, 0};
    for (int64_t t = 0; t < corpus->off[corpus->n]; t++) vw[corpus->ids[t]].count++;
    qsort(vw, (size_t)n_lex, sizeof *vw, cmp_count);
    int V = 0;
    while (V < n_lex && vw[V].count >= opt->min_count) V++;
    if (V == 0) {
        free(vw);
        return err_set("word2vec: no word occurs min_count=%d times in %d training documents", opt->min_count,
                       corpus->n);
    }
    int32_t *row = xmalloc((size_t)n_lex * sizeof *row); /* lexicon id -> vocabulary row or -1 */
    memset(row, 0xff, (size_t)n_lex * sizeof *row);
    int64_t train_words = 0;
    for (int v = 0; v < V; v++) {
        row[vw[v].lex] = v;
        train_words += vw[v].count;
    }
    /* Unigram^0.75 negatives from a cumulative table searched by bisection
     * (gensim's way): the distribution of word2vec.c's 1e8-entry table, but
     * V entries that stay in cache instead of a cache miss per draw. */
    uint32_t *cum = xmalloc((size_t)V * sizeof *cum);
    double power = 0.75, total = 0, run = 0;
    for (int v = 0; v < V; v++) total += pow((double)vw[v].count, power);
    for (int v = 0; v < V; v++) {
        run += pow((double)vw[v].count, power);
        cum[v] = (uint32_t)llround(run / total * CUM_DOMAIN);
    }
    float exp_table[EXP_TABLE];
    for (int i = 0; i < EXP_TABLE; i++) {
        double e = exp((i / (double)EXP_TABLE * 2 - 1) * MAX_EXP);
        exp_table[i] = (float)(e / (e + 1));
    }
    float *syn0 = xmalloc((size_t)V * dim * sizeof *syn0), *syn1 = xcalloc((size_t)V * dim, sizeof *syn1);
    uint64_t r = opt->seed;
    for (int64_t i = 0; i < (int64_t)V * dim; i++) syn0[i] = (float)(((lcg(&r) & 0xFFFF) / 65536.0 - 0.5) / dim);

    int64_t word_count_actual = 0, total_words = (int64_t)opt->epochs * train_words;
    int T = opt->threads > 0 ? opt->threads : 1;
    double sample_n = opt->sample * train_words;
#pragma omp parallel num_threads(T)
    {
        int tid = 0, nt = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int d_lo = (int)((int64_t)corpus->n * tid / nt), d_hi = (int)((int64_t)corpus->n * (tid + 1) / nt);
        uint64_t rnd = opt->seed + (uint64_t)tid;
        int32_t *sen = xmalloc(MAX_SENTENCE * sizeof *sen);
        float *neu1e = xmalloc((size_t)dim * sizeof *neu1e);
        double alpha = opt->alpha;
        int64_t word_count = 0, last_word_count = 0;
        for (int ep = 0; ep < opt->epochs; ep++)
            for (int doc = d_lo; doc < d_hi; doc++) {
                for (int64_t t0 = corpus->off[doc]; t0 < corpus->off[doc + 1]; t0 += MAX_SENTENCE) {
                    int64_t t1 = corpus->off[doc + 1] < t0 + MAX_SENTENCE ? corpus->off[doc + 1] : t0 + MAX_SENTENCE;
                    if (word_count - last_word_count > 10000) {
                        int64_t seen = __atomic_add_fetch(&word_count_actual, word_count - last_word_count,
                                                          __ATOMIC_RELAXED);
                        last_word_count = word_count;
                        alpha = opt->alpha * (1 - seen / (double)(total_words + 1));
                        if (alpha < opt->alpha * 0.0001) alpha = opt->alpha * 0.0001;
                    }
                    int len = 0;
                    for (int64_t t = t0; t < t1; t++) {
                        int w = row[corpus->ids[t]];
                        if (w < 0) continue;
                        word_count++;
                        if (opt->sample > 0) {
                            double f = (double)vw[w].count;
                            double keep = (sqrt(f / sample_n) + 1) * sample_n / f;
                            if (keep < (lcg(&rnd) & 0xFFFF) / 65536.0) continue;
                        }
                        sen[len++] = w;
                    }
                    for (int pos = 0; pos < len; pos++) {
                        int word = sen[pos];
                        int b = (int)(lcg(&rnd) % (uint64_t)opt->window);
                        for (int a = b; a < opt->window * 2 + 1 - b; a++) {
                            if (a == opt->window) continue;
                            int c = pos - opt->window + a;
                            if (c < 0 || c >= len) continue;
                            float *l1 = syn0 + (size_t)sen[c] * dim;
                            memset(neu1e, 0, (size_t)dim * sizeof *neu1e);
                            for (int dd = 0; dd <= opt->negative; dd++) {
                                int target, label;
                                if (dd == 0) {
                                    target = word;
                                    label = 1;
                                } else {
                                    target = bisect(cum, V, (uint32_t)((lcg(&rnd) >> 16) % cum[V - 1]));
                                    if (target == word) continue;
                                    label = 0;
                                }
                                pair_step(l1, syn1 + (size_t)target * dim, neu1e, dim, label, (float)alpha, exp_table);
                            }
#pragma omp simd
                            for (int k = 0; k < dim; k++) l1[k] += neu1e[k];
                        }
                    }
                }
            }
        free(sen), free(neu1e);
    }
    m->n_words = V;
    m->dim = dim;
    m->vectors = syn0;
    m->words = xmalloc((size_t)V * sizeof *m->words);
    for (int i = 0; i < V; i++) m->words[i] = xstrdup(lexicon_word(lx, vw[i].lex));
    free(syn1), free(cum), free(row), free(vw);
    return 0;
}

int w2v_save(const W2vModel *m, const char *path, bool binary)
{
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    FILE *f = atomic_stream(af);
    fprintf(f, "%d %d\n", m->n_words, m->dim);
    for (int i = 0; i < m->n_words; i++) {
        const float *v = m->vectors + (size_t)i * m->dim;
        fprintf(f, "%s ", m->words[i]);
        if (binary) fwrite(v, sizeof *v, (size_t)m->dim, f);
        else
            for (int k = 0; k < m->dim; k++) fprintf(f, k ? " %.9g" : "%.9g", v[k]);
        fputc('\n', f);
    }
    return atomic_commit(af);
}

static int load_fail(W2vModel *m, FILE *f, const char *path, int line, const char *what)
{
    err_set("%s:%d: %s", path, line, what);
    fclose(f);
    w2v_free(m);
    return -1;
}

int w2v_load(W2vModel *m, const char *path, bool binary)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    int n, dim;
    if (fscanf(f, "%d %d", &n, &dim) != 2 || n <= 0 || dim <= 0 || fgetc(f) != '\n')
        return load_fail(m, f, path, 1, "expected the header \"<words> <dim>\"");
    m->dim = dim;
    m->words = xcalloc((size_t)n, sizeof *m->words);
    m->vectors = xmalloc((size_t)n * dim * sizeof *m->vectors);
    char word[1024];
    for (int i = 0; i < n; i++) {
        int line = i + 2;
        if (fscanf(f, "%1023s", word) != 1 || fgetc(f) != ' ') return load_fail(m, f, path, line, "expected a word");
        m->words[i] = xstrdup(word);
        m->n_words = i + 1;
        float *v = m->vectors + (size_t)i * dim;
        if (binary) {
            if (fread(v, sizeof *v, (size_t)dim, f) != (size_t)dim) return load_fail(m, f, path, line, "truncated vector");
        } else {
            for (int k = 0; k < dim; k++)
                if (fscanf(f, "%f", &v[k]) != 1) return load_fail(m, f, path, line, "expected a number");
        }
        for (int k = 0; k < dim; k++)
            if (!isfinite(v[k])) return load_fail(m, f, path, line, "non-finite value");
        if (fgetc(f) != '\n') return load_fail(m, f, path, line, "expected the end of the line");
    }
    fclose(f);
    return 0;
}

void w2v_free(W2vModel *m)
{
    for (int i = 0; i < m->n_words; i++) free(m->words[i]);
    free(m->words);
    free(m->vectors);
    memset(m, 0, sizeof *m);
}

int w2v_find(const W2vModel *m, const char *word)
{
    for (int i = 0; i < m->n_words; i++)
        if (strcmp(m->words[i], word) == 0) return i;
    return -1;
}

double w2v_similarity(const W2vModel *m, int a, int b)
{
    const float *x = m->vectors + (size_t)a * m->dim, *y = m->vectors + (size_t)b * m->dim;
    double xy = 0, xx = 0, yy = 0;
    for (int k = 0; k < m->dim; k++) xy += x[k] * y[k], xx += x[k] * x[k], yy += y[k] * y[k];
    return xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0;
}

void w2v_doc_vectors(const W2vModel *m, const WordDocs *docs, const Lexicon *lx, Csr *out)
{
    int n_lex = lexicon_size(lx), dim = m->dim;
    int32_t *row = xmalloc((size_t)(n_lex ? n_lex : 1) * sizeof *row);
    memset(row, 0xff, (size_t)(n_lex ? n_lex : 1) * sizeof *row);
    for (int i = 0; i < m->n_words; i++) {
        int32_t id = lexicon_find(lx, m->words[i]);
        if (id >= 0) row[id] = i;
    }
    out->rows = docs->n;
    out->cols = dim;
    out->indptr = xmalloc((size_t)(docs->n + 1) * sizeof *out->indptr);
    out->indices = xmalloc((size_t)docs->n * dim * sizeof *out->indices);
    out->data = xcalloc((size_t)docs->n * dim, sizeof *out->data);
    for (int i = 0; i <= docs->n; i++) out->indptr[i] = (int64_t)i * dim;
    for (int i = 0; i < docs->n; i++) {
        double *x = out->data + (size_t)i * dim;
        int cnt = 0;
        for (int64_t t = docs->off[i]; t < docs->off[i + 1]; t++) {
            int r = row[docs->ids[t]];
            if (r < 0) continue;
            cnt++;
            for (int k = 0; k < dim; k++) x[k] += m->vectors[(size_t)r * dim + k];
        }
        for (int k = 0; k < dim; k++) {
            out->indices[(size_t)i * dim + k] = k;
            if (cnt) x[k] /= cnt;
        }
    }
    free(row);
}
