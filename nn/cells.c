/*
 * cells.c - the recurrent cells, each one step of op calls under its formula.
 * xp is this step's slice of the hoisted input projection
 *   xp = x W_ih^T + b_ih (+ b_hh when the cell hoists it)      (B, G*H)
 * and h W_hh^T is one GEMM for all G gates, split afterwards. Gate order and
 * weight layout are PyTorch's: RNN (1), LSTM (i, f, g, o), GRU (r, z, n).
 * No derivative is written here: the tape differentiates the ops.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "seqgrad/nn.h"
#include "cellsize.h"
#include "guard.h"

/* SG_OK if y exists, else the tape's error. */
static sg_status status_of(sg_tape *t, const sg_tensor *y)
{
    sg_status s = sg_tape_error(t);
    return y ? SG_OK : s != SG_OK ? s : SG_ERR_NULL;
}

/* The built-in cells' parameters, in PyTorch's order and names. */
enum { W_IH, W_HH, B_IH, B_HH };
#define STANDARD_PARAMS(G, forget)                                                                     \
    {{"weight_ih", G "H, E", SG_PARAM_INPUT}, {"weight_hh", G "H, H", SG_PARAM_RECURRENT},          \
     {"bias_ih", G "H", SG_PARAM_BIAS, 0, forget}, {"bias_hh", G "H", SG_PARAM_BIAS, 0, forget}}

/* a + b, where b may be absent (a bias under bias = false) */
static sg_tensor *add_opt(sg_tape *t, sg_tensor *a, sg_tensor *b) { return b ? sg_add(t, a, b) : a; }

/* x W^T + b in one op where there is a bias (a GEMM onto rows of b) */
static sg_tensor *affine(sg_tape *t, sg_tensor *x, sg_tensor *w, sg_tensor *b)
{
    return b ? sg_addmm(t, x, w, b, SG_TRANS_B) : sg_matmul_ex(t, x, w, SG_TRANS_B);
}

/* xp = x W_ih^T + (b_ih + b_hh): both biases hoisted out of the time loop,
 * summed first (an H-sized add, not a pass over all B*T positions) */
static sg_tensor *project_both_biases(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    sg_tensor *const *p = run->cell->p;
    return affine(t, x, p[W_IH], p[B_IH] ? add_opt(t, p[B_IH], p[B_HH]) : p[B_HH]);
}

/* xp = x W_ih^T + b_ih: b_hh stays in the step */
static sg_tensor *project_input_bias(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    sg_tensor *const *p = run->cell->p;
    return affine(t, x, p[W_IH], p[B_IH]);
}

/* xp + h W_hh^T: the pre-activations of all gates, (B, G*H), in one op
 * (GEMM adds the product to a copy of xp) */
static sg_tensor *gates(sg_tape *t, const sg_cell *c, sg_tensor *xp, sg_tensor *h)
{
    return sg_addmm(t, h, c->p[W_HH], xp, SG_TRANS_B);
}

/* ---- simple RNN: h' = f(W_ih x + b_ih + W_hh h + b_hh) -------------------------- */

static sg_status rnn_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next,
                          sg_tensor *(*f)(sg_tape *, sg_tensor *))
{
    next[0] = f(t, gates(t, run->cell, xp, s[0]));
    return status_of(t, next[0]);
}

static sg_status rnn_tanh_step(sg_tape *t, const sg_cell_run *r, sg_tensor *xp, sg_tensor *const *s, sg_tensor **n)
{
    return rnn_step(t, r, xp, s, n, sg_tanh);
}

static sg_status rnn_relu_step(sg_tape *t, const sg_cell_run *r, sg_tensor *xp, sg_tensor *const *s, sg_tensor **n)
{
    return rnn_step(t, r, xp, s, n, sg_relu);
}

static sg_status rnn_sigmoid_step(sg_tape *t, const sg_cell_run *r, sg_tensor *xp, sg_tensor *const *s, sg_tensor **n)
{
    return rnn_step(t, r, xp, s, n, sg_sigmoid);
}

#define RNN_CELL(kind, f) \
    {.name = kind, .states = {"h"}, .params = STANDARD_PARAMS("", 0), .project = project_both_biases, .step = f}
const sg_cell_def sg_rnn_tanh_cell = RNN_CELL("rnn_tanh", rnn_tanh_step);
const sg_cell_def sg_rnn_relu_cell = RNN_CELL("rnn_relu", rnn_relu_step);
const sg_cell_def sg_rnn_sigmoid_cell = RNN_CELL("rnn_sigmoid", rnn_sigmoid_step);

