/* genre train / eval / predict end to end on the tiny fixture DistilBERT
 * (dim 32, 16 positions) and a small synthetic dataset whose genres follow
 * from its words, so a few steps are enough to see learning. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/classifier.h"
#include "src/eval/metrics.h"
#include "src/eval/predictions.h"
#include "src/cli/commands.h"
#include "src/core/err.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"

static char root[128];

static const char *at(const char *name) { return path_in(root, name); }

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void copy(const char *from, const char *to)
{
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "cp %s %s", from, to) > 0);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
}

/* The init directory (the fixture model plus a 100-token vocabulary) and a
 * dataset: words w0..w29 mean Alpha, w30..w59 Beta, w60..w89 Gamma. */
static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/genre-train-%d", (int)getpid());
    mkdir(root, 0777);
    mkdir(at("init"), 0777);
    mkdir(at("data"), 0777);
    copy(TINY "/config.json", at("init/config.json"));
    copy(TINY "/model.safetensors", at("init/model.safetensors"));
    FILE *v = fopen(at("init/vocab.txt"), "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", v);
    for (int i = 0; i < 95; i++) fprintf(v, "w%d\n", i);
    fclose(v);
    put(at("data/labels.txt"), "Alpha\nBeta\nGamma\n");
    const char *parts[] = {"train", "val", "test"};
    const int sizes[] = {48, 12, 12};
    unsigned x = 12345;
    for (int p = 0; p < 3; p++) {
        char name[32];
        snprintf(name, sizeof name, "data/%s.jsonl", parts[p]);
        FILE *f = fopen(at(name), "w");
        for (int i = 0; i < sizes[p]; i++) {
            int g = i % 3, g2 = (i / 3) % 3;
            fprintf(f, "{\"title\": \"m%d\", \"year\": 2000, \"text\": \"", i);
            for (int w = 0; w < 6; w++) {
                x = x * 1103515245u + 12345u;
                int genre = w < 4 ? g : g2;
                fprintf(f, "%sw%u", w ? " " : "", 30 * genre + (x >> 16) % 30);
            }
            const char *names[] = {"Alpha", "Beta", "Gamma"};
            fprintf(f, "\", \"labels\": [\"%s\"", names[g]);
            if (g2 != g) fprintf(f, ", \"%s\"", names[g2]);
            fputs("]}\n", f);
        }
        fclose(f);
    }
}

