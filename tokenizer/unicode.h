/* Internal to tokenizer/: the character classes BERT's
 * normalizer and pre-tokenizer use, defined exactly as HuggingFace
 * `tokenizers` defines them: Rust's char::is_whitespace, BERT's CJK blocks,
 * the unicode_categories crate's Cc/Cf/Co, Mn and P* (Unicode 8), and its
 * NFD and lowercase, all from unicode_tables.h: utf8proc's Unicode differs. */
#ifndef GENRE_TOKENIZER_UNICODE_H
#define GENRE_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stdint.h>

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
