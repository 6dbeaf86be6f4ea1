/* Data parallel over MPI on the CPU backend (src/dist/comm.h, the trainer's
 * data-parallel rule), with real mpirun jobs of bin/genre on the tiny
 * set-up: 2 ranks give the bytes of 1 rank accumulating 2, 3 ranks match 1
 * rank accumulating 3, a run saved by 2 ranks resumes on 1 and on 3 to the
 * uninterrupted bytes (the simulated CUDA backend as well as the CPU, and
 * with ZeRO-1 on both), and a rank killed or hung ends the whole job in
 * bounded time with the last checkpoint intact. Every rank runs one OpenMP
 * thread, the single-process runs too: the CPU ops' reductions split by
 * thread, so bytes are compared at equal threads per process. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/dist/rendezvous.h"
#include "tests/testutil.h"

static char root[128];

static const char *at(const char *name) { return path_in(root, name); }

static int have_mpirun(void) { return system("command -v mpirun >/dev/null 2>&1") == 0; }

static void setup(void)
{
    fresh_tmp_dir(root, sizeof root, "dist");
    cr_assert_eq(tiny_train_setup(root, 1), 0, "cannot write the tiny set-up in %s", root);
    /* OpenMPI refuses root without these; CI containers run as root. */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("GENRE_TEST_JOB", root, 1); /* finds this test's ranks among all processes */
}

static void cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* Starts `sh -c "PREFIX BIN train COMMON ARGS"` (PREFIX: mpirun -np N ...,
 * or empty; no COMMON for a --resume, which takes none), stdout and stderr
 * to log; its pid. */
static pid_t launch(const char *bin, const char *prefix, const char *args, const char *log)
{
    char *cmd = NULL, common[400] = "";
    if (strncmp(args, "--resume", 8))
        snprintf(common, sizeof common, "data=%s init=%s max_len=16 batch_size=4 epochs=3 lr=3e-3 seed=7 "
                 "loss.type=focal checkpoint_every=5", at("data"), at("init"));
    cr_assert(asprintf(&cmd, "%s %s train %s %s > %s 2>&1", prefix, bin, common, args, log) > 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(98);
    }
    free(cmd);
    return pid;
}

/* bin/genre, output in out.txt. */
static pid_t start(const char *prefix, const char *args) { return launch("bin/genre", prefix, args, at("out.txt")); }

static int finish(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run(const char *prefix, const char *args) { return finish(start(prefix, args)); }

/* The same with bin/genre-sim (pass device=cuda, or --resume). */
static int run_sim(const char *prefix, const char *args)
{
    return finish(launch("bin/genre-sim", prefix, args, at("out.txt")));
}

#define MPIRUN(n) "mpirun -np " #n " --oversubscribe --bind-to none"

static void expect_same_run(const char *a, const char *b)
{
    const char *files[] = {"best/model.safetensors", "last/model.safetensors", "last/optimizer.safetensors",
                           "metrics.json", "best/config.json"};
    for (int i = 0; i < 5; i++) {
        char pa[300], pb[300];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        struct stat sa, sb;
        cr_assert(stat(pa, &sa) == 0 && stat(pb, &sb) == 0, "%s or %s missing", pa, pb);
        char *x = slurp(pa), *y = slurp(pb);
        cr_expect(sa.st_size == sb.st_size && memcmp(x, y, (size_t)sa.st_size) == 0, "%s and %s differ", pa, pb);
        free(x);
        free(y);
    }
}

/* `mpirun -np n TOOL` (a tests/tools program and its arguments): its exit
 * status, its output in *out (caller frees). */
static int mpirun_tool(int n, const char *tool, char **out)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mpirun -np %d --oversubscribe %s > %s 2>&1", n, tool, at("out.txt"));
    int rc = system(cmd);
    *out = slurp(at("out.txt"));
    return rc;
}

Test(dist, every_collective_on_one_two_and_three_ranks, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    for (int n = 1; n <= 3; n++) {
        char *out;
        cr_expect_eq(mpirun_tool(n, "build/tests/comm-check", &out), 0, "%d ranks: %s", n, out);
        int ok = 0;
        for (char *p = out; (p = strstr(p, ": ok\n")); p++) ok++;
        cr_expect_eq(ok, n, "%d ranks, %d ok: %s", n, ok, out);
        free(out);
    }
}

