/* genre sweep on the tiny fixture DistilBERT and the synthetic dataset of
 * test_train.c (genres that follow from the words): expansion and naming,
 * errors before any run, restarts, --parallel, the Slurm array, --collect,
 * baselines (genre baseline runs the groups are compared with), and the
 * bootstrap on cases with a known answer. The sweep runs in a
 * forked child (cmd_sweep, under the sanitizers with the rest); its runs
 * are bin/genre train (GENRE_EXE). */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/cli/commands.h"
#include "src/core/err.h"
#include "src/core/interrupt.h"
#include "src/eval/metrics.h"
#include "src/eval/predictions.h"
#include "src/sweep/spec.h"
#include "src/sweep/stats.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"
#define SWEEP "configs/sweeps/tiny.json"

static char root[128], data_kv[200], init_kv[200];

static const char *at(const char *name) { return path_in(root, name); }

/* The four runs of configs/sweeps/tiny.json, in its order. */
static const char *const tiny_runs[] = {"loss.type=bce,seed=1", "loss.type=bce,seed=2", "loss.type=focal,seed=1",
                                        "loss.type=focal,seed=2"};

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void sh(const char *fmt, const char *arg)
{
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, fmt, arg) > 0);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    free(cmd);
}

/* As test_train.c: the fixture model with a 100-token vocabulary, and
 * words w0..w29 meaning Alpha, w30..w59 Beta, w60..w89 Gamma. */
static void setup(void)
{
    fresh_tmp_dir(root, sizeof root, "sweep");
    mkdir(at("init"), 0777);
    mkdir(at("data"), 0777);
    sh("cp " TINY "/config.json " TINY "/model.safetensors %s", at("init"));
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
            for (int w = 0; w < 6 + i % 4; w++) {
                x = x * 1103515245u + 12345u;
                fprintf(f, "%sw%u", w ? " " : "", 30 * (w < 4 ? g : g2) + (x >> 16) % 30);
            }
            const char *names[] = {"Alpha", "Beta", "Gamma"};
            fprintf(f, "\", \"labels\": [\"%s\"", names[g]);
            if (g2 != g) fprintf(f, ", \"%s\"", names[g2]);
            fputs("]}\n", f);
        }
        fclose(f);
    }
    snprintf(data_kv, sizeof data_kv, "data=%s", at("data"));
    snprintf(init_kv, sizeof init_kv, "init=%s", at("init"));
    char *genre = realpath("bin/genre", NULL);
    cr_assert_not_null(genre, "the runs need bin/genre (make bin/genre)");
    setenv("GENRE_EXE", genre, 1);
    free(genre);
}

static void cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

TestSuite(sweep, .init = setup, .fini = cleanup, .timeout = 240);

/* Runs `genre sweep` with argv (without the command name) in a child,
 * with env ("NAME=VALUE" entries, NULL-terminated, may be NULL) set there;
 * its stdout to out.txt, stderr to err.txt. */
