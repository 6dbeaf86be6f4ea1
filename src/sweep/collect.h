/* genre sweep's combined results, from whatever runs of a sweep have
 * finished (metrics.json and test_predictions.jsonl in their directories;
 * a baseline is a group of one run, in every table):
 *   DIR/summary.md    the seed's Combined Metrics and micro/macro/weighted/
 *                     samples tables for val and test, each cell the mean
 *                     +- standard deviation over a group's seeds; per-genre
 *                     F1; the paired bootstrap 95% interval of each group's
 *                     test-Jaccard difference to the reference group; with
 *                     baselines, "Test Jaccard against the baselines": each
 *                     training group's difference to each baseline with its
 *                     interval, and the best group's (by mean test Jaccard)
 *   DIR/summary.csv   the same numbers, one row per group, split and metric
 *   DIR/summary.json  the same, with the runs and their states
 *   DIR/plots/        per-genre precision, recall and F1 of each group;
 *                     per-genre Jaccard differences of the chosen pairs,
 *                     genres by support; precision and recall heatmaps of
 *                     the groups against the low- and high-support genres;
 *                     test Jaccard by description length (characters)
 * The finished runs must have been scored on the same test movies with the
 * same genres (a paired comparison needs them). Nothing is written unless
 * everything was read: plots/ is swapped in whole, each file atomically. */
#ifndef GENRE_SWEEP_COLLECT_H
#define GENRE_SWEEP_COLLECT_H

#include "src/core/config.h"
#include "src/sweep/spec.h"

/* Collects the sweep s whose runs are in dir (train and baseline: the
 * schemas its runs' config.json are judged by). *n_finished: the runs
 * included. 0, or -1 with err_set (no finished run is an error). */
int sweep_collect(const Sweep *s, const char *dir, const CfgKey *train, const CfgKey *baseline, int *n_finished);

#endif
