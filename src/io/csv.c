#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/io/csv.h"
#include "src/core/err.h"
#include "src/core/utf8.h"

/* The length of the line break at s[i] (LF, CRLF or a bare CR), or 0. */
static size_t line_break(const char *s, size_t n, size_t i)
{
    if (i >= n) return 0;
    if (s[i] == '\n') return 1;
    if (s[i] == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    return 0;
}

/* The 1-based line of byte off, and its column in characters (the bytes
 * before off are valid UTF-8). */
static int line_of(const char *s, size_t off, int *col)
{
    int line = 1;
    size_t start = 0;
    for (size_t i = 0, k; i < off; i++)
        if ((k = line_break(s, off + 1, i))) {
            line++;
            i += k - 1;
            start = i + 1;
        }
    if (col) {
        *col = 1;
        for (size_t i = start; i < off; i++) *col += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return line;
}

/* Takes ownership of data (n bytes, with one spare byte allocated). */
static int open_owned(CsvReader *r, const char *name, char *data, size_t n)
{
    memset(r, 0, sizeof *r);
    r->path = xstrdup(name);
    r->data = data;
    r->n = n;
    r->line = 1;
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) r->pos = 3;
    if (r->pos == n) {
        err_set("%s: empty file", name);
        csv_close(r);
        return -1;
    }
    size_t bad = utf8_check(data, n);
    if (bad < n) {
        err_set("%s:%d: invalid UTF-8 (byte 0x%02X at offset %zu)", name, line_of(data, bad, NULL),
                (unsigned char)data[bad], bad);
        csv_close(r);
        return -1;
    }
    /* Fields are C strings: a NUL would silently end the one it is in. */
    const char *nul = memchr(data, '\0', n);
    if (nul) {
        int col, line = line_of(data, (size_t)(nul - data), &col);
        err_set("%s:%d:%d: NUL byte (offset %zu); a CSV file is UTF-8 text", name, line, col,
                (size_t)(nul - data));
        csv_close(r);
        return -1;
    }
    /* A record's unquoted text plus one NUL per field (each NUL stands for
     * a separator or the end) never exceeds the file, so buf never moves. */
    r->buf_cap = n + 1;
    r->buf = xmalloc(r->buf_cap);
    return 0;
}

int csv_open_mem(CsvReader *r, const char *name, const char *data, size_t n)
{
    char *copy = xmalloc(n + 1);
    memcpy(copy, data, n);
    return open_owned(r, name, copy, n);
}

int csv_open(CsvReader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *data = xmalloc(cap);
    for (;;) {
        if (n == cap) data = xrealloc(data, cap *= 2);
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(data);
        return err_set("%s: cannot read: %s", path, strerror(e));
    }
    return open_owned(r, path, data, n);
}

static void push_field(CsvReader *r, char *field)
{
    if (r->n_fields == r->fields_cap) {
        r->fields_cap = r->fields_cap ? 2 * r->fields_cap : 16;
        r->fields = xrealloc(r->fields, (size_t)r->fields_cap * sizeof *r->fields);
    }
    r->fields[r->n_fields++] = field;
}

int csv_next(CsvReader *r)
{
    const char *s = r->data;
    size_t n = r->n;
    /* Blank lines hold no record. */
    for (size_t k; (k = line_break(s, n, r->pos));) {
        r->pos += k;
        r->line++;
    }
    if (r->pos >= n) return 0;
    r->record_line = r->line;
    r->n_fields = 0;
    size_t out = 0;
    for (;;) {
        size_t start = out;
        int field_line = r->line;
        if (r->pos < n && s[r->pos] == '"') {
            r->pos++;
            for (;;) {
                if (r->pos >= n)
                    return err_set("%s:%d: unterminated quoted field", r->path, field_line);
                if (s[r->pos] == '"') {
                    r->pos++;
                    if (r->pos < n && s[r->pos] == '"') { r->buf[out++] = '"'; r->pos++; continue; }
                    break;
                }
                /* Line breaks inside quotes are text, kept as they are. */
                size_t k = line_break(s, n, r->pos);
                r->line += k > 0;
                for (size_t j = k ? k : 1; j > 0; j--) r->buf[out++] = s[r->pos++];
            }
            if (r->pos < n && s[r->pos] != ',' && !line_break(s, n, r->pos))
                return err_set("%s:%d: unexpected text after a closing quote", r->path, r->line);
        } else {
            while (r->pos < n && s[r->pos] != ',' && !line_break(s, n, r->pos)) {
                char c = s[r->pos];
                if (c == '"') return err_set("%s:%d: quote inside an unquoted field", r->path, r->line);
                r->buf[out++] = c;
                r->pos++;
            }
        }
        r->buf[out++] = '\0';
        push_field(r, r->buf + start);
        if (r->pos < n && s[r->pos] == ',') { r->pos++; continue; }
        if (r->pos < n) { /* record end: LF, CRLF or CR */
            r->pos += line_break(s, n, r->pos);
            r->line++;
        }
        break;
    }
    return 1;
}

void csv_close(CsvReader *r)
{
    free(r->path);
    free(r->data);
    free(r->fields);
    free(r->buf);
    memset(r, 0, sizeof *r);
}
