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
 * Two gate blocks: W_ih is (2H, E) = [W_f; W_n], W_hh is (2H, H) = [U_f; U_n].
 * The sequence layer hands step() xp = x W_ih^T + b for this time step.      */

static sg_status mgu_begin(sg_tape *t, sg_cell_run *run)      /* once per sequence */
{
    int H = run->cell->hidden_size;
    run->w[0] = sg_narrow(t, run->cell->w_hh, 0, 0, H);      /* U_f */
    run->w[1] = sg_narrow(t, run->cell->w_hh, 0, H, H);      /* U_n */
    return sg_tape_error(t);
}

static sg_status mgu_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    int H = run->cell->hidden_size;
    sg_tensor *h = s[0];
    /* f = sigma(W_f x + b_f + U_f h) */
    sg_tensor *f = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_matmul_ex(t, h, run->w[0], SG_TRANS_B)));
    /* n = tanh(W_n x + b_n + U_n (f h)) */
    sg_tensor *fh = sg_mul(t, f, h);
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, H, H), sg_matmul_ex(t, fh, run->w[1], SG_TRANS_B)));
    /* h' = (1 - f) h + f n */
    next[0] = sg_add(t, sg_mul(t, sg_one_minus(t, f), h), sg_mul(t, f, n));
    return sg_tape_error(t);
}

/* name, gate blocks, state tensors, b_hh joins the hoisted projection, begin, step */
static const sg_cell_def mgu_cell = {"mgu", 2, 1, true, mgu_begin, mgu_step};

#endif
