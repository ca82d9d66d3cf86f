/*
 * shape.c - ops that move elements without arithmetic: reshape, transpose,
 * permute, concat, stack, narrow, select, split, index_select, where,
 * masked_fill.
 * Each output owns a copy (no views), so every backward is an accumulate
 * into the one gradient buffer of its source: a per-step narrow of a large
 * tensor costs its own size in backward, never the whole tensor's.
 */
#include <limits.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

static sg_tensor *new_out(sg_tape *t, sg_tensor *x, int ndim, const int *shape)
{
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, ndim, shape);
    if (out)
        out->src[0] = x, out->nsrc = 1;
    return out;
}

/* ---- reshape: y = x with another shape; dx += dy ------------------------------
 * y shares x's data (no op ever writes a tensor after making it, so sharing
 * is safe); the gradient is its own buffer. */

static void reshape_forward(sg_tensor *out) { (void)out; }

static void reshape_part(void *ctx, int k, int n)
{
    const sg_tensor *out = ctx;
    size_t lo, hi;
    sg_part_range(out->size, k, n, &lo, &hi);
    SG_TYPED(out->dtype, {
        T *dx = out->src[0]->grad;
        const T *dy = out->grad;
        for (size_t i = lo; i < hi; i++)
            dx[i] += dy[i];
    });
}

static void reshape_backward(sg_tensor *out)
{
    if (out->src[0]->grad)
        sg_in_parts(out->size * sg_dtype_size(out->dtype), reshape_part, out);
}

static const sg_op reshape_op = {"reshape", reshape_forward, reshape_backward, false,
                                 SG_UNREAD(0) | SG_UNREAD_OUT | SG_VIEW, 0};

sg_tensor *sg_reshape(sg_tape *t, sg_tensor *x, int ndim, const int *shape)
{
    char sx[48];
    if (!sg_check_args(t, "reshape", 1, x))
        return NULL;
    if (!shape)
        return sg_fail(t, SG_ERR_NULL, "reshape: shape is NULL");
    if (ndim < 1 || ndim > SG_MAX_DIMS)
        return sg_fail(t, SG_ERR_SHAPE, "reshape: %d dimensions requested (1 to 4 allowed)", ndim);
    int s[SG_MAX_DIMS], infer = -1;
    size_t known = 1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1 && infer < 0)
            infer = d;
        else if (s[d] < 1)
            return sg_fail(t, SG_ERR_SHAPE, "reshape: dimension %d is %d", d, s[d]);
        else
            known *= (size_t)s[d];
    }
    if (infer >= 0 && known && x->size % known == 0)
        s[infer] = (int)(x->size / known), known *= (size_t)s[infer];
    if (known != x->size) {
        char req[64];
        int n = sprintf(req, "(");
        for (int d = 0; d < ndim; d++)
            n += sprintf(req + n, d ? ",%d" : "%d", shape[d]);
        sprintf(req + n, ")");
        return sg_fail(t, SG_ERR_SHAPE, "reshape: cannot view %s (%zu elements) as %s",
                       sg_shape_str(x, sx), x->size, req);
    }
    sg_tensor *out = sg_tensor_view(t, x, ndim, s);
    if (!out)
        return NULL;
    out->src[0] = x, out->nsrc = 1;
    return sg_record(t, &reshape_op, out);
}

/* ---- permute: y[i0,i1,i2,i3] = x[i_perm^-1 ...]; dx += the same walk of dy ----
 * Padded to 4-D; xs[k] is the stride in x of the output's axis k.            */

