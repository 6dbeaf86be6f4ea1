#include <math.h>
#include <string.h>

#include "src/ops/loss.h"
#include "src/ops/loss_element.h"

float loss_forward(const Loss *loss, float *dlogits, const float *logits, const float *targets,
                   int B, int L, float grad_scale)
{
    double total = 0.0, inv = 1.0 / ((double)B * L);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < L; c++) {
            size_t i = (size_t)b * L + c;
            double g;
            total += loss_element(loss, c, logits[i], targets[i], &g);
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

/* 1 / effective number of label c's samples, (1 - beta) / (1 - beta^n). */
static double inverse_effective_number(long count, double beta)
{
    long n = count > 0 ? count : 1;
    /* -expm1(n log beta) = 1 - beta^n without cancellation near beta = 1 */
    return beta > 0.0 ? (1.0 - beta) / -expm1((double)n * log(beta)) : 1.0;
}

void loss_class_balanced_weights(float *w, const long *counts, int L, double beta)
{
    double sum = 0.0;
    for (int c = 0; c < L; c++) sum += inverse_effective_number(counts[c], beta);
    double mean = sum / L;
    for (int c = 0; c < L; c++) w[c] = (float)(inverse_effective_number(counts[c], beta) / mean);
}

static const struct { const char *name; LossKind kind; } names[] = {
    {"bce", LOSS_BCE}, {"bce_logw", LOSS_BCE_LOGW}, {"focal", LOSS_FOCAL}, {"asl", LOSS_ASL}};

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
