/* UTF-8 decoding and validation (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
#ifndef GENRE_UTF8_H
#define GENRE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s (n bytes available): its length 1..4 with the
 * code point in *cp, or 0 if it is not valid UTF-8. */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Offset of the first byte of s[0..n) that is not valid UTF-8, or n. */
size_t utf8_check(const char *s, size_t n);

/* Code points in a valid NUL-terminated string. */
size_t utf8_count(const char *s);

#endif
