/*
 * softmax.c - softmax and log-softmax along an axis, with an optional mask.
 * Rows are the lines along the axis, x viewed as (outer, n, inner).
 *   softmax:     y_i = e^(x_i - m) / s,  s = sum_j e^(x_j - m)
 *                dx_i += y_i (dy_i - sum_j y_j dy_j)
 *   log_softmax: y_i = x_i - m - log s
 *                dx_i += dy_i - e^(y_i) sum_j dy_j
 * m is the row's max, so no exp overflows. With a mask, the sums run over the
 * kept positions only; masked positions output 0 and get no gradient, and a
 * row with nothing kept is all zeros (never NaN).
 * iarg: [0] log?, [1] outer, [2] n, [3] inner; aux: keep flags (uint8) or NULL.
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

/* f32, last axis, no mask: the common case in attention and LM heads.
 * Same math, with the exp vectorised (sg_expf; arguments x - m <= 0 are
 * clamped at -87 in a pass of their own, NaN sent there too, which keeps
 * both loops vectorised; the exp's pass gives NaN back where x - m is NaN). */
SG_HOT static void softmax_rows_f32(const float *x, float *y, size_t rows, size_t n, bool logp)
{
    for (size_t r = 0; r < rows; r++, x += n, y += n) {
        float m = x[0], s = 0;
        for (size_t i = 1; i < n; i++)
            m = x[i] > m ? x[i] : m;
        for (size_t i = 0; i < n; i++) {
            float a = x[i] - m;
            y[i] = a >= -87.0f ? a : -87.0f;
        }
        for (size_t i = 0; i < n; i++) {
            float a = x[i] - m;
            y[i] = a == a ? sg_expf(y[i]) : a;
        }
        for (size_t i = 0; i < n; i++)
            s += y[i];
        if (logp) {
            float ls = logf(s);
            for (size_t i = 0; i < n; i++)
                y[i] = x[i] - m - ls;
        } else {
            float inv = 1 / s;
            for (size_t i = 0; i < n; i++)
                y[i] *= inv;
        }
    }
}

static void softmax_forward(sg_tensor *out)
{
    size_t outer = (size_t)out->iarg[1], n = (size_t)out->iarg[2], inner = (size_t)out->iarg[3];
    bool logp = out->iarg[0];
    const unsigned char *keep = out->aux;

    if (out->dtype == SG_F32 && inner == 1 && !keep && n > 0) {
        softmax_rows_f32(out->src[0]->data, out->data, outer, n, logp);
        return;
    }

    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data;
        T *y = out->data;
        for (size_t o = 0; o < outer; o++)
            for (size_t j = 0; j < inner; j++) {
                size_t base = o * n * inner + j;
                T m = -INFINITY, s = 0;
                for (size_t i = 0; i < n; i++) {
                    size_t k = base + i * inner;
                    if ((!keep || keep[k]) && x[k] > m)
                        m = x[k];
                }
                if (m == -INFINITY) {          /* nothing kept: zeros */
                    for (size_t i = 0; i < n; i++)
                        y[base + i * inner] = 0;
                    continue;
                }
                for (size_t i = 0; i < n; i++) {
                    size_t k = base + i * inner;
                    T e = (!keep || keep[k]) ? exp(x[k] - m) : 0;
                    y[k] = e;
                    s += e;
                }
                T ls = log(s);
                for (size_t i = 0; i < n; i++) {
                    size_t k = base + i * inner;
                    if (keep && !keep[k])
                        y[k] = 0;
                    else
                        y[k] = logp ? x[k] - m - ls : y[k] / s;
                }
            }
    });
}

/* f32, last axis, no mask: dx = y (dy - sum y dy) (softmax) or
 * dy - e^y sum dy (log-softmax); the sum in 8 fixed partial sums, which
 * vectorises and stays deterministic. */
SG_HOT static void softmax_rows_backward_f32(const float *y, const float *dy, float *dx, size_t rows, size_t n,
                                             bool logp)
{
    for (size_t r = 0; r < rows; r++, y += n, dy += n, dx += n) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (size_t k = 0; k < 8; k++)
                acc[k] += logp ? dy[i + k] : y[i + k] * dy[i + k];
        for (; i < n; i++)
            acc[0] += logp ? dy[i] : y[i] * dy[i];
        float dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        if (logp) {
            for (i = 0; i < n; i++) {
                float a = y[i] >= -87.0f ? y[i] : -87.0f, e = sg_expf(a);
                dx[i] += dy[i] - (y[i] == y[i] ? e : y[i]) * dot;
            }
        } else {
            for (i = 0; i < n; i++)
                dx[i] += y[i] * (dy[i] - dot);
        }
    }
}

static void softmax_backward(sg_tensor *out)
{
    size_t outer = (size_t)out->iarg[1], n = (size_t)out->iarg[2], inner = (size_t)out->iarg[3];
    bool logp = out->iarg[0];
    const unsigned char *keep = out->aux;

    if (!out->src[0]->grad)
        return;
    if (out->dtype == SG_F32 && inner == 1 && !keep && !logp) {
        softmax_rows_backward_f32(out->data, out->grad, out->src[0]->grad, outer, n, logp);
        return;
    }
    SG_TYPED(out->dtype, {
        const T *y = out->data, *dy = out->grad;
        T *dx = out->src[0]->grad;
        for (size_t o = 0; o < outer; o++)
            for (size_t j = 0; j < inner; j++) {
                size_t base = o * n * inner + j;
                T dot = 0;
                for (size_t i = 0; i < n; i++) {
                    size_t k = base + i * inner;
                    if (!keep || keep[k])
                        dot += logp ? dy[k] : y[k] * dy[k];
                }
                for (size_t i = 0; i < n; i++) {
                    size_t k = base + i * inner;
                    if (keep && !keep[k])
                        continue;
                    dx[k] += logp ? dy[k] - exp(y[k]) * dot : y[k] * (dy[k] - dot);
                }
            }
    });
}

static const sg_op softmax_op = {"softmax", softmax_forward, softmax_backward, false, SG_UNREAD(0), 0};
static const sg_op log_softmax_op = {"log_softmax", softmax_forward, softmax_backward, false, SG_UNREAD(0), 0};

static sg_tensor *softmax(sg_tape *t, const sg_op *op, sg_tensor *x, int axis, sg_tensor *mask)
{
    if (!sg_check_args(t, op->name, mask ? 2 : 1, x, mask))
        return NULL;
    int a = sg_axis(t, op->name, x, axis);
    if (a < 0)
        return NULL;
    unsigned char *keep = NULL;
    if (mask && !(keep = sg_expand_mask(t, op->name, x, mask)))
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    if (!out)
        return NULL;
    size_t outer, n, inner;
    sg_split_axis(x, a, &outer, &n, &inner);
    out->src[0] = x, out->nsrc = 1;
    out->iarg[0] = op == &log_softmax_op;
    out->iarg[1] = (int)outer, out->iarg[2] = (int)n, out->iarg[3] = (int)inner;
    out->aux = keep;
    return sg_record(t, op, out);
}

sg_tensor *sg_softmax(sg_tape *t, sg_tensor *x, int axis, sg_tensor *mask)
{
    return softmax(t, &softmax_op, x, axis, mask);
}

sg_tensor *sg_log_softmax(sg_tape *t, sg_tensor *x, int axis, sg_tensor *mask)
{
    return softmax(t, &log_softmax_op, x, axis, mask);
}
