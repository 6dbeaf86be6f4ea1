#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linear.h"

void linear_scores(const LinearModel *m, const Csr *X, bool prob, float *scores)
{
    int L = m->n_labels, d = m->n_features;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < X->rows; i++)
        for (int c = 0; c < L; c++) {
            const double *w = m->w + (size_t)c * (d + 1);
            double z = w[d];
            for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) z += w[X->indices[k]] * X->data[k];
            scores[(size_t)i * L + c] = (float)(prob ? 1 / (1 + exp(-z)) : z);
        }
}

void linear_free(LinearModel *m)
{
    free(m->w);
    free(m->iters);
    memset(m, 0, sizeof *m);
}

int linear_costs(const uint8_t *Y, int n, int n_labels, int c, const LinearOptions *opt, double *Cp, double *Cn,
                 int *n_pos)
{
    int pos = 0;
    for (int i = 0; i < n; i++) pos += Y[(size_t)i * n_labels + c] != 0;
    if (pos == 0 || pos == n)
        return err_set("label %d has %s training example: one-vs-rest needs both classes", c,
                       pos == 0 ? "no positive" : "no negative");
    *n_pos = pos;
    *Cp = *Cn = opt->C;
    if (opt->balanced) {
        *Cp *= n / (2.0 * pos);
        *Cn *= n / (2.0 * (n - pos));
    }
    return 0;
}
