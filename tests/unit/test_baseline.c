/* The classical baselines against scikit-learn (tests/fixtures/baseline.json,
 * written by tests/reference/make_baseline_fixtures.py): vectorizers, and
 * liblinear's logistic regression and squared-hinge SVM solutions; KNN on
 * a toy set and word2vec's sanity on a synthetic corpus. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/baseline/knn.h"
#include "src/baseline/ovr.h"
#include "src/baseline/vectorizer.h"
#include "src/baseline/word2vec.h"
#include "src/data/words.h"

static json_t *fixture(void)
{
    json_error_t e;
    json_t *j = json_load_file("tests/fixtures/baseline.json", 0, &e);
    cr_assert_not_null(j, "tests/fixtures/baseline.json: %s", e.text);
    return j;
}

/* Splits on spaces into `d`, interning into lx. */
static void add_doc(WordDocs *d, Lexicon *lx, const char *text)
{
    int32_t ids[64];
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (q > p) ids[n++] = lexicon_intern(lx, p, (size_t)(q - p));
        p = q;
    }
    worddocs_add(d, ids, n);
}

static double csr_at(const Csr *m, int i, int j)
{
    for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++)
        if (m->indices[k] == j) return m->data[k];
    return 0;
}

static void expect_matrix(const Csr *m, json_t *dense, const char *name)
{
    cr_assert_eq(m->rows, (int)json_array_size(dense), "%s rows", name);
    for (int i = 0; i < m->rows; i++) {
        json_t *row = json_array_get(dense, (size_t)i);
        cr_assert_eq(m->cols, (int)json_array_size(row), "%s cols", name);
        for (int j = 0; j < m->cols; j++) {
            double want = json_number_value(json_array_get(row, (size_t)j));
            cr_expect(fabs(csr_at(m, i, j) - want) <= 1e-12, "%s[%d,%d] = %.15g, sklearn %.15g", name, i, j,
                      csr_at(m, i, j), want);
        }
    }
}

Test(vectorizer, matches_sklearn)
{
    json_t *fx = fixture(), *docs = json_object_get(fx, "docs");
    int n_train = (int)json_integer_value(json_object_get(fx, "n_train"));
    size_t vi;
    json_t *vc;
    json_array_foreach(json_object_get(fx, "vectorizers"), vi, vc) {
        const char *name = json_string_value(json_object_get(vc, "name"));
        json_t *o = json_object_get(vc, "options");
        json_t *mf = json_object_get(o, "max_features");
        FeatOptions opt = {
            .tfidf = json_is_true(json_object_get(vc, "tfidf")),
            .binary = json_is_true(json_object_get(o, "binary")),
            .sublinear_tf = json_is_true(json_object_get(o, "sublinear_tf")),
            .smooth_idf = !json_is_false(json_object_get(o, "smooth_idf")),
            .ngram_max = json_object_get(o, "ngram_max") ? (int)json_integer_value(json_object_get(o, "ngram_max")) : 1,
            .min_df = json_object_get(o, "min_df") ? (int)json_integer_value(json_object_get(o, "min_df")) : 1,
            .max_df = json_object_get(o, "max_df") ? json_number_value(json_object_get(o, "max_df")) : 1.0,
            .max_features = mf ? (int)json_integer_value(mf) : 0,
        };
        opt.norm_l2 = opt.tfidf;
        Lexicon *lx = lexicon_new();
        WordDocs train, test;
        worddocs_init(&train);
        worddocs_init(&test);
        for (size_t i = 0; i < json_array_size(docs); i++)
            add_doc((int)i < n_train ? &train : &test, lx, json_string_value(json_array_get(docs, i)));
        Vectorizer v;
        cr_assert_eq(vectorizer_fit(&v, &opt, &train, lx), 0, "%s: %s", name, err_msg());
        json_t *vocab = json_object_get(vc, "vocabulary");
        cr_assert_eq(v.n_terms, (int)json_array_size(vocab), "%s: %d terms, sklearn %zu", name, v.n_terms,
                     json_array_size(vocab));
        for (int j = 0; j < v.n_terms; j++) {
            char buf[128];
            vectorizer_term(&v, lx, j, buf, sizeof buf);
            cr_expect_str_eq(buf, json_string_value(json_array_get(vocab, (size_t)j)), "%s term %d", name, j);
        }
        Csr Xtr, Xte;
        vectorizer_transform(&v, &train, &Xtr);
        vectorizer_transform(&v, &test, &Xte);
        expect_matrix(&Xtr, json_object_get(vc, "train"), name);
        expect_matrix(&Xte, json_object_get(vc, "test"), name);
        csr_free(&Xtr), csr_free(&Xte);
        vectorizer_free(&v);
        worddocs_free(&train), worddocs_free(&test);
        lexicon_free(lx);
    }
    json_decref(fx);
}

