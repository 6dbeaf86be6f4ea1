#include <time.h>
#include <unistd.h>

#include "src/core/progress.h"

double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(Progress *p, FILE *f, long total_steps, long first_step, double interval)
{
    p->f = f;
    p->tty = f && isatty(fileno(f));
    p->total_steps = total_steps;
    p->first_step = first_step;
    p->start = p->last_print = wall_seconds();
    p->interval = interval;
    p->line_open = 0;
}

static void format_eta(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void progress_update(Progress *p, int epoch, int n_epochs, long step, double loss,
                     double samples_per_s)
{
    if (!p->f) return;
    double now = wall_seconds();
    int last = step >= p->total_steps;
    if (!p->tty && now - p->last_print < p->interval && !last) return;
    if (p->tty && now - p->last_print < 0.1 && !last) return;
    p->last_print = now;
    long done = step - p->first_step;
    double per_step = done > 0 ? (now - p->start) / (double)done : 0.0;
    char eta[32];
    format_eta(eta, sizeof eta, per_step * (double)(p->total_steps - step));
    fprintf(p->f, "%sepoch %d/%d  step %ld/%ld  loss %.4f  %.1f samples/s  ETA %s%s",
            p->tty ? "\r\033[K" : "", epoch, n_epochs, step, p->total_steps, loss, samples_per_s,
            eta, p->tty ? "" : "\n");
    p->line_open = p->tty;
    fflush(p->f);
}

void progress_message(Progress *p, const char *msg)
{
    if (!p->f) return;
    fprintf(p->f, "%s%s\n", p->line_open ? "\r\033[K" : "", msg);
    p->line_open = 0;
    fflush(p->f);
}

void progress_done(Progress *p)
{
    if (!p->f) return;
    if (p->line_open) fputc('\n', p->f);
    p->line_open = 0;
    fflush(p->f);
}
