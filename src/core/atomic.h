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

/* Removes every temporary file and directory still open (called by die()). */
void atomic_abort_all(void);

/* The same with system calls alone, for a signal handler (interrupt.h):
 * nothing is freed, since the process is about to exit. */
void atomic_abort_all_async(void);

/* Writes a whole buffer to path atomically. */
int atomic_write_file(const char *path, const void *data, size_t n);

/* Atomic directories, for outputs made of several files that must agree
 * (a model with its config, a checkpoint with its optimizer state): fill the
 * directory atomic_dir_begin returns, then atomic_dir_commit swaps it in
 * whole (renameat2 RENAME_EXCHANGE), so readers and resumed runs see the old
 * or the new directory, never a mix. begin removes leftovers of killed
 * writers ("<dir>.tmp.*") and returns a malloc'ed path, or NULL with
 * err_set. commit frees tmp; 0 or -1 with err_set. A directory neither
 * committed nor removed by its writer is removed by atomic_abort_all. */
char *atomic_dir_begin(const char *dir);
int atomic_dir_commit(char *tmp, const char *dir);
/* Abandons a directory from atomic_dir_begin: removes it, frees tmp. */
void atomic_dir_abort(char *tmp);

/* rm -rf; 0 or -1 with err_set. */
int remove_tree(const char *path);

/* Copies a file atomically. 0 or -1 with err_set. */
int atomic_copy_file(const char *from, const char *to);

/* mkdir -p; 0 or -1 with err_set. */
int make_dirs(const char *path);

#endif
