#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "src/core/err.h"
#include "src/core/hash.h"
#include "src/data/clean.h"
#include "src/data/filter.h"
#include "src/data/words.h"

void dataset_keep_labels(Dataset *d, const int *cols, int n)
{
    /* In place, row by row: row i's new place never overtakes an unread
     * row (n <= n_labels); only its own old bytes, hence the copy. */
    uint8_t *row = xmalloc((size_t)n + 1);
    for (int i = 0; i < d->n; i++) {
        const uint8_t *from = d->y + (size_t)i * d->n_labels;
        for (int c = 0; c < n; c++) row[c] = from[cols[c]];
        memcpy(d->y + (size_t)i * n, row, (size_t)n);
    }
    free(row);
    d->n_labels = n;
}

void labels_keep(LabelSet *ls, const int *cols, int n)
{
    char **names = xmalloc((size_t)n * sizeof *names);
    for (int c = 0; c < n; c++) names[c] = xstrdup(ls->names[cols[c]]);
    labels_free(ls);
    ls->names = names;
    ls->n_labels = n;
}

int dataset_keep(Dataset *d, const uint8_t *keep)
{
    int w = 0, L = d->n_labels;
    for (int i = 0; i < d->n; i++) {
        if (!keep[i]) {
            free(d->titles[i]);
            free(d->texts[i]);
            continue;
        }
        d->titles[w] = d->titles[i];
        d->texts[w] = d->texts[i];
        d->years[w] = d->years[i];
        memmove(d->y + (size_t)w * L, d->y + (size_t)i * L, (size_t)L);
        w++;
    }
    int dropped = d->n - w;
    d->n = w;
    return dropped;
}

int dataset_drop_unlabelled(Dataset *d)
{
    uint8_t *keep = xcalloc((size_t)d->n + 1, 1);
    for (int i = 0; i < d->n; i++)
        for (int c = 0; c < d->n_labels; c++) keep[i] |= d->y[(size_t)i * d->n_labels + c];
    int dropped = dataset_keep(d, keep);
    free(keep);
    return dropped;
}

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int text_words(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++) n += !blank(*p) && (p == s || blank(p[-1]));
    return n;
}

/* The code point at s (n bytes left) into *cp; its length, 1 for a byte
 * that is not UTF-8 (taken as U+FFFD, a symbol). */
static int next_cp(const char *s, size_t n, int32_t *cp)
{
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, cp);
    if (k < 1) {
        *cp = 0xfffd;
        return 1;
    }
    return (int)k;
}

static int is_alnum(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

static int is_punct_or_symbol(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_SO;
}

static int is_joiner(int32_t cp)
{
    if (cp < 128) return cp && strchr("'-.,&/", (int)cp) != NULL;
    return cp == 0x2019 || (cp >= 0x2010 && cp <= 0x2014); /* ’, and the dashes from ‐ to — */
}

/* -1: the token has no letter, mark or digit (punctuation alone); 1: a
 * word; 0: a non-word (config.h's definition). */
static int token_kind(const char *s, size_t n)
{
    size_t a = 0, b = n;
    int32_t cp;
    while (a < b) { /* leading punctuation and symbols */
        int k = next_cp(s + a, b - a, &cp);
        if (!is_punct_or_symbol(cp)) break;
        a += (size_t)k;
    }
    /* Trailing ones: the last code point starts at the last non-continuation byte. */
    while (b > a) {
        size_t start = b - 1;
        while (start > a && ((unsigned char)s[start] & 0xc0) == 0x80) start--;
        next_cp(s + start, b - start, &cp);
        if (!is_punct_or_symbol(cp)) break;
        b = start;
    }
    if (a == b) return -1;
    for (size_t i = a; i < b;) {
        int k = next_cp(s + i, b - i, &cp);
        if (!is_alnum(cp) && !is_joiner(cp)) return 0;
        i += (size_t)k;
    }
    return 1;
}

double text_nonword_share(const char *s)
{
    int words = 0, other = 0;
    for (const char *p = s; *p;) {
        while (*p && blank(*p)) p++;
        const char *start = p;
        while (*p && !blank(*p)) p++;
        if (p == start) break;
        int kind = token_kind(start, (size_t)(p - start));
        words += kind == 1;
        other += kind == 0;
    }
    return words + other ? (double)other / (words + other) : 0.0;
}

/* Calls fn for each word of s (filter.h: runs of letters, marks, digits,
 * with inner apostrophes) with its byte span. */
typedef void (*WordSpanFn)(const char *s, size_t start, size_t end, void *ctx);

static void word_spans(const char *s, WordSpanFn fn, void *ctx)
{
    size_t n = strlen(s), start = 0;
    int in = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = next_cp(s + i, n - i, &cp);
        if (is_alnum(cp)) {
            if (!in) start = i;
            in = 1;
        } else if (in && (cp == '\'' || cp == 0x2019) && i + (size_t)k < n) {
            int32_t after;
            next_cp(s + i + k, n - i - (size_t)k, &after);
            if (!is_alnum(after)) {
                fn(s, start, i, ctx);
                in = 0;
            }
        } else if (in) {
            fn(s, start, i, ctx);
            in = 0;
        }
        i += (size_t)k;
    }
    if (in) fn(s, start, n, ctx);
}

