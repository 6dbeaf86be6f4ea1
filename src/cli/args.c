#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/core/config.h"
#include "src/core/err.h"

_Noreturn void args_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "genre %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'genre %s --help')\n", cmd);
    exit(2);
}

static _Noreturn void bad_value(const char *cmd, const ArgOpt *o, const char *v, const char *expected)
{
    fflush(stdout);
    fprintf(stderr, "genre %s: %s '%s': expected %s\n", cmd, o->name, v, expected);
    exit(1);
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices;; p++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!bar) return false;
        p = bar;
    }
}

/* Checks v and stores it in o's destination. */
static void set_value(const char *cmd, const ArgOpt *o, const char *v)
{
    char expected[160], text[128];
    if (o->num || o->real) {
        long n = 0;
        double x = 0;
        bool ok = o->num ? config_parse_int(v, &n) : config_parse_real(v, &x);
        if (!ok || !config_in_range(o->range, o->num ? (double)n : x)) {
            snprintf(expected, sizeof expected, "%s %s", o->num ? "an integer" : "a number",
                     config_range_text(o->range, text, sizeof text));
            bad_value(cmd, o, v, expected);
        }
        if (o->num) *o->num = n;
        else *o->real = x;
    } else {
        if (o->choices && !choice_ok(o->choices, v)) {
            snprintf(expected, sizeof expected, "one of %s", o->choices);
            bad_value(cmd, o, v, expected);
        }
        *o->str = v;
    }
}

static char *key_value(const char *key, const char *v)
{
    size_t n = strlen(key) + strlen(v) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s=%s", key, v);
    return s;
}

Args args_parse(const ArgSpec *spec, int argc, char **argv)
{
    Args a = {0};
    /* Every range is checked on every run, so that a bad one in a table
     * is found by any test of its command. */
    for (const ArgOpt *o = spec->opts; o->name; o++)
        if (o->num || o->real) config_in_range(o->range, 0);
    /* key=value arguments first, then the options' overrides: at most argc in all. */
    char **from_opts = NULL;
    int n_from_opts = 0;
    if (spec->overrides) {
        a.overrides = xmalloc((size_t)argc * sizeof *a.overrides);
        from_opts = xmalloc((size_t)argc * sizeof *from_opts);
    }
    if (spec->positional) a.positional = xmalloc((size_t)argc * sizeof *a.positional);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            spec->usage(stdout);
            exit(fflush(stdout) == 0 ? 0 : 1);
        }
        const ArgOpt *o = spec->opts;
        while (o->name && strcmp(o->name, arg)) o++;
        if (o->name && o->flag) {
            *o->flag = true;
        } else if (o->name) {
            if (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)) args_error(spec->cmd, "%s needs a value", arg);
            const char *v = argv[++i];
            if (o->key) from_opts[n_from_opts++] = key_value(o->key, v);
            else set_value(spec->cmd, o, v);
        } else if (spec->overrides && config_is_override(arg)) {
            a.overrides[a.n_overrides++] = xstrdup(arg);
        } else if (spec->positional && arg[0] != '-') {
            a.positional[a.n_positional++] = argv[i];
        } else {
            args_error(spec->cmd, "unexpected argument '%s'", arg);
        }
    }
    for (int k = 0; k < n_from_opts; k++) a.overrides[a.n_overrides++] = from_opts[k];
    free(from_opts);
    for (const ArgOpt *o = spec->opts; o->name; o++)
        if (o->required && !*o->str) args_error(spec->cmd, "%s is required", o->name);
    return a;
}

void args_free(Args *a)
{
    for (int i = 0; i < a->n_overrides; i++) free(a->overrides[i]);
    free(a->overrides);
    free(a->positional);
    *a = (Args){0};
}
