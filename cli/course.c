/*
 * course.c - `seqgrad course check EXERCISE FILE.c`: grades a student's
 * forward and backward passes against the tape.
 *
 * The student's file defines plain C functions on double arrays (the
 * prototypes of each exercise below; docs/course/ has the starter files).
 * The checker compiles it into a shared object with the system's compiler
 * (the prototypes are force-included, so a wrong signature is a compile
 * error), loads it, and in a child process (a crash in the student's code is
 * reported, not suffered) feeds it fixed inputs in f64, records the same
 * computation on the tape, and compares every output, every gradient and
 * every time step. Each compared quantity is one point; the last line is
 * "score: P/N".
 *
 * Inputs come from sg_rng_uniform, which is integer arithmetic, so they are
 * the same bits on every machine; the reference values printed at the end
 * are rounded to 6 significant digits, which BLAS's summation order (1e-16
 * relative) never reaches.
 */
#define _DEFAULT_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seqgrad/seqgrad.h>

#include "config.h"
#include "course.h"

/* ---- the grader's state ----------------------------------------------------- */

/* Shared with the parent: if the student's code crashes, the parent still
 * knows which function ran and the points scored before it. */
struct shared {
    char current[64];
    int points;
};

typedef struct {
    FILE *out;
    void *lib;               /* the student's shared object */
    int points, total;
    sg_rng rng;
    sg_tape *t;
    struct shared *sh;       /* what the parent reads if the child crashes */
    void *keep[256];         /* every array made, freed at the end */
    int nkeep;
} ck;

static void *keep(ck *c, void *p)
{
    if (p && c->nkeep < 256)
        c->keep[c->nkeep++] = p;
    else if (p) {                               /* never reached by the exercises below */
        fprintf(c->out, "course: too many arrays\n");
        _exit(EXIT_FAIL);
    }
    return p;
}

static double *array(ck *c, size_t n)
{
    double *a = keep(c, calloc(n ? n : 1, sizeof *a));
    if (!a) {
        fprintf(c->out, "course: out of memory\n");
        _exit(EXIT_FAIL);
    }
    return a;
}

/* uniform in [-scale, scale): the same bits on every machine */
static double *rnd(ck *c, size_t n, double scale)
{
    double *a = array(c, n);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * (2 * sg_rng_uniform(&c->rng) - 1);
    return a;
}

/* an output array the student must write: NaN until then */
static double *nans(ck *c, size_t n)
{
    double *a = array(c, n);
    for (size_t i = 0; i < n; i++)
        a[i] = NAN;
    return a;
}

typedef void any_fn(void);

/* The student's function `name`, or NULL after saying it is missing. */
static any_fn *fn(ck *c, const char *name)
{
    void *sym = dlsym(c->lib, name);
    any_fn *f;
    memcpy(&f, &sym, sizeof f);                 /* POSIX: a symbol's address converts */
    if (!sym)
        fprintf(c->out, "%s: not defined in your file\n", name);
    snprintf(c->sh->current, sizeof c->sh->current, "%s", name);
    return sym ? f : NULL;
}

static void missing(ck *c, int points)
{
    c->total += points;
}

/* ---- the tape's side ---------------------------------------------------------- */

static sg_tensor *leaf(ck *c, int ndim, const int *shape, const double *v)
{
    sg_tensor *x = sg_tensor_from_f64(c->t, SG_F64, ndim, shape, v);
    sg_tensor_set_requires_grad(x, true);
    return x;
}

static double *values(ck *c, const sg_tensor *x)
{
    double *a = array(c, sg_tensor_size(x));
    sg_tensor_store(x, a);
    return a;
}

static double *grads(ck *c, const sg_tensor *x)
{
    double *a = array(c, sg_tensor_size(x));
    for (size_t i = 0, n = sg_tensor_size(x); i < n; i++)
        a[i] = sg_tensor_grad_get(x, i);
    return a;
}

/* Backward of L = sum_k sum(outs[k] * ups[k]): each upstream gradient ups[k]
 * flows into its output, as the student's backward receives them. */
static void backward(ck *c, sg_tensor **outs, double **ups, int n)
{
    sg_tape *t = c->t;
    sg_tensor *L = NULL;
    for (int k = 0; k < n; k++) {
        sg_tensor *u = sg_tensor_from_f64(t, SG_F64, sg_tensor_ndim(outs[k]), sg_tensor_shape(outs[k]), ups[k]);
        sg_tensor *term = sg_sum_all(t, sg_mul(t, outs[k], u));
        L = L ? sg_add(t, L, term) : term;
    }
    if (sg_backward(t, L) != SG_OK) {           /* the checker's own mistake, never the student's */
        fprintf(c->out, "course: the tape failed: %s\n", sg_tape_errmsg(t));
        _exit(EXIT_FAIL);
    }
}

