/* genre baseline end to end on a tiny prepared dataset, and its input
 * errors: each must end the command with exit status 1 and a message. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/eval/metrics.h"
#include "src/eval/predictions.h"
#include "tests/testutil.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Eight movies, two genres that their words give away. */
static const char *train =
    "{\"title\":\"a\",\"year\":2000,\"text\":\"Space ships and aliens in orbit.\",\"labels\":[\"SciFi\"]}\n"
    "{\"title\":\"b\",\"year\":2000,\"text\":\"Aliens attack the space station.\",\"labels\":[\"SciFi\"]}\n"
    "{\"title\":\"c\",\"year\":2000,\"text\":\"A robot explores space.\",\"labels\":[\"SciFi\"]}\n"
    "{\"title\":\"d\",\"year\":2000,\"text\":\"Two lovers meet in Paris.\",\"labels\":[\"Romance\"]}\n"
    "{\"title\":\"e\",\"year\":2000,\"text\":\"A love story of two hearts.\",\"labels\":[\"Romance\"]}\n"
    "{\"title\":\"f\",\"year\":2000,\"text\":\"Lovers find love at last.\",\"labels\":[\"Romance\"]}\n"
    "{\"title\":\"g\",\"year\":2000,\"text\":\"Love among the aliens in space.\",\"labels\":[\"SciFi\",\"Romance\"]}\n"
    "{\"title\":\"h\",\"year\":2000,\"text\":\"A robot in love.\",\"labels\":[\"SciFi\",\"Romance\"]}\n";
static const char *held =
    "{\"title\":\"x\",\"year\":2001,\"text\":\"Aliens and a robot in space.\",\"labels\":[\"SciFi\"]}\n"
    "{\"title\":\"y\",\"year\":2001,\"text\":\"Two lovers and their love.\",\"labels\":[\"Romance\"]}\n";

static void setup(void)
{
    fresh_tmp_dir(dir, sizeof dir, "baseline");
    put("labels.txt", "Romance\nSciFi\n");
    put("train.jsonl", train);
    put("val.jsonl", held);
    put("test.jsonl", held);
}

/* `genre baseline` with these settings: its arguments in argv (8 or 9). */
typedef struct {
    char data[96], out[96], m[32], f[32];
    char *argv[10];
    int argc;
} Args;

static void args(Args *a, const char *model, const char *features, const char *extra)
{
    snprintf(a->data, sizeof a->data, "data=%s", dir);
    snprintf(a->out, sizeof a->out, "%s/run", dir);
    snprintf(a->m, sizeof a->m, "model=%s", model);
    snprintf(a->f, sizeof a->f, "features=%s", features);
    char *argv[] = {"baseline", "--out", a->out, a->data, a->m, a->f, "w2v.min_count=1", "threads=1", (char *)extra, NULL};
    memcpy(a->argv, argv, sizeof argv);
    a->argc = extra ? 9 : 8;
}

static int run(const char *model, const char *features, const char *extra)
{
    Args a;
    args(&a, model, features, extra);
    return cmd_baseline(a.argc, a.argv);
}

/* The command must end with exit status 1 and a message containing want
 * (which names the file or key at fault), not with any earlier error. */
static void expect_error(const char *model, const char *features, const char *extra, const char *want)
{
    Args a;
    args(&a, model, features, extra);
    CmdCall call = {cmd_baseline, a.argc, a.argv};
    char err[4096];
    int rc = run_captured(call_cmd, &call, err, sizeof err);
    cr_expect_eq(rc, 1, "exit status %d, stderr: %s", rc, err);
    cr_expect(strstr(err, want) != NULL, "stderr lacks \"%s\": %s", want, err);
}

/* Each model writes its own run: the directory is removed before each, so
 * a metrics.json left by the previous model cannot stand in for it. */
Test(baseline_cmd, every_model_runs_and_writes_metrics, .init = setup)
{
    const char *runs[][2] = {{"logreg", "tfidf"}, {"logreg", "bow"}, {"svm", "tfidf"}, {"knn", "tfidf"},
                             {"logreg", "word2vec"}};
    for (int r = 0; r < 5; r++) {
        char path[160], cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s/run", dir);
        cr_assert_eq(system(cmd), 0);
        cr_assert_eq(run(runs[r][0], runs[r][1], "knn.k=3"), 0, "%s %s", runs[r][0], runs[r][1]);
        json_error_t e;
        snprintf(path, sizeof path, "%s/run/metrics.json", dir);
        json_t *m = json_load_file(path, 0, &e);
        cr_assert_not_null(m, "%s %s: %s: %s", runs[r][0], runs[r][1], path, e.text);
        for (int k = 0; k < 2; k++) {
            const char *part = k ? "test" : "val";
            cr_expect(json_is_number(json_object_get(json_object_get(m, part), "jaccard")),
                      "%s %s: %s has no %s.jaccard", runs[r][0], runs[r][1], path, part);
        }
        json_decref(m);
        snprintf(path, sizeof path, "%s/run/config.json", dir);
        json_t *c = json_load_file(path, 0, &e);
        cr_assert_not_null(c, "%s: %s", path, e.text);
        const char *model = json_string_value(json_object_get(c, "model"));
        const char *features = json_string_value(json_object_get(c, "features"));
        cr_expect(model && features && !strcmp(model, runs[r][0]) && !strcmp(features, runs[r][1]),
                  "%s: model %s, features %s; expected %s %s", path, model ? model : "(none)",
                  features ? features : "(none)", runs[r][0], runs[r][1]);
        json_decref(c);
    }
}