static void cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* Starts `genre train` in a child with extra overrides (stderr to err.txt). */
static pid_t start_train(const char *out, const char *const *extra, int n_extra)
{
    char data[300], init[300];
    snprintf(data, sizeof data, "data=%s", at("data"));
    snprintf(init, sizeof init, "init=%s", at("init"));
    char *argv[32] = {"train", "--out", (char *)out, data, init, "max_len=16", "batch_size=4",
                      "epochs=6", "lr=3e-3", "seed=7", "loss.type=bce"};
    int argc = 11;
    for (int i = 0; i < n_extra; i++) argv[argc++] = (char *)extra[i];
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(at("err.txt"), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        _exit(cmd_train(argc, argv));
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Runs `genre train` with extra overrides; returns its exit status and
 * leaves its stderr in err.txt. */
static int train(const char *out, const char *const *extra, int n_extra)
{
    return wait_exit(start_train(out, extra, n_extra));
}

/* Runs cmd_train with exactly these arguments in a child. */
static int train_args(char **argv, int argc)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(at("err.txt"), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        _exit(cmd_train(argc, argv));
    }
    return wait_exit(pid);
}

static void expect_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    cr_assert_eq(stat(a, &sa), 0, "%s missing", a);
    cr_assert_eq(stat(b, &sb), 0, "%s missing", b);
    cr_assert_eq(sa.st_size, sb.st_size, "%s and %s differ in size", a, b);
    char *x = slurp(a), *y = slurp(b);
    cr_expect_eq(memcmp(x, y, (size_t)sa.st_size), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* The log without its timings, which no two runs share. */
static char *log_without_speed(const char *path)
{
    char *log = slurp(path), *w = log;
    for (char *r = log; *r;) {
        char *cut = strstr(r, ", \"samples_per_s\": ");
        char *eol = strchr(r, '\n');
        if (cut && eol && cut < eol) {
            memmove(w, r, (size_t)(cut - r));
            w += cut - r;
            r = eol;
        }
        eol = strchr(r, '\n');
        size_t n = eol ? (size_t)(eol - r + 1) : strlen(r);
        memmove(w, r, n);
        w += n;
        r += n;
    }
    *w = '\0';
    return log;
}

TestSuite(train, .init = setup, .fini = cleanup);

static double json_path_real(const char *file, const char *part, const char *key);

Test(train, writes_the_run_directory_and_learns)
{
    cr_assert_eq(train(at("run"), NULL, 0), 0, "%s", slurp(at("err.txt")));
    const char *files[] = {"run/config.json", "run/log.jsonl", "run/metrics.json",
                           "run/best/model.safetensors", "run/best/config.json", "run/best/vocab.txt",
                           "run/report/report.md", "run/report/per_genre_prf.svg"};
    struct stat st;
    for (int i = 0; i < 8; i++) cr_expect_eq(stat(at(files[i]), &st), 0, "%s missing", files[i]);

    json_error_t e;
    json_t *m = json_load_file(at("run/metrics.json"), 0, &e);
    cr_assert_not_null(m, "%s", e.text);
    double jac = json_real_value(json_object_get(json_object_get(m, "test"), "jaccard"));
    /* Chance level with at-least-one is about 0.4 here; the words give the genres away. */
    cr_expect(jac > 0.6, "test Jaccard %.3f after 72 steps", jac);
    json_decref(m);

    char *log = slurp(at("run/log.jsonl"));
    cr_expect(strstr(log, "{\"step\": 24, \"epoch\": 2, \"loss\": ") != NULL, "%s", log);
    cr_expect(strstr(log, "\"val\": {") != NULL, "validation rows are logged");
    free(log);

    Classifier c;
    cr_assert_eq(classifier_open(&c, at("run")), 0, "%s", err_msg());
    cr_expect_eq(c.labels.n_labels, 3);
    cr_expect_str_eq(c.labels.names[2], "Gamma");
    classifier_close(&c);
}

/* test_predictions.jsonl holds, movie by movie, what metrics.json sums
 * up: the per-movie Jaccard averages to the test Jaccard, the predictions
 * are the scores through the at-least-one rule at the run's threshold, and
 * the truth is the test set's. */
Test(train, test_predictions_are_the_movies_behind_the_test_metrics)
{
    const char *extra[] = {"epochs=2"};
    cr_assert_eq(train(at("run"), extra, 1), 0, "%s", slurp(at("err.txt")));
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, at("data/labels.txt")), 0, "%s", err_msg());
    Dataset test;
    cr_assert_eq(dataset_load(&test, at("data/test.jsonl"), &ls), 0, "%s", err_msg());
    Predictions p;
    cr_assert_eq(predictions_read(&p, at("run/test_predictions.jsonl"), &ls), 0, "%s", err_msg());
    cr_assert_eq(p.n, test.n);
    uint8_t *again = malloc((size_t)p.n * 3);
    predict_at_least_one(again, p.scores, p.n, 3, 0.5f);
    double sum = 0;
    for (int i = 0; i < p.n; i++) {
        cr_expect_str_eq(p.titles[i], test.titles[i]);
        cr_expect_eq(memcmp(p.y + i * 3, test.y + i * 3, 3), 0, "movie %d: labels differ", i);
        cr_expect_eq(memcmp(p.pred + i * 3, again + i * 3, 3), 0, "movie %d: predictions are not its scores'", i);
        cr_expect_eq(p.chars[i], (int)strlen(test.texts[i]), "movie %d: chars", i);
        cr_expect(p.tokens[i] >= 3 && p.tokens[i] <= 16, "movie %d: %d tokens", i, p.tokens[i]);
        sum += metrics_sample_jaccard(p.y + i * 3, p.pred + i * 3, 3);
    }
    /* metrics.json keeps 8 digits. */
    cr_expect_float_eq(sum / p.n, json_path_real(at("run/metrics.json"), "test", "jaccard"), 1e-8);
    free(again);
    predictions_free(&p);
    dataset_free(&test);
    labels_free(&ls);
}

Test(train, same_seed_same_bits)
{
    cr_assert_eq(train(at("a"), NULL, 0), 0, "%s", slurp(at("err.txt")));
    cr_assert_eq(train(at("b"), NULL, 0), 0, "%s", slurp(at("err.txt")));
    /* Sizes first, then bytes: a longer or shorter file differs too. */
    expect_same_file(at("a/best/model.safetensors"), at("b/best/model.safetensors"));
}

Test(train, nan_loss_stops_naming_the_step)
{
    const char *extra[] = {"lr=1e30", "max_grad_norm=0"};
    cr_expect_eq(train(at("nan"), extra, 2), 1);
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "genre: step ") != NULL && (strstr(err, "NaN") || strstr(err, "Inf")), "%s", err);
    free(err);
}

