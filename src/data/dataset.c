#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/data/dataset.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/core/hash.h"

int labels_load(LabelSet *ls, const char *path)
{
    memset(ls, 0, sizeof *ls);
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if (labels_index(ls, line) >= 0) {
            err_set("%s:%d: duplicate label '%s'", path, lineno, line);
            free(line);
            fclose(f);
            labels_free(ls);
            return -1;
        }
        ls->names = xrealloc(ls->names, (size_t)(ls->n_labels + 1) * sizeof *ls->names);
        ls->names[ls->n_labels++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    if (ls->n_labels == 0) return err_set("%s: no labels", path);
    return 0;
}

void labels_free(LabelSet *ls)
{
    for (int i = 0; i < ls->n_labels; i++) free(ls->names[i]);
    free(ls->names);
    memset(ls, 0, sizeof *ls);
}

int labels_index(const LabelSet *ls, const char *name)
{
    for (int i = 0; i < ls->n_labels; i++)
        if (strcmp(ls->names[i], name) == 0) return i;
    return -1;
}

static int fail_line(Dataset *d, FILE *f, char *line, const char *path, int lineno, const char *what)
{
    err_set("%s:%d: %s", path, lineno, what);
    free(line);
    fclose(f);
    dataset_free(d);
    return -1;
}

int dataset_load(Dataset *d, const char *path, const LabelSet *ls)
{
    memset(d, 0, sizeof *d);
    d->n_labels = ls->n_labels;
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return err_set("%s: is a directory, not a .jsonl file", path);
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len <= 1 && (len == 0 || line[0] == '\n')) continue;
        json_error_t e;
        json_t *o = json_loadb(line, (size_t)len, 0, &e);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            return fail_line(d, f, line, path, lineno, o ? "not a JSON object" : json_error_what(&e));
        }
        json_t *title = json_object_get(o, "title"), *year = json_object_get(o, "year");
        json_t *text = json_object_get(o, "text"), *labels = json_object_get(o, "labels");
        if (!json_is_string(text) || !json_is_array(labels) ||
            (title && !json_is_string(title)) || (year && !json_is_integer(year))) {
            json_decref(o);
            return fail_line(d, f, line, path, lineno,
                             "expected {\"title\": str, \"year\": int, \"text\": str, \"labels\": [str]}");
        }
        if ((size_t)d->n == alloc) {
            alloc = alloc ? 2 * alloc : 1024;
            d->titles = xrealloc(d->titles, alloc * sizeof *d->titles);
            d->years = xrealloc(d->years, alloc * sizeof *d->years);
            d->texts = xrealloc(d->texts, alloc * sizeof *d->texts);
            d->y = xrealloc(d->y, alloc * (size_t)ls->n_labels);
        }
        uint8_t *row = d->y + (size_t)d->n * ls->n_labels;
        memset(row, 0, (size_t)ls->n_labels);
        size_t i;
        json_t *lab;
        json_array_foreach(labels, i, lab) {
            int k = json_is_string(lab) ? labels_index(ls, json_string_value(lab)) : -1;
            if (k < 0) {
                char msg[300];
                snprintf(msg, sizeof msg, "label %s is not in labels.txt",
                         json_is_string(lab) ? json_string_value(lab) : "(not a string)");
                json_decref(o);
                return fail_line(d, f, line, path, lineno, msg);
            }
            row[k] = 1;
        }
        d->titles[d->n] = xstrdup(title ? json_string_value(title) : "");
        d->years[d->n] = year ? (int)json_integer_value(year) : 0;
        d->texts[d->n] = xstrdup(json_string_value(text));
        d->n++;
        json_decref(o);
    }
    int read_errno = ferror(f) ? errno : 0;
    free(line);
    fclose(f);
    if (read_errno) {
        dataset_free(d);
        return err_set("%s: cannot read: %s", path, strerror(read_errno));
    }
    return 0;
}

int dataset_load_part(Dataset *d, LabelSet *ls, const char *dir, const char *part)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    if (labels_load(ls, path) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, part);
    if (dataset_load(d, path, ls) != 0) {
        labels_free(ls);
        return -1;
    }
    return 0;
}

void dataset_truncate(Dataset *d, int n)
{
    for (int i = n; i < d->n; i++) {
        free(d->titles[i]);
        free(d->texts[i]);
    }
    if (n < d->n) d->n = n;
}

void dataset_free(Dataset *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->titles[i]);
        free(d->texts[i]);
    }
    free(d->titles);
    free(d->years);
    free(d->texts);
    free(d->y);
    memset(d, 0, sizeof *d);
}

int dataset_fingerprint(const char *dir, uint64_t *fp)
{
    static const char *const files[] = {"labels.txt", "train.jsonl", "val.jsonl", "test.jsonl"};
    *fp = FNV1A64_OFFSET;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (fnv1a64_file(path, fp) != 0) return -1;
    }
    return 0;
}
