/* A sweep: training runs made from one base configuration by changing some
 * of its keys. The sweep file (JSON):
 *   {"base": "configs/train/focal.json" or {...a train config...},
 *    "runs": [{"loss.type": "bce"}, {"loss": {"type": "focal", "gamma": 1}}],
 *    "grid": {"seed": [1, 2, 3], "lr": [2e-5, 1e-4]},
 *    "reference": "loss.type=bce",
 *    "jaccard_diff": [["loss.type=focal", "loss.type=bce"]],
 *    "bootstrap": {"resamples": 10000, "seed": 1},
 *    "baselines": {"logreg_tfidf": {"base": "configs/baseline/logreg_tfidf.json", "tune_threshold": true},
 *                  "svm": "configs/baseline/svm_tfidf.json"}}
 * Every entry of runs (an explicit list; default one empty entry) is
 * crossed with the cartesian product of grid (runs outermost, the last grid
 * key fastest). Each run's configuration is, in order: base (a path is
 * read from the working directory, like every path of a configuration),
 * the command line's key=value overrides, its runs entry, its grid values;
 * the overrides may not name a key the runs or the grid set.
 *
 * A run is named by what differs: key=value for each key that the runs do
 * not all set to the same value, in the train schema's order, joined by
 * commas ("loss.type=focal,seed=1"; "base" when nothing differs); a value
 * keeps letters, digits and . _ + -, anything else becomes '_'. Runs whose
 * names differ only in their seed form a group (the name without its seed;
 * "base" when nothing else is left), whose metrics are averaged over the
 * seeds. reference names a group (or a run, meaning its group; default the
 * first group): every other group is compared with it. jaccard_diff lists
 * the pairs [A, B] whose per-genre Jaccard difference A - B is plotted
 * (default: each group against the reference).
 *
 * baselines (optional) names `genre baseline` runs to compare the groups
 * with on the same test movies: NAME: a baseline configuration file, or
 * an object of baseline keys (dotted or nested) with an optional "base":
 * FILE that they override. Each is run NAME "baseline=NAME" (characters
 * other than letters, digits and . _ + - as '_'), a group of its own,
 * after the training runs in the sweep's order. Its data is the training
 * runs' (the base's after the command line's overrides, absolute), so an
 * entry may not set data, and a run whose test set is not the data's whole
 * one (limit_eval, drop_labels) is refused with baselines; the command
 * line's other overrides are the training runs' alone. reference and
 * jaccard_diff may name a baseline.
 *
 * Everything is checked before any run starts: unknown keys (in the sweep
 * file, its runs and grid, the base, the baselines), values out of their
 * key's range, names that collide, a reference or pair naming no group. */
#ifndef GENRE_SWEEP_SPEC_H
#define GENRE_SWEEP_SPEC_H

#include <jansson.h>
#include <stdint.h>

#include "src/core/config.h"

/* The sweep file's own settings (reference, bootstrap.*), as a schema. */
extern const CfgKey sweep_settings[];

typedef struct {
    char *key;     /* dotted train key */
    json_t *value; /* as the sweep file gives it */
} SweepSet;

typedef enum { SWEEP_TRAIN, SWEEP_BASELINE } SweepKind;

typedef struct {
    char *name;     /* the run directory's name under the sweep directory */
    char *group;    /* the name without its seed (a baseline: its name) */
    SweepKind kind; /* genre train or genre baseline */
    int n_set;
    SweepSet *set;  /* the keys this run sets, in schema order (a baseline: none) */
    json_t *config; /* the resolved train or baseline configuration (nested, config_to_json) */
} SweepRun;

typedef struct {
    char *source;   /* the sweep file */
    char *name;     /* its base name without .json */
    int n_overrides;
    char **overrides;
    int n_runs;
    SweepRun *runs; /* the training runs, then the baselines */
    int n_train;    /* runs[0, n_train) are training runs, the rest baselines */
    int n_groups;
    char **groups;  /* in order of their first run */
    int n_train_groups; /* groups[0, n_train_groups) are the training runs', the rest one per baseline */
    int reference;  /* index into groups */
    int n_pairs;
    int (*pairs)[2]; /* jaccard_diff, as group indices */
    long resamples;
    uint64_t boot_seed;
} Sweep;

/* A run's resolved train configuration from its layers (config.h), as a
 * new reference, or NULL with err_set; `what` names the sweep file. */
typedef json_t *(*SweepResolve)(const char *what, int n_layers, const CfgLayer *layers);

/* Reads and expands the sweep file at path against the train schema, and
 * its baselines against the baseline schema (NULL: a sweep with baselines
 * is refused). 0, or -1 with err_set naming the file and the key. */
int sweep_load(Sweep *s, const char *path, const CfgKey *train, SweepResolve resolve, const CfgKey *baseline,
               int n_overrides, char *const *overrides);

/* The expanded sweep as DIR/sweep.json (what genre sweep --collect reads),
 * and back; a sweep.json without "kind" in its runs (an older genre's)
 * holds training runs only. 0, or -1 with err_set. */
int sweep_save(const Sweep *s, const char *path);
int sweep_read(Sweep *s, const char *path);
void sweep_free(Sweep *s);

typedef enum {
    RUN_NEW,         /* no directory yet, or an empty one: genre train (baseline) --out */
    RUN_FINISHED,    /* metrics.json (a baseline: and test_predictions.jsonl): skipped */
    RUN_INTERRUPTED, /* a checkpoint in last/ and no metrics.json: genre train --resume */
    RUN_RESTART,     /* a run stopped before its first checkpoint: genre train --force; a
                        baseline without its predictions (an older genre's): genre baseline
                        again, which replaces its own output */
} RunState;

/* The state of run k in dir/NAME. A directory that is not a run of k's
 * kind, or a run whose config.json is not the sweep's for it, is an error
 * naming the directory (and the first key that differs). baseline: the
 * baseline schema (needed when k is a baseline). 0, or -1 with err_set. */
int sweep_run_state(const Sweep *s, int k, const char *dir, const CfgKey *train, const CfgKey *baseline,
                    RunState *state);

/* The value of a dotted key in a nested object (borrowed), or NULL. */
json_t *json_dotted(const json_t *obj, const char *key);

#endif
