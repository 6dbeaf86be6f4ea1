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

/* Loss of element (label c, logit x, target y); *grad gets its derivative. */
HOSTDEV double loss_element(const Loss *ls, int c, double x, double y, double *grad)
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
    case LOSS_BCE:
        break;
    }
    *grad = s - y;
    return bce;
}

#endif
