/* BasicTokenizer in one streaming pass. HuggingFace applies, over the whole
 * string: clean text, spaces around CJK ideographs, NFD and removal of
 * nonspacing marks, full lowercase; then splits on whitespace and isolates
 * punctuation. Every step but NFD's canonical reordering is per character,
 * so this does them per character and reorders the few surviving combining
 * marks (Mc/Me with a non-zero combining class) inside the current word. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "src/core/err.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "src/core/utf8.h"

enum { A_WORD, A_UPPER, A_SPACE, A_PUNCT, A_DROP };

/* The class of each ASCII byte after cleaning (controls other than \t \n \r
 * are dropped; \t \n \r and space separate words). */
static const unsigned char ascii_class[128] = {
    A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,
    A_DROP,  A_SPACE, A_SPACE, A_DROP,  A_DROP,  A_SPACE, A_DROP,  A_DROP,
    A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,
    A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,  A_DROP,
    A_SPACE, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT,
    A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT,
    A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,
    A_WORD,  A_WORD,  A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT,
    A_PUNCT, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER,
    A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER,
    A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER, A_UPPER,
    A_UPPER, A_UPPER, A_UPPER, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT,
    A_PUNCT, A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,
    A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,
    A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,  A_WORD,
    A_WORD,  A_WORD,  A_WORD,  A_PUNCT, A_PUNCT, A_PUNCT, A_PUNCT, A_DROP,
};

/* The word being built. Starts in a stack buffer; only a word longer than
 * it moves to the heap. `floor` is where the last starter (combining class
 * 0) ended: canonical reordering never moves a mark before it. */
typedef struct {
    char *buf;
    size_t len, cap, floor;
    char local[512];
    BasicWordFn fn;
    void *ctx;
} Word;

static void reserve(Word *w, size_t extra)
{
    if (w->len + extra + 1 <= w->cap) return;
    size_t cap = w->cap * 2;
    while (cap < w->len + extra + 1) cap *= 2;
    if (w->buf == w->local) {
        w->buf = xmalloc(cap);
        memcpy(w->buf, w->local, w->len);
    } else {
        w->buf = xrealloc(w->buf, cap);
    }
    w->cap = cap;
}

static void flush(Word *w)
{
    if (!w->len) return;
    w->buf[w->len] = '\0';
    w->fn(w->buf, w->len, w->ctx);
    w->len = w->floor = 0;
}

static int ccc(uint32_t c) { return utf8proc_get_property((utf8proc_int32_t)c)->combining_class; }

/* Appends c, moving it before the marks since `floor` whose combining class
 * is greater (a stable sort by class, as NFD's canonical ordering). */
static void append_cp(Word *w, uint32_t c)
{
    unsigned char enc[4];
    size_t n = (size_t)utf8proc_encode_char((utf8proc_int32_t)c, enc);
    reserve(w, n);
    int cls = c < 0x300 ? 0 : ccc(c);
    size_t at = w->len;
    if (cls) {
        while (at > w->floor) {
            size_t p = at - 1;
            while (p > w->floor && ((unsigned char)w->buf[p] & 0xC0) == 0x80) p--;
            utf8proc_int32_t prev;
            utf8proc_iterate((const utf8proc_uint8_t *)w->buf + p, (utf8proc_ssize_t)(at - p), &prev);
            if (ccc((uint32_t)prev) <= cls) break;
            at = p;
        }
        memmove(w->buf + at + n, w->buf + at, w->len - at);
    }
    memcpy(w->buf + at, enc, n);
    w->len += n;
    if (!cls) w->floor = w->len;
}

/* One code point of NFD output: drop nonspacing marks, lowercase, then split
 * on whitespace and isolate punctuation. Rust's char::to_lowercase maps one
 * code point to more only for U+0130, which NFD has already decomposed to
 * I + U+0307, so a one-to-one table suffices. */
static void put_decomposed(Word *w, uint32_t c)
{
    if (uni_nonspacing_mark(c)) {
        if (!ccc(c)) w->floor = w->len;
        return;
    }
    c = uni_lower(c);
    if (uni_whitespace(c)) {
        flush(w);
    } else if (uni_punct(c)) {
        flush(w);
        append_cp(w, c);
        flush(w);
    } else {
        append_cp(w, c);
    }
}

static void put_cp(Word *w, uint32_t c)
{
    if (uni_dropped(c)) return;
    if (uni_whitespace(c)) {
        flush(w);
        return;
    }
    bool cjk = uni_chinese(c);
    if (cjk) flush(w);
    uint32_t d[4];
    int n = uni_decompose(c, d);
    for (int i = 0; i < n; i++) put_decomposed(w, d[i]);
    if (cjk) flush(w);
}

int basic_tokenize(const char *text, size_t len, BasicWordFn fn, void *ctx)
{
    Word w = {.cap = sizeof w.local, .fn = fn, .ctx = ctx};
    w.buf = w.local;
    const unsigned char *s = (const unsigned char *)text;
    int rc = 0;
    for (size_t i = 0; i < len;) {
        unsigned char b = s[i];
        if (b < 0x80) {
            switch (ascii_class[b]) {
            case A_WORD:
                reserve(&w, 1);
                w.buf[w.len++] = (char)b;
                w.floor = w.len;
                break;
            case A_UPPER:
                reserve(&w, 1);
                w.buf[w.len++] = (char)(b + 32);
                w.floor = w.len;
                break;
            case A_SPACE:
                flush(&w);
                break;
            case A_PUNCT:
                flush(&w);
                w.buf[0] = (char)b;
                w.len = 1;
                flush(&w);
                break;
            }
            i++;
            continue;
        }
        uint32_t c;
        int n = utf8_decode(s + i, len - i, &c);
        if (!n) {
            rc = err_set("invalid UTF-8 at byte %zu", i);
            break;
        }
        i += (size_t)n;
        put_cp(&w, c);
    }
    if (!rc) flush(&w);
    if (w.buf != w.local) free(w.buf);
    return rc;
}
