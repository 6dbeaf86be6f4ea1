/* src/cli/args: the one command-line parser, its strict numbers and its
 * one message form. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/cli/args.h"
#include "tests/testutil.h"

static const char *model, *pool;
static long max_len, top;
static double threshold;
static bool tune;

static const ArgOpt opts[] = {
    ARG_MODEL(&model),
    {.name = "--pool", .str = &pool, .choices = "cls|mean"},
    {.name = "--top", .num = &top, .range = "[1, 20]"},
    ARG_MAX_LEN(&max_len),
    ARG_THRESHOLD(&threshold),
    {.name = "--tune", .flag = &tune},
    {.name = "--seed", .key = "seed"},
    {NULL},
};

static Args parse(int argc, char **argv)
{
    model = pool = NULL, max_len = 128, top = 0, threshold = NAN, tune = false;
    return args_parse(&(ArgSpec){.cmd = "test", .opts = opts, .overrides = true}, argc, argv);
}

/* Parses argv in a child; returns its exit status, its stderr in err. */
static int parse_fails(char *err, size_t n, int argc, char **argv)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/genre-args-%d.err", (int)getpid());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(path, "w", stderr)) _exit(99);
        parse(argc, argv);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    char *text = slurp(path), *at = err;
    *err = '\0';
    /* Keeps the messages, not LeakSanitizer's notes ("==PID==...") on a forked child. */
    for (char *line = strtok(text ? text : "", "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "==", 2)) at += snprintf(at, n - (size_t)(at - err), "%s\n", line);
    free(text);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

Test(args, options_flags_and_overrides)
{
    char *argv[] = {"test", "--model", "m", "--max-len", "16", "a.b=1", "--seed", "7", "--threshold", "0.25",
                    "--tune", "seed=3", "--pool", "mean"};
    Args a = parse(14, argv);
    cr_expect_str_eq(model, "m");
    cr_expect_str_eq(pool, "mean");
    cr_expect_eq(max_len, 16);
    cr_expect_float_eq(threshold, 0.25, 1e-12);
    cr_expect(tune);
    cr_assert_eq(a.n_overrides, 3);
    cr_expect_str_eq(a.overrides[0], "a.b=1");
    cr_expect_str_eq(a.overrides[1], "seed=3");
    cr_expect_str_eq(a.overrides[2], "seed=7", "the option comes last, so it wins");
    args_free(&a);
}

static void usage(FILE *f) { fputs("usage: genre test\n", f); }

/* --help wins over a missing --model and over whatever follows it. */
Test(args, help_prints_usage_and_exits_0, .exit_code = 0)
{
    char *argv[] = {"test", "-h", "--max-len", "bad"};
    cr_redirect_stdout();
    args_parse(&(ArgSpec){.cmd = "test", .opts = opts, .usage = usage}, 4, argv);
    cr_assert_fail("--help returned");
}

Test(args, numbers_are_whole_arguments_in_range)
{
    const char *bad_ints[] = {"16x", "", " 16", "+16", "1", "513", "99999999999999999999", "0x10", "16.0"};
    char err[512];
    for (size_t k = 0; k < sizeof bad_ints / sizeof *bad_ints; k++) {
        char *argv[] = {"test", "--model", "m", "--max-len", (char *)bad_ints[k]};
        cr_expect_eq(parse_fails(err, sizeof err, 5, argv), 1, "'%s'", bad_ints[k]);
        char want[128];
        snprintf(want, sizeof want, "genre test: --max-len '%s': expected an integer in [2, 512]\n", bad_ints[k]);
        cr_expect_str_eq(err, want);
    }
    /* Hex floats, which strtod reads, are not decimal numbers. */
    const char *bad_reals[] = {"1", "0", "-0.5", "nan", "inf", "0.5x", " 0.5", "", "0x0.8p0", "+0.5", "5e-1x", "1e"};
    for (size_t k = 0; k < sizeof bad_reals / sizeof *bad_reals; k++) {
        char *argv[] = {"test", "--model", "m", "--threshold", (char *)bad_reals[k]};
        cr_expect_eq(parse_fails(err, sizeof err, 5, argv), 1, "'%s'", bad_reals[k]);
        char want[128];
        snprintf(want, sizeof want, "genre test: --threshold '%s': expected a number in (0, 1)\n", bad_reals[k]);
        cr_expect_str_eq(err, want);
    }
    char *argv[] = {"test", "--model", "m", "--max-len", "2", "--top", "20", "--threshold", ".5"};
    Args a = parse(9, argv);
    cr_expect_eq(max_len, 2);
    cr_expect_eq(top, 20);
    cr_expect_float_eq(threshold, 0.5, 1e-12);
    args_free(&a);
    char *exp_argv[] = {"test", "--model", "m", "--max-len", "512", "--threshold", "25e-2"};
    a = parse(7, exp_argv);
    cr_expect_eq(max_len, 512);
    cr_expect_float_eq(threshold, 0.25, 1e-12);
    args_free(&a);
}

Test(args, command_line_errors_exit_2)
{
    char err[512];
    char *unknown[] = {"test", "--model", "m", "--bogus"};
    cr_expect_eq(parse_fails(err, sizeof err, 4, unknown), 2);
    cr_expect_str_eq(err, "genre test: unexpected argument '--bogus' (see 'genre test --help')\n");
    char *no_value[] = {"test", "--model", "m", "--pool"};
    cr_expect_eq(parse_fails(err, sizeof err, 4, no_value), 2);
    cr_expect_str_eq(err, "genre test: --pool needs a value (see 'genre test --help')\n");
    char *option_as_value[] = {"test", "--model", "--top", "3"};
    cr_expect_eq(parse_fails(err, sizeof err, 4, option_as_value), 2);
    cr_expect_str_eq(err, "genre test: --model needs a value (see 'genre test --help')\n");
    char *missing[] = {"test", "--top", "3"};
    cr_expect_eq(parse_fails(err, sizeof err, 3, missing), 2);
    cr_expect_str_eq(err, "genre test: --model is required (see 'genre test --help')\n");
    char *operand[] = {"test", "--model", "m", "file.txt"};
    cr_expect_eq(parse_fails(err, sizeof err, 4, operand), 2, "no positional arguments in this spec");
    char *choice[] = {"test", "--model", "m", "--pool", "max"};
    cr_expect_eq(parse_fails(err, sizeof err, 5, choice), 1);
    cr_expect_str_eq(err, "genre test: --pool 'max': expected one of cls|mean\n");
}

Test(args, positional_operands)
{
    const char *out = NULL;
    const ArgOpt o[] = {ARG_OUT(&out, false), {NULL}};
    char *argv[] = {"compare", "run1", "--out", "t.md", "run=2"};
    Args a = args_parse(&(ArgSpec){.cmd = "compare", .opts = o, .positional = true}, 5, argv);
    cr_expect_str_eq(out, "t.md");
    cr_assert_eq(a.n_positional, 2, "without overrides, a=b is an operand");
    cr_expect_str_eq(a.positional[0], "run1");
    cr_expect_str_eq(a.positional[1], "run=2");
    args_free(&a);
}