/* ---- grading ---------------------------------------------------------------- */

static bool all_nan(const double *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isnan(a[i]))
            return false;
    return true;
}

/* One quantity, one point. */
static void grade(ck *c, const char *what, const double *yours, const double *tape, int ndim, const int *shape,
                  const char *axes)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    c->total++;
    if (all_nan(yours, n)) {
        fprintf(c->out, "%-12s not written (it still holds NaN)\n", what);
        return;
    }
    sg_gradcheck_entry e;
    c->sh->points = c->points += sg_grad_compare(yours, tape, ndim, shape, NULL, &e);
    sg_grad_compare_print(what, &e, axes, c->out);
}

/* A (B,T,X) quantity compared per time step; one point if every step agrees. */
static void grade_steps(ck *c, const char *what, const double *yours, const double *tape, int B, int T, int X,
                        const char *axes)
{
    sg_gradcheck_entry e[64];
    double *y = array(c, (size_t)B * X), *g = array(c, (size_t)B * X);
    c->total++;
    if (all_nan(yours, (size_t)B * T * X)) {
        fprintf(c->out, "%-12s not written (it still holds NaN)\n", what);
        return;
    }
    for (int s = 0; s < T; s++) {
        for (int b = 0; b < B; b++)
            for (int i = 0; i < X; i++) {
                y[b * X + i] = yours[((size_t)b * T + s) * X + i];
                g[b * X + i] = tape[((size_t)b * T + s) * X + i];
            }
        sg_grad_compare(y, g, 2, (int[]){B, X}, NULL, &e[s]);
    }
    c->sh->points = c->points += sg_grad_compare_steps_print(what, e, T, 0, axes, c->out) == 0;
}

static double sum(const double *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}

/* ---- rnn: h' = tanh(x Wx + h Wh + b) ------------------------------------------ */

enum { B = 2, T = 5, E = 3, H = 4, S = 5, D = 3, A = 4, V = 6 };

typedef void rnn_step_forward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                 const double *, double *);
typedef void rnn_step_backward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                  const double *, const double *, double *, double *, double *, double *, double *);

static sg_tensor *rnn_cell(sg_tape *t, sg_tensor *x, sg_tensor *h, sg_tensor *Wx, sg_tensor *Wh, sg_tensor *b)
{
    return sg_tanh(t, sg_add(t, sg_add(t, sg_matmul(t, x, Wx), sg_matmul(t, h, Wh)), b));
}

/* the tape's sequence: x (B,T,E) -> h (B,T,H), the step function applied T times */
typedef sg_tensor *step_fn(sg_tape *t, sg_tensor *x, sg_tensor **state, sg_tensor **w);

static sg_tensor *unroll(sg_tape *t, step_fn *step, sg_tensor *x, sg_tensor **state, sg_tensor **w)
{
    sg_tensor *hs[T];
    for (int s = 0; s < T; s++)
        hs[s] = step(t, sg_select(t, x, 1, s), state, w);
    return sg_stack(t, hs, T, 1);
}

/* The sequence functions of a cell with G gate blocks, the same signature
 * for every cell: <cell>_forward (x, h0, Wx, Wh, b -> h (B,T,H)) and
 * <cell>_backward (..., h, dh -> dx, dh0, dWx, dWh, db). 6 points. */
typedef void seq_forward_fn(int, int, int, int, const double *, const double *, const double *, const double *,
                            const double *, double *);
typedef void seq_backward_fn(int, int, int, int, const double *, const double *, const double *, const double *,
                             const double *, const double *, const double *, double *, double *, double *, double *,
                             double *);

typedef struct { double *h, *dWh, *dx; } seq_refs;

