#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/core/outdir.h"
#include "src/sweep/spec.h"

/* The longest run name: room under NAME_MAX for the suffixes the trainer
 * and the atomic writers add beside a directory (".tmp.PID"). */
#define NAME_LIMIT 200

const CfgKey sweep_settings[] = {
    {"reference", CFG_STRING, "\"\"", NULL, "the group (or run) every other group is compared with (\"\": the first)"},
    {"bootstrap.resamples", CFG_INT, "10000", "[100, 1000000]", "bootstrap resamples of the test movies"},
    {"bootstrap.seed", CFG_INT, "1", "[0, 9223372036854775807]", "seed of the bootstrap's draws"},
    {NULL, CFG_INT, NULL, NULL, NULL},
};

/* The keys of the sweep file that are not settings: its structure. */
static const char *const structure[] = {"base", "runs", "grid", "jaccard_diff", "baselines"};

typedef struct {
    int n;
    SweepSet *v;
} SetList;

static void sets_free(SetList *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].key);
        json_decref(l->v[i].value);
    }
    free(l->v);
    *l = (SetList){0};
}

static int key_index(const CfgKey *schema, const char *key)
{
    for (int i = 0; schema[i].key; i++)
        if (!strcmp(schema[i].key, key)) return i;
    return -1;
}

static bool is_section(const CfgKey *schema, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const CfgKey *k = schema; k->key; k++)
        if (!strncmp(k->key, prefix, n) && k->key[n] == '.') return true;
    return false;
}

static int set_find(const SetList *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].key, key)) return i;
    return -1;
}

/* The leaves of obj as dotted train keys (nested objects for sections, as
 * a train config file has them); with lists, each value must be a
 * non-empty array (a grid axis). */
static int flatten(SetList *out, json_t *obj, const char *prefix, const CfgKey *train, const char *where, bool lists)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char key[256];
        if ((size_t)snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", name) >= sizeof key)
            return err_set("%s: key '%.40s...' is too long", where, key);
        if (json_is_object(v) && is_section(train, key)) {
            if (flatten(out, v, key, train, where, lists) != 0) return -1;
            continue;
        }
        if (key_index(train, key) < 0) return err_set("%s: unknown key '%s'", where, key);
        if (set_find(out, key) >= 0) return err_set("%s: key '%s' is set twice", where, key);
        if (lists && (!json_is_array(v) || json_array_size(v) == 0))
            return err_set("%s: key '%s' must be a non-empty list of the values to sweep", where, key);
        out->v = xrealloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
        out->v[out->n++] = (SweepSet){xstrdup(key), json_incref(v)};
    }
    return 0;
}

/* ---- names ------------------------------------------------------------- */

/* "2e-05" -> "2e-5", "1e+20" -> "1e20". */
static void short_exponent(char *s)
{
    char *e = strchr(s, 'e');
    if (!e) return;
    char *d = e + 1, *w = e + 1;
    if (*d == '+') d++;
    else if (*d == '-') *w++ = *d++;
    while (*d == '0' && d[1]) d++;
    memmove(w, d, strlen(d) + 1);
}

/* What a directory name should not hold, as '_': letters, digits and . _ + - stay. */
static void name_safe(char *s)
{
    for (char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("._+-", *c)))
            *c = '_';
}

/* A value as it appears in a name: numbers in their shortest exact form
 * (2e-5, 0.375, 3), strings with what a file name should not hold
 * replaced by '_', lists as their items joined by '+' ("none" if empty). */
static void value_text(char *out, size_t cap, const json_t *v)
{
    if (json_is_integer(v)) {
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        /* The shortest precision that reads back exactly, then the shorter of
         * the plain and the exponent form: 0.375, 2e-5, 1e-4 (not 0.0001). */
        double x = json_real_value(v);
        int p = 1;
        char plain[64], expo[64];
        for (; p < 17; p++) {
            snprintf(plain, sizeof plain, "%.*g", p, x);
            if (strtod(plain, NULL) == x) break;
        }
        snprintf(plain, sizeof plain, "%.*g", p, x);
        snprintf(expo, sizeof expo, "%.*e", p - 1, x);
        short_exponent(plain);
        short_exponent(expo);
        snprintf(out, cap, "%s", strlen(expo) < strlen(plain) ? expo : plain);
    } else if (json_is_boolean(v)) {
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_string(v)) {
        snprintf(out, cap, "%s", json_string_value(v));
        name_safe(out);
    } else if (json_is_array(v)) {
        /* A list (drop_labels): its items joined by '+', "none" when empty. */
        size_t i, n = 0;
        json_t *item;
        out[0] = '\0';
        json_array_foreach(v, i, item) {
            char one[256];
            value_text(one, sizeof one, item);
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? "+" : "", one);
        }
        if (!json_array_size(v)) snprintf(out, cap, "none");
    } else {
        snprintf(out, cap, "_");
    }
}

