/* JSON documents written as files: dumped, ended with a newline, and
 * committed atomically (atomic.h), so a reader never sees half a document. */
#ifndef GENRE_JSONFILE_H
#define GENRE_JSONFILE_H

#include <jansson.h>

/* Writes `o` to `path` with jansson's dump `flags`; `o` is not consumed.
 * 0, or -1 with err_set naming the path. */
int json_write_file(const char *path, const json_t *o, size_t flags);

/* A JSON real for a float: the double of its shortest decimal form that
 * reads back as the same float, so 0.29f is 0.29, not 0.28999999165534973. */
json_t *json_real_of_float(float x);

#endif
