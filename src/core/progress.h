/* Live progress for long jobs: on a terminal, one status line rewritten in
 * place (epoch, step/total, loss, samples/s, ETA); when output is not a
 * terminal, a plain line every `interval` seconds so logs stay readable. */
#ifndef GENRE_PROGRESS_H
#define GENRE_PROGRESS_H

#include <stdio.h>

/* Monotonic wall-clock seconds. */
double wall_seconds(void);

typedef struct {
    FILE *f;
    int tty;
    long total_steps, first_step;
    double start, last_print, interval;
    int line_open;
} Progress;

/* first_step: the step a resumed run starts from, so speed and ETA count
 * only the steps this process ran. f NULL: silent (a job's other ranks). */
void progress_init(Progress *p, FILE *f, long total_steps, long first_step, double interval);
void progress_update(Progress *p, int epoch, int n_epochs, long step, double loss,
                     double samples_per_s);
/* Prints a message on its own line without garbling the status line. */
void progress_message(Progress *p, const char *msg);
void progress_done(Progress *p);

#endif
