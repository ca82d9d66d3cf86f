/*
 * reduce.c - reductions along one axis or over everything: sum, mean, max
 * (with argmax), logsumexp, norm. x is viewed as (outer, n, inner) around
 * the axis and y as (outer, inner); a reduction over all elements is the
 * case outer = inner = 1.
 *   sum:       y = sum_i x_i                  dx_i += dy
 *   mean:      y = sum_i x_i / n              dx_i += dy / n
 *   max:       y = x_k, k = first argmax      dx_k += dy
 *   logsumexp: y = m + log sum_i e^(x_i - m)  dx_i += dy e^(x_i - y)
 *   norm:      y = sqrt(sum_i x_i^2)          dx_i += dy x_i / y  (0 if y = 0)
 * iarg: [0] kind, [1] outer, [2] n, [3] inner; aux: argmax (int per y).
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

enum { SUM, MEAN, MAX, LOGSUMEXP, NORM, N_REDUCE };

static void reduce_forward(sg_tensor *out)
{
    const sg_tensor *X = out->src[0];
    size_t outer = (size_t)out->iarg[1], n = (size_t)out->iarg[2], inner = (size_t)out->iarg[3];
    int kind = out->iarg[0], *arg = out->aux;

    SG_TYPED(out->dtype, {
        const T *x = X->data;
        T *y = out->data;
        for (size_t o = 0; o < outer; o++) {
            const T *xo = x + o * n * inner;
            T *yo = y + o * inner;
            if (kind == MAX || kind == LOGSUMEXP) {
                for (size_t j = 0; j < inner; j++) {
                    T m = xo[j];
                    int k = 0;
                    for (size_t i = 1; i < n; i++)
                        if (xo[i * inner + j] > m)
                            m = xo[i * inner + j], k = (int)i;
                    yo[j] = m;
                    if (arg)
                        arg[o * inner + j] = k;
                }
                if (kind == MAX)
                    continue;
                for (size_t j = 0; j < inner; j++) {
                    T m = yo[j], s = 0;
                    if (isinf(m))
                        continue;      /* all -inf (or a +inf): y = m */
                    for (size_t i = 0; i < n; i++)
                        s += exp(xo[i * inner + j] - m);
                    yo[j] = m + log(s);
                }
                continue;
            }
            for (size_t j = 0; j < inner; j++)
                yo[j] = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < inner; j++) {
                    T v = xo[i * inner + j];
                    yo[j] += kind == NORM ? v * v : v;
                }
            for (size_t j = 0; j < inner; j++)
                yo[j] = kind == MEAN ? yo[j] / (T)n : kind == NORM ? sqrt(yo[j]) : yo[j];
        }
    });
}

static void reduce_backward(sg_tensor *out)
{
    sg_tensor *X = out->src[0];
    size_t outer = (size_t)out->iarg[1], n = (size_t)out->iarg[2], inner = (size_t)out->iarg[3];
    int kind = out->iarg[0];
    const int *arg = out->aux;

    if (!X->grad)
        return;
    SG_TYPED(out->dtype, {
        const T *x = X->data, *y = out->data, *dy = out->grad;
        T *dx = X->grad;
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < inner; j++) {
                    size_t xi = (o * n + i) * inner + j, yi = o * inner + j;
                    switch (kind) {
                    case SUM:       dx[xi] += dy[yi]; break;
                    case MEAN:      dx[xi] += dy[yi] / (T)n; break;
                    case MAX:       if ((size_t)arg[yi] == i) dx[xi] += dy[yi]; break;
                    case LOGSUMEXP: dx[xi] += dy[yi] * exp(x[xi] - y[yi]); break;
                    case NORM:      if (y[yi] > 0) dx[xi] += dy[yi] * x[xi] / y[yi]; break;
                    }
                }
    });
}

static const sg_op reduce_ops[] = {
    [SUM]       = {"sum", reduce_forward, reduce_backward, false, 0, 0},
    [MEAN]      = {"mean", reduce_forward, reduce_backward, false, 0, 0},
    [MAX]       = {"max", reduce_forward, reduce_backward, false, 0, 0},
    [LOGSUMEXP] = {"logsumexp", reduce_forward, reduce_backward, false, 0, 0},
    [NORM]      = {"norm", reduce_forward, reduce_backward, false, 0, 0},
};
_Static_assert(sizeof reduce_ops / sizeof reduce_ops[0] == N_REDUCE, "one descriptor per reduction");

/* A private axis value meaning "every element": no real axis is this large. */
#define ALL 1000

static sg_tensor *reduce(sg_tape *t, int kind, sg_tensor *x, int axis, bool keepdim)
{
    const char *name = reduce_ops[kind].name;
    if (!sg_check_args(t, name, 1, x))
        return NULL;
    size_t outer = 1, n = x->size, inner = 1;
    int ndim = 1, shape[SG_MAX_DIMS] = {1, 1, 1, 1};
    if (axis != ALL) {
        int a = sg_axis(t, name, x, axis);
        if (a < 0)
            return NULL;
        sg_split_axis(x, a, &outer, &n, &inner);
        ndim = 0;
        for (int d = 0; d < x->ndim; d++)
            if (d != a)
                shape[ndim++] = x->shape[d];
            else if (keepdim)
                shape[ndim++] = 1;
        if (ndim == 0)
            shape[ndim++] = 1;
    }
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, ndim, shape);
    if (!out)
        return NULL;
    out->src[0] = x, out->nsrc = 1;
    out->iarg[0] = kind, out->iarg[1] = (int)outer, out->iarg[2] = (int)n, out->iarg[3] = (int)inner;
    if (kind == MAX && !(out->aux = sg_arena_alloc(t, out->size * sizeof(int), false)))
        return NULL;
    return sg_record(t, &reduce_ops[kind], out);
}

sg_tensor *sg_sum(sg_tape *t, sg_tensor *x, int axis, bool keepdim) { return reduce(t, SUM, x, axis, keepdim); }
sg_tensor *sg_mean(sg_tape *t, sg_tensor *x, int axis, bool keepdim) { return reduce(t, MEAN, x, axis, keepdim); }
sg_tensor *sg_max(sg_tape *t, sg_tensor *x, int axis, bool keepdim) { return reduce(t, MAX, x, axis, keepdim); }
sg_tensor *sg_logsumexp(sg_tape *t, sg_tensor *x, int axis, bool keepdim) { return reduce(t, LOGSUMEXP, x, axis, keepdim); }
sg_tensor *sg_norm(sg_tape *t, sg_tensor *x, int axis, bool keepdim) { return reduce(t, NORM, x, axis, keepdim); }
sg_tensor *sg_sum_all(sg_tape *t, sg_tensor *x) { return reduce(t, SUM, x, ALL, false); }
sg_tensor *sg_mean_all(sg_tape *t, sg_tensor *x) { return reduce(t, MEAN, x, ALL, false); }
sg_tensor *sg_norm_all(sg_tape *t, sg_tensor *x) { return reduce(t, NORM, x, ALL, false); }

const int *sg_max_argmax(const sg_tensor *y)
{
    return y && y->op == &reduce_ops[MAX] ? y->aux : NULL;
}
