/*
 * cells.c - the recurrent cells, each one step of op calls under its formula.
 * xp is this step's slice of the hoisted input projection
 *   xp = x W_ih^T + b_ih (+ b_hh when the cell hoists it)      (B, G*H)
 * and h W_hh^T is one GEMM for all G gates, split afterwards. Gate order and
 * weight layout are PyTorch's: RNN (1), LSTM (i, f, g, o), GRU (r, z, n).
 * No derivative is written here: the tape differentiates the ops.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "seqgrad/nn.h"
#include "guard.h"

/* SG_OK if y exists, else the tape's error. */
static sg_status status_of(sg_tape *t, const sg_tensor *y)
{
    sg_status s = sg_tape_error(t);
    return y ? SG_OK : s != SG_OK ? s : SG_ERR_NULL;
}

/* xp + h W_hh^T: the pre-activations of all gates, (B, G*H) */
static sg_tensor *gates(sg_tape *t, const sg_cell *c, sg_tensor *xp, sg_tensor *h)
{
    return sg_add(t, xp, sg_matmul_ex(t, h, c->w_hh, SG_TRANS_B));
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

const sg_cell_def sg_rnn_tanh_cell = {"rnn_tanh", 1, 1, true, NULL, rnn_tanh_step};
const sg_cell_def sg_rnn_relu_cell = {"rnn_relu", 1, 1, true, NULL, rnn_relu_step};
const sg_cell_def sg_rnn_sigmoid_cell = {"rnn_sigmoid", 1, 1, true, NULL, rnn_sigmoid_step};

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

const sg_cell_def sg_lstm_cell = {"lstm", 4, 2, true, NULL, lstm_step};

/* ---- GRU, classic form (the lecture) -----------------------------------------------
 *   r = sigma(W_ir x + b_ir + U_r h + b_hr)      reset gate
 *   z = sigma(W_iz x + b_iz + U_z h + b_hz)      update gate
 *   n = tanh (W_in x + b_in + U_n (r h) + b_hn)   the reset gate acts before U_n
 *   h' = (1 - z) h + z n
 * U_rz and U_n are row blocks of W_hh, sliced once per sequence.                    */

static sg_status gru_begin(sg_tape *t, sg_cell_run *run)
{
    int H = run->cell->hidden_size;
    run->w[0] = sg_narrow(t, run->cell->w_hh, 0, 0, 2 * H);    /* U_rz (2H,H) */
    run->w[1] = sg_narrow(t, run->cell->w_hh, 0, 2 * H, H);    /* U_n  (H,H) */
    return status_of(t, run->w[1]);
}

static sg_status gru_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    int H = run->cell->hidden_size;
    sg_tensor *h = s[0];
    sg_tensor *rz = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, 2 * H), sg_matmul_ex(t, h, run->w[0], SG_TRANS_B)));
    sg_tensor *r = sg_narrow(t, rz, 1, 0, H), *z = sg_narrow(t, rz, 1, H, H);
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, 2 * H, H),
                                     sg_matmul_ex(t, sg_mul(t, r, h), run->w[1], SG_TRANS_B)));
    next[0] = sg_add(t, sg_mul(t, sg_one_minus(t, z), h), sg_mul(t, z, n));
    return status_of(t, next[0]);
}

const sg_cell_def sg_gru_cell = {"gru", 3, 1, true, gru_begin, gru_step};

/* ---- GRU, reset-after form (torch.nn.GRU) -------------------------------------------
 *   gh = W_hh h + b_hh                            all three gates, one GEMM
 *   r = sigma(W_ir x + b_ir + gh_r),  z = sigma(W_iz x + b_iz + gh_z)
 *   n = tanh (W_in x + b_in + r gh_n)             the reset gate acts after W_hn
 *   h' = (1 - z) n + z h                          (z keeps the old state here)
 * b_hh cannot be hoisted: b_hn sits inside r (.).                                     */

static sg_status gru_ra_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    const sg_cell *c = run->cell;
    int H = c->hidden_size;
    sg_tensor *h = s[0];
    sg_tensor *gh = sg_matmul_ex(t, h, c->w_hh, SG_TRANS_B);
    if (c->b_hh)
        gh = sg_add(t, gh, c->b_hh);
    sg_tensor *rz = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, 2 * H), sg_narrow(t, gh, 1, 0, 2 * H)));
    sg_tensor *r = sg_narrow(t, rz, 1, 0, H), *z = sg_narrow(t, rz, 1, H, H);
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, 2 * H, H), sg_mul(t, r, sg_narrow(t, gh, 1, 2 * H, H))));
    next[0] = sg_add(t, sg_mul(t, sg_one_minus(t, z), n), sg_mul(t, z, h));
    return status_of(t, next[0]);
}

const sg_cell_def sg_gru_reset_after_cell = {"gru_reset_after", 3, 1, false, NULL, gru_ra_step};

/* ---- creation and a single step ---------------------------------------------------- */

