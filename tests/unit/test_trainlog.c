/* Reading training logs: known lines give known curve points, a resumed
 * run's repeated steps replace the old ones, and a bad line is an error
 * naming the file and line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/core/err.h"
#include "tests/testutil.h"
#include "src/eval/trainlog.h"

static char *write_log(const char *name, const char *text)
{
    char file[64];
    snprintf(file, sizeof file, "log-%s.jsonl", name);
    char *path = write_temp(file, text);
    cr_assert_not_null(path, "cannot write %s", file);
    return path;
}

Test(trainlog, steps_and_evaluations_become_curves)
{
    char *p = write_log("ok",
        "{\"step\": 1, \"epoch\": 1, \"loss\": 0.7, \"lr\": 0, \"grad_norm\": 0.3, \"samples_per_s\": 12.5}\n"
        "{\"step\": 2, \"epoch\": 1, \"loss\": 0.6, \"lr\": 1e-05, \"grad_norm\": 0.4, \"samples_per_s\": 13}\n"
        "\n"
        "{\"step\": 2, \"epoch\": 1, \"val\": {\"n\": 10, \"jaccard\": 0.25, \"f1\": 0.3, \"hamming\": 0.1}}\n"
        "{\"event\": \"resumed\", \"step\": 2}\n"
        "{\"step\": 3, \"epoch\": 2, \"loss\": 0.5}\n"
        "{\"step\": 4, \"epoch\": 2, \"loss\": 0.45, \"lr\": 5e-06, \"grad_norm\": 0.2}\n"
        "{\"step\": 4, \"epoch\": 2, \"val\": {\"jaccard\": 0.375, \"f1\": 0.5}}");
    TrainLog log;
    cr_assert_eq(trainlog_read(&log, p), 0, "%s", err_msg());
    cr_assert_eq(log.loss.n, 4);
    double steps[] = {1, 2, 3, 4}, loss[] = {0.7, 0.6, 0.5, 0.45};
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(log.loss.step[i], steps[i]);
        cr_expect_eq(log.loss.value[i], loss[i]);
    }
    cr_assert_eq(log.epoch.n, 4);
    cr_expect_eq(log.epoch.value[1], 1);
    cr_expect_eq(log.epoch.value[2], 2);
    cr_assert_eq(log.lr.n, 3, "step 3 logs no lr");
    cr_expect_eq(log.lr.step[2], 4);
    cr_expect_eq(log.lr.value[1], 1e-5);
    cr_assert_eq(log.grad_norm.n, 3);
    cr_expect_eq(log.grad_norm.value[2], 0.2);
    cr_assert_eq(log.val_jaccard.n, 2);
    cr_assert_eq(log.val_f1.n, 2);
    cr_expect_eq(log.val_jaccard.step[1], 4);
    cr_expect_eq(log.val_jaccard.value[0], 0.25);
    cr_expect_eq(log.val_f1.value[1], 0.5);
    trainlog_free(&log);
    unlink(p);
}

Test(trainlog, a_resumed_run_replaces_the_steps_it_logs_again)
{
    /* Killed after step 3, resumed from the checkpoint of step 2 without
     * truncating the log: steps 3 and 4 of the second run are the ones kept. */
    char *p = write_log("resumed",
        "{\"step\": 1, \"loss\": 0.9}\n"
        "{\"step\": 2, \"loss\": 0.8}\n"
        "{\"step\": 2, \"val\": {\"jaccard\": 0.1, \"f1\": 0.2}}\n"
        "{\"step\": 3, \"loss\": 0.75}\n"
        "{\"step\": 3, \"loss\": 0.7}\n"
        "{\"step\": 4, \"loss\": 0.6}\n"
        "{\"step\": 2, \"val\": {\"jaccard\": 0.15, \"f1\": 0.25}}\n");
    TrainLog log;
    cr_assert_eq(trainlog_read(&log, p), 0, "%s", err_msg());
    cr_assert_eq(log.loss.n, 4);
    cr_expect_eq(log.loss.value[2], 0.7);
    cr_expect_eq(log.loss.value[3], 0.6);
    cr_assert_eq(log.val_jaccard.n, 1);
    cr_expect_eq(log.val_jaccard.value[0], 0.15);
    trainlog_free(&log);
    unlink(p);
}

/* The log's error names the file and the line, and says what is wrong. */
static void expect_error(const char *name, const char *text, int line, const char *what)
{
    char *p = write_log(name, text);
    TrainLog log;
    cr_expect_eq(trainlog_read(&log, p), -1, "%s: should fail", name);
    char where[300];
    snprintf(where, sizeof where, "%s:%d: ", p, line);
    cr_expect(strstr(err_msg(), where) && strstr(err_msg(), what), "%s: got '%s', want '%s' and '%s'", name,
              err_msg(), where, what);
    cr_expect_eq(log.loss.n, 0, "nothing kept after an error");
    unlink(p);
}

Test(trainlog, bad_lines_are_errors_naming_file_and_line)
{
    const char *ok = "{\"step\": 1, \"loss\": 0.9}\n";
    char text[512];
    snprintf(text, sizeof text, "%s%s{\"step\": 3, \"loss\": 0.7, \"lr\"", ok, ok);
    expect_error("cut", text, 3, "not valid JSON");
    snprintf(text, sizeof text, "%s{\"step\": 2, \"loss\": \"nan\"}\n%s", ok, ok);
    expect_error("string", text, 2, "\"loss\" is not a number");
    snprintf(text, sizeof text, "%s{\"loss\": 0.5}\n", ok);
    expect_error("nostep", text, 2, "\"step\" is missing");
    snprintf(text, sizeof text, "%s{\"step\": 1, \"val\": {\"jaccard\": 0.5}}\n", ok);
    expect_error("nof1", text, 2, "\"val.f1\" is missing");
    snprintf(text, sizeof text, "%s[1, 2]\n", ok);
    expect_error("array", text, 2, "not a JSON object");
    snprintf(text, sizeof text, "%s{\"step\": 2, \"loss\": NaN}\n", ok);
    expect_error("nan", text, 2, "not valid JSON");
    snprintf(text, sizeof text, "{\"step\": 1, \"loss\": 0.9, \"grad_norm\": null}\n");
    expect_error("null", text, 1, "\"grad_norm\" is not a number");

    TrainLog log;
    cr_expect_eq(trainlog_read(&log, "/nonexistent/log.jsonl"), -1);
    cr_expect(strstr(err_msg(), "/nonexistent/log.jsonl"), "%s", err_msg());
}