/* Whether key has the same value (or is unset) in every run. */
static bool constant_key(const SetList *sets, int n_runs, const char *key)
{
    int first = set_find(&sets[0], key);
    for (int r = 1; r < n_runs; r++) {
        int at = set_find(&sets[r], key);
        if ((at < 0) != (first < 0)) return false;
        if (at >= 0 && !json_equal(sets[r].v[at].value, sets[0].v[first].value)) return false;
    }
    return true;
}

static void append_part(char *dest, size_t cap, const char *part)
{
    size_t len = strlen(dest);
    snprintf(dest + len, cap - len, "%s%s", len ? "," : "", part);
}

/* name and group of run r: its varying keys in schema order, the group without seed. */
static void run_names(SweepRun *run, const SetList *sets, int n_runs, int r, const CfgKey *train)
{
    char name[4096] = "", group[4096] = "";
    for (int k = 0; train[k].key; k++) {
        int at = set_find(&sets[r], train[k].key);
        if (at < 0 || constant_key(sets, n_runs, train[k].key)) continue;
        char v[1024], part[1400];
        value_text(v, sizeof v, sets[r].v[at].value);
        snprintf(part, sizeof part, "%s=%s", train[k].key, v);
        append_part(name, sizeof name, part);
        if (strcmp(train[k].key, "seed")) append_part(group, sizeof group, part);
    }
    run->name = xstrdup(*name ? name : "base");
    run->group = xstrdup(*group ? group : "base");
}

/* ---- loading ----------------------------------------------------------- */

static json_t *sets_object(const SetList *l)
{
    json_t *o = json_object();
    for (int i = 0; i < l->n; i++) json_object_set(o, l->v[i].key, l->v[i].value);
    return o;
}

static int cmp_schema_order(const void *a, const void *b, void *schema)
{
    int x = key_index(schema, ((const SweepSet *)a)->key), y = key_index(schema, ((const SweepSet *)b)->key);
    return (x > y) - (x < y);
}

static int group_index(const Sweep *s, const char *name)
{
    for (int g = 0; g < s->n_groups; g++)
        if (!strcmp(s->groups[g], name)) return g;
    return -1;
}

/* The groups in order of their first run: the training runs' first, since their runs are. */
static void groups_of_runs(Sweep *s)
{
    s->groups = xcalloc((size_t)s->n_runs, sizeof *s->groups);
    for (int r = 0; r < s->n_runs; r++) {
        if (group_index(s, s->runs[r].group) < 0) s->groups[s->n_groups++] = xstrdup(s->runs[r].group);
        if (r == s->n_train - 1) s->n_train_groups = s->n_groups;
    }
}

/* "a, b, c": the groups, for messages. */
static char *group_list(const Sweep *s)
{
    size_t n = 1;
    for (int g = 0; g < s->n_groups; g++) n += strlen(s->groups[g]) + 2;
    char *t = xcalloc(n, 1);
    for (int g = 0; g < s->n_groups; g++) {
        if (g) strcat(t, ", ");
        strcat(t, s->groups[g]);
    }
    return t;
}

/* A group named by itself or by one of its runs. */
static int group_named(const Sweep *s, const char *name)
{
    int g = group_index(s, name);
    for (int r = 0; g < 0 && r < s->n_runs; r++)
        if (!strcmp(s->runs[r].name, name)) g = group_index(s, s->runs[r].group);
    return g;
}

static int set_reference(Sweep *s, const char *name, const char *where)
{
    if (!*name) {
        s->reference = 0;
        return 0;
    }
    s->reference = group_named(s, name);
    if (s->reference >= 0) return 0;
    char *list = group_list(s);
    err_set("%s: key 'reference' is \"%s\", which names no group or run of the sweep (groups: %s)", where, name, list);
    free(list);
    return -1;
}

/* jaccard_diff: a list of [A, B] group (or run) names; default each group
 * against the reference. */