/* ---- LSTM ------------------------------------------------------------------------
 *   i = sigma(W_ii x + b_ii + W_hi h + b_hi)      input gate
 *   f = sigma(W_if x + b_if + W_hf h + b_hf)      forget gate
 *   g = tanh (W_ig x + b_ig + W_hg h + b_hg)      candidate
 *   o = sigma(W_io x + b_io + W_ho h + b_ho)      output gate
 *   c' = f c + i g,   h' = o tanh(c')                                              */

static sg_status lstm_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    int H = run->cell->hidden_size;
    sg_tensor *a = gates(t, run->cell, xp, s[0]);
    sg_tensor *i = sg_sigmoid(t, sg_narrow(t, a, 1, 0, H));
    sg_tensor *f = sg_sigmoid(t, sg_narrow(t, a, 1, H, H));
    sg_tensor *g = sg_tanh(t, sg_narrow(t, a, 1, 2 * H, H));
    sg_tensor *o = sg_sigmoid(t, sg_narrow(t, a, 1, 3 * H, H));
    next[1] = sg_add(t, sg_mul(t, f, s[1]), sg_mul(t, i, g));
    next[0] = sg_mul(t, o, sg_tanh(t, next[1]));
    return status_of(t, next[0]);
}

const sg_cell_def sg_lstm_cell = {.name = "lstm", .states = {"h", "c"}, .params = STANDARD_PARAMS("4", 2),
                                  .project = project_both_biases, .step = lstm_step};

/* ---- GRU, classic form (the lecture) -----------------------------------------------
 *   r = sigma(W_ir x + b_ir + U_r h + b_hr)      reset gate
 *   z = sigma(W_iz x + b_iz + U_z h + b_hz)      update gate
 *   n = tanh (W_in x + b_in + U_n (r h) + b_hn)   the reset gate acts before U_n
 *   h' = (1 - z) h + z n
 * U_rz and U_n are row blocks of W_hh, sliced once per sequence.                    */

static sg_status gru_begin(sg_tape *t, sg_cell_run *run)
{
    int H = run->cell->hidden_size;
    run->w[0] = sg_narrow(t, run->cell->p[W_HH], 0, 0, 2 * H);    /* U_rz (2H,H) */
    run->w[1] = sg_narrow(t, run->cell->p[W_HH], 0, 2 * H, H);    /* U_n  (H,H) */
    return status_of(t, run->w[1]);
}

static sg_status gru_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    int H = run->cell->hidden_size;
    sg_tensor *h = s[0], *uh = sg_matmul_ex(t, h, run->w[0], SG_TRANS_B);      /* U_rz h, (B, 2H) */
    /* r and z each by its own sigmoid: two slices of one would keep a copy */
    sg_tensor *r = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_narrow(t, uh, 1, 0, H)));
    sg_tensor *z = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, H, H), sg_narrow(t, uh, 1, H, H)));
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, 2 * H, H),
                                     sg_matmul_ex(t, sg_mul(t, r, h), run->w[1], SG_TRANS_B)));
    next[0] = sg_lerp(t, h, n, z);          /* (1 - z) h + z n */
    return status_of(t, next[0]);
}

const sg_cell_def sg_gru_cell = {.name = "gru", .states = {"h"}, .params = STANDARD_PARAMS("3", 0),
                                 .begin = gru_begin, .project = project_both_biases, .step = gru_step};

/* ---- GRU, reset-after form (torch.nn.GRU) -------------------------------------------
 *   gh = W_hh h + b_hh                            all three gates, one GEMM onto rows of b_hh
 *   r = sigma(W_ir x + b_ir + gh_r),  z = sigma(W_iz x + b_iz + gh_z)
 *   n = tanh (W_in x + b_in + r gh_n)             the reset gate acts after W_hn
 *   h' = (1 - z) n + z h                          (z keeps the old state here)
 * b_hh cannot be hoisted: b_hn sits inside r (.).                                     */

static sg_status gru_ra_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    const sg_cell *c = run->cell;
    int H = c->hidden_size;
    sg_tensor *h = s[0];
    sg_tensor *gh = affine(t, h, c->p[W_HH], c->p[B_HH]);     /* b_hh in the GEMM */
    /* r and z each by its own sigmoid: two slices of one would keep a copy */
    sg_tensor *r = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_narrow(t, gh, 1, 0, H)));
    sg_tensor *z = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, H, H), sg_narrow(t, gh, 1, H, H)));
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, 2 * H, H), sg_mul(t, r, sg_narrow(t, gh, 1, 2 * H, H))));
    next[0] = sg_lerp(t, n, h, z);          /* (1 - z) n + z h */
    return status_of(t, next[0]);
}