SG_HOT static void permute_walk(sg_tensor *out, bool backward)
{
    const sg_tensor *x = out->src[0];
    int pad = SG_MAX_DIMS - out->ndim, n[SG_MAX_DIMS];
    size_t xstride[SG_MAX_DIMS], xs[SG_MAX_DIMS] = {0, 0, 0, 0}, step = 1;
    for (int d = x->ndim - 1; d >= 0; d--)
        xstride[d] = step, step *= (size_t)x->shape[d];
    for (int k = 0; k < SG_MAX_DIMS; k++) {
        n[k] = k < pad ? 1 : out->shape[k - pad];
        if (k >= pad)
            xs[k] = xstride[out->iarg[k - pad]];
    }
    /* when the last axis stays last (splitting heads), runs of n[3] are
     * contiguous on both sides */
    size_t run = xs[3] == 1 ? (size_t)n[3] : 1;
    SG_TYPED(out->dtype, {
        T *xd = backward ? x->grad : x->data, *yd = backward ? out->grad : out->data;
        size_t o = 0;
        for (int a = 0; a < n[0]; a++)
            for (int b = 0; b < n[1]; b++)
                for (int c = 0; c < n[2]; c++)
                    for (int d = 0; d < n[3]; d += (int)run, o += run) {
                        T *xr = xd + a * xs[0] + b * xs[1] + c * xs[2] + d * xs[3], *yr = yd + o;
                        if (backward)
                            for (size_t i = 0; i < run; i++)
                                xr[i] += yr[i];
                        else
                            for (size_t i = 0; i < run; i++)
                                yr[i] = xr[i];
                    }
    });
}

static void permute_forward(sg_tensor *out) { permute_walk(out, false); }

static void permute_backward(sg_tensor *out)
{
    if (out->src[0]->grad)
        permute_walk(out, true);
}

static const sg_op permute_op = {"permute", permute_forward, permute_backward, false, SG_UNREAD(0) | SG_UNREAD_OUT, 0};
static const sg_op transpose_op = {"transpose", permute_forward, permute_backward, false, SG_UNREAD(0) | SG_UNREAD_OUT, 0};

static sg_tensor *permute(sg_tape *t, const sg_op *op, sg_tensor *x, const int *perm)
{
    int shape[SG_MAX_DIMS], seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || (seen & (1 << perm[d]))) {
            char sx[48];
            return sg_fail(t, SG_ERR_ARG, "%s: (%d,%d,%d,%d) is not a permutation of the axes of %s", op->name,
                           perm[0], x->ndim > 1 ? perm[1] : -1, x->ndim > 2 ? perm[2] : -1,
                           x->ndim > 3 ? perm[3] : -1, sg_shape_str(x, sx));
        }
        seen |= 1 << perm[d];
        shape[d] = x->shape[perm[d]];
    }
    sg_tensor *out = new_out(t, x, x->ndim, shape);
    if (!out)
        return NULL;
    memcpy(out->iarg, perm, (size_t)x->ndim * sizeof *perm);
    return sg_record(t, op, out);
}

sg_tensor *sg_permute(sg_tape *t, sg_tensor *x, const int *perm)
{
    if (!sg_check_args(t, "permute", 1, x))
        return NULL;
    if (!perm)
        return sg_fail(t, SG_ERR_NULL, "permute: perm is NULL");
    return permute(t, &permute_op, x, perm);
}

sg_tensor *sg_transpose(sg_tape *t, sg_tensor *x, int a0, int a1)
{
    if (!sg_check_args(t, "transpose", 1, x))
        return NULL;
    int p = sg_axis(t, "transpose", x, a0), q = p < 0 ? -1 : sg_axis(t, "transpose", x, a1);
    if (q < 0)
        return NULL;
    int perm[SG_MAX_DIMS] = {0, 1, 2, 3};
    perm[p] = q, perm[q] = p;
    return permute(t, &transpose_op, x, perm);
}

/* ---- concat / stack: y = [x_0 | x_1 | ...] along the axis; dx_k += its block --
 * x_k viewed as (outer, chunk_k) with chunk_k = size_k / outer; iarg[0] outer.  */

/* Outer indices [o0, o1) of every input: each (input, outer index) is
 * one block, copied forward, added backward. */
