/*
 * schedule.c - learning rate as a function of the update number s:
 *   warmup (s < w):  lr (s+1) / w
 *   constant:        lr
 *   step:            lr gamma^floor((s-w) / step_size)
 *   cosine:          min + (lr - min) (1 + cos(pi (s-w) / (total-w))) / 2, then min
 */
#include <math.h>

#include "seqgrad/optim.h"

const char *const sg_sched_kind_names[] = {"constant", "step", "cosine", NULL};

double sg_schedule_lr(const sg_schedule *s, long step)
{
    if (!s)
        return 0;
    if (step < 0)
        step = 0;
    if (s->warmup > 0 && step < s->warmup)
        return s->lr * (double)(step + 1) / (double)s->warmup;
    long k = step - (s->warmup > 0 ? s->warmup : 0);
    switch (s->kind) {
    case SG_SCHED_STEP:
        return s->step_size > 0 ? s->lr * pow(s->gamma, (double)(k / s->step_size)) : s->lr;
    case SG_SCHED_COSINE: {
        long span = s->total - (s->warmup > 0 ? s->warmup : 0);
        if (span <= 0 || k >= span)
            return s->min_lr;
        return s->min_lr + (s->lr - s->min_lr) * (1 + cos(3.14159265358979323846 * (double)k / (double)span)) / 2;
    }
    case SG_SCHED_CONSTANT:
        break;
    }
    return s->lr;
}