const sg_cell_def sg_gru_reset_after_cell = {.name = "gru_reset_after", .states = {"h"},
                                             .params = STANDARD_PARAMS("3", 0),
                                             .project = project_input_bias, .step = gru_ra_step};

/* ---- sizes in terms of E and H ------------------------------------------------------ */

int sg_size_parse(const char *s, size_t len, sg_size_form *f, size_t *bad)
{
    *f = (sg_size_form){0, 0, 0};
    size_t i = 0;
    int sign = 1, terms = 0;
    for (;;) {
        while (i < len && s[i] == ' ')
            i++;
        long n = 1;
        bool number = false;
        if (i < len && s[i] >= '0' && s[i] <= '9') {
            for (n = 0; i < len && s[i] >= '0' && s[i] <= '9' && n < 100000000; i++)
                n = n * 10 + (s[i] - '0');
            number = true;
            while (i < len && s[i] == ' ')
                i++;
            if (i < len && s[i] == '*') {
                i++;
                while (i < len && s[i] == ' ')
                    i++;
                number = false;     /* a factor must follow */
            }
        }
        if (i < len && (s[i] == 'H' || s[i] == 'E')) {
            *(s[i] == 'H' ? &f->h : &f->e) += sign * n;
            i++;
        } else if (number) {
            f->c += sign * n;
        } else {
            *bad = i;
            return -1;
        }
        terms++;
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            return 0;
        if (s[i] != '+' && s[i] != '-') {
            *bad = i;
            return -1;
        }
        sign = s[i++] == '+' ? 1 : -1;
    }
}

int sg_shape_parse(const char *s, sg_size_form *dims, size_t *bad)
{
    const char *comma = strchr(s, ',');
    size_t len0 = comma ? (size_t)(comma - s) : strlen(s);
    if (sg_size_parse(s, len0, &dims[0], bad) != 0)
        return -1;
    if (!comma)
        return 1;
    if (strchr(comma + 1, ',')) {
        *bad = (size_t)(strchr(comma + 1, ',') - s);
        return -1;
    }
    if (sg_size_parse(comma + 1, strlen(comma + 1), &dims[1], bad) != 0) {
        *bad += len0 + 1;
        return -1;
    }
    return 2;
}

/* ---- definitions: checked once, at registration and at init ------------------------ */

