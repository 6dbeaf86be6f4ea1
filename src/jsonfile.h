/* JSON documents written as files: dumped, ended with a newline, and
 * committed atomically (atomic.h), so a reader never sees half a document. */
#ifndef GENRE_JSONFILE_H
#define GENRE_JSONFILE_H

#include <jansson.h>

/* Writes `o` to `path` with jansson's dump `flags`; `o` is not consumed.
 * 0, or -1 with err_set naming the path. */
int json_write_file(const char *path, const json_t *o, size_t flags);

#endif
