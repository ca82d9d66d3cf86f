/*
 * loss.c - losses computed from logits, so they never take log(0):
 *   cross_entropy: l_r = logsumexp(z_r) - z_r[y_r]         dz_r = w_r (softmax(z_r) - onehot(y_r))
 *   nll_loss:      l_r = -p_r[y_r]                          dp_r[y_r] -= w_r
 *   mse_loss:      l_i = (a_i - b_i)^2                      da_i = w 2 (a_i - b_i) = -db_i
 *   bce_with_logits: l_i = max(z,0) - z y + log(1 + e^-|z|)  dz = w (sigmoid(z) - y), dy = -w z
 * Rows r are the (...) positions of a (...,C) input; rows whose target is the
 * ignore index contribute 0 and get no gradient. w is the upstream gradient
 * times 1 (sum), 1/count (mean, count = rows not ignored) or per row (none).
 * A mean over zero rows is 0, not NaN (PyTorch gives NaN).
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

const char *const sg_reduction_names[] = {"mean", "sum", "none", NULL};

sg_loss_opts sg_loss_defaults(void) { return (sg_loss_opts){.reduction = SG_MEAN, .ignore_index = -100}; }

enum { CE, NLL };

/* Upstream weight of row r: iarg[1] reduction, iarg[5] count. */
static double row_weight(const sg_tensor *out, size_t r)
{
    double dy = sg_tensor_grad_get(out, out->iarg[1] == SG_NONE ? r : 0);
    if (out->iarg[1] == SG_MEAN)
        dy /= out->iarg[5] > 0 ? out->iarg[5] : 1;
    return dy;
}

/* ---- cross_entropy and nll: iarg [0] kind [1] reduction [2] rows [3] C
 *      [4] ignore [5] count; aux: targets (int); aux2: logsumexp per row ---- */

/* Part k of n of the rows' logsumexp (cross_entropy; rows are independent) */
static void lse_part(void *ctx, int k, int n)
{
    const sg_tensor *out = ctx;
    size_t C = (size_t)out->iarg[3], lo, hi;
    int ignore = out->iarg[4];
    const int *y = out->aux;
    double *lse = out->aux2;
    sg_part_range((size_t)out->iarg[2], k, n, &lo, &hi);
    SG_TYPED(out->dtype, {
        const T *z = out->src[0]->data;
        for (size_t r = lo; r < hi; r++) {
            const T *zr = z + r * C;
            if (y[r] == ignore)
                continue;
            T m = zr[0], s = 0;
            for (size_t c = 1; c < C; c++)
                m = zr[c] > m ? zr[c] : m;
            for (size_t c = 0; c < C; c++)
                s += exp(zr[c] - m);
            lse[r] = (double)(m + log(s));
        }
    });
}

/* the rows' logsumexps in parts (the exps are the work), then the losses
 * summed in row order */
static void class_loss_forward(sg_tensor *out)
{
    size_t N = (size_t)out->iarg[2], C = (size_t)out->iarg[3];
    int kind = out->iarg[0], red = out->iarg[1], ignore = out->iarg[4], count = out->iarg[5];
    const int *y = out->aux;
    const double *lse = out->aux2;
    double total = 0;

    if (kind == CE)
        sg_in_parts(N * C * 64, lse_part, out);
    SG_TYPED(out->dtype, {
        const T *z = out->src[0]->data;
        T *l = out->data;
        for (size_t r = 0; r < N; r++) {
            double lr = 0;
            if (y[r] != ignore)
                lr = kind == CE ? lse[r] - (double)z[r * C + (size_t)y[r]] : -(double)z[r * C + (size_t)y[r]];
            if (red == SG_NONE)
                l[r] = (T)lr;
            total += lr;
        }
        if (red != SG_NONE)
            l[0] = (T)(red == SG_MEAN && count > 0 ? total / count : total);
    });
}

/* Part k of n of the rows' gradients */
static void class_grad_part(void *ctx, int k, int n)
{
    const sg_tensor *out = ctx;
    size_t C = (size_t)out->iarg[3], lo, hi;
    int kind = out->iarg[0], ignore = out->iarg[4];
    const int *y = out->aux;
    const double *lse = out->aux2;
    sg_part_range((size_t)out->iarg[2], k, n, &lo, &hi);
    SG_TYPED(out->dtype, {
        const T *z = out->src[0]->data;
        T *dz = out->src[0]->grad;
        for (size_t r = lo; r < hi; r++) {
            if (y[r] == ignore)
                continue;
            T w = (T)row_weight(out, r);
            if (kind == CE)
                for (size_t c = 0; c < C; c++)
                    dz[r * C + c] += w * (T)exp((double)z[r * C + c] - lse[r]);
            dz[r * C + (size_t)y[r]] -= w;
        }
    });
}

static void class_loss_backward(sg_tensor *out)
{
    if (out->src[0]->grad)
        sg_in_parts((size_t)out->iarg[2] * (size_t)out->iarg[3] * (out->iarg[0] == CE ? 64 : 1), class_grad_part, out);
}

static const sg_op cross_entropy_op = {"cross_entropy", class_loss_forward, class_loss_backward, false, 0, 0};
static const sg_op nll_loss_op = {"nll_loss", class_loss_forward, class_loss_backward, false, 0, 0};

static bool reduction_ok(sg_tape *t, const char *name, sg_reduction r)
{
    if (r == SG_MEAN || r == SG_SUM || r == SG_NONE)
        return true;
    sg_fail(t, SG_ERR_ARG, "%s: unknown reduction %d", name, (int)r);
    return false;
}

