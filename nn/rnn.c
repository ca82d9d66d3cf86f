/*
 * rnn.c - the sequence layer: unrolls any cell over time, layer by layer and
 * direction by direction, in a plain C loop. Each step's ops land on the
 * tape, so sg_backward is backpropagation through time.
 *
 * Per layer and direction:
 *   xp = project(x)               e.g. x W_ih^T + b: one GEMM for all B*T positions
 *   for t in 0..T-1 (T-1..0 in reverse):  s_t = step(xp[:,t], s_{t-1})
 *   with lengths: s_t = m_t ? step(...) : s_{t-1},  out_t = m_t h_t,
 *   m_t = [t < length_b], so padded steps change nothing and output zeros.
 */
#include <stdio.h>

#include "../core/internal.h"
#include "seqgrad/nn.h"

sg_rnn_opts sg_rnn_defaults(void)
{
    return (sg_rnn_opts){.layers = 1, .cell = sg_cell_defaults()};
}

sg_status sg_rnn_init(sg_rnn *r, const sg_cell_def *def, sg_params *ps, const char *prefix,
                      int input_size, int hidden_size, const sg_rnn_opts *o, sg_dtype dt, sg_rng *rng)
{
    sg_rnn_opts opts = o ? *o : sg_rnn_defaults();
    if (!r || !def)
        return sg_params_fail(ps, SG_ERR_NULL, "rnn: %s is NULL", r ? "the cell definition" : "the module");
    if (!ps)
        return SG_ERR_NULL;
    if (opts.layers < 1 || opts.layers > SG_RNN_MAX_LAYERS)
        return sg_params_fail(ps, SG_ERR_ARG, "rnn: %d layers (1 to %d allowed)", opts.layers, SG_RNN_MAX_LAYERS);
    if (!(opts.dropout >= 0 && opts.dropout < 1))
        return sg_params_fail(ps, SG_ERR_ARG, "rnn: dropout %g (0 <= p < 1)", opts.dropout);
    *r = (sg_rnn){.def = def, .input_size = input_size, .hidden_size = hidden_size, .layers = opts.layers,
                  .dirs = opts.bidirectional ? 2 : 1, .dropout = opts.dropout};
    for (int l = 0; l < r->layers; l++)
        for (int d = 0; d < r->dirs; d++) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "_l%d%s", l, d ? "_reverse" : "");
            int in = l == 0 ? input_size : r->dirs * hidden_size;
            sg_status s = sg_cell_init(&r->cell[l][d], def, ps, prefix, suffix, in, hidden_size, &opts.cell, dt, rng);
            if (s != SG_OK)
                return s;
        }
    return SG_OK;
}

static sg_tensor *fail_null(sg_tape *t) { return sg_tape_error(t) ? NULL : sg_fail(t, SG_ERR_NULL, "rnn: step failed"); }

/* Time steps recorded before their ops run (and what they made is given
 * back). With more than one thread a step's chain runs as one parallel
 * region (core/rows.c), whose fork, join and wait for the slower thread
 * cost 10-20 us each; a region of several steps pays them once. Enough
 * steps for about 2^25 multiply-adds of h W^T (LSTM, B = 32: 8 steps at
 * H = 128, 4 at 256, 1 at 512), at most MAX_WINDOW: what the window's
 * steps made is held until it ends (LSTM H = 256: 450 KB a step). */
enum { MAX_WINDOW = 8 };

static int steps_per_run(const sg_tape *t, int B, int H, int G)
{
    if (t->row_threads < 2 || B < 2 || H < 1 || G < 1)
        return 1;                              /* no row runs */
    double macs = (double)B * H * G;           /* (B, H) (H, G): G = gates x H */
    int w = (int)((double)(1 << 25) / macs);
    return w < 1 ? 1 : w > MAX_WINDOW ? MAX_WINDOW : w;
}

/* One direction of one layer over the whole sequence; returns (B,T,H) and
 * leaves the final states in last[]. */
static sg_tensor *run_direction(sg_tape *t, const sg_cell *c, sg_tensor *inp, bool reverse, sg_tensor *const *s0,
                                sg_tensor *const *mask, sg_tensor **last, sg_tensor **trace)
{
    int T = sg_tensor_dim(inp, 1), ns = sg_cell_n_states(c->def);
    sg_cell_run run;
    if (sg_cell_begin(t, c, &run) != SG_OK)
        return NULL;
    sg_tensor *before = sg_tape_last(t), *xp = sg_cell_project(t, &run, inp), *projected = sg_tape_last(t);
    if (!xp)
        return NULL;
    sg_tensor *s[SG_CELL_MAX_STATES] = {NULL}, *next[SG_CELL_MAX_STATES] = {NULL};
    for (int j = 0; j < ns; j++)
        s[j] = s0[j];
    sg_tensor **outs = sg_tape_alloc(t, (size_t)T, sizeof *outs);
    if (!outs)
        return NULL;
    /* the cell's h W^T products run on copies of W^T made at the first step */
    sg_tape_hold_transposes(t, true);
    int window = steps_per_run(t, sg_tensor_dim(inp, 0), c->hidden_size, sg_tensor_dim(xp, 2)), n_kept = 0;
    sg_tensor *mark = NULL, *kept[MAX_WINDOW * (1 + SG_CELL_MAX_STATES)];
    for (int k = 0; k < T; k++) {
        int tt = reverse ? T - 1 - k : k;
        if (!n_kept)
            mark = sg_tape_last(t);
        if (c->def->step(t, &run, sg_select(t, xp, 1, tt), s, next) != SG_OK) {
            sg_tape_hold_transposes(t, false);
            return fail_null(t);
        }
        sg_tensor *out = next[0];
        if (mask) {                 /* padded step: keep the state, output 0 */
            for (int j = 0; j < ns; j++)
                next[j] = sg_where(t, mask[tt], next[j], s[j]);
            out = sg_mul(t, out, mask[tt]);
        }
        for (int j = 0; j < ns; j++)
            s[j] = next[j];
        outs[tt] = out;
        /* gradients not kept: what the steps made besides their results
         * and no backward reads goes to the next steps (gates, slices,
         * sums), once the window's ops have run */
        kept[n_kept++] = out;
        for (int j = 0; j < ns; j++)
            kept[n_kept++] = s[j];
        if (n_kept == window * (1 + ns) || k == T - 1) {
            sg_tape_recycle(t, sg_tape_last(t), mark, kept, n_kept);
            n_kept = 0;
        }
        if (trace)
            trace[tt] = s[0];
    }
    sg_tape_hold_transposes(t, false);
    /* and what the projection made, read by the steps' slices alone (the
     * input itself is the caller's: recorded before) */
    sg_tape_recycle(t, projected, before, NULL, 0);
    for (int j = 0; j < ns; j++)
        last[j] = s[j];
    return sg_stack(t, outs, T, 1);
}

