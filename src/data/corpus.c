#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "src/core/err.h"
#include "src/core/hash.h"
#include "src/core/utf8.h"
#include "src/data/clean.h"
#include "src/data/corpus.h"
#include "src/io/csv.h"

/* Removes a trailing " 1946" or " (1946)" equal to the year. */
static void strip_year(char *title, const char *year)
{
    size_t n = strlen(title), k = strlen(year);
    if (n > k + 2 && title[n - 1] == ')' && title[n - k - 2] == '(' &&
        memcmp(title + n - k - 1, year, k) == 0) {
        title[n - k - 2] = '\0';
    } else if (n > k + 1 && memcmp(title + n - k, year, k) == 0 && title[n - k - 1] == ' ') {
        title[n - k] = '\0';
    }
    clean_whitespace(title);
}

static int parse_year(const char *s, int *year)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 0 || v > 9999) return -1;
    *year = (int)v;
    return 0;
}

/* s case-folded (malloc'ed), or NULL with err_set naming path:line. */
static char *fold(const char *s, const char *what, const char *path, int line)
{
    utf8proc_uint8_t *folded = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)s, 0, &folded,
                     UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD) < 0) {
        err_set("%s:%d: cannot case-fold the %s", path, line, what);
        return NULL;
    }
    return (char *)folded;
}

/* The genre of a (trimmed) genre field: that of a spelling seen before, or
 * of one equal to it case-folded, or a new one. -1 with err_set. */
static int label_of(Corpus *c, const char *name, const char *path, int line)
{
    for (int i = 0; i < c->n_spellings; i++)
        if (strcmp(c->spellings[i].name, name) == 0) {
            c->spellings[i].rows++;
            return c->spellings[i].label;
        }
    char *key = fold(name, "genre", path, line);
    if (!key) return -1;
    int l = -1;
    for (int i = 0; i < c->n_labels && l < 0; i++) {
        char *other = fold(c->labels[i], "genre", path, line);
        if (other && strcmp(other, key) == 0) l = i;
        free(other);
    }
    free(key);
    if (l < 0) {
        if (c->n_labels == CORPUS_MAX_LABELS)
            return err_set("%s:%d: more than %d genres", path, line, CORPUS_MAX_LABELS);
        c->labels[l = c->n_labels++] = xstrdup(name);
    }
    c->spellings = xrealloc(c->spellings, (size_t)(c->n_spellings + 1) * sizeof *c->spellings);
    c->spellings[c->n_spellings++] = (Spelling){xstrdup(name), l, 1};
    return l;
}

/* Names each genre by its most common spelling (a tie: the first seen). */
static void name_labels(Corpus *c)
{
    for (int l = 0; l < c->n_labels; l++) {
        const Spelling *best = NULL;
        for (int i = 0; i < c->n_spellings; i++)
            if (c->spellings[i].label == l && (!best || c->spellings[i].rows > best->rows)) best = &c->spellings[i];
        free(c->labels[l]);
        c->labels[l] = xstrdup(best->name);
    }
}

/* The header's one column of that name; none or two are errors, a
 * missing one showing the file's header beside the columns needed. */
static int column(CsvReader *r, const char *name)
{
    int at = -1;
    for (int i = 0; i < r->n_fields; i++) {
        if (strcmp(r->fields[i], name) != 0) continue;
        if (at >= 0)
            return err_set("%s:%d: column '%s' appears twice (columns %d and %d)", r->path, r->record_line, name,
                           at + 1, i + 1);
        at = i;
    }
    if (at >= 0) return at;
    char header[256] = "";
    size_t n = 0;
    for (int i = 0; i < r->n_fields && n < sizeof header; i++)
        n += (size_t)snprintf(header + n, sizeof header - n, "%s%s", i ? "," : "", r->fields[i]);
    if (n >= sizeof header) strcpy(header + sizeof header - 4, "...");
    return err_set("%s:%d: missing column '%s' (the file's header: %s; needed: genre, title, year, description)",
                   r->path, r->record_line, name, header);
}

