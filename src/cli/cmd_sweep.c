/* genre sweep: many training runs from one sweep file (src/sweep/spec.h),
 * each a child `genre train` in its own directory, and its baselines, each
 * a child `genre baseline`, one after another or side by side; then the
 * combined results (src/sweep/collect.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/atomic.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/core/interrupt.h"
#include "src/core/outdir.h"
#include "src/sweep/collect.h"
#include "src/sweep/slurm.h"
#include "src/sweep/spec.h"

const CfgKey *const sweep_schema = sweep_settings;

static void usage(FILE *f)
{
    fprintf(f, "usage: genre sweep --config SWEEP.json [--out DIR] [--parallel N] [key=value ...]\n"
               "       genre sweep --config SWEEP.json [--out DIR] --only K [key=value ...]\n"
               "       genre sweep --config SWEEP.json [--out DIR] --emit-slurm FILE [key=value ...]\n"
               "       genre sweep --collect DIR\n\n"
               "Trains every run of a sweep: a base train configuration (\"base\": a file or an\n"
               "object), an explicit list of runs (\"runs\": [{key: value, ...}, ...]) crossed with a\n"
               "grid (\"grid\": {key: [values], ...}), each run in DIR/NAME, named by what differs\n"
               "(\"loss.type=focal,seed=1\"). key=value overrides apply to every training run (not to\n"
               "a key the sweep sweeps) and to no baseline. \"baselines\": {NAME: a baseline config\n"
               "file, or an object of baseline keys with an optional \"base\": FILE under them} adds\n"
               "a `genre baseline` run DIR/baseline=NAME per entry, after the training runs, on\n"
               "their data (the base's, overrides included). Every run is checked before the\n"
               "first starts.\n\n"
               "A finished run (metrics.json, the same config.json) is skipped, an interrupted one\n"
               "(a checkpoint in last/) resumed; a run directory with another config.json is an\n"
               "error. --parallel N runs N `genre train` side by side, the OpenMP threads\n"
               "(OMP_NUM_THREADS, default every CPU) split between them, each run's output in\n"
               "DIR/logs/NAME.log. --only K runs run K alone (0-based, the order of\n"
               "DIR/sweep.json), as one task of a job array; --emit-slurm FILE writes that job\n"
               "array as an sbatch script instead of running anything.\n\n"
               "At the end, and with --collect DIR for whatever has finished, DIR gets\n"
               "summary.md, summary.csv and summary.json (val and test metrics as mean +- sd\n"
               "over the seeds of each group of runs that differ only in seed; the paired\n"
               "bootstrap 95%% interval of each group's test-Jaccard difference to the reference\n"
               "group, and of each training group's to each baseline, with the best group's) and\n"
               "plots/. Default DIR: runs/sweep-NAME (NAME: the sweep file's name).\n"
               "GENRE_EXE names the genre binary the runs use (default: this one).\n\n"
               "Sweep settings (top-level keys of the sweep file, besides base, runs, grid,\n"
               "baselines and jaccard_diff: [[A, B], ...], the groups whose per-genre Jaccard\n"
               "A - B is plotted):\n");
    for (const CfgKey *k = sweep_settings; k->key; k++) {
        char range[128] = "";
        if (k->type == CFG_INT) config_range_text(k->allowed, range, sizeof range);
        fprintf(f, "  %-22s default %-8s %s%s%s\n", k->key, k->def, k->help, *range ? "; " : "", range);
    }
}

/* ---- the runs' command lines --------------------------------------------------- */

/* key=value for every key of a resolved configuration, exactly (reals to 17
 * digits), so that the child's config.json is the sweep's configuration. */
