/* src/cli/lines: stdin a line at a time, and whether the next one is there. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/lines.h"
#include "tests/testutil.h"

static void stdin_from(const char *name, const char *data, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/genre-lines-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    cr_assert_not_null(freopen(path, "rb", stdin));
    unlink(path);
}

Test(lines, line_ends_empty_lines_and_a_last_line_without_end)
{
    static const char data[] = "a\r\n\nb\0c\r\n\r\nlast\r";
    stdin_from("ends", data, sizeof data - 1);
    LineReader r;
    lines_open(&r, "test", false);
    char *line;
    cr_assert_eq(lines_next(&r, &line), 1);
    cr_expect_str_eq(line, "a");
    cr_assert_eq(lines_next(&r, &line), 0, "an empty line is a line");
    cr_assert_eq(lines_next(&r, &line), 3);
    cr_expect_eq(memcmp(line, "b\0c", 4), 0, "a NUL inside is kept, and the line is NUL-terminated");
    cr_assert_eq(lines_next(&r, &line), 0, "\\r\\n alone");
    cr_assert_eq(lines_next(&r, &line), 4);
    cr_expect_str_eq(line, "last");
    cr_expect_eq(r.line, 5);
    cr_expect(lines_ready(&r), "the end is ready");
    cr_expect_eq(lines_next(&r, &line), -1);
    cr_expect_eq(lines_next(&r, &line), -1, "and stays the end");
    lines_close(&r);
}

/* Lines longer than the first buffer (1 MiB) come whole. */
Test(lines, long_lines)
{
    size_t n = 3u << 20;
    char *data = malloc(2 * n + 2);
    for (size_t i = 0; i < 2 * n + 2; i++) data[i] = (char)('a' + i % 26);
    data[n] = '\n';
    data[2 * n + 1] = '\n';
    stdin_from("long", data, 2 * n + 2);
    LineReader r;
    lines_open(&r, "test", true);
    char *line;
    cr_assert_eq(lines_next(&r, &line), (long)n);
    cr_expect_eq(memcmp(line, data, n), 0);
    cr_assert_eq(lines_next(&r, &line), (long)n);
    cr_expect_eq(memcmp(line, data + n + 1, n), 0);
    cr_expect_eq(lines_next(&r, &line), -1);
    lines_close(&r);
    free(data);
}

/* Reads two lines of stdin, checking UTF-8: returns 2 if the first is not
 * "fine", 3 if the second (invalid) one comes back instead of ending the
 * program. */
static int read_two_lines(void *unused)
{
    (void)unused;
    LineReader r;
    lines_open(&r, "test", true);
    char *line;
    if (lines_next(&r, &line) != 4) return 2;
    lines_next(&r, &line);
    return 3;
}

/* Exit status 1 and the message naming the command, line and byte. */
Test(lines, invalid_utf8_ends_the_program)
{
    stdin_from("utf8", "fine\nnot \xff fine\n", 15);
    char err[1024];
    int rc = run_captured(read_two_lines, NULL, err, sizeof err);
    cr_expect_eq(rc, 1, "exit status %d, stderr: %s", rc, err);
    cr_expect(strstr(err, "genre: test: stdin:2: invalid UTF-8 at byte 4") != NULL, "stderr: %s", err);
}

/* On a pipe, ready means a whole line (or the end) has come. */
Test(lines, ready_on_a_pipe)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(dup2(p[0], fileno(stdin)), fileno(stdin));
    close(p[0]);
    LineReader r;
    lines_open(&r, "test", false);
    char *line;
    cr_expect_not(lines_ready(&r), "nothing written yet");
    cr_assert_eq(write(p[1], "x\n", 2), 2);
    cr_expect(lines_ready(&r));
    cr_assert_eq(lines_next(&r, &line), 1);
    cr_expect_str_eq(line, "x");
    cr_expect_not(lines_ready(&r));
    cr_assert_eq(write(p[1], "y", 1), 1);
    cr_expect_not(lines_ready(&r), "half a line is not ready");
    cr_assert_eq(write(p[1], "\nz", 2), 2);
    cr_expect(lines_ready(&r));
    cr_assert_eq(lines_next(&r, &line), 1);
    cr_expect_str_eq(line, "y");
    close(p[1]);
    cr_expect(lines_ready(&r), "the end has come");
    cr_assert_eq(lines_next(&r, &line), 1);
    cr_expect_str_eq(line, "z");
    cr_expect_eq(lines_next(&r, &line), -1);
    lines_close(&r);
}