static seq_refs check_sequence(ck *c, const char *cell, int G, step_fn *step, int n_state, const double *xs,
                               const double *h0, const double *Wx, const double *Wh, const double *b, double *dh)
{
    sg_tape *t = c->t;
    char name[32];
    sg_tape_reset(t);
    sg_tensor *tX = leaf(c, 3, (int[]){B, T, E}, xs), *tH0 = leaf(c, 2, (int[]){B, H}, h0);
    sg_tensor *w[3] = {leaf(c, 2, (int[]){E, G * H}, Wx), leaf(c, 2, (int[]){H, G * H}, Wh),
                       leaf(c, 1, (int[]){G * H}, b)};
    sg_tensor *state[2] = {tH0, n_state > 1 ? sg_zeros(t, SG_F64, 2, (int[]){B, H}) : NULL};
    sg_tensor *hseq = unroll(t, step, tX, state, w);
    backward(c, &hseq, &dh, 1);
    seq_refs ref = {values(c, hseq), grads(c, w[1]), grads(c, tX)};
    snprintf(name, sizeof name, "%s_forward", cell);
    seq_forward_fn *f = (seq_forward_fn *)fn(c, name);
    if (f) {
        double *y = nans(c, B * T * H);
        f(B, T, E, H, xs, h0, Wx, Wh, b, y);
        grade_steps(c, "h", y, ref.h, B, T, H, "b,i");
    } else
        missing(c, 1);
    snprintf(name, sizeof name, "%s_backward", cell);
    seq_backward_fn *bw = (seq_backward_fn *)fn(c, name);
    if (bw) {
        double *dx = nans(c, B * T * E), *dh0 = nans(c, B * H), *dWx = nans(c, E * G * H);
        double *dWh = nans(c, H * G * H), *db = nans(c, G * H);
        bw(B, T, E, H, xs, h0, Wx, Wh, b, ref.h, dh, dx, dh0, dWx, dWh, db);
        grade_steps(c, "dx", dx, ref.dx, B, T, E, "b,i");
        grade(c, "dh0", dh0, grads(c, tH0), 2, (int[]){B, H}, "b,i");
        grade(c, "dWx", dWx, grads(c, w[0]), 2, (int[]){E, G * H}, "i,j");
        grade(c, "dWh", dWh, ref.dWh, 2, (int[]){H, G * H}, "i,j");
        grade(c, "db", db, grads(c, w[2]), 1, (int[]){G * H}, "j");
    } else
        missing(c, 5);
    return ref;
}

static sg_tensor *rnn_step(sg_tape *t, sg_tensor *x, sg_tensor **state, sg_tensor **w)
{
    return state[0] = rnn_cell(t, x, state[0], w[0], w[1], w[2]);
}

static void check_rnn(ck *c)
{
    sg_tape *t = c->t;
    double *x = rnd(c, B * E, 1), *h0 = rnd(c, B * H, 1), *Wx = rnd(c, E * H, 0.5), *Wh = rnd(c, H * H, 0.5);
    double *b = rnd(c, H, 0.5), *dnext = rnd(c, B * H, 1);
    double *xs = rnd(c, B * T * E, 1), *dh = rnd(c, B * T * H, 1);

    /* one step */
    sg_tensor *tx = leaf(c, 2, (int[]){B, E}, x), *th = leaf(c, 2, (int[]){B, H}, h0);
    sg_tensor *tWx = leaf(c, 2, (int[]){E, H}, Wx), *tWh = leaf(c, 2, (int[]){H, H}, Wh), *tb = leaf(c, 1, (int[]){H}, b);
    sg_tensor *hn = rnn_cell(t, tx, th, tWx, tWh, tb);
    backward(c, &hn, &dnext, 1);
    double *ref_h = values(c, hn);
    rnn_step_forward_fn *sf = (rnn_step_forward_fn *)fn(c, "rnn_step_forward");
    if (sf) {
        double *y = nans(c, B * H);
        sf(B, E, H, x, h0, Wx, Wh, b, y);
        grade(c, "h_next", y, ref_h, 2, (int[]){B, H}, "b,i");
    } else
        missing(c, 1);
    rnn_step_backward_fn *sb = (rnn_step_backward_fn *)fn(c, "rnn_step_backward");
    if (sb) {
        double *dx = nans(c, B * E), *dhp = nans(c, B * H), *dWx = nans(c, E * H), *dWh = nans(c, H * H);
        double *db = nans(c, H);
        sb(B, E, H, x, h0, Wx, Wh, ref_h, dnext, dx, dhp, dWx, dWh, db);
        grade(c, "dx", dx, grads(c, tx), 2, (int[]){B, E}, "b,i");
        grade(c, "dh_prev", dhp, grads(c, th), 2, (int[]){B, H}, "b,i");
        grade(c, "dWx", dWx, grads(c, tWx), 2, (int[]){E, H}, "i,j");
        grade(c, "dWh", dWh, grads(c, tWh), 2, (int[]){H, H}, "i,j");
        grade(c, "db", db, grads(c, tb), 1, (int[]){H}, "j");
    } else
        missing(c, 5);

    seq_refs seq = check_sequence(c, "rnn", 1, rnn_step, 1, xs, h0, Wx, Wh, b, dh);
    fprintf(c->out, "reference values: sum h_next = %.6g, sum h = %.6g, sum dWh = %.6g, sum dx = %.6g\n",
            sum(ref_h, B * H), sum(seq.h, B * T * H), sum(seq.dWh, H * H), sum(seq.dx, B * T * E));
}

