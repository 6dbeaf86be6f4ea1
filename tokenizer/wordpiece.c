/* WordPiece over the basic words: greedy longest-match-first with "##"
 * continuations, [UNK] for a word over 100 characters or with a part that
 * matches nothing. As in HuggingFace, the special tokens ([CLS], [SEP],
 * [PAD], [UNK], [MASK]) written literally in the raw text are matched before
 * normalization and become their own ids. */
#include <stdio.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/utf8.h"
#include "tokenizer/vocab.h"

enum { MAX_WORD_CHARS = 100 };

typedef struct {
    const Tokenizer *t;
    int32_t *ids;
    long cap, n;
} Encoder;

static inline void push(Encoder *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

static size_t count_chars(const char *w, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)w[i] & 0xC0) != 0x80;
    return n;
}

static void wordpiece(const char *w, size_t len, void *ctx)
{
    Encoder *e = ctx;
    const Tokenizer *t = e->t;
    if (len > MAX_WORD_CHARS && count_chars(w, len) > MAX_WORD_CHARS) {
        push(e, t->sp.unk);
        return;
    }
    long first = e->n;
    for (size_t start = 0; start < len;) {
        const VocabTable *tab = start ? &t->cont : &t->whole;
        /* Longest first, from the longest key there is, on character boundaries. */
        size_t end = len;
        if (end - start > tab->max_len) {
            end = start + tab->max_len;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80) end--;
        }
        int id = -1;
        while (end > start) {
            id = vocab_find(t, tab, w + start, end - start);
            if (id >= 0) break;
            do end--;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            e->n = first;
            push(e, t->sp.unk);
            return;
        }
        push(e, id);
        start = end;
    }
}

/* The special token written at s[0..n) (s[0] == '['), or -1. */
static int32_t special_at(const Tokenizer *t, const char *s, size_t n)
{
    const int32_t ids[] = {t->sp.unk, t->sp.sep, t->sp.cls, t->sp.pad, t->sp.mask};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        if (ids[i] < 0) continue;
        size_t k = t->len[ids[i]];
        if (k <= n && !memcmp(s, t->text + t->off[ids[i]], k)) return ids[i];
    }
    return -1;
}

long tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int32_t *ids, long cap)
{
    Encoder e = {t, ids, cap, 0};
    size_t seg = 0;
    for (const char *p = text; (p = memchr(p, '[', len - (size_t)(p - text)));) {
        size_t at = (size_t)(p - text);
        int32_t id = special_at(t, p, len - at);
        if (id < 0) {
            p++;
            continue;
        }
        if (basic_tokenize(text + seg, at - seg, wordpiece, &e) < 0) goto invalid;
        push(&e, id);
        seg = at + t->len[id];
        p = text + seg;
    }
    if (basic_tokenize(text + seg, len - seg, wordpiece, &e) < 0) goto invalid;
    return e.n;
invalid:
    /* A segment's offset is relative to it; report the offset in the text. */
    err_set("invalid UTF-8 at byte %zu", utf8_check(text, len));
    return -1;
}

int tokenizer_encode_batch(const Tokenizer *t, const char *const *texts, int n, int max_len,
                           int32_t *ids, int32_t *mask, int *lengths)
{
    if (max_len < 2) return err_set("max_len %d cannot hold [CLS] and [SEP]", max_len);
    for (int i = 0; i < n; i++) {
        int32_t *row = ids + (size_t)i * (size_t)max_len;
        int32_t *m = mask + (size_t)i * (size_t)max_len;
        long k = tokenizer_encode(t, texts[i], strlen(texts[i]), row + 1, max_len - 2);
        if (k < 0) return err_set("text %d: %s", i, err_msg());
        if (k > max_len - 2) k = max_len - 2;
        row[0] = t->sp.cls;
        row[k + 1] = t->sp.sep;
        int used = (int)k + 2;
        for (int j = 0; j < max_len; j++) {
            if (j >= used) row[j] = t->sp.pad;
            m[j] = j < used;
        }
        if (lengths) lengths[i] = used;
    }
    return 0;
}
