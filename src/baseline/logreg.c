/* L2 logistic regression by trust-region Newton (liblinear's TRON with a
 * diagonal preconditioner); see linear.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/baseline/ovr.h"

typedef struct {
    const Csr *X;
    const double *y, *C; /* per example: +-1 and its cost */
    double *D;           /* per example: sigma (1 - sigma) at the current iterate */
    int l, n;            /* examples; variables (features + intercept) */
} Problem;

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy(double a, const double *x, double *y, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* b + x_i . v */
static double row_dot(const Csr *X, int i, const double *v, double b)
{
    for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) b += v[X->indices[k]] * X->data[k];
    return b;
}

/* One pass over X for the objective at w, its gradient g, the curvatures D
 * and liblinear's preconditioner M = 0.99 + 0.01 diag(H). liblinear makes
 * separate passes (and only computes g after accepting w); the sums are
 * accumulated in the same order, so the numbers are the same. */
static double fun_grad(const Problem *p, const double *w, double *g, double *M, double *D)
{
    const Csr *X = p->X;
    int nb = p->n - 1;
    double f = 0.5 * dot(w, w, p->n);
    memcpy(g, w, (size_t)p->n * sizeof *g);
    for (int j = 0; j < p->n; j++) M[j] = 1;
    for (int i = 0; i < p->l; i++) {
        double yz = p->y[i] * row_dot(X, i, w, w[nb]), Ci = p->C[i];
        f += Ci * (yz >= 0 ? log1p(exp(-yz)) : -yz + log1p(exp(yz)));
        double s = 1 / (1 + exp(-yz));
        D[i] = s * (1 - s);
        double u = Ci * (s - 1) * p->y[i], cd = Ci * D[i];
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            int32_t j = X->indices[k];
            double x = X->data[k];
            g[j] += u * x;
            M[j] += x * x * cd;
        }
        g[nb] += u;
        M[nb] += cd;
    }
    for (int j = 0; j < p->n; j++) M[j] = 0.99 + 0.01 * M[j];
    return f;
}

/* Hs = s + X^T diag(C D) X s in one pass: row i's term needs only x_i . s. */
static void hess_vec(const Problem *p, const double *s, double *Hs)
{
    const Csr *X = p->X;
    int nb = p->n - 1;
    memcpy(Hs, s, (size_t)p->n * sizeof *Hs);
    for (int i = 0; i < p->l; i++) {
        double t = row_dot(X, i, s, s[nb]) * p->C[i] * p->D[i];
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) Hs[X->indices[k]] += t * X->data[k];
        Hs[nb] += t;
    }
}

static double m_dot(const double *u, const double *M, const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += u[i] * M[i] * v[i];
    return s;
}

/* Preconditioned CG for H s = -g inside ||s||_M <= delta; r = -g - H s. */
static int trpcg(const Problem *p, double delta, const double *g, const double *M, double *s, double *r,
                 bool *boundary, double *d, double *Hd, double *z)
{
    int n = p->n;
    *boundary = false;
    for (int i = 0; i < n; i++) {
        s[i] = 0;
        r[i] = -g[i];
        z[i] = r[i] / M[i];
        d[i] = z[i];
    }
    double zTr = dot(z, r, n), gMinv_norm = sqrt(zTr);
    double cgtol = fmin(0.1, sqrt(gMinv_norm));
    int it = 0, max_it = n > 5 ? n : 5;
    while (it < max_it) {
        if (sqrt(zTr) <= cgtol * gMinv_norm) break;
        it++;
        hess_vec(p, d, Hd);
        double alpha = zTr / dot(d, Hd, n);
        axpy(alpha, d, s, n);
        if (sqrt(m_dot(s, M, s, n)) > delta) {
            *boundary = true;
            axpy(-alpha, d, s, n);
            double sTMd = m_dot(s, M, d, n), sTMs = m_dot(s, M, s, n), dTMd = m_dot(d, M, d, n);
            double dsq = delta * delta, rad = sqrt(sTMd * sTMd + dTMd * (dsq - sTMs));
            alpha = sTMd >= 0 ? (dsq - sTMs) / (sTMd + rad) : (rad - sTMd) / dTMd;
            axpy(alpha, d, s, n);
            axpy(-alpha, Hd, r, n);
            break;
        }
        axpy(-alpha, Hd, r, n);
        for (int i = 0; i < n; i++) z[i] = r[i] / M[i];
        double zTr_new = dot(z, r, n);
        double beta = zTr_new / zTr;
        for (int i = 0; i < n; i++) d[i] = z[i] + beta * d[i];
        zTr = zTr_new;
    }
    return it;
}