/* ---- lstm: gates i, f, g, o; c' = f c + i g; h' = o tanh(c') -------------------- */

typedef void lstm_step_forward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                  const double *, const double *, double *, double *);
typedef void lstm_step_backward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                   const double *, const double *, const double *, const double *, double *,
                                   double *, double *, double *, double *, double *);

/* h and c after one step; *c_out gets c' */
static sg_tensor *lstm_cell(sg_tape *t, sg_tensor *x, sg_tensor *h, sg_tensor *cp, sg_tensor **w, sg_tensor **c_out)
{
    sg_tensor *z = sg_add(t, sg_add(t, sg_matmul(t, x, w[0]), sg_matmul(t, h, w[1])), w[2]), *g[4];
    if (sg_split(t, z, 1, (int[]){H, H, H, H}, 4, g) != SG_OK)
        return NULL;
    sg_tensor *i = sg_sigmoid(t, g[0]), *f = sg_sigmoid(t, g[1]), *gg = sg_tanh(t, g[2]), *o = sg_sigmoid(t, g[3]);
    sg_tensor *c = sg_add(t, sg_mul(t, f, cp), sg_mul(t, i, gg));
    *c_out = c;
    return sg_mul(t, o, sg_tanh(t, c));
}

static sg_tensor *lstm_step(sg_tape *t, sg_tensor *x, sg_tensor **state, sg_tensor **w)
{
    sg_tensor *c;
    state[0] = lstm_cell(t, x, state[0], state[1], w, &c);
    state[1] = c;
    return state[0];
}

static void check_lstm(ck *c)
{
    sg_tape *t = c->t;
    double *x = rnd(c, B * E, 1), *h0 = rnd(c, B * H, 1), *c0 = rnd(c, B * H, 1);
    double *Wx = rnd(c, E * 4 * H, 0.5), *Wh = rnd(c, H * 4 * H, 0.5), *b = rnd(c, 4 * H, 0.5);
    double *dhn = rnd(c, B * H, 1), *dcn = rnd(c, B * H, 1), *xs = rnd(c, B * T * E, 1), *dh = rnd(c, B * T * H, 1);

    sg_tensor *tx = leaf(c, 2, (int[]){B, E}, x), *th = leaf(c, 2, (int[]){B, H}, h0), *tc = leaf(c, 2, (int[]){B, H}, c0);
    sg_tensor *w[3] = {leaf(c, 2, (int[]){E, 4 * H}, Wx), leaf(c, 2, (int[]){H, 4 * H}, Wh),
                       leaf(c, 1, (int[]){4 * H}, b)};
    sg_tensor *cn, *hn = lstm_cell(t, tx, th, tc, w, &cn);
    backward(c, (sg_tensor *[]){hn, cn}, (double *[]){dhn, dcn}, 2);
    double *ref_h = values(c, hn), *ref_c = values(c, cn);
    lstm_step_forward_fn *sf = (lstm_step_forward_fn *)fn(c, "lstm_step_forward");
    if (sf) {
        double *yh = nans(c, B * H), *yc = nans(c, B * H);
        sf(B, E, H, x, h0, c0, Wx, Wh, b, yh, yc);
        grade(c, "h_next", yh, ref_h, 2, (int[]){B, H}, "b,i");
        grade(c, "c_next", yc, ref_c, 2, (int[]){B, H}, "b,i");
    } else
        missing(c, 2);
    lstm_step_backward_fn *sb = (lstm_step_backward_fn *)fn(c, "lstm_step_backward");
    if (sb) {
        double *dx = nans(c, B * E), *dhp = nans(c, B * H), *dcp = nans(c, B * H);
        double *dWx = nans(c, E * 4 * H), *dWh = nans(c, H * 4 * H), *db = nans(c, 4 * H);
        sb(B, E, H, x, h0, c0, Wx, Wh, b, dhn, dcn, dx, dhp, dcp, dWx, dWh, db);
        grade(c, "dx", dx, grads(c, tx), 2, (int[]){B, E}, "b,i");
        grade(c, "dh_prev", dhp, grads(c, th), 2, (int[]){B, H}, "b,i");
        grade(c, "dc_prev", dcp, grads(c, tc), 2, (int[]){B, H}, "b,i");
        grade(c, "dWx", dWx, grads(c, w[0]), 2, (int[]){E, 4 * H}, "i,j");
        grade(c, "dWh", dWh, grads(c, w[1]), 2, (int[]){H, 4 * H}, "i,j");
        grade(c, "db", db, grads(c, w[2]), 1, (int[]){4 * H}, "j");
    } else
        missing(c, 6);

    seq_refs seq = check_sequence(c, "lstm", 4, lstm_step, 2, xs, h0, Wx, Wh, b, dh);
    fprintf(c->out, "reference values: sum h_next = %.6g, sum c_next = %.6g, sum h = %.6g, sum dWh = %.6g\n",
            sum(ref_h, B * H), sum(ref_c, B * H), sum(seq.h, B * T * H), sum(seq.dWh, H * 4 * H));
}

