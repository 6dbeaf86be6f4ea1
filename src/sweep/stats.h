/* The statistics of a sweep: a metric over the seeds of a group as mean
 * and standard deviation, and the paired bootstrap confidence interval of
 * a difference between two groups over the same test movies. */
#ifndef GENRE_SWEEP_STATS_H
#define GENRE_SWEEP_STATS_H

#include <stdint.h>

typedef struct {
    int n;
    double mean;
    double sd; /* sample standard deviation (n - 1 in the denominator); 0 when n < 2 */
} MeanSd;

void mean_sd(const double *x, int n, MeanSd *out);

typedef struct {
    double diff;   /* mean over the movies of a[i] - b[i] */
    double lo, hi; /* the 95% interval */
    long resamples;
    int n;
} PairedCI;

/* The paired percentile bootstrap of mean(a - b) over n movies: `resamples`
 * times, n movies drawn with replacement (xoshiro256** seeded with seed,
 * src/core/rng.h) and the mean of their differences taken; the interval
 * runs from the k-th smallest to the k-th largest of those means, k =
 * floor(0.025 x resamples). Identical a and b give [0, 0]; a constant
 * difference d gives [d, d]. resamples >= 40 and n >= 1. */
void bootstrap_paired(const double *a, const double *b, int n, long resamples, uint64_t seed, PairedCI *ci);

#endif
