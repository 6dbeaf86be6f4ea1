/* A prepared multi-label dataset: the JSON-lines files `genre prepare`
 * writes (one movie a line: {"title", "year", "text", "labels": [...]})
 * plus the label list (labels.txt, one name a line, sorted). */
#ifndef GENRE_DATASET_H
#define GENRE_DATASET_H

#include <stdint.h>

typedef struct {
    int n_labels;
    char **names;
} LabelSet;

typedef struct {
    int n;           /* movies */
    int n_labels;
    char **titles;
    int *years;
    char **texts;
    uint8_t *y;      /* n x n_labels, 1 where the movie has the label */
} Dataset;

/* Reads labels.txt. 0, or -1 with err_set. */
int labels_load(LabelSet *ls, const char *path);
void labels_free(LabelSet *ls);
/* Index of a label name, or -1. */
int labels_index(const LabelSet *ls, const char *name);

/* Reads a .jsonl file; a label not in `ls` is an error naming file and line,
 * a directory one saying so (not a file of no movies). 0, or -1 with
 * err_set. */
int dataset_load(Dataset *d, const char *path, const LabelSet *ls);
/* Reads <dir>/labels.txt and <dir>/<part>.jsonl (part: train, val, test). */
int dataset_load_part(Dataset *d, LabelSet *ls, const char *dir, const char *part);

/* FNV-1a (src/core/hash.h) over the prepared files of dir (labels.txt,
 * train.jsonl, val.jsonl, test.jsonl, in that order): the same number only
 * for the same data. 0, or -1 with err_set. */
int dataset_fingerprint(const char *dir, uint64_t *fp);
/* Keeps the first n movies (n <= d->n). */
void dataset_truncate(Dataset *d, int n);
void dataset_free(Dataset *d);

#endif