sg_cell_opts sg_cell_defaults(void) { return (sg_cell_opts){.bias = true, .init = SG_INIT_PYTORCH}; }

static sg_tensor *add_param(sg_params *ps, const char *prefix, const char *name, const char *suffix, sg_tensor *p)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", name, suffix ? suffix : "");
    return sg_params_add(ps, full, p);
}

sg_status sg_cell_init(sg_cell *c, const sg_cell_def *def, sg_params *ps, const char *prefix,
                       const char *suffix, int input_size, int hidden_size, const sg_cell_opts *o,
                       sg_dtype dt, sg_rng *rng)
{
    sg_cell_opts opts = o ? *o : sg_cell_defaults();
    if (!c || !def)
        return sg_params_fail(ps, SG_ERR_NULL, "cell %s: %s is NULL", prefix ? prefix : "", c ? "the definition" : "the cell");
    if (!ps)
        return SG_ERR_NULL;
    if (def->gates < 1 || def->n_state < 1 || def->n_state > 2 || !def->step)
        return sg_params_fail(ps, SG_ERR_ARG, "cell %s: %d gates, %d states%s (at least 1 gate, 1 or 2 states, a step)",
                              def->name ? def->name : "?", def->gates, def->n_state, def->step ? "" : ", no step");
    int G = def->gates, H = hidden_size;
    if (input_size < 1 || hidden_size < 1)
        return sg_params_fail(ps, SG_ERR_ARG, "%s: input size %d, hidden size %d (each at least 1)",
                              def->name ? def->name : "cell", input_size, hidden_size);
    *c = (sg_cell){.def = def, .input_size = input_size, .hidden_size = H};
    c->w_ih = add_param(ps, prefix, "weight_ih", suffix, sg_param_new(dt, 2, (int[]){G * H, input_size}));
    c->w_hh = add_param(ps, prefix, "weight_hh", suffix, sg_param_new(dt, 2, (int[]){G * H, H}));
    if (!c->w_ih || !c->w_hh)
        return SG_ERR_ARG;
    sg_init_weight(c->w_ih, opts.init, H, false, rng);
    sg_init_weight(c->w_hh, opts.init, H, true, rng);
    if (!opts.bias)
        return SG_OK;
    c->b_ih = add_param(ps, prefix, "bias_ih", suffix, sg_param_new(dt, 1, (int[]){G * H}));
    c->b_hh = add_param(ps, prefix, "bias_hh", suffix, sg_param_new(dt, 1, (int[]){G * H}));
    if (!c->b_ih || !c->b_hh)
        return SG_ERR_ARG;
    if (opts.init == SG_INIT_PYTORCH) {
        sg_init_uniform(c->b_ih, 1 / sqrt((double)H), rng);
        sg_init_uniform(c->b_hh, 1 / sqrt((double)H), rng);
    }
    if (def == &sg_lstm_cell && opts.forget_bias != 0)
        for (int j = H; j < 2 * H; j++) {    /* the forget block: rows H..2H */
            sg_tensor_set(c->b_ih, (size_t)j, opts.forget_bias);
            sg_tensor_set(c->b_hh, (size_t)j, 0.0);
        }
    return SG_OK;
}

/* xp = x W_ih^T + b_ih (+ b_hh): (...,E) -> (...,G*H) */
sg_tensor *sg_cell_project(sg_tape *t, const sg_cell *c, sg_tensor *x)
{
    if (!sg_nn_ready(t, c && c->def ? c : NULL, "cell: the module or its definition"))
        return NULL;
    sg_tensor *xp = sg_matmul_ex(t, x, c->w_ih, SG_TRANS_B);
    if (c->b_ih)
        xp = sg_add(t, xp, c->b_ih);
    if (c->b_hh && c->def->hoist_b_hh)
        xp = sg_add(t, xp, c->b_hh);
    return xp;
}

sg_status sg_cell_begin(sg_tape *t, const sg_cell *c, sg_cell_run *run)
{
    if (!sg_nn_ready(t, c && c->def && run ? c : NULL, "cell: the module or its definition"))
        return sg_nn_status(t);
    *run = (sg_cell_run){.cell = c};
    return c->def->begin ? c->def->begin(t, run) : SG_OK;
}

sg_status sg_cell_step_run(sg_tape *t, const sg_cell_run *run, sg_tensor *x, sg_tensor *const *state, sg_tensor **next)
{
    if (!sg_nn_ready(t, run && run->cell && state && next ? run : NULL, "cell step: the run, state or next"))
        return sg_nn_status(t);
    sg_tensor *xp = sg_cell_project(t, run->cell, x);
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

sg_status sg_cell_register(const char *name, const sg_cell_def *def)
{
    if (!name || !def || sg_cell_lookup(name))
        return SG_ERR_ARG;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (!registry[i].name) {
            registry[i].name = name, registry[i].def = def;
            return SG_OK;
        }
    return SG_ERR_ARG;
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
