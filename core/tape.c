/*
 * tape.c - the reverse-mode tape: arena, recording, errors, backward.
 *
 * The tape is a Wengert list threaded through the tensors themselves
 * (t->last, then ->prev): creation order is a topological order, so backward
 * is one reverse loop. Every tape tensor, its data and its gradient come from
 * the tape's arena (arena.c), which sg_tape_reset() rewinds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---- tape lifetime ------------------------------------------------------- */

sg_tape *sg_tape_new(void)
{
    sg_tape *t = sg_calloc(sizeof *t);
    if (!t)
        return NULL;
    t->grad_on = true;
    t->keep_grads = true;
    t->abort_on_error = sg_abort_on_error_wanted();
    return t;
}

bool sg_abort_on_error_wanted(void)
{
    const char *e = getenv("SEQGRAD_ABORT_ON_ERROR");
    return e && *e && strcmp(e, "0") != 0;
}

void sg_tape_free(sg_tape *t)
{
    if (!t)
        return;
    sg_arena_release(&t->arena);
    sg_free(t);
}

void sg_tape_reset(sg_tape *t)
{
    if (!t)
        return;
    t->defer.n = 0;                        /* their memory is gone: never run */
    sg_arena_rewind(&t->arena);
    sg_tape_hold_transposes(t, false);
    t->n_staged = 0;
    t->passes = 0;
    t->recycled = false;     /* their buffers were arena memory, as the spares */
    memset(t->spare, 0, sizeof t->spare);
    t->last = NULL;
    t->err = SG_OK;
    t->msg[0] = '\0';
}

bool sg_tape_set_grad(sg_tape *t, bool on)
{
    if (!t)
        return false;
    bool was = t->grad_on;
    t->grad_on = on;
    return was;
}

bool sg_tape_keep_grads(sg_tape *t, bool keep)
{
    if (!t)
        return true;
    bool was = t->keep_grads;
    t->keep_grads = keep;
    return was;
}

void sg_tape_set_anomaly(sg_tape *t, bool on)
{
    if (t)
        t->anomaly = on;
}

/* ---- errors -------------------------------------------------------------- */

sg_status sg_tape_error(const sg_tape *t) { return t ? t->err : SG_ERR_NULL; }
const char *sg_tape_errmsg(const sg_tape *t) { return t ? t->msg : "tape: the tape is NULL (sg_tape_new failed?)"; }

