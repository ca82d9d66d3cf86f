/*
 * norm.c - dropout and layer norm.
 *   dropout:    y = x m / (1 - p),  m ~ Bernoulli(1 - p)    dx += dy m / (1 - p)
 *   layer_norm: over the last axis (D) of each row,
 *               mu = mean(x), var = mean((x - mu)^2), r = 1 / sqrt(var + eps)
 *               xh = (x - mu) r,  y = xh gamma + beta
 *               dxh = dy gamma
 *               dx += r (dxh - mean(dxh) - xh mean(dxh xh))
 *               dgamma += sum_rows dy xh,  dbeta += sum_rows dy
 * The dropout mask is drawn once, when the op is recorded, and kept for the
 * backward, so a gradient check that reseeds its rng sees the same mask.
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

/* ---- dropout: aux = keep flags, farg[0] = p ----------------------------------- */

static void dropout_forward(sg_tensor *out)
{
    const unsigned char *keep = out->aux;
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data;
        T *y = out->data, s = (T)(1.0 / (1.0 - out->farg[0]));
        for (size_t i = 0; i < out->size; i++)
            y[i] = keep[i] ? x[i] * s : 0;
    });
}

static void dropout_backward(sg_tensor *out)
{
    const unsigned char *keep = out->aux;
    SG_TYPED(out->dtype, {
        T *dx = out->src[0]->grad, s = (T)(1.0 / (1.0 - out->farg[0]));
        const T *dy = out->grad;
        if (dx)
            for (size_t i = 0; i < out->size; i++)
                if (keep[i])
                    dx[i] += dy[i] * s;
    });
}

static const sg_op dropout_op = {"dropout", dropout_forward, dropout_backward, false, SG_UNREAD(0) | SG_UNREAD_OUT, 0};

sg_tensor *sg_dropout(sg_tape *t, sg_tensor *x, double p, sg_rng *rng)
{
    if (!sg_check_args(t, "dropout", 1, x))
        return NULL;
    if (!(p >= 0 && p < 1))
        return sg_fail(t, SG_ERR_ARG, "dropout: p = %g is outside [0, 1)", p);
    if (p > 0 && !rng)
        return sg_fail(t, SG_ERR_NULL, "dropout: rng is NULL");
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    unsigned char *keep = out ? sg_arena_alloc(t, x->size, false) : NULL;
    if (!keep)
        return NULL;
    for (size_t i = 0; i < x->size; i++)
        keep[i] = p == 0 || sg_rng_uniform(rng) >= p;
    out->src[0] = x, out->nsrc = 1;
    out->farg[0] = p;
    out->aux = keep;
    return sg_record(t, &dropout_op, out);
}

/* ---- layer_norm: src x, gamma, beta (either may be NULL); farg[0] eps;
 *      iarg[0] rows, iarg[1] D; aux: xh (T per element); aux2: r (T per row) ---- */

/* Sum of n values in 8 interleaved partial sums: a fixed order (so results
 * are deterministic), which the compiler can vectorise, unlike one running
 * sum (that would need reassociation). */
#define SUM8(T, n, EXPR, result)                                                \
    do {                                                                        \
        T acc_[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                   \
        size_t j_ = 0;                                                          \
        for (; j_ + 8 <= (n); j_ += 8)                                          \
            for (size_t k_ = 0; k_ < 8; k_++) {                                 \
                size_t j = j_ + k_;                                             \
                acc_[k_] += (EXPR);                                             \
            }                                                                   \
        for (; j_ < (n); j_++) {                                                \
            size_t j = j_;                                                      \
            acc_[0] += (EXPR);                                                  \
        }                                                                       \
        result = ((acc_[0] + acc_[4]) + (acc_[1] + acc_[5])) +                  \
                 ((acc_[2] + acc_[6]) + (acc_[3] + acc_[7]));                   \
    } while (0)

SG_HOT static void layer_norm_forward(sg_tensor *out)
{
    size_t R = (size_t)out->iarg[0], D = (size_t)out->iarg[1];
    const sg_tensor *G = out->src[1], *Bt = out->src[2];
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data, *g = G ? G->data : NULL, *b = Bt ? Bt->data : NULL;
        T *y = out->data, *xh = out->aux, *r = out->aux2, eps = (T)out->farg[0];
        for (size_t i = 0; i < R; i++) {
            const T *xi = x + i * D;
            T mu, var;
            SUM8(T, D, xi[j], mu);
            mu /= (T)D;
            SUM8(T, D, (xi[j] - mu) * (xi[j] - mu), var);
            var /= (T)D;
            r[i] = 1 / sqrt(var + eps);
            for (size_t j = 0; j < D; j++) {
                T h = (xi[j] - mu) * r[i];
                xh[i * D + j] = h;
                y[i * D + j] = h * (g ? g[j] : 1) + (b ? b[j] : 0);
            }
        }
    });
}

