/* comm-check: every collective of src/dist/comm.h on every rank of the job
 * it is started in (mpirun -np N build/tests/comm-check), against values
 * each rank can compute alone. Prints "comm-check: rank R of N: ok", or
 * the first wrong value, and exits 1. tests/unit/test_dist.c runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/dist/comm.h"

static int fails;

static void expect(int ok, const char *what, int rank, double got, double want)
{
    if (ok) return;
    fprintf(stderr, "comm-check: rank %d: %s: got %.9g, want %.9g\n", rank, what, got, want);
    fails++;
}

int main(void)
{
    Comm *c = comm_open(20.0, NULL);
    if (!c) die_err();
    int r = comm_rank(c), n = comm_world(c);
    float f[3] = {(float)r + 0.5f, (float)(r * r), -1.0f * (float)r};
    double d[2] = {0.25 * r, 1.0};
    int i[2] = {r, 7 - r};
    if (comm_allreduce(c, f, 3, COMM_F32, COMM_SUM) || comm_allreduce(c, d, 2, COMM_F64, COMM_MEAN) ||
        comm_allreduce(c, i, 2, COMM_I32, COMM_MAX))
        die_err();
    double sum_r = n * (n - 1) / 2.0, sum_r2 = (n - 1) * n * (2 * n - 1) / 6.0;
    expect(f[0] == (float)(sum_r + 0.5 * n), "f32 sum", r, f[0], sum_r + 0.5 * n);
    expect(f[1] == (float)sum_r2, "f32 sum of squares", r, f[1], sum_r2);
    expect(f[2] == (float)-sum_r, "f32 sum of negatives", r, f[2], -sum_r);
    expect(fabs(d[0] - 0.25 * sum_r / n) < 1e-15 && d[1] == 1.0, "f64 mean", r, d[0], 0.25 * sum_r / n);
    expect(i[0] == n - 1 && i[1] == 7, "i32 max", r, i[0], n - 1);

    char word[24] = "";
    if (r == n - 1) snprintf(word, sizeof word, "from %d", r);
    if (comm_broadcast(c, word, sizeof word, n - 1) || comm_barrier(c)) die_err();
    char want[24];
    snprintf(want, sizeof want, "from %d", n - 1);
    expect(!strcmp(word, want), "broadcast from the last rank", r, 0, 0);

    /* Rank q contributes q + k at index k of every block. */
    float *in = malloc((size_t)n * 2 * sizeof(float)), out[2];
    for (int b = 0; b < n; b++)
        for (int k = 0; k < 2; k++) in[b * 2 + k] = (float)(r + 10 * b + k);
    if (comm_reduce_scatter(c, in, out, 2, COMM_F32)) die_err();
    for (int k = 0; k < 2; k++)
        expect(out[k] == (float)(sum_r + n * (10 * r + k)), "reduce-scatter: this rank's block", r, out[k],
               sum_r + n * (10 * r + k));
    int mine[2] = {r, -r}, *all = malloc((size_t)n * sizeof mine);
    if (comm_allgather(c, mine, all, sizeof mine)) die_err();
    for (int q = 0; q < n; q++) expect(all[2 * q] == q && all[2 * q + 1] == -q, "all-gather", r, all[2 * q], q);
    free(in);
    free(all);
    if (!fails) printf("comm-check: rank %d of %d: ok\n", r, n);
    comm_close(c);
    return fails ? 1 : 0;
}
