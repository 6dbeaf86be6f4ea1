#include <math.h>
#include <stdlib.h>

#include "src/core/err.h"
#include "src/core/rng.h"
#include "src/sweep/stats.h"

void mean_sd(const double *x, int n, MeanSd *out)
{
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    double mean = n > 0 ? sum / n : 0;
    /* Two passes: the squares of deviations, not the difference of large sums. */
    for (int i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    *out = (MeanSd){n, mean, n > 1 ? sqrt(ss / (n - 1)) : 0};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bootstrap_paired(const double *a, const double *b, int n, long resamples, uint64_t seed, PairedCI *ci)
{
    double *d = xmalloc((size_t)n * sizeof *d), *means = xmalloc((size_t)resamples * sizeof *means), sum = 0;
    for (int i = 0; i < n; i++) {
        d[i] = a[i] - b[i];
        sum += d[i];
    }
    Rng rng;
    rng_seed(&rng, seed);
    for (long r = 0; r < resamples; r++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += d[rng_below(&rng, (uint64_t)n)];
        means[r] = s / n;
    }
    qsort(means, (size_t)resamples, sizeof *means, cmp_double);
    long k = resamples / 40; /* floor(0.025 x resamples), in integers */
    if (k < 1) k = 1;
    *ci = (PairedCI){sum / n, means[k - 1], means[resamples - k], resamples, n};
    free(d);
    free(means);
}
