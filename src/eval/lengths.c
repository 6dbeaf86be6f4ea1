#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/eval/lengths.h"

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* v rounded to a step of 1, 2 or 5 times a power of ten, at most a tenth of
 * v: 43 -> 44, 62 -> 60, 128 -> 130, 9 -> 9. Round edges read better, and
 * steps this fine keep the quantile buckets close to equal. */
static int round_nice(int v)
{
    int step = 1;
    for (int p = 1; p <= v / 10; p *= 10) {
        if (p <= v / 10) step = p;
        if (2 * p <= v / 10) step = 2 * p;
        if (5 * p <= v / 10) step = 5 * p;
    }
    return (int)lround((double)v / step) * step;
}

int length_bucket_of(const LengthBuckets *lb, int len)
{
    int b = 0;
    while (b < lb->n - 1 && len > lb->upper[b]) b++;
    return b;
}

/* Edges at rounded quantiles, so buckets hold about equal numbers of movies;
 * an edge that would leave a bucket empty is dropped. */
void length_buckets(LengthBuckets *lb, const int *lengths, int n)
{
    int want = n < LENGTH_BUCKETS_MAX ? n : LENGTH_BUCKETS_MAX;
    int *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, lengths, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_int);
    memset(lb, 0, sizeof *lb);
    lb->min = s[0];
    lb->max = s[n - 1];
    for (int i = n - 1; i >= 0 && s[i] == lb->max; i--) lb->at_max++;
    int edges = 0;
    for (int k = 1; k < want; k++) {
        int e = round_nice(s[((long)k * n + want - 1) / want - 1]);
        if (e >= s[0] && e < s[n - 1] && (edges == 0 || e > lb->upper[edges - 1])) lb->upper[edges++] = e;
    }
    /* Drop edges closing an empty bucket (rounding can jump a gap). */
    int kept = 0, at = 0;
    for (int k = 0; k < edges; k++) {
        int c = 0;
        while (at < n && s[at] <= lb->upper[k]) at++, c++;
        if (c > 0) lb->upper[kept++] = lb->upper[k];
    }
    lb->n = kept + 1;
    free(s);
    for (int i = 0; i < n; i++) lb->count[length_bucket_of(lb, lengths[i])]++;
}

void length_bucket_name(char *out, size_t cap, const LengthBuckets *lb, int b)
{
    if (lb->n == 1 && lb->min == lb->max) snprintf(out, cap, "%d", lb->min);
    else if (lb->n == 1) snprintf(out, cap, "%d\u2013%d", lb->min, lb->max);
    else if (b == 0) snprintf(out, cap, "\u2264 %d", lb->upper[0]);
    else if (b == lb->n - 1) snprintf(out, cap, "> %d", lb->upper[b - 1]);
    else if (lb->upper[b - 1] + 1 == lb->upper[b]) snprintf(out, cap, "%d", lb->upper[b]);
    else snprintf(out, cap, "%d\u2013%d", lb->upper[b - 1] + 1, lb->upper[b]);
}

void length_bucket_means(const LengthBuckets *lb, const int *lengths, const double *values, int n, double *mean)
{
    for (int b = 0; b < lb->n; b++) mean[b] = 0;
    for (int i = 0; i < n; i++) mean[length_bucket_of(lb, lengths[i])] += values[i];
    for (int b = 0; b < lb->n; b++) mean[b] /= lb->count[b];
}
