/* Sparse word features for the classical baselines, computed as
 * scikit-learn's CountVectorizer / TfidfVectorizer compute them from the
 * same tokens: terms are words or "w1 w2" bigrams, the vocabulary is fit on
 * the training documents only and its columns are sorted by term string
 * (bytewise = code point order, as Python sorts str).
 *
 *  - min_df (a document count) and max_df (a fraction of documents) drop
 *    terms; then max_features keeps the most frequent terms by total count.
 *    Ties at the cut go to the alphabetically first term (sklearn uses an
 *    unstable argsort there, so its choice among equal counts is arbitrary).
 *  - bow: counts (or 1/0 with binary); tfidf: tf (1/0 with binary, or
 *    1 + ln tf with sublinear_tf) times idf = ln((1+n)/(1+df)) + 1 (smooth)
 *    or ln(n/df) + 1, then rows scaled to unit L2 norm (norm_l2).
 * (Not "features.h": with -Isrc that name would shadow glibc's.) */
#ifndef GENRE_VECTORIZER_H
#define GENRE_VECTORIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "src/data/words.h"

/* Compressed sparse rows; column indices ascending within a row. */
typedef struct {
    int rows, cols;
    int64_t *indptr;
    int32_t *indices;
    double *data;
} Csr;

void csr_free(Csr *m);

typedef struct {
    bool tfidf;
    bool binary;
    bool sublinear_tf;
    bool smooth_idf;
    bool norm_l2;
    int ngram_max;    /* 1 or 2 */
    int min_df;       /* keep terms in at least this many documents */
    double max_df;    /* keep terms in at most max_df * n documents */
    int max_features; /* 0: no limit */
} FeatOptions;

/* A fitted vocabulary. Term j is words[j][0] (and words[j][1] for a
 * bigram, else -1), lexicon ids. */
typedef struct {
    FeatOptions opt;
    int n_terms;
    int32_t (*words)[2];
    double *idf; /* tf-idf only */
    struct TermMap *columns; /* term -> column */
} Vectorizer;

/* Fits the vocabulary (and idf) on `train`. 0, or -1 with err_set when
 * no term survives the document-frequency limits. */
int vectorizer_fit(Vectorizer *v, const FeatOptions *opt, const WordDocs *train, const Lexicon *lx);
/* Features of `docs`; terms outside the vocabulary are ignored. */
void vectorizer_transform(const Vectorizer *v, const WordDocs *docs, Csr *out);
void vectorizer_free(Vectorizer *v);
/* The term string of column j ("w1" or "w1 w2") into buf. */
void vectorizer_term(const Vectorizer *v, const Lexicon *lx, int j, char *buf, int cap);

#endif
