#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/core/utf8.h"
#include "src/eval/predictions.h"

static json_t *names_of(const uint8_t *row, const LabelSet *labels)
{
    json_t *a = json_array();
    for (int c = 0; c < labels->n_labels; c++)
        if (row[c]) json_array_append_new(a, json_string(labels->names[c]));
    return a;
}

int predictions_write(const char *path, const Dataset *d, const LabelSet *labels, const float *scores,
                      const uint8_t *pred, const int *tokens)
{
    int L = labels->n_labels;
    if (d->n_labels != L) return err_set("%s: the data has %d genres, the label set %d", path, d->n_labels, L);
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    FILE *f = atomic_stream(af);
    for (int i = 0; i < d->n; i++) {
        json_t *s = json_array();
        for (int c = 0; c < L; c++) json_array_append_new(s, json_real_of_float(scores[(size_t)i * L + c]));
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:o, s:o, s:o}", "title", d->titles[i] ? d->titles[i] : "",
                              "year", d->years ? d->years[i] : 0, "chars", (int)utf8_count(d->texts[i]),
                              "tokens", tokens[i], "labels", names_of(d->y + (size_t)i * L, labels),
                              "predicted", names_of(pred + (size_t)i * L, labels), "scores", s);
        /* 9 digits: enough for any float, and json_real_of_float made each the shortest. */
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(o);
        if (!line) die("out of memory");
        fputs(line, f);
        fputc('\n', f);
        free(line);
    }
    return atomic_commit(af);
}

/* The genres named in the array `a` as a 0/1 row; -1 with err_set. */
static int read_names(uint8_t *row, const json_t *a, const LabelSet *labels, const char *where, const char *key)
{
    if (!json_is_array(a)) return err_set("%s: \"%s\" is missing or not an array", where, key);
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) {
        int c = json_is_string(v) ? labels_index(labels, json_string_value(v)) : -1;
        if (c < 0)
            return err_set("%s: \"%s\"[%zu] is not one of the run's genres", where, key, k);
        row[c] = 1;
    }
    return 0;
}

static int get_int(int *out, const json_t *o, const char *key, const char *where)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) return err_set("%s: \"%s\" is missing or not an integer", where, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* One line into movie i of p. */
static int read_line(Predictions *p, int i, const char *line, const LabelSet *labels, const char *where)
{
    json_error_t e;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &e);
    if (!o) return err_set("%s: %s", where, json_error_what(&e));
    int L = labels->n_labels, rc = 0;
    json_t *title = json_object_get(o, "title"), *scores = json_object_get(o, "scores");
    if (!json_is_object(o) || !json_is_string(title)) rc = err_set("%s: \"title\" is missing or not a string", where);
    if (rc == 0) rc = get_int(&p->years[i], o, "year", where) || get_int(&p->chars[i], o, "chars", where) ||
                      get_int(&p->tokens[i], o, "tokens", where) ? -1 : 0;
    if (rc == 0) rc = read_names(p->y + (size_t)i * L, json_object_get(o, "labels"), labels, where, "labels");
    if (rc == 0) rc = read_names(p->pred + (size_t)i * L, json_object_get(o, "predicted"), labels, where, "predicted");
    if (rc == 0 && (!json_is_array(scores) || json_array_size(scores) != (size_t)L))
        rc = err_set("%s: \"scores\" is not an array of %d numbers", where, L);
    for (int c = 0; c < L && rc == 0; c++) {
        json_t *v = json_array_get(scores, (size_t)c);
        if (!json_is_number(v)) rc = err_set("%s: \"scores\"[%d] is not a number", where, c);
        else p->scores[(size_t)i * L + c] = (float)json_number_value(v);
    }
    if (rc == 0) p->titles[i] = xstrdup(json_string_value(title));
    json_decref(o);
    return rc;
}

int predictions_read(Predictions *p, const char *path, const LabelSet *labels)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    int L = labels->n_labels, cap_n = 0, rc = 0;
    p->n_labels = L;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        if (p->n == cap_n) {
            cap_n = cap_n ? 2 * cap_n : 1024;
            p->titles = xrealloc(p->titles, (size_t)cap_n * sizeof *p->titles);
            p->years = xrealloc(p->years, (size_t)cap_n * sizeof *p->years);
            p->chars = xrealloc(p->chars, (size_t)cap_n * sizeof *p->chars);
            p->tokens = xrealloc(p->tokens, (size_t)cap_n * sizeof *p->tokens);
            p->y = xrealloc(p->y, (size_t)cap_n * L);
            p->pred = xrealloc(p->pred, (size_t)cap_n * L);
            p->scores = xrealloc(p->scores, (size_t)cap_n * L * sizeof *p->scores);
        }
        int i = p->n++;
        p->titles[i] = NULL;
        memset(p->y + (size_t)i * L, 0, (size_t)L);
        memset(p->pred + (size_t)i * L, 0, (size_t)L);
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, i + 1);
        /* A line without its newline was cut short: the file is not one predictions_write wrote. */
        if (line[len - 1] != '\n') rc = err_set("%s: the last line has no newline (a cut file?)", where);
        else rc = read_line(p, i, line, labels, where);
    }
    free(line);
    fclose(f);
    if (rc == 0 && p->n == 0) rc = err_set("%s: no movies", path);
    if (rc != 0) predictions_free(p);
    return rc;
}

void predictions_free(Predictions *p)
{
    for (int i = 0; i < p->n; i++) free(p->titles[i]);
    free(p->titles);
    free(p->years);
    free(p->chars);
    free(p->tokens);
    free(p->y);
    free(p->pred);
    free(p->scores);
    memset(p, 0, sizeof *p);
}
