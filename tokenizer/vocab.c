/* Loading vocab.txt as HuggingFace's WordPiece::read_file does: line i is
 * id i, trailing whitespace is trimmed, and a repeated token maps to its
 * last line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/core/err.h"
#include "tokenizer/unicode.h"
#include "src/core/utf8.h"
#include "tokenizer/vocab.h"

static void table_init(VocabTable *tab, int n, uint32_t skip)
{
    uint32_t size = 16;
    while (size < 2u * (uint32_t)n) size *= 2;
    tab->slots = xcalloc(size, sizeof *tab->slots);
    tab->mask = size - 1;
    tab->skip = skip;
    tab->max_len = 0;
}

/* Inserts id under its key; a key already present takes the later id. */
static void table_put(const Tokenizer *t, VocabTable *tab, int id)
{
    const char *key = t->text + t->off[id] + tab->skip;
    size_t n = t->len[id] - tab->skip;
    uint64_t h = vocab_hash(key, n);
    uint32_t tag = (uint32_t)(h >> 32) | 1, i = (uint32_t)h & tab->mask;
    for (;; i = (i + 1) & tab->mask) {
        VocabSlot *sl = &tab->slots[i];
        if (!sl->tag || (sl->tag == tag && t->len[sl->id] == t->len[id] &&
                         !memcmp(t->text + t->off[sl->id], t->text + t->off[id], t->len[id]))) {
            sl->tag = tag;
            sl->id = id;
            break;
        }
    }
    if (n > tab->max_len) tab->max_len = n;
}

/* Length of line[0..n) without trailing whitespace (Rust's trim_end), or -1
 * when it is not valid UTF-8. */
static long trimmed_len(const char *line, size_t n)
{
    const unsigned char *s = (const unsigned char *)line;
    size_t end = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int k = utf8_decode(s + i, n - i, &c);
        if (!k) return -1;
        i += (size_t)k;
        if (!uni_whitespace(c)) end = i;
    }
    return (long)end;
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 == cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        if (!got) break;
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        err_set("%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *size = n;
    return buf;
}

static int32_t special(const Tokenizer *t, const char *token, const char *path, int required)
{
    int id = tokenizer_token_id(t, token);
    if (id < 0 && required) err_set("%s: the vocabulary has no %s token", path, token);
    return id;
}

Tokenizer *tokenizer_load(const char *path)
{
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/vocab.txt", path);
    else
        snprintf(file, sizeof file, "%s", path);
    size_t size;
    char *text = read_all(file, &size);
    if (!text) return NULL;
    if (size > UINT32_MAX / 2) {
        err_set("%s: too large for a vocabulary", file);
        free(text);
        return NULL;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->text = text;
    size_t cap = 1024;
    t->off = xmalloc(cap * sizeof *t->off);
    t->len = xmalloc(cap * sizeof *t->len);
    /* Lines are cut in place: each token ends where its trimmed line does. */
    for (size_t i = 0; i < size;) {
        char *nl = memchr(text + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - text) : size;
        long n = trimmed_len(text + i, end - i);
        if (n < 0) {
            err_set("%s:%d: invalid UTF-8", file, t->n + 1);
            tokenizer_free(t);
            return NULL;
        }
        if ((size_t)t->n == cap) {
            cap *= 2;
            t->off = xrealloc(t->off, cap * sizeof *t->off);
            t->len = xrealloc(t->len, cap * sizeof *t->len);
        }
        t->off[t->n] = (uint32_t)i;
        t->len[t->n] = (uint32_t)n;
        text[i + (size_t)n] = '\0';
        t->n++;
        i = end + 1;
    }
    if (t->n == 0) {
        err_set("%s: empty vocabulary", file);
        tokenizer_free(t);
        return NULL;
    }
    table_init(&t->whole, t->n, 0);
    table_init(&t->cont, t->n, 2);
    for (int id = 0; id < t->n; id++) {
        table_put(t, &t->whole, id);
        if (t->len[id] >= 2 && !memcmp(t->text + t->off[id], "##", 2)) table_put(t, &t->cont, id);
    }
    t->sp.pad = special(t, "[PAD]", file, 1);
    t->sp.unk = special(t, "[UNK]", file, 1);
    t->sp.cls = special(t, "[CLS]", file, 1);
    t->sp.sep = special(t, "[SEP]", file, 1);
    t->sp.mask = special(t, "[MASK]", file, 0);
    if (t->sp.pad < 0 || t->sp.unk < 0 || t->sp.cls < 0 || t->sp.sep < 0) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

void tokenizer_free(Tokenizer *t)
{
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->whole.slots);
    free(t->cont.slots);
    free(t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n; }

int tokenizer_token_id(const Tokenizer *t, const char *token)
{
    return vocab_find(t, &t->whole, token, strlen(token));
}

const char *tokenizer_token(const Tokenizer *t, int id)
{
    return id >= 0 && id < t->n ? t->text + t->off[id] : NULL;
}

SpecialIds tokenizer_special(const Tokenizer *t) { return t->sp; }