static pid_t start_sweep(char **args, const char *const *env)
{
    char *argv[64] = {"sweep"};
    int argc = 1;
    while (args[argc - 1]) {
        argv[argc] = args[argc - 1];
        argc++;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
        interrupt_install(); /* as bin/genre's main does */
        if (!freopen(at("out.txt"), "w", stdout) || !freopen(at("err.txt"), "w", stderr)) _exit(99);
        exit(cmd_sweep(argc, argv));
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int sweep_env(char **args, const char *const *env) { return wait_exit(start_sweep(args, env)); }

/* The tiny sweep into dir with extra arguments (NULL-terminated). */
static int tiny(const char *dir, const char *const *env, const char *extra1, const char *extra2)
{
    char *d = strdup(dir);
    char *args[] = {"--config", SWEEP, "--out", d, data_kv, init_kv, (char *)extra1, (char *)extra2, NULL};
    int rc = sweep_env(args, env);
    free(d);
    return rc;
}

/* stderr of the last sweep, without LeakSanitizer's note that a forked
 * child lacks its parent's threads (as run_captured in testutil.h). */
static char *err_text(void)
{
    char *err = slurp(at("err.txt")), *note;
    while (err && (note = strstr(err, "False leaks are possible.\n"))) {
        char *start = note;
        while (start > err && start[-1] != '\n') start--;
        if (strncmp(start, "==", 2) != 0) break;
        memmove(start, note + 26, strlen(note + 26) + 1);
    }
    return err;
}
static char *out_text(void) { return slurp(at("out.txt")); }

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    cr_assert_eq(stat(a, &sa), 0, "%s missing", a);
    cr_assert_eq(stat(b, &sb), 0, "%s missing", b);
    cr_expect_eq(sa.st_size, sb.st_size, "%s and %s differ in size", a, b);
    char *x = slurp(a), *y = slurp(b);
    cr_expect(sa.st_size == sb.st_size && !memcmp(x, y, (size_t)sa.st_size), "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* Every output of the two sweep directories, run by run and the summary, byte for byte. */
static void expect_same_sweep(const char *a, const char *b)
{
    const char *files[] = {"metrics.json", "test_predictions.jsonl", "best/model.safetensors", "config.json",
                           "last/optimizer.safetensors"};
    char pa[512], pb[512];
    for (int r = 0; r < 4; r++)
        for (int f = 0; f < 5; f++) {
            snprintf(pa, sizeof pa, "%s/%s/%s", a, tiny_runs[r], files[f]);
            snprintf(pb, sizeof pb, "%s/%s/%s", b, tiny_runs[r], files[f]);
            expect_same_file(pa, pb);
        }
    const char *summary[] = {"summary.md", "summary.csv", "summary.json", "sweep.json"};
    for (int f = 0; f < 4; f++) {
        snprintf(pa, sizeof pa, "%s/%s", a, summary[f]);
        snprintf(pb, sizeof pb, "%s/%s", b, summary[f]);
        expect_same_file(pa, pb);
    }
    glob_t g;
    snprintf(pa, sizeof pa, "%s/plots/*.svg", a);
    cr_assert_eq(glob(pa, 0, NULL, &g), 0, "no plots in %s", a);
    cr_expect_eq(g.gl_pathc, 8, "%zu plots", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        snprintf(pb, sizeof pb, "%s/plots/%s", b, strrchr(g.gl_pathv[i], '/') + 1);
        expect_same_file(g.gl_pathv[i], pb);
    }
    globfree(&g);
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    cr_assert_not_null(o, "%s: %s", path, e.text);
    return o;
}

static double run_metric(const char *dir, const char *run, const char *split, const char *key)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.json", dir, run);
    json_t *o = load_json(path);
    double x = json_number_value(json_object_get(json_object_get(o, split), key));
    json_decref(o);
    return x;
}

/* ---- expansion --------------------------------------------------------------- */

static json_t *resolve(const char *what, int n, const CfgLayer *layers)
{
    Config *c = train_config_resolve(what, n, layers);
    json_t *o = c ? config_to_json(c) : NULL;
    config_free(c);
    return o;
}

static int load(Sweep *s, const char *file_text)
{
    put(at("s.json"), file_text);
    char *over[] = {data_kv, init_kv};
    return sweep_load(s, at("s.json"), train_schema, resolve, baseline_schema, 2, over);
}

/* runs x grid in order (runs outermost, the last axis fastest), each run
 * named by the keys whose values differ, in the schema's order whatever
 * the file's; a key set alike everywhere is no part of a name; groups
 * drop the seed; each run's configuration is base < overrides < runs < grid. */
Test(sweep, grid_expansion_and_names)
{
    Sweep s;
    cr_assert_eq(load(&s, "{\"base\": {\"lr\": 2e-5, \"epochs\": 1, \"max_len\": 16},"
                          " \"runs\": [{\"loss.type\": \"bce\", \"max_steps\": 3},"
                          "          {\"loss\": {\"gamma\": 1.5, \"type\": \"focal\"}, \"max_steps\": 3}],"
                          " \"grid\": {\"seed\": [1, 2, 3], \"lr\": [2e-5, 1e-4]}}"),
                 0, "%s", err_msg());
    cr_assert_eq(s.n_runs, 12);
    const char *want[] = {"loss.type=bce,lr=2e-5,seed=1", "loss.type=bce,lr=1e-4,seed=1",
                          "loss.type=bce,lr=2e-5,seed=2", "loss.type=bce,lr=1e-4,seed=2"};
    for (int r = 0; r < 4; r++) cr_expect_str_eq(s.runs[r].name, want[r]);
    cr_expect_str_eq(s.runs[7].name, "loss.type=focal,loss.gamma=1.5,lr=1e-4,seed=1");
    cr_expect_str_eq(s.runs[7].group, "loss.type=focal,loss.gamma=1.5,lr=1e-4");
    cr_expect_str_eq(s.runs[11].name, "loss.type=focal,loss.gamma=1.5,lr=1e-4,seed=3");
    cr_assert_eq(s.n_groups, 4, "groups: runs that differ only in seed");
    cr_expect_str_eq(s.groups[0], "loss.type=bce,lr=2e-5");
    cr_expect_str_eq(s.groups[3], "loss.type=focal,loss.gamma=1.5,lr=1e-4");
    cr_expect_str_eq(s.groups[s.reference], "loss.type=bce,lr=2e-5", "the default reference is the first group");
    cr_expect_eq(s.n_pairs, 3, "each other group against the reference");
    const json_t *c = s.runs[7].config;
    cr_expect_str_eq(json_string_value(json_dotted(c, "loss.type")), "focal");
    cr_expect_float_eq(json_real_value(json_dotted(c, "loss.gamma")), 1.5, 0);
    cr_expect_float_eq(json_real_value(json_dotted(c, "lr")), 1e-4, 0, "the grid wins over base");
    cr_expect_eq(json_integer_value(json_dotted(c, "seed")), 1);
    cr_expect_eq(json_integer_value(json_dotted(c, "max_steps")), 3);
    cr_expect_eq(json_integer_value(json_dotted(c, "max_len")), 16, "from base");
    char *data = realpath(at("data"), NULL);
    cr_expect_str_eq(json_string_value(json_dotted(c, "data")), data, "data made absolute, as genre train does");
    free(data);
    sweep_free(&s);

    /* Nothing differs: one run, named base; only seeds differ: one group, base. */
    cr_assert_eq(load(&s, "{\"base\": {\"max_len\": 16}}"), 0, "%s", err_msg());
    cr_expect_eq(s.n_runs, 1);
    cr_expect_str_eq(s.runs[0].name, "base");
    sweep_free(&s);
    cr_assert_eq(load(&s, "{\"base\": {}, \"grid\": {\"seed\": [5, 6]}, \"reference\": \"seed=6\"}"), 0, "%s", err_msg());
    cr_expect_str_eq(s.runs[1].name, "seed=6");
    cr_expect_eq(s.n_groups, 1);
    cr_expect_str_eq(s.groups[0], "base");
    cr_expect_eq(s.reference, 0, "a run names its group");
    cr_expect_eq(s.n_pairs, 0);
    sweep_free(&s);
    /* Per-genre thresholds as an axis, on a base that tunes the one. */
    cr_assert_eq(load(&s, "{\"base\": {\"tune_threshold\": true},"
                          " \"grid\": {\"tune_threshold_per_genre\": [false, true]}}"),
                 0, "%s", err_msg());
    cr_expect_eq(s.n_runs, 2);
    cr_expect_str_eq(s.runs[1].name, "tune_threshold_per_genre=true");
    sweep_free(&s);
}

/* An explicit list alone; strings keep only what a directory name may hold. */
Test(sweep, explicit_list_of_runs)
{
    char cmd[600], text[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", at("data"), at("data 2"));
    cr_assert_eq(system(cmd), 0);
    char *data = strdup(at("data"));
    snprintf(text, sizeof text,
             "{\"base\": {\"epochs\": 1, \"data\": \"%s\"}, \"runs\": [{\"oversample\": 0.5, \"best_metric\": \"f1\"},"
             " {\"data\": \"%s\"}, {}], \"reference\": \"best_metric=f1,oversample=0.5\","
             " \"jaccard_diff\": [[\"base\", \"best_metric=f1,oversample=0.5\"]]}", data, at("data 2"));
    Sweep s;
    put(at("s.json"), text);
    char *over[] = {init_kv};
    cr_assert_eq(sweep_load(&s, at("s.json"), train_schema, resolve, baseline_schema, 1, over), 0, "%s", err_msg());
    cr_assert_eq(s.n_runs, 3);
    char *real = realpath(at("data 2"), NULL), want[300];
    snprintf(want, sizeof want, "data=%s", at("data 2"));
    for (char *c = want + 5; *c; c++)
        if (*c == '/' || *c == ' ') *c = '_';
    cr_expect_str_eq(s.runs[0].name, "best_metric=f1,oversample=0.5", "schema order, not the file's");
    cr_expect_str_eq(s.runs[1].name, want);
    cr_expect_str_eq(json_string_value(json_dotted(s.runs[1].config, "data")), real);
    free(real);
    cr_expect_str_eq(s.runs[2].name, "base");
    cr_expect_eq(s.n_groups, 3);
    cr_expect_str_eq(s.groups[s.reference], "best_metric=f1,oversample=0.5");
    cr_assert_eq(s.n_pairs, 1);
    cr_expect_str_eq(s.groups[s.pairs[0][0]], "base");
    cr_expect_str_eq(s.groups[s.pairs[0][1]], "best_metric=f1,oversample=0.5");
    cr_expect_float_eq(json_real_value(json_dotted(s.runs[0].config, "oversample")), 0.5, 0);
    cr_expect_float_eq(json_real_value(json_dotted(s.runs[2].config, "oversample")), 0.0, 0, "the default");
    sweep_free(&s);

    /* A required key that neither the base, the command line nor a run gives. */
    put(at("s.json"), "{\"base\": {}, \"runs\": [{\"epochs\": 2}]}");
    cr_expect_eq(sweep_load(&s, at("s.json"), train_schema, resolve, baseline_schema, 1, over), -1);
    cr_expect(strstr(err_msg(), "s.json: required key 'data' is missing") != NULL, "%s", err_msg());
    free(data);
}

/* Each bad sweep stops before any work with one line naming the file and
 * the key, and leaves no sweep directory behind. */
Test(sweep, invalid_sweeps_fail_before_any_run)
{
    struct {
        const char *text, *message;
    } cases[] = {
        {"{\"base\": {}, \"grid\": {\"sed\": [1, 2]}}", "s.json: grid: unknown key 'sed'"},
        {"{\"base\": {}, \"grid\": {\"loss\": {\"tpye\": [\"bce\"]}}}", "s.json: grid: unknown key 'loss.tpye'"},
        {"{\"base\": {}, \"runs\": [{\"los.type\": \"bce\"}]}", "s.json: runs[0]: unknown key 'los.type'"},
        {"{\"base\": {}, \"runs\": [{}, {\"loss\": {\"gamma\": 30}}]}", "s.json: runs[1]: key 'loss.gamma' must be in [0, 10]"},
        {"{\"base\": {}, \"grid\": {\"loss.type\": [\"bce\", \"mse\"]}}",
         "s.json: grid: key 'loss.type' is \"mse\", expected one of bce|bce_logw|focal|asl"},
        {"{\"base\": {}, \"grid\": {\"seed\": []}}", "s.json: grid: key 'seed' must be a non-empty list"},
        {"{\"base\": {}, \"grid\": {\"seed\": 3}}", "s.json: grid: key 'seed' must be a non-empty list"},
        {"{\"base\": {}, \"runs\": [{\"seed\": 1}], \"grid\": {\"seed\": [2]}}",
         "s.json: key 'seed' is set by runs[0] and swept by grid"},
        {"{\"base\": {}, \"gird\": {\"seed\": [1]}}", "s.json: unknown key 'gird'"},
        {"{\"base\": {}, \"grid\": {\"seed\": [1, 2]}, \"reference\": \"seed=3\"}",
         "s.json: key 'reference' is \"seed=3\", which names no group or run of the sweep (groups: base)"},
        {"{\"base\": {}, \"grid\": {\"seed\": [1, 1]}}", "s.json: runs 0 and 1 are both named 'base'"},
        {"{\"base\": {}, \"bootstrap\": {\"resamples\": 10}}", "s.json: key 'bootstrap.resamples' must be in [100, 1000000]"},
        {"{\"base\": {\"lr\": -1}}", "s.json: base: key 'lr' must be in (0, inf)"},
        {"{\"base\": \"nowhere.json\"}", "s.json: base: nowhere.json: cannot open: No such file or directory"},
        {"{\"base\": {}, \"jaccard_diff\": [[\"base\", \"x\"]]}", "s.json: jaccard_diff[0]: \"x\" names no group"},
        {"{\"base\": {}, \"grid\": {\"lr\": [1e-4, 2e-4]}, \"runs\": 3}", "s.json: key 'runs' must be a non-empty list"},
        {"[1]", "s.json: a sweep must be a JSON object"},
        {"{\"base\": {}, \"grid\": {\"tune_threshold_per_genre\": [false, true]}}",
         "s.json: tune_threshold_per_genre=true needs tune_threshold=true"},
    };
    char *d = strdup(at("out")), *s_json = strdup(at("s.json"));
    char *args[] = {"--config", s_json, "--out", d, data_kv, init_kv, NULL};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        put(s_json, cases[k].text);
        cr_expect_eq(sweep_env(args, NULL), 1, "accepted: %s", cases[k].text);
        char *err = err_text(), want[400];
        snprintf(want, sizeof want, "genre: %s/%s", root, cases[k].message);
        cr_expect(!strncmp(err, want, strlen(want)) && strchr(err, '\n') == err + strlen(err) - 1,
                  "%s\nwant one line starting: %s", err, want);
        free(err);
        cr_expect(!exists(d), "a refused sweep made %s", d);
    }
    /* An override may not set what the sweep sweeps. */
    char *over[] = {"--config", SWEEP, "--out", d, data_kv, init_kv, "seed=9", NULL};
    cr_expect_eq(sweep_env(over, NULL), 1);
    char *err = err_text();
    cr_expect(strstr(err, "genre: override 'seed=9': key 'seed' is swept by " SWEEP) == err, "%s", err);
    free(err);
    cr_expect(!exists(d));
    free(d);
    free(s_json);
}

/* ---- running ------------------------------------------------------------- */

typedef struct {
    off_t size;
    struct timespec mtime;
} Stamp;

static Stamp stamp(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    return (Stamp){st.st_size, st.st_mtim};
}

/* A second sweep over a finished one touches nothing: every run is
 * skipped (sizes and times of its files as they were), and the summary
 * holds the mean and standard deviation of each group's two seeds. */
Test(sweep, finished_runs_are_skipped_and_summarised)
{
    cr_assert_eq(tiny(at("a"), NULL, NULL, NULL), 0, "%s", err_text());
    const char *files[] = {"metrics.json", "test_predictions.jsonl", "best/model.safetensors", "config.json",
                           "log.jsonl", "last/state.json"};
    Stamp before[4][6];
    char path[512];
    for (int r = 0; r < 4; r++)
        for (int f = 0; f < 6; f++) {
            snprintf(path, sizeof path, "%s/%s/%s", at("a"), tiny_runs[r], files[f]);
            before[r][f] = stamp(path);
        }
    usleep(20000); /* a rewrite would now show in the times */
    cr_assert_eq(tiny(at("a"), NULL, NULL, NULL), 0, "%s", err_text());
    char *out = out_text();
    cr_expect(strstr(out, "4 finished (skipped), 0 to run") != NULL, "%s", out);
    for (int r = 0; r < 4; r++) {
        char line[128];
        snprintf(line, sizeof line, "%s: skipped (finished)\n", tiny_runs[r]);
        cr_expect(strstr(out, line) != NULL, "%s", out);
        for (int f = 0; f < 6; f++) {
            snprintf(path, sizeof path, "%s/%s/%s", at("a"), tiny_runs[r], files[f]);
            Stamp now = stamp(path);
            cr_expect(now.size == before[r][f].size && now.mtime.tv_sec == before[r][f].mtime.tv_sec &&
                          now.mtime.tv_nsec == before[r][f].mtime.tv_nsec, "%s was rewritten", path);
        }
    }
    cr_expect(strstr(out, "starting") == NULL, "%s", out);
    free(out);

    /* Mean and sample standard deviation over the two seeds of each group. */
    json_t *sum = load_json(at("a/summary.json"));
    json_t *groups = json_object_get(sum, "groups");
    cr_assert_eq(json_array_size(groups), 2);
    for (int g = 0; g < 2; g++) {
        json_t *grp = json_array_get(groups, (size_t)g);
        const char *split[] = {"val", "test"};
        for (int sp = 0; sp < 2; sp++) {
            const char *keys[] = {"jaccard", "hamming", "f1", "at_least_two"};
            for (int k = 0; k < 4; k++) {
                double x = run_metric(at("a"), tiny_runs[2 * g], split[sp], keys[k]);
                double y = run_metric(at("a"), tiny_runs[2 * g + 1], split[sp], keys[k]);
                json_t *m = json_object_get(json_object_get(grp, split[sp]), keys[k]);
                cr_expect_float_eq(json_real_value(json_object_get(m, "mean")), (x + y) / 2, 1e-9, "%s %s", split[sp], keys[k]);
                cr_expect_float_eq(json_real_value(json_object_get(m, "sd")), fabs(x - y) / sqrt(2), 1e-9, "%s %s",
                                   split[sp], keys[k]);
            }
        }
    }
    json_decref(sum);
    char *md = slurp(at("a/summary.md"));
    cr_expect(strstr(md, "| **Jaccard** | ") && strstr(md, " ± ") && strstr(md, "| **Samples Avg** |") &&
              strstr(md, "## Combined metrics (val)") && strstr(md, "paired percentile bootstrap"), "%s", md);
    free(md);
}

/* The summary's paired bootstrap, against a direct computation from the
 * runs' own per-movie predictions: each movie's Jaccard averaged over the
 * seeds, focal minus bce, resampled with the sweep's seed and count. */
Test(sweep, summary_interval_is_the_bootstrap_of_the_runs_predictions)
{
    cr_assert_eq(tiny(at("a"), NULL, NULL, NULL), 0, "%s", err_text());
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, at("data/labels.txt")), 0);
    double jac[2][12] = {{0}};
    for (int r = 0; r < 4; r++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/test_predictions.jsonl", at("a"), tiny_runs[r]);
        Predictions p;
        cr_assert_eq(predictions_read(&p, path, &ls), 0, "%s", err_msg());
        cr_assert_eq(p.n, 12);
        for (int i = 0; i < 12; i++) jac[r / 2][i] += metrics_sample_jaccard(p.y + i * 3, p.pred + i * 3, 3) / 2;
        predictions_free(&p);
    }
    labels_free(&ls);
    PairedCI ci;
    bootstrap_paired(jac[1], jac[0], 12, 2000, 7, &ci); /* tiny.json: 2000 resamples, seed 7 */
    double diff = 0;
    for (int i = 0; i < 12; i++) diff += (jac[1][i] - jac[0][i]) / 12;
    json_t *sum = load_json(at("a/summary.json"));
    json_t *cmp = json_object_get(json_array_get(json_object_get(sum, "groups"), 1), "test_jaccard_vs_reference");
    cr_assert(json_is_object(cmp), "no comparison for the focal group");
    cr_expect_float_eq(json_real_value(json_object_get(cmp, "diff")), diff, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(cmp, "ci_low")), ci.lo, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(cmp, "ci_high")), ci.hi, 1e-9);
    cr_expect(ci.lo <= diff && diff <= ci.hi, "[%g, %g] misses %g", ci.lo, ci.hi, diff);
    cr_expect(json_is_null(json_object_get(json_array_get(json_object_get(sum, "groups"), 0), "test_jaccard_vs_reference")),
              "the reference is not compared with itself");
    json_decref(sum);
    char *csv = slurp(at("a/summary.csv")), row[256];
    snprintf(row, sizeof row, "\"loss.type=focal\",2,test,jaccard_diff_vs_reference,%.10g,,%.10g,%.10g\n", ci.diff,
             ci.lo, ci.hi);
    cr_expect(strstr(csv, row) != NULL, "%s\nwant %s", csv, row);
    free(csv);
}

