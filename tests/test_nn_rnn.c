/*
 * test_nn_rnn.c - nn/rnn.c, the sequence layer, against PyTorch: for
 * nn.RNN (tanh, relu), nn.LSTM and nn.GRU (seqgrad's gru_reset_after), 1 and
 * 2 layers, uni- and bidirectional, with and without padding
 * (pack_padded_sequence), and the classic GRU written out in PyTorch, the
 * outputs, final states and the gradients of x, h0, c0 and every weight of
 *   L = sum(out * w_out) + sum(h_n * w_h) + sum(c_n * w_c)
 * agree to 1e-10 in f64 and 1e-5 in f32. Values: tools/gen_fixtures.py.
 * Also: f64 gradient checks of the layer, truncated BPTT, errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "testutil.h"

static const struct {
    const char *kind;
    const sg_cell_def *def;
} kinds[] = {
    {"rnn_tanh", &sg_rnn_tanh_cell}, {"rnn_relu", &sg_rnn_relu_cell}, {"lstm", &sg_lstm_cell},
    {"gru", &sg_gru_reset_after_cell}, {"gru_classic", &sg_gru_cell},
};

/* the 34 fixture files: 4 kinds x layers x directions x padding, + 2 classic GRU */
static void case_name(int i, char *file, int *kind, int *layers, bool *bi, bool *pad)
{
    if (i < 32) {
        *kind = i / 8, *layers = 1 + (i / 4) % 2, *bi = (i / 2) % 2, *pad = i % 2;
    } else {
        *kind = 4, *layers = 1 + (i - 32), *bi = false, *pad = false;
    }
    sprintf(file, "rnn_%s_l%d_%s_%s.txt", kinds[*kind].kind, *layers, *bi ? "bi" : "uni", *pad ? "pad" : "full");
}

static sg_tensor *fixture_param(const tu_fixture *fx, const char *name, sg_dtype dt)
{
    int ndim, shape[4];
    const double *v = tu_fixture_get(fx, name, &ndim, shape, NULL);
    return tu_param_of(dt, ndim, shape, v);
}

static sg_tensor *fixture_const(sg_tape *t, const tu_fixture *fx, const char *name, sg_dtype dt)
{
    int ndim, shape[4];
    const double *v = tu_fixture_get(fx, name, &ndim, shape, NULL);
    return sg_tensor_from_f64(t, dt, ndim, shape, v);
}

static void check_grad_of(const tu_fixture *fx, const char *name, sg_tensor *p, double tol)
{
    char g[80];
    size_t n;
    snprintf(g, sizeof g, "d%s", name);
    const double *expect = tu_fixture_get(fx, g, NULL, NULL, &n);
    ck_assert_msg(sg_tensor_size(p) == n, "%s: size", name);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(sg_tensor_grad_get(p, i) - expect[i]) <= tol * fmax(1, fabs(expect[i])),
                      "d%s[%zu] = %.17g, PyTorch %.17g", name, i, sg_tensor_grad_get(p, i), expect[i]);
}

/* _i = 2 * case + dtype */
/* _i = 2 * case + dtype, and + 68 with gradients not kept (the steps' data
 * given back: the same values) */
