/* Metrics against scikit-learn's values in tests/fixtures/metrics.json
 * (written by tests/reference/make_metrics_fixtures.py). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/eval/metrics.h"

#define TOL 1e-9

static double max_diff;

static uint8_t *read_rows(json_t *rows, int n, int n_labels)
{
    uint8_t *y = malloc((size_t)n * n_labels);
    cr_assert_eq((int)json_array_size(rows), n);
    for (int i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(rows, (size_t)i));
        cr_assert_eq((int)strlen(s), n_labels);
        for (int c = 0; c < n_labels; c++) y[(size_t)i * n_labels + c] = s[c] == '1';
    }
    return y;
}

static void near(const char *cname, const char *what, double got, json_t *want)
{
    cr_assert(json_is_number(want), "%s: %s missing from fixture", cname, what);
    double d = fabs(got - json_number_value(want));
    if (d > max_diff) max_diff = d;
    cr_expect(d <= TOL, "%s: %s = %.17g, sklearn %.17g", cname, what, got, json_number_value(want));
}

static void check_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    int n = (int)json_integer_value(json_object_get(c, "n"));
    int L = (int)json_integer_value(json_object_get(c, "n_labels"));
    uint8_t *yt = read_rows(json_object_get(c, "y_true"), n, L);
    uint8_t *yp = read_rows(json_object_get(c, "y_pred"), n, L);
    json_t *e = json_object_get(c, "expect");

    json_t *scores = json_object_get(c, "scores");
    if (scores) {
        float *s = malloc((size_t)n * L * sizeof *s);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < L; j++)
                s[(size_t)i * L + j] =
                    (float)json_number_value(json_array_get(json_array_get(scores, (size_t)i), (size_t)j));
        uint8_t *mine = malloc((size_t)n * L);
        float threshold = (float)json_number_value(json_object_get(c, "threshold"));
        predict_at_least_one(mine, s, n, L, threshold);
        cr_expect(memcmp(mine, yp, (size_t)n * L) == 0, "%s: predict_at_least_one differs from numpy", name);
        free(mine);
        free(s);
    }

    Metrics m;
    metrics_compute(&m, yt, yp, n, L);
    const struct { const char *key; double v; } top[] = {
        {"jaccard", m.jaccard},     {"hamming", m.hamming},           {"accuracy", m.accuracy},
        {"precision", m.precision}, {"recall", m.recall},             {"f1", m.f1},
        {"at_least_one", m.at_least_one}, {"at_least_two", m.at_least_two},
    };
    for (size_t k = 0; k < sizeof top / sizeof *top; k++) near(name, top[k].key, top[k].v, json_object_get(e, top[k].key));
    const struct { const char *avg; double p, r, f; } avgs[] = {
        {"micro", m.micro_precision, m.micro_recall, m.micro_f1},
        {"macro", m.macro_precision, m.macro_recall, m.macro_f1},
        {"weighted", m.weighted_precision, m.weighted_recall, m.weighted_f1},
    };
    for (size_t k = 0; k < 3; k++) {
        json_t *a = json_object_get(e, avgs[k].avg);
        char what[64];
        snprintf(what, sizeof what, "%s precision", avgs[k].avg);
        near(name, what, avgs[k].p, json_object_get(a, "precision"));
        snprintf(what, sizeof what, "%s recall", avgs[k].avg);
        near(name, what, avgs[k].r, json_object_get(a, "recall"));
        snprintf(what, sizeof what, "%s f1", avgs[k].avg);
        near(name, what, avgs[k].f, json_object_get(a, "f1"));
    }
    json_t *per = json_object_get(e, "per_label");
    for (int j = 0; j < L; j++) {
        char what[64];
        snprintf(what, sizeof what, "label %d precision", j);
        near(name, what, m.label_precision[j], json_array_get(json_object_get(per, "precision"), (size_t)j));
        snprintf(what, sizeof what, "label %d recall", j);
        near(name, what, m.label_recall[j], json_array_get(json_object_get(per, "recall"), (size_t)j));
        snprintf(what, sizeof what, "label %d f1", j);
        near(name, what, m.label_f1[j], json_array_get(json_object_get(per, "f1"), (size_t)j));
        snprintf(what, sizeof what, "label %d jaccard", j);
        near(name, what, m.label_jaccard[j], json_array_get(json_object_get(per, "jaccard"), (size_t)j));
        cr_expect_eq(m.label_support[j],
                     (int)json_integer_value(json_array_get(json_object_get(per, "support"), (size_t)j)),
                     "%s: label %d support", name, j);
    }
    double jac = 0;
    for (int i = 0; i < n; i++) jac += metrics_sample_jaccard(yt + (size_t)i * L, yp + (size_t)i * L, L);
    near(name, "mean of metrics_sample_jaccard", n ? jac / n : 0, json_object_get(e, "jaccard"));
    metrics_free(&m);
    free(yt);
    free(yp);
}

Test(metrics, equal_to_sklearn_on_fixtures)
{
    json_error_t jerr;
    json_t *root = json_load_file("tests/fixtures/metrics.json", 0, &jerr);
    cr_assert_not_null(root, "tests/fixtures/metrics.json:%d: %s", jerr.line, jerr.text);
    json_t *cases = json_object_get(root, "cases"), *c;
    size_t i;
    int real = 0;
    cr_assert_geq(json_array_size(cases), 9);
    json_array_foreach(cases, i, c) {
        check_case(c);
        real += json_object_get(c, "scores") != NULL;
    }
    cr_expect_eq(real, 1, "the fixture holds the real-prediction case with scores");
    cr_log_info("max |diff| vs scikit-learn: %.3g over %zu cases", max_diff, json_array_size(cases));
    json_decref(root);
}

Test(metrics, at_least_one_rule_picks_first_maximum_and_skips_nan)
{
    const float s[] = {0.1f, 0.3f, 0.3f,   /* none passes: first max (label 1) */
                       0.7f, 0.2f, 0.9f,   /* two pass */
                       NAN, 0.2f, 0.1f};   /* NaN never wins */
    uint8_t p[9];
    predict_at_least_one(p, s, 3, 3, 0.5f);
    const uint8_t want[9] = {0, 1, 0, 1, 0, 1, 0, 1, 0};
    cr_expect(memcmp(p, want, 9) == 0);
}

