/* The subcommands of bin/genre. Each takes the arguments after its name
 * (argv[0] is the command name) and returns the process exit status. */
#ifndef GENRE_COMMANDS_H
#define GENRE_COMMANDS_H

#include "src/core/config.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

int cmd_prepare(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);

int cmd_baseline(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

/* The configuration keys of the configured commands (src/core/config.h),
 * for --help and for the test that every number in them has a range. */
extern const CfgKey *const train_schema, *const baseline_schema, *const prepare_schema, *const sweep_schema;

/* The configuration of a new training run from its layers (config.h), as
 * `genre train` resolves it before it starts: every key checked (and
 * tune_threshold_per_genre against tune_threshold), and data and init made
 * absolute paths (init a model directory: a run directory
 * stands for its best/). NULL with err_set. genre sweep resolves its runs
 * here, so that a run's config.json is what the sweep expects of it. */
Config *train_config_resolve(const char *what, int n_layers, const CfgLayer *layers);

#endif