Test(train, bad_settings_fail_before_any_work)
{
    const char *cuda[] = {"device=cuda"};
    cr_expect_eq(train(at("x"), cuda, 1), 1);
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "device=cuda: ") && strstr(err, "; use device=cpu"), "%s", err);
    free(err);
    const char *typo[] = {"los.type=focal"};
    cr_expect_eq(train(at("x"), typo, 1), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "unknown key 'los.type'") != NULL, "%s", err);
    free(err);
    const char *long_len[] = {"max_len=64"};
    cr_expect_eq(train(at("x"), long_len, 1), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "exceeds the model's 16 positions") != NULL, "%s", err);
    free(err);
    struct stat st;
    cr_expect_neq(stat(at("x/log.jsonl"), &st), 0, "no output from a refused run");
}

/* Runs a command in a child with stdin from `in`, stdout to out.txt. */
static int run_cmd(int (*cmd)(int, char **), char **argv, int argc, const char *in)
{
    put(at("in.txt"), in);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(at("in.txt"), "r", stdin) || !freopen(at("out.txt"), "w", stdout) ||
            !freopen(at("err.txt"), "w", stderr))
            _exit(99);
        _exit(cmd(argc, argv));
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

Test(train, predict_and_eval_use_the_run)
{
    cr_assert_eq(train(at("run"), NULL, 0), 0, "%s", slurp(at("err.txt")));
    char *pred[] = {"predict", "--model", (char *)at("run"), "--top", "2", "--max-len", "16"};
    cr_assert_eq(run_cmd(cmd_predict, pred, 7, "w1 w2 w3 w4\nw61 w62 w63 w64\n"), 0, "%s", slurp(at("err.txt")));
    char *out = slurp(at("out.txt"));
    /* One JSON line per text, at least one genre each, two scores with --top 2. */
    char *line = out;
    for (int k = 0; k < 2; k++) {
        char *end = strchr(line, '\n');
        cr_assert_not_null(end, "%s", out);
        *end = '\0';
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        cr_assert_not_null(o, "%s: %s", line, e.text);
        cr_expect_geq(json_array_size(json_object_get(o, "genres")), 1, "%s", line);
        cr_expect_eq(json_object_size(json_object_get(o, "scores")), 2, "%s", line);
        json_decref(o);
        line = end + 1;
    }
    cr_expect_str_eq(line, "");
    free(out);

    char *ev[] = {"eval", "--model", (char *)at("run"), "--data", (char *)at("data/test.jsonl"), "--max-len", "16"};
    cr_assert_eq(run_cmd(cmd_eval, ev, 7, ""), 0, "%s", slurp(at("err.txt")));
    out = slurp(at("out.txt"));
    cr_expect(strstr(out, "Jaccard") != NULL, "%s", out);
    free(out);
    char *bad[] = {"predict", "--model", (char *)at("run"), "--threshold", "1.5"};
    cr_expect_eq(run_cmd(cmd_predict, bad, 5, ""), 1);
}

static double json_path_real(const char *file, const char *part, const char *key)
{
    json_error_t e;
    json_t *o = json_load_file(file, 0, &e);
    cr_assert_not_null(o, "%s: %s", file, e.text);
    json_t *v = json_object_get(part ? json_object_get(o, part) : o, key);
    cr_assert(json_is_number(v), "%s: no %s%s%s", file, part ? part : "", part ? "." : "", key);
    double x = json_number_value(v);
    json_decref(o);
    return x;
}

/* tune_threshold: val picks the threshold, no grid value does better on
 * val, and the model directory keeps it for eval and predict. */
