/* The classical baselines against scikit-learn (tests/fixtures/baseline.json,
 * written by tests/reference/make_baseline_fixtures.py): vectorizers, and
 * liblinear's logistic regression and squared-hinge SVM solutions. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linear.h"
#include "vectorizer.h"
#include "words.h"

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

static void expect_weights(const LinearModel *m, json_t *want, double tol, const char *name)
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
        LinearOptions opt = {.C = C, .tol = 1e-10, .max_iter = 1000, .balanced = balanced};
        LinearModel m;
        cr_assert_eq(logreg_fit(&m, &X, Y, 2, &opt), 0, "%s", err_msg());
        expect_weights(&m, json_object_get(lin, balanced ? "logreg_balanced" : "logreg"), 1e-6, "logreg");
        linear_free(&m);
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
    LinearOptions opt = {.C = json_number_value(json_object_get(lin, "C")), .tol = 1e-10, .max_iter = 100000, .seed = 1};
    LinearModel m;
    cr_assert_eq(svm_fit(&m, &X, Y, 2, &opt), 0, "%s", err_msg());
    expect_weights(&m, json_object_get(lin, "svm"), 1e-5, "svm");
    linear_free(&m);
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
    LinearOptions opt = {.C = 1, .tol = 1e-4, .max_iter = 100};
    LinearModel m;
    cr_expect_eq(logreg_fit(&m, &X, Y, 1, &opt), -1);
    cr_expect(strstr(err_msg(), "no negative") != NULL, "%s", err_msg());
}