sg_tensor *sg_fail(sg_tape *t, sg_status err, const char *fmt, ...)
{
    if (!t || t->err != SG_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->err = err;
    if (t->abort_on_error) {
        fprintf(stderr, "seqgrad: %s\n", t->msg);
        abort();
    }
    return NULL;
}

bool sg_check_failed(sg_tape *t, const char *op, int n, const sg_tensor *const *xs)
{
    for (int i = 0; i < n; i++) {
        const sg_tensor *x = xs[i];
        if (!x)    /* an earlier failure that explains a NULL keeps its message */
            sg_fail(t, SG_ERR_NULL, "%s: argument %d is NULL", op, i + 1);
        else if (x->tape && x->tape != t)
            sg_fail(t, SG_ERR_STATE, "%s: argument %d belongs to another tape", op, i + 1);
        else if (!x->data)
            sg_fail(t, SG_ERR_STATE, "%s: argument %d is a loop step's intermediate, whose data the step gave back "
                    "(gradients not kept: sg_tape_keep_grads)", op, i + 1);
        else if (x->dtype != xs[0]->dtype)
            sg_fail(t, SG_ERR_DTYPE, "%s: dtype mismatch: argument 1 is %s, argument %d is %s",
                    op, sg_dtype_name(xs[0]->dtype), i + 1, sg_dtype_name(x->dtype));
        else
            continue;
        break;
    }
    return false;
}

int sg_axis(sg_tape *t, const char *op, const sg_tensor *x, int axis)
{
    int a = axis < 0 ? axis + x->ndim : axis;
    if (a < 0 || a >= x->ndim) {
        char s[48];
        sg_fail(t, SG_ERR_ARG, "%s: axis %d out of range for %s", op, axis, sg_shape_str(x, s));
        return -1;
    }
    return a;
}

/* ---- recording ----------------------------------------------------------- */

static bool all_finite(const sg_tensor *x, const void *buf, size_t *where)
{
    bool ok = true;
    SG_TYPED(x->dtype, {
        const T *v = buf;
        for (size_t i = 0; i < x->size; i++)
            if (!isfinite(v[i])) {
                *where = i;
                ok = false;
                break;
            }
    });
    return ok;
}

void sg_tape_sync(sg_tape *t)
{
    if (t && t->defer.n)
        sg_rows_run(&t->defer, false, t->row_threads);
}

void sg_tape_hold_transposes(sg_tape *t, bool on)
{
    sg_tape_sync(t);
    /* inside, a chain of row-local ops waits for the next op that is not,
     * and runs on every thread by rows (core/rows.c) */
    t->row_threads = on ? sg_gemm_threads() : 1;
    t->hold_on = on;
    t->n_held = 0;
}

static void link(sg_tape *t, sg_tensor *x)
{
    x->prev = t->last;
    t->last = x;
}

static void *take_spare(sg_tape *t, size_t bytes);

sg_tensor *sg_tensor_alloc(sg_tape *t, sg_dtype dt, int ndim, const int *shape)
{
    if (dt != SG_F32 && dt != SG_F64)
        return sg_fail(t, SG_ERR_DTYPE, "tensor: dtype %d is neither SG_F32 nor SG_F64", (int)dt);
    if (ndim < 1 || ndim > SG_MAX_DIMS)
        return sg_fail(t, SG_ERR_SHAPE, "tensor: %d dimensions (1 to 4 allowed)", ndim);
    size_t size = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1)
            return sg_fail(t, SG_ERR_SHAPE, "tensor: dimension %d is %d (must be >= 1)", d, shape[d]);
        /* data and gradient bytes must not overflow; below 2^32 elements
         * the product fits (shape[d] < 2^31) and needs no division */
        size_t next = size * (size_t)shape[d];
        if ((size >> 32 && size > SIZE_MAX / 16 / (size_t)shape[d]) || next > SIZE_MAX / 16)
            return sg_fail(t, SG_ERR_NOMEM, "tensor: %zu x %d elements do not fit in memory", size, shape[d]);
        size = next;
    }
    sg_tensor *x = sg_arena_alloc(t, sizeof *x, false);
    /* the data is not zeroed: an op's forward writes every element */
    size_t bytes = size * (dt == SG_F64 ? sizeof(double) : sizeof(float));
    void *data = !x ? NULL : t->recycled ? take_spare(t, bytes) : sg_arena_alloc(t, bytes, false);
    if (!data)
        return NULL;
    /* field by field, in pieces: a memset of the whole header (or of more
     * than about 64 bytes of it) is a rep stos, slow to start */
    x->dtype = dt, x->ndim = ndim;
    for (int d = 0; d < SG_MAX_DIMS; d++)
        x->shape[d] = d < ndim ? shape[d] : 1;
    x->size = size, x->data = data, x->grad = NULL;
    x->requires_grad = x->grad_pending = x->data_read = x->staged = false;
    x->part_row = 0;
    x->tape = t, x->prev = NULL, x->op = NULL;
    x->src = x->src_buf, x->nsrc = 0;
    memset(x->src_buf, 0, sizeof x->src_buf);
    memset(x->iarg, 0, sizeof x->iarg);
    memset(x->farg, 0, sizeof x->farg);
    x->aux = x->aux2 = NULL, x->name = NULL;
    return x;
}

sg_tensor *sg_tensor_view(sg_tape *t, sg_tensor *x, int ndim, const int *shape)
{
    sg_tensor *v = sg_arena_alloc(t, sizeof *v, true);
    if (!v)
        return NULL;
    v->dtype = x->dtype, v->ndim = ndim, v->size = x->size, v->data = x->data;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    for (int d = ndim; d < SG_MAX_DIMS; d++)
        v->shape[d] = 1;
    v->tape = t;
    v->src = v->src_buf;
    return v;
}