Test(train, tuned_threshold_is_chosen_on_val_and_kept_with_the_model)
{
    const char *extra[] = {"epochs=2", "tune_threshold=true", "loss.type=focal"};
    cr_assert_eq(train(at("run"), extra, 3), 0, "%s", slurp(at("err.txt")));
    double t = json_path_real(at("run/metrics.json"), NULL, "threshold");
    double val = json_path_real(at("run/metrics.json"), "val", "jaccard");
    /* Focal loss keeps probabilities low: val moves the threshold below 0.5. */
    cr_expect(t >= 0.05 - 1e-6 && t < 0.5, "threshold %g", t);
    cr_expect_float_eq(json_path_real(at("run/best/config.json"), NULL, "genre_threshold"), t, 1e-6);

    char *own[] = {"eval", "--model", (char *)at("run"), "--data", (char *)at("data/val.jsonl"),
                   "--max-len", "16", "--out", (char *)at("own")};
    cr_assert_eq(run_cmd(cmd_eval, own, 9, ""), 0, "%s", slurp(at("err.txt")));
    double own_val = json_path_real(at("own/metrics.json"), "test", "jaccard");
    /* eval --tune-threshold on val lands on the same threshold. */
    char *retune[] = {"eval", "--model", (char *)at("run"), "--data", (char *)at("data/val.jsonl"),
                      "--max-len", "16", "--tune-threshold"};
    cr_assert_eq(run_cmd(cmd_eval, retune, 8, ""), 0, "%s", slurp(at("err.txt")));
    cr_expect_float_eq(json_path_real(at("run/best/config.json"), NULL, "genre_threshold"), t, 1e-6);
    cr_expect_float_eq(own_val, val, 1e-7, "eval with the model's threshold: val Jaccard %.6f, train's %.6f (t %g)",
                       own_val, val, t);
    for (int k = 1; k < 19; k++) {
        char thr[16];
        snprintf(thr, sizeof thr, "%.2f", 0.05 * k);
        char *fixed[] = {"eval", "--model", (char *)at("run"), "--data", (char *)at("data/val.jsonl"),
                         "--max-len", "16", "--out", (char *)at("fixed"), "--threshold", thr};
        cr_assert_eq(run_cmd(cmd_eval, fixed, 11, ""), 0, "%s", slurp(at("err.txt")));
        cr_expect_leq(json_path_real(at("fixed/metrics.json"), "test", "jaccard"), val + 1e-9,
                      "threshold %s beats the tuned %g on val", thr, t);
    }
}

/* state.json's integer `key` in the checkpoint directory `dir`. */
static long state_int(const char *dir, const char *key)
{
    char path[300];
    snprintf(path, sizeof path, "%s/state.json", dir);
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    cr_assert_not_null(o, "%s: %s", path, e.text);
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s: no integer \"%s\"", path, key);
    long x = (long)json_integer_value(v);
    json_decref(o);
    return x;
}

/* The run is killed with SIGKILL as soon as its first mid-epoch checkpoint
 * exists (step 5 of 12 per epoch), wherever it is by then; the resumed run
 * must end with the same bits as an uninterrupted one. The checkpoint the
 * kill left must be a mid-epoch one (checkpoint_every's, batch > 0): were
 * checkpoint_every ignored, the first checkpoint would be the epoch's end
 * and the resume would test no mid-epoch position. A kill that lands, late,
 * just after an epoch's end is retried, twice at most. */
Test(train, resume_after_sigkill_is_bit_identical)
{
    const char *extra[] = {"epochs=10", "checkpoint_every=5"};
    cr_assert_eq(train(at("whole"), extra, 2), 0, "%s", slurp(at("err.txt")));

    long step = 0, batch = 0;
    for (int attempt = 0; attempt < 3 && batch == 0; attempt++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", at("cut"));
        cr_assert_eq(system(cmd), 0);
        pid_t pid = start_train(at("cut"), extra, 2);
        struct stat st;
        for (int i = 0; i < 200000 && stat(at("cut/last/state.json"), &st) != 0; i++) usleep(50);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "the run ended before it could be killed: %s", slurp(at("err.txt")));
        cr_assert_neq(stat(at("cut/metrics.json"), &st), 0, "a killed run has no metrics");
        step = state_int(at("cut/last"), "step");
        batch = state_int(at("cut/last"), "batch");
        if (batch == 0) cr_log_warn("attempt %d: the kill landed after an epoch's end (step %ld)", attempt + 1, step);
    }
    cr_assert(batch > 0 && step % 5 == 0 && step % 12 != 0,
              "the kill did not land mid-epoch: last/state.json says step %ld, batch %ld "
              "(is checkpoint_every ignored?)", step, batch);
    cr_log_info("killed with last/ at step %ld, batch %ld of 12", step, batch);

    char *resume[] = {"train", "--resume", (char *)at("cut")};
    cr_assert_eq(train_args(resume, 3), 0, "%s", slurp(at("err.txt")));
    const char *same[] = {"best/model.safetensors", "last/model.safetensors", "last/optimizer.safetensors",
                          "metrics.json", "config.json", "best/config.json", "test_predictions.jsonl"};
    for (int i = 0; i < 7; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "whole/%s", same[i]);
        snprintf(b, sizeof b, "cut/%s", same[i]);
        expect_same_file(at(a), at(b));
    }
    char *la = log_without_speed(at("whole/log.jsonl")), *lb = log_without_speed(at("cut/log.jsonl"));
    cr_expect_str_eq(la, lb, "the resumed log differs");
    cr_expect(strstr(la, "{\"step\": 120, \"epoch\": 10, \"loss\": ") != NULL, "%s", la);
    free(la);
    free(lb);
    char *state = slurp(at("cut/last/state.json"));
    cr_expect(strstr(state, "\"step\": 120") != NULL, "%s", state);
    free(state);
}

