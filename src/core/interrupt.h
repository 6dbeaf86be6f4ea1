/* Ctrl-C (SIGINT) and SIGTERM. By default a signal removes every temporary
 * file and directory the process has open (atomic.h), so an interrupted
 * command leaves no half-written output, and exits with 128 + the signal's
 * number. A long job that can stop cleanly at safe points (the trainer,
 * between steps) defers: the signal is then only recorded, the job polls
 * interrupt_requested() and stops; a second signal exits at once as above. */
#ifndef GENRE_CORE_INTERRUPT_H
#define GENRE_CORE_INTERRUPT_H

#include <stdbool.h>

/* Installs the handlers (bin/genre's main does, once). */
void interrupt_install(void);

/* Whether signals wait for the job (true) or exit at once (false). */
void interrupt_defer(bool on);

/* The deferred signal's number, or 0 while none came. */
int interrupt_requested(void);

#endif
