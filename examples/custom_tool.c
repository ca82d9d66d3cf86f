/*
 * custom_tool.c - the seqgrad tool with a cell of your own: register it
 * under a name, then hand over to seqgrad_main(). A config then says
 * `model: {kind: mgu}` (examples/configs/char_mgu.yaml):
 *
 *   build/examples/custom_tool train examples/configs/char_mgu.yaml
 *
 * The cell is the minimal gated unit of examples/new_cell.c.
 */
#include <seqgrad/seqgrad.h>

#include "../cli/seqgrad_tool.h"

/*   f = sigma(W_f x + b_f + U_f h);  n = tanh(W_n x + b_n + U_n (f h));  h' = (1 - f) h + f n */
static sg_status mgu_begin(sg_tape *t, sg_cell_run *run)
{
    int H = run->cell->hidden_size;
    run->w[0] = sg_narrow(t, run->cell->w_hh, 0, 0, H);
    run->w[1] = sg_narrow(t, run->cell->w_hh, 0, H, H);
    return sg_tape_error(t);
}

static sg_status mgu_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    int H = run->cell->hidden_size;
    sg_tensor *f = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_matmul_ex(t, s[0], run->w[0], SG_TRANS_B)));
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, H, H),
                                     sg_matmul_ex(t, sg_mul(t, f, s[0]), run->w[1], SG_TRANS_B)));
    next[0] = sg_add(t, sg_mul(t, sg_one_minus(t, f), s[0]), sg_mul(t, f, n));
    return sg_tape_error(t);
}

static const sg_cell_def mgu_cell = {"mgu", 2, 1, true, mgu_begin, mgu_step};

int main(int argc, char **argv)
{
    sg_cell_register("mgu", &mgu_cell);
    return seqgrad_main(argc, argv);
}