Test(vectorizer, nothing_survives_pruning)
{
    Lexicon *lx = lexicon_new();
    WordDocs d;
    worddocs_init(&d);
    add_doc(&d, lx, "a b");
    add_doc(&d, lx, "c d");
    FeatOptions opt = {.ngram_max = 1, .min_df = 2, .max_df = 1.0};
    Vectorizer v;
    cr_expect_eq(vectorizer_fit(&v, &opt, &d, lx), -1);
    cr_expect(strstr(err_msg(), "no terms remain") != NULL, "%s", err_msg());
    worddocs_free(&d);
    lexicon_free(lx);
}

/* The fixture's dense X as CSR (zeros dropped) and Y as 0/1. */
static void load_linear(json_t *lin, Csr *X, uint8_t **Y)
{
    json_t *jx = json_object_get(lin, "X"), *jy = json_object_get(lin, "Y");
    int n = (int)json_array_size(jx), d = (int)json_array_size(json_array_get(jx, 0));
    X->rows = n, X->cols = d;
    X->indptr = xmalloc((size_t)(n + 1) * sizeof *X->indptr);
    X->indices = xmalloc((size_t)n * d * sizeof *X->indices);
    X->data = xmalloc((size_t)n * d * sizeof *X->data);
    *Y = xmalloc((size_t)n * 2);
    int64_t nnz = 0;
    X->indptr[0] = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double x = json_number_value(json_array_get(json_array_get(jx, (size_t)i), (size_t)j));
            if (x != 0) X->indices[nnz] = j, X->data[nnz++] = x;
        }
        X->indptr[i + 1] = nnz;
        for (int c = 0; c < 2; c++)
            (*Y)[i * 2 + c] = (uint8_t)json_integer_value(json_array_get(json_array_get(jy, (size_t)i), (size_t)c));
    }
}

static void expect_weights(const OvrModel *m, json_t *want, double tol, const char *name)
{
    for (int c = 0; c < m->n_labels; c++)
        for (int j = 0; j <= m->n_features; j++) {
            double w = m->w[c * (m->n_features + 1) + j];
            double s = json_number_value(json_array_get(json_array_get(want, (size_t)c), (size_t)j));
            cr_expect(fabs(w - s) <= tol, "%s label %d w[%d] = %.9f, sklearn %.9f", name, c, j, w, s);
        }
}

Test(linear, logreg_matches_liblinear)
{
    json_t *fx = fixture(), *lin = json_object_get(fx, "linear");
    Csr X;
    uint8_t *Y;
    load_linear(lin, &X, &Y);
    double C = json_number_value(json_object_get(lin, "C"));
    for (int balanced = 0; balanced < 2; balanced++) {
        OvrOptions opt = {.C = C, .tol = 1e-10, .max_iter = 1000, .balanced = balanced};
        OvrModel m;
        cr_assert_eq(logreg_fit(&m, &X, Y, 2, &opt), 0, "%s", err_msg());
        expect_weights(&m, json_object_get(lin, balanced ? "logreg_balanced" : "logreg"), 1e-6, "logreg");
        ovr_free(&m);
    }
    csr_free(&X);
    free(Y);
    json_decref(fx);
}

Test(linear, svm_matches_liblinear)
{
    json_t *fx = fixture(), *lin = json_object_get(fx, "linear");
    Csr X;
    uint8_t *Y;
    load_linear(lin, &X, &Y);
    OvrOptions opt = {.C = json_number_value(json_object_get(lin, "C")), .tol = 1e-10, .max_iter = 100000, .seed = 1};
    OvrModel m;
    cr_assert_eq(svm_fit(&m, &X, Y, 2, &opt), 0, "%s", err_msg());
    expect_weights(&m, json_object_get(lin, "svm"), 1e-5, "svm");
    ovr_free(&m);
    csr_free(&X);
    free(Y);
    json_decref(fx);
}

Test(linear, one_class_label_is_an_error)
{
    double data[2] = {1, 2};
    int64_t indptr[3] = {0, 1, 2};
    int32_t indices[2] = {0, 0};
    Csr X = {2, 1, indptr, indices, data};
    uint8_t Y[2] = {1, 1};
    OvrOptions opt = {.C = 1, .tol = 1e-4, .max_iter = 100};
    OvrModel m;
    cr_expect_eq(logreg_fit(&m, &X, Y, 1, &opt), -1);
    cr_expect(strstr(err_msg(), "no negative") != NULL, "%s", err_msg());
}

/* Dense rows as CSR (zeros dropped). */
static Csr dense_csr(const double *x, int rows, int cols)
{
    Csr m = {rows, cols, xmalloc((size_t)(rows + 1) * sizeof(int64_t)), xmalloc((size_t)rows * cols * sizeof(int32_t)),
             xmalloc((size_t)rows * cols * sizeof(double))};
    int64_t nnz = 0;
    m.indptr[0] = 0;
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++)
            if (x[i * cols + j] != 0) m.indices[nnz] = j, m.data[nnz++] = x[i * cols + j];
        m.indptr[i + 1] = nnz;
    }
    return m;
}