SG_HOT static void layer_norm_backward(sg_tensor *out)
{
    size_t R = (size_t)out->iarg[0], D = (size_t)out->iarg[1];
    sg_tensor *X = out->src[0], *G = out->src[1], *Bt = out->src[2];
    SG_TYPED(out->dtype, {
        const T *dy = out->grad, *xh = out->aux, *r = out->aux2, *g = G ? G->data : NULL;
        T *dx = X->grad, *dg = G ? G->grad : NULL, *db = Bt ? Bt->grad : NULL;
        for (size_t i = 0; i < R; i++) {
            const T *dyi = dy + i * D, *hi = xh + i * D;
            if (dg || db)
                for (size_t j = 0; j < D; j++) {
                    if (dg) dg[j] += dyi[j] * hi[j];
                    if (db) db[j] += dyi[j];
                }
            if (!dx)
                continue;
            T m1, m2;               /* mean(dxh), mean(dxh xh) */
            SUM8(T, D, dyi[j] * (g ? g[j] : 1), m1);
            SUM8(T, D, dyi[j] * (g ? g[j] : 1) * hi[j], m2);
            m1 /= (T)D, m2 /= (T)D;
            for (size_t j = 0; j < D; j++) {
                T dh = dyi[j] * (g ? g[j] : 1);
                dx[i * D + j] += r[i] * (dh - m1 - hi[j] * m2);
            }
        }
    });
}

static const sg_op layer_norm_op = {"layer_norm", layer_norm_forward, layer_norm_backward, false, 0, 0};

sg_tensor *sg_layer_norm(sg_tape *t, sg_tensor *x, sg_tensor *gamma, sg_tensor *beta, double eps)
{
    char sx[48], sp[48];
    if (!sg_check_args(t, "layer_norm", 1, x) || (gamma && !sg_check_args(t, "layer_norm", 2, x, gamma)) ||
        (beta && !sg_check_args(t, "layer_norm", 2, x, beta)))
        return NULL;
    int D = x->shape[x->ndim - 1];
    sg_tensor *ps[2] = {gamma, beta};
    for (int k = 0; k < 2; k++)
        if (ps[k] && (ps[k]->ndim != 1 || ps[k]->shape[0] != D))
            return sg_fail(t, SG_ERR_SHAPE, "layer_norm: %s has shape %s, expected (%d) for input %s",
                           k ? "beta" : "gamma", sg_shape_str(ps[k], sp), D, sg_shape_str(x, sx));
    if (!(eps > 0))
        return sg_fail(t, SG_ERR_ARG, "layer_norm: eps = %g must be positive", eps);
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    if (!out)
        return NULL;
    size_t R = x->size / (size_t)D, es = sg_dtype_size(x->dtype);
    if (!(out->aux = sg_arena_alloc(t, x->size * es, false)) || !(out->aux2 = sg_arena_alloc(t, R * es, false)))
        return NULL;
    out->src[0] = x, out->src[1] = gamma, out->src[2] = beta, out->nsrc = 3;
    out->iarg[0] = (int)R, out->iarg[1] = D;
    out->farg[0] = eps;
    return sg_record(t, &layer_norm_op, out);
}