/* by_key: folded title and year -> movie index, across files. */
static int read_file(Corpus *c, StrMap *by_key, const char *path)
{
    CsvReader r;
    if (csv_open(&r, path) != 0) return -1;
    int rc = csv_next(&r);
    if (rc <= 0) {
        if (rc == 0) err_set("%s: empty file", path);
        goto fail;
    }
    int n_cols = r.n_fields, header_line = r.record_line, rows_before = c->counts.rows, cg, ct, cy, cd;
    if ((cg = column(&r, "genre")) < 0 || (ct = column(&r, "title")) < 0 ||
        (cy = column(&r, "year")) < 0 || (cd = column(&r, "description")) < 0)
        goto fail;
    while ((rc = csv_next(&r)) == 1) {
        int line = r.record_line;
        if (r.n_fields != n_cols) {
            err_set("%s:%d: %d fields, the header has %d", path, line, r.n_fields, n_cols);
            goto fail;
        }
        c->counts.rows++;
        clean_whitespace(r.fields[cg]);
        if (!*r.fields[cg]) {
            err_set("%s:%d: empty genre", path, line);
            goto fail;
        }
        int year, lab = label_of(c, r.fields[cg], path, line);
        if (lab < 0) goto fail;
        clean_whitespace(r.fields[cy]);
        if (parse_year(r.fields[cy], &year) != 0) {
            err_set("%s:%d: year '%s' is not a number", path, line, r.fields[cy]);
            goto fail;
        }
        char *title = r.fields[ct];
        clean_whitespace(title);
        strip_year(title, r.fields[cy]);
        if (!*title) {
            c->counts.missing_title++;
            continue;
        }
        char *folded = fold(title, "title", path, line);
        if (!folded) goto fail;
        size_t kn = strlen(folded) + 16;
        char *key = xmalloc(kn);
        snprintf(key, kn, "%s\x1f%d", folded, year);
        free(folded);
        char *text = clean_description(r.fields[cd]);
        int m = strmap_add(by_key, key, strlen(key), c->n);
        free(key);
        if (m == c->n) {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 4096;
                c->movies = xrealloc(c->movies, (size_t)c->cap * sizeof *c->movies);
            }
            c->movies[c->n++] = (Movie){xstrdup(title), year, text, 0, CORPUS_KEPT};
        } else {
            Movie *mv = &c->movies[m];
            if (mv->labels >> lab & 1) c->counts.duplicate_rows++;
            else c->counts.other_genre_rows++;
            if (strlen(text) > strlen(mv->text)) {
                free(mv->text);
                mv->text = text;
            } else {
                free(text);
            }
        }
        c->movies[m].labels |= 1ull << lab;
    }
    if (rc < 0) goto fail;
    if (c->counts.rows == rows_before) {
        err_set("%s:%d: no rows after the header", path, header_line);
        goto fail;
    }
    csv_close(&r);
    c->counts.files++;
    return 0;
fail:
    csv_close(&r);
    return -1;
}

/* Renames label indices so that they follow the sorted names. */
static void sort_labels(Corpus *c)
{
    int order[CORPUS_MAX_LABELS], to[CORPUS_MAX_LABELS];
    for (int i = 0; i < c->n_labels; i++) order[i] = i;
    for (int i = 1; i < c->n_labels; i++)
        for (int j = i; j > 0 && strcmp(c->labels[order[j - 1]], c->labels[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    char *names[CORPUS_MAX_LABELS];
    for (int i = 0; i < c->n_labels; i++) {
        to[order[i]] = i;
        names[i] = c->labels[order[i]];
    }
    memcpy(c->labels, names, (size_t)c->n_labels * sizeof *names);
    for (int i = 0; i < c->n; i++) {
        uint64_t old = c->movies[i].labels, neu = 0;
        for (int l = 0; l < c->n_labels; l++)
            if (old >> l & 1) neu |= 1ull << to[l];
        c->movies[i].labels = neu;
    }
    for (int i = 0; i < c->n_spellings; i++) c->spellings[i].label = to[c->spellings[i].label];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int corpus_read_dir(Corpus *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcasecmp(e->d_name + len - 4, ".csv") == 0) {
            names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (n == 0) {
        free(names);
        return err_set("%s: no .csv files", dir);
    }
    /* Sorted, so the merge (first title seen, ties between texts) is reproducible. */
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    StrMap by_key = {0};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            size_t pn = strlen(dir) + strlen(names[i]) + 2;
            char *path = xmalloc(pn);
            snprintf(path, pn, "%s/%s", dir, names[i]);
            rc = read_file(c, &by_key, path);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    strmap_free(&by_key);
    if (rc == 0) {
        name_labels(c);
        sort_labels(c);
    }
    return rc;
}

void corpus_clean(Corpus *c, int min_chars)
{
    StrMap seen = {0};
    for (int i = 0; i < c->n; i++) {
        Movie *m = &c->movies[i];
        if (!*m->text) m->dropped = CORPUS_DROP_EMPTY;
        else if ((int)utf8_count(m->text) < min_chars) m->dropped = CORPUS_DROP_SHORT;
        if (m->dropped) continue;
        int j = strmap_add(&seen, m->text, strlen(m->text), i);
        if (j != i) {
            c->movies[j].labels |= m->labels;
            m->dropped = CORPUS_DROP_DUP_TEXT;
        }
    }
    strmap_free(&seen);
    for (int i = 0; i < c->n; i++) c->counts.dropped[c->movies[i].dropped]++;
}

void corpus_free(Corpus *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->movies[i].title);
        free(c->movies[i].text);
    }
    free(c->movies);
    for (int l = 0; l < c->n_labels; l++) free(c->labels[l]);
    for (int i = 0; i < c->n_spellings; i++) free(c->spellings[i].name);
    free(c->spellings);
    memset(c, 0, sizeof *c);
}