Test(train, resume_refuses_what_it_cannot_continue)
{
    char *none[] = {"train", "--resume", (char *)at("nothing")};
    cr_expect_eq(train_args(none, 3), 1);
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "nothing/config.json") != NULL, "%s", err);
    free(err);

    const char *extra[] = {"epochs=1"};
    cr_assert_eq(train(at("run"), extra, 1), 0, "%s", slurp(at("err.txt")));
    char *over[] = {"train", "--resume", (char *)at("run"), "lr=1"};
    cr_expect_eq(train_args(over, 4), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "takes no --config") != NULL, "%s", err);
    free(err);

    put(at("run/last/state.json"), "{\"step\": 3}\n");
    char *bad[] = {"train", "--resume", (char *)at("run")};
    cr_expect_eq(train_args(bad, 3), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "state.json: \"epoch\" missing") != NULL, "%s", err);
    free(err);
}

Test(train, export_writes_a_model_directory)
{
    cr_assert_eq(train(at("run"), NULL, 0), 0, "%s", slurp(at("err.txt")));
    char *ex[] = {"export", "--model", (char *)at("run"), "--out", (char *)at("hf")};
    cr_assert_eq(run_cmd(cmd_export, ex, 5, ""), 0, "%s", slurp(at("err.txt")));
    expect_same_file(at("run/best/model.safetensors"), at("hf/model.safetensors"));
    expect_same_file(at("run/best/vocab.txt"), at("hf/vocab.txt"));
    char *cfg = slurp(at("hf/config.json"));
    cr_expect(strstr(cfg, "\"2\": \"Gamma\"") != NULL, "%s", cfg);
    free(cfg);

    /* --labels puts a fresh head of that many genres on an encoder. */
    char *start[] = {"export", "--model", (char *)at("init"), "--out", (char *)at("start"),
                     "--labels", (char *)at("data/labels.txt")};
    cr_assert_eq(run_cmd(cmd_export, start, 7, ""), 0, "%s", slurp(at("err.txt")));
    Classifier c;
    cr_assert_eq(classifier_open(&c, at("start")), 0, "%s", err_msg());
    cr_expect_eq(c.weights.lay.cfg.num_labels, 3);
    cr_expect_str_eq(c.labels.names[1], "Beta");
    classifier_close(&c);
}

/* Runs `genre train` with GENRE_FAILPOINT=failpoint in the child. */
static int train_failing(const char *out, const char *failpoint, const char *const *extra, int n_extra)
{
    setenv("GENRE_FAILPOINT", failpoint, 1);
    pid_t pid = start_train(out, extra, n_extra);
    unsetenv("GENRE_FAILPOINT");
    return wait_exit(pid);
}

/* An error below the trainer stops the run with one line naming it, and
 * leaves the last good checkpoint as it was: resuming from it ends exactly
 * as the uninterrupted run. A failing backend step, then a failing write
 * (the third directory commit: last/ at steps 5 and 10, then best/ at 12). */
Test(train, an_error_below_the_trainer_keeps_the_last_good_checkpoint)
{
    const char *extra[] = {"epochs=2", "checkpoint_every=5"};
    cr_assert_eq(train(at("whole"), extra, 2), 0, "%s", slurp(at("err.txt")));
    const char *failpoints[] = {"backend_step:8", "atomic_dir_commit:3"};
    const char *messages[] = {"genre: backend_step: injected failure (GENRE_FAILPOINT)\n",
                              "genre: atomic_dir_commit: injected failure (GENRE_FAILPOINT)\n"};
    const char *steps[] = {"\"step\": 5,", "\"step\": 10,"};
    for (int k = 0; k < 2; k++) {
        char dir[32];
        snprintf(dir, sizeof dir, "cut%d", k);
        cr_assert_eq(train_failing(at(dir), failpoints[k], extra, 2), 1, "%s", slurp(at("err.txt")));
        char *err = slurp(at("err.txt"));
        cr_expect(strlen(err) >= strlen(messages[k]) && !strcmp(err + strlen(err) - strlen(messages[k]), messages[k]),
                  "%s", err);
        free(err);
        char path[64];
        snprintf(path, sizeof path, "%s/last/state.json", dir);
        char *state = slurp(at(path));
        cr_assert_not_null(state, "no last/ left");
        cr_expect(strstr(state, steps[k]) != NULL, "last/ is not the checkpoint before the failure: %s", state);
        free(state);
        struct stat st;
        snprintf(path, sizeof path, "%s/metrics.json", dir);
        cr_expect_neq(stat(at(path), &st), 0, "a failed run has no metrics");

        char *resume[] = {"train", "--resume", (char *)at(dir)};
        cr_assert_eq(train_args(resume, 3), 0, "%s", slurp(at("err.txt")));
        const char *same[] = {"best/model.safetensors", "last/optimizer.safetensors", "metrics.json"};
        for (int i = 0; i < 3; i++) {
            char a[64], b[64];
            snprintf(a, sizeof a, "whole/%s", same[i]);
            snprintf(b, sizeof b, "%s/%s", dir, same[i]);
            expect_same_file(at(a), at(b));
        }
    }
}

