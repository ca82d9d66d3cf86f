/*
 * mgu.h - the minimal gated unit (Zhou et al. 2016), the new cell the
 * examples define: new_cell.c checks and trains it, custom_tool.c registers
 * it with the seqgrad tool. Header-only, for examples.
 */
#ifndef SEQGRAD_EXAMPLES_MGU_H
#define SEQGRAD_EXAMPLES_MGU_H

#include <seqgrad/seqgrad.h>

/* ---- the new cell ----------------------------------------------------------
 *   f  = sigma(W_f x + b_f + U_f h)        the one gate
 *   n  = tanh (W_n x + b_n + U_n (f h))     candidate, from the gated state
 *   h' = (1 - f) h + f n
 * Its parameters, declared below with shapes in E (input) and H (hidden):
 *   weight_ih (2H, E) = [W_f; W_n], bias (2H) = [b_f; b_n],
 *   weight_f (H, H) = U_f, weight_n (H, H) = U_n.
 * They are created as rnn.weight_f_l0 and so on, drawn, optimised, clipped
 * and checkpointed like any other. Indices into run->cell->p follow the
 * declaration order.                                                          */

enum { MGU_W_IH, MGU_BIAS, MGU_U_F, MGU_U_N };

/* xp = x W_ih^T + b, for every time step at once */
static sg_tensor *mgu_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    sg_tensor *const *p = run->cell->p;
    return sg_add(t, sg_matmul_ex(t, x, p[MGU_W_IH], SG_TRANS_B), p[MGU_BIAS]);
}

static sg_status mgu_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    sg_tensor *const *p = run->cell->p;
    int H = run->cell->hidden_size;
    sg_tensor *h = s[0];
    /* f = sigma(W_f x + b_f + U_f h) */
    sg_tensor *f = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_matmul_ex(t, h, p[MGU_U_F], SG_TRANS_B)));
    /* n = tanh(W_n x + b_n + U_n (f h)) */
    sg_tensor *fh = sg_mul(t, f, h);
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, H, H), sg_matmul_ex(t, fh, p[MGU_U_N], SG_TRANS_B)));
    /* h' = (1 - f) h + f n, one op: h + f (n - h) */
    next[0] = sg_lerp(t, h, n, f);
    return sg_tape_error(t);
}

static const sg_cell_def mgu_cell = {
    .name = "mgu",
    .states = {"h"},
    .params = {{"weight_ih", "2H, E", SG_PARAM_INPUT},
               {"bias", "2H", SG_PARAM_UNIFORM},
               {"weight_f", "H, H", SG_PARAM_RECURRENT},
               {"weight_n", "H, H", SG_PARAM_RECURRENT}},
    .project = mgu_project,
    .step = mgu_step,
};

#endif