static int set_pairs(Sweep *s, const json_t *list, const char *where)
{
    if (!list) {
        s->pairs = xcalloc((size_t)s->n_groups, sizeof *s->pairs);
        for (int g = 0; g < s->n_groups; g++)
            if (g != s->reference) {
                s->pairs[s->n_pairs][0] = g;
                s->pairs[s->n_pairs++][1] = s->reference;
            }
        return 0;
    }
    if (!json_is_array(list)) return err_set("%s: key 'jaccard_diff' must be a list of [A, B] pairs of groups", where);
    s->pairs = xcalloc(json_array_size(list) + 1, sizeof *s->pairs);
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
        const char *a = json_string_value(json_array_get(p, 0)), *b = json_string_value(json_array_get(p, 1));
        if (!json_is_array(p) || json_array_size(p) != 2 || !a || !b)
            return err_set("%s: jaccard_diff[%zu] must be a pair [A, B] of group names", where, i);
        const char *names[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            int g = group_named(s, names[k]);
            if (g < 0) {
                char *groups = group_list(s);
                err_set("%s: jaccard_diff[%zu]: \"%s\" names no group or run of the sweep (groups: %s)", where, i,
                        names[k], groups);
                free(groups);
                return -1;
            }
            s->pairs[s->n_pairs][k] = g;
        }
        s->n_pairs++;
    }
    return 0;
}

/* The runs entries (an explicit list; one empty entry without it) and the
 * grid's axes, checked: known keys, no key in both. */
static int read_axes(SetList **entries, int *n_entries, SetList *grid, json_t *root, const char *path,
                     const CfgKey *train)
{
    char where[4200];
    json_t *runs = json_object_get(root, "runs"), *g = json_object_get(root, "grid");
    if (runs && (!json_is_array(runs) || json_array_size(runs) == 0))
        return err_set("%s: key 'runs' must be a non-empty list of objects (each a run's train keys)", path);
    *n_entries = runs ? (int)json_array_size(runs) : 1;
    *entries = xcalloc((size_t)*n_entries, sizeof **entries);
    for (int e = 0; runs && e < *n_entries; e++) {
        json_t *o = json_array_get(runs, (size_t)e);
        snprintf(where, sizeof where, "%s: runs[%d]", path, e);
        if (!json_is_object(o)) return err_set("%s: must be an object of train keys", where);
        if (flatten(&(*entries)[e], o, "", train, where, false) != 0) return -1;
    }
    if (g && !json_is_object(g)) return err_set("%s: key 'grid' must be an object of train keys and value lists", path);
    snprintf(where, sizeof where, "%s: grid", path);
    if (g && flatten(grid, g, "", train, where, true) != 0) return -1;
    for (int e = 0; e < *n_entries; e++)
        for (int k = 0; k < grid->n; k++)
            if (set_find(&(*entries)[e], grid->v[k].key) >= 0)
                return err_set("%s: key '%s' is set by runs[%d] and swept by grid; set it in one place", path,
                               grid->v[k].key, e);
    return 0;
}

/* Each run's sets: entry e crossed with grid combination c (last axis fastest). */
static void expand(SetList *sets, const SetList *entries, int n_entries, const SetList *grid, long combos,
                   const CfgKey *train)
{
    for (int e = 0, r = 0; e < n_entries; e++)
        for (long c = 0; c < combos; c++, r++) {
            SetList *l = &sets[r];
            l->v = xcalloc((size_t)(entries[e].n + grid->n + 1), sizeof *l->v);
            for (int i = 0; i < entries[e].n; i++)
                l->v[l->n++] = (SweepSet){xstrdup(entries[e].v[i].key), json_incref(entries[e].v[i].value)};
            long rest = c;
            for (int k = grid->n - 1; k >= 0; k--) {
                size_t size = json_array_size(grid->v[k].value);
                json_t *v = json_array_get(grid->v[k].value, (size_t)(rest % (long)size));
                rest /= (long)size;
                l->v[l->n++] = (SweepSet){xstrdup(grid->v[k].key), json_incref(v)};
            }
            qsort_r(l->v, (size_t)l->n, sizeof *l->v, cmp_schema_order, (void *)train);
        }
}

/* The overrides may not set what the sweep sweeps: the sweep would not be what its file says. */
static int check_overrides(const SetList *sets, int n_runs, int n_over, char *const *over, const char *path)
{
    for (int i = 0; i < n_over; i++) {
        const char *eq = strchr(over[i], '=');
        char key[256];
        snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - over[i]) : 0, over[i]);
        for (int r = 0; r < n_runs; r++)
            if (set_find(&sets[r], key) >= 0)
                return err_set("override '%s': key '%s' is swept by %s (its runs or grid); change it there", over[i],
                               key, path);
    }
    return 0;
}

