/* The report of a small synthetic run: a toy linear model over word
 * counts, its predictions, metrics and explanations. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "metrics.h"
#include "report.h"
#include "testutil.h"

#define L 5
#define V 8
#define N 24

static char *label_names[L] = {"Action", "Drama", "Sci-Fi", "Film-Noir", "Western"};
static const char *vocab[V] = {"gun", "love", "future", "detective", "cowboy", "family", "space", "night"};
/* Weights of the toy linear model, intercept last (LinearModel's layout). */
static const double weight[L][V + 1] = {
    {2.0, -1.0, 0.5, 0.3, 0.8, -0.6, 0.4, 0.1, -1.0},
    {-0.8, 1.5, -0.7, 0.0, -0.2, 1.8, -0.9, 0.2, -0.5},
    {0.1, -0.5, 2.5, -0.3, -0.4, -0.2, 2.2, 0.0, -1.5},
    {0.4, 0.2, -0.6, 2.4, -0.5, -0.3, -0.4, 1.1, -2.0},
    {0.9, -0.1, -0.8, -0.2, 3.0, 0.1, -0.7, 0.0, -2.5},
};

/* The test movies' word counts, dense and as CSR. */
typedef struct {
    double x[N][V];
    int64_t indptr[N + 1];
    int32_t indices[N * V];
    double values[N * V];
    LinearSparse model;
} Toy;

static void toy_csr(Toy *t)
{
    int nnz = 0;
    for (int i = 0; i < N; i++) {
        t->indptr[i] = nnz;
        for (int j = 0; j < V; j++)
            if (t->x[i][j] != 0) {
                t->indices[nnz] = j;
                t->values[nnz++] = t->x[i][j];
            }
    }
    t->indptr[N] = nnz;
    t->model = (LinearSparse){L, V, V + 1, &weight[0][0], vocab, t->indptr, t->indices, t->values};
}

typedef struct {
    Toy toy;
    LabelSet labels;
    Dataset data;
    float scores[N * L];
    uint8_t pred[N * L];
    Metrics test, val;
    ReportLinear linear;
} Run;

static void build_run(Run *r, unsigned seed)
{
    memset(r, 0, sizeof *r);
    r->labels = (LabelSet){L, label_names};
    r->data.n = N;
    r->data.n_labels = L;
    r->data.titles = calloc(N, sizeof(char *));
    r->data.texts = calloc(N, sizeof(char *));
    r->data.years = calloc(N, sizeof(int));
    r->data.y = calloc(N * L, 1);
    srand(seed);
    for (int i = 0; i < N; i++) {
        char text[1024] = "", title[32];
        snprintf(title, sizeof title, "Movie %d", i);
        for (int w = 0; w < 3 + i % 4; w++) {
            int j = rand() % V;
            r->toy.x[i][j] += 1;
            strcat(text, vocab[j]);
            strcat(text, " and ");
        }
        strcat(text, i == 3 ? "a *starred* | piped_word [link]" : "the end.");
        if (i == 5)
            for (int k = 0; k < 80; k++) strcat(text, " éé lorem");
        r->data.titles[i] = strdup(title);
        r->data.texts[i] = strdup(text);
        r->data.years[i] = 1950 + i;
        for (int c = 0; c < L; c++) {
            double s = weight[c][V];
            for (int j = 0; j < V; j++) s += weight[c][j] * r->toy.x[i][j];
            r->scores[i * L + c] = (float)(1 / (1 + exp(-s)));
            /* Truth mostly agrees with the model; Western is never true. */
            r->data.y[i * L + c] = c != 4 && ((s > 0) ^ (rand() % 5 == 0));
        }
    }
    predict_at_least_one(r->pred, r->scores, N, L, 0.5f);
    metrics_compute(&r->test, r->data.y, r->pred, N, L);
    metrics_compute(&r->val, r->data.y, r->pred, N / 2, L);
    toy_csr(&r->toy);
    r->linear = report_linear_sparse(&r->toy.model);
}

