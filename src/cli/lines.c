#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/lines.h"
#include "src/core/err.h"
#include "src/core/utf8.h"

void lines_open(LineReader *r, const char *cmd, bool utf8)
{
    *r = (LineReader){.cmd = cmd, .utf8 = utf8, .cap = 1 << 20};
    r->buf = xmalloc(r->cap);
}

/* Reads what stdin has (waiting for at least a byte), after moving the
 * unreturned bytes to the front; one byte stays free for a final NUL. */
static void fill(LineReader *r)
{
    if (r->start) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start, r->scanned -= r->start, r->start = 0;
    }
    if (r->end + 1 == r->cap) r->buf = xrealloc(r->buf, r->cap *= 2);
    ssize_t got;
    while ((got = read(fileno(stdin), r->buf + r->end, r->cap - 1 - r->end)) < 0 && errno == EINTR) continue;
    if (got < 0) die("%s: reading stdin: %s", r->cmd, strerror(errno));
    r->eof = got == 0;
    r->end += (size_t)got;
}

/* The next '\n' of the buffer, or NULL. */
static char *next_newline(LineReader *r)
{
    char *nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
    r->scanned = nl ? (size_t)(nl - r->buf) : r->end;
    return nl;
}

long lines_next(LineReader *r, char **line)
{
    char *nl;
    while (!(nl = next_newline(r)) && !r->eof) fill(r);
    if (!nl && r->start == r->end) return -1;
    char *s = r->buf + r->start;
    size_t len = nl ? (size_t)(nl - s) : r->end - r->start;
    r->start += len + (nl != NULL);
    r->scanned = r->start;
    if (len && s[len - 1] == '\r') len--;
    s[len] = '\0';
    r->line++;
    if (r->utf8) {
        size_t bad = utf8_check(s, len);
        if (bad < len) die("%s: stdin:%ld: invalid UTF-8 at byte %zu", r->cmd, r->line, bad);
    }
    *line = s;
    return (long)len;
}

bool lines_ready(LineReader *r)
{
    /* Reads ahead while stdin has data, so that half a line is not "ready". */
    struct pollfd p = {.fd = fileno(stdin), .events = POLLIN};
    while (!next_newline(r) && !r->eof) {
        if (poll(&p, 1, 0) <= 0) return false;
        fill(r);
    }
    return true;
}

void lines_close(LineReader *r)
{
    free(r->buf);
    *r = (LineReader){0};
}