/* A sweep stopped by a failing run (the first run's 10th step, after its
 * checkpoint at step 8) continues where it stopped: the run is resumed
 * from last/, the others started, and every output ends as an
 * uninterrupted sweep's, byte for byte. */
Test(sweep, an_interrupted_sweep_resumes_to_the_same_bytes)
{
    cr_assert_eq(tiny(at("whole"), NULL, NULL, NULL), 0, "%s", err_text());
    const char *fail[] = {"GENRE_FAILPOINT=backend_step:10", NULL};
    cr_assert_eq(tiny(at("cut"), fail, NULL, NULL), 1, "%s", err_text());
    char *failed = err_text();
    cr_expect(strstr(failed, "genre: sweep: run loss.type=bce,seed=1 failed (exit status 1)\n") != NULL, "%s", failed);
    cr_expect(strstr(failed, "genre: 1 run of the sweep failed") != NULL, "%s", failed);
    free(failed);
    char *state = slurp(at("cut/loss.type=bce,seed=1/last/state.json"));
    cr_assert_not_null(state, "no checkpoint left");
    cr_expect(strstr(state, "\"step\": 8,") != NULL, "%s", state);
    free(state);
    cr_expect(!exists(at("cut/loss.type=bce,seed=1/metrics.json")));
    cr_expect(!exists(at("cut/loss.type=bce,seed=2")), "a run started after the failure");

    cr_assert_eq(tiny(at("cut"), NULL, NULL, NULL), 0, "%s", err_text());
    char *out = out_text();
    cr_expect(strstr(out, "loss.type=bce,seed=1: resuming") != NULL, "%s", out);
    cr_expect(strstr(out, "loss.type=bce,seed=2: starting") != NULL, "%s", out);
    free(out);
    /* genre train's own word that it continued from the checkpoint. */
    char *err = err_text(), want[300];
    snprintf(want, sizeof want, "resuming %s/loss.type=bce,seed=1 at step 8 of 24", at("cut"));
    cr_expect(strstr(err, want) != NULL, "%s", err);
    free(err);
    expect_same_sweep(at("whole"), at("cut"));
}