Test(metrics, json_has_the_keys)
{
    const uint8_t yt[] = {1, 0, 1, 1}, yp[] = {1, 1, 0, 1};
    char *names[] = {"Action", "Drama"};
    LabelSet ls = {2, names};
    Metrics m;
    metrics_compute(&m, yt, yp, 2, 2);
    json_t *o = metrics_to_json(&m, &ls);
    const char *keys[] = {"jaccard", "hamming", "accuracy", "f1", "precision", "recall",
                          "at_least_one", "at_least_two", "micro", "macro", "weighted", "per_label"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        cr_expect_not_null(json_object_get(o, keys[k]), "%s", keys[k]);
    json_t *drama = json_object_get(json_object_get(o, "per_label"), "Drama");
    cr_expect_eq(json_integer_value(json_object_get(drama, "support")), 1);
    cr_expect_float_eq(json_real_value(json_object_get(drama, "precision")), 0.5, 1e-15);
    cr_expect_float_eq(json_real_value(json_object_get(json_object_get(o, "micro"), "recall")), 2.0 / 3, 1e-15);
    json_decref(o);
    metrics_free(&m);
}

/* Positives score 0.3 and negatives 0.2: every threshold in [0.2, 0.3) is
 * perfect, and of those the grid's nearest to 0.5 is 0.29. */
Test(metrics, tuned_threshold_finds_the_plateau_nearest_the_default)
{
    const uint8_t y[] = {1, 0, 1, 0, 1, 0, 1, 1, 0};
    float s[9];
    for (int i = 0; i < 9; i++) s[i] = y[i] ? 0.3f : 0.2f;
    float t = metrics_tune_threshold(s, y, 3, 3, 0.05f, 0.95f, 91, 0.5f);
    cr_assert_float_eq(t, 0.29f, 1e-5, "got %g", t);
    uint8_t p[9];
    Metrics m;
    predict_at_least_one(p, s, 3, 3, t);
    metrics_compute(&m, y, p, 3, 3);
    cr_assert_float_eq(m.jaccard, 1.0, 1e-12);
    metrics_free(&m);
    cr_assert_float_eq(metrics_tune_threshold(s, y, 3, 3, 0.05f, 0.95f, 91, 0.1f), 0.2f, 1e-5,
                       "ties go to the value nearest prefer");
}

/* On random scores the tuned threshold is at least as good on the data it
 * was tuned on as every grid value, by metrics_compute's Jaccard. */
Test(metrics, tuned_threshold_beats_every_grid_value)
{
    enum { N = 200, L = 7, STEPS = 19 };
    static float s[N * L];
    static uint8_t y[N * L], p[N * L];
    unsigned x = 7;
    for (int i = 0; i < N * L; i++) {
        x = x * 1664525u + 1013904223u;
        s[i] = (float)(x >> 8) / 16777216.0f;
        y[i] = (x & 0xf) < (s[i] > 0.6f ? 10u : 3u);
    }
    float t = metrics_tune_threshold(s, y, N, L, 0.05f, 0.95f, STEPS, 0.5f);
    Metrics m;
    predict_at_least_one(p, s, N, L, t);
    metrics_compute(&m, y, p, N, L);
    double best = m.jaccard;
    metrics_free(&m);
    for (int k = 0; k < STEPS; k++) {
        predict_at_least_one(p, s, N, L, 0.05f + 0.05f * (float)k);
        metrics_compute(&m, y, p, N, L);
        cr_assert_leq(m.jaccard, best + 1e-12, "threshold %g beats the tuned %g", 0.05 + 0.05 * k, t);
        metrics_free(&m);
    }
}
