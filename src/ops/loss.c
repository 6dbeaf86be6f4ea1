#include <math.h>
#include <string.h>

#include "src/ops/loss.h"

/* log(1 + exp(-x)) = softplus(-x), stable for any x. */
static inline double softplus_neg(double x) { return log1p(exp(-fabs(x))) + fmax(-x, 0.0); }

static inline double sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* Loss of one element and its derivative with respect to the logit. */
static double element(const Loss *ls, int c, double x, double y, double *grad)
{
    double s = sigmoid(x), sn = sigmoid(-x);
    double bce = (1.0 - y) * x + softplus_neg(x); /* = -[y log s + (1-y) log(1-s)] */
    switch (ls->kind) {
    case LOSS_BCE_LOGW: {
        double w = ls->weights[c];
        if (!ls->as_pos_weight) {
            *grad = w * (s - y);
            return w * bce;
        }
        double lw = 1.0 + (w - 1.0) * y;
        *grad = (1.0 - y) - lw * sn;
        return (1.0 - y) * x + lw * softplus_neg(x);
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

float loss_forward(const Loss *loss, float *dlogits, const float *logits, const float *targets,
                   int B, int L, float grad_scale)
{
    double total = 0.0, inv = 1.0 / ((double)B * L);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < L; c++) {
            size_t i = (size_t)b * L + c;
            double g;
            total += element(loss, c, logits[i], targets[i], &g);
            if (dlogits) dlogits[i] = (float)(g * inv * grad_scale);
        }
    return (float)(total * inv);
}

void loss_logw_weights(float *w, const long *counts, long N, int L)
{
    double sum = 0.0;
    for (int c = 0; c < L; c++) sum += log((double)N / (double)(counts[c] + 1));
    double mean = sum / L;
    for (int c = 0; c < L; c++) w[c] = (float)(log((double)N / (double)(counts[c] + 1)) / mean);
}

static const struct { const char *name; LossKind kind; } names[] = {
    {"bce", LOSS_BCE}, {"bce_logw", LOSS_BCE_LOGW}, {"focal", LOSS_FOCAL}};

const char *loss_kind_name(LossKind kind)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].kind == kind) return names[i].name;
    return "?";
}

bool loss_kind_parse(const char *name, LossKind *kind)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *kind = names[i].kind;
            return true;
        }
    return false;
}