static void join_walk(sg_tensor *out, bool backward, size_t o0, size_t o1)
{
    size_t outer = (size_t)out->iarg[0], es = sg_dtype_size(out->dtype), row = out->size / outer;
    size_t off = 0;
    for (int k = 0; k < out->nsrc; k++) {
        sg_tensor *x = out->src[k];
        size_t chunk = x->size / outer;
        if (!backward) {
            for (size_t o = o0; o < o1; o++)
                memcpy((char *)out->data + (o * row + off) * es, (char *)x->data + o * chunk * es, chunk * es);
        } else if (x->grad) {
            SG_TYPED(out->dtype, {
                const T *dy = out->grad;
                T *dx = x->grad;
                for (size_t o = o0; o < o1; o++)
                    for (size_t i = 0; i < chunk; i++)
                        dx[o * chunk + i] += dy[o * row + off + i];
            });
        }
        off += chunk;
    }
}

struct walking {
    sg_tensor *out;
    bool backward;
};

static void join_part(void *ctx, int k, int n)
{
    const struct walking *w = ctx;
    size_t lo, hi;
    sg_part_range((size_t)w->out->iarg[0], k, n, &lo, &hi);
    join_walk(w->out, w->backward, lo, hi);
}

/* in parts over the outer indices (stacking a sequence's steps on axis 1:
 * the batch rows) */
static void join_forward(sg_tensor *out)
{
    sg_in_parts(out->size * sg_dtype_size(out->dtype), join_part, &(struct walking){out, false});
}

static void join_backward(sg_tensor *out)
{
    sg_in_parts(out->size * sg_dtype_size(out->dtype), join_part, &(struct walking){out, true});
}

static const sg_op concat_op = {"concat", join_forward, join_backward, false, 0, 0};
static const sg_op stack_op = {"stack", join_forward, join_backward, false, 0, 0};

static sg_tensor *join(sg_tape *t, const sg_op *op, sg_tensor *const *xs, int n, int axis)
{
    bool stack = op == &stack_op;
    if (!t)
        return NULL;
    if (!xs || n < 1)
        return sg_fail(t, SG_ERR_ARG, "%s: needs at least one tensor", op->name);
    for (int k = 0; k < n; k++)
        if (!sg_check_args(t, op->name, 2, xs[0], xs[k]))
            return NULL;
    const sg_tensor *x0 = xs[0];
    if (stack && x0->ndim == SG_MAX_DIMS)
        return sg_fail(t, SG_ERR_SHAPE, "stack: inputs are already 4-D");
    /* the axis is checked against the output's rank for stack */
    int nd = x0->ndim + stack, a = axis < 0 ? axis + nd : axis;
    if (a < 0 || a >= nd) {
        char s[48];
        return sg_fail(t, SG_ERR_ARG, "%s: axis %d out of range for %s", op->name, axis, sg_shape_str(x0, s));
    }
    int shape[SG_MAX_DIMS];
    for (int k = 0; k < n; k++) {
        const sg_tensor *x = xs[k];
        bool fits = x->ndim == x0->ndim;
        for (int d = 0; fits && d < x0->ndim; d++)
            fits = x->shape[d] == x0->shape[d] || (!stack && d == a);
        if (!fits) {
            char s0[48], sk[48];
            return sg_fail(t, SG_ERR_SHAPE, "%s: input %d has shape %s, input 1 has %s%s", op->name, k + 1,
                           sg_shape_str(x, sk), sg_shape_str(x0, s0),
                           stack ? "" : " (only the axis may differ)");
        }
    }
    for (int d = 0, s = 0; d < nd; d++)
        if (stack && d == a)
            shape[d] = n;
        else
            shape[d] = x0->shape[s++];
    if (!stack)
        for (int k = 1; k < n; k++)
            shape[a] += xs[k]->shape[a];
    sg_tensor *out = sg_tensor_alloc(t, x0->dtype, nd, shape);
    if (!out)
        return NULL;
    if (n > SG_MAX_SRC && !(out->src = sg_arena_alloc(t, (size_t)n * sizeof *out->src, false)))
        return NULL;
    memcpy(out->src, xs, (size_t)n * sizeof *xs);
    out->nsrc = n;
    size_t outer = 1;
    for (int d = 0; d < a; d++)
        outer *= (size_t)shape[d];
    out->iarg[0] = (int)outer;
    return sg_record(t, op, out);
}