START_TEST(test_rnn_matches_pytorch)
{
    char file[64];
    int kind, layers;
    bool bi, pad, lean = _i >= 68;
    case_name(_i % 68 / 2, file, &kind, &layers, &bi, &pad);
    sg_dtype dt = (sg_dtype)(_i % 2);
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    tu_fixture *fx = tu_fixture_load(file);
    const sg_cell_def *def = kinds[kind].def;

    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_rnn rnn;
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = layers, o.bidirectional = bi;
    ck_assert_int_eq(sg_rnn_init(&rnn, def, ps, "", 4, 3, &o, dt, &rng), SG_OK);
    for (int k = 0; k < sg_params_count(ps); k++) {      /* PyTorch's weights, by name */
        size_t n;
        const double *v = tu_fixture_get(fx, sg_params_name(ps, k), NULL, NULL, &n);
        ck_assert_uint_eq(n, sg_tensor_size(sg_params_get(ps, k)));
        sg_tensor_load(sg_params_get(ps, k), v);
    }
    sg_tensor *x = fixture_param(fx, "x", dt), *h0 = fixture_param(fx, "h0", dt);
    sg_tensor *c0 = sg_cell_n_states(def) == 2 ? fixture_param(fx, "c0", dt) : NULL;
    int lengths[3];
    const double *lv = tu_fixture_get(fx, "lengths", NULL, NULL, NULL);
    for (int b = 0; b < 3; b++)
        lengths[b] = (int)lv[b];

    sg_tape *t = sg_tape_new();
    sg_tape_keep_grads(t, !lean);
    sg_tensor *state[2] = {NULL, NULL}, *init[2] = {h0, c0};
    sg_tensor *out = sg_rnn_forward(t, &rnn, x, init, pad ? lengths : NULL, NULL, state);
    ck_assert_msg(out != NULL, "%s", sg_tape_errmsg(t));
    sg_tensor *loss = sg_add(t, sg_sum_all(t, sg_mul(t, out, fixture_const(t, fx, "w_out", dt))),
                             sg_sum_all(t, sg_mul(t, state[0], fixture_const(t, fx, "w_h", dt))));
    if (c0)
        loss = sg_add(t, loss, sg_sum_all(t, sg_mul(t, state[1], fixture_const(t, fx, "w_c", dt))));
    size_t n;
    const double *e = tu_fixture_get(fx, "out", NULL, NULL, &n);
    tu_assert_values(out, e, n, tol);
    e = tu_fixture_get(fx, "h_n", NULL, NULL, &n);
    tu_assert_values(state[0], e, n, tol);
    if (c0) {
        e = tu_fixture_get(fx, "c_n", NULL, NULL, &n);
        tu_assert_values(state[1], e, n, tol);
    }
    ck_assert_int_eq(sg_backward(t, loss), SG_OK);
    check_grad_of(fx, "x", x, tol);
    check_grad_of(fx, "h0", h0, tol);
    if (c0)
        check_grad_of(fx, "c0", c0, tol);
    for (int k = 0; k < sg_params_count(ps); k++)
        check_grad_of(fx, sg_params_name(ps, k), sg_params_get(ps, k), tol);
    sg_tensor_free(x), sg_tensor_free(h0), sg_tensor_free(c0);
    sg_params_free(ps), sg_tape_free(t), tu_fixture_free(fx);
}
END_TEST

/* ---- gradients not kept: a step's intermediates give their data back ---------- */

static sg_tensor *stashed;      /* a step's intermediate, kept against the contract */

static sg_status stash_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{
    (void)run;
    stashed = sg_add_scalar(t, xp, 0.5);         /* read by no backward: given back */
    next[0] = sg_tanh(t, sg_add(t, stashed, s[0]));
    return sg_tape_error(t);
}

static const sg_cell_def stash_cell = {.name = "stash", .states = {"h"}, .step = stash_step};

/* The same bits whether the steps give their data back or not, for every
 * gradient, in less memory, the same from one training step to the next;
 * an intermediate kept against the contract reads NaN and is refused. */