static void free_run(Run *r)
{
    for (int i = 0; i < N; i++) {
        free(r->data.titles[i]);
        free(r->data.texts[i]);
    }
    free(r->data.titles);
    free(r->data.texts);
    free(r->data.years);
    free(r->data.y);
    metrics_free(&r->test);
    metrics_free(&r->val);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void expect_svg(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path);
    cr_assert_not_null(s, "%s missing", path);
    cr_expect(strstr(s, "<svg") && strstr(s, "</svg>"), "%s is not an SVG", path);
    free(s);
}

Test(report, writes_metrics_tables_plots_and_error_analysis)
{
    Run *r = malloc(sizeof *r);
    build_run(r, 7);
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/genre-report-%d/run", (int)getpid());
    ReportRun run = {.name = "toy logreg", .notes = "C = 1, 24 movies, tf-idf.", .labels = &r->labels,
                     .val = &r->val, .test = &r->test, .test_data = &r->data, .test_scores = r->scores,
                     .test_pred = r->pred, .linear = &r->linear, .n_examples = N / 2, .n_words = 4};
    cr_assert_eq(report_write(dir, &run), 0, "%s", err_msg());

    char path[256];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    cr_assert_not_null(o, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *test = json_object_get(o, "test");
    cr_assert_not_null(json_object_get(o, "val"));
    const char *keys[] = {"jaccard", "hamming", "accuracy", "f1", "precision", "recall", "at_least_one",
                          "at_least_two", "micro", "macro", "weighted", "per_label"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        cr_expect_not_null(json_object_get(test, keys[k]), "test.%s", keys[k]);
    cr_expect_float_eq(json_real_value(json_object_get(test, "jaccard")), r->test.jaccard, 0);
    Metrics back;
    LabelSet names;
    cr_assert_eq(metrics_from_json(&back, &names, test, path), 0, "%s", err_msg());
    cr_expect_eq(back.label_support[3], r->test.label_support[3]);
    cr_expect_str_eq(names.names[2], "Sci-Fi");
    cr_expect_float_eq(back.weighted_f1, r->test.weighted_f1, 0);
    metrics_free(&back);
    labels_free(&names);
    json_decref(o);

    snprintf(path, sizeof path, "%s/report.md", dir);
    char *md = slurp(path);
    cr_assert_not_null(md, "%s missing", path);
    char row[128];
    snprintf(row, sizeof row, "| **Jaccard** | %.4f | %.4f |", r->val.jaccard, r->test.jaccard);
    cr_expect(strstr(md, row), "combined table row '%s' missing", row);
    snprintf(row, sizeof row, "| **Micro Avg** | %.4f |", r->test.micro_precision);
    cr_expect(strstr(md, row), "'%s' missing", row);
    cr_expect(strstr(md, "| Western | 0.0000 | 0.0000 | 0.0000 | 0.0000 | 0 |"), "per-genre row for a genre absent from test");
    cr_expect(strstr(md, "C = 1, 24 movies, tf-idf."));
    cr_expect(strstr(md, "### Best predictions") && strstr(md, "### Worst predictions"));
    cr_expect(strstr(md, "pushed by: "), "linear explanations missing");
    cr_expect(strstr(md, "[Sci-Fi](top_words/Sci-Fi.svg)"));
    cr_expect(strstr(md, "![Precision, recall and F1 per genre](per_genre_prf.svg)"));
    /* With N / 2 best and N / 2 worst, every movie is shown once. */
    cr_expect(strstr(md, "* **Movie 23** (1973)") && strstr(md, "* **Movie 0** (1950)"));
    cr_expect(strstr(md, "a \\*starred\\* \\| piped\\_word \\[link\\]"), "markdown characters of a text are escaped");
    cr_expect(strstr(md, "lorem éé [...]\"*\n"), "long texts are cut at a space");
    free(md);

    expect_svg(dir, "per_genre_prf.svg");
    expect_svg(dir, "jaccard_vs_support.svg");
    for (int c = 0; c < L; c++) {
        char name[64];
        snprintf(name, sizeof name, "top_words/%s.svg", label_names[c]);
        expect_svg(dir, name);
    }

    /* The comparison of this run with a second one, from their directories. */
    Run *r2 = malloc(sizeof *r2);
    build_run(r2, 11);
    char dir2[128];
    snprintf(dir2, sizeof dir2, "/tmp/genre-report-%d/other/", (int)getpid());
    run = (ReportRun){.name = "toy knn", .labels = &r2->labels, .test = &r2->test, .test_data = &r2->data,
                      .test_scores = r2->scores, .test_pred = r2->pred};
    cr_assert_eq(report_write(dir2, &run), 0, "%s", err_msg());
    const char *dirs[] = {dir, dir2};
    snprintf(path, sizeof path, "/tmp/genre-report-%d/compare.md", (int)getpid());
    cr_assert_eq(report_compare_dirs(path, 2, dirs), 0, "%s", err_msg());
    md = slurp(path);
    cr_assert_not_null(md, "%s missing", path);
    snprintf(row, sizeof row, "| **Jaccard** | %.4f | %.4f |", r->test.jaccard, r2->test.jaccard);
    cr_expect(strstr(md, row), "'%s' missing from the comparison", row);
    cr_expect(strstr(md, "| **Metric** | **run** | **other** |"));
    free(md);

    free_run(r);
    free_run(r2);
    free(r);
    free(r2);
    snprintf(path, sizeof path, "/tmp/genre-report-%d", (int)getpid());
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

Test(report, sparse_linear_explanations)
{
    Toy *t = calloc(1, sizeof *t);
    t->x[0][2] = 2; /* future: +5.0 for Sci-Fi */
    t->x[0][6] = 1; /* space: +2.2 */
    t->x[0][1] = 3; /* love: -1.5, pushes nothing */
    t->x[0][0] = 1; /* gun: +0.1 */
    toy_csr(t);
    ReportLinear lin = report_linear_sparse(&t->model);
    const char *words[3];
    double v[3];
    cr_assert_eq(lin.top_words(lin.ctx, 2, +1, 2, words, v), 2);
    cr_expect_str_eq(words[0], "future");
    cr_expect_str_eq(words[1], "space");
    cr_expect_float_eq(v[1], 2.2, 1e-15);
    cr_assert_eq(lin.top_words(lin.ctx, 2, -1, 3, words, v), 3);
    cr_expect_str_eq(words[0], "love");
    cr_expect_str_eq(words[2], "detective");
    cr_expect_float_eq(v[0], -0.5, 1e-15);
    cr_assert_eq(lin.pushed_by(lin.ctx, 0, 2, 3, words, v), 3);
    cr_expect_str_eq(words[0], "future");
    cr_expect_float_eq(v[0], 5.0, 1e-15);
    cr_expect_str_eq(words[2], "gun");
    cr_expect_eq(lin.pushed_by(lin.ctx, 1, 2, 3, words, v), 0, "a movie without words");
    free(t);
}

Test(report, inconsistent_runs_and_broken_metrics_are_errors)
{
    Run *r = malloc(sizeof *r);
    build_run(r, 3);
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/genre-report-bad-%d", (int)getpid());
    ReportRun run = {.name = "bad", .labels = &r->labels, .test = &r->val, .test_data = &r->data,
                     .test_scores = r->scores, .test_pred = r->pred};
    cr_expect_eq(report_write(dir, &run), -1, "metrics over 12 movies, test set of 24");
    cr_expect(strstr(err_msg(), "12") && strstr(err_msg(), "24"), "%s", err_msg());
    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    cr_expect_neq(stat(path, &st), 0, "nothing written for an inconsistent run");
    cr_expect_neq(stat(dir, &st), 0, "not even the directory");

    json_t *o = json_pack("{s:f}", "jaccard", 0.5);
    Metrics m;
    cr_expect_eq(metrics_from_json(&m, NULL, o, "x.json"), -1);
    cr_expect(strstr(err_msg(), "x.json") && strstr(err_msg(), "per_label"), "%s", err_msg());
    json_decref(o);

    const char *dirs[] = {"/nonexistent/run"};
    cr_expect_eq(report_compare_dirs("/tmp/never.md", 1, dirs), -1);
    cr_expect(strstr(err_msg(), "/nonexistent/run/metrics.json"), "%s", err_msg());
    free_run(r);
    free(r);
}
