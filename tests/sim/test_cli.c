/* genre train --device cuda end to end, in the simulator (bin/genre-sim):
 * a 30-step tiny training run with dropout on tracks the CPU run on the same
 * batches (fp32), two cuda runs write the same bytes, a cuda run stopped by
 * an error or killed with SIGKILL (bf16, the default) resumes to the
 * uninterrupted run's bytes, a cuda checkpoint continues on the CPU, and
 * 100 bf16 steps follow the fp32 run's losses. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/checkpoint.h"
#include "src/core/err.h"
#include "tests/testutil.h"

static char root[128];

static const char *at(const char *name)
{
    static char buf[8][300];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

/* The tiny set-up of tests/testutil.h, dropout at every site. */
static void setup(void)
{
    fresh_tmp_dir(root, sizeof root, "simcli");
    cr_assert_eq(tiny_train_setup(root, 1), 0, "cannot write the tiny set-up in %s", root);
}

static void cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* Starts bin/genre-sim train with these arguments after the common ones,
 * stderr to err.txt, and returns its pid. failpoint: GENRE_FAILPOINT or NULL. */
static pid_t start(const char *failpoint, const char *const *args, int n)
{
    char data[300], init[300];
    snprintf(data, sizeof data, "data=%s", at("data"));
    snprintf(init, sizeof init, "init=%s", at("init"));
    char *argv[32] = {"bin/genre-sim", "train", data, init, "max_len=16", "batch_size=4", "epochs=3", "max_steps=30",
                      "lr=3e-3", "seed=7", "loss.type=focal", "checkpoint_every=10"};
    int argc = 12;
    if (n && !strcmp(args[0], "--resume")) argc = 2; /* a resume takes only its directory and device */
    for (int i = 0; i < n; i++) argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(at("err.txt"), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        if (failpoint) setenv("GENRE_FAILPOINT", failpoint, 1);
        execv(argv[0], argv);
        _exit(98);
    }
    return pid;
}

