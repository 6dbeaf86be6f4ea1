/* Helpers shared by the C tests. */
#ifndef GENRE_TESTUTIL_H
#define GENRE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Skips the running test because something the set-up provides is missing
 * (the fetched all-MiniLM-L6-v2, the data at $GENRE_DATA): tests/run prints
 * the reason, counts the skip, and under CI=true counts it as a failure.
 * The reason must be a string literal (it may have printf arguments). */
#define SKIP_SETUP(...) cr_skip_test("set-up dependency missing: " __VA_ARGS__)

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

#endif