sg_tensor *sg_record(sg_tape *t, const sg_op *op, sg_tensor *out)
{
    if (!out)
        return NULL;
    out->op = op;
    for (int i = 0; i < out->nsrc; i++) {
        sg_tensor *s = out->src[i];
        if (s && sg_wants_grad(t, s))
            out->requires_grad = true;
        if (s && !(i < 6 && (op->unread & SG_UNREAD(i))))
            s->data_read = true;
    }
    out->data_read = !(op->unread & SG_UNREAD_OUT);
    if (t->defer.n == SG_ROWRUN_MAX)         /* a full run goes first, this op may start the next */
        sg_tape_sync(t);
    if (t->row_threads > 1 && !t->anomaly && sg_rows_joins(&t->defer, out)) {
        sg_rows_add(&t->defer, out, 0);      /* run with the rest of the chain (sg_tape_sync) */
        link(t, out);
        return out;
    }
    sg_tape_sync(t);
    op->forward(out);
    if (t->anomaly) {
        size_t i;
        if (!all_finite(out, out->data, &i))
            return sg_fail(t, SG_ERR_ANOMALY, "anomaly: %s produced a non-finite value at element %zu in forward",
                           op->name, i);
    }
    link(t, out);
    return out;
}

void *sg_tape_alloc(sg_tape *t, size_t n, size_t size)
{
    if (!t)
        return NULL;
    if (size && n > SIZE_MAX / 4 / size) {
        sg_fail(t, SG_ERR_NOMEM, "tape_alloc: %zu x %zu bytes cannot be had", n, size);
        return NULL;
    }
    return sg_arena_alloc(t, n * size, true);
}

/* ---- leaves -------------------------------------------------------------- */

sg_tensor *sg_tensor_from(sg_tape *t, sg_dtype dt, int ndim, const int *shape, const void *data)
{
    if (!t)
        return NULL;
    if (!shape)
        return sg_fail(t, SG_ERR_NULL, "tensor: shape is NULL");
    sg_tensor *x = sg_tensor_alloc(t, dt, ndim, shape);
    if (!x)
        return NULL;
    if (data)
        memcpy(x->data, data, x->size * sg_dtype_size(dt));
    else
        memset(x->data, 0, x->size * sg_dtype_size(dt));
    link(t, x);
    return x;
}

sg_tensor *sg_tensor_from_f64(sg_tape *t, sg_dtype dt, int ndim, const int *shape, const double *v)
{
    sg_tensor *x = sg_tensor_from(t, dt, ndim, shape, NULL);
    if (x && v)
        sg_tensor_load(x, v);
    return x;
}

sg_tensor *sg_zeros(sg_tape *t, sg_dtype dt, int ndim, const int *shape)
{
    return sg_tensor_from(t, dt, ndim, shape, NULL);
}

sg_tensor *sg_full(sg_tape *t, sg_dtype dt, int ndim, const int *shape, double value)
{
    sg_tensor *x = sg_tensor_from(t, dt, ndim, shape, NULL);
    if (x)
        for (size_t i = 0; i < x->size; i++)
            sg_tensor_set(x, i, value);
    return x;
}

sg_tensor *sg_randn(sg_tape *t, sg_dtype dt, int ndim, const int *shape, double std, sg_rng *rng)
{
    if (!rng)
        return sg_fail(t, SG_ERR_NULL, "randn: rng is NULL");
    sg_tensor *x = sg_tensor_from(t, dt, ndim, shape, NULL);
    if (x)
        for (size_t i = 0; i < x->size; i++)
            sg_tensor_set(x, i, std * sg_rng_normal(rng));
    return x;
}

sg_tensor *sg_detach(sg_tape *t, sg_tensor *x)
{
    if (!sg_check_args(t, "detach", 1, x))
        return NULL;
    sg_synced(x);                      /* its values are copied now */
    return sg_tensor_from(t, x->dtype, x->ndim, x->shape, x->data);
}

/* ---- backward ------------------------------------------------------------ */