/* Whether any "*.tmp.*" leftover is under dir. */
static int has_tmp_leftovers(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find %s -name '*.tmp.*' | grep -q .", dir);
    return system(cmd) == 0;
}

/* A finished run, a directory of someone else's files: neither is touched
 * by a new run; --force replaces only once the new run has finished. */
Test(train, a_new_run_never_destroys_what_is_in_its_directory)
{
    const char *extra[] = {"epochs=1"};
    cr_assert_eq(train(at("run"), extra, 1), 0, "%s", slurp(at("err.txt")));
    char *model = slurp(at("run/best/model.safetensors"));
    cr_expect_eq(train(at("run"), extra, 1), 1, "a second run into a finished one");
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "run: already holds a genre train output; continue it with `genre train --resume ") &&
              strstr(err, "or pass --force to replace it"), "%s", err);
    free(err);
    char *again = slurp(at("run/best/model.safetensors"));
    cr_expect(again && !strcmp(again, model) && strlen(again) == strlen(model), "the finished run was touched");
    free(again);

    mkdir(at("mine"), 0777);
    put(at("mine/notes.txt"), "mine\n");
    cr_expect_eq(train(at("mine"), extra, 1), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "mine: is not empty and was not made by this command; choose another --out"), "%s", err);
    free(err);
    char *notes = slurp(at("mine/notes.txt"));
    cr_expect_str_eq(notes, "mine\n");
    free(notes);

    /* --force: a run that fails leaves the old one as it was... */
    const char *nan[] = {"epochs=1", "--force", "lr=1e30", "max_grad_norm=0"};
    cr_expect_eq(train(at("run"), nan, 4), 1);
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "is as it was)") != NULL, "%s", err);
    free(err);
    again = slurp(at("run/best/model.safetensors"));
    cr_expect(again && strlen(again) == strlen(model) && !memcmp(again, model, strlen(model)),
              "a failed --force run damaged the old one");
    free(again);
    cr_expect(!has_tmp_leftovers(root), "a failed --force run left its work behind");
    /* ...and one that finishes replaces it whole. */
    const char *other[] = {"epochs=1", "--force", "seed=99"};
    cr_expect_eq(train(at("run"), other, 3), 0, "%s", slurp(at("err.txt")));
    char *marker = slurp(at("run/.genre")), *config = slurp(at("run/config.json"));
    cr_expect(marker && !strcmp(marker, "train\n"), "%s", marker ? marker : "no marker");
    cr_expect(strstr(config, "\"seed\": 99") != NULL, "%s", config);
    free(marker);
    free(config);
    cr_expect(!has_tmp_leftovers(root));
    free(model);
}