static int config_args(char **argv, const json_t *config, const CfgKey *schema)
{
    int n = 0;
    for (const CfgKey *k = schema; k->key; k++) {
        json_t *v = json_dotted(config, k->key);
        char *arg = NULL;
        int ok = -1;
        if (json_is_string(v)) ok = asprintf(&arg, "%s=%s", k->key, json_string_value(v));
        else if (json_is_integer(v)) ok = asprintf(&arg, "%s=%" JSON_INTEGER_FORMAT, k->key, json_integer_value(v));
        else if (json_is_real(v)) ok = asprintf(&arg, "%s=%.17g", k->key, json_real_value(v));
        else if (json_is_boolean(v)) ok = asprintf(&arg, "%s=%s", k->key, json_is_true(v) ? "true" : "false");
        else if (json_is_array(v)) {
            char *list = json_dumps(v, JSON_COMPACT);
            ok = list ? asprintf(&arg, "%s=%s", k->key, list) : -1;
            free(list);
        }
        if (ok < 0) die("internal error: the sweep's configuration has no value for '%s'", k->key);
        argv[n++] = arg;
    }
    return n;
}

static json_t *resolve_run(const char *what, int n_layers, const CfgLayer *layers)
{
    Config *c = train_config_resolve(what, n_layers, layers);
    if (!c) {
        /* A missing data or init directory is said to be the sweep's too. */
        const char *m = err_msg();
        if (strncmp(m, what, strlen(what)) && strncmp(m, "override '", 10)) err_set("%s: %s", what, m);
        return NULL;
    }
    json_t *o = config_to_json(c);
    config_free(c);
    return o;
}

/* The genre binary the runs are started with. */
static char *genre_exe(void)
{
    const char *env = getenv("GENRE_EXE");
    char *p = realpath(env && *env ? env : "/proc/self/exe", NULL);
    if (!p) die("%s: cannot find the genre binary: %s", env && *env ? env : "/proc/self/exe", strerror(errno));
    return p;
}

/* The OpenMP threads to share: OMP_NUM_THREADS when set, else the CPUs this process may use. */
static int thread_budget(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    long n;
    if (env && config_parse_int(env, &n) && n > 0) return n > 4096 ? 4096 : (int)n;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

/* ---- the sweep directory --------------------------------------------------------- */

/* Makes dir a sweep directory unless it is one. A new one is built beside
 * it with its marker and renamed into place, so that array tasks starting
 * together never see a half-made one: the first rename wins, the others
 * find the winner's. */
static void claim_dir(const char *dir)
{
    char kind[64];
    outdir_kind(dir, kind, sizeof kind);
    if (!*kind) {
        char tmp[4200];
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", dir, (int)getpid()) >= sizeof tmp)
            die("%s: path too long", dir);
        char *slash = strrchr(tmp, '/');
        if (slash) {
            *slash = '\0';
            if (make_dirs(tmp) != 0) die_err();
            *slash = '/';
        }
        if (mkdir(tmp, 0777) != 0) die("%s: cannot create: %s", tmp, strerror(errno));
        if (outdir_mark(tmp, "sweep") != 0) {
            remove_tree(tmp);
            die_err();
        }
        if (rename(tmp, dir) != 0) {
            int e = errno;
            remove_tree(tmp);
            if (e != EEXIST && e != ENOTEMPTY) die("%s: cannot create: %s", dir, strerror(e));
        }
        outdir_kind(dir, kind, sizeof kind);
    }
    if (strcmp(kind, "sweep")) {
        if (!strcmp(kind, "?")) die("%s: is not empty and was not made by genre sweep; choose another --out", dir);
        die("%s: already holds a genre %s output; choose another --out", dir, kind);
    }
}

/* ---- running ------------------------------------------------------------------------- */

typedef struct {
    int run;      /* -1: free */
    pid_t pid;
    int threads;
} Slot;

/* Starts one run: `genre train` in its own process group (so that Ctrl-C
 * reaches the sweep alone, which passes it on once), stopped by SIGTERM if
 * the sweep dies, with its share of the threads; its output to log, or to
 * the sweep's own with log NULL. */
static pid_t start(const char *exe, char **argv, int threads, const char *log)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("cannot start a run: %s", strerror(errno));
    if (pid > 0) return pid;
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            fprintf(stderr, "genre: %s: cannot open: %s\n", log, strerror(errno));
            _exit(127);
        }
    }
    char n[16];
    snprintf(n, sizeof n, "%d", threads);
    setenv("OMP_NUM_THREADS", n, 1);
    execv(exe, argv);
    fprintf(stderr, "genre: %s: cannot run: %s\n", exe, strerror(errno));
    _exit(127);
}