/* ---- gru (the lecture's form): h' = (1 - z) h + z n --------------------------- */

typedef void gru_step_forward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                 const double *, double *);
typedef void gru_step_backward_fn(int, int, int, const double *, const double *, const double *, const double *,
                                  const double *, const double *, double *, double *, double *, double *, double *);

/*   z = sigmoid(x Wx_z + h Wh_z + b_z)      r = sigmoid(x Wx_r + h Wh_r + b_r)
 *   n = tanh(x Wx_n + (r * h) Wh_n + b_n)   columns of Wx, Wh, b: [z | r | n] */
static sg_tensor *gru_cell(sg_tape *t, sg_tensor *x, sg_tensor *h, sg_tensor **w)
{
    sg_tensor *xw = sg_add(t, sg_matmul(t, x, w[0]), w[2]), *xs[3], *Wh[3];
    if (sg_split(t, xw, 1, (int[]){H, H, H}, 3, xs) != SG_OK || sg_split(t, w[1], 1, (int[]){H, H, H}, 3, Wh) != SG_OK)
        return NULL;
    sg_tensor *z = sg_sigmoid(t, sg_add(t, xs[0], sg_matmul(t, h, Wh[0])));
    sg_tensor *r = sg_sigmoid(t, sg_add(t, xs[1], sg_matmul(t, h, Wh[1])));
    sg_tensor *n = sg_tanh(t, sg_add(t, xs[2], sg_matmul(t, sg_mul(t, r, h), Wh[2])));
    return sg_add(t, sg_mul(t, sg_one_minus(t, z), h), sg_mul(t, z, n));
}

static void check_gru(ck *c)
{
    double *x = rnd(c, B * E, 1), *h0 = rnd(c, B * H, 1), *Wx = rnd(c, E * 3 * H, 0.5);
    double *Wh = rnd(c, H * 3 * H, 0.5), *b = rnd(c, 3 * H, 0.5), *dhn = rnd(c, B * H, 1);
    sg_tensor *tx = leaf(c, 2, (int[]){B, E}, x), *th = leaf(c, 2, (int[]){B, H}, h0);
    sg_tensor *w[3] = {leaf(c, 2, (int[]){E, 3 * H}, Wx), leaf(c, 2, (int[]){H, 3 * H}, Wh),
                       leaf(c, 1, (int[]){3 * H}, b)};
    sg_tensor *hn = gru_cell(c->t, tx, th, w);
    backward(c, &hn, &dhn, 1);
    double *ref_h = values(c, hn);
    gru_step_forward_fn *sf = (gru_step_forward_fn *)fn(c, "gru_step_forward");
    if (sf) {
        double *y = nans(c, B * H);
        sf(B, E, H, x, h0, Wx, Wh, b, y);
        grade(c, "h_next", y, ref_h, 2, (int[]){B, H}, "b,i");
    } else
        missing(c, 1);
    gru_step_backward_fn *sb = (gru_step_backward_fn *)fn(c, "gru_step_backward");
    if (sb) {
        double *dx = nans(c, B * E), *dhp = nans(c, B * H), *dWx = nans(c, E * 3 * H), *dWh = nans(c, H * 3 * H);
        double *db = nans(c, 3 * H);
        sb(B, E, H, x, h0, Wx, Wh, b, dhn, dx, dhp, dWx, dWh, db);
        grade(c, "dx", dx, grads(c, tx), 2, (int[]){B, E}, "b,i");
        grade(c, "dh_prev", dhp, grads(c, th), 2, (int[]){B, H}, "b,i");
        grade(c, "dWx", dWx, grads(c, w[0]), 2, (int[]){E, 3 * H}, "i,j");
        grade(c, "dWh", dWh, grads(c, w[1]), 2, (int[]){H, 3 * H}, "i,j");
        grade(c, "db", db, grads(c, w[2]), 1, (int[]){3 * H}, "j");
    } else
        missing(c, 5);
    fprintf(c->out, "reference values: sum h_next = %.6g, sum dWh = %.6g, sum dh_prev = %.6g\n", sum(ref_h, B * H),
            sum(grads(c, w[1]), H * 3 * H), sum(grads(c, th), B * H));
}