static sg_tensor *class_loss(sg_tape *t, const sg_op *op, sg_tensor *z, const int *targets, const sg_loss_opts *o)
{
    sg_loss_opts opts = o ? *o : sg_loss_defaults();
    if (!sg_check_args(t, op->name, 1, z) || !reduction_ok(t, op->name, opts.reduction))
        return NULL;
    if (!targets)
        return sg_fail(t, SG_ERR_NULL, "%s: targets is NULL", op->name);
    int C = z->shape[z->ndim - 1];
    size_t N = z->size / (size_t)C;
    int *y = sg_arena_alloc(t, N * sizeof *y, false);
    double *lse = sg_arena_alloc(t, N * sizeof *lse, true);
    if (!y || !lse)
        return NULL;
    int count = 0;
    for (size_t r = 0; r < N; r++) {
        y[r] = targets[r];
        if (y[r] == opts.ignore_index)
            continue;
        if (y[r] < 0 || y[r] >= C) {
            char s[48];
            return sg_fail(t, SG_ERR_ARG, "%s: target %d at row %zu is out of range [0,%d) for logits %s",
                           op->name, y[r], r, C, sg_shape_str(z, s));
        }
        count++;
    }
    int ndim = 1, shape[SG_MAX_DIMS] = {1, 1, 1, 1};
    if (opts.reduction == SG_NONE && z->ndim > 1) {
        ndim = z->ndim - 1;
        memcpy(shape, z->shape, (size_t)ndim * sizeof *shape);
    }
    sg_tensor *out = sg_tensor_alloc(t, z->dtype, ndim, shape);
    if (!out)
        return NULL;
    out->src[0] = z, out->nsrc = 1;
    out->iarg[0] = op == &cross_entropy_op ? CE : NLL;
    out->iarg[1] = opts.reduction, out->iarg[2] = (int)N, out->iarg[3] = C;
    out->iarg[4] = opts.ignore_index, out->iarg[5] = count;
    out->aux = y, out->aux2 = lse;
    return sg_record(t, op, out);
}

sg_tensor *sg_cross_entropy(sg_tape *t, sg_tensor *logits, const int *targets, const sg_loss_opts *o)
{
    return class_loss(t, &cross_entropy_op, logits, targets, o);
}

sg_tensor *sg_nll_loss(sg_tape *t, sg_tensor *logp, const int *targets, const sg_loss_opts *o)
{
    return class_loss(t, &nll_loss_op, logp, targets, o);
}

/* ---- mse and bce_with_logits: element-wise pairs; iarg [0] kind [1] reduction
 *      [5] count (all elements) ------------------------------------------------ */

enum { MSE, BCE };

static void pair_loss_forward(sg_tensor *out)
{
    const sg_tensor *A = out->src[0], *B = out->src[1];
    int kind = out->iarg[0], red = out->iarg[1];
    double total = 0;

    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B->data;
        T *l = out->data;
        for (size_t i = 0; i < A->size; i++) {
            T li;
            if (kind == MSE)
                li = (a[i] - b[i]) * (a[i] - b[i]);
            else  /* a = logits z, b = targets y */
                li = (a[i] > 0 ? a[i] : 0) - a[i] * b[i] + log1p(exp(-fabs(a[i])));
            if (red == SG_NONE)
                l[i] = li;
            total += (double)li;
        }
        if (red != SG_NONE)
            l[0] = (T)(red == SG_MEAN ? total / (double)A->size : total);
    });
}

static void pair_loss_backward(sg_tensor *out)
{
    sg_tensor *A = out->src[0], *B = out->src[1];
    int kind = out->iarg[0];

    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B->data;
        T *da = A->grad, *db = B->grad;
        bool each = out->iarg[1] == SG_NONE;     /* else one weight for all */
        T w = (T)row_weight(out, 0);
        for (size_t i = 0; i < A->size; i++) {
            if (each)
                w = (T)row_weight(out, i);
            if (kind == MSE) {
                T g = 2 * w * (a[i] - b[i]);
                if (da) da[i] += g;
                if (db) db[i] -= g;
            } else {
                T s = a[i] >= 0 ? 1 / (1 + exp(-a[i])) : exp(a[i]) / (1 + exp(a[i]));
                if (da) da[i] += w * (s - b[i]);
                if (db) db[i] -= w * a[i];
            }
        }
    });
}

static const sg_op mse_op = {"mse_loss", pair_loss_forward, pair_loss_backward, false, 0, 0};
static const sg_op bce_op = {"bce_with_logits", pair_loss_forward, pair_loss_backward, false, 0, 0};

static sg_tensor *pair_loss(sg_tape *t, const sg_op *op, sg_tensor *a, sg_tensor *b, sg_reduction r)
{
    char sa[48], sb[48];
    if (!sg_check_args(t, op->name, 2, a, b) || !reduction_ok(t, op->name, r))
        return NULL;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) != 0)
        return sg_fail(t, SG_ERR_SHAPE, "%s: shapes %s and %s differ",
                       op->name, sg_shape_str(a, sa), sg_shape_str(b, sb));
    sg_tensor *out = r == SG_NONE ? sg_tensor_alloc(t, a->dtype, a->ndim, a->shape)
                                  : sg_tensor_alloc(t, a->dtype, 1, (int[]){1});
    if (!out)
        return NULL;
    out->src[0] = a, out->src[1] = b, out->nsrc = 2;
    out->iarg[0] = op == &mse_op ? MSE : BCE, out->iarg[1] = r, out->iarg[5] = (int)a->size;
    return sg_record(t, op, out);
}

sg_tensor *sg_mse_loss(sg_tape *t, sg_tensor *a, sg_tensor *b, sg_reduction r)
{
    return pair_loss(t, &mse_op, a, b, r);
}

sg_tensor *sg_bce_with_logits(sg_tape *t, sg_tensor *logits, sg_tensor *target, sg_reduction r)
{
    return pair_loss(t, &bce_op, logits, target, r);
}
