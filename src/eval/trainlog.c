#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/eval/trainlog.h"

void trainlog_step(FILE *log, long step, int epoch, double loss, float lr, float grad_norm,
                   double samples_per_s)
{
    fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, "
                 "\"samples_per_s\": %.2f}\n", step, epoch, loss, lr, grad_norm, samples_per_s);
}

void trainlog_val(FILE *log, long step, int epoch, const Metrics *m, const LabelSet *labels)
{
    json_t *row = metrics_to_json(m, labels);
    json_object_del(row, "per_label");
    char *s = json_dumps(row, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"val\": %s}\n", step, epoch, s);
    free(s);
    json_decref(row);
}

/* Appends (step, v), first dropping the points at or past `step`: those
 * belong to a run that a resume logged again. */
static void curve_push(TrainCurve *c, double step, double v)
{
    while (c->n > 0 && c->step[c->n - 1] >= step) c->n--;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->step = xrealloc(c->step, (size_t)c->cap * sizeof *c->step);
        c->value = xrealloc(c->value, (size_t)c->cap * sizeof *c->value);
    }
    c->step[c->n] = step;
    c->value[c->n++] = v;
}

static void curve_free(TrainCurve *c)
{
    free(c->step);
    free(c->value);
    *c = (TrainCurve){0};
}

void trainlog_free(TrainLog *log)
{
    curve_free(&log->loss);
    curve_free(&log->lr);
    curve_free(&log->grad_norm);
    curve_free(&log->epoch);
    curve_free(&log->val_jaccard);
    curve_free(&log->val_f1);
}

/* The number at key in o: 0, or -1 with err_set naming `where` (FILE:LINE). */
static int number(const json_t *o, const char *key, double *v, const char *where, const char *prefix)
{
    const json_t *x = json_object_get(o, key);
    if (!x) return err_set("%s: \"%s%s\" is missing", where, prefix, key);
    if (!json_is_number(x)) return err_set("%s: \"%s%s\" is not a number", where, prefix, key);
    *v = json_number_value(x);
    if (!isfinite(*v)) return err_set("%s: \"%s%s\" is not finite", where, prefix, key);
    return 0;
}

/* One parsed line into the curves: 0, or -1 with err_set. */
static int add_line(TrainLog *log, const json_t *o, const char *where)
{
    if (!json_is_object(o)) return err_set("%s: not a JSON object", where);
    const json_t *val = json_object_get(o, "val");
    int has_loss = json_object_get(o, "loss") != NULL;
    if (!val && !has_loss) return 0;
    double step, v;
    if (number(o, "step", &step, where, "") != 0) return -1;
    if (has_loss) {
        if (number(o, "loss", &v, where, "") != 0) return -1;
        curve_push(&log->loss, step, v);
        /* epoch, lr and grad_norm are optional, but when present must be numbers. */
        const char *keys[] = {"epoch", "lr", "grad_norm"};
        TrainCurve *curves[] = {&log->epoch, &log->lr, &log->grad_norm};
        for (int k = 0; k < 3; k++) {
            if (!json_object_get(o, keys[k])) continue;
            if (number(o, keys[k], &v, where, "") != 0) return -1;
            curve_push(curves[k], step, v);
        }
    }
    if (val) {
        if (!json_is_object(val)) return err_set("%s: \"val\" is not an object", where);
        double f1;
        if (number(val, "jaccard", &v, where, "val.") != 0 || number(val, "f1", &f1, where, "val.") != 0) return -1;
        curve_push(&log->val_jaccard, step, v);
        curve_push(&log->val_f1, step, f1);
    }
    return 0;
}

int trainlog_read(TrainLog *log, const char *path)
{
    *log = (TrainLog){0};
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: %s", path, strerror(errno));
    char *line = NULL, where[4200];
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (long no = 1; rc == 0 && (len = getline(&line, &cap, f)) >= 0; no++) {
        snprintf(where, sizeof where, "%s:%ld", path, no);
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)len, 0, &jerr);
        if (!o) rc = err_set("%s: not valid JSON (%s)", where, json_error_what(&jerr));
        else rc = add_line(log, o, where);
        json_decref(o);
    }
    if (rc == 0 && ferror(f)) rc = err_set("%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (rc != 0) trainlog_free(log);
    return rc;
}