/* The bytes of x's data, and of its gradient. */
static size_t buf_bytes(const sg_tensor *x) { return x->size * (x->dtype == SG_F64 ? sizeof(double) : sizeof(float)); }

/* A gradient buffer of this many bytes: a spare one, else arena memory. */
static void *take_spare(sg_tape *t, size_t bytes)
{
    for (int i = 0; i < SG_SPARE_SIZES && t->spare[i].bytes; i++)
        if (t->spare[i].bytes == bytes && t->spare[i].head) {
            void *p = t->spare[i].head;
            memcpy(&t->spare[i].head, p, sizeof p);
            return p;
        }
    return sg_arena_alloc(t, bytes, false);
}

/* An arena buffer of this many bytes, no longer needed, kept for another
 * of its size (every arena buffer has room for the link: it is 64-byte
 * aligned); false if no size class was free: it stays in the arena. */
static bool spare(sg_tape *t, void *p, size_t bytes)
{
    for (int i = 0; i < SG_SPARE_SIZES; i++)
        if (t->spare[i].bytes == bytes || !t->spare[i].bytes) {
            t->spare[i].bytes = bytes;
            memcpy(p, &t->spare[i].head, sizeof p);
            t->spare[i].head = p;
            return true;
        }
    return false;
}

/* x's gradient, no longer needed, given back. */
static void give_back(sg_tape *t, sg_tensor *x)
{
    spare(t, x->grad, buf_bytes(x));
    x->grad = NULL;
}

void sg_tape_recycle(sg_tape *t, sg_tensor *from, const sg_tensor *mark, sg_tensor *const *keep, int nkeep)
{
    if (!t || t->keep_grads || t->err != SG_OK)
        return;
    sg_tape_sync(t);
    for (sg_tensor *x = from; x && x != mark; x = x->prev) {
        bool kept = x->data_read || !x->data;
        for (int k = 0; k < nkeep && !kept; k++)
            kept = keep[k] == x;
        if (x->op && (x->op->unread & SG_VIEW)) {     /* the buffer is its source's: */
            if (kept)                                  /* read through the view, it is the source's */
                x->src[0]->data_read = true;           /* (walked later: recorded before) */
            else
                x->data = NULL;
            continue;
        }
        if (!kept && spare(t, x->data, buf_bytes(x))) {
            x->data = NULL;
            t->recycled = true;
        }
    }
}

/* Whether x's backward may write its source i's empty gradient itself:
 * the op assigns, and no other source of x is the same tensor. */
static bool assigns_into(const sg_tensor *x, int i)
{
    if (!x->op->assigns)
        return false;
    for (int j = 0; j < x->nsrc; j++)
        if (j != i && x->src[j] == x->src[i])
            return false;
    return true;
}

/* The gradients x's backward is about to write, made where nothing has
 * made them yet, pending, and zeroed where still pending unless the op
 * assigns them (sg_op.assigns): for tape tensors a spare buffer of their
 * size or arena memory, zeroed here, just before the op makes it hot in
 * cache; for heap tensors (parameters) a kept, accumulating buffer made
 * once. */
static sg_status give_grads(sg_tape *t, sg_tensor *x)
{
    for (int i = 0; i < x->nsrc; i++) {
        sg_tensor *s = x->src[i];
        if (!s)
            continue;
        if (s->requires_grad && !s->grad) {
            if (s->tape) {
                size_t bytes = buf_bytes(s);
                if (!(s->grad = t->keep_grads ? sg_arena_alloc(t, bytes, false) : take_spare(t, bytes)))
                    return t->err;
                s->grad_pending = true;
            } else if (!(s->grad = sg_calloc(buf_bytes(s)))) {
                sg_fail(t, SG_ERR_NOMEM, "backward: out of memory for a parameter gradient");
                return t->err;
            }
        }
        if (s->grad_pending && !assigns_into(x, i))
            sg_grad_ready(s);
    }
    return SG_OK;
}

/* A tensor the walk reached with its gradient not made, or made and still
 * pending: nothing reached it, so its gradient is zero. A pending one is
 * zeroed; one not made is made zero for a leaf, or an op output when
 * gradients are kept (an op output that is not kept has none). */
