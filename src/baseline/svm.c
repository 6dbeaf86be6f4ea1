/* L2-regularised squared-hinge SVM by dual coordinate descent with
 * shrinking (liblinear's solve_l2r_l1l2_svc); see linear.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/baseline/ovr.h"

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double row_dot(const Csr *X, int i, const double *w, int d)
{
    double s = w[d];
    for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) s += w[X->indices[k]] * X->data[k];
    return s;
}

static void row_axpy(const Csr *X, int i, double a, double *w, int d)
{
    for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) w[X->indices[k]] += a * X->data[k];
    w[d] += a;
}

/* Returns the number of outer sweeps. */
static int solve(const Csr *X, const uint8_t *Y, int n_labels, int c, double Cp, double Cn, double eps,
                 int max_iter, uint64_t seed, double *w)
{
    int l = X->rows, d = X->cols;
    double *QD = xmalloc((size_t)l * sizeof *QD), *alpha = xcalloc((size_t)l, sizeof *alpha);
    double *diag = xmalloc((size_t)l * sizeof *diag);
    int *index = xmalloc((size_t)l * sizeof *index);
    signed char *y = xmalloc((size_t)l);
    for (int i = 0; i < l; i++) {
        y[i] = Y[(size_t)i * n_labels + c] ? 1 : -1;
        diag[i] = 0.5 / (y[i] > 0 ? Cp : Cn);
        QD[i] = diag[i] + 1; /* + the intercept feature's 1^2 */
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) QD[i] += X->data[k] * X->data[k];
        index[i] = i;
    }
    memset(w, 0, (size_t)(d + 1) * sizeof *w);
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + (uint64_t)c + 1;
    int active = l, iter = 0;
    /* The squared hinge has no upper bound on alpha: only PGmax shrinks. */
    double PGmax_old = INFINITY;
    while (iter < max_iter) {
        double PGmax_new = -INFINITY, PGmin_new = INFINITY;
        for (int i = 0; i < active; i++) {
            int j = i + (int)(next_rand(&rng) % (uint64_t)(active - i));
            int t = index[i];
            index[i] = index[j];
            index[j] = t;
        }
        for (int s = 0; s < active; s++) {
            int i = index[s];
            double G = y[i] * row_dot(X, i, w, d) - 1 + alpha[i] * diag[i];
            double PG = 0;
            if (alpha[i] == 0) {
                if (G > PGmax_old) {
                    active--;
                    int t = index[s];
                    index[s] = index[active];
                    index[active] = t;
                    s--;
                    continue;
                }
                if (G < 0) PG = G;
            } else {
                PG = G;
            }
            PGmax_new = fmax(PGmax_new, PG);
            PGmin_new = fmin(PGmin_new, PG);
            if (fabs(PG) > 1.0e-12) {
                double old = alpha[i];
                alpha[i] = fmax(alpha[i] - G / QD[i], 0.0);
                row_axpy(X, i, (alpha[i] - old) * y[i], w, d);
            }
        }
        iter++;
        if (PGmax_new - PGmin_new <= eps) {
            if (active == l) break;
            active = l;
            PGmax_old = INFINITY;
            continue;
        }
        PGmax_old = PGmax_new <= 0 ? INFINITY : PGmax_new;
    }
    free(QD), free(alpha), free(diag), free(index), free(y);
    return iter;
}

int svm_fit(OvrModel *m, const Csr *X, const uint8_t *Y, int n_labels, const OvrOptions *opt)
{
    int n = X->cols + 1;
    LabelCosts k;
    if (ovr_begin(m, &k, X, Y, n_labels, opt) != 0) return -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < n_labels; c++)
        m->iters[c] = solve(X, Y, n_labels, c, k.Cp[c], k.Cn[c], opt->tol, opt->max_iter, opt->seed, m->w + (size_t)c * n);
    label_costs_free(&k);
    return 0;
}