/* ---- additive attention: e_j = v . tanh(q Wq + k_j Wk), a = softmax(e), ctx = sum_j a_j k_j */

typedef void attention_forward_fn(int, int, int, int, int, const double *, const double *, const double *,
                                  const double *, const double *, double *, double *);
typedef void attention_backward_fn(int, int, int, int, int, const double *, const double *, const double *,
                                   const double *, const double *, const double *, double *, double *, double *,
                                   double *, double *);

static void check_attention(ck *c)
{
    sg_tape *t = c->t;
    double *q = rnd(c, B * D, 1), *k = rnd(c, B * S * E, 1), *Wq = rnd(c, D * A, 0.7), *Wk = rnd(c, E * A, 0.7);
    double *v = rnd(c, A, 1), *dctx = rnd(c, B * E, 1);
    sg_tensor *tq = leaf(c, 2, (int[]){B, D}, q), *tk = leaf(c, 3, (int[]){B, S, E}, k);
    sg_tensor *tWq = leaf(c, 2, (int[]){D, A}, Wq), *tWk = leaf(c, 2, (int[]){E, A}, Wk), *tv = leaf(c, 2, (int[]){A, 1}, v);
    sg_tensor *u = sg_tanh(t, sg_add(t, sg_matmul(t, tk, tWk), sg_reshape(t, sg_matmul(t, tq, tWq), 3, (int[]){B, 1, A})));
    sg_tensor *e = sg_reshape(t, sg_matmul(t, u, tv), 2, (int[]){B, S});            /* (B,S) */
    sg_tensor *a = sg_softmax(t, e, 1, NULL);
    sg_tensor *ctx = sg_reshape(t, sg_bmm(t, sg_reshape(t, a, 3, (int[]){B, 1, S}), tk, 0), 2, (int[]){B, E});
    backward(c, &ctx, &dctx, 1);
    double *ref_ctx = values(c, ctx), *ref_a = values(c, a);
    attention_forward_fn *f = (attention_forward_fn *)fn(c, "attention_forward");
    if (f) {
        double *yc = nans(c, B * E), *ya = nans(c, B * S);
        f(B, S, D, E, A, q, k, Wq, Wk, v, yc, ya);
        grade(c, "context", yc, ref_ctx, 2, (int[]){B, E}, "b,i");
        grade(c, "weights", ya, ref_a, 2, (int[]){B, S}, "b,j");
    } else
        missing(c, 2);
    attention_backward_fn *bw = (attention_backward_fn *)fn(c, "attention_backward");
    if (bw) {
        double *dq = nans(c, B * D), *dk = nans(c, B * S * E), *dWq = nans(c, D * A), *dWk = nans(c, E * A);
        double *dv = nans(c, A);
        bw(B, S, D, E, A, q, k, Wq, Wk, v, dctx, dq, dk, dWq, dWk, dv);
        grade(c, "dq", dq, grads(c, tq), 2, (int[]){B, D}, "b,i");
        grade(c, "dk", dk, grads(c, tk), 3, (int[]){B, S, E}, "b,j,i");
        grade(c, "dWq", dWq, grads(c, tWq), 2, (int[]){D, A}, "i,j");
        grade(c, "dWk", dWk, grads(c, tWk), 2, (int[]){E, A}, "i,j");
        grade(c, "dv", dv, grads(c, tv), 1, (int[]){A}, "j");
    } else
        missing(c, 5);
    fprintf(c->out, "reference values: sum context = %.6g, weights[0,0] = %.6g, sum dWk = %.6g\n", sum(ref_ctx, B * E),
            ref_a[0], sum(grads(c, tWk), E * A));
}

/* ---- temporal softmax loss: L = -(1/B) sum_{b,t} m_bt log softmax(x_bt)[y_bt] -- */

typedef double temporal_softmax_loss_fn(int, int, int, const double *, const int *, const int *, double *);

