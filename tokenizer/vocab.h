/* Internal to tokenizer/: the loaded vocabulary. Tokens live back to back in
 * one NUL-separated block; two open-addressing hash tables map bytes to ids,
 * one keyed by whole tokens and one by "##" continuations with the prefix
 * removed, so WordPiece looks a piece up without building a string. */
#ifndef GENRE_TOKENIZER_VOCAB_H
#define GENRE_TOKENIZER_VOCAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef struct {
    uint32_t tag;  /* high bits of the key's hash; 0 marks an empty slot */
    int32_t id;
} VocabSlot;

typedef struct {
    VocabSlot *slots;
    uint32_t mask;    /* slot count - 1 (a power of two) */
    uint32_t skip;    /* bytes of the token not in the key ("##" for continuations) */
    size_t max_len;   /* longest key in bytes: longer substrings cannot match */
} VocabTable;

struct Tokenizer {
    int n;             /* ids 0..n-1, one per line of vocab.txt */
    char *text;        /* the tokens, each NUL-terminated */
    uint32_t *off;     /* id -> offset of its token in text */
    uint32_t *len;     /* id -> token length in bytes */
    VocabTable whole;  /* keys: whole tokens */
    VocabTable cont;   /* keys: tokens starting with "##", prefix removed */
    SpecialIds sp;
};

static inline uint64_t vocab_hash(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

/* Id whose key is s[0..n), or -1. */
static inline int vocab_find(const Tokenizer *t, const VocabTable *tab, const char *s, size_t n)
{
    uint64_t h = vocab_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32) | 1, i = (uint32_t)h & tab->mask;
    for (;; i = (i + 1) & tab->mask) {
        VocabSlot sl = tab->slots[i];
        if (!sl.tag) return -1;
        if (sl.tag == tag && t->len[sl.id] == n + tab->skip &&
            !memcmp(t->text + t->off[sl.id] + tab->skip, s, n))
            return sl.id;
    }
}

#endif