/* Minimises the objective from w = 0; returns Newton iterations taken.
 * The trial point's g, M and D go to spare buffers, swapped in on accept. */
static int tron(Problem *p, double *w, double eps, int max_iter)
{
    const double eta0 = 1e-4, eta1 = 0.25, eta2 = 0.75, sigma1 = 0.25, sigma2 = 0.5, sigma3 = 4;
    int n = p->n;
    double *buf = xcalloc((size_t)n * 10 + (size_t)p->l * 2, sizeof *buf);
    double *s = buf, *r = s + n, *g = r + n, *M = g + n, *w_new = M + n, *d = w_new + n, *Hd = d + n, *z = Hd + n;
    double *g_new = z + n, *M_new = g_new + n, *D = M_new + n, *D_new = D + p->l;
    memset(w, 0, (size_t)n * sizeof *w);
    p->D = D;
    double f = fun_grad(p, w, g, M, D);
    double gnorm0 = sqrt(dot(g, g, n)), gnorm = gnorm0;
    double delta = sqrt(m_dot(g, M, g, n));
    int iter = 1;
    bool search = gnorm > eps * gnorm0, adjusted = false;
    while (iter <= max_iter && search) {
        bool boundary;
        trpcg(p, delta, g, M, s, r, &boundary, d, Hd, z);
        memcpy(w_new, w, (size_t)n * sizeof *w);
        axpy(1, s, w_new, n);
        double gs = dot(g, s, n);
        double prered = -0.5 * (gs - dot(s, r, n));
        double fnew = fun_grad(p, w_new, g_new, M_new, D_new);
        double actred = f - fnew;
        double sMnorm = sqrt(m_dot(s, M, s, n));
        if (iter == 1 && !adjusted) {
            delta = fmin(delta, sMnorm);
            adjusted = true;
        }
        double alpha = fnew - f - gs <= 0 ? sigma3 : fmax(sigma1, -0.5 * (gs / (fnew - f - gs)));
        if (actred < eta0 * prered) delta = fmin(alpha * sMnorm, sigma2 * delta);
        else if (actred < eta1 * prered) delta = fmax(sigma1 * delta, fmin(alpha * sMnorm, sigma2 * delta));
        else if (actred < eta2 * prered) delta = fmax(sigma1 * delta, fmin(alpha * sMnorm, sigma3 * delta));
        else if (boundary) delta = sigma3 * delta;
        else delta = fmax(delta, fmin(alpha * sMnorm, sigma3 * delta));
        if (actred > eta0 * prered) {
            iter++;
            double *t;
            memcpy(w, w_new, (size_t)n * sizeof *w);
            t = g, g = g_new, g_new = t;
            t = M, M = M_new, M_new = t;
            t = D, D = D_new, D_new = t;
            p->D = D;
            f = fnew;
            gnorm = sqrt(dot(g, g, n));
            if (gnorm <= eps * gnorm0) break;
        } else {
            p->D = D; /* fun_grad wrote the trial's into D_new; H stays at w */
        }
        if (f < -1.0e32 || prered <= 0) break;
        if (fabs(actred) <= 1.0e-12 * fabs(f) && fabs(prered) <= 1.0e-12 * fabs(f)) break;
    }
    free(buf);
    return iter - 1;
}

int logreg_fit(OvrModel *m, const Csr *X, const uint8_t *Y, int n_labels, const OvrOptions *opt)
{
    int l = X->rows, n = X->cols + 1;
    LabelCosts k;
    if (ovr_begin(m, &k, X, Y, n_labels, opt) != 0) return -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < n_labels; c++) {
        double *y = xmalloc((size_t)l * 2 * sizeof *y), *C = y + l;
        Problem p = {X, y, C, NULL, l, n};
        for (int i = 0; i < l; i++) {
            bool yes = Y[(size_t)i * n_labels + c] != 0;
            y[i] = yes ? 1 : -1;
            C[i] = yes ? k.Cp[c] : k.Cn[c];
        }
        int mn = k.n_pos[c] < l - k.n_pos[c] ? k.n_pos[c] : l - k.n_pos[c];
        double eps = opt->tol * (mn > 1 ? mn : 1) / l;
        m->iters[c] = tron(&p, m->w + (size_t)c * n, eps, opt->max_iter);
        free(y);
    }
    label_costs_free(&k);
    return 0;
}
