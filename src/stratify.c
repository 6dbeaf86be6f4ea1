#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "stratify.h"

/* splitmix64 (Steele, Lea and Flood 2014): small, fast, well mixed. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias. */
static uint32_t uniform(uint64_t *s, uint32_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = next_u64(s); while (r >= limit);
    return (uint32_t)(r % n);
}

/* Among parts with max `want` (only those in `allowed`), those that want the
 * most examples overall, then a random one. */
static int pick_part(int n_parts, const double *want, const double *want_total,
                     const int *allowed, uint64_t *rng)
{
    int cand[64], nc = 0;
    double best = -INFINITY;
    for (int p = 0; p < n_parts; p++) {
        if (!allowed[p]) continue;
        if (want[p] > best) { best = want[p]; nc = 0; }
        if (want[p] == best) cand[nc++] = p;
    }
    if (nc > 1) {
        double bt = -INFINITY;
        int m = 0;
        for (int i = 0; i < nc; i++) {
            double w = want_total[cand[i]];
            if (w > bt) { bt = w; m = 0; }
            if (w == bt) cand[m++] = cand[i];
        }
        nc = m;
    }
    return cand[nc > 1 ? uniform(rng, (uint32_t)nc) : 0];
}

int stratify(int n, int n_labels, const uint8_t *y, int n_parts, const double *props,
             uint64_t seed, int *part)
{
    if (n < 0 || n_labels < 0 || n_parts < 1 || n_parts > 64)
        return err_set("stratify: bad sizes (n=%d, labels=%d, parts=%d)", n, n_labels, n_parts);
    double sum = 0;
    for (int p = 0; p < n_parts; p++) {
        if (!(props[p] >= 0) || !isfinite(props[p]))
            return err_set("stratify: proportion %d is not a non-negative number", p);
        sum += props[p];
    }
    if (!(sum > 0)) return err_set("stratify: the proportions sum to 0");
    uint64_t rng = seed;
    int allowed[64];
    double *want_total = xmalloc((size_t)n_parts * sizeof *want_total);
    double *want = xmalloc((size_t)n_labels * n_parts * sizeof *want);
    int *count = xcalloc((size_t)n_labels, sizeof *count);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < n_labels; l++) count[l] += y[(size_t)i * n_labels + l];
    for (int p = 0; p < n_parts; p++) {
        allowed[p] = props[p] > 0;
        want_total[p] = props[p] / sum * n;
        for (int l = 0; l < n_labels; l++) want[(size_t)l * n_parts + p] = props[p] / sum * count[l];
    }
    /* Each label's examples in a seeded random order. */
    int **members = xmalloc((size_t)n_labels * sizeof *members);
    int *fill = xcalloc((size_t)n_labels, sizeof *fill);
    for (int l = 0; l < n_labels; l++) members[l] = xmalloc((size_t)(count[l] ? count[l] : 1) * sizeof **members);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < n_labels; l++)
            if (y[(size_t)i * n_labels + l]) members[l][fill[l]++] = i;
    for (int l = 0; l < n_labels; l++)
        for (int k = count[l] - 1; k > 0; k--) {
            int j = (int)uniform(&rng, (uint32_t)k + 1), t = members[l][k];
            members[l][k] = members[l][j];
            members[l][j] = t;
        }
    for (int i = 0; i < n; i++) part[i] = -1;
    /* count[l] now tracks the unassigned examples of label l. */
    for (;;) {
        int l = -1;
        for (int k = 0; k < n_labels; k++)
            if (count[k] > 0 && (l < 0 || count[k] < count[l])) l = k;
        if (l < 0) break;
        for (int k = 0; k < fill[l]; k++) {
            int i = members[l][k];
            if (part[i] >= 0) continue;
            int p = pick_part(n_parts, want + (size_t)l * n_parts, want_total, allowed, &rng);
            part[i] = p;
            want_total[p] -= 1;
            for (int m = 0; m < n_labels; m++)
                if (y[(size_t)i * n_labels + m]) {
                    want[(size_t)m * n_parts + p] -= 1;
                    count[m]--;
                }
        }
    }
    for (int i = 0; i < n; i++) {
        if (part[i] >= 0) continue;
        double zero[64] = {0};
        int p = pick_part(n_parts, zero, want_total, allowed, &rng);
        part[i] = p;
        want_total[p] -= 1;
    }
    for (int l = 0; l < n_labels; l++) free(members[l]);
    free(members);
    free(fill);
    free(count);
    free(want);
    free(want_total);
    return 0;
}