sg_tensor *sg_concat(sg_tape *t, sg_tensor *const *xs, int n, int axis) { return join(t, &concat_op, xs, n, axis); }
sg_tensor *sg_stack(sg_tape *t, sg_tensor *const *xs, int n, int axis) { return join(t, &stack_op, xs, n, axis); }

/* ---- index_select: y[o,i,:] = x[o,idx[i],:]; dx[o,idx[i],:] += dy[o,i,:] -------
 * narrow is the case idx = start, start+1, ...: iarg [0] outer [1] n of x
 * [2] inner [3] count; aux: idx (NULL for narrow: iarg[4] start).            */

/* Outer indices [o0, o1), and of each the blocks [i0, i1) (all of them,
 * backward: index_select's may add into the same row of dx). */
SG_HOT static void select_walk(sg_tensor *out, bool backward, size_t o0, size_t o1, size_t i0, size_t i1)
{
    const sg_tensor *x = out->src[0];
    size_t nx = (size_t)out->iarg[1], inner = (size_t)out->iarg[2];
    size_t cnt = (size_t)out->iarg[3], es = sg_dtype_size(out->dtype);
    const int *idx = out->aux;
    /* narrow and select read one contiguous block of cnt*inner per outer
     * index; index_select one block of inner per index */
    size_t run = idx ? inner : cnt * inner;

    for (size_t o = o0; o < o1; o++)
        for (size_t i = i0; i < i1; i++) {
            size_t src = (o * nx + (size_t)(idx ? idx[i] : out->iarg[4])) * inner;
            size_t dst = (o * cnt + i) * inner;
            if (!backward) {
                memcpy((char *)out->data + dst * es, (const char *)x->data + src * es, run * es);
                continue;
            }
            SG_TYPED(out->dtype, {
                T *dx = (T *)x->grad + src;
                const T *dy = (const T *)out->grad + dst;
                for (size_t j = 0; j < run; j++)
                    dx[j] += dy[j];
            });
        }
}

/* blocks per outer index: one for narrow and select, one per index for
 * index_select */
static size_t select_blocks(const sg_tensor *out) { return out->aux ? (size_t)out->iarg[3] : 1; }

/* Part k of n: of the outer indices, or of the blocks when there is one
 * outer index (an embedding's lookup), forward; of the outer indices
 * backward (each writes its own rows of dx) */
static void select_part(void *ctx, int k, int n)
{
    const struct walking *w = ctx;
    size_t outer = (size_t)w->out->iarg[0], blocks = select_blocks(w->out), lo, hi;
    if (outer == 1 && !w->backward) {
        sg_part_range(blocks, k, n, &lo, &hi);
        select_walk(w->out, false, 0, 1, lo, hi);
    } else {
        sg_part_range(outer, k, n, &lo, &hi);
        select_walk(w->out, w->backward, lo, hi, 0, blocks);
    }
}

static void select_forward(sg_tensor *out)
{
    sg_in_parts(out->size * sg_dtype_size(out->dtype), select_part, &(struct walking){out, false});
}

static void select_backward(sg_tensor *out)
{
    if (out->src[0]->grad)
        sg_in_parts(out->size * sg_dtype_size(out->dtype), select_part, &(struct walking){out, true});
}

static const sg_op index_select_op = {"index_select", select_forward, select_backward, false, 0, SG_ROWS_OUTER};
static const sg_op narrow_op = {"narrow", select_forward, select_backward, false, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_OUTER};

