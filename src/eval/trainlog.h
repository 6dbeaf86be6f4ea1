/* A training run's log (log.jsonl, one JSON object a line): the trainer
 * writes it through trainlog_step and trainlog_val, reports read it back
 * into curves over the step axis:
 *   step line        {"step": N, "epoch": E, "loss": x, "lr": x, "grad_norm": x, ...}
 *   validation line  {"step": N, "epoch": E, "val": {"jaccard": x, "f1": x, ...}}
 * "step" and "loss" are required on a step line; "epoch", "lr" and
 * "grad_norm" are read where present; a validation line needs "val.jaccard"
 * and "val.f1".
 * Objects with neither "loss" nor "val" (other events) are skipped; blank
 * lines too. Anything else that is not such an object -- text that is not
 * JSON, a line cut by a kill, a missing or non-numeric value -- is an error
 * naming the file and line: the log is complete when a report reads it, so
 * a bad line means lost data, and a curve must not hide it.
 * A resumed run may log steps again: a point whose step is not past the
 * curve's last one replaces the points from that step on, so each curve
 * keeps the latest run of every step, in step order. */
#ifndef GENRE_TRAINLOG_H
#define GENRE_TRAINLOG_H

#include <stdio.h>

#include "src/data/dataset.h"
#include "src/eval/metrics.h"

/* Appends a step line: step, epoch, loss (6 decimals), lr, grad_norm and
 * samples_per_s (the one value that differs between identical runs). */
void trainlog_step(FILE *log, long step, int epoch, double loss, float lr, float grad_norm,
                   double samples_per_s);

/* Appends a validation line: the metrics of m without their per-label part. */
void trainlog_val(FILE *log, long step, int epoch, const Metrics *m, const LabelSet *labels);

typedef struct {
    int n, cap;
    double *step, *value;
} TrainCurve;

typedef struct {
    TrainCurve loss, lr, grad_norm;   /* one point per optimizer step */
    TrainCurve epoch;                 /* the epoch (1, 2, ...) of each step */
    TrainCurve val_jaccard, val_f1;   /* one point per evaluation on val */
} TrainLog;

/* 0, or -1 with err_set ("FILE:LINE: what is wrong"); on error *log is empty. */
int trainlog_read(TrainLog *log, const char *path);
void trainlog_free(TrainLog *log);

#endif