/* --parallel 2 runs two at a time, each in its own log, with the same
 * bytes as one at a time. Each run gets the same number of threads in
 * both (OMP_NUM_THREADS=1 alone, 2 shared by two), because a run's bits
 * depend on its thread count (README, genre sweep). With 3 threads for
 * two runs at a time, the shares are 2 and 1. */
Test(sweep, parallel_runs_give_the_bytes_of_sequential_ones)
{
    const char *one[] = {"OMP_NUM_THREADS=1", NULL}, *two[] = {"OMP_NUM_THREADS=2", NULL};
    cr_assert_eq(tiny(at("seq"), one, NULL, NULL), 0, "%s", err_text());
    cr_assert_eq(tiny(at("par"), two, "--parallel", "2"), 0, "%s", err_text());
    char *out = out_text();
    /* Side by side: the second run starts before the first has finished. */
    char *second = strstr(out, "loss.type=bce,seed=2: starting (OMP_NUM_THREADS=1)");
    char *first_done = strstr(out, "loss.type=bce,seed=1: finished");
    cr_expect(second && first_done && second < first_done, "not side by side:\n%s", out);
    cr_expect(strstr(out, "loss.type=focal,seed=2: starting (OMP_NUM_THREADS=1), output in ") != NULL, "%s", out);
    free(out);
    for (int r = 0; r < 4; r++) {
        char log[512];
        snprintf(log, sizeof log, "%s/par/logs/%s.log", root, tiny_runs[r]);
        char *text = slurp(log);
        cr_expect(text && strstr(text, "trained 24 steps"), "%s: %s", log, text ? text : "missing");
        free(text);
    }
    expect_same_sweep(at("seq"), at("par"));

    const char *three[] = {"OMP_NUM_THREADS=3", NULL};
    cr_assert_eq(tiny(at("three"), three, "--parallel", "2"), 0, "%s", err_text());
    out = out_text();
    cr_expect(strstr(out, "loss.type=bce,seed=1: starting (OMP_NUM_THREADS=2)") &&
              strstr(out, "loss.type=bce,seed=2: starting (OMP_NUM_THREADS=1)"), "not a fair split:\n%s", out);
    free(out);
}

/* A run directory that holds another configuration, or something else,
 * is an error naming it, before any run starts; nothing is touched. */
Test(sweep, a_run_directory_of_another_config_is_an_error)
{
    cr_assert_eq(tiny(at("a"), NULL, NULL, NULL), 0, "%s", err_text());
    char *cfg = slurp(at("a/loss.type=bce,seed=2/config.json")), *lr = strstr(cfg, "\"lr\": 0.003");
    cr_assert(lr, "%s", cfg);
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s\"lr\": 0.004%s", (int)(lr - cfg), cfg, lr + strlen("\"lr\": 0.003"));
    put(at("a/loss.type=bce,seed=2/config.json"), edited);
    Stamp before = stamp(at("a/summary.md"));
    usleep(20000);
    cr_expect_eq(tiny(at("a"), NULL, NULL, NULL), 1);
    char *err = err_text(), want[400];
    snprintf(want, sizeof want, "genre: %s/loss.type=bce,seed=2/config.json: key 'lr' is 0.004 there and 0.003 in the "
                                "sweep's run loss.type=bce,seed=2; move the run away or sweep into another --out\n", at("a"));
    cr_expect_str_eq(err, want);
    free(err);
    Stamp after = stamp(at("a/summary.md"));
    cr_expect(after.mtime.tv_nsec == before.mtime.tv_nsec && after.mtime.tv_sec == before.mtime.tv_sec);
    put(at("a/loss.type=bce,seed=2/config.json"), cfg);
    free(cfg);

    sh("rm -rf '%s'", at("a/loss.type=focal,seed=2"));
    mkdir(at("a/loss.type=focal,seed=2"), 0777);
    put(at("a/loss.type=focal,seed=2/notes.txt"), "mine\n");
    cr_expect_eq(tiny(at("a"), NULL, NULL, NULL), 1);
    err = err_text();
    cr_expect(strstr(err, "loss.type=focal,seed=2: is not a genre training run (it holds other files)") != NULL, "%s", err);
    free(err);
    cr_expect(exists(at("a/loss.type=focal,seed=2/notes.txt")));

    mkdir(at("mine"), 0777);
    put(at("mine/notes.txt"), "mine\n");
    cr_expect_eq(tiny(at("mine"), NULL, NULL, NULL), 1);
    err = err_text();
    cr_expect(strstr(err, "mine: is not empty and was not made by genre sweep; choose another --out") != NULL, "%s", err);
    free(err);
}

/* --emit-slurm writes an array of one task per run and runs nothing; its
 * tasks, two at a time as Slurm may start them, then --collect, make the
 * sweep. */
Test(sweep, emit_slurm_writes_a_job_array_whose_tasks_make_the_sweep)
{
    char *d = strdup(at("arr")), *script = strdup(at("sweep.sbatch"));
    char *args[] = {"--config", SWEEP, "--out", d, data_kv, init_kv, "--emit-slurm", script, NULL};
    cr_assert_eq(sweep_env(args, NULL), 0, "%s", err_text());
    cr_expect(!exists(d), "--emit-slurm ran something");
    char *text = slurp(script), *cwd = realpath(".", NULL), *genre = realpath("bin/genre", NULL), want[1200];
    cr_assert_not_null(text);
    cr_expect(!strncmp(text, "#!/bin/bash\n", 12));
    cr_expect(strstr(text, "\n#SBATCH --array=0-3\n") && strstr(text, "\n#SBATCH --job-name=genre-sweep-tiny\n"), "%s", text);
    for (int r = 0; r < 4; r++) {
        snprintf(want, sizeof want, "# task %d: %s\n", r, tiny_runs[r]);
        cr_expect(strstr(text, want) != NULL, "%s", text);
    }
    snprintf(want, sizeof want, "\nexec '%s' sweep --config '%s/%s' --out '%s' --only \"$SLURM_ARRAY_TASK_ID\" '%s' '%s'\n",
             genre, cwd, SWEEP, d, data_kv, init_kv);
    cr_expect(strstr(text, want) != NULL, "%s\nwant %s", text, want);
    snprintf(want, sizeof want, "\ncd '%s'\n", cwd);
    cr_expect(strstr(text, want) != NULL, "%s", text);
    /* #SBATCH lines must come before the first command, or sbatch ignores them. */
    cr_expect(strstr(text, "#SBATCH --array") < strstr(text, "\nset -euo pipefail"), "%s", text);
    free(text);
    free(cwd);
    free(genre);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd / && (SLURM_ARRAY_TASK_ID=0 bash %s & SLURM_ARRAY_TASK_ID=1 bash %s & wait) "
                              ">%s/tasks.txt 2>&1 && SLURM_ARRAY_TASK_ID=3 bash %s >>%s/tasks.txt 2>&1",
             script, script, root, script, root);
    cr_assert_eq(system(cmd), 0, "%s", slurp(at("tasks.txt")));
    cr_expect(!exists(at("arr/summary.md")), "one task of an array collected");
    cr_expect(!exists(at("arr/loss.type=focal,seed=1")), "task 2 was not started");
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=4 bash %s >%s/tasks.txt 2>&1", script, root);
    cr_expect_neq(system(cmd), 0);
    char *tasks = slurp(at("tasks.txt"));
    cr_expect(strstr(tasks, "--only 4: the sweep") && strstr(tasks, "has 4 runs (0 to 3)"), "%s", tasks);
    free(tasks);
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=2 bash %s >%s/tasks.txt 2>&1", script, root);
    cr_assert_eq(system(cmd), 0, "%s", slurp(at("tasks.txt")));
    char *collect[] = {"--collect", d, NULL};
    cr_assert_eq(sweep_env(collect, NULL), 0, "%s", err_text());
    char *md = slurp(at("arr/summary.md"));
    cr_expect(strstr(md, "4 of 4 runs finished") != NULL, "%s", md);
    free(md);
    free(d);
    free(script);
}

