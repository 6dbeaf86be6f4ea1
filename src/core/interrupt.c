#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/interrupt.h"

static volatile sig_atomic_t deferred, pending;

static void on_signal(int sig)
{
    if (deferred && !pending) {
        pending = sig;
        return;
    }
    atomic_abort_all_async();
    _exit(128 + sig);
}

void interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void interrupt_defer(bool on) { deferred = on; }

int interrupt_requested(void) { return pending; }
