/* genre predict on a pipe: each line is answered before the next is sent,
 * as an interactive user or a pipeline needs. The model is the tiny fixture
 * DistilBERT (16 positions) with a fresh three-genre head. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/cli/commands.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"

static char root[96], init[128], model[128], err_path[128];

/* Runs a command in a child with stderr to err.txt; its exit status. */
static int run(int (*cmd)(int, char **), int argc, char **argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(err_path, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        _exit(cmd(argc, argv));
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void setup(void)
{
    fresh_tmp_dir(root, sizeof root, "predict");
    snprintf(init, sizeof init, "%s/init", root);
    snprintf(model, sizeof model, "%s/model", root);
    snprintf(err_path, sizeof err_path, "%s/err.txt", root);
    char cmd[512], path[160];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp " TINY "/config.json " TINY "/model.safetensors %s/", init, init);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/vocab.txt", init);
    FILE *f = fopen(path, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 0; i < 95; i++) fprintf(f, "w%d\n", i);
    fclose(f);
    snprintf(path, sizeof path, "%s/labels.txt", root);
    f = fopen(path, "w");
    fputs("Alpha\nBeta\nGamma\n", f);
    fclose(f);
    char *ex[] = {"export", "--model", init, "--out", model, "--labels", path};
    cr_assert_eq(run(cmd_export, 7, ex), 0, "%s", slurp(err_path));
}

static void teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
}

/* One line from fd into buf, waiting at most 30 s for it; its length, or -1. */
static int read_answer(int fd, char *buf, int cap)
{
    int n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n < cap - 1 && poll(&p, 1, 30000) > 0 && read(fd, buf + n, 1) == 1)
        if (buf[n++] == '\n') {
            buf[n] = '\0';
            return n;
        }
    return -1;
}

Test(predict, answers_each_line_as_it_comes, .init = setup, .fini = teardown, .timeout = 120)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        if (!freopen(err_path, "w", stderr)) _exit(99);
        char *argv[] = {"predict", "--model", model, "--max-len", "16", "--top", "2"};
        _exit(cmd_predict(7, argv));
    }
    close(in[0]), close(out[1]);
    const char *texts[] = {"w1 w2 w3\n", "w40 w41\n", "\n"};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(write(in[1], texts[k], strlen(texts[k])), (ssize_t)strlen(texts[k]));
        /* The pipe stays open: an answer now cannot be waiting for the end of input. */
        char line[4096];
        cr_assert_gt(read_answer(out[0], line, sizeof line), 0, "no answer to line %d while stdin is open: %s",
                     k + 1, slurp(err_path));
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        cr_assert_not_null(o, "%s: %s", line, e.text);
        cr_expect_geq(json_array_size(json_object_get(o, "genres")), 1, "%s", line);
        cr_expect_eq(json_object_size(json_object_get(o, "scores")), 2, "%s", line);
        json_decref(o);
    }
    close(in[1]);
    char rest[16];
    cr_expect_eq(read(out[0], rest, sizeof rest), 0, "one answer per line, nothing more");
    int status;
    waitpid(pid, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", slurp(err_path));
    close(out[0]);
}
