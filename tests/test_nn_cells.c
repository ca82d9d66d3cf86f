/*
 * test_nn_cells.c - nn/cells.c: a one-unit RNN worked by hand, every cell's
 * single step equal to a one-step sequence, f64 gradient checks of every
 * cell (all four weights, x and the state), a user-defined cell (the minimal
 * gated unit) plugged into the sequence layer, LSTM forget-bias init.
 */
#include <math.h>

#include "testutil.h"

static const sg_cell_def *defs[] = {
    &sg_rnn_tanh_cell, &sg_rnn_relu_cell, &sg_rnn_sigmoid_cell, &sg_lstm_cell, &sg_gru_cell, &sg_gru_reset_after_cell,
};
enum { N_DEFS = sizeof defs / sizeof defs[0] };

START_TEST(test_rnn_cell_by_hand)
{   /* h' = tanh(W_ih x + b_ih + W_hh h + b_hh) = tanh(2*1 + 0.1 + 0.5*0.2 - 0.2) = tanh(2) */
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_cell c;
    ck_assert_int_eq(sg_cell_init(&c, &sg_rnn_tanh_cell, ps, "", "", 1, 1, NULL, _i, &rng), SG_OK);
    sg_tensor_set(c.w_ih, 0, 2), sg_tensor_set(c.w_hh, 0, 0.5);
    sg_tensor_set(c.b_ih, 0, 0.1), sg_tensor_set(c.b_hh, 0, -0.2);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_full(t, _i, 2, (int[]){1, 1}, 1), *h = sg_full(t, _i, 2, (int[]){1, 1}, 0.2), *next;
    ck_assert_int_eq(sg_cell_step(t, &c, x, &h, &next), SG_OK);
    tu_assert_values(next, (double[]){tanh(2.0)}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, next)), SG_OK);
    double d = 1 - tanh(2.0) * tanh(2.0);    /* dh'/dW_hh = (1 - h'^2) h */
    tu_assert_grad(c.w_hh, (double[]){d * 0.2}, 1, 1e-6);
    tu_assert_grad(c.b_ih, (double[]){d}, 1, 1e-6);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