static pid_t start_genre(char *const *argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own stderr: the second writer's goes to err.txt meanwhile. */
        if (!freopen(at("genre.err"), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        execv("bin/genre", argv);
        _exit(98);
    }
    return pid;
}

/* Lines of a file (0 if it is missing). */
static int count_lines(const char *path)
{
    char *s = slurp(path);
    int n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

/* Ctrl-C stops bin/genre train at a step boundary with a checkpoint there
 * and nothing half-written; a second writer meanwhile is refused; the
 * resumed run ends as the uninterrupted one. */
Test(train, ctrl_c_checkpoints_and_a_second_writer_is_refused, .timeout = 300)
{
    char data[300], init[300];
    snprintf(data, sizeof data, "data=%s", at("data"));
    snprintf(init, sizeof init, "init=%s", at("init"));
    char *argv[] = {"bin/genre", "train", "--out", (char *)at("cut"), data, init, "max_len=16", "batch_size=4",
                    "epochs=8", "lr=3e-3", "seed=7", "loss.type=bce", NULL};
    argv[3] = strdup(at("cut")); /* at() reuses its buffers */
    pid_t pid = start_genre(argv);
    for (int i = 0; i < 400000 && count_lines(at("cut/log.jsonl")) < 5; i++) usleep(50);
    char *resume[] = {"train", "--resume", (char *)at("cut")};
    cr_expect_eq(train_args(resume, 3), 1, "a second writer was let in");
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "cut: another genre process is writing it") != NULL, "%s", err);
    free(err);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, slurp(at("genre.err")));
    err = slurp(at("genre.err"));
    char *at_step = strstr(err, "interrupted (signal 2) at step ");
    cr_assert(at_step && strstr(err, "continue with `genre train --resume "), "%s", err);
    long step = atol(at_step + strlen("interrupted (signal 2) at step "));
    free(err);
    char *state = slurp(at("cut/last/state.json")), want[64];
    snprintf(want, sizeof want, "\"step\": %ld,", step);
    cr_expect(state && strstr(state, want), "last/ is not at step %ld: %s", step, state ? state : "");
    free(state);
    cr_expect(!has_tmp_leftovers(at("cut")), "temporary files left behind");
    cr_assert_eq(train_args(resume, 3), 0, "%s", slurp(at("err.txt")));
    const char *whole_args[] = {"epochs=8"};
    cr_assert_eq(train(at("whole"), whole_args, 1), 0, "%s", slurp(at("err.txt")));
    expect_same_file(at("whole/best/model.safetensors"), at("cut/best/model.safetensors"));
    expect_same_file(at("whole/metrics.json"), at("cut/metrics.json"));
    free(argv[3]);
}

/* Resume checks everything it is handed before any work, and refuses with
 * one line: a position the run cannot reach, a state at odds with the
 * optimizer, a log shorter than the checkpoint says, an edited config.json,
 * data prepared again. */
Test(train, resume_checks_its_checkpoint_before_any_work)
{
    const char *extra[] = {"epochs=2", "checkpoint_every=5", "max_steps=7"};
    cr_assert_eq(train(at("run"), extra, 3), 0, "%s", slurp(at("err.txt")));
    char *state = slurp(at("run/last/state.json")), *log = slurp(at("run/log.jsonl"));
    struct {
        const char *from, *to, *message;
    } edits[] = {
        {"\"step\": 7,", "\"step\": 70,", "state.json: step 70 is not in 1..7"},
        {"\"step\": 7,", "\"step\": 6,", "state.json: step 6, but optimizer.safetensors has taken 7 steps"},
        {"\"batch\": 7,", "\"batch\": 13,", "state.json: epoch 0, batch 13 is not a step boundary of this run"},
    };
    char *run = strdup(at("run")), *resume[] = {"train", "--resume", run}; /* at() reuses its buffers */
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        char *p = strstr(state, edits[k].from);
        cr_assert(p, "%s not in %s", edits[k].from, state);
        char edited[4096];
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(p - state), state, edits[k].to, p + strlen(edits[k].from));
        put(at("run/last/state.json"), edited);
        cr_expect_eq(train_args(resume, 3), 1, "%s accepted", edits[k].to);
        char *err = slurp(at("err.txt"));
        cr_expect(strstr(err, edits[k].message) != NULL, "%s", err);
        free(err);
    }
    put(at("run/last/state.json"), state);
    put(at("run/log.jsonl"), "{\"step\": 1}\n");
    cr_expect_eq(train_args(resume, 3), 1);
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "log.jsonl is shorter than the checkpoint's") != NULL, "%s", err);
    free(err);
    char *cut = slurp(at("run/log.jsonl"));
    cr_expect_str_eq(cut, "{\"step\": 1}\n", "a refused resume wrote the log");
    free(cut);
    put(at("run/log.jsonl"), log);

    /* The settings and the data must be the run's own. */
    char *config = slurp(at("run/config.json")), *lr = strstr(config, "\"lr\": 0.003");
    cr_assert(lr, "%s", config);
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s\"lr\": 0.004%s", (int)(lr - config), config, lr + strlen("\"lr\": 0.003"));
    put(at("run/config.json"), edited);
    cr_expect_eq(train_args(resume, 3), 1, "an edited config.json was accepted");
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "config.json changed since the run started") != NULL, "%s", err);
    free(err);
    put(at("run/config.json"), config);
    char *train_part = slurp(at("data/train.jsonl"));
    FILE *f = fopen(at("data/train.jsonl"), "a");
    fputs("{\"title\": \"new\", \"year\": 2001, \"text\": \"w1 w2\", \"labels\": [\"Alpha\"]}\n", f);
    fclose(f);
    cr_expect_eq(train_args(resume, 3), 1, "changed data was accepted");
    err = slurp(at("err.txt"));
    cr_expect(strstr(err, "changed since the run started (prepared again?)") != NULL, "%s", err);
    free(err);
    put(at("data/train.jsonl"), train_part);

    cr_expect_eq(train_args(resume, 3), 0, "%s", slurp(at("err.txt")));
    free(train_part);
    free(config);
    free(state);
    free(log);
    free(run);
}

