/* Word2Vec skip-gram with negative sampling, the algorithm of the original
 * word2vec.c: vocabulary of words seen >= min_count times (sorted by
 * count), frequent-word subsampling (keep with probability
 * (sqrt(f / (sample * N)) + 1) * sample * N / f), negatives drawn from the
 * unigram^0.75 distribution (a cumulative table bisected as gensim does,
 * not word2vec.c's 1e8-entry table: same distribution, stays in cache), a
 * window shrunk at random per word, learning rate decaying linearly to
 * alpha * 1e-4 over all epochs, and lock-free (Hogwild) threads over
 * contiguous shares of the documents. Each document is one sentence. With
 * threads = 1 a run is reproducible from its seed.
 *
 * A document's vector is the mean of its in-vocabulary word vectors (zeros
 * when it has none). Vectors save and load in word2vec's text format
 * ("n dim" then "word v1 ... vdim" lines) or its binary format (the same
 * header, then "word " + dim little-endian floats + "\n"). */
#ifndef GENRE_WORD2VEC_H
#define GENRE_WORD2VEC_H

#include <stdbool.h>
#include <stdint.h>

#include "src/baseline/vectorizer.h"
#include "src/data/words.h"

typedef struct {
    int dim, window, negative, min_count, epochs, threads;
    double alpha, sample;
    uint64_t seed;
} W2vOptions;

typedef struct {
    int n_words, dim;
    char **words;   /* by descending training count */
    float *vectors; /* n_words x dim */
} W2vModel;

/* Trains on `corpus` (ids of lx). 0, or -1 with err_set (empty vocabulary). */
int w2v_train(W2vModel *m, const WordDocs *corpus, const Lexicon *lx, const W2vOptions *opt);
int w2v_save(const W2vModel *m, const char *path, bool binary);
/* 0, or -1 with err_set naming the file and line (or word) at fault. */
int w2v_load(W2vModel *m, const char *path, bool binary);
void w2v_free(W2vModel *m);

/* Row index of a word, or -1 (linear scan: for tests and lookups). */
int w2v_find(const W2vModel *m, const char *word);
/* Cosine similarity of rows a and b. */
double w2v_similarity(const W2vModel *m, int a, int b);
/* Mean word vectors of `docs` (ids of lx) as a dense-in-CSR matrix. */
void w2v_doc_vectors(const W2vModel *m, const WordDocs *docs, const Lexicon *lx, Csr *out);

#endif
