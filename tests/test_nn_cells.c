/*
 * test_nn_cells.c - nn/cells.c: a one-unit RNN worked by hand, every cell's
 * single step equal to a one-step sequence, f64 gradient checks of every
 * cell (all four weights, x and the state), a user-defined cell with a
 * parameter of its own and a context (IndRNN) in the sequence layer,
 * definitions refused with their messages, LSTM forget-bias init.
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
    sg_tensor_set(c.p[0], 0, 2), sg_tensor_set(c.p[1], 0, 0.5);
    sg_tensor_set(c.p[2], 0, 0.1), sg_tensor_set(c.p[3], 0, -0.2);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_full(t, _i, 2, (int[]){1, 1}, 1), *h = sg_full(t, _i, 2, (int[]){1, 1}, 0.2), *next;
    ck_assert_int_eq(sg_cell_step(t, &c, x, &h, &next), SG_OK);
    tu_assert_values(next, (double[]){tanh(2.0)}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, next)), SG_OK);
    double d = 1 - tanh(2.0) * tanh(2.0);    /* dh'/dW_hh = (1 - h'^2) h */
    tu_assert_grad(c.p[1], (double[]){d * 0.2}, 1, 1e-6);
    tu_assert_grad(c.p[2], (double[]){d}, 1, 1e-6);
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
    return sg_cell_n_states(c->def) == 2 ? sg_concat(t, next, 2, 1) : next[0];
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
                        k.c.p[0], k.c.p[1], k.c.p[2], k.c.p[3]};
    if (def == &sg_rnn_relu_cell)   /* pre-activations away from 0 */
        for (size_t i = 0; i < sg_tensor_size(k.c.p[2]); i++)
            sg_tensor_set(k.c.p[2], i, 2.0);
    tu_gradcheck(cell_loss, &k, in, 7, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]), sg_tensor_free(in[2]);
    sg_params_free(ps);
}
END_TEST

/* ---- a user-defined cell with parameters of its own: IndRNN (Li et al. 2018)
 *   h' = relu(W x + b + u * h) * scale        u (H): one recurrent weight per unit
 * scale comes through the definition's context pointer.                      */

static sg_tensor *ind_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    return sg_add(t, sg_matmul_ex(t, x, run->cell->p[0], SG_TRANS_B), run->cell->p[2]);
}

static sg_status ind_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    double scale = *(const double *)run->ctx;
    next[0] = sg_scale(t, sg_relu(t, sg_add(t, xp, sg_mul(t, run->cell->p[1], s[0]))), scale);
    return sg_tape_error(t);
}

static const double ind_scale = 0.5;
static const sg_cell_def indrnn = {
    .name = "indrnn", .states = {"h"},
    .params = {{"weight_ih", "H, E", SG_PARAM_INPUT}, {"u", "H", SG_PARAM_CONSTANT, 0.9}, {"bias", "H", SG_PARAM_CONSTANT, 0.5}},
    .project = ind_project, .step = ind_step, .ctx = (void *)&ind_scale};

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
    ck_assert_int_eq(sg_rnn_init(&k.r, &indrnn, ps, "ind.", 3, 4, &o, SG_F64, &rng), SG_OK);
    ck_assert_int_eq(sg_params_count(ps), 6);
    ck_assert_str_eq(sg_params_name(ps, 4), "ind.u_l0_reverse");
    ck_assert_int_eq(sg_tensor_ndim(sg_params_find(ps, "ind.u_l0")), 1);
    ck_assert_double_eq(sg_tensor_get(sg_params_find(ps, "ind.u_l0"), 3), 0.9);
    ck_assert_ptr_eq(sg_cell_param(&k.r.cell[0][1], "bias"), sg_params_find(ps, "ind.bias_l0_reverse"));
    ck_assert_ptr_null(sg_cell_param(&k.r.cell[0][1], "weight_hh"));
    sg_tensor *in[7] = {tu_param(3, (int[]){2, 3, 3}, 8)};
    for (int i = 0; i < 6; i++)
        in[i + 1] = sg_params_get(ps, i);
    /* h' = relu(W x + 0.5 + 0.9 h) * 0.5: with W = 0, h' = 0.25 then 0.3625 */
    sg_tape *t = sg_tape_new();
    for (size_t i = 0; i < sg_tensor_size(in[1]); i++)
        sg_tensor_set(in[1], i, 0);
    sg_tensor *out = sg_rnn_forward(t, &k.r, sg_zeros(t, SG_F64, 3, (int[]){1, 2, 3}), NULL, NULL, NULL, NULL);
    ck_assert_double_eq_tol(sg_tensor_get(out, 0), 0.25, 1e-15);
    ck_assert_double_eq_tol(sg_tensor_get(out, 8), 0.3625, 1e-15);
    sg_tape_free(t);
    sg_rng_seed(&rng, 7);
    for (int i = 0; i < 6; i++)     /* away from relu's kink */
        sg_init_uniform(in[i + 1], 0.3, &rng);
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < 4; j++)
            sg_tensor_set(in[3 + 3 * i], j, 2.0);
    tu_gradcheck(user_loss, &k, in, 7, 0);
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
            ck_assert_double_eq(sg_tensor_get(c.p[2], (size_t)j), 1.0);
            ck_assert_double_eq(sg_tensor_get(c.p[3], (size_t)j), 0.0);
        } else {
            ck_assert(fabs(sg_tensor_get(c.p[2], (size_t)j)) <= 1 / sqrt(3.0));
        }
    o = sg_cell_defaults();
    o.bias = false;
    ck_assert_int_eq(sg_cell_init(&c, &sg_gru_reset_after_cell, ps, "", "_b", 2, 3, &o, SG_F32, &rng), SG_OK);
    ck_assert_ptr_null(c.p[2]);
    ck_assert_int_eq(sg_params_count(ps), 6);
    ck_assert_int_eq(sg_cell_init(&c, &sg_lstm_cell, ps, "", "_c", 2, 0, NULL, SG_F32, &rng), SG_ERR_ARG);
    sg_params_free(ps);
}
END_TEST

