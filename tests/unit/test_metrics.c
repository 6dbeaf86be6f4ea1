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

/* Thresholds 0.2, 0.5, 0.9: each label against its own. A movie with none
 * above gets the highest raw score (label 2 at 0.7), not the label nearest
 * its threshold (label 1, 0.02 below). */
Test(metrics, per_label_rule_applies_each_threshold_and_falls_back_to_the_top_score)
{
    const float t[] = {0.2f, 0.5f, 0.9f};
    const float s[] = {0.3f, 0.4f, 0.95f, /* */ 0.15f, 0.48f, 0.7f, /* */ 0.25f, 0.55f, 0.1f};
    const uint8_t want[] = {1, 0, 1, /* */ 0, 0, 1, /* */ 1, 1, 0};
    uint8_t p[9];
    predict_at_least_one_per_label(p, s, 3, 3, t);
    for (int k = 0; k < 9; k++) cr_expect_eq(p[k], want[k], "movie %d label %d", k / 3, k % 3);
}

/* Random scores and labels of n x L movies (an LCG from seed): positives
 * score higher by label-dependent amounts, so labels' best thresholds
 * differ, and labels are sparse enough (about a fifth of them set) that the
 * at-least-one fallback decides many movies. */
static void random_case(float *s, uint8_t *y, int n, int L, unsigned x)
{
    for (int i = 0; i < n * L; i++) {
        x = x * 1664525u + 1013904223u;
        int c = i % L;
        y[i] = (x >> 28) < 2u + (unsigned)c / 2;
        x = x * 1664525u + 1013904223u;
        float u = (float)(x >> 8) / 16777216.0f;
        s[i] = y[i] ? 0.1f * c + 0.5f * u : 0.6f * u * u;
    }
}

/* Equal thresholds are the seed's rule, bit for bit. */
Test(metrics, per_label_rule_with_equal_thresholds_is_the_scalar_rule)
{
    enum { N = 300, L = 6 };
    static float s[N * L];
    static uint8_t y[N * L], a[N * L], b[N * L];
    random_case(s, y, N, L, 11);
    for (float g = 0.05f; g < 1.0f; g += 0.1f) {
        float t[L];
        for (int c = 0; c < L; c++) t[c] = g;
        predict_at_least_one(a, s, N, L, g);
        predict_at_least_one_per_label(b, s, N, L, t);
        cr_expect_eq(memcmp(a, b, sizeof a), 0, "threshold %g", g);
    }
}

/* Label A's positives score 0.855, its negatives 0.655; label B's 0.355
 * and 0.155. One threshold in [0.155, 0.355) gets 0.75 (0.35 nearest 0.5);
 * per label, A moves to [0.655, 0.855) (0.66, nearest 0.35) and every movie
 * is right: Jaccard 1, 0.25 better. B, already right, stays at 0.35. */
Test(metrics, per_label_tuner_finds_each_labels_own_threshold)
{
    const uint8_t y[] = {1, 0, /* */ 0, 1, /* */ 1, 1, /* */ 0, 1};
    float s[8];
    for (int k = 0; k < 8; k++) s[k] = k % 2 == 0 ? (y[k] ? 0.855f : 0.655f) : (y[k] ? 0.355f : 0.155f);
    float one = metrics_tune_probability(s, y, 4, 2, 0.5f);
    cr_assert_float_eq(one, 0.35f, 1e-6, "single threshold %g", one);
    float t[2] = {one, one};
    metrics_tune_probability_per_label(t, s, y, 4, 2);
    cr_expect_float_eq(t[0], 0.66f, 1e-6, "A: %g", t[0]);
    cr_expect_float_eq(t[1], 0.35f, 1e-6, "B: %g", t[1]);
    uint8_t p[8];
    Metrics m;
    predict_at_least_one(p, s, 4, 2, one);
    metrics_compute(&m, y, p, 4, 2);
    cr_expect_float_eq(m.jaccard, 0.75, 1e-12);
    metrics_free(&m);
    predict_at_least_one_per_label(p, s, 4, 2, t);
    metrics_compute(&m, y, p, 4, 2);
    cr_expect_float_eq(m.jaccard, 1.0, 1e-12);
    metrics_free(&m);
}

/* The Jaccard of thresholds t by the plain route: predict, then metrics_compute. */
static double jaccard_of(const float *s, const uint8_t *y, int n, int L, const float *t, uint8_t *p)
{
    predict_at_least_one_per_label(p, s, n, L, t);
    Metrics m;
    metrics_compute(&m, y, p, n, L);
    double j = m.jaccard;
    metrics_free(&m);
    return j;
}

/* The tuner's shortcut gives what the coordinate ascent written plainly
 * (every candidate predicted and scored whole) gives, value for value, and
 * never less than the single threshold it starts from. Even seeds scale
 * the scores down, to the low end of the grid. */
Test(metrics, per_label_tuner_is_the_plain_coordinate_ascent)
{
    enum { N = 300, L = 6 };
    static float s[N * L];
    static uint8_t y[N * L], p[N * L];
    for (unsigned seed = 1; seed <= 4; seed++) {
        random_case(s, y, N, L, seed);
        for (int i = 0; i < N * L && seed % 2 == 0; i++) s[i] *= 0.3f;
        float one = metrics_tune_probability(s, y, N, L, 0.5f), fast[L], plain[L];
        for (int c = 0; c < L; c++) fast[c] = plain[c] = one;
        metrics_tune_probability_per_label(fast, s, y, N, L);
        for (int pass = 0; pass < 2; pass++) {
            int changed = 0;
            for (int c = 0; c < L; c++) {
                float cur = plain[c], best_t = cur;
                double best = jaccard_of(s, y, N, L, plain, p);
                for (int k = 0; k < 91; k++) {
                    float g = (float)(0.05f + ((double)0.95f - 0.05f) * k / 90);
                    plain[c] = g;
                    double j = jaccard_of(s, y, N, L, plain, p);
                    if (j > best || (j == best && fabsf(g - cur) < fabsf(best_t - cur))) {
                        best = j;
                        best_t = g;
                    }
                }
                plain[c] = best_t;
                changed |= best_t != cur;
            }
            if (!changed) break;
        }
        for (int c = 0; c < L; c++) cr_expect_eq(fast[c], plain[c], "seed %u label %d: %g, plainly %g", seed, c, fast[c], plain[c]);
        float start[L];
        for (int c = 0; c < L; c++) start[c] = one;
        cr_expect_geq(jaccard_of(s, y, N, L, fast, p), jaccard_of(s, y, N, L, start, p), "seed %u", seed);
    }
}
