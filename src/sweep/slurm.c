#include <stdio.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/sweep/slurm.h"

/* s in single quotes for the shell: a quote inside becomes '\''. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

int slurm_write(const char *path, const Sweep *s, const char *genre, const char *cwd, const char *config,
                const char *out)
{
    /* A job name Slurm and its tools show as is. */
    char job[128];
    snprintf(job, sizeof job, "genre-sweep-%s", s->name);
    for (char *c = job; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("._-", *c)))
            *c = '_';
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    FILE *f = atomic_stream(af);
    fprintf(f, "#!/bin/bash\n"
               "# genre sweep %s: %d runs, one Slurm array task each (written by genre sweep --emit-slurm).\n"
               "# Submit it with `sbatch %s`, adding #SBATCH lines below for your cluster (--cpus-per-task,\n"
               "# --mem, --time, --partition). Each task runs one run through `genre sweep --only TASK`: a\n"
               "# finished run is skipped and an interrupted one resumed, so after a failure the same array\n"
               "# can be submitted again. When every task has ended, collect the results with\n#   ",
            s->name, s->n_runs, path);
    sh_quote(f, genre);
    fputs(" sweep --collect ", f);
    sh_quote(f, out);
    fputs("\n# or let Slurm do it: sbatch --dependency=afterany:JOBID --wrap \"genre sweep --collect DIR\".\n#\n", f);
    for (int r = 0; r < s->n_runs; r++) fprintf(f, "# task %d: %s\n", r, s->runs[r].name);
    fprintf(f, "#SBATCH --job-name=%s\n#SBATCH --array=0-%d\n\nset -euo pipefail\ncd ", job, s->n_runs - 1);
    sh_quote(f, cwd);
    fputs("\n# One OpenMP thread per CPU Slurm gave the task.\n"
          "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export OMP_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\nexec ", f);
    sh_quote(f, genre);
    fputs(" sweep --config ", f);
    sh_quote(f, config);
    fputs(" --out ", f);
    sh_quote(f, out);
    fputs(" --only \"$SLURM_ARRAY_TASK_ID\"", f);
    for (int i = 0; i < s->n_overrides; i++) {
        fputc(' ', f);
        sh_quote(f, s->overrides[i]);
    }
    fputc('\n', f);
    return atomic_commit(af);
}
