#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/dist/launch.h"

int dist_launch(int procs, char *const *args)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return err_set("cannot find this program (/proc/self/exe): %s", strerror(errno));
    exe[len] = '\0';
    long cores = sysconf(_SC_NPROCESSORS_ONLN), threads = cores / procs > 0 ? cores / procs : 1;
    const char *mpirun = getenv("MPIRUN") ? getenv("MPIRUN") : "mpirun";
    char np[16], omp[48];
    snprintf(np, sizeof np, "%d", procs);
    snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%ld", threads);
    int n = 0;
    while (args[n]) n++;
    const char **argv = xcalloc((size_t)n + 16, sizeof *argv);
    int k = 0;
    argv[k++] = mpirun;
    argv[k++] = "-np";
    argv[k++] = np;
    /* OpenMPI refuses root unless told: containers often run as root. */
    if (geteuid() == 0) argv[k++] = "--allow-run-as-root";
    /* More ranks than cores is slow, not wrong (a laptop, a test). */
    argv[k++] = "--oversubscribe";
    /* Each rank's OpenMP threads spread over its share, not one bound core. */
    argv[k++] = "--bind-to";
    argv[k++] = "none";
    argv[k++] = "-x";
    argv[k++] = omp;
    argv[k++] = exe;
    for (int i = 0; i < n; i++) argv[k++] = args[i];
    argv[k] = NULL;
    setenv("OMP_NUM_THREADS", omp + strlen("OMP_NUM_THREADS="), 1);
    fflush(NULL);
    execvp(mpirun, (char *const *)argv);
    int e = errno;
    free(argv);
    return err_set("cannot run %s for %d processes: %s (install openmpi-bin, or set MPIRUN)", mpirun, procs,
                   strerror(e));
}
