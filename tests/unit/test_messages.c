/* Messages that point the right way (issue 17): each names the file, the
 * line or the key and says what is wrong there, never an internal argument,
 * a library's flag or jansson's line -1. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/cli/commands.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/data/corpus.h"
#include "src/data/dataset.h"
#include "src/eval/report.h"
#include "src/train/state.h"
#include "tests/testutil.h"

static char root[128];

static const char *at(const char *name) { return path_in(root, name); }

static void put(const char *name, const char *text)
{
    FILE *f = fopen(at(name), "w");
    cr_assert_not_null(f, "%s", at(name));
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    fresh_tmp_dir(root, sizeof root, "messages");
}

static void cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

TestSuite(messages, .init = setup, .fini = cleanup);

/* Runs cmd with argv; expects exit status 1 and exactly `want` on stderr. */
static void expect_fails(int (*cmd)(int, char **), int argc, char **argv, const char *want)
{
    char err[4096];
    int rc = run_captured(call_cmd, &(CmdCall){cmd, argc, argv}, err, sizeof err);
    cr_expect_eq(rc, 1, "%s: exit %d", argv[0], rc);
    cr_expect_str_eq(err, want);
}

/* A missing --config file: jansson's "-1:-1" is never shown. */
Test(messages, a_missing_config_file_cannot_be_opened)
{
    char *path = strdup(at("nope.json")), want[512];
    char *argv[] = {"train", "--config", path, "data=x"};
    snprintf(want, sizeof want, "genre: %s: cannot open: No such file or directory\n", path);
    expect_fails(cmd_train, 4, argv, want);
    char *base[] = {"baseline", "--config", path};
    expect_fails(cmd_baseline, 3, base, want);
    free(path);
}

/* Every reader of a JSON file says the same for a file that is not there
 * (config.c, classifier.c, checkpoint.c, state.c, report.c). */
Test(messages, every_json_file_reader_says_cannot_open)
{
    mkdir(at("empty"), 0777);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", at("empty/config.json"));
    ModelWeights w;
    cr_expect_eq(checkpoint_load(&w, at("empty"), 0, 0), -1);
    cr_expect_str_eq(err_msg(), want);
    Classifier c;
    cr_expect_eq(classifier_open(&c, at("empty")), -1);
    cr_expect_str_eq(err_msg(), want);
    TrainState st;
    cr_expect_eq(train_state_load(&st, at("empty")), -1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", at("empty/state.json"));
    cr_expect_str_eq(err_msg(), want);
    const char *dirs[] = {at("empty")};
    cr_expect_eq(report_compare_dirs(NULL, 1, dirs), -1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", at("empty/metrics.json"));
    cr_expect_str_eq(err_msg(), want);
}

/* A parse error names the file and its line; a \u0000 is said plainly,
 * without jansson's "JSON_ALLOW_NUL". */
Test(messages, json_errors_name_the_line_in_plain_words)
{
    static const CfgKey schema[] = {{"data", CFG_STRING, NULL, NULL, "data"}, {NULL, 0, NULL, NULL, NULL}};
    put("nul.json", "{\n\"data\": \"a\\u0000b\"}\n");
    cr_expect_null(config_load(schema, at("nul.json"), 0, NULL));
    char want[512];
    snprintf(want, sizeof want, "%s:2: a string holds \\u0000 (a NUL character), which genre does not accept",
             at("nul.json"));
    cr_expect_str_eq(err_msg(), want);

    LabelSet ls = {.n_labels = 1, .names = (char *[]){"Drama"}};
    put("nul.jsonl", "{\"text\": \"ok\", \"labels\": []}\n{\"text\": \"a\\u0000b\", \"labels\": []}\n");
    Dataset d;
    cr_expect_eq(dataset_load(&d, at("nul.jsonl"), &ls), -1);
    snprintf(want, sizeof want, "%s:2: a string holds \\u0000 (a NUL character), which genre does not accept",
             at("nul.jsonl"));
    cr_expect_str_eq(err_msg(), want);
}

/* eval --data wants a .jsonl file: a directory is said to be one, not
 * read as a file of no movies. */
Test(messages, a_directory_is_not_a_jsonl_file)
{
    LabelSet ls = {.n_labels = 1, .names = (char *[]){"Drama"}};
    Dataset d;
    cr_expect_eq(dataset_load(&d, root, &ls), -1);
    char want[512];
    snprintf(want, sizeof want, "%s: is a directory, not a .jsonl file", root);
    cr_expect_str_eq(err_msg(), want);
}

/* A model directory that is not there, and a run that has no best/ yet,
 * are said to be so, not "not a fine-tuned genre classifier". */
Test(messages, a_missing_model_or_a_run_without_best)
{
    char *nope = strdup(at("nope")), want[512];
    char *ev[] = {"eval", "--model", nope, "--data", "x.jsonl"};
    snprintf(want, sizeof want, "genre: %s: cannot open: No such file or directory\n", nope);
    expect_fails(cmd_eval, 5, ev, want);

    mkdir(at("run"), 0777);
    mkdir(at("run/last"), 0777);
    put("run/.genre", "train\n");
    char *run = strdup(at("run"));
    char *pred[] = {"predict", "--model", run};
    snprintf(want, sizeof want, "genre: %s: a training run without best/ (it is saved at the run's first validation)\n",
             run);
    expect_fails(cmd_predict, 3, pred, want);
    free(nope);
    free(run);
}

/* A missing column shows the file's own header beside the one expected. */
Test(messages, a_missing_column_shows_the_files_header)
{
    mkdir(at("csv"), 0777);
    put("csv/war.csv", "genre,title,plot\nWar,X,A long enough description.\n");
    Corpus c = {0};
    cr_expect_eq(corpus_read_dir(&c, at("csv")), -1);
    char want[512];
    snprintf(want, sizeof want,
             "%s:1: missing column 'year' (the file's header: genre,title,plot; needed: genre, title, year, "
             "description)", at("csv/war.csv"));
    cr_expect_str_eq(err_msg(), want);
    corpus_free(&c);
}

/* split_order=3 is a key out of its range, not stratify's arguments. */
Test(messages, split_order_names_the_key)
{
    mkdir(at("csv"), 0777);
    put("csv/war.csv", "genre,title,year,description\nWar,X,1990,A long enough description of a war.\n");
    char *csv = strdup(at("csv")), *out = strdup(at("out"));
    char *argv[] = {"prepare", "--data", csv, "--out", out, "split_order=3"};
    expect_fails(cmd_prepare, 6, argv, "genre: override 'split_order=3': key 'split_order' must be in [1, 2]\n");
    free(csv);
    free(out);
}

/* Each range message names the one key that is wrong. */
Test(messages, a_range_message_names_its_key)
{
    char data[300], init[300];
    snprintf(data, sizeof data, "data=%s", root);
    snprintf(init, sizeof init, "init=%s", root);
    char *argv[] = {"train", data, init, "grad_accum=0"};
    expect_fails(cmd_train, 4, argv, "genre: override 'grad_accum=0': key 'grad_accum' must be in [1, 4096]\n");
}

/* A data directory that is not there is said to be missing (realpath's
 * errno, not one left over from init's). */
Test(messages, a_missing_data_directory)
{
    char data[300], init[300], want[400];
    snprintf(data, sizeof data, "data=%s", at("nope"));
    snprintf(init, sizeof init, "init=%s", root);
    char *argv[] = {"train", data, init};
    snprintf(want, sizeof want, "genre: data=%s: cannot open: No such file or directory\n", at("nope"));
    expect_fails(cmd_train, 3, argv, want);
}
