/* The ranges of every configuration key (issue 17): a value out of its
 * key's range stops the command before any work with one message naming
 * the key and the range. */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/commands.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/sweep/spec.h"
#include "tests/testutil.h"

static const struct {
    const char *name;
    const CfgKey *const *schema;
} schemas[] = {{"train", &train_schema}, {"baseline", &baseline_schema}, {"prepare", &prepare_schema},
               {"sweep", &sweep_schema}};
#define N_SCHEMAS (sizeof schemas / sizeof *schemas)

/* A new key without a range fails here: every number of every command has
 * one, every range parses, every default lies in it. */
Test(ranges, every_number_of_every_schema_has_a_range)
{
    int numbers = 0;
    for (size_t s = 0; s < N_SCHEMAS; s++) {
        for (const CfgKey *k = *schemas[s].schema; k->key; k++) {
            if (k->type != CFG_INT && k->type != CFG_FLOAT) continue;
            numbers++;
            cr_expect_not_null(k->allowed, "%s: key '%s' has no range", schemas[s].name, k->key);
        }
        cr_expect_eq(config_check_schema(*schemas[s].schema), 0, "%s: %s", schemas[s].name, err_msg());
    }
    cr_expect_geq(numbers, 40, "the schemas hold %d numbers", numbers);
}

/* The overrides that give every key without a default one. */
static int required(const CfgKey *schema, char **over)
{
    int n = 0;
    for (const CfgKey *k = schema; k->key; k++)
        if (!k->def) cr_assert(asprintf(&over[n++], "%s=x", k->key) > 0);
    return n;
}

/* Loads schema with the required keys and key=value; NULL, or the error. */
static const char *try_value(const CfgKey *schema, const char *key, const char *value)
{
    char *over[8];
    int n = required(schema, over);
    cr_assert(asprintf(&over[n++], "%s=%s", key, value) > 0);
    Config *c = config_load(schema, NULL, n, over);
    for (int i = 0; i < n; i++) free(over[i]);
    config_free(c);
    return c ? NULL : err_msg();
}

/* One end of a range: its text, whether it is open, and whether it is the
 * upper end. Checks that the end itself is taken or refused as the bracket
 * says, and that a value just beyond it is refused with the key's message. */
static void check_end(const CfgKey *schema, const CfgKey *k, const char *end, bool open, bool upper,
                      const char *message)
{
    char value[64];
    if (!strcmp(end, "inf") || !strcmp(end, "-inf")) return; /* no number reaches it */
    const char *err = try_value(schema, k->key, end);
    if (open) cr_expect_not_null(err, "%s=%s (an open end) was taken", k->key, end);
    else cr_expect_null(err, "%s=%s (a closed end) was refused: %s", k->key, end, err);
    if (k->type == CFG_INT) {
        long long e = strtoll(end, NULL, 10);
        if (upper && e == 9223372036854775807LL) {
            /* Beyond the largest long: not an integer genre can read. */
            err = try_value(schema, k->key, "9223372036854775808");
            char want[256];
            snprintf(want, sizeof want, "override '%s=9223372036854775808': key '%s' must be an integer", k->key,
                     k->key);
            cr_expect_str_eq(err ? err : "(taken)", want);
            return;
        }
        snprintf(value, sizeof value, "%lld", upper ? e + 1 : e - 1);
    } else {
        double e = strtod(end, NULL), step = 1e-9 * fmax(1, fabs(e));
        snprintf(value, sizeof value, "%.17g", upper ? e + step : e - step);
    }
    err = try_value(schema, k->key, value);
    char want[256];
    snprintf(want, sizeof want, "override '%s=%s': key '%s' must be %s", k->key, value, k->key, message);
    cr_expect_str_eq(err ? err : "(taken)", want);
}

/* Both ends of every key's range, read from the schema itself. */
Test(ranges, both_ends_of_every_range)
{
    for (size_t s = 0; s < N_SCHEMAS; s++) {
        const CfgKey *schema = *schemas[s].schema;
        for (const CfgKey *k = schema; k->key; k++) {
            if (k->type != CFG_INT && k->type != CFG_FLOAT) continue;
            const char *interval = k->allowed, *or = strstr(interval, " or ");
            char message[128], lo[64], hi[64], open, close;
            if (or) {
                char also[32];
                snprintf(also, sizeof also, "%.*s", (int)(or - interval), interval);
                cr_expect_null(try_value(schema, k->key, also), "%s=%s refused", k->key, also);
                interval = or + 4;
                snprintf(message, sizeof message, "%s or in %s", also, interval);
            } else {
                snprintf(message, sizeof message, "in %s", interval);
            }
            cr_assert_eq(sscanf(interval, "%c%63[^,], %63[^])]%c", &open, lo, hi, &close), 4, "%s: '%s'", k->key,
                         interval);
            check_end(schema, k, lo, open == '(', false, message);
            check_end(schema, k, hi, close == ')', true, message);
        }
    }
}

/* The shipped configurations lie within the ranges. */
Test(ranges, every_shipped_config_loads)
{
    const char *dirs[] = {"configs/train/*.json", "configs/baseline/*.json"};
    const CfgKey *const *for_dir[] = {&train_schema, &baseline_schema};
    for (int d = 0; d < 2; d++) {
        glob_t g;
        cr_assert_eq(glob(dirs[d], 0, NULL, &g), 0, "%s", dirs[d]);
        for (size_t i = 0; i < g.gl_pathc; i++) {
            char *over[] = {"data=x"};
            Config *c = config_load(*for_dir[d], g.gl_pathv[i], 1, over);
            cr_expect_not_null(c, "%s", err_msg());
            config_free(c);
        }
        globfree(&g);
    }
}

