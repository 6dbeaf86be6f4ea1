/* Error reporting: library code records one message and returns -1;
 * commands print it and exit non-zero. die() also removes any
 * uncommitted temporary output files (see atomic.h). */
#ifndef GENRE_ERR_H
#define GENRE_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Records a printf-style message for the calling thread; returns -1 so
 * callers can write `return err_set(...)`. The arguments may include
 * err_msg(), to add context to the error being passed up. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message recorded on this thread ("" if none). */
const char *err_msg(void);

/* Prints "genre: <message>" on stderr, aborts pending atomic files, exits 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* die() with the message recorded by err_set. */
void die_err(void) __attribute__((noreturn));

/* malloc/calloc/realloc that die with a clear message when memory runs out. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#ifdef __cplusplus
}
#endif

#endif
