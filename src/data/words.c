#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/hash.h"
#include "src/data/words.h"

/* The map gives a word's id; words[id] gives an id's word. */
struct Lexicon {
    StrMap ids;
    char **words;
    int n, cap_words;
};

Lexicon *lexicon_new(void) { return xcalloc(1, sizeof(Lexicon)); }

void lexicon_free(Lexicon *lx)
{
    if (!lx) return;
    for (int i = 0; i < lx->n; i++) free(lx->words[i]);
    free(lx->words);
    strmap_free(&lx->ids);
    free(lx);
}

int32_t lexicon_intern(Lexicon *lx, const char *word, size_t len)
{
    int id = strmap_add(&lx->ids, word, len, lx->n);
    if (id < lx->n) return id;
    if (lx->n == lx->cap_words) {
        lx->cap_words = lx->cap_words ? 2 * lx->cap_words : 1024;
        lx->words = xrealloc(lx->words, (size_t)lx->cap_words * sizeof *lx->words);
    }
    char *w = xmalloc(len + 1);
    memcpy(w, word, len);
    w[len] = '\0';
    lx->words[lx->n] = w;
    return lx->n++;
}

int32_t lexicon_find(const Lexicon *lx, const char *word) { return strmap_get(&lx->ids, word, strlen(word)); }

const char *lexicon_word(const Lexicon *lx, int32_t id) { return lx->words[id]; }
int lexicon_size(const Lexicon *lx) { return lx->n; }

void worddocs_init(WordDocs *d)
{
    memset(d, 0, sizeof *d);
    d->off = xcalloc(1, sizeof *d->off);
}

void worddocs_add(WordDocs *d, const int32_t *ids, int64_t n_words)
{
    int64_t end = d->off[d->n];
    if (end + n_words > d->cap) {
        while (end + n_words > d->cap) d->cap = d->cap ? 2 * d->cap : 4096;
        d->ids = xrealloc(d->ids, (size_t)d->cap * sizeof *d->ids);
    }
    if (n_words) memcpy(d->ids + end, ids, (size_t)n_words * sizeof *ids);
    d->off = xrealloc(d->off, (size_t)(d->n + 2) * sizeof *d->off);
    d->off[++d->n] = end + n_words;
}

void worddocs_free(WordDocs *d)
{
    free(d->off);
    free(d->ids);
    memset(d, 0, sizeof *d);
}