/* A run's configuration from its layers, checked against the schema only
 * (the shipped bases name data that a test machine need not have). */
static json_t *load_only(const char *what, int n_layers, const CfgLayer *layers)
{
    Config *c = config_load_layers(train_schema, what, n_layers, layers);
    json_t *j = c ? config_to_json(c) : NULL;
    config_free(c);
    return j;
}

/* Every shipped sweep (configs/sweeps) expands, and every run of it loads
 * onto its base as the run will: a key renamed or a value out of range
 * fails here, not hours into a sweep. */
Test(ranges, every_shipped_sweep_expands_and_loads)
{
    glob_t g;
    cr_assert_eq(glob("configs/sweeps/*.json", 0, NULL, &g), 0, "no configs/sweeps/*.json");
    int runs = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        Sweep sw;
        char *data[] = {"data=x"}; /* tiny.json leaves it to the tests' command lines */
        int rc = sweep_load(&sw, g.gl_pathv[i], train_schema, load_only, baseline_schema, 1, data);
        cr_expect_eq(rc, 0, "%s: %s", g.gl_pathv[i], err_msg());
        if (rc != 0) continue;
        runs += sw.n_runs;
        sweep_free(&sw);
    }
    globfree(&g);
    cr_expect_geq(runs, 12);
}

/* The values issue 17 found accepted, each with the one line it now gets.
 * The data directory does not exist: a value that passed would fail there,
 * with another message. */
Test(ranges, bad_values_name_their_key)
{
    static const struct {
        int (*cmd)(int, char **);
        const char *name, *value, *message;
    } bad[] = {
        {cmd_train, "train", "loss.alpha=5", "key 'loss.alpha' must be -1 or in [0, 1]"},
        {cmd_train, "train", "loss.alpha=-0.5", "key 'loss.alpha' must be -1 or in [0, 1]"},
        {cmd_train, "train", "loss.gamma=-3", "key 'loss.gamma' must be in [0, 10]"},
        {cmd_train, "train", "max_grad_norm=-1", "key 'max_grad_norm' must be in [0, inf)"},
        {cmd_train, "train", "limit_train=-1", "key 'limit_train' must be in [0, 1000000000]"},
        {cmd_train, "train", "oversample=-1", "key 'oversample' must be in [0, 10]"},
        {cmd_train, "train", "length_window=0", "key 'length_window' must be in [1, 100000]"},
        {cmd_train, "train", "batch_size=0", "key 'batch_size' must be in [1, 4096]"},
        {cmd_train, "train", "threshold=1", "key 'threshold' must be in (0, 1)"},
        {cmd_train, "train", "max_len=513", "key 'max_len' must be in [2, 512]"},
        {cmd_train, "train", "seed=-1", "key 'seed' must be in [0, 9223372036854775807]"},
        {cmd_train, "train", "lr=0", "key 'lr' must be in (0, inf)"},
        {cmd_train, "train", "warmup_ratio=1", "key 'warmup_ratio' must be in [0, 1)"},
        {cmd_train, "train", "max_steps= 5", "key 'max_steps' must be an integer"},
        {cmd_train, "train", "lr=0x1p-3", "key 'lr' must be a number"},
        {cmd_train, "train", "tune_threshold= true", "key 'tune_threshold' must be true or false"},
        {cmd_prepare, "prepare", "min_chars=-5", "key 'min_chars' must be in [0, 1000000]"},
        {cmd_prepare, "prepare", "split_order=3", "key 'split_order' must be in [1, 2]"},
        {cmd_prepare, "prepare", "seed=1.5", "key 'seed' must be an integer"},
        {cmd_baseline, "baseline", "w2v.negative=0", "key 'w2v.negative' must be in [1, 1000]"},
        {cmd_baseline, "baseline", "threshold=0", "key 'threshold' must be in (0, 1)"},
        {cmd_baseline, "baseline", "threshold=1.5", "key 'threshold' must be in (0, 1)"},
        {cmd_baseline, "baseline", "cv_folds=1", "key 'cv_folds' must be 0 or in [2, 1000]"},
        {cmd_baseline, "baseline", "vectorizer.max_df=0", "key 'vectorizer.max_df' must be in (0, 1]"},
        {cmd_baseline, "baseline", "linear.C=-1", "key 'linear.C' must be in (0, inf)"},
        {cmd_baseline, "baseline", "margin=101", "key 'margin' must be in [-100, 100]"},
    };
    char *nowhere = "data=/nonexistent/genre-ranges";
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *argv[] = {(char *)bad[k].name, "--out", "/nonexistent/genre-ranges-out", nowhere, (char *)bad[k].value};
        char err[1024], want[512];
        cr_expect_eq(run_captured(call_cmd, &(CmdCall){bad[k].cmd, 5, argv}, err, sizeof err), 1, "%s %s", bad[k].name, bad[k].value);
        snprintf(want, sizeof want, "genre: override '%s': %s\n", bad[k].value, bad[k].message);
        cr_expect_str_eq(err, want, "%s %s", bad[k].name, bad[k].value);
    }
}