static void check_loss(ck *c)
{
    double *x = rnd(c, B * T * V, 2);
    int y[B * T], mask[B * T], target[B * T];
    for (int i = 0; i < B * T; i++) {
        y[i] = sg_rng_int(&c->rng, V);
        mask[i] = i % T < T - 1 - i / T;            /* sequence b is T - 1 - b steps long */
        target[i] = mask[i] ? y[i] : -100;
    }
    sg_tensor *tx = leaf(c, 3, (int[]){B, T, V}, x);
    sg_loss_opts o = {SG_SUM, -100};
    sg_tensor *L = sg_scale(c->t, sg_cross_entropy(c->t, sg_reshape(c->t, tx, 2, (int[]){B * T, V}), target, &o),
                            1.0 / B);
    double one = 1, *up = &one;
    backward(c, &L, &up, 1);
    double ref_L = sg_tensor_get(L, 0);
    temporal_softmax_loss_fn *f = (temporal_softmax_loss_fn *)fn(c, "temporal_softmax_loss");
    if (f) {
        double *dx = nans(c, B * T * V), loss = f(B, T, V, x, y, mask, dx);
        grade(c, "loss", &loss, &ref_L, 1, (int[]){1}, NULL);
        grade_steps(c, "dx", dx, grads(c, tx), B, T, V, "b,c");
    } else
        missing(c, 2);
    double *g = grads(c, tx), sq = 0;
    for (int i = 0; i < B * T * V; i++)
        sq += g[i] * g[i];
    fprintf(c->out, "reference values: loss = %.6g, sum dx^2 = %.6g\n", ref_L, sq);
}

/* ---- the exercises ------------------------------------------------------------ */

typedef struct {
    const char *name, *title;
    int points;                  /* what check() grades: a test holds the two equal */
    void (*check)(ck *c);
    const char *prototypes;
} exercise;

static const exercise exercises[] = {
    {"rnn", "vanilla RNN step, forward over time, and BPTT", 12, check_rnn,
     "void rnn_step_forward(int B, int E, int H, const double *x, const double *h_prev,\n"
     "    const double *Wx, const double *Wh, const double *b, double *h_next);\n"
     "void rnn_step_backward(int B, int E, int H, const double *x, const double *h_prev,\n"
     "    const double *Wx, const double *Wh, const double *h_next, const double *dh_next,\n"
     "    double *dx, double *dh_prev, double *dWx, double *dWh, double *db);\n"
     "void rnn_forward(int B, int T, int E, int H, const double *x, const double *h0,\n"
     "    const double *Wx, const double *Wh, const double *b, double *h);\n"
     "void rnn_backward(int B, int T, int E, int H, const double *x, const double *h0,\n"
     "    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,\n"
     "    double *dx, double *dh0, double *dWx, double *dWh, double *db);\n"},
    {"lstm", "LSTM step and backward, forward over time and BPTT", 14, check_lstm,
     "void lstm_step_forward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,\n"
     "    const double *Wx, const double *Wh, const double *b, double *h_next, double *c_next);\n"
     "void lstm_step_backward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,\n"
     "    const double *Wx, const double *Wh, const double *b, const double *dh_next, const double *dc_next,\n"
     "    double *dx, double *dh_prev, double *dc_prev, double *dWx, double *dWh, double *db);\n"
     "void lstm_forward(int B, int T, int E, int H, const double *x, const double *h0,\n"
     "    const double *Wx, const double *Wh, const double *b, double *h);\n"
     "void lstm_backward(int B, int T, int E, int H, const double *x, const double *h0,\n"
     "    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,\n"
     "    double *dx, double *dh0, double *dWx, double *dWh, double *db);\n"},
    {"gru", "GRU step (the lecture's form, reset before the product) and its backward", 6, check_gru,
     "void gru_step_forward(int B, int E, int H, const double *x, const double *h_prev,\n"
     "    const double *Wx, const double *Wh, const double *b, double *h_next);\n"
     "void gru_step_backward(int B, int E, int H, const double *x, const double *h_prev,\n"
     "    const double *Wx, const double *Wh, const double *b, const double *dh_next,\n"
     "    double *dx, double *dh_prev, double *dWx, double *dWh, double *db);\n"},
    {"attention", "additive (Bahdanau) attention and its backward", 7, check_attention,
     "void attention_forward(int B, int S, int D, int E, int A, const double *q, const double *k,\n"
     "    const double *Wq, const double *Wk, const double *v, double *context, double *weights);\n"
     "void attention_backward(int B, int S, int D, int E, int A, const double *q, const double *k,\n"
     "    const double *Wq, const double *Wk, const double *v, const double *dcontext,\n"
     "    double *dq, double *dk, double *dWq, double *dWk, double *dv);\n"},
    {"softmax_loss", "temporal softmax loss with a mask, and its gradient", 2, check_loss,
     "double temporal_softmax_loss(int B, int T, int V, const double *x, const int *y, const int *mask,\n"
     "    double *dx);\n"},
};
enum { NEXERCISES = sizeof exercises / sizeof exercises[0] };

