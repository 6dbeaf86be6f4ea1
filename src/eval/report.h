/* The report of one classification run (baseline, fine-tuning, evaluation)
 * and the comparison of several runs. report_write fills a directory with:
 *   report.md                 seed-style results tables, per-genre report,
 *                             plots, error analysis (best/worst test movies)
 *   metrics.json              {"val": {...}, "test": {...}} (metrics_to_json), and
 *                             threshold, threshold_tuned, genre_thresholds when given
 *   per_genre_prf.svg         precision/recall/F1 per genre, by support
 *   jaccard_vs_support.svg    per-genre Jaccard against support (log x)
 *   top_words/<genre>.svg     linear models only: strongest +/- words
 *   training_loss.svg         with train_log: loss per step, raw and smoothed,
 *                             epoch boundaries dashed (in every curve chart)
 *   validation.svg            with train_log: val Jaccard and F1 at each evaluation
 *   grad_norm.svg, learning_rate.svg   with train_log, when it logs them
 *   length_jaccard.svg        with test_lengths: test Jaccard per length bucket
 * train_log is read (trainlog.h) when report_write runs; a malformed line
 * fails the report with the file and line. Length buckets split the test
 * movies at rounded quantiles of their lengths (about equal counts, at most
 * six buckets, none empty).
 * Every file is written atomically; functions return 0, or -1 with err_set.
 * Model-specific explanations come through ReportLinear callbacks, so the
 * report knows nothing about feature matrices or model layouts. */
#ifndef GENRE_REPORT_H
#define GENRE_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/data/dataset.h"
#include "src/eval/metrics.h"

/* Explanations of a linear model (score = w_c . x + b_c). Words are
 * borrowed (owned by the model, alive during report_write). Each callback
 * writes at most k entries and returns how many it wrote. */
typedef struct {
    void *ctx;
    /* The words with the largest weights of label c (sign > 0) or the most
     * negative ones (sign < 0), strongest first. */
    int (*top_words)(void *ctx, int label, int sign, int k, const char **words, double *weights);
    /* The words of test movie i that pushed label c up the most: weight x
     * feature value, positive contributions only, largest first. */
    int (*pushed_by)(void *ctx, int movie, int label, int k, const char **words, double *values);
} ReportLinear;

/* A linear model over sparse features, as ReportLinear callbacks: w holds
 * n_labels rows of `stride` weights, the first n_features of which belong
 * to the features (an intercept may follow); terms[j] names feature j; the
 * test features are CSR (indptr has test n + 1 entries). Borrowed: they
 * must outlive the report_write call, and so must *e. */
typedef struct {
    int n_labels, n_features, stride;
    const double *w;
    const char *const *terms;
    const int64_t *indptr;
    const int32_t *indices;
    const double *values;
} LinearSparse;

ReportLinear report_linear_sparse(const LinearSparse *e);

typedef struct {
    const char *name;          /* run name, e.g. "logreg tfidf" */
    const char *notes;         /* optional markdown put under the title (config, timings) */
    const LabelSet *labels;
    const Metrics *val;        /* optional */
    const Metrics *test;
    const Dataset *test_data;  /* titles, years, texts, truth y */
    const float *test_scores;  /* n x L, the scores the threshold applies to */
    const uint8_t *test_pred;  /* n x L predictions */
    const float *threshold;    /* optional: the threshold test_pred came from, kept in metrics.json */
    const float *genre_thresholds; /* optional: n_labels per-genre thresholds test_pred came from instead
                                      (threshold is then where their tuning started), kept in metrics.json
                                      and shown in the per-genre report */
    bool threshold_tuned;      /* the threshold was chosen on data (val, never test) */
    const ReportLinear *linear; /* NULL for models without word weights */
    int n_examples;            /* best and worst movies shown; 0 means 8 */
    int n_words;               /* words per sign in top-word plots; 0 means 15 */
    const char *train_log;    /* optional: log.jsonl of a training run; loss and val curves are plotted */
    const int *test_lengths;  /* optional: length of each test description; Jaccard per length bucket */
    const char *length_unit;  /* "tokens" or "words" */
} ReportRun;

int report_write(const char *dir, const ReportRun *run);

/* The seed's "Combined Metrics" table for several runs (one column each)
 * plus its micro/macro/weighted/samples tables, as markdown at `path`
 * (NULL: on stdout). */
int report_compare(const char *path, int n_runs, const char *const *names,
                   const Metrics *const *metrics);

/* report_compare over run directories: reads the "test" part of each
 * <dir>/metrics.json; a run is named by its directory's last component. */
int report_compare_dirs(const char *path, int n_runs, const char *const *dirs);

#endif