/* bad definitions are refused at registration, naming the cell and the field */
static sg_status no_step(sg_tape *t, const sg_cell_run *r, sg_tensor *xp, sg_tensor *const *s, sg_tensor **n)
{
    (void)t, (void)r, (void)xp, (void)s, (void)n;
    return SG_OK;
}

START_TEST(test_bad_definitions_are_refused)
{
    static const struct { sg_cell_def def; const char *msg; } bad[] = {
        {{.name = "nostate", .step = no_step}, "cell nostate: states: none (a cell needs at least h)"},
        {{.name = "nostep", .states = {"h"}}, "cell nostep: step: no step function"},
        {{.name = "a b", .states = {"h"}, .step = no_step}, "cell a b: name: \"a b\" is not a name (letters, digits, _)"},
        {{.name = "twice", .states = {"h"}, .params = {{"w", "H, H"}, {"w", "H"}}, .step = no_step},
         "cell twice: params[1]: w is declared twice (also params[0])"},
        {{.name = "shape", .states = {"h"}, .params = {{"w", "4X, E"}}, .step = no_step},
         "cell shape: params[0] w: shape \"4X, E\" is not 1 or 2 sizes in E and H (at \"X, E\")"},
        {{.name = "dims", .states = {"h"}, .params = {{"w", "H, H, H"}}, .step = no_step},
         "cell dims: params[0] w: shape \"H, H, H\" is not 1 or 2 sizes in E and H (at \", H\")"},
        {{.name = "statename", .states = {"h", "h"}, .step = no_step}, "cell statename: states[1]: h is declared twice"},
        {{.name = "clash", .states = {"h"}, .params = {{"h", "H"}}, .step = no_step},
         "cell clash: params[0]: h is also a state"},
        {{.name = "xav", .states = {"h"}, .params = {{"g", "H", SG_PARAM_XAVIER}}, .step = no_step},
         "cell xav: params[0] g: this initialiser needs 2 dimensions, the shape has 1"},
    };
    char err[300];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(sg_cell_register(&bad[i].def, err, sizeof err), SG_ERR_ARG);
        ck_assert_str_eq(err, bad[i].msg);
    }
    ck_assert_int_eq(sg_cell_register(&sg_lstm_cell, err, sizeof err), SG_ERR_ARG);
    ck_assert_str_eq(err, "cell lstm: name: taken by another cell");
    ck_assert_int_eq(sg_cell_register(NULL, err, sizeof err), SG_ERR_ARG);
    ck_assert_str_eq(err, "cell ?: the definition is NULL");
    ck_assert_int_eq(sg_cell_register(&indrnn, NULL, 0), SG_OK);
    ck_assert_ptr_eq(sg_cell_lookup("indrnn"), &indrnn);
    /* sizes that come out below 1 are refused when the cell is made */
    static const sg_cell_def small = {.name = "small", .states = {"h"}, .params = {{"w", "H-4, E"}}, .step = no_step};
    sg_params *ps = sg_params_new();
    sg_cell c;
    ck_assert_int_eq(sg_cell_init(&c, &small, ps, "", "", 3, 4, NULL, SG_F32, NULL), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "cell small: params[0] w: shape \"H-4, E\" has size 0 at E=3, H=4");
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
    tcase_add_test(tc, test_bad_definitions_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