/* The same global batch: the same movies, masks and learning rates, and the
 * two ranks' gradients summed are one rank's two accumulated. */
Test(dist, two_ranks_give_the_bytes_of_one_rank_accumulating_two, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "grad_accum=2 --out %s", at("one"));
    cr_assert_eq(run("", args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "--out %s", at("two"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    char *out = slurp(at("out.txt"));
    cr_expect(strstr(out, "data parallel: 2 ranks, 2 micro-batches of 4 per step") != NULL, "%s", out);
    free(out);
    expect_same_run(at("one"), at("two"));
}

/* The CUDA backend's all-reduce in the simulated runtime: NCCL on device
 * memory (its unique id over MPI; tests/cudasim/nccl.cpp carries it over
 * MPI), bucket by bucket on a stream of its own while the last backward
 * runs. Two simulated GPUs give one's two accumulated byte for byte, in
 * both of the simulator's orders (a step that did not wait for the sums
 * runs ahead of them); two GPUs accumulating two each (buckets finished
 * from scratch) match one accumulating four, grouped differently. */
Test(dist, simulated_gpus_sum_their_gradients_with_nccl_beside_the_backward, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    if (access("bin/genre-sim", X_OK)) SKIP_SETUP("bin/genre-sim not built (make bin/genre-sim)");
    const char *runs[][3] = {{"", "grad_accum=2", "one"},
                             {MPIRUN(2), "grad_accum=1", "two"},
                             {"CUDASIM_ORDER=reverse " MPIRUN(2) " -x CUDASIM_ORDER", "grad_accum=1", "two_reverse"},
                             {"", "grad_accum=4", "one_by_four"},
                             {MPIRUN(2), "grad_accum=2", "two_by_two"}};
    for (int k = 0; k < 5; k++) {
        char *cmd = NULL;
        cr_assert(asprintf(&cmd, "%s bin/genre-sim train data=%s init=%s max_len=16 batch_size=4 epochs=2 lr=3e-3 "
                           "seed=7 loss.type=focal device=cuda %s --out %s > %s 2>&1", runs[k][0], at("data"),
                           at("init"), runs[k][1], at(runs[k][2]), at("out.txt")) > 0);
        cr_assert_eq(system(cmd), 0, "%s: %s", cmd, slurp(at("out.txt")));
        free(cmd);
    }
    expect_same_run(at("one"), at("two"));
    expect_same_run(at("one"), at("two_reverse"));
    ModelWeights a, b;
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/last", at("one_by_four"));
    snprintf(pb, sizeof pb, "%s/last", at("two_by_two"));
    cr_assert_eq(checkpoint_load_head(&a, pa, 3), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load_head(&b, pb, 3), 0, "%s", err_msg());
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&a.lay, id); l++) {
            if (id == P_K_B) continue; /* Adam amplifies its rounding-noise gradient (tests/model/test_model.c) */
            const ParamSlot *sl = layout_slot(&a.lay, id, l);
            worst = fmax(worst, rel_err(b.params + sl->off, a.params + sl->off, sl->n, 1.0));
        }
    cr_log_info("2 simulated GPUs x accumulation 2 vs 1 x 4: worst parameter difference %.3g", worst);
    cr_expect_lt(worst, 1e-5, "parameters differ by %g", worst);
    weights_free(&a);
    weights_free(&b);
}

/* The simulated NCCL itself: every collective right on 1 to 3 ranks, and
 * what NCCL would fail on or hang at is an error: ranks given different
 * unique ids, ranks issuing different collectives, a host buffer. */
Test(dist, the_simulated_nccl_checks_what_a_gpu_would_fail_on, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    const char *modes[] = {"ok", "own-ids", "mismatch", "host-pointer"};
    const char *said[] = {": ok\n", "different unique ids", "issued different collectives", "is not device memory"};
    for (int m = 0; m < 4; m++)
        for (int n = m ? 2 : 1; n <= 3; n++) {
            char tool[100], *out;
            snprintf(tool, sizeof tool, "build/tests/nccl-check %s", modes[m]);
            cr_expect_eq(mpirun_tool(n, tool, &out), 0, "%s on %d ranks: %s", modes[m], n, out);
            cr_expect(strstr(out, said[m]) != NULL, "%s on %d ranks: %s", modes[m], n, out);
            free(out);
        }
}

