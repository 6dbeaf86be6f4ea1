/* Helpers shared by the C tests. */
#ifndef GENRE_TESTUTIL_H
#define GENRE_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Skips the running test because something the set-up provides is missing
 * (the fetched all-MiniLM-L6-v2, the data at $GENRE_DATA): tests/run prints
 * the reason, counts the skip, and under CI=true counts it as a failure.
 * The reason must be a string literal (it may have printf arguments). */
#define SKIP_SETUP(...) cr_skip_test("set-up dependency missing: " __VA_ARGS__)

/* bf16 on the host: the bits of f rounded as CUDA rounds (nearest even,
 * NaN to 0x7fff), the value of such bits, and f rounded. */
static inline uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float bf16_value(uint16_t bits)
{
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float round_bf16(float f) { return bf16_value(bf16_bits(f)); }

/* max |got - want| / max(max |want|, floor): the error relative to the
 * tensor's scale, so zero and tiny entries do not blow it up. */
static inline double rel_err(const float *got, const float *want, size_t n, double floor)
{
    double err = 0, scale = floor;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    return err / scale;
}

/* A fresh directory /tmp/genre-NAME-XXXXXX, its path into buf: never one
 * that a killed earlier run left behind under a pid the system reuses. */
static inline void fresh_tmp_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "/tmp/genre-%s-XXXXXX", name);
    if (!mkdtemp(buf)) {
        perror(buf);
        abort();
    }
}

/* A whole file as a NUL-terminated string (caller frees), or NULL. */
static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

/* Writes text to /tmp/genre-test-<pid>-<name> and returns that path (a
 * static buffer, overwritten by the next call), or NULL. */
static inline char *write_temp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/genre-test-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    int ok = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !ok) return NULL;
    return path;
}

/* dir/name in one of 8 buffers used in turn, so that one call may take
 * several such paths (the ninth reuses the first buffer). */
static inline const char *path_in(const char *dir, const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* The tiny end-to-end training set-up in root (which must exist): init/,
 * the fixture DistilBERT (tests/fixtures/tiny_distilbert: dim 32, 16
 * positions) with a 100-token vocabulary, and with dropout (0.1, attention
 * 0.1, head 0.2) when asked; data/, 48 train, 12 val and 12 test movies whose
 * genres follow from their words: w0..w29 mean Alpha, w30..w59 Beta,
 * w60..w89 Gamma. 0, or -1 if a file could not be written. */
static inline int tiny_train_setup(const char *root, int dropout)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/init %s/data && cp tests/fixtures/tiny_distilbert/model.safetensors %s/init/ && "
             "sed %s tests/fixtures/tiny_distilbert/config.json > %s/init/config.json", root, root, root,
             dropout ? "-e 's/\"dropout\": 0.0/\"dropout\": 0.1/' -e "
                       "'s/\"attention_dropout\": 0.0/\"attention_dropout\": 0.1/' "
                       "-e 's/\"seq_classif_dropout\": 0.0/\"seq_classif_dropout\": 0.2/'"
                     : "-e ''",
             root);
    if (system(cmd) != 0) return -1;
    FILE *v = fopen(path_in(root, "init/vocab.txt"), "w");
    if (!v) return -1;
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", v);
    for (int i = 0; i < 95; i++) fprintf(v, "w%d\n", i);
    if (fclose(v) != 0) return -1;
    FILE *l = fopen(path_in(root, "data/labels.txt"), "w");
    if (!l) return -1;
    fputs("Alpha\nBeta\nGamma\n", l);
    if (fclose(l) != 0) return -1;
    const char *parts[] = {"train", "val", "test"}, *names[] = {"Alpha", "Beta", "Gamma"};
    const int sizes[] = {48, 12, 12};
    unsigned x = 12345;
    for (int p = 0; p < 3; p++) {
        char name[32];
        snprintf(name, sizeof name, "data/%s.jsonl", parts[p]);
        FILE *f = fopen(path_in(root, name), "w");
        if (!f) return -1;
        for (int i = 0; i < sizes[p]; i++) {
            int g = i % 3, g2 = (i / 3) % 3;
            fprintf(f, "{\"title\": \"m%d\", \"year\": 2000, \"text\": \"", i);
            for (int w = 0; w < 6; w++) {
                x = x * 1103515245u + 12345u;
                fprintf(f, "%sw%u", w ? " " : "", 30 * (w < 4 ? g : g2) + (x >> 16) % 30);
            }
            fprintf(f, "\", \"labels\": [\"%s\"", names[g]);
            if (g2 != g) fprintf(f, ", \"%s\"", names[g2]);
            fputs("]}\n", f);
        }
        if (fclose(f) != 0) return -1;
    }
    return 0;
}

/* Runs fn(arg) in a forked child, stdout to /dev/null and stderr captured,
 * and returns the child's exit status (fn's return value, or what exit()
 * was given: die() exits 1), or 128 + the signal that ended it. err gets
 * what the child wrote on stderr (NUL-terminated, at most err_n - 1 bytes),
 * without LeakSanitizer's note that a forked child lacks its parent's
 * threads. Error tests assert on err: an exit status alone would let an
 * unrelated earlier error pass them. */
static inline int run_captured(int (*fn)(void *), void *arg, char *err, size_t err_n)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/genre-test-%d-stderr.txt", (int)getpid());
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == -1) return -1;
    if (pid == 0) {
        if (!freopen(path, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        exit(fn(arg));
    }
    int status;
    waitpid(pid, &status, 0);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(err, 1, err_n - 1, f) : 0;
    err[got] = '\0';
    if (f) fclose(f);
    unlink(path);
    char *note;
    while ((note = strstr(err, "False leaks are possible.\n"))) {
        char *start = note;
        while (start > err && start[-1] != '\n') start--;
        if (strncmp(start, "==", 2) != 0) break;
        memmove(start, note + 26, strlen(note + 26) + 1);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A command's entry point and its arguments, for run_captured. */
typedef struct {
    int (*cmd)(int, char **);
    int argc;
    char **argv;
} CmdCall;

static inline int call_cmd(void *call)
{
    CmdCall *c = call;
    return c->cmd(c->argc, c->argv);
}

#endif
