#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/data/stratify.h"

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

/* The combinations stratified over: each label alone and, for order 2,
 * each pair of labels that occurs together. Returns their count and fills,
 * per example, the list of combination ids it carries (CSR layout). */
static int combinations(int n, int L, const uint8_t *y, int order, int **row_start, int **ids)
{
    int *pair = xmalloc((size_t)L * L * sizeof *pair);
    int n_comb = L;
    for (int k = 0; k < L * L; k++) pair[k] = -1;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int l = 0; l < L; l++) m += y[(size_t)i * L + l];
        total += (size_t)m + (order == 2 ? (size_t)m * (m - 1) / 2 : 0);
    }
    *row_start = xmalloc((size_t)(n + 1) * sizeof **row_start);
    *ids = xmalloc((total ? total : 1) * sizeof **ids);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *row = y + (size_t)i * L;
        (*row_start)[i] = (int)at;
        for (int a = 0; a < L; a++) {
            if (!row[a]) continue;
            (*ids)[at++] = a;
            if (order < 2) continue;
            for (int b = a + 1; b < L; b++) {
                if (!row[b]) continue;
                if (pair[a * L + b] < 0) pair[a * L + b] = n_comb++;
                (*ids)[at++] = pair[a * L + b];
            }
        }
    }
    (*row_start)[n] = (int)at;
    free(pair);
    return n_comb;
}

int stratify(int n, int n_labels, const uint8_t *y, int order, int n_parts, const double *props,
             uint64_t seed, int *part)
{
    if (n < 0 || n_labels < 0 || n_parts < 1 || n_parts > 64 || order < 1 || order > 2)
        return err_set("stratify: bad arguments (n=%d, labels=%d, order=%d, parts=%d)", n, n_labels,
                       order, n_parts);
    double sum = 0;
    for (int p = 0; p < n_parts; p++) {
        if (!(props[p] >= 0) || !isfinite(props[p]))
            return err_set("stratify: proportion %d is not a non-negative number", p);
        sum += props[p];
    }
    if (!(sum > 0)) return err_set("stratify: the proportions sum to 0");
    int *row_start, *ids;
    int C = combinations(n, n_labels, y, order, &row_start, &ids);
    uint64_t rng = seed;
    int allowed[64];
    double *want_total = xmalloc((size_t)n_parts * sizeof *want_total);
    double *want = xmalloc((size_t)(C ? C : 1) * n_parts * sizeof *want);
    int *count = xcalloc((size_t)(C ? C : 1), sizeof *count);
    for (int k = 0; k < row_start[n]; k++) count[ids[k]]++;
    for (int p = 0; p < n_parts; p++) {
        allowed[p] = props[p] > 0;
        want_total[p] = props[p] / sum * n;
        for (int c = 0; c < C; c++) want[(size_t)c * n_parts + p] = props[p] / sum * count[c];
    }
    /* Each combination's examples in a seeded random order. */
    int **members = xmalloc((size_t)(C ? C : 1) * sizeof *members);
    int *fill = xcalloc((size_t)(C ? C : 1), sizeof *fill);
    for (int c = 0; c < C; c++) members[c] = xmalloc((size_t)(count[c] ? count[c] : 1) * sizeof **members);
    for (int i = 0; i < n; i++)
        for (int k = row_start[i]; k < row_start[i + 1]; k++) members[ids[k]][fill[ids[k]]++] = i;
    for (int c = 0; c < C; c++)
        for (int k = count[c] - 1; k > 0; k--) {
            int j = (int)uniform(&rng, (uint32_t)k + 1), t = members[c][k];
            members[c][k] = members[c][j];
            members[c][j] = t;
        }
    for (int i = 0; i < n; i++) part[i] = -1;
    /* count[c] now tracks the unassigned examples of combination c. */
    for (;;) {
        int c = -1;
        for (int k = 0; k < C; k++)
            if (count[k] > 0 && (c < 0 || count[k] < count[c])) c = k;
        if (c < 0) break;
        for (int k = 0; k < fill[c]; k++) {
            int i = members[c][k];
            if (part[i] >= 0) continue;
            int p = pick_part(n_parts, want + (size_t)c * n_parts, want_total, allowed, &rng);
            part[i] = p;
            want_total[p] -= 1;
            for (int r = row_start[i]; r < row_start[i + 1]; r++) {
                want[(size_t)ids[r] * n_parts + p] -= 1;
                count[ids[r]]--;
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
    for (int c = 0; c < C; c++) free(members[c]);
    free(members);
    free(fill);
    free(count);
    free(want);
    free(want_total);
    free(row_start);
    free(ids);
    return 0;
}