static sg_status nothing_reached(sg_tape *t, sg_tensor *x)
{
    if (x->grad) {
        sg_grad_ready(x);
        return SG_OK;
    }
    if (x->op && !t->keep_grads)
        return SG_OK;
    return (x->grad = sg_arena_alloc(t, buf_bytes(x), true)) ? SG_OK : t->err;
}

/* Before a second backward since the reset: the gradients the first left on
 * the tape are stale, to be zeroed or assigned as if new. (The first
 * backward finds none: tape tensors get gradients only in backward.) */
static void mark_stale(sg_tensor *from)
{
    for (sg_tensor *x = from; x; x = x->prev)
        x->grad_pending = x->grad != NULL;
}

static void zero_part(void *ctx, int k, int n)
{
    sg_tensor *x = ctx;
    size_t es = sg_dtype_size(x->dtype), lo, hi;
    sg_part_range(x->size, k, n, &lo, &hi);
    memset((char *)x->grad + lo * es, 0, (hi - lo) * es);
}

void sg_grad_ready(sg_tensor *x)
{
    if (x->grad_pending) {
        sg_in_parts(buf_bytes(x), zero_part, x);
        x->grad_pending = false;
    }
}

/* Anomaly mode: the first non-finite gradient x's backward wrote. */
static sg_status check_grads(sg_tape *t, const sg_tensor *x)
{
    for (int i = 0; i < x->nsrc; i++) {
        const sg_tensor *s = x->src[i];
        size_t at;
        if (s && s->grad && !all_finite(s, s->grad, &at)) {
            sg_fail(t, SG_ERR_ANOMALY, "anomaly: backward of %s produced a non-finite gradient for argument %d at element %zu",
                    x->op->name, i + 1, at);
            return t->err;
        }
    }
    return SG_OK;
}

/* The row run's backward, then what the serial walk does after each op:
 * gradients not kept go back only now, as the run's ops may still read
 * them until it ends. */
static void run_rows(sg_tape *t, sg_rowrun *run, int threads)
{
    int n = run->n;
    sg_rows_run(run, true, threads);
    for (int k = 0; k < n && !t->keep_grads; k++)
        give_back(t, run->op[k]);
}

/* Ops in a backward run at most: a run's gradients are given back when it
 * has run, and 32 ops (two LSTM steps) were as fast as 256 (eight, where
 * the staged rows end a run) in 1.3-2.8 MB less (LSTM H = 256, 2 threads). */
enum { BACKWARD_RUN_MAX = 32 };

/* One walk from the newest tensor back: when the walk reaches x, every op
 * that could add to x's gradient (all recorded after x) has run, so a
 * gradient still pending, or not made, is zero (nothing reached x) and
 * gets zeroed there. With more than one thread, consecutive row-local ops
 * (a cell step's element-wise chain) are gathered into a row run, their
 * gradients made as the walk passes them, and run together on all
 * threads before the next op that is not row-local (core/rows.c); a
 * gradient's "empty" state is noted per op as the walk passes, which is
 * what the op would have seen run alone. Anomaly mode, which checks each
 * op's gradients as it goes, runs one op at a time. */
