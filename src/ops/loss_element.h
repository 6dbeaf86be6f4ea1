/* One element of the losses of loss.h, in double: its loss and the
 * derivative with respect to its logit. Shared (hostdev.h) by loss_forward
 * and the CUDA kernel (kernels/loss.cu), so both compute the same formulas;
 * on a GPU, ls->weights is a device pointer. */
#ifndef GENRE_OPS_LOSS_ELEMENT_H
#define GENRE_OPS_LOSS_ELEMENT_H

#include <math.h>

#include "src/core/hostdev.h"
#include "src/ops/loss.h"

/* log(1 + exp(-x)) = softplus(-x), stable for any x. */
HOSTDEV double loss_softplus_neg(double x) { return log1p(exp(-fabs(x))) + fmax(-x, 0.0); }

HOSTDEV double loss_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* LOSS_ASL's element: the positive and the negative term with their
 * derivatives written out (s = sigmoid(x), sn = 1 - s, both without
 * cancellation). */
HOSTDEV double loss_asl_element(const Loss *ls, double x, double y, double s, double sn, double *grad)
{
    double gp = ls->gamma_pos, gn = ls->gamma_neg, m = ls->clip;
    /* Positive: sn^gp * softplus(-x), whose derivative is -sn^gp (gp s softplus(-x) + sn). */
    double sp = loss_softplus_neg(x), wp = gp == 0.0 ? 1.0 : pow(sn, gp);
    double loss = y * wp * sp, g = -y * wp * (gp * s * sp + sn);
    /* Negative: -p_m^gn log q with p_m = s - m, q = 1 - p_m = sn + m, where s > m. */
    double pm = s - m;
    if (y < 1.0 && pm > 0.0) {
        double logq = m > 0.0 ? log(sn + m) : -loss_softplus_neg(-x);
        double wn = gn == 0.0 ? 1.0 : pow(pm, gn);
        double dwn = gn == 0.0 ? 0.0 : gn * pow(pm, gn - 1.0); /* d wn / d p_m */
        loss += (1.0 - y) * -wn * logq;
        /* d p_m / dx = s sn, d log q / dx = -s sn / q (sn / q is 1 when m = 0, even where sn underflows) */
        double sn_q = m > 0.0 ? sn / (sn + m) : 1.0;
        g += (1.0 - y) * s * (wn * sn_q - sn * dwn * logq);
    }
    *grad = g;
    return loss;
}

/* The loss of element (label c, logit x, target y) before class weights. */
HOSTDEV double loss_kind_element(const Loss *ls, int c, double x, double y, double *grad)
{
    double s = loss_sigmoid(x), sn = loss_sigmoid(-x);
    double bce = (1.0 - y) * x + loss_softplus_neg(x); /* = -[y log s + (1-y) log(1-s)] */
    switch (ls->kind) {
    case LOSS_BCE_LOGW: {
        double w = ls->weights[c];
        if (!ls->as_pos_weight) {
            *grad = w * (s - y);
            return w * bce;
        }
        double lw = 1.0 + (w - 1.0) * y;
        *grad = (1.0 - y) - lw * sn;
        return (1.0 - y) * x + lw * loss_softplus_neg(x);
    }
    case LOSS_FOCAL: {
        double g = ls->gamma;
        double one_m_pt = y * sn + (1.0 - y) * s; /* 1 - p_t without cancellation */
        double at = ls->alpha >= 0 ? ls->alpha * y + (1.0 - ls->alpha) * (1.0 - y) : 1.0;
        double mod = pow(one_m_pt, g);
        /* d(1 - p_t)/dx = -(2y - 1) s (1 - s) */
        double dmod = g == 0.0 ? 0.0 : -g * pow(one_m_pt, g - 1.0) * (2.0 * y - 1.0) * s * sn;
        *grad = at * ((s - y) * mod + bce * dmod);
        return at * bce * mod;
    }
    case LOSS_ASL:
        return loss_asl_element(ls, x, y, s, sn, grad);
    case LOSS_BCE:
        break;
    }
    *grad = s - y;
    return bce;
}

/* Loss of element (label c, logit x, target y); *grad gets its derivative. */
HOSTDEV double loss_element(const Loss *ls, int c, double x, double y, double *grad)
{
    double loss = loss_kind_element(ls, c, x, y, grad);
    if (ls->class_weights) {
        double w = ls->class_weights[c];
        *grad *= w;
        loss *= w;
    }
    return loss;
}

#endif
