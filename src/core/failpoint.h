/* Failure injection, so tests can prove that an error deep below the trainer
 * stops a run cleanly. GENRE_FAILPOINT=NAME:N makes the N-th call (from 1)
 * of failpoint(NAME) in this process fail, and only that one; unset, every
 * call succeeds at the cost of one getenv. Sites are named where they are
 * called (backend_step, atomic_dir_commit). Single-threaded call sites only. */
#ifndef GENRE_CORE_FAILPOINT_H
#define GENRE_CORE_FAILPOINT_H

/* 0, or -1 with err_set("NAME: injected failure (GENRE_FAILPOINT)"). */
int failpoint(const char *name);

#endif