/* Resolves run r's configuration: base, overrides, its entry, its grid values. */
static int resolve_run(SweepRun *run, const SetList *set, const SetList *entry, int e, bool has_runs, json_t *base,
                       const char *path, int n_over, char *const *over, SweepResolve resolve)
{
    SetList mine = {0}, axes = {0};
    for (int i = 0; i < set->n; i++) {
        SetList *to = set_find(entry, set->v[i].key) >= 0 ? &mine : &axes;
        to->v = xrealloc(to->v, (size_t)(to->n + 1) * sizeof *to->v);
        to->v[to->n++] = set->v[i];
    }
    json_t *mine_o = sets_object(&mine), *axes_o = sets_object(&axes);
    char base_where[4200], entry_where[4200], grid_where[4200];
    snprintf(base_where, sizeof base_where, "%s: base", path);
    snprintf(entry_where, sizeof entry_where, "%s: runs[%d]", path, e);
    snprintf(grid_where, sizeof grid_where, "%s: grid", path);
    CfgLayer layers[4];
    int n = 0;
    if (json_is_string(base)) layers[n++] = (CfgLayer){.path = json_string_value(base)};
    else layers[n++] = (CfgLayer){.object = base, .where = base_where};
    if (n_over) layers[n++] = (CfgLayer){.n_overrides = n_over, .overrides = over};
    if (has_runs) layers[n++] = (CfgLayer){.object = mine_o, .where = entry_where};
    layers[n++] = (CfgLayer){.object = axes_o, .where = grid_where};
    run->config = resolve(path, n, layers);
    json_decref(mine_o);
    json_decref(axes_o);
    free(mine.v);
    free(axes.v);
    return run->config ? 0 : -1;
}

static int load_structure(Sweep *s, json_t *root, const char *path, const CfgKey *train, SweepResolve resolve,
                          int n_over, char *const *over)
{
    json_t *base = json_object_get(root, "base");
    if (!json_is_string(base) && !json_is_object(base))
        return err_set("%s: key 'base' must be a train configuration: a file's path or an object", path);
    if (json_is_string(base)) {
        /* Read once here, so that a missing or broken base is said to be the sweep's. */
        json_t *b = json_read_file(json_string_value(base), 0);
        if (!b) return err_set("%s: base: %s", path, err_msg());
        json_decref(b);
    }
    SetList *entries = NULL, grid = {0}, *sets = NULL;
    int n_entries = 0, rc = read_axes(&entries, &n_entries, &grid, root, path, train);
    long combos = 1;
    for (int k = 0; rc == 0 && k < grid.n; k++) {
        combos *= (long)json_array_size(grid.v[k].value);
        if (combos * n_entries > 100000) rc = err_set("%s: the sweep has more than 100000 runs", path);
    }
    if (rc == 0) {
        s->n_runs = (int)(combos * n_entries);
        sets = xcalloc((size_t)s->n_runs, sizeof *sets);
        expand(sets, entries, n_entries, &grid, combos, train);
        rc = check_overrides(sets, s->n_runs, n_over, over, path);
    }
    if (rc == 0) s->runs = xcalloc((size_t)s->n_runs, sizeof *s->runs);
    for (int r = 0; rc == 0 && r < s->n_runs; r++) {
        SweepRun *run = &s->runs[r];
        rc = resolve_run(run, &sets[r], &entries[r / combos], (int)(r / combos), json_object_get(root, "runs"), base,
                         path, n_over, over, resolve);
        run_names(run, sets, s->n_runs, r, train);
        if (rc == 0 && strlen(run->name) > NAME_LIMIT)
            rc = err_set("%s: run %d's name is longer than %d bytes: %.60s...", path, r, NAME_LIMIT, run->name);
        for (int o = 0; rc == 0 && o < r; o++)
            if (!strcmp(s->runs[o].name, run->name))
                rc = err_set("%s: runs %d and %d are both named '%s' (the same settings, or values that differ only "
                             "in characters a directory name cannot hold)", path, o, r, run->name);
    }
    s->n_train = s->n_runs;
    /* The sets move to their runs only now: every name looks at all of them. */
    for (int r = 0; rc == 0 && r < s->n_runs; r++) {
        s->runs[r].n_set = sets[r].n;
        s->runs[r].set = sets[r].v;
        sets[r] = (SetList){0};
    }
    for (int r = 0; sets && r < s->n_runs; r++) sets_free(&sets[r]);
    free(sets);
    for (int e = 0; e < n_entries; e++) sets_free(&entries[e]);
    free(entries);
    sets_free(&grid);
    return rc;
}

/* ---- baselines ------------------------------------------------------------ */

