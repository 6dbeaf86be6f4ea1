/* The command-line parser of the subcommands (all but train, whose settings
 * are its config schema): each command lists its options in a table, and
 * every value is checked here, once, with one message form.
 *
 * An option is "--name VALUE", or "--name" alone for a flag; a value may
 * not start with "--", so "--out --seed 3" is an error, not a directory
 * named "--seed". Numbers are read strictly (config_parse_int and
 * config_parse_real: the whole argument, decimal) within the option's
 * range, written and checked as a config key's is (src/core/config.h).
 * Each error is one line on stderr, then exit:
 *   genre CMD: unexpected argument 'X' (see 'genre CMD --help')     status 2
 *   genre CMD: --out needs a value (see 'genre CMD --help')         status 2
 *   genre CMD: --model is required (see 'genre CMD --help')         status 2
 *   genre CMD: --max-len '16x': expected an integer in [2, 512]      status 1
 * Status 2: a command line the command cannot read; status 1: a value it
 * read and refuses, like any other bad input. --help or -h prints the
 * command's usage on stdout and exits 0, whatever follows it. */
#ifndef GENRE_ARGS_H
#define GENRE_ARGS_H

#include <stdbool.h>
#include <stdio.h>

/* One option. Give it exactly one destination; a destination keeps its
 * initial value (the default) unless the option is given. */
typedef struct {
    const char *name;    /* "--max-len"; NULL ends a table */
    bool *flag;          /* set to true; takes no value */
    const char **str;    /* the value as given */
    long *num;           /* an integer in range */
    double *real;        /* a number in range */
    const char *key;     /* the config override "key=VALUE", placed after the
                            key=value arguments so that the option wins (the
                            spec must take overrides); the key's range holds */
    const char *range;   /* num, real: interval notation, "[2, 512]", "(0, 1)" */
    const char *choices; /* str: the values allowed, "cls|mean"; NULL: any */
    bool required;       /* str: an error when not given */
} ArgOpt;

/* The options several commands share, each with its one meaning and range. */
#define ARG_MODEL(dest) {.name = "--model", .str = (dest), .required = true}
#define ARG_OUT(dest, req) {.name = "--out", .str = (dest), .required = (req)}
/* Tokens per text, [CLS] and [SEP] included: DistilBERT's 512 positions at most. */
#define ARG_MAX_LEN(dest) {.name = "--max-len", .num = (dest), .range = "[2, 512]"}
/* Where the model runs (models/backend.h). */
#define ARG_DEVICE(dest) {.name = "--device", .str = (dest), .choices = "cpu|cuda"}
/* A probability above which a genre is predicted. */
#define ARG_THRESHOLD(dest) {.name = "--threshold", .real = (dest), .range = "(0, 1)"}

typedef struct {
    const char *cmd;     /* the command, named in every message: "predict" */
    const ArgOpt *opts;
    void (*usage)(FILE *f); /* for --help */
    bool overrides;      /* key=value arguments (config_is_override) are taken */
    bool positional;     /* other arguments not starting with '-' are taken */
} ArgSpec;

typedef struct {
    char **overrides;    /* owned copies, for config_load */
    int n_overrides;
    char **positional;   /* pointers into argv, in order */
    int n_positional;
} Args;

/* Parses argv[1..argc) (argv[0] is the command name), filling the options'
 * destinations; exits as above on the first error or on --help. */
Args args_parse(const ArgSpec *spec, int argc, char **argv);
/* Frees what args_parse allocated for overrides and positional arguments. */
void args_free(Args *a);

/* A command line the table cannot judge alone (options that exclude each
 * other, a missing operand): prints "genre CMD: MESSAGE (see 'genre CMD
 * --help')" and exits with status 2. */
_Noreturn void args_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
