/* L2 logistic regression by trust-region Newton (liblinear's TRON with a
 * diagonal preconditioner); see linear.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linear.h"

typedef struct {
    const Csr *X;
    const double *y, *C; /* per example: +-1 and its cost */
    double *z, *D;       /* per example: margins, then sigma(1-sigma) */
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

/* out = X_aug v (X with the column of ones appended). */
static void mat_vec(const Problem *p, const double *v, double *out)
{
    const Csr *X = p->X;
    for (int i = 0; i < p->l; i++) {
        double s = v[p->n - 1];
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) s += v[X->indices[k]] * X->data[k];
        out[i] = s;
    }
}

/* out += X_aug^T u. */
static void mat_t_vec(const Problem *p, const double *u, double *out)
{
    const Csr *X = p->X;
    for (int i = 0; i < p->l; i++) {
        double ui = u[i];
        if (ui == 0) continue;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) out[X->indices[k]] += ui * X->data[k];
        out[p->n - 1] += ui;
    }
}

static double fun(Problem *p, const double *w)
{
    mat_vec(p, w, p->z);
    double f = 0.5 * dot(w, w, p->n);
    for (int i = 0; i < p->l; i++) {
        double yz = p->y[i] * p->z[i];
        f += p->C[i] * (yz >= 0 ? log1p(exp(-yz)) : -yz + log1p(exp(yz)));
    }
    return f;
}

/* Gradient at the w of the last fun() call (its margins z); also sets D,
 * which hess_vec uses until the next accepted step, as in liblinear. */
static void grad(Problem *p, const double *w, double *g, double *tmp)
{
    for (int i = 0; i < p->l; i++) {
        double s = 1 / (1 + exp(-p->y[i] * p->z[i]));
        p->D[i] = s * (1 - s);
        tmp[i] = p->C[i] * (s - 1) * p->y[i];
    }
    memcpy(g, w, (size_t)p->n * sizeof *g);
    mat_t_vec(p, tmp, g);
}

static void hess_vec(const Problem *p, const double *s, double *Hs, double *tmp)
{
    mat_vec(p, s, tmp);
    for (int i = 0; i < p->l; i++) tmp[i] *= p->C[i] * p->D[i];
    memcpy(Hs, s, (size_t)p->n * sizeof *Hs);
    mat_t_vec(p, tmp, Hs);
}

/* M = (1 - a) + a * diag(H), liblinear's preconditioner with a = 0.01. */
static void precond(const Problem *p, double *M)
{
    const Csr *X = p->X;
    for (int j = 0; j < p->n; j++) M[j] = 1;
    for (int i = 0; i < p->l; i++) {
        double cd = p->C[i] * p->D[i];
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) M[X->indices[k]] += X->data[k] * X->data[k] * cd;
        M[p->n - 1] += cd;
    }
    for (int j = 0; j < p->n; j++) M[j] = 0.99 + 0.01 * M[j];
}

static double m_dot(const double *u, const double *M, const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += u[i] * M[i] * v[i];
    return s;
}

/* Preconditioned CG for H s = -g inside ||s||_M <= delta; r = -g - H s. */
static int trpcg(const Problem *p, double delta, const double *g, const double *M, double *s, double *r,
                 bool *boundary, double *d, double *Hd, double *z, double *tmp)
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
        hess_vec(p, d, Hd, tmp);
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

/* Minimises the objective from w = 0; returns Newton iterations taken. */
static int tron(Problem *p, double *w, double eps, int max_iter)
{
    const double eta0 = 1e-4, eta1 = 0.25, eta2 = 0.75, sigma1 = 0.25, sigma2 = 0.5, sigma3 = 4;
    int n = p->n;
    double *buf = xcalloc((size_t)n * 8 + (size_t)p->l, sizeof *buf);
    double *s = buf, *r = s + n, *g = r + n, *M = g + n, *w_new = M + n, *d = w_new + n, *Hd = d + n, *z = Hd + n;
    double *tmp = z + n; /* example-sized scratch */
    memset(w, 0, (size_t)n * sizeof *w);
    double f = fun(p, w);
    grad(p, w, g, tmp);
    double gnorm0 = sqrt(dot(g, g, n)), gnorm = gnorm0;
    precond(p, M);
    double delta = sqrt(m_dot(g, M, g, n));
    int iter = 1;
    bool search = gnorm > eps * gnorm0, adjusted = false;
    while (iter <= max_iter && search) {
        bool boundary;
        trpcg(p, delta, g, M, s, r, &boundary, d, Hd, z, tmp);
        memcpy(w_new, w, (size_t)n * sizeof *w);
        axpy(1, s, w_new, n);
        double gs = dot(g, s, n);
        double prered = -0.5 * (gs - dot(s, r, n));
        double fnew = fun(p, w_new);
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
            memcpy(w, w_new, (size_t)n * sizeof *w);
            f = fnew;
            grad(p, w, g, tmp);
            precond(p, M);
            gnorm = sqrt(dot(g, g, n));
            if (gnorm <= eps * gnorm0) break;
        }
        if (f < -1.0e32 || prered <= 0) break;
        if (fabs(actred) <= 1.0e-12 * fabs(f) && fabs(prered) <= 1.0e-12 * fabs(f)) break;
    }
    free(buf);
    return iter - 1;
}

int logreg_fit(LinearModel *m, const Csr *X, const uint8_t *Y, int n_labels, const LinearOptions *opt)
{
    int l = X->rows, n = X->cols + 1;
    m->n_features = X->cols;
    m->n_labels = n_labels;
    m->w = xcalloc((size_t)n_labels * n, sizeof *m->w);
    m->iters = xcalloc((size_t)n_labels, sizeof *m->iters);
    double *Cp = xmalloc((size_t)n_labels * sizeof *Cp), *Cn = xmalloc((size_t)n_labels * sizeof *Cn);
    int *pos = xmalloc((size_t)n_labels * sizeof *pos);
    for (int c = 0; c < n_labels; c++)
        if (linear_costs(Y, l, n_labels, c, opt, &Cp[c], &Cn[c], &pos[c]) < 0) {
            free(Cp), free(Cn), free(pos);
            linear_free(m);
            return -1;
        }
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < n_labels; c++) {
        double *y = xmalloc((size_t)l * 4 * sizeof *y), *C = y + l;
        Problem p = {X, y, C, C + l, C + 2 * l, l, n};
        for (int i = 0; i < l; i++) {
            bool yes = Y[(size_t)i * n_labels + c] != 0;
            y[i] = yes ? 1 : -1;
            C[i] = yes ? Cp[c] : Cn[c];
        }
        int mn = pos[c] < l - pos[c] ? pos[c] : l - pos[c];
        double eps = opt->tol * (mn > 1 ? mn : 1) / l;
        m->iters[c] = tron(&p, m->w + (size_t)c * n, eps, opt->max_iter);
        free(y);
    }
    free(Cp), free(Cn), free(pos);
    return 0;
}