/* A NaN reaches every rank through the sums: all stop at the same step
 * with the same one-line error, and the job fails. */
Test(dist, a_nan_on_the_ranks_stops_them_all_at_one_step, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "lr=1e30 max_grad_norm=0 --out %s", at("nan"));
    cr_assert_neq(run(MPIRUN(2), args), 0, "the job went on");
    char *out = slurp(at("out.txt")), *a = strstr(out, "genre: rank 0 of 2: step "),
         *b = strstr(out, "genre: rank 1 of 2: step ");
    cr_assert(a && b, "not every rank stopped on the NaN: %s", out);
    cr_expect_eq(atol(a + strlen("genre: rank 0 of 2: step ")), atol(b + strlen("genre: rank 1 of 2: step ")),
                 "the ranks stopped at different steps: %s", out);
    cr_expect(strstr(a, "NaN") || strstr(a, "Inf"), "%s", out);
    free(out);
}

/* From three ranks on MPI may group the sum differently: rounding only. */
Test(dist, three_ranks_match_one_rank_accumulating_three, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "grad_accum=3 --out %s", at("one"));
    cr_assert_eq(run("", args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "--procs 3 --out %s", at("three"));
    cr_assert_eq(run("", args), 0, "%s", slurp(at("out.txt")));
    ModelWeights a, b;
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/last", at("one"));
    snprintf(pb, sizeof pb, "%s/last", at("three"));
    cr_assert_eq(checkpoint_load_head(&a, pa, 3), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load_head(&b, pb, 3), 0, "%s", err_msg());
    double e = rel_err(b.params, a.params, a.lay.n_params, 1.0);
    cr_log_info("3 ranks vs 1 rank x accumulation 3: worst parameter difference %.3g", e);
    cr_expect_lt(e, 1e-5, "parameters differ by %g", e);
    weights_free(&a);
    weights_free(&b);
}

/* Stopped at step 9 (last/ at step 6, an epoch's end), a 2-rank run resumes
 * on 1 rank and on 3, each keeping the 2 micro-batches per step it started
 * with, and ends with the uninterrupted run's bytes. */