/* --collect takes whatever has finished: the rest are listed as not
 * started or interrupted, a group of one run has no ±; with nothing
 * finished, or no sweep at all, it says so. */
Test(sweep, collect_summarises_a_partial_sweep)
{
    char *d = strdup(at("part"));
    char *collect[] = {"--collect", d, NULL};
    cr_expect_eq(sweep_env(collect, NULL), 1);
    char *err = err_text();
    cr_expect(strstr(err, "part: not a genre sweep directory") != NULL, "%s", err);
    free(err);
    /* Run 0 fails after its checkpoint at step 8: nothing has finished. */
    const char *fail[] = {"GENRE_FAILPOINT=backend_step:10", NULL};
    cr_assert_eq(tiny(d, fail, "--only", "0"), 1, "%s", err_text());
    cr_expect_eq(sweep_env(collect, NULL), 1);
    err = err_text();
    cr_expect(strstr(err, "part: no run of the sweep has finished yet: nothing to collect") != NULL, "%s", err);
    free(err);
    cr_assert_eq(tiny(d, NULL, "--only", "2"), 0, "%s", err_text());
    cr_expect(!exists(at("part/summary.md")), "--only collected");
    cr_assert_eq(sweep_env(collect, NULL), 0, "%s", err_text());
    char *md = slurp(at("part/summary.md"));
    cr_expect(strstr(md, "1 of 4 runs finished, in 1 group") != NULL, "%s", md);
    cr_expect(strstr(md, "| loss.type=bce,seed=1 | loss.type=bce | interrupted (a checkpoint in last/) | | |") != NULL,
              "%s", md);
    cr_expect(strstr(md, "| loss.type=bce,seed=2 | loss.type=bce | not started | | |") != NULL, "%s", md);
    cr_expect(strstr(md, "The reference group has no finished run yet: no comparison.") != NULL, "%s", md);
    char *row = strstr(md, "| **Jaccard** | "), *eol = row ? strchr(row, '\n') : NULL;
    cr_assert(row && eol, "%s", md);
    *eol = '\0';
    cr_expect(strstr(row, "±") == NULL, "a single run has no standard deviation: %s", row);
    free(md);
    cr_assert_eq(tiny(d, NULL, "--only", "1"), 0, "%s", err_text());
    cr_assert_eq(sweep_env(collect, NULL), 0, "%s", err_text());
    json_t *sum = load_json(at("part/summary.json"));
    cr_expect_eq(json_integer_value(json_object_get(sum, "runs_finished")), 2);
    json_t *focal = json_array_get(json_object_get(sum, "groups"), 1);
    cr_expect_str_eq(json_string_value(json_object_get(focal, "name")), "loss.type=focal");
    json_t *jac = json_object_get(json_object_get(focal, "test"), "jaccard");
    cr_expect_float_eq(json_real_value(json_object_get(jac, "mean")),
                       run_metric(at("part"), "loss.type=focal,seed=1", "test", "jaccard"), 1e-9);
    cr_expect(json_is_null(json_object_get(jac, "sd")));
    cr_expect(json_is_object(json_object_get(focal, "test_jaccard_vs_reference")), "bce,seed=2 is a reference now");
    json_decref(sum);
    char *extra[] = {"--collect", d, "--parallel", "2", NULL};
    cr_expect_eq(sweep_env(extra, NULL), 2);
    free(d);
}

/* SIGTERM (or Ctrl-C) to the sweep reaches its runs once: the running one
 * stops at a step with a checkpoint, none starts after it, nothing is
 * collected, and the sweep says how to continue. */
Test(sweep, a_signal_stops_the_runs_with_a_checkpoint)
{
    char *d = strdup(at("sig"));
    char *args[] = {"--config", SWEEP, "--out", d, data_kv, init_kv, "epochs=1000", "checkpoint_every=0", NULL};
    pid_t pid = start_sweep(args, NULL);
    char log[300];
    snprintf(log, sizeof log, "%s/loss.type=bce,seed=1/log.jsonl", d);
    for (int i = 0; i < 400000 && !exists(log); i++) usleep(50);
    usleep(300000);
    kill(pid, SIGTERM);
    cr_assert_eq(wait_exit(pid), 1, "%s", err_text());
    char *err = err_text();
    cr_expect(strstr(err, "genre: interrupted (signal 15); the runs stopped with a checkpoint: run the same genre sweep "
                          "again to continue\n") != NULL, "%s", err);
    free(err);
    char *state = slurp(at("sig/loss.type=bce,seed=1/last/state.json"));
    cr_expect_not_null(state, "the run left no checkpoint");
    free(state);
    cr_expect(!exists(at("sig/loss.type=bce,seed=1/metrics.json")), "the run did not stop");
    cr_expect(!exists(at("sig/loss.type=bce,seed=2")), "a run started after the signal");
    cr_expect(!exists(at("sig/summary.md")));
    free(d);
}

/* ---- baselines ------------------------------------------------------------ */

/* The two baselines of the tests: the shipped logistic regression with its
 * val-tuned threshold (a file and a key over it), and bag of words (keys
 * alone, in a name that must become a directory's). */
#define BASELINES "{\"logreg_tfidf\": {\"base\": \"configs/baseline/logreg_tfidf.json\", \"tune_threshold\": true}," \
                  " \"bow words\": {\"features\": \"bow\"}}"

/* configs/sweeps/tiny.json with the tests' baselines, as dir/name.json. */
static char *tiny_with_baselines(const char *name)
{
    json_t *o = load_json(SWEEP);
    json_error_t e;
    json_t *b = json_loads(BASELINES, 0, &e);
    cr_assert_not_null(b, "%s", e.text);
    json_object_set_new(o, "baselines", b);
    char file[64];
    snprintf(file, sizeof file, "%s.json", name);
    char *path = strdup(at(file));
    cr_assert_eq(json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
    json_decref(o);
    return path;
}

/* Baselines come after the training runs, each a run and a group named
 * baseline=NAME in the file's order, on the training runs' data (the
 * override's, absolute) and untouched by the other overrides; reference
 * may name one; sweep.json keeps their kind. */
Test(sweep, baselines_expand_after_the_runs_with_their_names)
{
    put(at("s.json"), "{\"base\": {\"max_len\": 16}, \"runs\": [{\"loss.type\": \"bce\"}, {\"loss.type\": \"focal\"}],"
                      " \"grid\": {\"seed\": [1, 2]}, \"reference\": \"baseline=logreg_tfidf\", \"baselines\": " BASELINES "}");
    char *over[] = {data_kv, init_kv, "threshold=0.3"};
    Sweep s;
    cr_assert_eq(sweep_load(&s, at("s.json"), train_schema, resolve, baseline_schema, 3, over), 0, "%s", err_msg());
    cr_assert_eq(s.n_runs, 6);
    cr_expect_eq(s.n_train, 4);
    for (int r = 0; r < 4; r++) {
        cr_expect_eq(s.runs[r].kind, SWEEP_TRAIN);
        cr_expect_float_eq(json_real_value(json_dotted(s.runs[r].config, "threshold")), 0.3, 1e-12);
    }
    cr_expect_str_eq(s.runs[3].name, "loss.type=focal,seed=2");
    cr_expect_str_eq(s.runs[4].name, "baseline=logreg_tfidf");
    cr_expect_str_eq(s.runs[5].name, "baseline=bow_words", "a directory's characters");
    for (int r = 4; r < 6; r++) {
        cr_expect_eq(s.runs[r].kind, SWEEP_BASELINE);
        cr_expect_str_eq(s.runs[r].group, s.runs[r].name);
        cr_expect_eq(s.runs[r].n_set, 0);
    }
    cr_assert_eq(s.n_groups, 4);
    cr_expect_eq(s.n_train_groups, 2);
    cr_expect_str_eq(s.groups[1], "loss.type=focal");
    cr_expect_str_eq(s.groups[2], "baseline=logreg_tfidf");
    cr_expect_str_eq(s.groups[3], "baseline=bow_words");
    cr_expect_eq(s.reference, 2, "a baseline may be the reference");
    cr_expect_eq(s.n_pairs, 3, "each other group against the reference");
    char *data = realpath(at("data"), NULL);
    const json_t *lr = s.runs[4].config, *bow = s.runs[5].config;
    cr_expect_str_eq(json_string_value(json_dotted(lr, "data")), data, "the training runs' data, not the file's");
    cr_expect_str_eq(json_string_value(json_dotted(bow, "data")), data);
    cr_expect(json_is_true(json_dotted(lr, "tune_threshold")));
    cr_expect_str_eq(json_string_value(json_dotted(lr, "features")), "tfidf");
    cr_expect_float_eq(json_real_value(json_dotted(lr, "threshold")), 0.5, 0, "a train override reaches no baseline");
    cr_expect_eq(json_integer_value(json_dotted(lr, "linear.max_iter")), 100, "from the file");
    cr_expect_str_eq(json_string_value(json_dotted(bow, "features")), "bow");
    cr_expect(json_is_false(json_dotted(bow, "tune_threshold")), "the default");

    /* sweep.json and back: the same runs, kinds and groups. */
    cr_assert_eq(sweep_save(&s, at("sweep.json")), 0, "%s", err_msg());
    json_t *saved = load_json(at("sweep.json"));
    json_t *runs = json_object_get(saved, "runs");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(runs, 0), "kind")), "train");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(runs, 5), "kind")), "baseline");
    json_decref(saved);
    Sweep back;
    cr_assert_eq(sweep_read(&back, at("sweep.json")), 0, "%s", err_msg());
    cr_expect(back.n_runs == 6 && back.n_train == 4 && back.n_groups == 4 && back.n_train_groups == 2);
    cr_expect_eq(back.runs[5].kind, SWEEP_BASELINE);
    cr_expect_str_eq(back.runs[5].name, "baseline=bow_words");
    cr_expect_eq(back.reference, 2);
    cr_expect(json_equal(back.runs[4].config, lr));
    sweep_free(&back);
    sweep_free(&s);
    free(data);
}