/* s[start..end) case-folded (malloc'ed), or NULL when it is not UTF-8. */
static char *fold(const char *s, size_t start, size_t end)
{
    utf8proc_uint8_t *out = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)s + start, (utf8proc_ssize_t)(end - start), &out,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD) < 0)
        return NULL;
    return (char *)out;
}

typedef struct {
    Lexicon *lx;
    int doc, L, bad;
    const uint8_t *labels;     /* the document's label row */
    int *last_doc;             /* per word id: the last document counted */
    int *counts;               /* per word id x label: documents with it */
    int cap;
} DfCount;

static void count_word(const char *s, size_t start, size_t end, void *ctx)
{
    DfCount *c = ctx;
    char *w = fold(s, start, end);
    if (!w) {
        c->bad = 1;
        return;
    }
    int id = lexicon_intern(c->lx, w, strlen(w));
    free(w);
    if (id >= c->cap) {
        int cap = c->cap ? 2 * c->cap : 4096;
        c->last_doc = xrealloc(c->last_doc, (size_t)cap * sizeof *c->last_doc);
        c->counts = xrealloc(c->counts, (size_t)cap * c->L * sizeof *c->counts);
        for (int i = c->cap; i < cap; i++) c->last_doc[i] = -1;
        memset(c->counts + (size_t)c->cap * c->L, 0, (size_t)(cap - c->cap) * c->L * sizeof *c->counts);
        c->cap = cap;
    }
    if (c->last_doc[id] == c->doc) return; /* document frequency: once per text */
    c->last_doc[id] = c->doc;
    for (int l = 0; l < c->L; l++) c->counts[(size_t)id * c->L + l] += c->labels[l];
}

typedef struct {
    double score;
    const char *word;
} Ranked;

static int by_score(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return strcmp(x->word, y->word);
}

int common_words(const Dataset *d, int k, char ***words)
{
    *words = NULL;
    DfCount c = {.lx = lexicon_new(), .L = d->n_labels};
    int *movies = xcalloc((size_t)d->n_labels, sizeof *movies);
    for (int i = 0; i < d->n && !c.bad; i++) {
        c.doc = i;
        c.labels = d->y + (size_t)i * d->n_labels;
        for (int l = 0; l < d->n_labels; l++) movies[l] += c.labels[l];
        word_spans(d->texts[i], count_word, &c);
    }
    int n = 0;
    if (c.bad) {
        n = err_set("movie %d: invalid UTF-8", c.doc + 1);
    } else {
        int V = lexicon_size(c.lx);
        Ranked *r = xmalloc(((size_t)V + 1) * sizeof *r);
        for (int id = 0; id < V; id++) {
            double lowest = -1;
            for (int l = 0; l < d->n_labels; l++) {
                if (!movies[l]) continue;
                double df = (double)c.counts[(size_t)id * c.L + l] / movies[l];
                if (lowest < 0 || df < lowest) lowest = df;
            }
            r[id] = (Ranked){lowest, lexicon_word(c.lx, id)};
        }
        qsort(r, (size_t)V, sizeof *r, by_score);
        while (n < k && n < V && r[n].score > 0) n++;
        *words = xmalloc(((size_t)n + 1) * sizeof **words);
        for (int i = 0; i < n; i++) (*words)[i] = xstrdup(r[i].word);
        free(r);
    }
    free(movies);
    free(c.last_doc);
    free(c.counts);
    lexicon_free(c.lx);
    return n;
}

typedef struct {
    StrMap set;
    char *out;
    size_t done; /* bytes of s copied or skipped so far */
    size_t n;
} Strip;

static void strip_one(const char *s, size_t start, size_t end, void *ctx)
{
    Strip *st = ctx;
    char *w = fold(s, start, end);
    if (w && strmap_get(&st->set, w, strlen(w)) >= 0) {
        memcpy(st->out + st->n, s + st->done, start - st->done);
        st->n += start - st->done;
        st->done = end;
    }
    free(w);
}

char *strip_words(const char *s, char *const *words, int n)
{
    Strip st = {.out = xmalloc(strlen(s) + 1)};
    for (int i = 0; i < n; i++) strmap_add(&st.set, words[i], strlen(words[i]), i);
    word_spans(s, strip_one, &st);
    size_t rest = strlen(s) - st.done;
    memcpy(st.out + st.n, s + st.done, rest);
    st.out[st.n + rest] = '\0';
    strmap_free(&st.set);
    clean_whitespace(st.out);
    return st.out;
}
