/* A sweep as a Slurm job array: one array task per run (the baselines
 * last, as in the sweep's order), each running
 * `genre sweep --config FILE --out DIR --only $SLURM_ARRAY_TASK_ID` (a
 * finished run is skipped, an interrupted one resumed, so the array can
 * simply be submitted again), then `genre sweep --collect DIR` once all
 * have ended. */
#ifndef GENRE_SWEEP_SLURM_H
#define GENRE_SWEEP_SLURM_H

#include "src/sweep/spec.h"

/* Writes the sbatch script to path atomically. genre, cwd, config and out
 * are absolute: the job runs genre from cwd (where the configuration's
 * relative paths resolve) on the sweep file config into out. 0, or -1
 * with err_set. */
int slurm_write(const char *path, const Sweep *s, const char *genre, const char *cwd, const char *config,
                const char *out);

#endif
