/* Internal to tokenizer/: UTF-8 decoding and the character classes BERT's
 * normalizer and pre-tokenizer use, defined exactly as HuggingFace
 * `tokenizers` defines them: Rust's char::is_whitespace, BERT's CJK blocks,
 * the unicode_categories crate's Cc/Cf/Co, Mn and P* (Unicode 8), and its
 * NFD and lowercase, all from unicode_tables.h: utf8proc's Unicode differs. */
#ifndef GENRE_TOKENIZER_UNICODE_H
#define GENRE_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at s[0..n) (n >= 1, s[0] >= 0x80) into *cp and
 * returns its byte length, or 0 when the bytes are not valid UTF-8 (overlong
 * forms, surrogates and values past U+10FFFF are invalid, as in Rust). */
static inline int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0xC2) return 0;
    if (b < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(b & 0x1F) << 6 | (s[1] & 0x3F);
        return 2;
    }
    if (b < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        uint32_t c = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        *cp = c;
        return 3;
    }
    if (b < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        uint32_t c = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
                     (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        if (c < 0x10000 || c > 0x10FFFF) return 0;
        *cp = c;
        return 4;
    }
    return 0;
}

/* Rust's char::is_whitespace (the Unicode White_Space property). */
bool uni_whitespace(uint32_t c);
/* Removed by BERT's clean_text: NUL, U+FFFD, and Cc/Cf/Co but \t \n \r. */
bool uni_dropped(uint32_t c);
/* A nonspacing mark (Mn), removed after NFD. */
bool uni_nonspacing_mark(uint32_t c);
/* BERT's punctuation: ASCII punctuation or a Unicode P* category. */
bool uni_punct(uint32_t c);
/* NFD of c as tokenizers computes it: writes 1 to 4 code points to out and
 * returns how many. */
int uni_decompose(uint32_t c, uint32_t out[4]);
/* Lowercase of a character NFD leaves unchanged (Rust's char::to_lowercase;
 * for these it is always one character). */
uint32_t uni_lower(uint32_t c);
/* BERT's "Chinese character": the CJK ideograph blocks. */
bool uni_chinese(uint32_t c);

#endif