/* The data the baselines are scored on: the base's, after the overrides, as
 * every training run that does not set data itself has it (absolute). A run
 * scored on less than the data's whole test set, or on other genres, could
 * not be compared with a baseline movie by movie: refused here, not after
 * the sweep. */
static int baseline_data(const Sweep *s, const char *path, const char **data)
{
    *data = NULL;
    for (int r = 0; r < s->n_train; r++) {
        const SweepRun *run = &s->runs[r];
        bool sets = false;
        for (int i = 0; i < run->n_set; i++) sets |= !strcmp(run->set[i].key, "data");
        if (!sets && !*data) *data = json_string_value(json_dotted(run->config, "data"));
        const json_t *limit = json_dotted(run->config, "limit_eval"), *drop = json_dotted(run->config, "drop_labels");
        if (json_integer_value(limit) > 0)
            return err_set("%s: baselines: run %s sets limit_eval=%" JSON_INTEGER_FORMAT ", but a baseline is scored "
                           "on the data's whole test set; leave limit_eval out of a sweep with baselines", path,
                           run->name, json_integer_value(limit));
        if (json_array_size(drop) > 0)
            return err_set("%s: baselines: run %s sets drop_labels, but a baseline predicts every genre of the data; "
                           "leave drop_labels out of a sweep with baselines", path, run->name);
    }
    if (!*data)
        return err_set("%s: baselines: every run sets its own data, so the base gives none for the baselines to be "
                       "scored on; set data in base (or on the command line) instead", path);
    return 0;
}

/* One baseline entry (a file's path, or an object of baseline keys with an
 * optional "base" file under them) as its resolved configuration, with the
 * training runs' data. NULL with err_set naming the sweep file and the entry. */
static json_t *baseline_config(const char *path, const char *name, json_t *entry, const CfgKey *baseline,
                               const char *data)
{
    char where[4400];
    snprintf(where, sizeof where, "%s: baselines.%s", path, name);
    json_t *keys = NULL;
    const char *file = NULL;
    if (json_is_string(entry)) {
        file = json_string_value(entry);
    } else if (json_is_object(entry)) {
        json_t *b = json_object_get(entry, "base");
        if (b && !json_is_string(b))
            return err_set("%s: key 'base' must be a baseline configuration file's path", where), NULL;
        file = json_string_value(b);
        if (json_object_get(entry, "data"))
            return err_set("%s: key 'data' may not be set: a baseline is scored on the training runs' data", where),
                   NULL;
        keys = json_deep_copy(entry);
        json_object_del(keys, "base");
    } else {
        return err_set("%s must be a baseline configuration: a file's path or an object of baseline keys", where), NULL;
    }
    if (file) {
        /* Read once here, so that a missing or broken file is said to be the sweep's. */
        json_t *f = json_read_file(file, 0);
        if (!f) {
            json_decref(keys);
            return err_set("%s: %s", where, err_msg()), NULL;
        }
        json_decref(f);
    }
    json_t *d = json_pack("{s:s}", "data", data);
    char data_where[4500];
    snprintf(data_where, sizeof data_where, "%s (the training runs' data)", where);
    CfgLayer layers[3];
    int n = 0;
    if (file) layers[n++] = (CfgLayer){.path = file};
    if (keys) layers[n++] = (CfgLayer){.object = keys, .where = where};
    layers[n++] = (CfgLayer){.object = d, .where = data_where};
    Config *c = config_load_layers(baseline, where, n, layers);
    json_decref(keys);
    json_decref(d);
    if (!c) {
        /* A message about the file names the file: say whose it is. */
        if (strncmp(err_msg(), where, strlen(where))) err_set("%s: %s", where, err_msg());
        return NULL;
    }
    json_t *o = config_to_json(c);
    config_free(c);
    return o;
}