START_TEST(test_rnn_gives_back_step_data)
{
    enum { B = 16, T = 64, H = 64 };
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_params *ps = sg_params_new();
    sg_rnn rnn;
    ck_assert_int_eq(sg_rnn_init(&rnn, &sg_lstm_cell, ps, "", 8, H, NULL, SG_F32, &rng), SG_OK);
    sg_tensor *x = tu_param(3, (int[]){B, T, 8}, 3);
    sg_tensor_cast(x, SG_F32);
    int np = sg_params_count(ps);
    double *grads[2][16];
    size_t arena[2][2];
    for (int keep = 0; keep < 2; keep++) {
        sg_tape *t = sg_tape_new();
        sg_tape_keep_grads(t, keep);
        for (int round = 0; round < 2; round++) {
            sg_tape_reset(t);
            sg_params_zero_grad(ps), sg_param_zero_grad(x);
            sg_tensor *y = sg_rnn_forward(t, &rnn, x, NULL, NULL, NULL, NULL);
            ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_square(t, y))), SG_OK);
            arena[keep][round] = sg_tape_arena_bytes(t);
        }
        for (int k = 0; k <= np; k++) {
            sg_tensor *p = k < np ? sg_params_get(ps, k) : x;
            grads[keep][k] = malloc(sg_tensor_size(p) * sizeof(double));
            for (size_t i = 0; i < sg_tensor_size(p); i++)
                grads[keep][k][i] = sg_tensor_grad_get(p, i);
        }
        sg_tape_free(t);
    }
    for (int k = 0; k <= np; k++) {
        size_t n = sg_tensor_size(k < np ? sg_params_get(ps, k) : x);
        ck_assert_msg(memcmp(grads[0][k], grads[1][k], n * sizeof(double)) == 0, "gradient %d differs", k);
        free(grads[0][k]), free(grads[1][k]);
    }
    ck_assert_uint_eq(arena[0][0], arena[0][1]);
    /* 7.3 MB against 16.8 kept; 12.6 when nothing was given back */
    ck_assert_msg(arena[0][1] < arena[1][1] * 6 / 10, "arena %zu bytes, %zu with gradients kept", arena[0][1], arena[1][1]);

    sg_rnn own;
    ck_assert_int_eq(sg_rnn_init(&own, &stash_cell, ps, "s.", 8, 8, NULL, SG_F32, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    for (int keep = 1; keep >= 0; keep--) {
        sg_tape_reset(t);
        sg_tape_keep_grads(t, keep);
        ck_assert_ptr_nonnull(sg_rnn_forward(t, &own, x, NULL, NULL, NULL, NULL));
        ck_assert(keep ? sg_tensor_data(stashed) != NULL : sg_tensor_data(stashed) == NULL);
        ck_assert(keep ? !isnan(sg_tensor_get(stashed, 0)) : isnan(sg_tensor_get(stashed, 0)));
    }
    sg_tensor *into = sg_tensor_new(SG_F32, 2, (int[]){B, 8});
    ck_assert_int_eq(sg_tensor_copy(into, stashed), SG_ERR_STATE);       /* refused, nothing read */
    sg_tensor_set(stashed, 0, 1.0);                                       /* writes nothing */
    ck_assert(isnan(sg_tensor_get(stashed, 0)));
    sg_tensor_free(into);
    tu_assert_error(t, sg_tanh(t, stashed), "tanh: argument 1 is a loop step's intermediate, whose data the step "
                                            "gave back (gradients not kept: sg_tape_keep_grads)");
    sg_tape_free(t), sg_tensor_free(x), sg_params_free(ps);
}
END_TEST

/* ---- f64 gradient check of the whole layer: every weight, x and h0 ---------- */

struct gctx { sg_rnn rnn; int n_in; bool pad; };

static sg_tensor *rnn_loss(sg_tape *t, sg_tensor **in, void *p)
{
    struct gctx *g = p;
    static const int lengths[2] = {4, 2};
    sg_tensor *state[2], *h0[2] = {in[0], in[1]};
    sg_tensor *out = sg_rnn_forward(t, &g->rnn, in[2], h0, g->pad ? lengths : NULL, NULL, state);
    sg_tensor *l = sg_add(t, sg_sum_all(t, sg_square(t, out)), sg_sum_all(t, state[0]));
    return sg_cell_n_states(g->rnn.def) == 2 ? sg_add(t, l, sg_sum_all(t, sg_tanh(t, state[1]))) : l;
}

START_TEST(test_rnn_gradcheck)
{
    /* _i: kind (5) x {1 layer uni, 2 layers bi padded} */
    const sg_cell_def *def = kinds[_i / 2].def;
    bool big = _i % 2;
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    sg_params *ps = sg_params_new();
    struct gctx g = {.pad = big};
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = big ? 2 : 1, o.bidirectional = big;
    ck_assert_int_eq(sg_rnn_init(&g.rnn, def, ps, "", 3, 2, &o, SG_F64, &rng), SG_OK);
    int LD = o.layers * (big ? 2 : 1);
    sg_tensor *in[SG_GRADCHECK_MAX];
    in[0] = tu_param(3, (int[]){LD, 2, 2}, 1);
    in[1] = tu_param(3, (int[]){LD, 2, 2}, 2);
    in[2] = tu_param(3, (int[]){2, 4, 3}, 3);
    int n = 3;
    for (int k = 0; k < sg_params_count(ps) && n < SG_GRADCHECK_MAX; k++)
        in[n++] = sg_params_get(ps, k);
    if (def == &sg_rnn_relu_cell)      /* keep pre-activations away from the kink */
        for (int k = 3; k < n; k++)
            for (size_t i = 0; i < sg_tensor_size(in[k]); i++)
                sg_tensor_set(in[k], i, fabs(sg_tensor_get(in[k], i)) * 0.5);
    tu_gradcheck(rnn_loss, &g, in, n, 0);
    for (int k = 0; k < 3; k++)
        sg_tensor_free(in[k]);
    sg_params_free(ps);
}
END_TEST

/* Truncated BPTT: the state of one batch is copied out before the reset and
 * fed in as h0 of the next; gradients stop at the batch boundary. */
START_TEST(test_truncated_bptt_carries_state)
{
    sg_rng rng;
    sg_rng_seed(&rng, 4);
    sg_params *ps = sg_params_new();
    sg_rnn rnn;
    ck_assert_int_eq(sg_rnn_init(&rnn, &sg_lstm_cell, ps, "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    sg_tensor *carry[2] = {sg_tensor_new(SG_F64, 3, (int[]){1, 2, 4}), sg_tensor_new(SG_F64, 3, (int[]){1, 2, 4})};
    double xs[2 * 6 * 3];
    for (int i = 0; i < 36; i++)
        xs[i] = sg_rng_normal(&rng);
    sg_tape *t = sg_tape_new();
    /* one pass over 6 steps gives the reference final state */
    sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 3, (int[]){2, 6, 3}, xs);
    sg_tensor *full[2];
    ck_assert_ptr_nonnull(sg_rnn_forward(t, &rnn, x, NULL, NULL, NULL, full));
    double ref[8];
    sg_tensor_store(full[0], ref);
    /* two chunks of 3 steps with the state carried between them */
    for (int chunk = 0; chunk < 2; chunk++) {
        sg_tape_reset(t);
        sg_tensor *xc = sg_narrow(t, sg_tensor_from_f64(t, SG_F64, 3, (int[]){2, 6, 3}, xs), 1, 3 * chunk, 3);
        sg_tensor *st[2];
        sg_tensor *out = sg_rnn_forward(t, &rnn, xc, chunk ? carry : NULL, NULL, NULL, st);
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, out)), SG_OK);
        ck_assert_int_eq(sg_tensor_copy(carry[0], st[0]), SG_OK);
        ck_assert_int_eq(sg_tensor_copy(carry[1], st[1]), SG_OK);
    }
    tu_assert_values(carry[0], ref, 8, 1e-14);
    sg_tensor_free(carry[0]), sg_tensor_free(carry[1]);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

