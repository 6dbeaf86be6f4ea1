/* Word corpora for the classical baselines: a lexicon that interns word
 * strings to dense ids (0, 1, ... in order of first sight), and documents
 * stored as runs of those ids. Splitting texts into words is the caller's
 * business (the baseline uses basic_tokenize); this module only stores. */
#ifndef GENRE_WORDS_H
#define GENRE_WORDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct Lexicon Lexicon;

Lexicon *lexicon_new(void);
void lexicon_free(Lexicon *lx);
/* Id of the word (len bytes), adding it when new. */
int32_t lexicon_intern(Lexicon *lx, const char *word, size_t len);
/* Id of a NUL-terminated word, or -1. */
int32_t lexicon_find(const Lexicon *lx, const char *word);
const char *lexicon_word(const Lexicon *lx, int32_t id);
int lexicon_size(const Lexicon *lx);

/* n documents; document i is ids[off[i] .. off[i+1]). */
typedef struct {
    int n;
    int64_t *off;
    int32_t *ids;
    int64_t cap;
} WordDocs;

void worddocs_init(WordDocs *d);
/* Appends one document of n_words ids. */
void worddocs_add(WordDocs *d, const int32_t *ids, int64_t n_words);
void worddocs_free(WordDocs *d);

#endif