/* The baselines of the sweep file, as runs after the training runs. */
static int load_baselines(Sweep *s, json_t *root, const char *path, const CfgKey *baseline)
{
    json_t *bl = json_object_get(root, "baselines");
    if (!bl) return 0;
    if (!json_is_object(bl))
        return err_set("%s: key 'baselines' must be an object: {NAME: a baseline configuration file or object, ...}",
                       path);
    if (json_object_size(bl) == 0) return 0;
    if (!baseline) return err_set("%s: key 'baselines': this genre sweep cannot run baselines", path);
    const char *data;
    if (baseline_data(s, path, &data) != 0) return -1;
    s->runs = xrealloc(s->runs, (s->n_runs + json_object_size(bl)) * sizeof *s->runs);
    const char **given = xcalloc(json_object_size(bl), sizeof *given); /* the names as the file has them */
    const char *name;
    json_t *entry;
    int rc = 0;
    json_object_foreach(bl, name, entry) {
        char safe[NAME_LIMIT + 16];
        if (!*name) rc = err_set("%s: baselines: a baseline needs a name (the key is \"\")", path);
        else if (strlen(name) > NAME_LIMIT - 9)
            rc = err_set("%s: baselines: the name '%.40s...' is longer than %d bytes", path, name, NAME_LIMIT - 9);
        if (rc != 0) break;
        snprintf(safe, sizeof safe, "baseline=%s", name);
        name_safe(safe + 9);
        for (int o = 0; o < s->n_runs && rc == 0; o++)
            if (!strcmp(s->runs[o].name, safe))
                rc = s->runs[o].kind == SWEEP_BASELINE
                         ? err_set("%s: baselines: '%s' and '%s' are both named '%s' (a run's name keeps letters, "
                                   "digits and . _ + -, the rest as '_'); rename one", path, given[o - s->n_train],
                                   name, safe)
                         : err_set("%s: baselines: '%s' is named '%s', as run %d is; rename it", path, name, safe, o);
        json_t *config = rc == 0 ? baseline_config(path, name, entry, baseline, data) : NULL;
        if (!config) {
            rc = -1;
            break;
        }
        given[s->n_runs - s->n_train] = name;
        s->runs[s->n_runs++] =
            (SweepRun){.name = xstrdup(safe), .group = xstrdup(safe), .kind = SWEEP_BASELINE, .config = config};
    }
    free(given);
    return rc;
}

int sweep_load(Sweep *s, const char *path, const CfgKey *train, SweepResolve resolve, const CfgKey *baseline,
               int n_overrides, char *const *overrides)
{
    memset(s, 0, sizeof *s);
    json_t *root = json_read_file(path, JSON_REJECT_DUPLICATES);
    if (!root) return -1;
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set("%s: a sweep must be a JSON object", path);
    }
    s->source = xstrdup(path);
    const char *slash = strrchr(path, '/');
    s->name = xstrdup(slash ? slash + 1 : path);
    size_t len = strlen(s->name);
    if (len > 5 && !strcmp(s->name + len - 5, ".json")) s->name[len - 5] = '\0';
    s->n_overrides = n_overrides;
    s->overrides = xcalloc((size_t)n_overrides + 1, sizeof *s->overrides);
    for (int i = 0; i < n_overrides; i++) s->overrides[i] = xstrdup(overrides[i]);

    /* The settings are what is left of the file without its structure. */
    json_t *settings = json_deep_copy(root);
    for (size_t k = 0; k < sizeof structure / sizeof *structure; k++) json_object_del(settings, structure[k]);
    CfgLayer layer = {.object = settings, .where = path};
    Config *cfg = config_load_layers(sweep_settings, path, 1, &layer);
    json_decref(settings);
    int rc = cfg ? load_structure(s, root, path, train, resolve, n_overrides, overrides) : -1;
    if (rc == 0) rc = load_baselines(s, root, path, baseline);
    if (rc == 0) {
        groups_of_runs(s);
        s->resamples = cfg_int(cfg, "bootstrap.resamples");
        s->boot_seed = (uint64_t)cfg_int(cfg, "bootstrap.seed");
        rc = set_reference(s, cfg_str(cfg, "reference"), path);
    }
    if (rc == 0) rc = set_pairs(s, json_object_get(root, "jaccard_diff"), path);
    config_free(cfg);
    json_decref(root);
    if (rc != 0) sweep_free(s);
    return rc;
}

void sweep_free(Sweep *s)
{
    for (int r = 0; r < s->n_runs && s->runs; r++) {
        SweepRun *run = &s->runs[r];
        free(run->name);
        free(run->group);
        SetList l = {run->n_set, run->set};
        sets_free(&l);
        json_decref(run->config);
    }
    free(s->runs);
    for (int g = 0; g < s->n_groups; g++) free(s->groups[g]);
    free(s->groups);
    for (int i = 0; i < s->n_overrides; i++) free(s->overrides[i]);
    free(s->overrides);
    free(s->pairs);
    free(s->source);
    free(s->name);
    memset(s, 0, sizeof *s);
}

/* ---- sweep.json ------------------------------------------------------------ */

