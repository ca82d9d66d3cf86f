/*
 * elementwise.c - a + b, a - b, a * b, a / b with NumPy broadcasting, and the
 * affine maps of one tensor (neg, add_scalar, scale, one_minus), and lerp.
 * Forward assigns; backward accumulates into each source through the same
 * broadcast strides, which sums the gradient over stretched dimensions.
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

enum { ADD, SUB, MUL, DIV };

/* ---- binary: y = a (op) b ---------------------------------------------------
 *   add: da += dy        db += dy
 *   sub: da += dy        db -= dy
 *   mul: da += dy b      db += dy a
 *   div: da += dy / b    db -= dy a / b^2                                      */

/* The broadcast loop handles every case; these flat loops (which vectorise)
 * handle the common ones: same shapes, and a trailing row (a bias, a gain)
 * combined with every row along the last axis. Returns the row length for
 * the second, 0 if neither. */
static size_t flat_case(const sg_tensor *out, const sg_tensor *A, const sg_tensor *B, bool *same)
{
    *same = A->size == out->size && B->size == out->size;
    if (*same || A->size != out->size)
        return 0;
    size_t n = B->size;
    return B->shape[B->ndim - 1] == (int)n && out->shape[out->ndim - 1] == (int)n ? n : 0;
}

SG_HOT static void binary_forward(sg_tensor *out)
{
    const sg_tensor *A = out->src[0], *B = out->src[1];
    bool same;
    size_t row = flat_case(out, A, B, &same);
    if (same || row) {
        SG_TYPED(out->dtype, {
            size_t n = same ? out->size : row;
            for (size_t o = 0; o < out->size; o += n) {
                const T *a = (const T *)A->data + o, *b = (const T *)B->data + (same ? o : 0);
                T *y = (T *)out->data + o;
                switch (out->iarg[0]) {
                case ADD: for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i]; break;
                case SUB: for (size_t i = 0; i < n; i++) y[i] = a[i] - b[i]; break;
                case MUL: for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i]; break;
                case DIV: for (size_t i = 0; i < n; i++) y[i] = a[i] / b[i]; break;
                }
            }
        });
        return;
    }
    sg_bcast g;
    sg_bcast_init(&g, out, A, B);
    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B->data;
        T *y = out->data;
        switch (out->iarg[0]) {
        case ADD: SG_FOR_BCAST(g, y[o] = a[ia] + b[ib];); break;
        case SUB: SG_FOR_BCAST(g, y[o] = a[ia] - b[ib];); break;
        case MUL: SG_FOR_BCAST(g, y[o] = a[ia] * b[ib];); break;
        case DIV: SG_FOR_BCAST(g, y[o] = a[ia] / b[ib];); break;
        }
    });
}

