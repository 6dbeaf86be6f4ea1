#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/data/words.h"

/* Open addressing on FNV-1a hashes; the table is kept under half full. */
struct Lexicon {
    char **words;
    int n, cap_words;
    int32_t *slots; /* -1 empty, else word id */
    uint64_t mask;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void rehash(Lexicon *lx, uint64_t n_slots)
{
    free(lx->slots);
    lx->slots = xmalloc(n_slots * sizeof *lx->slots);
    memset(lx->slots, 0xff, n_slots * sizeof *lx->slots);
    lx->mask = n_slots - 1;
    for (int i = 0; i < lx->n; i++) {
        uint64_t h = hash_bytes(lx->words[i], strlen(lx->words[i])) & lx->mask;
        while (lx->slots[h] >= 0) h = (h + 1) & lx->mask;
        lx->slots[h] = i;
    }
}

Lexicon *lexicon_new(void)
{
    Lexicon *lx = xcalloc(1, sizeof *lx);
    rehash(lx, 1024);
    return lx;
}

void lexicon_free(Lexicon *lx)
{
    if (!lx) return;
    for (int i = 0; i < lx->n; i++) free(lx->words[i]);
    free(lx->words);
    free(lx->slots);
    free(lx);
}

static int64_t probe(const Lexicon *lx, const char *w, size_t len, uint64_t *slot)
{
    uint64_t h = hash_bytes(w, len) & lx->mask;
    for (;; h = (h + 1) & lx->mask) {
        int32_t id = lx->slots[h];
        if (id < 0) break;
        if (strncmp(lx->words[id], w, len) == 0 && lx->words[id][len] == '\0') {
            *slot = h;
            return id;
        }
    }
    *slot = h;
    return -1;
}

int32_t lexicon_intern(Lexicon *lx, const char *word, size_t len)
{
    uint64_t slot;
    int64_t id = probe(lx, word, len, &slot);
    if (id >= 0) return (int32_t)id;
    if (lx->n == lx->cap_words) {
        lx->cap_words = lx->cap_words ? 2 * lx->cap_words : 1024;
        lx->words = xrealloc(lx->words, (size_t)lx->cap_words * sizeof *lx->words);
    }
    char *w = xmalloc(len + 1);
    memcpy(w, word, len);
    w[len] = '\0';
    lx->words[lx->n] = w;
    lx->slots[slot] = lx->n;
    lx->n++;
    if ((uint64_t)lx->n * 2 > lx->mask + 1) rehash(lx, (lx->mask + 1) * 2);
    return lx->n - 1;
}

int32_t lexicon_find(const Lexicon *lx, const char *word)
{
    uint64_t slot;
    return (int32_t)probe(lx, word, strlen(word), &slot);
}

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