Test(knn, toy_cosine_neighbours)
{
    /* Directions: rows 0,1 near the x axis, rows 2,3 near y, row 4 diagonal. */
    double tr[] = {1, 0.1, 2, 0.3, 0.1, 1, 0.2, 3, 1, 1};
    uint8_t Y[] = {1, 0, 1, 0, 0, 1, 0, 1, 1, 1};
    double q[] = {5, 0, 0, 0, 0, 2};
    Csr T = dense_csr(tr, 5, 2), Q = dense_csr(q, 3, 2);
    float s[6];
    knn_scores(&T, Y, 2, &Q, 3, false, s);
    /* Query 0 (x axis): rows 0, 1, then 4 -> label 0 in 3/3, label 1 in 1/3. */
    cr_expect_float_eq(s[0], 1.0f, 1e-6);
    cr_expect_float_eq(s[1], 1.0f / 3, 1e-6);
    /* Query 1 (zeros): cosine 0 everywhere, ties go to rows 0, 1, 2. */
    cr_expect_float_eq(s[2], 2.0f / 3, 1e-6);
    cr_expect_float_eq(s[3], 1.0f / 3, 1e-6);
    /* Query 2 (y axis), distance weighted: rows 3, 2, 4. */
    knn_scores(&T, Y, 2, &Q, 3, true, s);
    double d3 = 1 - 3 / sqrt(9.04), d2 = 1 - 1 / sqrt(1.01), d4 = 1 - 1 / sqrt(2.0);
    double w3 = 1 / d3, w2 = 1 / d2, w4 = 1 / d4;
    cr_expect_float_eq(s[4], (float)(w4 / (w2 + w3 + w4)), 1e-5);
    cr_expect_float_eq(s[5], 1.0f, 1e-6);
    csr_free(&T), csr_free(&Q);
}

/* Two topics whose words never share a sentence: after training, words of
 * one topic are closer to each other than to the other topic's. */
Test(word2vec, topics_separate_and_vectors_round_trip)
{
    Lexicon *lx = lexicon_new();
    WordDocs d;
    worddocs_init(&d);
    uint64_t r = 12345;
    char w[16];
    for (int s = 0; s < 1500; s++) {
        int32_t ids[12];
        char topic = s % 2 ? 'a' : 'b';
        for (int t = 0; t < 12; t++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            snprintf(w, sizeof w, "%c%d", topic, (int)((r >> 33) % 8));
            ids[t] = lexicon_intern(lx, w, strlen(w));
        }
        worddocs_add(&d, ids, 12);
    }
    W2vOptions opt = {.dim = 16, .window = 3, .negative = 5, .min_count = 1, .epochs = 3, .threads = 1,
                      .alpha = 0.025, .sample = 1e-3, .seed = 1};
    W2vModel m;
    cr_assert_eq(w2v_train(&m, &d, lx, &opt), 0, "%s", err_msg());
    cr_assert_eq(m.n_words, 16);
    double same = 0, cross = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            char a[16], b[16], c[16];
            snprintf(a, sizeof a, "a%d", i), snprintf(b, sizeof b, "a%d", j), snprintf(c, sizeof c, "b%d", j);
            if (i != j) same += w2v_similarity(&m, w2v_find(&m, a), w2v_find(&m, b)) / 56;
            cross += w2v_similarity(&m, w2v_find(&m, a), w2v_find(&m, c)) / 64;
        }
    cr_expect_gt(same, cross + 0.3, "within-topic cosine %.3f, across %.3f", same, cross);

    for (int binary = 0; binary < 2; binary++) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/genre-w2v-%d.%s", (int)getpid(), binary ? "bin" : "txt");
        cr_assert_eq(w2v_save(&m, path, binary), 0, "%s", err_msg());
        W2vModel back;
        cr_assert_eq(w2v_load(&back, path, binary), 0, "%s", err_msg());
        cr_expect_eq(back.n_words, m.n_words);
        for (int i = 0; i < m.n_words * m.dim; i++)
            cr_assert_float_eq(back.vectors[i], m.vectors[i], binary ? 0 : 1e-7 * fabsf(m.vectors[i]) + 1e-12);
        w2v_free(&back);
        remove(path);
    }
    Csr X;
    w2v_doc_vectors(&m, &d, lx, &X);
    cr_expect_eq(X.rows, 1500);
    cr_expect_eq(X.cols, 16);
    csr_free(&X);
    w2v_free(&m);
    worddocs_free(&d);
    lexicon_free(lx);
}

Test(word2vec, load_rejects_broken_files)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/genre-w2v-bad-%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("2 3\nfoo 1 2 3\nbar 1 x 3\n", f);
    fclose(f);
    W2vModel m;
    cr_expect_eq(w2v_load(&m, path, false), -1);
    cr_expect(strstr(err_msg(), ":3: expected a number") != NULL, "%s", err_msg());
    remove(path);
}
