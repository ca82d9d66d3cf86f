/*
 * optim.c - SGD, Adam, AdamW, RMSProp and Adagrad: each step is one pass
 * over the parameter collection, element by element, with the update rules
 * written in seqgrad/optim.h (those of torch.optim). State is double.
 */
#include <math.h>
#include <stdlib.h>

#include "../core/internal.h"
#include "seqgrad/optim.h"

const char *const sg_optim_kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", NULL};

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
    for (int i = 0; i < o->n; i++) {          /* m or v is NULL if memory ran out making it */
        free(o->m ? o->m[i] : NULL);
        free(o->v ? o->v[i] : NULL);
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
    if (!ps)
        return NULL;
    sg_optim_opts d;
    if (!opts)
        d = sg_optim_defaults(SG_SGD), opts = &d;
    if (!opts_ok(opts)) {
        sg_params_fail(ps, SG_ERR_ARG, "optim: invalid options (kind %d, lr %g, momentum %g, weight_decay %g, eps %g, "
                       "beta1 %g, beta2 %g, alpha %g, nesterov %d): lr > 0, betas and alpha in [0,1), the rest >= 0, "
                       "nesterov needs momentum", (int)opts->kind, opts->lr, opts->momentum, opts->weight_decay,
                       opts->eps, opts->beta1, opts->beta2, opts->alpha, opts->nesterov);
        return NULL;
    }
    sg_optim *o = calloc(1, sizeof *o);
    if (!o) {
        sg_params_fail(ps, SG_ERR_NOMEM, "optim: out of memory");
        return NULL;
    }
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
    sg_params_fail(ps, SG_ERR_NOMEM, "optim: out of memory for the state of %d parameters", o->n);
    sg_optim_free(o);
    return NULL;
}

long sg_optim_steps(const sg_optim *o) { return o ? o->steps : 0; }

void sg_optim_set_steps(sg_optim *o, long steps)
{
    if (o && steps >= 0)
        o->steps = steps;
}

double *sg_optim_state(sg_optim *o, int i, int slot)
{
    if (!o || i < 0 || i >= o->n || slot < 0 || slot > 1)
        return NULL;
    return slot ? o->v[i] : o->m[i];
}

/* One loop per kind over n elements of parameter P (type T) with gradient
 * G; m, v its state. c1, c2 = 1 - beta^t are Adam's bias corrections. The
 * kind is decided once per parameter, so each loop is straight-line code. */
#define UPDATE_LOOP(T, P, G, n)                                                     \
    do {                                                                            \
        T *p_ = (P);                                                                \
        const T *g_ = (G);                                                          \
        double wd = o->o.weight_decay, mu = o->o.momentum, eps = o->o.eps;          \
        switch (o->o.kind) {                                                        \
        case SG_SGD:                                                                \
            for (size_t j = 0; j < (n); j++) {                                      \
                double g = g_[j] + wd * p_[j];                                      \
                if (m) {                                                            \
                    m[j] = t == 1 ? g : mu * m[j] + g;                              \
                    g = o->o.nesterov ? g + mu * m[j] : m[j];                       \
                }                                                                   \
                p_[j] = (T)(p_[j] - lr * g);                                        \
            }                                                                       \
            break;                                                                  \
        case SG_ADAM:                                                               \
        case SG_ADAMW:                                                              \
            for (size_t j = 0; j < (n); j++) {                                      \
                double p = p_[j], g = g_[j];                                        \
                if (o->o.kind == SG_ADAMW)                                          \
                    p *= 1 - lr * wd;                                               \
                else                                                                \
                    g += wd * p;                                                    \
                m[j] = b1 * m[j] + (1 - b1) * g;                                    \
                v[j] = b2 * v[j] + (1 - b2) * g * g;                                \
                p_[j] = (T)(p - lr * (m[j] / c1) / (sqrt(v[j] / c2) + eps));        \
            }                                                                       \
            break;                                                                  \
        case SG_RMSPROP:                                                            \
            for (size_t j = 0; j < (n); j++) {                                      \
                double g = g_[j] + wd * p_[j];                                      \
                v[j] = o->o.alpha * v[j] + (1 - o->o.alpha) * g * g;                \
                double u = g / (sqrt(v[j]) + eps);                                  \
                if (m)                                                              \
                    u = m[j] = mu * m[j] + u;                                       \
                p_[j] = (T)(p_[j] - lr * u);                                        \
            }                                                                       \
            break;                                                                  \
        case SG_ADAGRAD:                                                            \
            for (size_t j = 0; j < (n); j++) {                                      \
                double g = g_[j] + wd * p_[j];                                      \
                v[j] += g * g;                                                      \
                p_[j] = (T)(p_[j] - lr * g / (sqrt(v[j]) + eps));                   \
            }                                                                       \
            break;                                                                  \
        }                                                                           \
    } while (0)

/* One step's arguments, for step_part. */
typedef struct {
    sg_optim *o;
    long t;
    double lr, b1, b2, c1, c2;
} step_args;

/* Part k of n of every parameter's elements updated: elements are
 * independent, so any split gives the same bits. */
static void step_part(void *ctx, int k, int n)
{
    const step_args *a = ctx;
    sg_optim *o = a->o;
    long t = a->t;
    double lr = a->lr, b1 = a->b1, b2 = a->b2, c1 = a->c1, c2 = a->c2;
    for (int i = 0; i < o->n; i++) {
        sg_tensor *p = sg_params_get(o->ps, i);
        void *grad = sg_tensor_grad(p);
        if (!grad)
            continue;
        size_t lo, hi;
        sg_part_range(sg_tensor_size(p), k, n, &lo, &hi);
        double *m = o->m[i] ? o->m[i] + lo : NULL, *v = o->v[i] ? o->v[i] + lo : NULL;
        if (sg_tensor_dtype(p) == SG_F32)
            UPDATE_LOOP(float, (float *)sg_tensor_data(p) + lo, (const float *)grad + lo, hi - lo);
        else
            UPDATE_LOOP(double, (double *)sg_tensor_data(p) + lo, (const double *)grad + lo, hi - lo);
    }
}

void sg_optim_step(sg_optim *o, double lr)
{
    if (!o)
        return;
    if (lr < 0)
        lr = o->o.lr;
    step_args a = {.o = o, .t = ++o->steps, .lr = lr, .b1 = o->o.beta1, .b2 = o->o.beta2};
    a.c1 = 1 - pow(a.b1, (double)a.t), a.c2 = 1 - pow(a.b2, (double)a.t);
    size_t elements = 0;
    for (int i = 0; i < o->n; i++)
        elements += sg_tensor_size(sg_params_get(o->ps, i));
    /* an element's update costs about what zeroing 64 bytes does */
    sg_in_parts(elements * 64, step_part, &a);
}
