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

#include "src/core/err.h"
#include "src/eval/metrics.h"
#include "src/eval/report.h"
#include "tests/testutil.h"

#define L 5
#define V 8
#define N 24

static char *label_names[L] = {"Action", "Drama", "Sci-Fi", "Film-Noir", "Western"};
static const char *vocab[V] = {"gun", "love", "future", "detective", "cowboy", "family", "space", "night"};
/* Weights of the toy linear model, intercept last (OvrModel's layout). */
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

/* Occurrences of `needle` in s. */
static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Points in the `k`-th polyline of an SVG (0-based). */
static int polyline_points(const char *svg, int k)
{
    const char *p = svg;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "<polyline");
        cr_assert_not_null(p, "polyline %d missing", k);
        p++;
    }
    p = strstr(p, "points=\"") + 8;
    int n = 1;
    for (; *p != '"'; p++) n += *p == ' ';
    return n;
}

Test(report, training_curves_from_the_log)
{
    Run *r = malloc(sizeof *r);
    build_run(r, 5);
    char dir[128], log_path[128], path[256];
    snprintf(dir, sizeof dir, "/tmp/genre-report-log-%d/run", (int)getpid());
    snprintf(log_path, sizeof log_path, "/tmp/genre-report-log-%d.jsonl", (int)getpid());
    /* 30 steps of loss 1.0, 0.99, ... in two epochs; validation at steps 10, 20 and 30. */
    FILE *f = fopen(log_path, "w");
    cr_assert_not_null(f);
    for (int s = 1; s <= 30; s++) {
        fprintf(f, "{\"step\": %d, \"epoch\": %d, \"loss\": %g, \"lr\": %g, \"grad_norm\": 0.5, \"samples_per_s\": 9}\n",
                s, s <= 15 ? 1 : 2, 1.0 - 0.01 * (s - 1), 2e-5 * (30 - s) / 30);
        if (s % 10 == 0)
            fprintf(f, "{\"step\": %d, \"epoch\": 1, \"val\": {\"jaccard\": %g, \"f1\": %g}}\n", s, 0.1 * s / 10,
                    0.2 * s / 10);
    }
    fclose(f);
    ReportRun run = {.name = "toy tuned", .labels = &r->labels, .test = &r->test, .test_data = &r->data,
                     .test_scores = r->scores, .test_pred = r->pred, .train_log = log_path};
    cr_assert_eq(report_write(dir, &run), 0, "%s", err_msg());

    snprintf(path, sizeof path, "%s/training_loss.svg", dir);
    char *svg = slurp(path);
    cr_assert_not_null(svg, "%s missing", path);
    cr_expect_eq(count_of(svg, "<polyline"), 2, "raw and smoothed loss");
    cr_expect_eq(polyline_points(svg, 0), 30, "one raw point per step");
    cr_expect_eq(polyline_points(svg, 1), 30, "one smoothed point per step");
    cr_expect(strstr(svg, "moving mean over 3 steps"), "30 steps are smoothed over 3");
    cr_expect_eq(count_of(svg, ">epoch 2<"), 1, "the second epoch is marked");
    cr_expect(!strstr(svg, ">epoch 1<"), "the first epoch needs no mark");
    free(svg);
    snprintf(path, sizeof path, "%s/validation.svg", dir);
    svg = slurp(path);
    cr_assert_not_null(svg, "%s missing", path);
    cr_expect_eq(count_of(svg, "<circle"), 6, "Jaccard and F1 at 3 evaluations");
    cr_expect(strstr(svg, ">30<"), "the x axis reaches the last step");
    free(svg);
    snprintf(path, sizeof path, "%s/learning_rate.svg", dir);
    svg = slurp(path);
    cr_assert_not_null(svg, "%s missing", path);
    cr_expect(strstr(svg, "learning rate (\u00d7 1e-5)"), "lr in units of 1e-5");
    free(svg);
    expect_svg(dir, "grad_norm.svg");

    snprintf(path, sizeof path, "%s/report.md", dir);
    char *md = slurp(path);
    cr_assert_not_null(md);
    /* The last 3 losses are 0.73, 0.72 and 0.71. */
    cr_expect(strstr(md, "30 optimizer steps logged; loss 1.0000 at the first, 0.7200 on average over the last 3."), "%s", md);
    cr_expect(strstr(md, "3 evaluations on val; best Jaccard 0.3000 at step 30."));
    const char *links[] = {"(training_loss.svg)", "(validation.svg)", "(grad_norm.svg)", "(learning_rate.svg)"};
    for (int i = 0; i < 4; i++) cr_expect(strstr(md, links[i]), "report.md links %s", links[i]);
    cr_expect(!strstr(md, "Description length"), "no lengths given");
    free(md);

    /* A log broken mid-line fails the report, naming the line, and writes nothing. */
    f = fopen(log_path, "a");
    fputs("{\"step\": 31, \"loss\": 0.", f);
    fclose(f);
    snprintf(dir, sizeof dir, "/tmp/genre-report-log-%d/broken", (int)getpid());
    cr_expect_eq(report_write(dir, &run), -1);
    char where[160];
    snprintf(where, sizeof where, "%s:34:", log_path);
    cr_expect(strstr(err_msg(), where), "'%s' names %s", err_msg(), where);
    struct stat st;
    cr_expect_neq(stat(dir, &st), 0, "nothing written for a broken log");

    free_run(r);
    free(r);
    unlink(log_path);
    snprintf(path, sizeof path, "/tmp/genre-report-log-%d", (int)getpid());
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* report.md's length table for the toy run with these lengths. */
static char *length_report(Run *r, const int *lengths, const char *unit, const char *name)
{
    char dir[128], path[256];
    snprintf(dir, sizeof dir, "/tmp/genre-report-len-%d/%s", (int)getpid(), name);
    ReportRun run = {.name = "toy", .labels = &r->labels, .test = &r->test, .test_data = &r->data,
                     .test_scores = r->scores, .test_pred = r->pred, .test_lengths = lengths, .length_unit = unit};
    cr_assert_eq(report_write(dir, &run), 0, "%s", err_msg());
    expect_svg(dir, "length_jaccard.svg");
    snprintf(path, sizeof path, "%s/report.md", dir);
    char *md = slurp(path);
    cr_assert_not_null(md);
    cr_expect(strstr(md, "![Test Jaccard per description length](length_jaccard.svg)"));
    return md;
}

/* The table row of a bucket: its name, count, and the mean Jaccard of
 * the toy run's movies [from, to). */
static void expect_bucket(const char *md, Run *r, const char *name, int from, int to)
{
    double j = 0;
    for (int i = from; i < to; i++) j += metrics_sample_jaccard(r->data.y + i * L, r->pred + i * L, L);
    char row[128];
    snprintf(row, sizeof row, "| %s | %d | %.4f |\n", name, to - from, j / (to - from));
    cr_expect(strstr(md, row), "row '%s' missing from:\n%s", row, strstr(md, "## Description"));
}

Test(report, jaccard_per_length_bucket)
{
    Run *r = malloc(sizeof *r);
    build_run(r, 9);
    /* Four movies each of 10, 20, ..., 60 tokens: six equal buckets at those edges. */
    int len[N];
    for (int i = 0; i < N; i++) len[i] = 10 * (i / 4 + 1);
    char *md = length_report(r, len, "tokens", "even");
    cr_expect(strstr(md, "| Length (tokens) | Movies | Jaccard |"));
    cr_expect(strstr(md, "in tokens (10 to 60)"));
    const char *names[] = {"\u2264 10", "11\u201320", "21\u201330", "31\u201340", "41\u201350", "> 50"};
    for (int b = 0; b < 6; b++) expect_bucket(md, r, names[b], 4 * b, 4 * b + 4);
    cr_expect(strstr(md, "4 movies share the longest length, 60"));
    free(md);

    /* Twenty short descriptions and four long ones: equal quantiles merge
     * into one edge, and no bucket is left empty. */
    for (int i = 0; i < N; i++) len[i] = i < 20 ? 12 : 100 + i;
    md = length_report(r, len, "words", "skewed");
    cr_expect(strstr(md, "| Length (words) |"));
    expect_bucket(md, r, "\u2264 12", 0, 20);
    expect_bucket(md, r, "> 12", 20, 24);
    cr_expect_eq(count_of(md, "| Length (words) | Movies | Jaccard |\n|:--|--:|--:|\n") , 1);
    cr_expect(!strstr(md, "share the longest length"), "one movie at the maximum is no sign of cutting");
    free(md);

    /* Half at 48, half at 52: the quantile 52 rounds to an edge of 50, which
     * would close an empty bucket (48, 50], so that edge goes. */
    for (int i = 0; i < N; i++) len[i] = i < N / 2 ? 48 : 52;
    md = length_report(r, len, "tokens", "gap");
    expect_bucket(md, r, "\u2264 48", 0, N / 2);
    expect_bucket(md, r, "> 48", N / 2, N);
    cr_expect(!strstr(md, "49\u201350"), "no empty bucket");
    free(md);

    /* One length for all: one bucket. */
    for (int i = 0; i < N; i++) len[i] = 7;
    md = length_report(r, len, "tokens", "flat");
    expect_bucket(md, r, "7", 0, N);
    free(md);

    /* Lengths without a unit are refused. */
    ReportRun run = {.name = "toy", .labels = &r->labels, .test = &r->test, .test_data = &r->data,
                     .test_scores = r->scores, .test_pred = r->pred, .test_lengths = len};
    cr_expect_eq(report_write("/tmp/genre-report-never", &run), -1);
    cr_expect(strstr(err_msg(), "unit"), "%s", err_msg());

    free_run(r);
    free(r);
    char path[128];
    snprintf(path, sizeof path, "/tmp/genre-report-len-%d", (int)getpid());
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