/* Each bad baseline entry stops the sweep before any work with one line
 * naming the sweep file and the entry, and leaves no sweep directory. */
Test(sweep, bad_baselines_fail_before_any_run)
{
    put(at("bad.json"), "{\"model\": \"logreg\", \"linaer\": {\"C\": 1}}");
    char bad_file[400], bad_message[600];
    snprintf(bad_file, sizeof bad_file, "{\"base\": {}, \"baselines\": {\"lr\": \"%s\"}}", at("bad.json"));
    snprintf(bad_message, sizeof bad_message, "s.json: baselines.lr: %s: unknown key 'linaer'", at("bad.json"));
    struct {
        const char *text, *message;
    } cases[] = {
        {"{\"base\": {}, \"baselines\": {\"lr\": {\"base\": \"configs/baseline/logreg_tfidf.json\", \"linear.c\": 1}}}",
         "s.json: baselines.lr: unknown key 'linear.c'"},
        {"{\"base\": {}, \"baselines\": {\"lr\": {\"knn\": {\"k\": 0}}}}",
         "s.json: baselines.lr: key 'knn.k' must be in [1, 1000000000]"},
        {bad_file, bad_message},
        {"{\"base\": {}, \"baselines\": {\"lr\": \"nowhere.json\"}}",
         "s.json: baselines.lr: nowhere.json: cannot open: No such file or directory"},
        {"{\"base\": {}, \"baselines\": {\"lr\": {\"base\": \"nowhere.json\", \"tune_threshold\": true}}}",
         "s.json: baselines.lr: nowhere.json: cannot open: No such file or directory"},
        {"{\"base\": {}, \"baselines\": {\"log reg\": {}, \"log_reg\": {\"features\": \"bow\"}}}",
         "s.json: baselines: 'log reg' and 'log_reg' are both named 'baseline=log_reg'"},
        {"{\"base\": {}, \"baselines\": {\"\": {}}}", "s.json: baselines: a baseline needs a name"},
        {"{\"base\": {}, \"baselines\": [\"configs/baseline/logreg_tfidf.json\"]}",
         "s.json: key 'baselines' must be an object"},
        {"{\"base\": {}, \"baselines\": {\"lr\": 3}}", "s.json: baselines.lr must be a baseline configuration"},
        {"{\"base\": {}, \"baselines\": {\"lr\": {\"base\": 3}}}",
         "s.json: baselines.lr: key 'base' must be a baseline configuration file's path"},
        {"{\"base\": {}, \"baselines\": {\"lr\": {\"data\": \"x\"}}}",
         "s.json: baselines.lr: key 'data' may not be set: a baseline is scored on the training runs' data"},
        {"{\"base\": {\"limit_eval\": 5}, \"baselines\": {\"lr\": {}}}",
         "s.json: baselines: run base sets limit_eval=5, but a baseline is scored on the data's whole test set"},
        {"{\"base\": {}, \"grid\": {\"drop_labels\": [[], [\"Beta\"]]}, \"baselines\": {\"lr\": {}}}",
         "s.json: baselines: run drop_labels=Beta sets drop_labels"},
        {"{\"base\": {}, \"grid\": {\"seed\": [1, 2]}, \"baselines\": {\"lr\": {}}, \"reference\": \"baseline=x\"}",
         "s.json: key 'reference' is \"baseline=x\", which names no group or run of the sweep (groups: base, "
         "baseline=lr)"},
    };
    char *d = strdup(at("out")), *s_json = strdup(at("s.json"));
    char *args[] = {"--config", s_json, "--out", d, data_kv, init_kv, NULL};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        put(s_json, cases[k].text);
        cr_expect_eq(sweep_env(args, NULL), 1, "accepted: %s", cases[k].text);
        char *err = err_text(), want[1000];
        snprintf(want, sizeof want, "genre: %s/%s", root, cases[k].message);
        cr_expect(!strncmp(err, want, strlen(want)) && strchr(err, '\n') == err + strlen(err) - 1,
                  "%s\nwant one line starting: %s", err, want);
        free(err);
        cr_expect(!exists(d), "a refused sweep made %s", d);
    }
    free(d);
    free(s_json);
}

/* One comparison of summary.json's test_jaccard_vs_baselines. */
static json_t *comparison(json_t *sum, const char *group, const char *baseline)
{
    json_t *list = json_object_get(json_object_get(sum, "test_jaccard_vs_baselines"), "comparisons"), *c;
    size_t i;
    json_array_foreach(list, i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "group")), group) &&
            !strcmp(json_string_value(json_object_get(c, "baseline")), baseline))
            return c;
    }
    cr_assert_fail("no comparison of %s with %s", group, baseline);
    return NULL;
}

/* A sweep with baselines runs them after the training runs (genre
 * baseline, the same binary) on the runs' data, skips them once finished,
 * and collects them as groups of one run; the section against the
 * baselines holds, for each training group and baseline, the difference
 * of their mean test Jaccards with the paired bootstrap of the runs'
 * per-movie predictions, and the best group's line. */