static bool is_name(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

int sg_cell_n_states(const sg_cell_def *def)
{
    int n = 0;
    while (def && n < SG_CELL_MAX_STATES && def->states[n])
        n++;
    return n;
}

static int n_params(const sg_cell_def *def)
{
    int n = 0;
    while (n < SG_CELL_MAX_PARAMS && def->params[n].name)
        n++;
    return n;
}

static sg_status bad_def(char *err, size_t n, const char *cell, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static sg_status bad_def(char *err, size_t n, const char *cell, const char *fmt, ...)
{
    if (err && n) {
        int len = snprintf(err, n, "cell %s: ", cell);
        va_list ap;
        va_start(ap, fmt);
        if (len >= 0 && (size_t)len < n)
            vsnprintf(err + len, n - (size_t)len, fmt, ap);
        va_end(ap);
    }
    return SG_ERR_ARG;
}

sg_status sg_cell_check(const sg_cell_def *def, char *err, size_t n)
{
    if (!def)
        return bad_def(err, n, "?", "the definition is NULL");
    const char *cell = def->name ? def->name : "?";
    if (!is_name(def->name))
        return bad_def(err, n, cell, "name: \"%s\" is not a name (letters, digits, _)", cell);
    if (!def->step)
        return bad_def(err, n, cell, "step: no step function");
    int ns = sg_cell_n_states(def), np = n_params(def);
    if (ns == 0)
        return bad_def(err, n, cell, "states: none (a cell needs at least h)");
    for (int i = 0; i < ns; i++) {
        if (!is_name(def->states[i]))
            return bad_def(err, n, cell, "states[%d]: \"%s\" is not a name", i, def->states[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(def->states[i], def->states[j]))
                return bad_def(err, n, cell, "states[%d]: %s is declared twice", i, def->states[i]);
    }
    for (int i = 0; i < np; i++) {
        const sg_param_decl *d = &def->params[i];
        if (!is_name(d->name))
            return bad_def(err, n, cell, "params[%d]: \"%s\" is not a name", i, d->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(d->name, def->params[j].name))
                return bad_def(err, n, cell, "params[%d]: %s is declared twice (also params[%d])", i, d->name, j);
        for (int j = 0; j < ns; j++)
            if (!strcmp(d->name, def->states[j]))
                return bad_def(err, n, cell, "params[%d]: %s is also a state", i, d->name);
        sg_size_form dims[2];
        size_t bad = 0;
        int nd = d->shape ? sg_shape_parse(d->shape, dims, &bad) : -1;
        if (nd < 0)
            return bad_def(err, n, cell, "params[%d] %s: shape \"%s\" is not 1 or 2 sizes in E and H (at \"%s\")", i,
                           d->name, d->shape ? d->shape : "", d->shape ? d->shape + bad : "");
        if ((d->init == SG_PARAM_XAVIER || d->init == SG_PARAM_ORTHOGONAL || d->init == SG_PARAM_INPUT ||
             d->init == SG_PARAM_RECURRENT) && nd != 2)
            return bad_def(err, n, cell, "params[%d] %s: this initialiser needs 2 dimensions, the shape has 1", i, d->name);
        if ((unsigned)d->init > SG_PARAM_CONSTANT)
            return bad_def(err, n, cell, "params[%d] %s: unknown initialiser %d", i, d->name, (int)d->init);
        if (d->forget_block < 0)
            return bad_def(err, n, cell, "params[%d] %s: forget_block %d", i, d->name, d->forget_block);
    }
    if (np == SG_CELL_MAX_PARAMS && def->params[np].name)
        return bad_def(err, n, cell, "params: more than %d", SG_CELL_MAX_PARAMS);
    return SG_OK;
}

/* ---- creation --------------------------------------------------------------------- */

sg_cell_opts sg_cell_defaults(void) { return (sg_cell_opts){.bias = true, .init = SG_INIT_PYTORCH}; }

static void init_param(sg_tensor *p, const sg_param_decl *d, const sg_cell_opts *o, int H, sg_rng *rng)
{
    int rows = sg_tensor_dim(p, 0), block = rows % H == 0 ? H : rows;
    switch (d->init) {
    case SG_PARAM_UNIFORM:
        sg_init_uniform(p, 1 / sqrt((double)H), rng);
        break;
    case SG_PARAM_INPUT:
    case SG_PARAM_RECURRENT:
        sg_init_weight(p, o->init, block, d->init == SG_PARAM_RECURRENT, rng);
        break;
    case SG_PARAM_BIAS:
        if (o->init == SG_INIT_PYTORCH)
            sg_init_uniform(p, 1 / sqrt((double)H), rng);
        break;
    case SG_PARAM_XAVIER:
        sg_init_weight(p, SG_INIT_XAVIER, rows, false, rng);
        break;
    case SG_PARAM_ORTHOGONAL:
        sg_init_weight(p, SG_INIT_ORTHOGONAL, rows, true, rng);
        break;
    case SG_PARAM_ZEROS:
    case SG_PARAM_ONES:
    case SG_PARAM_CONSTANT:
        for (size_t i = 0; i < sg_tensor_size(p); i++)
            sg_tensor_set(p, i, d->init == SG_PARAM_ONES ? 1.0 : d->init == SG_PARAM_CONSTANT ? d->value : 0.0);
        break;
    }
}

sg_status sg_cell_init(sg_cell *c, const sg_cell_def *def, sg_params *ps, const char *prefix,
                       const char *suffix, int input_size, int hidden_size, const sg_cell_opts *o,
                       sg_dtype dt, sg_rng *rng)
{
    sg_cell_opts opts = o ? *o : sg_cell_defaults();
    char err[300];
    if (!c || !def)
        return sg_params_fail(ps, SG_ERR_NULL, "cell %s: %s is NULL", prefix ? prefix : "", c ? "the definition" : "the cell");
    if (!ps)
        return SG_ERR_NULL;
    if (sg_cell_check(def, err, sizeof err) != SG_OK)
        return sg_params_fail(ps, SG_ERR_ARG, "%s", err);
    int E = input_size, H = hidden_size;
    if (E < 1 || H < 1)
        return sg_params_fail(ps, SG_ERR_ARG, "%s: input size %d, hidden size %d (each at least 1)", def->name, E, H);
    if (def->check && def->check(def, E, H, err, sizeof err) != SG_OK)
        return sg_params_fail(ps, SG_ERR_SHAPE, "%s", err);
    *c = (sg_cell){.def = def, .input_size = E, .hidden_size = H, .n_params = n_params(def)};
    bool forget_set = false;
    for (int i = 0; i < c->n_params; i++) {
        const sg_param_decl *d = &def->params[i];
        if (d->init == SG_PARAM_BIAS && !opts.bias)
            continue;
        sg_size_form dims[2];
        size_t bad;
        int nd = sg_shape_parse(d->shape, dims, &bad), shape[2];
        for (int k = 0; k < nd; k++) {
            long v = sg_size_eval(dims[k], E, H);
            if (v < 1 || v > (1L << 30))
                return sg_params_fail(ps, SG_ERR_ARG, "cell %s: params[%d] %s: shape \"%s\" has size %ld at E=%d, H=%d",
                                      def->name, i, d->name, d->shape, v, E, H);
            shape[k] = (int)v;
        }
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", d->name, suffix ? suffix : "");
        if (!(c->p[i] = sg_params_add(ps, full, sg_param_new(dt, nd, shape))))
            return sg_params_error(ps) ? sg_params_error(ps) : SG_ERR_ARG;
        init_param(c->p[i], d, &opts, H, rng);
        int k = d->forget_block;
        if (k > 0 && opts.forget_bias != 0 && (long)k * H <= shape[0]) {
            int cols = nd == 2 ? shape[1] : 1;
            for (size_t j = (size_t)(k - 1) * H * cols; j < (size_t)k * H * cols; j++)
                sg_tensor_set(c->p[i], j, forget_set ? 0.0 : opts.forget_bias);
            forget_set = true;
        }
    }
    return SG_OK;
}

sg_tensor *sg_cell_param(const sg_cell *c, const char *name)
{
    for (int i = 0; c && c->def && name && i < c->n_params; i++)
        if (!strcmp(c->def->params[i].name, name))
            return c->p[i];
    return NULL;
}

/* ---- running ------------------------------------------------------------------------ */

sg_status sg_cell_begin(sg_tape *t, const sg_cell *c, sg_cell_run *run)
{
    if (!sg_nn_ready(t, c && c->def && run ? c : NULL, "cell: the module or its definition"))
        return sg_nn_status(t);
    *run = (sg_cell_run){.cell = c, .ctx = c->def->ctx};
    return c->def->begin ? c->def->begin(t, run) : SG_OK;
}

sg_tensor *sg_cell_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    if (!sg_nn_ready(t, run && run->cell && run->cell->def && x ? run : NULL, "cell project: the run or x"))
        return NULL;
    return run->cell->def->project ? run->cell->def->project(t, run, x) : x;
}

sg_status sg_cell_step_run(sg_tape *t, const sg_cell_run *run, sg_tensor *x, sg_tensor *const *state, sg_tensor **next)
{
    if (!sg_nn_ready(t, run && run->cell && state && next ? run : NULL, "cell step: the run, state or next"))
        return sg_nn_status(t);
    sg_tensor *xp = sg_cell_project(t, run, x);
    if (!xp)
        return status_of(t, xp);
    return run->cell->def->step(t, run, xp, state, next);
}

sg_status sg_cell_step(sg_tape *t, const sg_cell *c, sg_tensor *x, sg_tensor *const *state, sg_tensor **next)
{
    sg_cell_run run;
    sg_status s = sg_cell_begin(t, c, &run);
    return s != SG_OK ? s : sg_cell_step_run(t, &run, x, state, next);
}

/* ---- cells by name ------------------------------------------------------------------ */

static struct { const char *name; const sg_cell_def *def; } registry[32] = {
    {"rnn", &sg_rnn_tanh_cell},      {"rnn_relu", &sg_rnn_relu_cell}, {"rnn_sigmoid", &sg_rnn_sigmoid_cell},
    {"lstm", &sg_lstm_cell},         {"gru", &sg_gru_cell},           {"gru_reset_after", &sg_gru_reset_after_cell},
};

sg_status sg_cell_register(const sg_cell_def *def, char *err, size_t n)
{
    char scratch[8];
    if (!err)
        err = scratch, n = sizeof scratch;
    if (sg_cell_check(def, err, n) != SG_OK)
        return SG_ERR_ARG;
    if (sg_cell_lookup(def->name))
        return bad_def(err, n, def->name, "name: taken by another cell");
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (!registry[i].name) {
            registry[i].name = def->name, registry[i].def = def;
            return SG_OK;
        }
    return bad_def(err, n, def->name, "name: the table of cells is full (%zu)", sizeof registry / sizeof registry[0]);
}

const sg_cell_def *sg_cell_lookup(const char *name)
{
    for (size_t i = 0; name && i < sizeof registry / sizeof registry[0] && registry[i].name; i++)
        if (strcmp(registry[i].name, name) == 0)
            return registry[i].def;
    return NULL;
}

void sg_cell_names(char *out, size_t n)
{
    size_t len = 0;
    if (n)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof registry / sizeof registry[0] && registry[i].name && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "|" : "", registry[i].name);
}