/* run/metrics.json's val Jaccard and threshold. */
static void read_val(double *jaccard, double *threshold, int *tuned)
{
    char path[160];
    snprintf(path, sizeof path, "%s/run/metrics.json", dir);
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    cr_assert_not_null(o, "%s: %s", path, e.text);
    *jaccard = json_number_value(json_object_get(json_object_get(o, "val"), "jaccard"));
    cr_assert(json_is_number(json_object_get(o, "threshold")), "%s: no threshold", path);
    *threshold = json_number_value(json_object_get(o, "threshold"));
    *tuned = json_is_true(json_object_get(o, "threshold_tuned"));
    json_decref(o);
}

/* Val picks the threshold (the margin for the SVM), within its grid, and
 * does at least as well on val as the configured default. */
Test(baseline_cmd, tuned_threshold_is_chosen_on_val, .init = setup)
{
    const char *models[] = {"logreg", "svm"};
    for (int k = 0; k < 2; k++) {
        double j0, t0, j1, t1;
        int tuned;
        cr_assert_eq(run(models[k], "tfidf", NULL), 0);
        read_val(&j0, &t0, &tuned);
        cr_expect(!tuned);
        cr_expect_float_eq(t0, k ? 0.0 : 0.5, 1e-12);
        cr_assert_eq(run(models[k], "tfidf", "tune_threshold=true"), 0);
        read_val(&j1, &t1, &tuned);
        cr_expect(tuned);
        cr_expect(k ? t1 >= -1 && t1 <= 1 : t1 >= 0.05 - 1e-6 && t1 <= 0.95 + 1e-6, "%s: %g", models[k], t1);
        cr_expect_geq(j1, j0, "%s: tuned val Jaccard %g < default's %g", models[k], j1, j0);
    }
}

/* test_predictions.jsonl in genre train's format (its reader reads it):
 * one line per test movie in test.jsonl's order, the words the baseline
 * kept as tokens, the predictions those of the seed's rule at the threshold
 * metrics.json records (val's choice), and their mean Jaccard the test
 * Jaccard of metrics.json. */
Test(baseline_cmd, test_predictions_are_those_of_the_test_metrics, .init = setup)
{
    const char *models[] = {"logreg", "svm"};
    char path[160];
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, path), 0, "%s", err_msg());
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(run(models[k], "tfidf", "tune_threshold=true"), 0);
        double val_jaccard, threshold;
        int tuned;
        read_val(&val_jaccard, &threshold, &tuned);
        cr_expect(tuned);
        snprintf(path, sizeof path, "%s/run/metrics.json", dir);
        json_error_t e;
        json_t *o = json_load_file(path, 0, &e);
        cr_assert_not_null(o, "%s: %s", path, e.text);
        double test_jaccard = json_number_value(json_object_get(json_object_get(o, "test"), "jaccard"));
        json_decref(o);
        snprintf(path, sizeof path, "%s/run/test_predictions.jsonl", dir);
        Predictions p;
        cr_assert_eq(predictions_read(&p, path, &ls), 0, "%s: %s", models[k], err_msg());
        cr_assert_eq(p.n, 2);
        cr_expect_str_eq(p.titles[0], "x");
        cr_expect_str_eq(p.titles[1], "y");
        cr_expect_eq(p.tokens[0], 5, "Aliens and robot in space: 'a' is under words.min_chars");
        cr_expect_eq(p.tokens[1], 5);
        cr_expect_eq(p.chars[0], 28);
        uint8_t want[2 * 2];
        predict_at_least_one(want, p.scores, p.n, ls.n_labels, (float)threshold);
        cr_expect_arr_eq(p.pred, want, sizeof want, "%s: not the predictions at the threshold %g", models[k], threshold);
        double jac = 0;
        for (int i = 0; i < p.n; i++) jac += metrics_sample_jaccard(p.y + i * 2, p.pred + i * 2, 2) / p.n;
        cr_expect_float_eq(jac, test_jaccard, 1e-12, "%s", models[k]);
        predictions_free(&p);
    }
    labels_free(&ls);
}

Test(baseline_cmd, cross_validation_writes_cv_json, .init = setup)
{
    char twice[4096];
    snprintf(twice, sizeof twice, "%s%s", train, train);
    put("train.jsonl", twice);
    cr_assert_eq(run("logreg", "bow", "cv_folds=2"), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/run/cv.json", dir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
}

Test(baseline_cmd, empty_training_set, .init = setup)
{
    put("train.jsonl", "");
    char want[160];
    snprintf(want, sizeof want, "genre: %s/train.jsonl: the training set is empty", dir);
    expect_error("logreg", "tfidf", NULL, want);
}

Test(baseline_cmd, val_genre_missing_from_train, .init = setup)
{
    put("labels.txt", "Horror\nRomance\nSciFi\n");
    put("val.jsonl", "{\"title\":\"z\",\"year\":1,\"text\":\"Boo.\",\"labels\":[\"Horror\"]}\n");
    char want[160];
    snprintf(want, sizeof want, "genre: %s/val.jsonl: genre 'Horror' (1 movies) never occurs in the training set", dir);
    expect_error("logreg", "tfidf", NULL, want);
}

Test(baseline_cmd, unknown_key, .init = setup)
{
    expect_error("logreg", "tfidf", "linear.gamma=2", "unknown key 'linear.gamma'");
}

Test(baseline_cmd, wrong_type, .init = setup)
{
    expect_error("logreg", "tfidf", "linear.C=big", "'linear.C' must be a number");
}

Test(baseline_cmd, out_of_range, .init = setup)
{
    expect_error("knn", "tfidf", "knn.k=0", "override 'knn.k=0': key 'knn.k' must be in [1, 1000000000]");
}
