/* RFC 4180 CSV reader over a whole file held in memory: quoted fields with
 * "" escapes, embedded newlines, LF, CRLF or bare CR (old Mac) record ends,
 * an optional UTF-8 byte-order mark. Outside quotes a bare CR ends the
 * record like LF does; inside quotes every line break is kept as text. The file must be valid UTF-8 without NUL bytes (which
 * would cut a field short). Blank lines are skipped.
 * Errors name the file and the 1-based line where the problem starts. */
#ifndef GENRE_CSV_H
#define GENRE_CSV_H

#include <stddef.h>

typedef struct {
    char *path;          /* for messages */
    char *data;          /* the file, owned */
    size_t n, pos;
    int line;            /* line of the next unread byte */
    int record_line;     /* line where the last record read starts */
    int n_fields;
    char **fields;       /* the last record's fields, NUL-terminated */
    char *buf;           /* storage the fields point into */
    size_t buf_cap;
    int fields_cap;
} CsvReader;

/* Reads `path` whole. Errors: unreadable, empty, invalid UTF-8 (with its
 * line), a NUL byte ("path:line:column: NUL byte (offset N)"). 0, or -1
 * with err_set. */
int csv_open(CsvReader *r, const char *path);

/* The same over a copy of `data` (n bytes); `name` is used in messages. */
int csv_open_mem(CsvReader *r, const char *name, const char *data, size_t n);

/* Reads the next record into r->fields: 1, 0 at the end, or -1 with
 * err_set ("path:line: unterminated quoted field", ...). */
int csv_next(CsvReader *r);

void csv_close(CsvReader *r);

#endif
