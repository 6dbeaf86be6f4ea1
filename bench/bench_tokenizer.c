/* Times tokenizer_encode over a file of texts (one a line), single thread,
 * texts already in memory: the tokenizer alone, no I/O. Prints one line:
 * "texts=N bytes=B tokens=T seconds=S" with S the median of the repeats, in
 * CPU time of the process (steadier than wall time on a shared machine).
 * usage: bench_tokenizer VOCAB TEXTS [REPEATS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/core/err.h"
#include "tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB TEXTS [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    if (repeats < 1 || repeats > 101) die("repeats: expected 1..101");
    Tokenizer *t = tokenizer_load(argv[1]);
    if (!t) die_err();
    FILE *f = fopen(argv[2], "rb");
    if (!f) die("%s: cannot open", argv[2]);
    size_t cap = 1 << 20, size = 0, got;
    char *data = xmalloc(cap);
    while ((got = fread(data + size, 1, cap - size, f)) > 0)
        if ((size += got) == cap) data = xrealloc(data, cap *= 2);
    fclose(f);

    /* Split into lines in place. */
    size_t n = 0, max_len = 0;
    for (size_t i = 0; i < size; i++) n += data[i] == '\n';
    const char **text = xmalloc((n + 1) * sizeof *text);
    size_t *len = xmalloc((n + 1) * sizeof *len);
    n = 0;
    for (size_t i = 0; i < size;) {
        char *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) : size;
        text[n] = data + i;
        len[n] = end - i;
        if (len[n] > max_len) max_len = len[n];
        n++;
        i = end + 1;
    }
    /* Every token takes at least one byte: this holds any text's ids. */
    int32_t *ids = xmalloc((max_len + 1) * sizeof *ids);
    double *secs = xmalloc((size_t)repeats * sizeof *secs);
    long tokens = 0;
    for (int r = 0; r < repeats; r++) {
        tokens = 0;
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            long k = tokenizer_encode(t, text[i], len[i], ids, (long)max_len + 1);
            if (k < 0) die("%s:%zu: %s", argv[2], i + 1, err_msg());
            tokens += k;
        }
        secs[r] = now() - t0;
    }
    qsort(secs, (size_t)repeats, sizeof *secs, cmp_double);
    printf("texts=%zu bytes=%zu tokens=%ld seconds=%.6f\n", n, size - n, tokens, secs[repeats / 2]);
    free(secs);
    free(ids);
    free(len);
    free(text);
    free(data);
    tokenizer_free(t);
    return 0;
}