static sg_status run_backward(sg_tape *t, sg_tensor *from)
{
    sg_status status = SG_OK;
    int threads = t->anomaly ? 1 : sg_gemm_threads();
    sg_rowrun run;
    run.n = 0;
    sg_tensor *x = from;
    for (; x; x = x->prev) {
        if (x->prev) {        /* the next header, ahead of time (the walk goes down the arena) */
            __builtin_prefetch(x->prev);
            __builtin_prefetch((const char *)x->prev + 64);
        }
        if (x->staged) {                      /* a W's staged terms, some perhaps in the run */
            if (run.n)
                run_rows(t, &run, threads);
            sg_tape_flush_weight(t, x);
        }
        if (!x->requires_grad)
            continue;
        if (!x->grad || x->grad_pending) {
            if ((status = nothing_reached(t, x)) != SG_OK)
                break;
            continue;
        }
        if (!x->op || !x->op->backward)
            continue;
        if (run.n && (run.n == BACKWARD_RUN_MAX || !sg_rows_joins(&run, x)))
            run_rows(t, &run, threads);
        if ((status = give_grads(t, x)) != SG_OK)
            break;
        bool into = threads > 1 && sg_rows_joins(&run, x);
        if (into && x->op->rows == SG_ROWS_MATMUL && !sg_matmul_rows(x, run.n > 0)) {
            bool again = run.n > 0;            /* its staged rows are full: the run's go first */
            if (again)
                run_rows(t, &run, threads);
            into = again && sg_matmul_rows(x, false);
        }
        if (into) {
            unsigned fresh = 0;
            for (int i = 0; i < x->nsrc; i++)
                if (x->src[i] && x->src[i]->grad_pending)
                    fresh |= 1u << i;
            sg_rows_add(&run, x, fresh);
        } else
            x->op->backward(x);
        for (int i = 0; i < x->nsrc; i++)     /* written now (or by the run), by = or += */
            if (x->src[i])
                x->src[i]->grad_pending = false;
        if (run.n)
            continue;
        if (t->anomaly && (status = check_grads(t, x)) != SG_OK)
            break;
        if (!t->keep_grads)
            give_back(t, x);
    }
    if (run.n)
        run_rows(t, &run, threads);
    /* stopped early: the gradients not yet reached are zero, not leftovers */
    for (; x; x = x->prev)
        if (x->requires_grad)
            nothing_reached(t, x);
    sg_tape_flush_staged(t);
    return status;
}

/* The gradient backward starts from, made if the walk has not: the
 * caller fills it. */
static sg_status start_grad(sg_tape *t, sg_tensor *y)
{
    sg_tape_sync(t);
    if (t->passes++)
        mark_stale(y);
    if (!y->grad && !(y->grad = sg_arena_alloc(t, buf_bytes(y), false)))
        return t->err;
    y->grad_pending = false;
    return SG_OK;
}

static sg_status backward_check(sg_tape *t, sg_tensor *y)
{
    if (!t)
        return SG_ERR_NULL;
    if (t->err != SG_OK)
        return SG_ERR_STATE;   /* the message stays the first error's */
    if (!y) {
        sg_fail(t, SG_ERR_NULL, "backward: loss is NULL");
        return t->err;
    }
    if (y->tape != t) {
        sg_fail(t, SG_ERR_STATE, "backward: the loss is not on this tape");
        return t->err;
    }
    if (!y->requires_grad) {
        sg_fail(t, SG_ERR_STATE, "backward: the loss does not depend on anything that requires a gradient");
        return t->err;
    }
    return SG_OK;
}

sg_status sg_backward(sg_tape *t, sg_tensor *loss)
{
    sg_status s = backward_check(t, loss);
    if (s != SG_OK)
        return s;
    if (loss->size != 1) {
        char b[48];
        sg_fail(t, SG_ERR_STATE, "backward: loss has shape %s; it must have one element (use sg_backward_with)",
                sg_shape_str(loss, b));
        return t->err;
    }
    if ((s = start_grad(t, loss)) != SG_OK)
        return s;
    SG_TYPED(loss->dtype, { *(T *)loss->grad = 1; });
    return run_backward(t, loss);
}

sg_status sg_backward_with(sg_tape *t, sg_tensor *y, const sg_tensor *dy)
{
    sg_status s = backward_check(t, y);
    if (s != SG_OK)
        return s;
    if (!dy || !dy->data || dy->dtype != y->dtype || dy->size != y->size) {
        char a[48], b[48];
        sg_fail(t, SG_ERR_SHAPE, "backward: upstream gradient %s %s does not match output %s %s",
                dy ? sg_shape_str(dy, a) : "NULL", dy ? sg_dtype_name(dy->dtype) : "",
                sg_shape_str(y, b), sg_dtype_name(y->dtype));
        return t->err;
    }
    if ((s = start_grad(t, y)) != SG_OK)
        return s;
    memcpy(y->grad, dy->data, y->size * sg_dtype_size(y->dtype));
    return run_backward(t, y);
}
