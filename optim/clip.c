/*
 * clip.c - gradient clipping over a parameter collection: by global L2 norm
 * (returns the norm before clipping, for logging) and by value.
 */
#include <math.h>

#include "seqgrad/optim.h"

static double grad_get(const sg_tensor *p, void *g, size_t i)
{
    return sg_tensor_dtype(p) == SG_F32 ? ((float *)g)[i] : ((double *)g)[i];
}

static void grad_set(const sg_tensor *p, void *g, size_t i, double v)
{
    if (sg_tensor_dtype(p) == SG_F32)
        ((float *)g)[i] = (float)v;
    else
        ((double *)g)[i] = v;
}

double sg_clip_grad_norm(sg_params *ps, double max_norm)
{
    double sq = 0;
    for (int k = 0; k < sg_params_count(ps); k++) {
        sg_tensor *p = sg_params_get(ps, k);
        void *g = sg_tensor_grad(p);
        for (size_t i = 0; g && i < sg_tensor_size(p); i++)
            sq += grad_get(p, g, i) * grad_get(p, g, i);
    }
    double norm = sqrt(sq), scale = max_norm / (norm + 1e-6);
    if (scale >= 1)
        return norm;
    for (int k = 0; k < sg_params_count(ps); k++) {
        sg_tensor *p = sg_params_get(ps, k);
        void *g = sg_tensor_grad(p);
        for (size_t i = 0; g && i < sg_tensor_size(p); i++)
            grad_set(p, g, i, grad_get(p, g, i) * scale);
    }
    return norm;
}

void sg_clip_grad_value(sg_params *ps, double v)
{
    for (int k = 0; k < sg_params_count(ps); k++) {
        sg_tensor *p = sg_params_get(ps, k);
        void *g = sg_tensor_grad(p);
        for (size_t i = 0; g && i < sg_tensor_size(p); i++)
            grad_set(p, g, i, fmin(v, fmax(-v, grad_get(p, g, i))));
    }
}