static sg_tensor *select_rows(sg_tape *t, const sg_op *op, sg_tensor *x, int a, const int *idx, int cnt, int start)
{
    size_t outer, nx, inner;
    sg_split_axis(x, a, &outer, &nx, &inner);
    int shape[SG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = cnt;
    sg_tensor *out = new_out(t, x, x->ndim, shape);
    if (!out)
        return NULL;
    out->iarg[0] = (int)outer, out->iarg[1] = (int)nx, out->iarg[2] = (int)inner;
    out->iarg[3] = cnt, out->iarg[4] = start;
    if (idx) {
        int *copy = sg_arena_alloc(t, (size_t)cnt * sizeof *copy, false);
        if (!copy)
            return NULL;
        memcpy(copy, idx, (size_t)cnt * sizeof *copy);
        out->aux = copy;
    }
    return sg_record(t, op, out);
}

sg_tensor *sg_narrow(sg_tape *t, sg_tensor *x, int axis, int start, int len)
{
    char s[48];
    if (!sg_check_args(t, "narrow", 1, x))
        return NULL;
    int a = sg_axis(t, "narrow", x, axis);
    if (a < 0)
        return NULL;
    if (start < 0 || len < 1 || start > x->shape[a] || len > x->shape[a] - start)     /* no int overflow */
        return sg_fail(t, SG_ERR_ARG, "narrow: [%d, %d) is outside axis %d of %s",
                       start, (int)((long long)start + len > INT_MAX ? INT_MAX : start + (long long)len), a,
                       sg_shape_str(x, s));
    return select_rows(t, &narrow_op, x, a, NULL, len, start);
}

/* select: narrow of length 1 whose output drops the axis (one time step). */
static const sg_op select_op = {"select", select_forward, select_backward, false, SG_UNREAD(0) | SG_UNREAD_OUT, SG_ROWS_OUTER};

sg_tensor *sg_select(sg_tape *t, sg_tensor *x, int axis, int index)
{
    char s[48];
    if (!sg_check_args(t, "select", 1, x))
        return NULL;
    int a = sg_axis(t, "select", x, axis);
    if (a < 0)
        return NULL;
    if (index < 0 || index >= x->shape[a])
        return sg_fail(t, SG_ERR_ARG, "select: index %d is outside axis %d of %s", index, a, sg_shape_str(x, s));
    sg_tensor *out = select_rows(t, &select_op, x, a, NULL, 1, index);
    if (out && x->ndim > 1) {      /* same elements, the axis of 1 removed */
        for (int d = a; d < x->ndim - 1; d++)
            out->shape[d] = out->shape[d + 1];
        out->shape[--out->ndim] = 1;
    }
    return out;
}

sg_tensor *sg_index_select(sg_tape *t, sg_tensor *x, int axis, const int *idx, int n)
{
    char s[48];
    if (!sg_check_args(t, "index_select", 1, x))
        return NULL;
    int a = sg_axis(t, "index_select", x, axis);
    if (a < 0)
        return NULL;
    if (!idx)
        return sg_fail(t, SG_ERR_NULL, "index_select: idx is NULL");
    if (n < 1)
        return sg_fail(t, SG_ERR_ARG, "index_select: needs at least one index");
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= x->shape[a])
            return sg_fail(t, SG_ERR_ARG, "index_select: index %d at position %d is out of range [0,%d) for %s",
                           idx[i], i, x->shape[a], sg_shape_str(x, s));
    return select_rows(t, &index_select_op, x, a, idx, n, 0);
}