static void free_argv(char **argv)
{
    for (int i = 0; argv[i]; i++) free(argv[i]);
    free(argv);
}

/* The command line of run k in its state. */
static char **run_argv(const Sweep *s, int k, RunState st, const char *exe, const char *rundir)
{
    bool baseline = s->runs[k].kind == SWEEP_BASELINE;
    const CfgKey *schema = baseline ? baseline_schema : train_schema;
    int n_keys = 0;
    for (const CfgKey *c = schema; c->key; c++) n_keys++;
    char **argv = xcalloc((size_t)n_keys + 8, sizeof *argv);
    int n = 0;
    argv[n++] = xstrdup(exe);
    if (baseline) {
        /* Seconds of work, written whole at its end: a baseline is never
         * resumed, and replaces its own earlier output (RUN_RESTART) itself. */
        argv[n++] = xstrdup("baseline");
        argv[n++] = xstrdup("--out");
        argv[n++] = xstrdup(rundir);
        config_args(argv + n, s->runs[k].config, schema);
        return argv;
    }
    argv[n++] = xstrdup("train");
    if (st == RUN_INTERRUPTED) {
        argv[n++] = xstrdup("--resume");
        argv[n++] = xstrdup(rundir);
        return argv;
    }
    /* A run stopped before its first checkpoint has nothing to resume: it is
     * started again over what it left (--force replaces only at its end). */
    if (st == RUN_RESTART) argv[n++] = xstrdup("--force");
    argv[n++] = xstrdup("--out");
    argv[n++] = xstrdup(rundir);
    config_args(argv + n, s->runs[k].config, schema);
    return argv;
}

typedef struct {
    const Sweep *s;
    const char *dir, *exe;
    RunState *state;
    int parallel, budget;
    bool logs;
} Runner;

/* Runs the runs of queue[0..n) at most parallel at a time; 0 when all
 * finished, -1 when one failed, -2 when a signal stopped them (with
 * err_set). A failed run stops new starts (those running finish); a
 * signal is passed on to the running ones, which stop at their next step
 * with a checkpoint. */