Test(sweep, baselines_run_and_the_groups_are_compared_with_them)
{
    char *file = tiny_with_baselines("tb"), *d = strdup(at("b"));
    char *args[] = {"--config", file, "--out", d, data_kv, init_kv, NULL};
    cr_assert_eq(sweep_env(args, NULL), 0, "%s", err_text());
    char *out = out_text();
    cr_expect(strstr(out, "sweep tb: 6 runs (4 training, 2 baselines) in 4 groups") != NULL, "%s", out);
    char *last_train = strstr(out, "loss.type=focal,seed=2: finished"), *lr = strstr(out, "baseline=logreg_tfidf: starting");
    cr_expect(last_train && lr && last_train < lr, "the baselines run last:\n%s", out);
    cr_expect(strstr(out, "baseline=bow_words: finished") != NULL, "%s", out);
    free(out);
    char *kind = slurp(at("b/baseline=logreg_tfidf/.genre"));
    cr_expect(kind && strstr(kind, "baseline"), "not a genre baseline output: %s", kind ? kind : "(no marker)");
    free(kind);
    json_t *cfg = load_json(at("b/baseline=logreg_tfidf/config.json"));
    char *data = realpath(at("data"), NULL);
    cr_expect_str_eq(json_string_value(json_object_get(cfg, "data")), data);
    cr_expect(json_is_true(json_object_get(cfg, "tune_threshold")));
    json_decref(cfg);
    free(data);

    /* Again: everything finished is skipped, the baselines untouched. */
    Stamp before = stamp(at("b/baseline=logreg_tfidf/test_predictions.jsonl"));
    usleep(20000);
    cr_assert_eq(sweep_env(args, NULL), 0, "%s", err_text());
    out = out_text();
    cr_expect(strstr(out, "6 finished (skipped), 0 to run") && strstr(out, "baseline=bow_words: skipped (finished)\n"),
              "%s", out);
    free(out);
    Stamp after = stamp(at("b/baseline=logreg_tfidf/test_predictions.jsonl"));
    cr_expect(after.mtime.tv_sec == before.mtime.tv_sec && after.mtime.tv_nsec == before.mtime.tv_nsec);

    /* The numbers: each movie's Jaccard averaged over a group's seeds,
     * against each baseline's own, with the sweep's bootstrap. */
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, at("data/labels.txt")), 0);
    const char *dirs[] = {"loss.type=bce,seed=1", "loss.type=bce,seed=2", "loss.type=focal,seed=1",
                          "loss.type=focal,seed=2", "baseline=logreg_tfidf", "baseline=bow_words"};
    double jac[4][12] = {{0}};
    for (int r = 0; r < 6; r++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/test_predictions.jsonl", d, dirs[r]);
        Predictions p;
        cr_assert_eq(predictions_read(&p, path, &ls), 0, "%s", err_msg());
        cr_assert_eq(p.n, 12);
        int g = r < 4 ? r / 2 : r - 2;
        for (int i = 0; i < 12; i++) jac[g][i] += metrics_sample_jaccard(p.y + i * 3, p.pred + i * 3, 3) / (r < 4 ? 2 : 1);
        predictions_free(&p);
    }
    labels_free(&ls);
    json_t *sum = load_json(at("b/summary.json"));
    json_t *groups = json_object_get(sum, "groups");
    cr_assert_eq(json_array_size(groups), 4);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(groups, 2), "name")), "baseline=logreg_tfidf");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(groups, 2), "kind")), "baseline");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(groups, 0), "kind")), "train");
    cr_expect(json_is_object(json_object_get(json_object_get(json_array_get(groups, 3), "per_genre"), "Beta")));
    json_t *vs = json_object_get(sum, "test_jaccard_vs_baselines");
    cr_assert(json_is_object(vs), "no test_jaccard_vs_baselines");
    cr_expect_eq(json_array_size(json_object_get(vs, "comparisons")), 4, "2 groups x 2 baselines");
    const char *gname[] = {"loss.type=bce", "loss.type=focal"}, *bname[] = {"baseline=logreg_tfidf", "baseline=bow_words"};
    double mean[4];
    for (int g = 0; g < 4; g++)
        mean[g] = json_real_value(json_object_get(
            json_object_get(json_object_get(json_array_get(groups, (size_t)g), "test"), "jaccard"), "mean"));
    char *csv = slurp(at("b/summary.csv"));
    for (int g = 0; g < 2; g++)
        for (int b = 0; b < 2; b++) {
            json_t *c = comparison(sum, gname[g], bname[b]);
            double diff = json_real_value(json_object_get(c, "diff"));
            double lo = json_real_value(json_object_get(c, "ci_low")), hi = json_real_value(json_object_get(c, "ci_high"));
            cr_expect_float_eq(json_real_value(json_object_get(c, "test_jaccard")), mean[g], 1e-12);
            cr_expect_float_eq(json_real_value(json_object_get(c, "baseline_test_jaccard")), mean[2 + b], 1e-12);
            cr_expect_float_eq(diff, mean[g] - mean[2 + b], 1e-6, "%s - %s: the difference of the means", gname[g],
                               bname[b]);
            PairedCI ci;
            bootstrap_paired(jac[g], jac[2 + b], 12, 2000, 7, &ci);
            cr_expect_float_eq(diff, ci.diff, 1e-9);
            cr_expect_float_eq(lo, ci.lo, 1e-9, "%s vs %s", gname[g], bname[b]);
            cr_expect_float_eq(hi, ci.hi, 1e-9, "%s vs %s", gname[g], bname[b]);
            cr_expect(lo <= diff && diff <= hi, "[%g, %g] misses %g", lo, hi, diff);
            cr_expect_eq(json_is_true(json_object_get(c, "excludes_zero")), lo > 0 || hi < 0);
            char row[300];
            snprintf(row, sizeof row, "\"%s\",2,test,jaccard_diff_vs_%s,%.10g,,%.10g,%.10g\n", gname[g], bname[b],
                     ci.diff, ci.lo, ci.hi);
            cr_expect(strstr(csv, row) != NULL, "%s\nwant %s", csv, row);
        }
    /* The best group by mean test Jaccard, against each baseline. */
    int best = mean[1] > mean[0];
    json_t *b = json_object_get(vs, "best");
    cr_assert(json_is_object(b), "no best group");
    cr_expect_str_eq(json_string_value(json_object_get(b, "group")), gname[best]);
    cr_expect_eq(json_array_size(json_object_get(b, "vs")), 2);
    json_t *b0 = json_array_get(json_object_get(b, "vs"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(b0, "baseline")), "baseline=logreg_tfidf");
    cr_expect_float_eq(json_real_value(json_object_get(b0, "diff")),
                       json_real_value(json_object_get(comparison(sum, gname[best], bname[0]), "diff")), 0);
    char row[300];
    snprintf(row, sizeof row, "\"%s\",2,test,best_jaccard_diff_vs_baseline=logreg_tfidf,", gname[best]);
    cr_expect(strstr(csv, row) != NULL, "%s\nwant %s", csv, row);
    free(csv);
    json_decref(sum);

    char *md = slurp(at("b/summary.md")), want[300];
    cr_expect(strstr(md, "6 of 6 runs finished, in 4 groups") != NULL, "%s", md);
    cr_expect(strstr(md, "| baseline=logreg\\_tfidf | baseline=logreg\\_tfidf | finished |") != NULL, "%s", md);
    cr_expect(strstr(md, "| **baseline=bow\\_words** (1) |") != NULL, "a column of the combined tables:\n%s", md);
    char *section = strstr(md, "## Test Jaccard against the baselines\n\n");
    cr_assert(section, "%s", md);
    snprintf(want, sizeof want, "Best group by mean test Jaccard: **%s** (%.4f, 2 runs): ", gname[best], mean[best]);
    cr_expect(!strncmp(section + strlen("## Test Jaccard against the baselines\n\n"), want, strlen(want)),
              "%s\nwant %s", section, want);
    cr_expect(strstr(section, "against **baseline=logreg\\_tfidf** (") && strstr(section, "an interval that "), "%s",
              section);
    cr_expect(strstr(section, "| loss.type=focal | 2 | ") && strstr(section, "| baseline=bow\\_words | "), "%s", section);
    cr_expect(section < strstr(md, "## Per-genre F1 (test)"), "%s", md);
    free(md);
    glob_t g;
    cr_assert_eq(glob(at("b/plots/per_genre_baseline=*.svg"), 0, NULL, &g), 0);
    cr_expect_eq(g.gl_pathc, 2, "a per-genre plot per baseline");
    globfree(&g);
    free(file);
    free(d);
}

/* The Slurm array has a task per baseline, after the training runs; a
 * baseline task runs it alone, and a collect of it alone says there is
 * nothing to compare it with yet. A baseline's state is a training run's:
 * without its predictions it is run again, with another config.json it is
 * an error naming the key. */
Test(sweep, emit_slurm_counts_the_baselines)
{
    char *file = tiny_with_baselines("tb"), *d = strdup(at("arr")), *script = strdup(at("sweep.sbatch"));
    char *args[] = {"--config", file, "--out", d, data_kv, init_kv, "--emit-slurm", script, NULL};
    cr_assert_eq(sweep_env(args, NULL), 0, "%s", err_text());
    char *out = out_text();
    cr_expect(strstr(out, ": 6 array tasks (0-5) into ") != NULL, "%s", out);
    free(out);
    char *text = slurp(script);
    cr_assert_not_null(text);
    cr_expect(strstr(text, "\n#SBATCH --array=0-5\n") != NULL, "%s", text);
    cr_expect(strstr(text, "# task 3: loss.type=focal,seed=2\n# task 4: baseline=logreg_tfidf\n# task 5: baseline=bow_words\n"),
              "%s", text);
    free(text);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd / && SLURM_ARRAY_TASK_ID=5 bash %s >%s/tasks.txt 2>&1", script, root);
    cr_assert_eq(system(cmd), 0, "%s", slurp(at("tasks.txt")));
    cr_expect(exists(at("arr/baseline=bow_words/test_predictions.jsonl")), "%s", slurp(at("tasks.txt")));
    cr_expect(!exists(at("arr/loss.type=bce,seed=1")) && !exists(at("arr/baseline=logreg_tfidf")), "task 5 ran more");
    char *collect[] = {"--collect", d, NULL};
    cr_assert_eq(sweep_env(collect, NULL), 0, "%s", err_text());
    char *md = slurp(at("arr/summary.md"));
    cr_expect(strstr(md, "1 of 6 runs finished, in 1 group") != NULL, "%s", md);
    cr_expect(strstr(md, "## Test Jaccard against the baselines\n\nNo training run has finished yet: no comparison.\n"),
              "%s", md);
    free(md);

    /* A baseline without its predictions (an older genre's) is run again;
     * one of another configuration is an error naming the key. */
    char *only[] = {"--config", file, "--out", d, data_kv, init_kv, "--only", "5", NULL};
    cr_assert_eq(unlink(at("arr/baseline=bow_words/test_predictions.jsonl")), 0);
    cr_assert_eq(sweep_env(only, NULL), 0, "%s", err_text());
    out = out_text();
    cr_expect(strstr(out, "baseline=bow_words: starting") != NULL, "%s", out);
    free(out);
    cr_expect(exists(at("arr/baseline=bow_words/test_predictions.jsonl")));
    char *cfg = slurp(at("arr/baseline=bow_words/config.json")), *knn = strstr(cfg, "\"k\": 5");
    cr_assert(knn, "%s", cfg);
    knn[strlen("\"k\": ")] = '7';
    put(at("arr/baseline=bow_words/config.json"), cfg);
    free(cfg);
    cr_expect_eq(sweep_env(only, NULL), 1);
    char *err = err_text(), want[600];
    snprintf(want, sizeof want, "genre: %s/baseline=bow_words/config.json: key 'knn.k' is 7 there and 5 in the "
                                "sweep's run baseline=bow_words; move the run away or sweep into another --out\n", d);
    cr_expect_str_eq(err, want);
    free(err);
    free(file);
    free(d);
    free(script);
}

