/* BERT uncased WordPiece tokenizer, identical in output to HuggingFace's
 * BertTokenizerFast / BertWordPieceTokenizer (lowercase=True, same vocab).
 *
 * Two layers:
 *  - basic_tokenize: HuggingFace's BasicTokenizer (clean text, CJK spacing,
 *    lowercase, NFD + strip combining marks, split on whitespace and
 *    punctuation). Needs no vocabulary; the baseline's word features use it.
 *  - tokenizer_*: WordPiece on top, then [CLS] ... [SEP], truncation, padding.
 *
 * Input must be valid UTF-8 (src/utf8.h: no overlong forms, no surrogates,
 * nothing past U+10FFFF, as Rust strings): invalid input is an error, the call
 * returns -1 and err_set() says "invalid UTF-8 at byte N", N counting from 0
 * at the start of the text; nothing is replaced silently.
 *
 * As in HuggingFace, the special tokens written literally in a text ("[CLS]",
 * "[SEP]", "[PAD]", "[UNK]", "[MASK]", case-sensitive) are matched before
 * normalization and encode to their own ids (tokenizer_encode only). */
#ifndef GENRE_TOKENIZER_H
#define GENRE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called once per basic word, in order. `word` is NUL-terminated UTF-8,
 * lowercased and accent-stripped; it is only valid during the call. */
typedef void (*BasicWordFn)(const char *word, size_t len, void *ctx);

/* Splits `text` (len bytes) into basic words. 0, or -1 on invalid UTF-8. */
int basic_tokenize(const char *text, size_t len, BasicWordFn fn, void *ctx);

typedef struct Tokenizer Tokenizer;

/* Loads vocab.txt, or <dir>/vocab.txt when `path` is a model directory.
 * Line i is id i (trailing whitespace trimmed; a repeated token takes its
 * last line, as HuggingFace). [PAD], [UNK], [CLS] and [SEP] must be present.
 * NULL with err_set (file and line) on error. */
Tokenizer *tokenizer_load(const char *path);
void tokenizer_free(Tokenizer *t);

int tokenizer_vocab_size(const Tokenizer *t);
/* Id of a vocabulary entry, or -1. */
int tokenizer_token_id(const Tokenizer *t, const char *token);
/* The token string of an id (NULL when out of range). */
const char *tokenizer_token(const Tokenizer *t, int id);

typedef struct { int32_t pad, unk, cls, sep, mask; } SpecialIds;
SpecialIds tokenizer_special(const Tokenizer *t);

/* WordPiece ids of `text` without special tokens. Writes at most `cap` ids
 * and returns the total count (which may exceed cap: the text was longer),
 * or -1 on invalid UTF-8. Thread-safe: a Tokenizer is read-only after load. */
long tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int32_t *ids, long cap);

/* Model input for a batch: row i of `ids` and `mask` (n x max_len) gets
 * [CLS] tokens... [SEP] truncated to max_len (the tokens are cut, [SEP]
 * stays), then [PAD] with mask 0. lengths[i] (may be NULL) receives the
 * unpadded length. max_len >= 2. 0, or -1 with err_set naming the text. */
int tokenizer_encode_batch(const Tokenizer *t, const char *const *texts, int n, int max_len,
                           int32_t *ids, int32_t *mask, int *lengths);

#endif
