/* Atomic output files: everything is written to "<path>.tmp.<pid>" and
 * renamed over <path> only after a successful flush and fsync, so a crash,
 * a full disk or a die() never leaves a half-written output behind. */
#ifndef GENRE_ATOMIC_H
#define GENRE_ATOMIC_H

#include <stdio.h>

typedef struct AtomicFile AtomicFile;

/* Opens a temporary file beside `path`; NULL (with err_set) on failure. */
AtomicFile *atomic_open(const char *path);

/* The stream to write to. */
FILE *atomic_stream(AtomicFile *af);

/* Flushes, fsyncs and renames over the final path; checks every write
 * error (ENOSPC included). Frees af. 0 on success, -1 with err_set. */
int atomic_commit(AtomicFile *af);

/* Removes the temporary file and frees af. */
void atomic_abort(AtomicFile *af);

/* Removes every temporary file still open (called by die()). */
void atomic_abort_all(void);

/* Writes a whole buffer to path atomically. */
int atomic_write_file(const char *path, const void *data, size_t n);

/* mkdir -p; 0 or -1 with err_set. */
int make_dirs(const char *path);

#endif
