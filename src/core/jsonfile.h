/* JSON documents as files: written dumped, ended with a newline and
 * committed atomically (atomic.h), so a reader never sees half a document;
 * read with one message form for whatever is wrong, so that no reader
 * prints jansson's line -1 or the names of its flags. */
#ifndef GENRE_JSONFILE_H
#define GENRE_JSONFILE_H

#include <jansson.h>

/* Writes `o` to `path` with jansson's dump `flags`; `o` is not consumed.
 * 0, or -1 with err_set naming the path. */
int json_write_file(const char *path, const json_t *o, size_t flags);

/* The JSON document at path, decoded with jansson's `flags` (a new
 * reference), or NULL with err_set naming the path, one of
 *   PATH: cannot open: No such file or directory
 *   PATH: is a directory, not a JSON file
 *   PATH:LINE: what (json_error_what)
 * Every JSON file genre reads goes through here. */
json_t *json_read_file(const char *path, size_t flags);

/* What a decoding error says: jansson's text, in plain words where that
 * text names jansson's own flags (a \u0000 in a string). For the readers
 * of JSON text that is not a whole file (a .jsonl line, a header). */
const char *json_error_what(const json_error_t *e);

/* A JSON real for a float: the double of its shortest decimal form that
 * reads back as the same float, so 0.29f is 0.29, not 0.28999999165534973. */
json_t *json_real_of_float(float x);

/* {names[k]: values[k], ...} for k < n, each value a json_real_of_float:
 * per-genre thresholds as config.json and metrics.json keep them. */
json_t *json_floats_by_name(const char *const *names, const float *values, int n);

#endif