static int run_queue(const Runner *R, const int *queue, int n)
{
    const Sweep *s = R->s;
    Slot *slots = xcalloc((size_t)R->parallel, sizeof *slots);
    for (int i = 0; i < R->parallel; i++) {
        slots[i].run = -1;
        /* A fair share: the first budget % parallel slots get one thread more. */
        slots[i].threads = R->budget / R->parallel + (i < R->budget % R->parallel);
        if (slots[i].threads < 1) slots[i].threads = 1;
    }
    int next = 0, running = 0, failed = 0, sig = 0;
    char rundir[4200], log[4300];
    interrupt_defer(true);
    while ((next < n && !failed && !sig) || running > 0) {
        for (int i = 0; i < R->parallel && next < n && !failed && !sig; i++) {
            if (slots[i].run >= 0) continue;
            int k = queue[next++];
            if ((size_t)snprintf(rundir, sizeof rundir, "%s/%s", R->dir, s->runs[k].name) >= sizeof rundir ||
                (size_t)snprintf(log, sizeof log, "%s/logs/%s.log", R->dir, s->runs[k].name) >= sizeof log)
                die("%s: path too long", R->dir);
            char **argv = run_argv(s, k, R->state[k], R->exe, rundir);
            printf("%s: %s (OMP_NUM_THREADS=%d)%s%s\n", s->runs[k].name,
                   R->state[k] == RUN_INTERRUPTED ? "resuming" : "starting", slots[i].threads,
                   R->logs ? ", output in " : "", R->logs ? log : "");
            slots[i].pid = start(R->exe, argv, slots[i].threads, R->logs ? log : NULL);
            slots[i].run = k;
            running++;
            free_argv(argv);
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0 || (pid < 0 && errno == EINTR)) {
            if (!sig && (sig = interrupt_requested()))
                for (int i = 0; i < R->parallel; i++)
                    if (slots[i].run >= 0) kill(slots[i].pid, sig);
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
            continue;
        }
        if (pid < 0) die("waiting for the runs: %s", strerror(errno));
        for (int i = 0; i < R->parallel; i++) {
            if (slots[i].run < 0 || slots[i].pid != pid) continue;
            int k = slots[i].run, ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            slots[i].run = -1;
            running--;
            if (ok) {
                R->state[k] = RUN_FINISHED;
                printf("%s: finished\n", s->runs[k].name);
            } else {
                failed++;
                char how[64];
                if (WIFEXITED(status)) snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
                else snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
                if (R->logs)
                    fprintf(stderr, "genre: sweep: run %s failed (%s); its output is in %s/logs/%s.log\n",
                            s->runs[k].name, how, R->dir, s->runs[k].name);
                else fprintf(stderr, "genre: sweep: run %s failed (%s)\n", s->runs[k].name, how);
            }
        }
    }
    interrupt_defer(false);
    fflush(stdout);
    free(slots);
    if (sig) {
        err_set("interrupted (signal %d); the runs stopped with a checkpoint: run the same genre sweep again to "
                "continue", sig);
        return -2;
    }
    return failed ? err_set("%d run%s of the sweep failed (see above); run the same genre sweep again to retry "
                            "(finished runs are kept)", failed, failed == 1 ? "" : "s")
                  : 0;
}

/* ---- the command -------------------------------------------------------------------- */

static int collect(const Sweep *s, const char *dir)
{
    int n = 0;
    if (sweep_collect(s, dir, train_schema, baseline_schema, &n) != 0) return -1;
    printf("collected %d of %d runs: %s/summary.md, summary.csv, summary.json, plots/\n", n, s->n_runs, dir);
    return 0;
}

static int cmd_collect(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    char kind[64];
    outdir_kind(dir, kind, sizeof kind);
    if (strcmp(kind, "sweep")) die("--collect %s: not a genre sweep directory (no .genre marker naming one)", dir);
    Sweep s;
    if (sweep_read(&s, path) != 0) die_err();
    int rc = collect(&s, dir);
    sweep_free(&s);
    if (rc != 0) die_err();
    return 0;
}

/* An absolute path for a file or directory that may not exist yet. */
static char *absolute(const char *path)
{
    char *abs = realpath(path, NULL);
    if (abs) return abs;
    char cwd[4096], *out = NULL;
    if (path[0] == '/') return xstrdup(path);
    if (!getcwd(cwd, sizeof cwd)) die("cannot read the working directory: %s", strerror(errno));
    if (asprintf(&out, "%s/%s", cwd, path) < 0) die("out of memory");
    return out;
}

