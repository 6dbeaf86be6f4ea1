/* Helpers shared by the C tests. */
#ifndef GENRE_TESTUTIL_H
#define GENRE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