Test(dist, a_run_saved_by_two_ranks_resumes_on_one_and_on_three, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "--out %s", at("whole"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "--out %s", at("cut"));
    cr_assert_neq(run("GENRE_FAILPOINT=backend_step:9 " MPIRUN(2), args), 0, "the failpoint did not stop the job");
    char *out = slurp(at("out.txt"));
    cr_expect(strstr(out, "genre: rank 0 of 2: backend_step: injected failure") ||
                  strstr(out, "genre: rank 1 of 2: backend_step: injected failure"),
              "no error naming a rank: %s", out);
    free(out);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp -r %s %s && cp -r %s %s", at("cut"), at("cut1"), at("cut"), at("cut3"));
    cr_assert_eq(system(cmd), 0);
    char *state = slurp(at("cut/last/state.json"));
    cr_assert(state && strstr(state, "\"step\": 6,") && strstr(state, "\"micro_per_step\": 2,"), "%s", state);
    free(state);

    snprintf(args, sizeof args, "--resume %s", at("cut1"));
    cr_assert_eq(run("", args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "--resume %s", at("cut3"));
    cr_assert_eq(run(MPIRUN(3), args), 0, "%s", slurp(at("out.txt")));
    out = slurp(at("out.txt"));
    cr_expect(strstr(out, "data parallel: 3 ranks, 2 micro-batches of 4 per step") != NULL, "%s", out);
    free(out);
    expect_same_run(at("whole"), at("cut1"));
    expect_same_run(at("whole"), at("cut3"));
}

/* ZeRO-1: each rank keeps the moments of its shard alone; the norm sums
 * the same pieces, so 2 and 3 sharded ranks write the unsharded runs'
 * bytes, and the checkpoint (gathered) resumes sharded on 3 ranks. */
Test(dist, sharded_optimizer_state_gives_the_unsharded_bytes, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "--out %s", at("plain2"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "shard_optimizer=true --out %s", at("zero2"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("plain2"), at("zero2"));
    snprintf(args, sizeof args, "--out %s", at("plain3"));
    cr_assert_eq(run(MPIRUN(3), args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "shard_optimizer=true --out %s", at("zero3"));
    cr_assert_eq(run(MPIRUN(3), args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("plain3"), at("zero3"));

    snprintf(args, sizeof args, "shard_optimizer=true --out %s", at("cut"));
    cr_assert_neq(run("GENRE_FAILPOINT=backend_step:9 " MPIRUN(2), args), 0);
    snprintf(args, sizeof args, "--resume %s", at("cut"));
    cr_assert_eq(run(MPIRUN(3), args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("zero2"), at("cut"));
}

/* The largest difference between the parameters of two runs' last/. */
static double param_diff(const char *a, const char *b)
{
    ModelWeights wa, wb;
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/last", a);
    snprintf(pb, sizeof pb, "%s/last", b);
    cr_assert_eq(checkpoint_load_head(&wa, pa, 3), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load_head(&wb, pb, 3), 0, "%s", err_msg());
    double e = rel_err(wb.params, wa.params, wa.lay.n_params, 1.0);
    weights_free(&wa);
    weights_free(&wb);
    return e;
}

/* ZeRO-1 on the simulated GPUs (models/backend_cuda.c): reduce-scatter,
 * the norm from every shard's pieces, AdamW on the shard, all-gather, all
 * through NCCL. Clipping at 0.03 acts on about half the steps, so the
 * norm's bits reach the weights. Two sharded GPUs write the bytes of one
 * accumulating two, in both stream orders, and of two unsharded ones
 * accumulating two each (a later micro-batch's gradient added before the
 * reduce-scatter). Three match three unsharded to 1e-5: NCCL (here MPI,
 * carrying the simulated NCCL) may group a sum of three differently in a
 * reduce-scatter than in the bucketed all-reduces; three started by hand,
 * whose simulated NCCL sums in rank order, give the bytes. A sharded run
 * cut at step 9 resumes on 3 ranks, sharded, and on 1 to the uninterrupted
 * bytes (2 micro-batches a step: a + b, with a zero for a third rank). */
Test(dist, simulated_gpus_shard_the_optimizer_with_nccl, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    if (access("bin/genre-sim", X_OK)) SKIP_SETUP("bin/genre-sim not built (make bin/genre-sim)");
    const char *runs[][3] = {{"", "grad_accum=2", "one"},
                             {MPIRUN(2), "shard_optimizer=true", "zero2"},
                             {"CUDASIM_ORDER=reverse " MPIRUN(2) " -x CUDASIM_ORDER", "shard_optimizer=true",
                              "zero2_reverse"},
                             {MPIRUN(2), "grad_accum=2", "two_by_two"},
                             {MPIRUN(2), "grad_accum=2 shard_optimizer=true", "zero2_by_two"},
                             {MPIRUN(3), "", "three"},
                             {MPIRUN(3), "shard_optimizer=true", "zero3"}};
    for (int k = 0; k < 7; k++) {
        char args[400];
        snprintf(args, sizeof args, "device=cuda max_grad_norm=0.03 %s --out %s", runs[k][1], at(runs[k][2]));
        cr_assert_eq(run_sim(runs[k][0], args), 0, "%s: %s", runs[k][2], slurp(at("out.txt")));
    }
    expect_same_run(at("one"), at("zero2"));
    expect_same_run(at("one"), at("zero2_reverse"));
    expect_same_run(at("two_by_two"), at("zero2_by_two"));
    double e = param_diff(at("three"), at("zero3"));
    cr_log_info("3 simulated GPUs, sharded vs not: worst parameter difference %.3g", e);
    cr_expect_lt(e, 1e-5, "parameters differ by %g", e);

    const char *names[] = {"by_hand", "zero_by_hand"};
    for (int w = 0; w < 2; w++) {
        pid_t pids[3];
        for (int r = 0; r < 3; r++) {
            char prefix[200], args[600], log[300];
            snprintf(prefix, sizeof prefix, "SLURM_PROCID=%d SLURM_NTASKS=3 SLURM_LOCALID=%d SLURM_JOB_ID=%d%d", r, r,
                     (int)getpid(), w);
            snprintf(args, sizeof args, "device=cuda max_grad_norm=0.03 shard_optimizer=%s --rendezvous file:%s.rv "
                     "--out %s", w ? "true" : "false", at(names[w]), at(names[w]));
            snprintf(log, sizeof log, "%s.%d", at("out.txt"), r);
            pids[r] = launch("bin/genre-sim", prefix, args, log);
        }
        for (int r = 0; r < 3; r++) {
            char log[300];
            snprintf(log, sizeof log, "%s.%d", at("out.txt"), r);
            cr_expect_eq(finish(pids[r]), 0, "%s, rank %d: %s", names[w], r, slurp(log));
        }
    }
    expect_same_run(at("by_hand"), at("zero_by_hand"));

    char args[400], cmd[700];
    snprintf(args, sizeof args, "device=cuda max_grad_norm=0.03 shard_optimizer=true --out %s", at("cut"));
    cr_assert_neq(run_sim("GENRE_FAILPOINT=backend_step:9 " MPIRUN(2), args), 0, "the failpoint did not stop the job");
    snprintf(cmd, sizeof cmd, "cp -r %s %s", at("cut"), at("cut1"));
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--resume %s", at("cut"));
    cr_assert_eq(run_sim(MPIRUN(3), args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("zero2"), at("cut"));
    snprintf(args, sizeof args, "--resume %s", at("cut1"));
    cr_assert_eq(run_sim("", args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("zero2"), at("cut1"));
}

/* World size 1 through the data-parallel path (--dist-alone): one
 * simulated GPU makes its NCCL communicator and sums over itself, bucket by
 * bucket beside the backward (a later micro-batch's gradient added bucket
 * by bucket), or sharded (reduce-scatter, the norm's pieces, all-gathers,
 * the moments broadcast for checkpoints); with clipping on, both write the
 * plain path's bytes. NCCL_DEBUG=INFO shows which collectives ran: those,
 * and none on the plain path. */
Test(dist, one_simulated_gpu_through_nccl_gives_the_plain_bytes, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    if (access("bin/genre-sim", X_OK)) SKIP_SETUP("bin/genre-sim not built (make bin/genre-sim)");
    const char *runs[][3] = {{"", "plain", NULL},
                             {"--dist-alone", "alone", "ncclAllReduce"},
                             {"--dist-alone shard_optimizer=true", "zero_alone", "ncclReduceScatter"}};
    for (int k = 0; k < 3; k++) {
        char args[400];
        snprintf(args, sizeof args, "device=cuda max_grad_norm=0.03 grad_accum=2 %s --out %s", runs[k][0],
                 at(runs[k][1]));
        cr_assert_eq(run_sim("NCCL_DEBUG=INFO", args), 0, "%s: %s", runs[k][1], slurp(at("out.txt")));
        char *out = slurp(at("out.txt"));
        if (!runs[k][2]) {
            cr_expect(strstr(out, "NCCL INFO") == NULL, "the plain path used NCCL: %s", out);
        } else {
            cr_expect(strstr(out, "data parallel: 1 rank (--dist-alone), 2 micro-batches of 4 per step"), "%s", out);
            cr_expect(strstr(out, "NCCL INFO ncclCommInitRank: rank 0 of 1") && strstr(out, runs[k][2]),
                      "%s: no %s through NCCL: %s", runs[k][1], runs[k][2], out);
        }
        free(out);
    }
    expect_same_run(at("plain"), at("alone"));
    expect_same_run(at("plain"), at("zero_alone"));
}

/* Two bin/genre-sim processes started by hand, no MPI anywhere, as srun
 * without PMI starts them: SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID set
 * by hand, NCCL's unique id through a file, through TCP on the loopback,
 * and through Slurm's default (tcp on the step's first node); the simulated
 * NCCL carries the sums through shared memory. Each ends with the bytes of
 * one simulated GPU accumulating two. */
Test(dist, ranks_without_mpi_meet_by_file_tcp_and_slurm_default, .init = setup, .fini = cleanup)
{
    if (access("bin/genre-sim", X_OK)) SKIP_SETUP("bin/genre-sim not built (make bin/genre-sim)");
    const char *common = "max_len=16 batch_size=4 epochs=2 lr=3e-3 seed=7 loss.type=focal device=cuda";
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "bin/genre-sim train data=%s init=%s %s grad_accum=2 --out %s > %s 2>&1", at("data"),
                       at("init"), common, at("one"), at("out.txt")) > 0);
    cr_assert_eq(system(cmd), 0, "%s", slurp(at("out.txt")));
    free(cmd);
    char file[300], tcp[64];
    snprintf(file, sizeof file, "--rendezvous file:%s", at("rv"));
    snprintf(tcp, sizeof tcp, "--rendezvous tcp:127.0.0.1:%d", 20000 + (int)getpid() % 20000);
    const char *ways[] = {file, tcp, ""}, *names[] = {"file", "tcp", "slurm"};
    for (int w = 0; w < 3; w++) {
        pid_t pids[2];
        for (int r = 0; r < 2; r++) {
            cr_assert(asprintf(&cmd, "SLURM_PROCID=%d SLURM_NTASKS=2 SLURM_LOCALID=%d SLURM_STEP_NODELIST=localhost "
                               "SLURM_STEP_ID=%d bin/genre-sim train data=%s init=%s %s --out %s %s > %s.%d 2>&1",
                               r, r, (int)getpid() % 500, at("data"), at("init"), common, at(names[w]), ways[w],
                               at("out.txt"), r) > 0);
            fflush(NULL);
            if ((pids[r] = fork()) == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(98);
            }
            free(cmd);
        }
        for (int r = 0; r < 2; r++) {
            char log[300];
            snprintf(log, sizeof log, "%s.%d", at("out.txt"), r);
            cr_expect_eq(finish(pids[r]), 0, "%s, rank %d: %s", names[w], r, slurp(log));
        }
        expect_same_run(at("one"), at(names[w]));
    }
}

/* A rank alone at a file rendezvous waits --dist-timeout for rank 0, then
 * says what it waited for. */
Test(dist, a_rendezvous_nobody_comes_to_is_an_error_in_bounded_time, .init = setup, .fini = cleanup)
{
    if (access("bin/genre-sim", X_OK)) SKIP_SETUP("bin/genre-sim not built (make bin/genre-sim)");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "SLURM_PROCID=1 SLURM_NTASKS=2 SLURM_JOB_ID=77 bin/genre-sim train data=%s init=%s "
                       "device=cuda --dist-timeout 1 --rendezvous file:%s --out %s > %s 2>&1", at("data"), at("init"),
                       at("nobody"), at("alone"), at("out.txt")) > 0);
    cr_expect_neq(system(cmd), 0);
    free(cmd);
    char *out = slurp(at("out.txt"));
    cr_expect(strstr(out, "rendezvous file:") && strstr(out, "rank 0 wrote nothing for job 77.0 in 1 s"), "%s", out);
    free(out);
}

Test(dist, the_first_host_of_a_slurm_nodelist)
{
    const char *lists[] = {"node[07-09,12],gpu3", "gpu3,gpu4", "a", "x[1]", "n[3,5]"};
    const char *first[] = {"node07", "gpu3", "a", "x1", "n3"};
    char out[64];
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(rendezvous_first_host(lists[i], out, sizeof out), 0, "%s: %s", lists[i], err_msg());
        cr_expect_str_eq(out, first[i], "%s", lists[i]);
    }
    cr_expect_eq(rendezvous_first_host("", out, sizeof out), -1);
    cr_expect_eq(rendezvous_first_host("n[x]", out, sizeof out), -1);
}

/* The pid of rank `rank` of this test's job, 0 while there is none. */
static pid_t rank_pid(int rank)
{
    char want_rank[64], want_job[200];
    snprintf(want_rank, sizeof want_rank, "OMPI_COMM_WORLD_RANK=%d", rank);
    snprintf(want_job, sizeof want_job, "GENRE_TEST_JOB=%s", root);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; !found && d && (e = readdir(d));) {
        char path[300];
        pid_t pid = (pid_t)atol(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static char env[65536];
        size_t n = fread(env, 1, sizeof env - 1, f);
        fclose(f);
        env[n] = '\0';
        int job = 0, is_rank = 0;
        for (size_t i = 0; i < n; i += strlen(env + i) + 1) {
            job |= !strcmp(env + i, want_job);
            is_rank |= !strcmp(env + i, want_rank);
        }
        char comm[64] = "";
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        if ((f = fopen(path, "r"))) {
            if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
            fclose(f);
        }
        if (job && is_rank && !strncmp(comm, "genre", 5)) found = pid;
    }
    if (d) closedir(d);
    return found;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Rank 1, killed with SIGKILL once the run has a checkpoint, ends the job
 * (mpirun names the rank) well within 60 s; last/ is whole, and resuming
 * it ends with the bytes of a run never killed. */
Test(dist, a_killed_rank_ends_the_job_and_leaves_the_checkpoint, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "epochs=40 --out %s", at("whole"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    snprintf(args, sizeof args, "epochs=40 --out %s", at("cut"));
    pid_t job = start(MPIRUN(2), args);
    struct stat st;
    pid_t victim = 0;
    for (int i = 0; i < 200000 && (stat(at("cut/last/state.json"), &st) != 0 || !(victim = rank_pid(1))); i++)
        usleep(100);
    cr_assert(victim > 0, "rank 1 not found: %s", slurp(at("out.txt")));
    double t0 = now();
    kill(victim, SIGKILL);
    int rc = finish(job);
    double waited = now() - t0;
    char *out = slurp(at("out.txt"));
    cr_assert_neq(rc, 0, "the job survived its rank 1: %s", out);
    cr_log_info("the job ended %.1f s after rank 1 was killed (exit %d)", waited, rc);
    cr_expect_lt(waited, 60.0);
    cr_expect(strstr(out, "process rank 1") != NULL, "no line names rank 1: %s", out);
    cr_expect_neq(stat(at("cut/metrics.json"), &st), 0, "a killed job finished: %s", out);
    free(out);
    snprintf(args, sizeof args, "--resume %s", at("cut"));
    cr_assert_eq(run(MPIRUN(2), args), 0, "%s", slurp(at("out.txt")));
    expect_same_run(at("whole"), at("cut"));
}

/* A rank that stops answering (SIGSTOP) ends the job once the others have
 * waited --dist-timeout seconds for it. */
Test(dist, a_hung_rank_ends_the_job_after_the_timeout, .init = setup, .fini = cleanup)
{
    if (!have_mpirun()) SKIP_SETUP("mpirun not found (bash .ci/deps installs openmpi-bin)");
    char args[400];
    snprintf(args, sizeof args, "epochs=400 --dist-timeout 2 --out %s", at("hang"));
    pid_t job = start(MPIRUN(2), args);
    struct stat st;
    pid_t victim = 0;
    for (int i = 0; i < 200000 && (stat(at("hang/last/state.json"), &st) != 0 || !(victim = rank_pid(1))); i++)
        usleep(100);
    cr_assert(victim > 0, "rank 1 not found: %s", slurp(at("out.txt")));
    double t0 = now();
    kill(victim, SIGSTOP);
    int rc = finish(job);
    double waited = now() - t0;
    char *out = slurp(at("out.txt"));
    cr_assert_neq(rc, 0, "%s", out);
    cr_log_info("the job ended %.1f s after rank 1 hung", waited);
    cr_expect_lt(waited, 30.0);
    cr_expect(strstr(out, "genre: rank 0 of 2: all-reduce: no answer from the other ranks in 2 s (a rank died or "
                          "hangs)") != NULL, "%s", out);
    free(out);
}

Test(dist, launch_mistakes_are_errors, .init = setup, .fini = cleanup)
{
    char args[400];
    snprintf(args, sizeof args, "--procs 2 --gpus 2 --out %s", at("x"));
    cr_expect_eq(run("", args), 2);
    char *out = slurp(at("out.txt"));
    cr_expect(strstr(out, "--procs and --gpus exclude each other") != NULL, "%s", out);
    free(out);
    /* srun tasks with no PMI join through NCCL, which needs a GPU: never
     * each training alone into one directory. */
    snprintf(args, sizeof args, "--out %s", at("y"));
    cr_expect_eq(run("SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=1 SLURM_STEP_NODELIST=localhost", args), 1);
    out = slurp(at("out.txt"));
    cr_expect(strstr(out, "genre: rank 1 of 2 (no MPI launcher): the ranks join through NCCL, which needs a GPU") ||
                  strstr(out, "genre: rank 1 of 2: a job without an MPI launcher joins through NCCL, and this genre "
                              "was built without it"),
              "%s", out);
    free(out);
    struct stat st;
    cr_expect_neq(stat(at("y"), &st), 0, "the refused run created its directory");
}