sg_tensor *sg_rnn_forward(sg_tape *t, const sg_rnn *r, sg_tensor *x, sg_tensor *const *h0,
                          const int *lengths, sg_rng *rng, sg_tensor **state_out)
{
    char sx[48], sh[48];
    if (!t || !x || !r || !r->def)
        return t ? fail_null(t) : NULL;
    int ns = sg_cell_n_states(r->def), H = r->hidden_size, LD = r->layers * r->dirs;
    if (sg_tensor_ndim(x) != 3 || sg_tensor_dim(x, 2) != r->input_size)
        return sg_fail(t, SG_ERR_SHAPE, "rnn: input %s, expected (B,T,%d)", sg_shape_str(x, sx), r->input_size);
    int B = sg_tensor_dim(x, 0), T = sg_tensor_dim(x, 1);
    sg_dtype dt = sg_tensor_dtype(x);
    for (int k = 0; h0 && k < ns; k++)
        if (!h0[k] || sg_tensor_ndim(h0[k]) != 3 || sg_tensor_dim(h0[k], 0) != LD ||
            sg_tensor_dim(h0[k], 1) != B || sg_tensor_dim(h0[k], 2) != H)
            return sg_fail(t, SG_ERR_SHAPE, "rnn: initial state %d is %s, expected (%d,%d,%d)", k,
                           h0[k] ? sg_shape_str(h0[k], sh) : "NULL", LD, B, H);

    sg_tensor **mask = lengths ? sg_tape_alloc(t, (size_t)T, sizeof *mask) : NULL;
    if (lengths && !mask)
        return NULL;
    for (int k = 0; lengths && k < T; k++) {
        mask[k] = sg_zeros(t, dt, 2, (int[]){B, 1});
        for (int b = 0; mask[k] && b < B; b++) {
            if (lengths[b] < 1 || lengths[b] > T)
                return sg_fail(t, SG_ERR_ARG, "rnn: length %d of sequence %d is outside [1,%d]", lengths[b], b, T);
            sg_tensor_set(mask[k], (size_t)b, k < lengths[b] ? 1.0 : 0.0);
        }
    }

    sg_tensor *finals[SG_CELL_MAX_STATES][2 * SG_RNN_MAX_LAYERS], *inp = x, *zero = sg_zeros(t, dt, 2, (int[]){B, H});
    for (int l = 0; l < r->layers; l++) {
        sg_tensor *dir_out[2];
        for (int d = 0; d < r->dirs; d++) {
            int slot = l * r->dirs + d;
            sg_tensor *s0[SG_CELL_MAX_STATES] = {zero, zero, zero, zero}, *last[SG_CELL_MAX_STATES] = {NULL};
            for (int k = 0; h0 && k < ns; k++)
                s0[k] = sg_select(t, h0[k], 0, slot);
            sg_tensor **trace = l == r->layers - 1 && d == 0 ? r->trace : NULL;
            dir_out[d] = run_direction(t, &r->cell[l][d], inp, d == 1, s0, lengths ? mask : NULL, last, trace);
            if (!dir_out[d])
                return fail_null(t);
            for (int k = 0; k < ns; k++)
                finals[k][slot] = last[k];
        }
        inp = r->dirs == 2 ? sg_concat(t, dir_out, 2, 2) : dir_out[0];
        if (l < r->layers - 1 && r->dropout > 0 && rng)
            inp = sg_dropout(t, inp, r->dropout, rng);
    }
    for (int k = 0; state_out && k < ns; k++)
        state_out[k] = sg_stack(t, finals[k], LD, 0);
    return inp;
}

sg_status sg_rnn_lengths_from_mask(const sg_tensor *mask, int *lengths)
{
    if (!mask || !lengths)
        return SG_ERR_NULL;
    if (sg_tensor_ndim(mask) != 2)
        return SG_ERR_SHAPE;
    int B = sg_tensor_dim(mask, 0), T = sg_tensor_dim(mask, 1);
    for (int b = 0; b < B; b++) {
        int len = 0;
        while (len < T && sg_tensor_get(mask, (size_t)(b * T + len)) != 0)
            len++;
        for (int k = len; k < T; k++)
            if (sg_tensor_get(mask, (size_t)(b * T + k)) != 0)
                return SG_ERR_ARG;
        if (len == 0)
            return SG_ERR_ARG;
        lengths[b] = len;
    }
    return SG_OK;
}