int sweep_save(const Sweep *s, const char *path)
{
    char *abs = realpath(s->source, NULL);
    json_t *o = json_object(), *over = json_array(), *runs = json_array(), *pairs = json_array();
    json_object_set_new(o, "sweep", json_string(abs ? abs : s->source));
    free(abs);
    json_object_set_new(o, "name", json_string(s->name));
    for (int i = 0; i < s->n_overrides; i++) json_array_append_new(over, json_string(s->overrides[i]));
    json_object_set_new(o, "overrides", over);
    json_object_set_new(o, "reference", json_string(s->groups[s->reference]));
    for (int p = 0; p < s->n_pairs; p++)
        json_array_append_new(pairs, json_pack("[s, s]", s->groups[s->pairs[p][0]], s->groups[s->pairs[p][1]]));
    json_object_set_new(o, "jaccard_diff", pairs);
    json_object_set_new(o, "bootstrap", json_pack("{s:I, s:I}", "resamples", (json_int_t)s->resamples, "seed",
                                                  (json_int_t)s->boot_seed));
    for (int r = 0; r < s->n_runs; r++) {
        const SweepRun *run = &s->runs[r];
        json_t *set = json_object();
        for (int i = 0; i < run->n_set; i++) json_object_set(set, run->set[i].key, run->set[i].value);
        json_array_append_new(runs, json_pack("{s:s, s:s, s:s, s:o, s:O}", "name", run->name, "group", run->group,
                                              "kind", run->kind == SWEEP_BASELINE ? "baseline" : "train", "set", set,
                                              "config", run->config));
    }
    json_object_set_new(o, "runs", runs);
    int rc = json_write_file(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return rc;
}

int sweep_read(Sweep *s, const char *path)
{
    memset(s, 0, sizeof *s);
    json_t *o = json_read_file(path, 0);
    if (!o) return -1;
    json_t *runs = json_object_get(o, "runs"), *over = json_object_get(o, "overrides"), *boot;
    const char *source = json_string_value(json_object_get(o, "sweep")), *name = json_string_value(json_object_get(o, "name"));
    const char *ref = json_string_value(json_object_get(o, "reference"));
    json_int_t resamples = 0, seed = 0;
    boot = json_object_get(o, "bootstrap");
    int rc = 0;
    if (!source || !name || !ref || !json_is_array(runs) || json_array_size(runs) == 0 || !json_is_array(over) ||
        json_unpack(boot, "{s:I, s:I}", "resamples", &resamples, "seed", &seed) != 0 || resamples < 100)
        rc = err_set("%s: not a sweep.json that genre sweep wrote (sweep, name, reference, bootstrap, overrides or "
                     "runs missing)", path);
    if (rc == 0) {
        s->source = xstrdup(source);
        s->name = xstrdup(name);
        s->resamples = (long)resamples;
        s->boot_seed = (uint64_t)seed;
        s->n_overrides = (int)json_array_size(over);
        s->overrides = xcalloc((size_t)s->n_overrides + 1, sizeof *s->overrides);
        for (int i = 0; i < s->n_overrides; i++) {
            const char *v = json_string_value(json_array_get(over, (size_t)i));
            s->overrides[i] = xstrdup(v ? v : "");
        }
        s->runs = xcalloc(json_array_size(runs), sizeof *s->runs);
    }
    for (size_t r = 0; rc == 0 && r < json_array_size(runs); r++) {
        json_t *e = json_array_get(runs, r), *set = json_object_get(e, "set"), *cfg = json_object_get(e, "config");
        const char *rn = json_string_value(json_object_get(e, "name")), *rg = json_string_value(json_object_get(e, "group"));
        /* No kind: an older genre's sweep.json, of training runs only. */
        json_t *kind = json_object_get(e, "kind");
        const char *kn = kind ? json_string_value(kind) : "train";
        if (!rn || !rg || !json_is_object(set) || !json_is_object(cfg) || !*rn || strchr(rn, '/') || rn[0] == '.' ||
            !kn || (strcmp(kn, "train") && strcmp(kn, "baseline"))) {
            rc = err_set("%s: runs[%zu] is not a run genre sweep wrote (name, group, kind, set, config)", path, r);
            break;
        }
        bool is_baseline = !strcmp(kn, "baseline");
        if (!is_baseline && s->n_runs > s->n_train) {
            rc = err_set("%s: runs[%zu] is a training run after a baseline; genre sweep writes the baselines last",
                         path, r);
            break;
        }
        SweepRun *run = &s->runs[s->n_runs++];
        if (!is_baseline) s->n_train++;
        run->kind = is_baseline ? SWEEP_BASELINE : SWEEP_TRAIN;
        run->name = xstrdup(rn);
        run->group = xstrdup(rg);
        run->config = json_incref(cfg);
        run->set = xcalloc(json_object_size(set) + 1, sizeof *run->set);
        const char *k;
        json_t *v;
        json_object_foreach(set, k, v) run->set[run->n_set++] = (SweepSet){xstrdup(k), json_incref(v)};
    }
    if (rc == 0 && s->n_train == 0) rc = err_set("%s: no training run in its runs, only baselines", path);
    if (rc == 0) {
        groups_of_runs(s);
        if ((s->reference = group_index(s, ref)) < 0) rc = err_set("%s: reference \"%s\" is no group of its runs", path, ref);
    }
    json_t *pairs = json_object_get(o, "jaccard_diff");
    if (rc == 0 && json_is_array(pairs)) rc = set_pairs(s, pairs, path);
    else if (rc == 0) rc = err_set("%s: jaccard_diff missing", path);
    json_decref(o);
    if (rc != 0) sweep_free(s);
    return rc;
}

/* ---- run states ------------------------------------------------------------- */

json_t *json_dotted(const json_t *obj, const char *key)
{
    char part[256];
    const char *p = key, *dot;
    json_t *o = (json_t *)obj;
    while (o && (dot = strchr(p, '.'))) {
        snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
        o = json_object_get(o, part);
        p = dot + 1;
    }
    return o ? json_object_get(o, p) : NULL;
}

/* A value as config.json holds it: reals to 10 digits (config_write), so
 * that the sweep's exact values and what the run wrote compare equal. */
static char *canonical(const json_t *v)
{
    return v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10)) : xstrdup("(missing)");
}

