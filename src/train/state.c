#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/eval/tbevents.h"
#include "src/train/state.h"

int train_state_save(const TrainState *s, const char *dir)
{
    char config_fp[17], data_fp[17];
    snprintf(config_fp, sizeof config_fp, "%016llx", (unsigned long long)s->config_fp);
    snprintf(data_fp, sizeof data_fp, "%016llx", (unsigned long long)s->data_fp);
    json_t *o = json_pack("{s:I, s:i, s:i, s:i, s:f, s:I, s:I, s:s, s:I, s:f, s:s, s:s}", "step",
                          (json_int_t)s->step, "epoch", s->epoch, "batch", s->batch, "micro_per_step", s->per_step,
                          "best", s->best, "best_step", (json_int_t)s->best_step, "log_bytes",
                          (json_int_t)s->log_bytes, "tb_file", s->tb_file, "tb_bytes", (json_int_t)s->tb_bytes,
                          "elapsed_s", s->elapsed, "config_fnv1a64", config_fp, "data_fnv1a64", data_fp);
    /* 17 digits: the best score must come back exactly, or a resumed run
     * could pick another best checkpoint. */
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", dir);
    int rc = json_write_file(path, o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    return rc;
}

static int get_int(json_t *o, const char *path, const char *key, long *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set("%s: \"%s\" missing or not a non-negative integer", path, key);
    *out = (long)json_integer_value(v);
    return 0;
}

static int get_real(json_t *o, const char *path, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return err_set("%s: \"%s\" missing or not a number", path, key);
    *out = json_number_value(v);
    return 0;
}

static int get_hex64(json_t *o, const char *path, const char *key, uint64_t *out)
{
    const char *v = json_string_value(json_object_get(o, key));
    char *end = NULL;
    unsigned long long x = v ? strtoull(v, &end, 16) : 0;
    if (!v || strlen(v) != 16 || *end)
        return err_set("%s: \"%s\" missing or not 16 hex digits (a checkpoint of an older genre?)", path, key);
    *out = (uint64_t)x;
    return 0;
}

int train_state_load(TrainState *s, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", dir);
    json_t *o = json_read_file(path, 0);
    if (!o) return -1;
    long epoch = 0, batch = 0;
    int rc = get_int(o, path, "step", &s->step) || get_int(o, path, "epoch", &epoch) ||
                     get_int(o, path, "batch", &batch) || get_real(o, path, "best", &s->best) ||
                     get_int(o, path, "best_step", &s->best_step) ||
                     get_int(o, path, "log_bytes", &s->log_bytes) ||
                     get_real(o, path, "elapsed_s", &s->elapsed) ||
                     get_hex64(o, path, "config_fnv1a64", &s->config_fp) ||
                     get_hex64(o, path, "data_fnv1a64", &s->data_fp)
                 ? -1
                 : 0;
    long per_step = 0;
    if (rc == 0 && json_object_get(o, "micro_per_step") && get_int(o, path, "micro_per_step", &per_step) != 0) rc = -1;
    /* The resumed run cuts and removes files by this name: only ever one
     * of its own tb/ files. */
    const json_t *tb = json_object_get(o, "tb_file");
    s->tb_file[0] = '\0';
    s->tb_bytes = 0;
    if (rc == 0 && tb) {
        const char *name = json_string_value(tb);
        if (!name || (*name && !tb_name_ok(name)))
            rc = err_set("%s: \"tb_file\" is not the name of a TensorBoard events file", path);
        else if (*name && (rc = get_int(o, path, "tb_bytes", &s->tb_bytes)) == 0)
            snprintf(s->tb_file, sizeof s->tb_file, "%s", name);
    }
    json_decref(o);
    if (rc) return -1;
    if (epoch > 1 << 20 || batch > 1 << 30 || per_step > 1 << 24)
        return err_set("%s: epoch, batch or micro_per_step out of range", path);
    s->per_step = (int)per_step;
    s->epoch = (int)epoch;
    s->batch = (int)batch;
    return 0;
}
