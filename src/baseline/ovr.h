/* One-vs-rest linear classifiers on sparse features, solved as liblinear
 * solves them (and so as scikit-learn's solver="liblinear" / LinearSVC):
 *  - logreg: L2-regularised logistic regression, primal, trust-region
 *    Newton with preconditioned conjugate gradient (liblinear's TRON and its
 *    stopping rule |g| <= tol * max(min(#pos, #neg), 1) / l * |g(0)|).
 *  - svm: L2-regularised squared-hinge SVM, dual coordinate descent with
 *    shrinking (liblinear's L2R_L2LOSS_SVC_DUAL, stop when the projected
 *    gradient spread is <= tol).
 * The intercept is a constant feature of value 1 whose weight IS
 * regularised, as liblinear with bias = intercept_scaling = 1 does.
 * Per label: +1 where the movie has the label. Balanced class weights scale
 * C by n / (2 * class count), as sklearn's class_weight="balanced" does on
 * each binary problem. Labels are solved in parallel (OpenMP). */
#ifndef GENRE_OVR_H
#define GENRE_OVR_H

#include <stdbool.h>
#include <stdint.h>

#include "src/baseline/vectorizer.h"

typedef struct {
    double C;
    double tol;
    int max_iter;
    bool balanced;
    uint64_t seed; /* svm: order of the coordinate sweeps */
} OvrOptions;

typedef struct {
    int n_features, n_labels;
    double *w; /* n_labels rows of n_features + 1 (the last: intercept) */
    int *iters; /* solver iterations per label */
} OvrModel;

/* Both fit every label of Y (X->rows x n_labels, 0/1). A label with no
 * positive (or no negative) example is an error. 0, or -1 with err_set. */
int logreg_fit(OvrModel *m, const Csr *X, const uint8_t *Y, int n_labels, const OvrOptions *opt);
int svm_fit(OvrModel *m, const Csr *X, const uint8_t *Y, int n_labels, const OvrOptions *opt);

/* Per label: C of the positive and the negative examples, and the
 * positive count. */
typedef struct {
    double *Cp, *Cn;
    int *n_pos;
} LabelCosts;

/* The set-up every one-vs-rest fit shares: allocates m (zero weights) and
 * the costs of each label of Y (X->rows x n_labels). 0, or -1 with err_set
 * (m and k freed) when a label has no positive or no negative example. */
int ovr_begin(OvrModel *m, LabelCosts *k, const Csr *X, const uint8_t *Y, int n_labels,
                 const OvrOptions *opt);
void label_costs_free(LabelCosts *k);

/* scores[i, c] = w_c . x_i + b_c, or its logistic sigmoid when `prob`. */
void ovr_scores(const OvrModel *m, const Csr *X, bool prob, float *scores);
void ovr_free(OvrModel *m);

#endif
