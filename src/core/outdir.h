/* Output directories: what a command may do with the --out it is given.
 * Every output directory a command makes holds a marker file, DIR/.genre,
 * naming its kind ("train", "baseline", "eval", "model", "data"). A
 * command writes into a missing or empty directory; it replaces only its own
 * kind of output, and only where that kind may be replaced (a finished
 * training run may not: it is resumed or kept); anything else it refuses
 * unless the user passes --force. Whatever replaces an output is built
 * beside it and swapped in whole (atomic.h), so the old one stays until the
 * new one is complete. */
#ifndef GENRE_CORE_OUTDIR_H
#define GENRE_CORE_OUTDIR_H

#include <stdbool.h>
#include <stddef.h>

/* The kind of output at dir: "" when dir is missing or an empty directory,
 * the marker's kind, or "?" for anything else (a file, a directory holding
 * files but no marker). */
void outdir_kind(const char *dir, char *kind, size_t size);

/* Whether `kind`'s command may write dir: it is missing or empty, or holds
 * `kind` and replace_own, or force. Else -1 with err_set naming dir, what it
 * holds and what to do ("pass --force to replace it", and `hint` when not
 * NULL). *replace is set when dir exists with content to be replaced. */
int outdir_claim(const char *dir, const char *kind, bool replace_own, bool force, const char *hint,
                 bool *replace);

/* Writes dir's marker (dir exists). 0, or -1 with err_set. */
int outdir_mark(const char *dir, const char *kind);

/* A whole output written as a set: claims dir as outdir_claim does, locks
 * it, and returns a fresh temporary sibling to fill (malloc'ed; NULL with
 * err_set). outdir_commit marks it and swaps it in over dir whole;
 * outdir_abort removes it, leaving dir as it was. */
char *outdir_begin(const char *dir, const char *kind, bool replace_own, bool force, const char *hint);
int outdir_commit(char *tmp, const char *dir, const char *kind);
void outdir_abort(char *tmp);

/* Takes the writer's lock of dir (an flock on the directory, released when
 * the process ends, however it ends). -1 with err_set when another process
 * holds it. */
int outdir_lock(const char *dir);

#endif