/* The run of start(), waited for: its exit status. */
static int genre(const char *failpoint, const char *const *args, int n)
{
    pid_t pid = start(failpoint, args, n);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The step losses of a run's log. */
static int losses(const char *dir, double *out, int max)
{
    char path[400];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    char *log = slurp(path), *p = log;
    int n = 0;
    while (p && (p = strstr(p, "\"loss\": ")) && n < max) {
        out[n++] = atof(p + 8);
        p += 8;
    }
    free(log);
    return n;
}

static void expect_same_bytes(const char *a, const char *b)
{
    struct stat sa, sb;
    cr_assert(stat(a, &sa) == 0 && stat(b, &sb) == 0, "%s or %s missing", a, b);
    cr_assert_eq(sa.st_size, sb.st_size, "%s and %s differ in size", a, b);
    char *x = slurp(a), *y = slurp(b);
    cr_expect_eq(memcmp(x, y, (size_t)sa.st_size), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* Two runs' checkpoints and metrics, byte for byte. */
static void expect_same_run(const char *a, const char *b)
{
    const char *same[] = {"best/model.safetensors", "last/model.safetensors", "last/optimizer.safetensors",
                          "metrics.json"};
    for (int i = 0; i < 4; i++) {
        char x[400], y[400];
        snprintf(x, sizeof x, "%s/%s", a, same[i]);
        snprintf(y, sizeof y, "%s/%s", b, same[i]);
        expect_same_bytes(x, y);
    }
}

TestSuite(sim_cli, .init = setup, .fini = cleanup, .timeout = 600);

Test(sim_cli, cuda_training_tracks_the_cpu_and_repeats_bit_for_bit)
{
    const char *cpu[] = {"--out", at("cpu"), "--device", "cpu"};
    cr_assert_eq(genre(NULL, cpu, 4), 0, "%s", slurp(at("err.txt")));
    char d1[300], d2[300];
    snprintf(d1, sizeof d1, "%s", at("cuda1"));
    snprintf(d2, sizeof d2, "%s", at("cuda2"));
    /* the repeat launches every kernel directly: graph replays change no bit */
    const char *gpu1[] = {"--out", d1, "--device", "cuda", "precision=fp32"},
               *gpu2[] = {"--out", d2, "--device", "cuda", "precision=fp32", "cuda_graphs=false"};
    cr_assert_eq(genre(NULL, gpu1, 5), 0, "%s", slurp(at("err.txt")));
    cr_assert_eq(genre(NULL, gpu2, 6), 0, "%s", slurp(at("err.txt")));

    double a[64], b[64];
    int na = losses(at("cpu"), a, 64), nb = losses(d1, b, 64);
    cr_assert_eq(na, 30, "cpu logged %d steps", na);
    cr_assert_eq(nb, 30, "cuda logged %d steps", nb);
    double worst = 0;
    for (int i = 0; i < 30; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(fabs(a[i]), 1e-6));
    cr_log_info("30 steps, dropout on: worst relative loss difference cpu/cuda %.3g", worst);
    /* The log keeps 6 decimals: below that the difference is its rounding. */
    for (int i = 0; i < 30; i++)
        cr_expect(fabs(a[i] - b[i]) <= 1e-5 * fabs(a[i]) + 1.5e-6, "step %d: loss %g (cpu) vs %g (cuda)", i + 1, a[i],
                  b[i]);

    ModelWeights wa, wb;
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/last", at("cpu"));
    snprintf(pb, sizeof pb, "%s/last", d1);
    cr_assert_eq(checkpoint_load_head(&wa, pa, 3), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load_head(&wb, pb, 3), 0, "%s", err_msg());
    double err = 0, kb = 0;
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&wa.lay, id); l++) {
            const ParamSlot *sl = layout_slot(&wa.lay, id, l);
            for (size_t i = sl->off; i < sl->off + sl->n; i++) {
                double e = fabs((double)wa.params[i] - wb.params[i]) / fmax(fabs((double)wa.params[i]), 1.0);
                /* k_lin.bias: Adam turns its rounding-noise gradient into
                 * steps of up to lr either way (tests/model/test_model.c). */
                if (id == P_K_B) kb = fmax(kb, e);
                else err = fmax(err, e);
            }
        }
    cr_log_info("final weights: worst difference %.3g (k_lin.bias %.3g)", err, kb);
    cr_expect_leq(kb, 30 * 3e-3, "k_lin.bias moved apart by %g", kb);
    cr_expect_lt(err, 1e-5, "final weights differ by %g", err);
    weights_free(&wa);
    weights_free(&wb);

    expect_same_run(d1, d2);
}

/* Stopped mid-run by an error (the backend's 17th step fails), a cuda run
 * resumes from its last checkpoint (step 12, the first epoch's end) to the
 * uninterrupted run's bytes; the same checkpoint continues on the CPU too. */
Test(sim_cli, cuda_checkpoints_resume_on_cuda_and_on_cpu)
{
    char whole[300], cut[300], cut_cpu[300];
    snprintf(whole, sizeof whole, "%s", at("whole"));
    snprintf(cut, sizeof cut, "%s", at("cut"));
    snprintf(cut_cpu, sizeof cut_cpu, "%s", at("cut_cpu"));
    /* fp32: the CPU continues where an fp32 GPU run would (bf16 resumes are the SIGKILL test's) */
    const char *w[] = {"--out", whole, "--device", "cuda", "precision=fp32"};
    cr_assert_eq(genre(NULL, w, 5), 0, "%s", slurp(at("err.txt")));
    const char *c[] = {"--out", cut, "--device", "cuda", "precision=fp32"},
               *c2[] = {"--out", cut_cpu, "--device", "cuda", "precision=fp32"};
    cr_assert_eq(genre("backend_step:17", c, 5), 1, "the failpoint did not stop the run");
    cr_assert_eq(genre("backend_step:17", c2, 5), 1);
    char state[400];
    snprintf(state, sizeof state, "%s/last/state.json", cut);
    char *st = slurp(state);
    cr_assert(st && strstr(st, "\"step\": 12,"), "last/ is not at step 12 (the first epoch's end): %s", st ? st : "");
    free(st);

    const char *r[] = {"--resume", cut, "--device", "cuda"};
    cr_assert_eq(genre(NULL, r, 4), 0, "%s", slurp(at("err.txt")));
    expect_same_run(whole, cut);

    const char *rc[] = {"--resume", cut_cpu, "--device", "cpu"};
    cr_assert_eq(genre(NULL, rc, 4), 0, "%s", slurp(at("err.txt")));
    double a[64], b[64];
    int na = losses(whole, a, 64), nb = losses(cut_cpu, b, 64);
    cr_assert_eq(na, 30);
    cr_assert_eq(nb, 30, "the cpu continuation logged %d steps", nb);
    for (int i = 12; i < 30; i++)
        cr_expect(fabs(a[i] - b[i]) <= 1e-5 * fabs(a[i]) + 1.5e-6, "step %d: %g (cuda) vs %g (cuda, then cpu)", i + 1,
                  a[i], b[i]);
}

/* Killed with SIGKILL as soon as its first checkpoint exists (checkpoints
 * every 5 steps, 12 steps an epoch: mostly mid-epoch ones), wherever the
 * run is by then, a cuda run resumes to the uninterrupted run's bytes. */
Test(sim_cli, a_cuda_run_killed_with_sigkill_resumes_bit_for_bit)
{
    char whole[300], cut[300], ready[400];
    snprintf(whole, sizeof whole, "%s", at("whole"));
    snprintf(cut, sizeof cut, "%s", at("cut"));
    snprintf(ready, sizeof ready, "%s/last/state.json", cut);
    const char *w[] = {"--out", whole, "--device", "cuda", "checkpoint_every=5"};
    cr_assert_eq(genre(NULL, w, 5), 0, "%s", slurp(at("err.txt")));
    const char *c[] = {"--out", cut, "--device", "cuda", "checkpoint_every=5"};
    pid_t pid = start(NULL, c, 5);
    struct stat st;
    for (int i = 0; i < 400000 && stat(ready, &st) != 0; i++) usleep(25);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "the run ended before it could be killed: %s", slurp(at("err.txt")));
    char *state = slurp(ready), *p = state ? strstr(state, "\"step\": ") : NULL;
    cr_assert(p, "the killed run left no readable last/state.json");
    long killed_at = atol(p + 8);
    free(state);
    cr_assert(killed_at > 0 && killed_at < 30, "last/ is at step %ld", killed_at);
    cr_log_info("killed with last/ at step %ld of 30", killed_at);

    const char *r[] = {"--resume", cut, "--device", "cuda"};
    cr_assert_eq(genre(NULL, r, 4), 0, "%s", slurp(at("err.txt")));
    expect_same_run(whole, cut);
}