START_TEST(test_lengths_from_mask)
{
    sg_tape *t = sg_tape_new();
    int len[3];
    sg_tensor *m = sg_tensor_from_f64(t, SG_F32, 2, (int[]){3, 4}, (double[]){1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0});
    ck_assert_int_eq(sg_rnn_lengths_from_mask(m, len), SG_OK);
    ck_assert_int_eq(len[0], 4);
    ck_assert_int_eq(len[1], 2);
    ck_assert_int_eq(len[2], 1);
    sg_tensor *hole = sg_tensor_from_f64(t, SG_F32, 2, (int[]){1, 3}, (double[]){1, 0, 1});
    ck_assert_int_eq(sg_rnn_lengths_from_mask(hole, len), SG_ERR_ARG);
    sg_tensor *empty = sg_tensor_from_f64(t, SG_F32, 2, (int[]){1, 2}, (double[]){0, 0});
    ck_assert_int_eq(sg_rnn_lengths_from_mask(empty, len), SG_ERR_ARG);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_rnn_errors)
{
    sg_rng rng;
    sg_rng_seed(&rng, 4);
    sg_params *ps = sg_params_new();
    sg_rnn rnn;
    ck_assert_int_eq(sg_rnn_init(&rnn, &sg_gru_cell, ps, "", 3, 4, NULL, SG_F32, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 4});
    tu_assert_error(t, sg_rnn_forward(t, &rnn, x, NULL, NULL, NULL, NULL), "rnn: input (2,5,4), expected (B,T,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 3});
    sg_tensor *h0 = sg_zeros(t, SG_F32, 3, (int[]){1, 3, 4});
    tu_assert_error(t, sg_rnn_forward(t, &rnn, x, &h0, NULL, NULL, NULL),
                    "rnn: initial state 0 is (1,3,4), expected (1,2,4)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 3});
    tu_assert_error(t, sg_rnn_forward(t, &rnn, x, NULL, (int[]){5, 6}, NULL, NULL),
                    "rnn: length 6 of sequence 1 is outside [1,5]");
    /* a taken name is refused, with the name */
    sg_rnn again;
    ck_assert_int_eq(sg_rnn_init(&again, &sg_gru_cell, ps, "", 3, 4, NULL, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "params: the name weight_ih_l0 is taken");
    /* no cell (a crash before), too many layers, a bad dropout, a bad size */
    sg_params_clear_error(ps);
    ck_assert_int_eq(sg_rnn_init(&again, NULL, ps, "b.", 3, 4, NULL, SG_F32, &rng), SG_ERR_NULL);
    ck_assert_str_eq(sg_params_errmsg(ps), "rnn: the cell definition is NULL");
    sg_params_clear_error(ps);
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = 9;
    ck_assert_int_eq(sg_rnn_init(&again, &sg_lstm_cell, ps, "b.", 3, 4, &o, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "rnn: 9 layers (1 to 8 allowed)");
    sg_params_clear_error(ps);
    o = sg_rnn_defaults();
    o.dropout = 1;
    ck_assert_int_eq(sg_rnn_init(&again, &sg_lstm_cell, ps, "b.", 3, 4, &o, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "rnn: dropout 1 (0 <= p < 1)");
    sg_params_clear_error(ps);
    ck_assert_int_eq(sg_rnn_init(&again, &sg_lstm_cell, ps, "c.", 3, 0, NULL, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "lstm: input size 3, hidden size 0 (each at least 1)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 3});
    tu_assert_error(t, sg_rnn_forward(t, NULL, x, NULL, NULL, NULL, NULL), "rnn: step failed");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/rnn");
    TCase *tc = tcase_create("pytorch");
    tcase_add_loop_test(tc, test_rnn_matches_pytorch, 0, 2 * 2 * 34);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_loop_test(tc, test_rnn_gradcheck, 0, 10);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("bptt and errors");
    tcase_add_test(tc, test_truncated_bptt_carries_state);
    tcase_add_test(tc, test_lengths_from_mask);
    tcase_add_test(tc, test_rnn_errors);
    tcase_add_test(tc, test_rnn_gives_back_step_data);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