/* A sweep.json of a genre before baselines (no kind in its runs, no
 * baselines) collects as it did; the summary has no comparison with
 * baselines, and says so in summary.json. */
Test(sweep, an_older_sweep_json_without_baselines_still_collects)
{
    cr_assert_eq(tiny(at("old"), NULL, NULL, NULL), 0, "%s", err_text());
    json_t *o = load_json(at("old/sweep.json"));
    json_t *runs = json_object_get(o, "runs"), *r;
    size_t i;
    json_array_foreach(runs, i, r) {
        cr_assert(json_is_string(json_object_get(r, "kind")));
        json_object_del(r, "kind");
    }
    cr_assert_eq(json_dump_file(o, at("old/sweep.json"), JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
    json_decref(o);
    char *md_before = slurp(at("old/summary.md"));
    char *d = strdup(at("old"));
    char *collect[] = {"--collect", d, NULL};
    cr_assert_eq(sweep_env(collect, NULL), 0, "%s", err_text());
    char *md = slurp(at("old/summary.md"));
    cr_expect(strstr(md, "4 of 4 runs finished, in 2 groups") != NULL, "%s", md);
    cr_expect(strstr(md, "against the baselines") == NULL, "%s", md);
    cr_expect_str_eq(md, md_before, "the same summary as the sweep's own");
    json_t *sum = load_json(at("old/summary.json"));
    json_t *vs = json_object_get(sum, "test_jaccard_vs_baselines");
    cr_expect(json_array_size(json_object_get(vs, "baselines")) == 0 && json_array_size(json_object_get(vs, "comparisons")) == 0 &&
              json_is_null(json_object_get(vs, "best")), "comparisons without baselines");
    json_decref(sum);
    free(md);
    free(md_before);
    free(d);
}

/* ---- the bootstrap ------------------------------------------------------- */

Test(sweep, bootstrap_identical_runs_give_zero)
{
    double a[50];
    for (int i = 0; i < 50; i++) a[i] = (i * 7 % 11) / 11.0;
    PairedCI ci;
    bootstrap_paired(a, a, 50, 10000, 1, &ci);
    cr_expect(ci.diff == 0 && ci.lo == 0 && ci.hi == 0, "[%g, %g] around %g", ci.lo, ci.hi, ci.diff);
}

Test(sweep, bootstrap_constant_difference_gives_it_exactly)
{
    double a[40], b[40];
    for (int i = 0; i < 40; i++) {
        b[i] = (i % 5) / 10.0;
        a[i] = b[i] + 0.125; /* exact in binary: a - b is 0.125 for every movie */
    }
    PairedCI ci;
    bootstrap_paired(a, b, 40, 10000, 3, &ci);
    cr_expect(ci.diff == 0.125 && ci.lo == 0.125 && ci.hi == 0.125, "[%.17g, %.17g] around %.17g", ci.lo, ci.hi, ci.diff);
}

/* Five movies: every one of the 5^5 equally likely resamples enumerated
 * gives the bootstrap distribution exactly; its 2.5% and 97.5% quantiles
 * are the interval the sampled bootstrap must find. The case is one whose
 * quantiles lie well inside a jump of the distribution (checked here), so
 * 40000 draws land on them whatever the draws. */
Test(sweep, bootstrap_matches_the_exact_distribution_of_a_small_case)
{
    double a[5] = {1, 0.5, 0, 1, 0.25}, b[5] = {0.5, 0.5, 0.5, 0, 0}, d[5];
    for (int i = 0; i < 5; i++) d[i] = a[i] - b[i];
    double means[3125];
    for (int t = 0; t < 3125; t++) {
        double s = 0;
        for (int k = 0, x = t; k < 5; k++, x /= 5) s += d[x % 5];
        means[t] = s / 5;
    }
    /* Sort, then read the quantiles off the exact CDF. */
    for (int i = 1; i < 3125; i++)
        for (int j = i; j > 0 && means[j - 1] > means[j]; j--) {
            double t = means[j];
            means[j] = means[j - 1];
            means[j - 1] = t;
        }
    double q[2];
    const double p[2] = {0.025, 0.975};
    for (int e = 0; e < 2; e++) {
        int i = 0;
        while ((i + 1) / 3125.0 < p[e]) i++;
        q[e] = means[i];
        int lo = i, hi = i;
        while (lo > 0 && means[lo - 1] == q[e]) lo--;
        while (hi < 3124 && means[hi + 1] == q[e]) hi++;
        cr_assert(lo / 3125.0 < p[e] - 0.003 && (hi + 1) / 3125.0 > p[e] + 0.003,
                  "quantile %g sits at the edge of its jump: a case for another test", p[e]);
    }
    PairedCI ci;
    bootstrap_paired(a, b, 5, 40000, 11, &ci);
    cr_expect_float_eq(ci.lo, q[0], 1e-12, "lower end %g, exact %g", ci.lo, q[0]);
    cr_expect_float_eq(ci.hi, q[1], 1e-12, "upper end %g, exact %g", ci.hi, q[1]);
    cr_expect_float_eq(ci.diff, 0.25, 1e-12);
}

/* Many movies: the bootstrap distribution of a mean is nearly normal with
 * the standard error sd / sqrt(n) (population sd, as resampling uses), so
 * the interval is close to mean +- 1.96 standard errors; the same seed
 * gives the same interval, another seed a slightly different one. */
Test(sweep, bootstrap_of_many_movies_is_the_normal_interval)
{
    int n = 3000;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), sum = 0, ss = 0;
    unsigned x = 99;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        a[i] = (x >> 16) % 1000 / 1000.0;
        x = x * 1103515245u + 12345u;
        b[i] = (x >> 16) % 1000 / 1000.0 * 0.9;
        sum += a[i] - b[i];
    }
    double mean = sum / n;
    for (int i = 0; i < n; i++) ss += (a[i] - b[i] - mean) * (a[i] - b[i] - mean);
    double se = sqrt(ss / n) / sqrt(n);
    PairedCI ci, again, other;
    bootstrap_paired(a, b, n, 10000, 5, &ci);
    cr_expect_float_eq(ci.diff, mean, 1e-12);
    cr_expect(fabs(ci.lo - (mean - 1.959964 * se)) < 0.1 * se, "lower %g, normal %g (se %g)", ci.lo, mean - 1.96 * se, se);
    cr_expect(fabs(ci.hi - (mean + 1.959964 * se)) < 0.1 * se, "upper %g, normal %g (se %g)", ci.hi, mean + 1.96 * se, se);
    bootstrap_paired(a, b, n, 10000, 5, &again);
    bootstrap_paired(a, b, n, 10000, 6, &other);
    cr_expect(again.lo == ci.lo && again.hi == ci.hi, "the same seed gave another interval");
    cr_expect(other.lo != ci.lo || other.hi != ci.hi, "another seed gave the same interval");
    free(a);
    free(b);
}

Test(sweep, mean_and_sample_standard_deviation)
{
    double x[] = {0.5, 0.25, 0.75};
    MeanSd m;
    mean_sd(x, 3, &m);
    cr_expect_float_eq(m.mean, 0.5, 1e-15);
    cr_expect_float_eq(m.sd, 0.25, 1e-15, "n - 1 in the denominator");
    mean_sd(x, 1, &m);
    cr_expect(m.n == 1 && m.mean == 0.5 && m.sd == 0);
}