/* The run directory's config.json against the sweep's configuration of the run. */
static int check_config(const SweepRun *run, const char *path, const CfgKey *schema)
{
    Config *c = config_load(schema, path, 0, NULL);
    if (!c) return err_set("%s: not the sweep's run %s: %s", path, run->name, err_msg());
    json_t *have = config_to_json(c);
    config_free(c);
    int rc = 0;
    for (int k = 0; schema[k].key && rc == 0; k++) {
        char *a = canonical(json_dotted(have, schema[k].key)), *b = canonical(json_dotted(run->config, schema[k].key));
        if (strcmp(a, b))
            rc = err_set("%s: key '%s' is %s there and %s in the sweep's run %s; move the run away or sweep into "
                         "another --out", path, schema[k].key, a, b, run->name);
        free(a);
        free(b);
    }
    json_decref(have);
    return rc;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int sweep_run_state(const Sweep *s, int k, const char *dir, const CfgKey *train, const CfgKey *baseline,
                    RunState *state)
{
    const SweepRun *run = &s->runs[k];
    bool is_baseline = run->kind == SWEEP_BASELINE;
    const char *want = is_baseline ? "baseline" : "train";
    char rd[4200], path[4400], kind[64];
    snprintf(rd, sizeof rd, "%s/%s", dir, run->name);
    if (is_baseline && !baseline) return err_set("%s: run %s is a baseline, which this genre cannot judge", dir, run->name);
    outdir_kind(rd, kind, sizeof kind);
    if (!*kind) {
        *state = RUN_NEW;
        return 0;
    }
    if (strcmp(kind, want))
        return err_set("%s: is not a genre %s run (%s); move it away or sweep into another --out", rd,
                       is_baseline ? "baseline" : "training", !strcmp(kind, "?") ? "it holds other files" : kind);
    snprintf(path, sizeof path, "%s/config.json", rd);
    if (!exists(path)) {
        /* Marked, then stopped before it wrote its settings: nothing to keep. */
        *state = RUN_RESTART;
        return 0;
    }
    if (check_config(run, path, is_baseline ? baseline : train) != 0) return -1;
    snprintf(path, sizeof path, "%s/metrics.json", rd);
    if (exists(path)) {
        json_t *m = json_read_file(path, 0);
        bool ok = m && json_is_object(json_object_get(m, "val")) && json_is_object(json_object_get(m, "test"));
        json_decref(m);
        if (!ok) return err_set("%s: not a finished run's metrics%s%s", path, m ? "" : ": ", m ? "" : err_msg());
        /* A baseline of an older genre, without its per-movie predictions:
         * run again (seconds), replacing its own output whole. */
        snprintf(path, sizeof path, "%s/test_predictions.jsonl", rd);
        *state = is_baseline && !exists(path) ? RUN_RESTART : RUN_FINISHED;
        return 0;
    }
    if (is_baseline) {
        /* A baseline's output lands whole; a marked one without metrics is nothing to keep. */
        *state = RUN_RESTART;
        return 0;
    }
    snprintf(path, sizeof path, "%s/last/state.json", rd);
    *state = exists(path) ? RUN_INTERRUPTED : RUN_RESTART;
    return 0;
}