START_TEST(test_cell_step_equals_one_step_sequence)
{
    const sg_cell_def *def = defs[_i];
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 2);
    sg_rnn r;
    ck_assert_int_eq(sg_rnn_init(&r, def, ps, "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_randn(t, SG_F64, 3, (int[]){2, 1, 3}, 1, &rng);
    sg_tensor *h0[2] = {sg_randn(t, SG_F64, 3, (int[]){1, 2, 4}, 1, &rng), sg_randn(t, SG_F64, 3, (int[]){1, 2, 4}, 1, &rng)};
    sg_tensor *out = sg_rnn_forward(t, &r, x, h0, NULL, NULL, NULL);
    sg_tensor *s[2] = {sg_select(t, h0[0], 0, 0), sg_select(t, h0[1], 0, 0)}, *next[2];
    ck_assert_int_eq(sg_cell_step(t, &r.cell[0][0], sg_select(t, x, 1, 0), s, next), SG_OK);
    double e[8];
    sg_tensor_store(next[0], e);
    tu_assert_values(out, e, 8, 1e-15);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

struct cctx { sg_cell c; };

static sg_tensor *cell_loss(sg_tape *t, sg_tensor **in, void *p)
{
    const sg_cell *c = &((struct cctx *)p)->c;
    sg_tensor *next[2], *state[2] = {in[1], in[2]};
    if (sg_cell_step(t, c, in[0], state, next) != SG_OK)
        return NULL;
    return c->def->n_state == 2 ? sg_concat(t, next, 2, 1) : next[0];
}

START_TEST(test_cell_gradcheck)
{
    const sg_cell_def *def = defs[_i];
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    struct cctx k;
    ck_assert_int_eq(sg_cell_init(&k.c, def, ps, "", "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    sg_tensor *in[7] = {tu_param(2, (int[]){2, 3}, 4), tu_param(2, (int[]){2, 4}, 5), tu_param(2, (int[]){2, 4}, 6),
                        k.c.w_ih, k.c.w_hh, k.c.b_ih, k.c.b_hh};
    if (def == &sg_rnn_relu_cell)   /* pre-activations away from 0 */
        for (size_t i = 0; i < sg_tensor_size(k.c.b_ih); i++)
            sg_tensor_set(k.c.b_ih, i, 2.0);
    tu_gradcheck(cell_loss, &k, in, 7, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]), sg_tensor_free(in[2]);
    sg_params_free(ps);
}
END_TEST

/* ---- a user-defined cell: the minimal gated unit (Zhou et al. 2016) --------
 *   f  = sigma(W_f x + U_f h + b_f)
 *   n  = tanh (W_n x + U_n (f h) + b_n)
 *   h' = (1 - f) h + f n                                                  */

static sg_status mgu_begin(sg_tape *t, sg_cell_run *run)
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
    sg_tensor *f = sg_sigmoid(t, sg_add(t, sg_narrow(t, xp, 1, 0, H), sg_matmul_ex(t, h, run->w[0], SG_TRANS_B)));
    sg_tensor *n = sg_tanh(t, sg_add(t, sg_narrow(t, xp, 1, H, H), sg_matmul_ex(t, sg_mul(t, f, h), run->w[1], SG_TRANS_B)));
    next[0] = sg_add(t, sg_mul(t, sg_one_minus(t, f), h), sg_mul(t, f, n));
    return sg_tape_error(t);
}

static const sg_cell_def mgu = {"mgu", 2, 1, true, mgu_begin, mgu_step};

struct uctx { sg_rnn r; };

static sg_tensor *user_loss(sg_tape *t, sg_tensor **in, void *p)
{
    sg_tensor *out = sg_rnn_forward(t, &((struct uctx *)p)->r, in[0], NULL, (int[]){3, 2}, NULL, NULL);
    return sg_sum_all(t, sg_square(t, out));
}

START_TEST(test_user_cell_in_sequence_layer)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    struct uctx k;
    sg_rnn_opts o = sg_rnn_defaults();
    o.bidirectional = true;
    ck_assert_int_eq(sg_rnn_init(&k.r, &mgu, ps, "mgu.", 3, 4, &o, SG_F64, &rng), SG_OK);
    ck_assert_int_eq(sg_params_count(ps), 8);
    ck_assert_str_eq(sg_params_name(ps, 4), "mgu.weight_ih_l0_reverse");
    ck_assert_int_eq(sg_tensor_dim(sg_params_find(ps, "mgu.weight_hh_l0"), 0), 8);
    sg_tensor *in[9] = {tu_param(3, (int[]){2, 3, 3}, 8)};
    for (int i = 0; i < 8; i++)
        in[i + 1] = sg_params_get(ps, i);
    tu_gradcheck(user_loss, &k, in, 9, 0);
    sg_tensor_free(in[0]);
    sg_params_free(ps);
}
END_TEST

START_TEST(test_lstm_forget_bias_and_no_bias)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_cell c;
    sg_cell_opts o = sg_cell_defaults();
    o.forget_bias = 1.0;
    ck_assert_int_eq(sg_cell_init(&c, &sg_lstm_cell, ps, "", "_a", 2, 3, &o, SG_F32, &rng), SG_OK);
    for (int j = 0; j < 12; j++)
        if (j >= 3 && j < 6) {
            ck_assert_double_eq(sg_tensor_get(c.b_ih, (size_t)j), 1.0);
            ck_assert_double_eq(sg_tensor_get(c.b_hh, (size_t)j), 0.0);
        } else {
            ck_assert(fabs(sg_tensor_get(c.b_ih, (size_t)j)) <= 1 / sqrt(3.0));
        }
    o = sg_cell_defaults();
    o.bias = false;
    ck_assert_int_eq(sg_cell_init(&c, &sg_gru_reset_after_cell, ps, "", "_b", 2, 3, &o, SG_F32, &rng), SG_OK);
    ck_assert_ptr_null(c.b_ih);
    ck_assert_int_eq(sg_params_count(ps), 6);
    ck_assert_int_eq(sg_cell_init(&c, &sg_lstm_cell, ps, "", "_c", 2, 0, NULL, SG_F32, &rng), SG_ERR_ARG);
    sg_params_free(ps);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/cells");
    TCase *tc = tcase_create("cells");
    tcase_add_loop_test(tc, test_rnn_cell_by_hand, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_cell_step_equals_one_step_sequence, 0, N_DEFS);
    tcase_add_loop_test(tc, test_cell_gradcheck, 0, N_DEFS);
    tcase_add_test(tc, test_lstm_forget_bias_and_no_bias);
    suite_add_tcase(s, tc);
    tc = tcase_create("user cell");
    tcase_add_test(tc, test_user_cell_in_sequence_layer);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