SG_HOT static void binary_backward(sg_tensor *out)
{
    const sg_tensor *A = out->src[0], *B = out->src[1];
    bool same;
    size_t row = flat_case(out, A, B, &same);
    if (same || row) {       /* a row's gradient sums over the rows, in row order */
        /* A has out's shape: an empty da is assigned; so is db if B has it too */
        bool fa = A->grad && sg_grad_fresh(A), fb = B->grad && same && sg_grad_fresh(B);
        if (B->grad && !same)
            sg_grad_ready(out->src[1]);
        SG_TYPED(out->dtype, {
            size_t n = same ? out->size : row;
            int op = out->iarg[0];
            for (size_t o = 0; o < out->size; o += n) {
                /* add and sub read no data: theirs may have been given back */
                const T *a = op == ADD || op == SUB ? NULL : (const T *)A->data + o;
                const T *b = op == ADD || op == SUB ? NULL : (const T *)B->data + (same ? o : 0);
                const T *g = (const T *)out->grad + o;
                T *da = A->grad ? (T *)A->grad + o : NULL, *db = B->grad ? (T *)B->grad + (same ? o : 0) : NULL;
                if (da && (op == ADD || op == SUB)) for (size_t i = 0; i < n; i++) da[i] = (fa ? 0 : da[i]) + g[i];
                if (da && op == MUL) for (size_t i = 0; i < n; i++) da[i] = (fa ? 0 : da[i]) + g[i] * b[i];
                if (da && op == DIV) for (size_t i = 0; i < n; i++) da[i] = (fa ? 0 : da[i]) + g[i] / b[i];
                if (db && op == ADD) for (size_t i = 0; i < n; i++) db[i] = (fb ? 0 : db[i]) + g[i];
                if (db && op == SUB) for (size_t i = 0; i < n; i++) db[i] = (fb ? 0 : db[i]) - g[i];
                if (db && op == MUL) for (size_t i = 0; i < n; i++) db[i] = (fb ? 0 : db[i]) + g[i] * a[i];
                if (db && op == DIV) for (size_t i = 0; i < n; i++) db[i] = (fb ? 0 : db[i]) - g[i] * a[i] / (b[i] * b[i]);
            }
        });
        return;
    }
    for (int k = 0; k < 2; k++)   /* broadcast: sums into both, from zero */
        if (out->src[k]->grad)
            sg_grad_ready(out->src[k]);
    sg_bcast g;
    sg_bcast_init(&g, out, A, B);
    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B->data, *dy = out->grad;
        T *da = A->grad, *db = B->grad;
        int op = out->iarg[0];
        if (da) {
            if (op == ADD || op == SUB) SG_FOR_BCAST(g, da[ia] += dy[o];);
            else if (op == MUL)         SG_FOR_BCAST(g, da[ia] += dy[o] * b[ib];);
            else                        SG_FOR_BCAST(g, da[ia] += dy[o] / b[ib];);
        }
        if (db) {
            if (op == ADD)      SG_FOR_BCAST(g, db[ib] += dy[o];);
            else if (op == SUB) SG_FOR_BCAST(g, db[ib] -= dy[o];);
            else if (op == MUL) SG_FOR_BCAST(g, db[ib] += dy[o] * a[ia];);
            else                SG_FOR_BCAST(g, db[ib] -= dy[o] * a[ia] / (b[ib] * b[ib]););
        }
    });
}

static const sg_op binary_ops[] = {
    [ADD] = {"add", binary_forward, binary_backward, true, SG_UNREAD(0) | SG_UNREAD(1) | SG_UNREAD_OUT, SG_ROWS_FLAT},
    [SUB] = {"sub", binary_forward, binary_backward, true, SG_UNREAD(0) | SG_UNREAD(1) | SG_UNREAD_OUT, SG_ROWS_FLAT},
    [MUL] = {"mul", binary_forward, binary_backward, true, SG_UNREAD_OUT, SG_ROWS_FLAT},
    [DIV] = {"div", binary_forward, binary_backward, true, SG_UNREAD_OUT, SG_ROWS_FLAT},
};
_Static_assert(sizeof binary_ops / sizeof binary_ops[0] == DIV + 1, "one descriptor per binary op");

static sg_tensor *binary(sg_tape *t, int op, sg_tensor *a, sg_tensor *b)
{
    const char *name = binary_ops[op].name;
    int ndim, shape[SG_MAX_DIMS];
    if (!sg_check_args(t, name, 2, a, b) || !sg_broadcast_shape(t, name, a, b, &ndim, shape))
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, a->dtype, ndim, shape);
    if (!out)
        return NULL;
    out->src[0] = a, out->src[1] = b, out->nsrc = 2;
    out->iarg[0] = op;
    return sg_record(t, &binary_ops[op], out);
}

sg_tensor *sg_add(sg_tape *t, sg_tensor *a, sg_tensor *b) { return binary(t, ADD, a, b); }
sg_tensor *sg_sub(sg_tape *t, sg_tensor *a, sg_tensor *b) { return binary(t, SUB, a, b); }
sg_tensor *sg_mul(sg_tape *t, sg_tensor *a, sg_tensor *b) { return binary(t, MUL, a, b); }
sg_tensor *sg_div(sg_tape *t, sg_tensor *a, sg_tensor *b) { return binary(t, DIV, a, b); }

/* ---- affine: y = c1 x + c0,  dx += c1 dy --------------------------------------
 *   neg: c1 = -1, c0 = 0    add_scalar: 1, c    scale: c, 0    one_minus: -1, 1  */

SG_HOT static void affine_forward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data;
        T *y = out->data;
        T c1 = (T)out->farg[0], c0 = (T)out->farg[1];
        for (size_t i = 0; i < out->size; i++)
            y[i] = c1 * x[i] + c0;
    });
}

SG_HOT static void affine_backward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        T *dx = out->src[0]->grad;
        const T *dy = out->grad;
        T c1 = (T)out->farg[0];
        bool fresh = dx && sg_grad_fresh(out->src[0]);
        if (dx)
            for (size_t i = 0; i < out->size; i++)
                dx[i] = (fresh ? 0 : dx[i]) + c1 * dy[i];
    });
}