static const exercise *find(const char *name)
{
    for (int i = 0; i < NEXERCISES; i++)
        if (!strcmp(exercises[i].name, name))
            return &exercises[i];
    return NULL;
}

void course_list(FILE *out)
{
    for (int i = 0; i < NEXERCISES; i++)
        fprintf(out, "  %-13s %s\n", exercises[i].name, exercises[i].title);
}

const char *course_prototypes(const char *name)
{
    const exercise *x = find(name);
    return x ? x->prototypes : NULL;
}

/* ---- compile, load, grade in a child ------------------------------------------- */

/* Runs argv; returns its exit status (127 if it could not start). */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return 127;
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "seqgrad: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* In the child, a crash of the student's code ends it by that signal, even
 * where a sanitizer's handler would turn it into an exit status. */
static void die_by_signal(int sig)
{
    signal(sig, SIG_DFL);
    raise(sig);
}

static int grade_in_child(const exercise *x, const char *so, const char *file, FILE *out, struct shared *sh)
{
    fflush(out);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (int k = 0; k < 5; k++)
            signal(fatal[k], die_by_signal);
        alarm(60);                                  /* an endless loop ends as SIGALRM */
        ck c = {.out = out, .sh = sh};
        c.lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        if (!c.lib) {
            fprintf(out, "seqgrad: cannot load %s: %s\n", file, dlerror());
            _exit(EXIT_DATA);
        }
        sg_rng_seed(&c.rng, 1);
        c.t = sg_tape_new();
        fprintf(out, "exercise %s: %s\nchecking %s against the tape (f64, seed 1)\n", x->name, x->title, file);
        sg_grad_compare_header(out);
        x->check(&c);
        fprintf(out, "score: %d/%d\n", c.points, c.total);
        fflush(out);
        _exit(c.points == c.total ? EXIT_OK : EXIT_FAIL);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

int course_check(const char *name, const char *file, FILE *out, char *err, size_t n)
{
    const exercise *x = find(name);
    if (!x) {
        snprintf(err, n, "course: no exercise %s (seqgrad course list)", name);
        return EXIT_USAGE;
    }
    if (access(file, R_OK) != 0) {
        snprintf(err, n, "course: cannot read %s: %s", file, strerror(errno));
        return EXIT_DATA;
    }
    char dir[] = "/tmp/seqgrad-course-XXXXXX", hdr[64], so[64];
    if (!mkdtemp(dir)) {
        snprintf(err, n, "course: cannot make a temporary folder: %s", strerror(errno));
        return EXIT_FAIL;
    }
    snprintf(hdr, sizeof hdr, "%s/exercise.h", dir);
    snprintf(so, sizeof so, "%s/exercise.so", dir);
    int rc = EXIT_FAIL;
    struct shared *sh = MAP_FAILED;
    FILE *h = fopen(hdr, "w");
    if (!h || fprintf(h, "/* the prototypes of exercise %s */\n%s", x->name, x->prototypes) < 0 || fclose(h) != 0) {
        snprintf(err, n, "course: cannot write %s", hdr);
        goto out;
    }
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[] = {(char *)cc, "-std=c11", "-O1", "-g", "-Wall", "-fPIC", "-shared", "-include", hdr,
                    (char *)file, "-o", so, "-lm", NULL};
    fflush(out);
    int cs = run(argv);
    if (cs != 0) {
        snprintf(err, n, cs == 127 ? "course: cannot run the C compiler %s (install gcc, or set CC)"
                                   : "course: %s did not compile (the compiler's messages are above)",
                 cs == 127 ? cc : file);
        rc = EXIT_DATA;
        goto out;
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        snprintf(err, n, "course: out of memory");
        goto out;
    }
    *sh = (struct shared){.points = 0};
    int st = grade_in_child(x, so, file, out, sh);
    if (st < 0)
        snprintf(err, n, "course: cannot start the grader: %s", strerror(errno));
    else if (WIFSIGNALED(st)) {
        const char *what = sh->current[0] ? sh->current : "code";
        fprintf(out, "\nyour %s crashed (%s)%s\nscore: %d/%d\n", what, strsignal(WTERMSIG(st)),
                WTERMSIG(st) == SIGALRM ? ": it ran for more than 60 s" : "", sh->points, x->points);
        snprintf(err, n, "course: your %s crashed", what);
    } else if ((rc = WEXITSTATUS(st)) == EXIT_FAIL)
        snprintf(err, n, "course: %s does not pass every check of %s", file, x->name);
out:
    if (sh != MAP_FAILED)
        munmap(sh, sizeof *sh);
    unlink(so);
    unlink(hdr);
    rmdir(dir);
    return rc;
}