/* Every command with --out writes a new or empty directory or its own kind
 * of output, replaced whole; a training run is never overwritten by export,
 * eval or baseline unless --force says so. */
Test(train, other_commands_never_overwrite_a_run)
{
    const char *extra[] = {"epochs=1"};
    cr_assert_eq(train(at("run"), extra, 1), 0, "%s", slurp(at("err.txt")));
    char *run = strdup(at("run")), *hf = strdup(at("hf")), *test = strdup(at("data/test.jsonl"));
    char *metrics = slurp(at("run/metrics.json")), *config = slurp(at("run/config.json"));
    char data[300];
    snprintf(data, sizeof data, "data=%s", at("data"));
    char *ex[] = {"export", "--model", run, "--out", run};
    char *ev[] = {"eval", "--model", run, "--data", test, "--out", run};
    char *bl[] = {"baseline", "--out", run, data, "model=logreg", "features=tfidf"};
    struct {
        int (*cmd)(int, char **);
        char **argv;
        int argc;
    } cmds[] = {{cmd_export, ex, 5}, {cmd_eval, ev, 7}, {cmd_baseline, bl, 6}};
    for (int k = 0; k < 3; k++) {
        cr_expect_eq(run_cmd(cmds[k].cmd, cmds[k].argv, cmds[k].argc, ""), 1, "%s overwrote a run", cmds[k].argv[0]);
        char *err = slurp(at("err.txt"));
        cr_expect(strstr(err, "run: already holds a genre train output; choose another --out, or pass --force") != NULL,
                  "%s: %s", cmds[k].argv[0], err);
        free(err);
    }
    char *m2 = slurp(at("run/metrics.json")), *c2 = slurp(at("run/config.json"));
    cr_expect_str_eq(m2, metrics, "metrics.json was overwritten");
    cr_expect_str_eq(c2, config, "config.json was overwritten");
    free(m2), free(c2);

    /* An export replaces an earlier export whole, and leaves nothing else behind. */
    char *ex2[] = {"export", "--model", run, "--out", hf};
    cr_assert_eq(run_cmd(cmd_export, ex2, 5, ""), 0, "%s", slurp(at("err.txt")));
    put(at("hf/stale.txt"), "from before\n");
    cr_assert_eq(run_cmd(cmd_export, ex2, 5, ""), 0, "%s", slurp(at("err.txt")));
    struct stat st;
    cr_expect_neq(stat(at("hf/stale.txt"), &st), 0, "the export was not replaced whole");
    cr_expect(!has_tmp_leftovers(root));
    free(run), free(hf), free(test), free(metrics), free(config);
}

/* init may name a run directory, as eval, predict and export's --model
 * may: it means the run's best/, which the new run records. */
Test(train, init_takes_a_run_directory)
{
    const char *extra[] = {"epochs=1"};
    cr_assert_eq(train(at("first"), extra, 1), 0, "%s", slurp(at("err.txt")));
    char init[300];
    snprintf(init, sizeof init, "init=%s", at("first"));
    const char *again[] = {"epochs=1", init};
    cr_assert_eq(train(at("second"), again, 2), 0, "%s", slurp(at("err.txt")));
    char *config = slurp(at("second/config.json")), want[400];
    char *best = realpath(at("first/best"), NULL);
    snprintf(want, sizeof want, "\"init\": \"%s\"", best);
    cr_expect(strstr(config, want) != NULL, "%s not in %s", want, config);
    free(best);
    free(config);
}

/* A best/ whose save fails is not announced as saved: the validation line
 * comes without "(best so far, saved)", and the run stops naming the
 * failure (the first directory commit is best/ at step 12). */
Test(train, a_failed_best_save_is_not_announced)
{
    const char *extra[] = {"epochs=2"};
    cr_assert_eq(train_failing(at("cut"), "atomic_dir_commit:1", extra, 1), 1, "%s", slurp(at("err.txt")));
    char *err = slurp(at("err.txt"));
    cr_expect(strstr(err, "step 12: val jaccard ") != NULL, "%s", err);
    cr_expect(strstr(err, "(best so far, saved)") == NULL, "%s", err);
    const char *last = "genre: atomic_dir_commit: injected failure (GENRE_FAILPOINT)\n";
    cr_expect(strlen(err) >= strlen(last) && !strcmp(err + strlen(err) - strlen(last), last), "%s", err);
    free(err);
}