static const sg_op neg_op = {"neg", affine_forward, affine_backward, true, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_FLAT};
static const sg_op add_scalar_op = {"add_scalar", affine_forward, affine_backward, true, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_FLAT};
static const sg_op scale_op = {"scale", affine_forward, affine_backward, true, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_FLAT};
static const sg_op one_minus_op = {"one_minus", affine_forward, affine_backward, true, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_FLAT};

static sg_tensor *affine(sg_tape *t, const sg_op *op, sg_tensor *x, double c1, double c0)
{
    if (!sg_check_args(t, op->name, 1, x))
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    if (!out)
        return NULL;
    out->src[0] = x, out->nsrc = 1;
    out->farg[0] = c1, out->farg[1] = c0;
    return sg_record(t, op, out);
}

sg_tensor *sg_neg(sg_tape *t, sg_tensor *x) { return affine(t, &neg_op, x, -1.0, 0.0); }
sg_tensor *sg_add_scalar(sg_tape *t, sg_tensor *x, double c) { return affine(t, &add_scalar_op, x, 1.0, c); }
sg_tensor *sg_scale(sg_tape *t, sg_tensor *x, double c) { return affine(t, &scale_op, x, c, 0.0); }
sg_tensor *sg_one_minus(sg_tape *t, sg_tensor *x) { return affine(t, &one_minus_op, x, -1.0, 1.0); }

/* ---- lerp: y = a + w (b - a), three tensors of one shape -----------------------
 *   da += dy (1 - w)     db += dy w     dw += dy (b - a)
 * A gated blend (a GRU's (1 - z) n + z h is lerp(n, h, z)) as one op: one
 * pass over memory instead of four (one_minus, two mul, add), and nothing
 * kept for backward but a, b and w, which such a cell keeps anyway. */

SG_HOT static void lerp_forward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *a = out->src[0]->data, *b = out->src[1]->data, *w = out->src[2]->data;
        T *y = out->data;
        for (size_t i = 0; i < out->size; i++)
            y[i] = a[i] + w[i] * (b[i] - a[i]);
    });
}

SG_HOT static void lerp_backward(sg_tensor *out)
{
    sg_tensor *A = out->src[0], *B = out->src[1], *W = out->src[2];
    /* an empty gradient is assigned (not when the tensor is two of the
     * sources: the tape has zeroed it, and the terms add) */
    bool fa = A->grad && sg_grad_fresh(A), fb = B->grad && sg_grad_fresh(B), fw = W->grad && sg_grad_fresh(W);
    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B->data, *w = W->data, *g = out->grad;
        T *da = A->grad, *db = B->grad, *dw = W->grad;
        size_t n = out->size;
        if (da) for (size_t i = 0; i < n; i++) da[i] = (fa ? 0 : da[i]) + g[i] * (1 - w[i]);
        if (db) for (size_t i = 0; i < n; i++) db[i] = (fb ? 0 : db[i]) + g[i] * w[i];
        if (dw) for (size_t i = 0; i < n; i++) dw[i] = (fw ? 0 : dw[i]) + g[i] * (b[i] - a[i]);
    });
}

static const sg_op lerp_op = {"lerp", lerp_forward, lerp_backward, true, SG_UNREAD_OUT, SG_ROWS_FLAT};

static bool same_shape(const sg_tensor *x, const sg_tensor *y)
{
    return x->ndim == y->ndim && !memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof x->shape[0]);
}

sg_tensor *sg_lerp(sg_tape *t, sg_tensor *a, sg_tensor *b, sg_tensor *w)
{
    char sa[48], sb[48], sw[48];
    if (!sg_check_args(t, "lerp", 3, a, b, w))
        return NULL;
    if (!same_shape(a, b) || !same_shape(a, w))
        return sg_fail(t, SG_ERR_SHAPE, "lerp: shapes %s, %s and %s differ", sg_shape_str(a, sa),
                       sg_shape_str(b, sb), sg_shape_str(w, sw));
    sg_tensor *out = sg_tensor_alloc(t, a->dtype, a->ndim, a->shape);
    if (!out)
        return NULL;
    out->src[0] = a, out->src[1] = b, out->src[2] = w, out->nsrc = 3;
    return sg_record(t, &lerp_op, out);
}