/* Mixed precision end to end: 100 tiny steps in bf16 (the simulated GPU's
 * default precision, dropout on) follow the fp32 run's loss curve within
 * a band, repeat bit for bit, and checkpoint fp32 weights in the fp32
 * run's layout (the same safetensors header). The band: each step's loss
 * within 5% of the fp32 run's, plus 0.01 (where the losses near zero). */
Test(sim_cli, bf16_training_tracks_fp32_and_repeats_bit_for_bit)
{
    char f[300], h1[300], h2[300];
    snprintf(f, sizeof f, "%s", at("fp32"));
    snprintf(h1, sizeof h1, "%s", at("bf16a"));
    snprintf(h2, sizeof h2, "%s", at("bf16b"));
    const char *a[] = {"--out", f, "--device", "cuda", "precision=fp32", "max_steps=100", "epochs=9"};
    const char *b1[] = {"--out", h1, "--device", "cuda", "max_steps=100", "epochs=9"};
    const char *b2[] = {"--out", h2, "--device", "cuda", "precision=bf16", "max_steps=100", "epochs=9"};
    cr_assert_eq(genre(NULL, a, 7), 0, "%s", slurp(at("err.txt")));
    cr_assert_eq(genre(NULL, b1, 6), 0, "%s", slurp(at("err.txt")));
    char *err = slurp(at("err.txt"));
    cr_expect(err && strstr(err, "precision bf16"), "the default run did not say it trains in bf16: %s", err);
    free(err);
    cr_assert_eq(genre(NULL, b2, 7), 0, "%s", slurp(at("err.txt")));
    double x[128], y[128];
    int nx = losses(f, x, 128), ny = losses(h1, y, 128);
    cr_assert_eq(nx, 100, "fp32 logged %d steps", nx);
    cr_assert_eq(ny, 100, "bf16 logged %d steps", ny);
    double worst = 0, mean_f = 0, mean_h = 0;
    for (int i = 0; i < 100; i++) {
        worst = fmax(worst, fabs(x[i] - y[i]) / fmax(fabs(x[i]), 1e-6));
        if (i >= 90) mean_f += x[i] / 10, mean_h += y[i] / 10;
        cr_expect(fabs(x[i] - y[i]) <= 0.05 * fabs(x[i]) + 0.01, "step %d: loss %g (bf16) vs %g (fp32)", i + 1, y[i],
                  x[i]);
    }
    double first = (y[0] + y[1] + y[2]) / 3;
    cr_log_info("100 steps bf16 against fp32: worst relative loss difference %.3g; first 3 steps' mean %.4f, last 10 "
                "steps' mean %.4f vs %.4f", worst, first, mean_h, mean_f);
    cr_expect_lt(mean_h, 0.8 * first, "bf16 did not learn: losses from %g to %g", first, mean_h);
    expect_same_run(h1, h2);
    char pf[400], ph[400];
    snprintf(pf, sizeof pf, "%s/last/model.safetensors", f);
    snprintf(ph, sizeof ph, "%s/last/model.safetensors", h1);
    char *mf = slurp(pf), *mh = slurp(ph);
    cr_assert(mf && mh);
    uint64_t hf, hh;
    memcpy(&hf, mf, 8), memcpy(&hh, mh, 8);
    cr_expect(hf == hh && !memcmp(mf, mh, 8 + hf), "bf16's checkpoint header differs from fp32's");
    cr_expect(strstr(mh + 8, "\"F32\"") && !strstr(mh + 8, "BF16"), "bf16's checkpoint is not fp32");
    free(mf), free(mh);
}

