/*
 * optim.c - SGD, Adam, AdamW, RMSProp and Adagrad: each step is one pass
 * over the parameter collection, element by element, with the update rules
 * written in seqgrad/optim.h (those of torch.optim). State is double.
 */
#include <math.h>
#include <stdlib.h>

#include "seqgrad/optim.h"

struct sg_optim {
    sg_optim_opts o;
    sg_params *ps;
    int n;
    double **m, **v;        /* per parameter: first / second moment (or momentum / square sums) */
    long steps;
};

sg_optim_opts sg_optim_defaults(sg_optim_kind kind)
{
    sg_optim_opts o = {.kind = kind, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .alpha = 0.99, .eps = 1e-8};
    if (kind == SG_ADAM || kind == SG_ADAMW)
        o.lr = 1e-3;
    if (kind == SG_ADAMW)
        o.weight_decay = 0.01;
    if (kind == SG_ADAGRAD)
        o.eps = 1e-10;
    return o;
}

const char *sg_optim_name(sg_optim_kind kind)
{
    static const char *names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    return (unsigned)kind < 5 ? names[kind] : "?";
}

void sg_optim_free(sg_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        free(o->m[i]);
        free(o->v[i]);
    }
    free(o->m);
    free(o->v);
    free(o);
}

static bool opts_ok(const sg_optim_opts *o)
{
    return (unsigned)o->kind <= SG_ADAGRAD && o->lr > 0 && o->momentum >= 0 && o->weight_decay >= 0 &&
           o->eps >= 0 && o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->alpha >= 0 &&
           o->alpha < 1 && !(o->nesterov && o->momentum == 0);
}

sg_optim *sg_optim_new(sg_params *ps, const sg_optim_opts *opts)
{
    if (!ps || !opts || !opts_ok(opts))
        return NULL;
    sg_optim *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->o = *opts, o->ps = ps, o->n = sg_params_count(ps);
    o->m = calloc((size_t)o->n + 1, sizeof *o->m);
    o->v = calloc((size_t)o->n + 1, sizeof *o->v);
    if (!o->m || !o->v)
        goto fail;
    bool need_m = opts->kind == SG_ADAM || opts->kind == SG_ADAMW || opts->momentum > 0;
    bool need_v = opts->kind != SG_SGD;
    for (int i = 0; i < o->n; i++) {
        size_t size = sg_tensor_size(sg_params_get(ps, i));
        if ((need_m && !(o->m[i] = calloc(size, sizeof(double)))) ||
            (need_v && !(o->v[i] = calloc(size, sizeof(double)))))
            goto fail;
    }
    return o;
fail:
    sg_optim_free(o);
    return NULL;
}

long sg_optim_steps(const sg_optim *o) { return o->steps; }
void sg_optim_set_steps(sg_optim *o, long steps) { o->steps = steps; }

double *sg_optim_state(sg_optim *o, int i, int slot)
{
    if (i < 0 || i >= o->n || slot < 0 || slot > 1)
        return NULL;
    return slot ? o->v[i] : o->m[i];
}

/* the update of one element: p and g in, new p out; m, v its state;
 * c1, c2 = 1 - beta^t, Adam's bias corrections for this step */
static inline double update(const sg_optim_opts *o, double lr, long t, double c1, double c2, double p, double g,
                            double *m, double *v)
{
    if (o->kind == SG_ADAMW)
        p *= 1 - lr * o->weight_decay;
    else
        g += o->weight_decay * p;
    switch (o->kind) {
    case SG_SGD:
        if (o->momentum > 0) {
            *m = t == 1 ? g : o->momentum * *m + g;
            g = o->nesterov ? g + o->momentum * *m : *m;
        }
        return p - lr * g;
    case SG_ADAM:
    case SG_ADAMW: {
        *m = o->beta1 * *m + (1 - o->beta1) * g;
        *v = o->beta2 * *v + (1 - o->beta2) * g * g;
        double mh = *m / c1, vh = *v / c2;
        return p - lr * mh / (sqrt(vh) + o->eps);
    }
    case SG_RMSPROP: {
        *v = o->alpha * *v + (1 - o->alpha) * g * g;
        double u = g / (sqrt(*v) + o->eps);
        if (o->momentum > 0)
            u = *m = o->momentum * *m + u;
        return p - lr * u;
    }
    case SG_ADAGRAD:
        *v += g * g;
        return p - lr * g / (sqrt(*v) + o->eps);
    }
    return p;
}

void sg_optim_step(sg_optim *o, double lr)
{
    double scratch = 0;
    if (lr < 0)
        lr = o->o.lr;
    long t = ++o->steps;
    double c1 = 1 - pow(o->o.beta1, (double)t), c2 = 1 - pow(o->o.beta2, (double)t);
    for (int i = 0; i < o->n; i++) {
        sg_tensor *p = sg_params_get(o->ps, i);
        void *data = sg_tensor_data(p), *grad = sg_tensor_grad(p);
        if (!grad)
            continue;
        size_t size = sg_tensor_size(p);
        bool f32 = sg_tensor_dtype(p) == SG_F32;
        for (size_t j = 0; j < size; j++) {
            double *m = o->m[i] ? &o->m[i][j] : &scratch, *v = o->v[i] ? &o->v[i][j] : &scratch;
            if (f32) {
                float *pd = data;
                pd[j] = (float)update(&o->o, lr, t, c1, c2, pd[j], ((float *)grad)[j], m, v);
            } else {
                double *pd = data;
                pd[j] = update(&o->o, lr, t, c1, c2, pd[j], ((double *)grad)[j], m, v);
            }
        }
    }
}
