#include <math.h>

#include "src/train/schedule.h"

float lr_linear_schedule(long step, long warmup_steps, long total_steps)
{
    if (step < warmup_steps) return (float)step / (float)(warmup_steps > 1 ? warmup_steps : 1);
    long rest = total_steps - warmup_steps;
    float f = (float)(total_steps - step) / (float)(rest > 1 ? rest : 1);
    return f > 0.0f ? f : 0.0f;
}

long lr_warmup_steps(double ratio, long total_steps)
{
    return (long)ceil(ratio * (double)total_steps);
}