sg_status sg_split(sg_tape *t, sg_tensor *x, int axis, const int *sizes, int n, sg_tensor **out)
{
    char s[48];
    if (!sg_check_args(t, "split", 1, x))
        return t ? (t->err ? t->err : SG_ERR_NULL) : SG_ERR_NULL;
    int a = sg_axis(t, "split", x, axis);
    if (a < 0)
        return t->err;
    if (!sizes || !out || n < 1) {
        sg_fail(t, SG_ERR_NULL, "split: %s", !sizes ? "sizes is NULL" : !out ? "out is NULL" : "no parts (n < 1)");
        return t->err;
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 1 || sizes[i] > x->shape[a] - total) {
            sg_fail(t, SG_ERR_SHAPE, "split: part %d of size %d does not fit axis %d of %s after %d", i, sizes[i], a,
                    sg_shape_str(x, s), total);
            return t->err;
        }
        total += sizes[i];
    }
    if (total != x->shape[a]) {
        sg_fail(t, SG_ERR_SHAPE, "split: sizes add up to %d but axis %d of %s has %d",
                total, a, sg_shape_str(x, s), x->shape[a]);
        return t->err;
    }
    for (int i = 0, start = 0; i < n; start += sizes[i++])
        if (!(out[i] = select_rows(t, &narrow_op, x, a, NULL, sizes[i], start)))
            return t->err;
    return SG_OK;
}

/* ---- where: y = c ? a : b;  da += c dy,  db += (1-c) dy ----------------------
 * masked_fill is where with a constant: y = m ? v : x,  dx += (1-m) dy.
 * aux: one flag per output element (the condition broadcast to y).          */

static void where_forward(sg_tensor *out)
{
    const unsigned char *c = out->aux;
    sg_tensor *A = out->src[0], *B = out->nsrc > 1 ? out->src[1] : NULL;
    sg_bcast g;
    sg_bcast_init(&g, out, A, B);
    SG_TYPED(out->dtype, {
        const T *a = A->data, *b = B ? B->data : NULL;
        T *y = out->data, v = (T)out->farg[0];
        if (B)
            SG_FOR_BCAST(g, y[o] = c[o] ? a[ia] : b[ib];);
        else   /* masked_fill: flags mark where the value goes */
            SG_FOR_BCAST(g, y[o] = c[o] ? v : a[ia];);
    });
}

static void where_backward(sg_tensor *out)
{
    const unsigned char *c = out->aux;
    sg_tensor *A = out->src[0], *B = out->nsrc > 1 ? out->src[1] : NULL;
    sg_bcast g;
    sg_bcast_init(&g, out, A, B);
    SG_TYPED(out->dtype, {
        const T *dy = out->grad;
        T *da = A->grad, *db = B ? B->grad : NULL;
        bool fill = !B;
        if (da)
            SG_FOR_BCAST(g, if (!c[o] == fill) da[ia] += dy[o];);
        if (db)
            SG_FOR_BCAST(g, if (!c[o]) db[ib] += dy[o];);
    });
}

static const sg_op where_op = {"where", where_forward, where_backward, false, 0, 0};
static const sg_op masked_fill_op = {"masked_fill", where_forward, where_backward, false, 0, 0};

sg_tensor *sg_where(sg_tape *t, sg_tensor *cond, sg_tensor *a, sg_tensor *b)
{
    int ndim, shape[SG_MAX_DIMS];
    if (!sg_check_args(t, "where", 3, a, b, cond) || !sg_broadcast_shape(t, "where", a, b, &ndim, shape))
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, a->dtype, ndim, shape);
    if (!out || !(out->aux = sg_expand_mask(t, "where", out, cond)))
        return NULL;
    out->src[0] = a, out->src[1] = b, out->nsrc = 2;
    return sg_record(t, &where_op, out);
}

sg_tensor *sg_masked_fill(sg_tape *t, sg_tensor *x, sg_tensor *mask, double value)
{
    if (!sg_check_args(t, "masked_fill", 2, x, mask))
        return NULL;
    sg_tensor *out = new_out(t, x, x->ndim, x->shape);
    if (!out || !(out->aux = sg_expand_mask(t, "masked_fill", x, mask)))
        return NULL;
    out->farg[0] = value;
    return sg_record(t, &masked_fill_op, out);
}
