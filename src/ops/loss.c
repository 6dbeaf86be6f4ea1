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