int cmd_sweep(int argc, char **argv)
{
    const char *config = NULL, *out = NULL, *slurm = NULL, *collect_dir = NULL;
    long parallel = 1, only = -1;
    const ArgOpt opts[] = {
        {.name = "--config", .str = &config},
        ARG_OUT(&out, false),
        {.name = "--parallel", .num = &parallel, .range = "[1, 256]"},
        {.name = "--only", .num = &only, .range = "[0, 99999]"},
        {.name = "--emit-slurm", .str = &slurm},
        {.name = "--collect", .str = &collect_dir},
        {0},
    };
    Args a = args_parse(&(ArgSpec){.cmd = "sweep", .opts = opts, .usage = usage, .overrides = true}, argc, argv);
    if (collect_dir) {
        if (config || out || slurm || only >= 0 || parallel != 1 || a.n_overrides)
            args_error("sweep", "--collect DIR takes no other option or override");
        args_free(&a);
        return cmd_collect(collect_dir);
    }
    if (!config) args_error("sweep", "--config is required (or --collect DIR)");
    if (only >= 0 && parallel != 1) args_error("sweep", "--only runs one run: it takes no --parallel");
    if (slurm && (only >= 0 || parallel != 1)) args_error("sweep", "--emit-slurm runs nothing: it takes no --only or --parallel");

    Sweep s;
    if (sweep_load(&s, config, train_schema, resolve_run, baseline_schema, a.n_overrides, a.overrides) != 0) die_err();
    args_free(&a);
    char def[4200];
    snprintf(def, sizeof def, "runs/sweep-%s", s.name);
    const char *dir = out ? out : def;
    if (only >= s.n_runs)
        die("--only %ld: the sweep %s has %d run%s (0 to %d)", only, config, s.n_runs, s.n_runs == 1 ? "" : "s",
            s.n_runs - 1);
    char *exe = genre_exe();
    if (slurm) {
        char *cwd = absolute("."), *cfg = absolute(config), *abs_out = absolute(dir);
        if (slurm_write(slurm, &s, exe, cwd, cfg, abs_out) != 0) die_err();
        printf("wrote %s: %d array tasks (0-%d) into %s; submit it with sbatch %s\n", slurm, s.n_runs, s.n_runs - 1,
               abs_out, slurm);
        free(cwd), free(cfg), free(abs_out), free(exe);
        sweep_free(&s);
        return 0;
    }

    /* Every run directory is judged before any run starts. */
    claim_dir(dir);
    if (only < 0 && outdir_lock(dir) != 0) die_err();
    RunState *state = xcalloc((size_t)s.n_runs, sizeof *state);
    int *queue = xmalloc((size_t)s.n_runs * sizeof *queue), n_queue = 0, finished = 0;
    for (int k = only >= 0 ? (int)only : 0; k < (only >= 0 ? only + 1 : s.n_runs); k++) {
        if (sweep_run_state(&s, k, dir, train_schema, baseline_schema, &state[k]) != 0) die_err();
        if (state[k] == RUN_FINISHED) finished++;
        else queue[n_queue++] = k;
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    if (sweep_save(&s, path) != 0) die_err();
    Runner R = {.s = &s, .dir = dir, .exe = exe, .state = state, .parallel = (int)parallel,
                .budget = thread_budget(), .logs = parallel > 1};
    if (R.parallel > n_queue && n_queue > 0) R.parallel = n_queue;
    char baselines[64] = "";
    if (s.n_runs > s.n_train)
        snprintf(baselines, sizeof baselines, " (%d training, %d baseline%s)", s.n_train, s.n_runs - s.n_train,
                 s.n_runs - s.n_train == 1 ? "" : "s");
    printf("sweep %s: %d runs%s in %d groups into %s; %d finished (skipped), %d to run, %d at a time\n", s.name,
           s.n_runs, baselines, s.n_groups, dir, finished, n_queue, R.parallel);
    for (int k = 0; k < s.n_runs; k++)
        if (state[k] == RUN_FINISHED) printf("%s: skipped (finished)\n", s.runs[k].name);
    if (R.logs) {
        snprintf(path, sizeof path, "%s/logs", dir);
        if (make_dirs(path) != 0) die_err();
    }
    int rc = n_queue ? run_queue(&R, queue, n_queue) : 0;
    char failure[2048] = "";
    if (rc != 0) snprintf(failure, sizeof failure, "%s", err_msg());
    /* Whatever finished is collected, even after a failed run; not after a
     * signal (the user is stopping), nor by one task of an array. */
    if (only < 0 && rc != -2 && collect(&s, dir) != 0) {
        if (rc == 0) {
            rc = -1;
            snprintf(failure, sizeof failure, "%s", err_msg());
        } else {
            fprintf(stderr, "genre: sweep: nothing collected: %s\n", err_msg());
        }
    }
    free(queue);
    free(state);
    free(exe);
    sweep_free(&s);
    if (rc != 0) die("%s", failure);
    return 0;
}
