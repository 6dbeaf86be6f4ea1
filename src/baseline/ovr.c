#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/baseline/ovr.h"

void ovr_scores(const OvrModel *m, const Csr *X, bool prob, float *scores)
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

void ovr_free(OvrModel *m)
{
    free(m->w);
    free(m->iters);
    memset(m, 0, sizeof *m);
}

void label_costs_free(LabelCosts *k)
{
    free(k->Cp);
    free(k->Cn);
    free(k->n_pos);
    memset(k, 0, sizeof *k);
}

int ovr_begin(OvrModel *m, LabelCosts *k, const Csr *X, const uint8_t *Y, int n_labels,
                 const OvrOptions *opt)
{
    int n = X->rows;
    m->n_features = X->cols;
    m->n_labels = n_labels;
    m->w = xcalloc((size_t)n_labels * (X->cols + 1), sizeof *m->w);
    m->iters = xcalloc((size_t)n_labels, sizeof *m->iters);
    k->Cp = xmalloc((size_t)n_labels * sizeof *k->Cp);
    k->Cn = xmalloc((size_t)n_labels * sizeof *k->Cn);
    k->n_pos = xmalloc((size_t)n_labels * sizeof *k->n_pos);
    for (int c = 0; c < n_labels; c++) {
        int pos = 0;
        for (int i = 0; i < n; i++) pos += Y[(size_t)i * n_labels + c] != 0;
        if (pos == 0 || pos == n) {
            err_set("label %d has %s training example: one-vs-rest needs both classes", c,
                    pos == 0 ? "no positive" : "no negative");
            label_costs_free(k);
            ovr_free(m);
            return -1;
        }
        k->n_pos[c] = pos;
        k->Cp[c] = k->Cn[c] = opt->C;
        if (opt->balanced) {
            k->Cp[c] *= n / (2.0 * pos);
            k->Cn[c] *= n / (2.0 * (n - pos));
        }
    }
    return 0;
}