/* The numbers of one output line each, from `cmd < texts`. */
static int read_floats(const char *cmd, double *out, int max)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "%s", cmd);
    int n = 0;
    while (n < max && fscanf(p, "%lf", &out[n]) == 1) n++;
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    return n;
}

/* embed --device cuda with all-MiniLM-L6-v2 on real descriptions: the CPU's
 * embeddings, mean-pooled over every token's final hidden state. */
Test(sim_cli, minilm_embeddings_on_cuda_equal_the_cpu)
{
    const char *dir = getenv("GENRE_MINILM");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir ? dir : "");
    if (!dir) SKIP_SETUP("GENRE_MINILM is not set (tests/run sets it; models/fetch-minilm fetches it)");
    if (access(path, R_OK)) SKIP_SETUP("GENRE_MINILM=%s has no model.safetensors (models/fetch-minilm)", dir);
    FILE *f = fopen(at("texts.txt"), "w");
    fputs("A detective hunts a killer through a rainy city.\n"
          "Two friends sail around the world and fall in love on the way.\n"
          "A robot learns to feel on a distant space station.\n", f);
    fclose(f);
    static double a[3 * 384 + 1], b[3 * 384 + 1];
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "bin/genre-sim embed --model %s --pool mean --device cpu < %s", dir, at("texts.txt"));
    int na = read_floats(cmd, a, 3 * 384 + 1);
    snprintf(cmd, sizeof cmd, "bin/genre-sim embed --model %s --pool mean --device cuda < %s", dir, at("texts.txt"));
    int nb = read_floats(cmd, b, 3 * 384 + 1);
    cr_assert_eq(na, 3 * 384);
    cr_assert_eq(nb, 3 * 384);
    double err = 0;
    for (int i = 0; i < na; i++) err = fmax(err, fabs(a[i] - b[i]));
    cr_log_info("all-MiniLM-L6-v2 mean embeddings, cpu vs cuda: max difference %.3g", err);
    cr_expect_lt(err, 1e-5, "embeddings differ by %g", err);
}
