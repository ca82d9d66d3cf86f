/*
 * test_nn_cellexpr.c - nn/cellexpr.c: cells from equations. The LSTM and
 * both GRUs written as equations give the built-in cells' outputs and
 * gradients (f64, 1e-12) from the same weights; a peephole LSTM and a
 * layer-normalised one are gradient-checked; every error names its
 * file:line:col and what is wrong, with the shapes for mismatches.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "testutil.h"

/* a spec from "name: shape: init" parameter lines and equations, each
 * equation on line 10 + k of "cell.yaml", column 7 */
typedef struct {
    sg_cell_spec spec;
    sg_cell_text eq[32];
    char pname[16][32], pshape[16][32];
} spec_buf;

static void make_spec(spec_buf *b, const char *name, const char *states, const char *const *params,
                      const char *const *eqs)
{
    memset(b, 0, sizeof *b);
    b->spec.name = (sg_cell_text){name, "cell.yaml", 1, 7};
    char *st = strdup(states);      /* "h c" */
    for (char *tok = strtok(st, " "); tok; tok = strtok(NULL, " "))
        b->spec.states[b->spec.n_states++] = (sg_cell_text){strdup(tok), "cell.yaml", 2, 11 + 3 * b->spec.n_states};
    free(st);
    for (int i = 0; params[i]; i++) {
        char init[32] = "";
        sscanf(params[i], "%31[^:]: %31[^:]: %31s", b->pname[i], b->pshape[i], init);
        b->spec.params[i].name = (sg_cell_text){b->pname[i], "cell.yaml", 3 + i, 5};
        b->spec.params[i].shape = (sg_cell_text){b->pshape[i], "cell.yaml", 3 + i, 20};
        b->spec.params[i].init = !strcmp(init, "input") ? SG_PARAM_INPUT : !strcmp(init, "recurrent") ? SG_PARAM_RECURRENT
                               : !strcmp(init, "bias") ? SG_PARAM_BIAS : !strcmp(init, "ones") ? SG_PARAM_ONES
                               : !strcmp(init, "zeros") ? SG_PARAM_ZEROS : SG_PARAM_UNIFORM;
        b->spec.n_params++;
    }
    for (int k = 0; eqs[k]; k++)
        b->eq[k] = (sg_cell_text){eqs[k], "cell.yaml", 10 + k, 7};
    for (int k = 0; eqs[k]; k++)
        b->spec.n_equations++;
    b->spec.equations = b->eq;
}

static void free_spec(spec_buf *b)
{
    for (int i = 0; i < b->spec.n_states; i++)
        free((char *)b->spec.states[i].text);
}

static const char *const standard4[] = {"weight_ih: 4H, E: input", "weight_hh: 4H, H: recurrent", "bias_ih: 4H: bias",
                                        "bias_hh: 4H: bias", NULL};
static const char *const standard3[] = {"weight_ih: 3H, E: input", "weight_hh: 3H, H: recurrent", "bias_ih: 3H: bias",
                                        "bias_hh: 3H: bias", NULL};

static const char *const lstm_eqs[] = {
    "z = x @ weight_ih^T + bias_ih + h @ weight_hh^T + bias_hh",
    "i, f, g, o = split(z, 4)",
    "c' = sigmoid(f) * c + sigmoid(i) * tanh(g)",
    "h' = sigmoid(o) * tanh(c')",
    NULL};
static const char *const gru_eqs[] = {      /* the classic GRU: r acts before U_n */
    "gx = x @ weight_ih^T + bias_ih",
    "U_rz = weight_hh[0:2H]",
    "U_n = weight_hh[2H:3H]",
    "b_rz = bias_hh[0:2H]",
    "b_n = bias_hh[2H:3H]",
    "r, z = split(sigmoid(gx[0:2H] + b_rz + h @ U_rz^T), 2)",
    "n = tanh(gx[2H:3H] + b_n + (r * h) @ U_n^T)",
    "h' = (1 - z) * h + z * n",
    NULL};
static const char *const gru_ra_eqs[] = {   /* torch.nn.GRU: r acts after U_n */
    "xr, xz, xn = split(x @ weight_ih^T + bias_ih, 3)",
    "hr, hz, hn = split(h @ weight_hh^T + bias_hh, 3)",
    "r = sigmoid(xr + hr)",
    "z = sigmoid(xz + hz)",
    "n = tanh(xn + r * hn)",
    "h' = (1 - z) * n + z * h",
    NULL};

/* the sum of squares of every output and the final states, through a
 * bidirectional two-layer stack with lengths: one scalar to differentiate */
typedef struct { sg_rnn r; } stack;

static sg_tensor *stack_loss(sg_tape *t, sg_tensor **in, void *p)
{
    stack *k = p;
    sg_tensor *fin[SG_CELL_MAX_STATES];
    sg_tensor *out = sg_rnn_forward(t, &k->r, in[0], NULL, (int[]){5, 3}, NULL, fin);
    sg_tensor *l = sg_sum_all(t, sg_square(t, out));
    for (int s = 0; s < sg_cell_n_states(k->r.def); s++)
        l = sg_add(t, l, sg_sum_all(t, sg_tanh(t, fin[s])));
    return l;
}

/* the equations of a built-in cell give its outputs and gradients */
START_TEST(test_equations_equal_builtin)
{
    static const struct { const sg_cell_def *def; const char *states; const char *const *params, *const *eqs; } k[] = {
        {&sg_lstm_cell, "h c", standard4, lstm_eqs},
        {&sg_gru_cell, "h", standard3, gru_eqs},
        {&sg_gru_reset_after_cell, "h", standard3, gru_ra_eqs},
    };
    spec_buf b;
    make_spec(&b, "mine", k[_i].states, k[_i].params, k[_i].eqs);
    char err[400];
    sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
    ck_assert_msg(def != NULL, "%s", err);
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = 2, o.bidirectional = true;
    sg_params *ps[2] = {sg_params_new(), sg_params_new()};
    stack st[2];
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    ck_assert_int_eq(sg_rnn_init(&st[0].r, k[_i].def, ps[0], "rnn.", 3, 4, &o, SG_F64, &rng), SG_OK);
    sg_rng_seed(&rng, 5);       /* the same draws, declaration for declaration */
    ck_assert_msg(sg_rnn_init(&st[1].r, def, ps[1], "rnn.", 3, 4, &o, SG_F64, &rng) == SG_OK, "%s", sg_params_errmsg(ps[1]));
    ck_assert_int_eq(sg_params_count(ps[0]), sg_params_count(ps[1]));
    for (int i = 0; i < sg_params_count(ps[0]); i++) {
        ck_assert_str_eq(sg_params_name(ps[0], i), sg_params_name(ps[1], i));
        for (size_t j = 0; j < sg_tensor_size(sg_params_get(ps[0], i)); j++)
            ck_assert_double_eq(sg_tensor_get(sg_params_get(ps[0], i), j), sg_tensor_get(sg_params_get(ps[1], i), j));
    }
    sg_tensor *x = tu_param(3, (int[]){2, 5, 3}, 11);
    double loss[2], gx[2][30];
    for (int m = 0; m < 2; m++) {
        sg_tape *t = sg_tape_new();
        sg_param_zero_grad(x);
        sg_params_zero_grad(ps[m]);
        sg_tensor *l = stack_loss(t, &x, &st[m]);
        ck_assert_msg(l && sg_backward(t, l) == SG_OK, "%s", sg_tape_errmsg(t));
        loss[m] = sg_tensor_get(l, 0);
        for (int j = 0; j < 30; j++)
            gx[m][j] = sg_tensor_grad_get(x, (size_t)j);
        sg_tape_free(t);
    }
    ck_assert_double_eq_tol(loss[0], loss[1], 1e-12 * fabs(loss[0]));
    for (int j = 0; j < 30; j++)
        ck_assert_double_eq_tol(gx[0][j], gx[1][j], 1e-12);
    for (int i = 0; i < sg_params_count(ps[0]); i++)
        for (size_t j = 0; j < sg_tensor_size(sg_params_get(ps[0], i)); j++)
            ck_assert_double_eq_tol(sg_tensor_grad_get(sg_params_get(ps[0], i), j),
                                    sg_tensor_grad_get(sg_params_get(ps[1], i), j), 1e-12);
    sg_tensor_free(x);
    sg_params_free(ps[0]), sg_params_free(ps[1]);
    sg_cell_def_free(def);
    free_spec(&b);
}
END_TEST

/* new cells: gradient-checked through a bidirectional stack, every
 * parameter and x */
static const char *const peephole_params[] = {"weight_ih: 4H, E: input", "weight_hh: 4H, H: recurrent", "bias: 4H: bias",
                                              "peephole: 3, H", NULL};
static const char *const peephole_eqs[] = {
    "zi, zf, zg, zo = split(x @ weight_ih^T + h @ weight_hh^T + bias, 4)",
    "i = sigmoid(zi + peephole[0] * c)",
    "f = sigmoid(zf + peephole[1] * c)",
    "c' = f * c + i * tanh(zg)",
    "h' = sigmoid(zo + peephole[2] * c') * tanh(c')",
    NULL};
static const char *const ln_params[] = {"weight_ih: 4H, E: input", "weight_hh: 4H, H: recurrent", "bias: 4H: bias",
                                        "gain_x: 4H: ones", "gain_h: 4H: ones", "gain_c: H: ones", "shift_c: H: zeros", NULL};
static const char *const ln_eqs[] = {
    "z = layernorm(x @ weight_ih^T, gain_x, bias) + layernorm(h @ weight_hh^T, gain_h, bias * 0)",
    "i, f, g, o = split(z, 4)",
    "c' = sigmoid(f) * c + sigmoid(i) * tanh(g)",
    "h' = sigmoid(o) * tanh(layernorm(c', gain_c, shift_c))",
    NULL};
static const char *const mi_params[] = {"weight_ih: H, E: input", "weight_hh: H, H: recurrent", "alpha: H: ones",
                                        "beta1: H: ones", "beta2: H: ones", "bias: H: bias", NULL};
static const char *const mi_eqs[] = {       /* multiplicative integration (Wu et al. 2016) */
    "wx = x @ weight_ih^T",
    "uh = h @ weight_hh^T",
    "h' = tanh(alpha * wx * uh + beta1 * uh + beta2 * wx + bias)",
    NULL};

static const char *const scalar_gate_params[] = {"weight_ih: H, E: input", "weight_hh: H, H: recurrent",
                                                 "bias: H: bias", "gate: 1, H", NULL};
static const char *const scalar_gate_eqs[] = {     /* one gate per row, (B,1): a blend that broadcasts */
    "n = tanh(x @ weight_ih^T + h @ weight_hh^T + bias)",
    "z = sigmoid(h @ gate^T)",
    "h' = (1 - z) * h + z * n",
    NULL};

START_TEST(test_new_cells_gradcheck)
{
    static const struct { const char *states; const char *const *params, *const *eqs; } k[] = {
        {"h c", peephole_params, peephole_eqs}, {"h c", ln_params, ln_eqs}, {"h", mi_params, mi_eqs},
        {"h", scalar_gate_params, scalar_gate_eqs}};
    spec_buf b;
    make_spec(&b, "new", k[_i].states, k[_i].params, k[_i].eqs);
    char err[400];
    sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
    ck_assert_msg(def != NULL, "%s", err);
    sg_rnn_opts o = sg_rnn_defaults();
    o.bidirectional = true;
    sg_params *ps = sg_params_new();
    stack st;
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    ck_assert_msg(sg_rnn_init(&st.r, def, ps, "", 3, 4, &o, SG_F64, &rng) == SG_OK, "%s", sg_params_errmsg(ps));
    for (int i = 0; i < sg_params_count(ps); i++)      /* move ones and zeros off their symmetric start */
        sg_init_uniform(sg_params_get(ps, i), 0.6, &rng);
    sg_tensor *in[1 + 2 * SG_CELL_MAX_PARAMS] = {tu_param(3, (int[]){2, 5, 3}, 12)};
    for (int i = 0; i < sg_params_count(ps); i++)
        in[1 + i] = sg_params_get(ps, i);
    tu_gradcheck(stack_loss, &st, in, 1 + sg_params_count(ps), 0);
    sg_tensor_free(in[0]);
    sg_params_free(ps);
    sg_cell_def_free(def);
    free_spec(&b);
}
END_TEST

/* compile errors: syntax, names, structure; each at its place */
START_TEST(test_compile_errors)
{
    static const struct { const char *eq[3]; const char *msg; } bad[] = {
        {{"h' = tanh(x @ weight_ih^T + q)"}, "cell.yaml:10:35: undefined name q (not x, a state, a parameter or an earlier result)"},
        {{"h' = tanh(x @ weight_ih^T +)"}, "cell.yaml:10:34: expected a name, a number or (, found ')'"},
        {{"h' = tanh(x @ weight_ih^T"}, "cell.yaml:10:32: expected ) or , at the end of the equation"},
        {{"h' = tanh(x @ weight_ih^T) )"}, "cell.yaml:10:34: unexpected ')' after the equation"},
        {{"h' = tanhh(x)"}, "cell.yaml:10:12: unknown function tanhh (sigmoid, tanh, relu, exp, log, sqrt, square, abs, "
                             "gelu, concat, layernorm, lerp, split)"},
        {{"a = tanh(x @ weight_ih^T)"}, "cell.yaml:1:7: cell bad: no equation for h' (the new value of state h)"},
        {{"h = tanh(x)"}, "cell.yaml:10:7: h is a state; each name is defined once"},
        {{"a = tanh(x)", "a = h", "h' = a"}, "cell.yaml:11:7: a is already defined (at line 10, column 11); each name is "
                                             "defined once"},
        {{"a, b = split(x, 3)"}, "cell.yaml:10:23: split into a different number of parts, but 2 names on the left"},
        {{"a, b = tanh(x)"}, "cell.yaml:10:14: 2 names on the left need split(z, 2) on the right"},
        {{"h' = split(x, 2)"}, "cell.yaml:10:12: split(z, n) stands alone on the right of n names: a, b = split(z, 2)"},
        {{"h' = 2 / h"}, "cell.yaml:10:14: a number divided by a tensor is not supported (write n * exp(-log(y)))"},
        {{"h' = h^X"}, "cell.yaml:10:14: expected T after ^ (a transpose)"},
        {{"h' = x[1:2K]"}, "cell.yaml:10:17: an index is a sum of terms n, H, E, nH, nE"},
        {{"h' = h'"}, "cell.yaml:10:12: h' is not defined yet (a state's new value can be read after its equation)"},
        {{"q' = h"}, "cell.yaml:10:7: q': only a state has a new value (name') "},
        {{"h' = 3"}, "cell.yaml:10:12: h' is a number: a cell computes tensors"},
        {{"h' = tanh(2)"}, "cell.yaml:10:12: tanh: argument 1 is a number, not a tensor"},
        {{"h' = lerp(h, x)"}, "cell.yaml:10:12: lerp takes 3 arguments (a, b, w), not 2"},
        {{"h' = lerp(h, 0.5, x)"}, "cell.yaml:10:12: lerp: argument 2 is a number, not a tensor"},
        {{"h' = 2h"}, "cell.yaml:10:13: a name right after a number: write 2 * h"},
        {{"h' = h"}, "cell.yaml:10:7: cell bad: h' only copies x, a state or a parameter: compute it"},
    };
    static const char *const params[] = {"weight_ih: H, E: input", NULL};
    char err[400];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spec_buf b;
        make_spec(&b, "bad", "h", params, bad[i].eq);
        ck_assert_ptr_null(sg_cell_compile(&b.spec, err, sizeof err));
        ck_assert_str_eq(err, bad[i].msg);
        free_spec(&b);
    }
    spec_buf b;
    static const char *const bad_shape[] = {"w: 4H+, E", NULL}, *const eq[] = {"h' = h * 2", NULL};
    make_spec(&b, "bad", "h", bad_shape, eq);
    ck_assert_ptr_null(sg_cell_compile(&b.spec, err, sizeof err));
    ck_assert_str_eq(err, "cell.yaml:3:23: cell bad: params w: shape \"4H+, E\" is not 1 or 2 sizes in E and H "
                          "(n, H, E, nH, nE, joined by + or -)");
    free_spec(&b);
}
END_TEST

/* shape errors come when E and H are known, at sg_cell_init: before any step */
START_TEST(test_shape_errors_at_init)
{
    static const struct { const char *eq[3]; const char *msg; } bad[] = {
        {{"h' = tanh(x @ w^T + h)"}, "cell.yaml:10:25: cell bad: '+' of (B,6) and (B,4) (E=3, H=4)"},
        {{"h' = tanh(x @ w)"}, "cell.yaml:10:19: cell bad: @ of (B,3) and (6,3): inner sizes 3 and 6 differ (E=3, H=4)"},
        {{"h' = tanh(h @ x)"}, "cell.yaml:10:19: cell bad: @ with (B,3) on the right: the right side must be a parameter "
                                "(it cannot depend on x or a state)"},
        {{"a, b = split(x, 2)", "h' = h * a"}, "cell.yaml:10:14: cell bad: split of (B,3) into 2 parts: 3 is not a "
                                                "multiple of 2"},
        {{"h' = h * x[2:H]"}, "cell.yaml:10:17: cell bad: slice of (B,3): [2:4] is outside 0..3 (E=3, H=4)"},
        {{"h' = concat(h, h)"}, "cell.yaml:10:12: cell bad: h' is (B,8), the state is (B,4)"},
        {{"h' = h * g[H]"}, "cell.yaml:10:17: cell bad: index of (4): [4:5] is outside 0..4 (E=3, H=4)"},
        {{"h' = layernorm(h, w[0], g)"}, "cell.yaml:10:12: cell bad: layernorm of (B,4): its gain is (3), expected (4)"},
        {{"h' = h * w"}, "cell.yaml:10:14: cell bad: '*' of (B,4) and (6,3) (E=3, H=4)"},
        {{"h' = lerp(h, h, x)"}, "cell.yaml:10:12: cell bad: lerp of (B,4), (B,4) and (B,3): three values of one shape "
                                  "(E=3, H=4)"},
        /* a blend (one lerp when it runs) is checked as written */
        {{"z = sigmoid(h)", "h' = (1 - z) * h + z * x"}, "cell.yaml:11:28: cell bad: '*' of (B,4) and (B,3) (E=3, H=4)"},
        {{"z = sigmoid(x)", "h' = (1 - z) * h + z * x"}, "cell.yaml:11:20: cell bad: '*' of (B,3) and (B,4) (E=3, H=4)"},
        {{"z = sigmoid(h)", "h' = h + z * (x - h)"}, "cell.yaml:11:23: cell bad: '-' of (B,3) and (B,4) (E=3, H=4)"},
    };
    static const char *const params[] = {"w: 6, E", "g: H", NULL};
    char err[400];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spec_buf b;
        make_spec(&b, "bad", "h", params, bad[i].eq);
        sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
        ck_assert_msg(def != NULL, "%s", err);
        sg_params *ps = sg_params_new();
        sg_cell c;
        ck_assert_int_eq(sg_cell_init(&c, def, ps, "", "", 3, 4, NULL, SG_F64, NULL), SG_ERR_SHAPE);
        ck_assert_str_eq(sg_params_errmsg(ps), bad[i].msg);
        ck_assert_int_eq(sg_params_count(ps), 0);
        sg_params_free(ps);
        sg_cell_def_free(def);
        free_spec(&b);
    }
}
END_TEST

/* the projection holds what depends on x alone, summed once for all steps:
 * one GEMM over all B*T positions, the biases folded into it */
START_TEST(test_input_terms_are_hoisted)
{
    spec_buf b;
    make_spec(&b, "lstm2", "h c", standard4, lstm_eqs);
    char err[400];
    sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
    sg_params *ps = sg_params_new();
    sg_cell c;
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    ck_assert_int_eq(sg_cell_init(&c, def, ps, "", "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_cell_run run;
    ck_assert_int_eq(sg_cell_begin(t, &c, &run), SG_OK);
    sg_tensor *xp = sg_cell_project(t, &run, sg_zeros(t, SG_F64, 3, (int[]){2, 7, 3}));
    tu_assert_shape(xp, 3, (int[]){2, 7, 16});
    /* with x = 0 the projection is the sum of the biases, at every position */
    for (int j = 0; j < 16; j++)
        ck_assert_double_eq_tol(sg_tensor_get(xp, (size_t)(5 * 16 + j)),
                                sg_tensor_get(c.p[2], (size_t)j) + sg_tensor_get(c.p[3], (size_t)j), 1e-15);
    /* without biases (bias: false) the sums leave them out */
    sg_cell_opts o = sg_cell_defaults();
    o.bias = false;
    sg_cell nb;
    ck_assert_int_eq(sg_cell_init(&nb, def, ps, "nb.", "", 3, 4, &o, SG_F64, &rng), SG_OK);
    ck_assert_ptr_null(nb.p[2]);
    sg_tensor *s[2] = {sg_zeros(t, SG_F64, 2, (int[]){2, 4}), sg_zeros(t, SG_F64, 2, (int[]){2, 4})}, *next[2];
    ck_assert_int_eq(sg_cell_step(t, &nb, sg_zeros(t, SG_F64, 2, (int[]){2, 3}), s, next), SG_OK);
    ck_assert_double_eq(sg_tensor_get(next[0], 0), 0.0);
    sg_tape_free(t);
    sg_params_free(ps);
    sg_cell_def_free(def);
    free_spec(&b);
}
END_TEST

/* the ops one step of def records, newest first, as "addmm matmul ..." */
static void step_ops(const sg_cell_def *def, char *names, size_t n)
{
    sg_params *ps = sg_params_new();
    sg_cell c;
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    ck_assert_int_eq(sg_cell_init(&c, def, ps, "", "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *s[2] = {sg_zeros(t, SG_F64, 2, (int[]){2, 4}), sg_zeros(t, SG_F64, 2, (int[]){2, 4})}, *next[2];
    sg_tensor *before = t->last;
    ck_assert_int_eq(sg_cell_step(t, &c, sg_zeros(t, SG_F64, 2, (int[]){2, 3}), s, next), SG_OK);
    names[0] = '\0';
    for (sg_tensor *x = t->last; x && x != before; x = x->prev)
        if (x->op)
            snprintf(names + strlen(names), n - strlen(names), "%s%s", names[0] ? " " : "", x->op->name);
    sg_tape_free(t);
    sg_params_free(ps);
}

/* a step's sum whose product nothing else reads runs as one addmm (the
 * LSTM's gates); a product read twice (multiplicative integration's uh)
 * stays a matmul */
START_TEST(test_products_fold_into_sums)
{
    static const struct { const char *states; const char *const *params, *const *eqs; bool folds; } k[] = {
        {"h c", standard4, lstm_eqs, true}, {"h", mi_params, mi_eqs, false}};
    spec_buf b;
    make_spec(&b, "fold", k[_i].states, k[_i].params, k[_i].eqs);
    char err[400], names[1000];
    sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
    ck_assert_msg(def != NULL, "%s", err);
    step_ops(def, names, sizeof names);
    ck_assert_msg(!strstr(names, "addmm") == !k[_i].folds, "step ops: %s", names);
    sg_cell_def_free(def);
    free_spec(&b);
}
END_TEST

/* (1 - z) * a + z * b, written in any order, runs as one lerp when a, b
 * and z have one shape; as written when z broadcasts, or when a product
 * or 1 - z feeds something else */
static const char *const blend_swapped_eqs[] = {
    "xr, xz, xn = split(x @ weight_ih^T + bias_ih, 3)",
    "hr, hz, hn = split(h @ weight_hh^T + bias_hh, 3)",
    "r = sigmoid(xr + hr)",
    "z = sigmoid(xz + hz)",
    "n = tanh(xn + r * hn)",
    "h' = n * z + h * (1 - z)",
    NULL};
static const char *const blend_step_eqs[] = {      /* h' = h + z (n - h): the same blend */
    "xr, xz, xn = split(x @ weight_ih^T + bias_ih, 3)",
    "hr, hz, hn = split(h @ weight_hh^T + bias_hh, 3)",
    "r = sigmoid(xr + hr)",
    "z = sigmoid(xz + hz)",
    "n = tanh(xn + r * hn)",
    "h' = (n - h) * z + h",
    NULL};
static const char *const scalar_step_eqs[] = {
    "n = tanh(x @ weight_ih^T + h @ weight_hh^T + bias)",
    "z = sigmoid(h @ gate^T)",
    "h' = h + z * (n - h)",
    NULL};
static const char *const blend_shared_eqs[] = {
    "xr, xz, xn = split(x @ weight_ih^T + bias_ih, 3)",
    "hr, hz, hn = split(h @ weight_hh^T + bias_hh, 3)",
    "z = sigmoid(xz + hz)",
    "kept = (1 - z) * h",
    "h' = kept + z * tanh(xn + hn) + kept",
    NULL};

/* h' of one f64 step of def from fixed x and h, parameters drawn from seed 3 */
static void step_out(const sg_cell_def *def, double *out)
{
    sg_params *ps = sg_params_new();
    sg_cell c;
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    ck_assert_int_eq(sg_cell_init(&c, def, ps, "", "", 3, 4, NULL, SG_F64, &rng), SG_OK);
    for (int i = 0; i < sg_params_count(ps); i++)      /* ones and zeros off their start */
        sg_init_uniform(sg_params_get(ps, i), 0.8, &rng);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param(2, (int[]){2, 3}, 21), *h = tu_param(2, (int[]){2, 4}, 22);
    sg_tensor *s[1] = {h}, *next[1];
    ck_assert_int_eq(sg_cell_step(t, &c, x, s, next), SG_OK);
    for (int j = 0; j < 8; j++)
        out[j] = sg_tensor_get(next[0], (size_t)j);
    sg_tape_free(t);
    sg_tensor_free(x), sg_tensor_free(h);
    sg_params_free(ps);
}

START_TEST(test_blends_become_lerp)
{
    /* each cell, and the same h' written so that no blend is found */
    static const char *const unblended[] = {"h' = z * n - (z - 1) * h", "h' = n * (1 - z) - (0 - z) * h",
                                            "h' = n * z - (z - 1) * h", NULL, "h' = z * n - (z - 1) * h",
                                            "h' = z * n - (z - 1) * h", "h' = z * n - (z - 1) * h"};
    /* written: an op of the written form, which runs unless the blend does */
    static const struct { const char *const *params, *const *eqs; bool lerp; const char *written; } k[] = {
        {standard3, gru_eqs, true, "one_minus"}, {standard3, gru_ra_eqs, true, "one_minus"},
        {standard3, blend_swapped_eqs, true, "one_minus"}, {standard3, blend_shared_eqs, false, "one_minus"},
        {scalar_gate_params, scalar_gate_eqs, false, "one_minus"}, {standard3, blend_step_eqs, true, "sub"},
        {scalar_gate_params, scalar_step_eqs, false, "sub"}};
    spec_buf b;
    make_spec(&b, "blend", "h", k[_i].params, k[_i].eqs);
    char err[400], names[1000];
    sg_cell_def *def = sg_cell_compile(&b.spec, err, sizeof err);
    ck_assert_msg(def != NULL, "%s", err);
    step_ops(def, names, sizeof names);
    ck_assert_msg(!strstr(names, "lerp") == !k[_i].lerp, "step ops: %s", names);
    ck_assert_msg(!strstr(names, k[_i].written) == k[_i].lerp, "step ops: %s", names);
    if (unblended[_i]) {
        const char *eqs[16];
        int n = 0;
        for (; k[_i].eqs[n + 1]; n++)
            eqs[n] = k[_i].eqs[n];
        eqs[n++] = unblended[_i], eqs[n] = NULL;
        spec_buf b2;
        make_spec(&b2, "plain", "h", k[_i].params, eqs);
        sg_cell_def *plain = sg_cell_compile(&b2.spec, err, sizeof err);
        ck_assert_msg(plain != NULL, "%s", err);
        step_ops(plain, names, sizeof names);
        ck_assert_msg(!strstr(names, "lerp"), "step ops: %s", names);
        double y[8], want[8];
        step_out(def, y), step_out(plain, want);
        for (int j = 0; j < 8; j++)
            ck_assert_double_eq_tol(y[j], want[j], 1e-12);
        sg_cell_def_free(plain);
        free_spec(&b2);
    }
    sg_cell_def_free(def);
    free_spec(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/cellexpr");
    TCase *tc = tcase_create("cellexpr");
    tcase_add_loop_test(tc, test_equations_equal_builtin, 0, 3);
    tcase_add_loop_test(tc, test_new_cells_gradcheck, 0, 4);
    tcase_add_test(tc, test_compile_errors);
    tcase_add_test(tc, test_shape_errors_at_init);
    tcase_add_test(tc, test_input_terms_are_hoisted);
    tcase_add_loop_test(tc, test_products_fold_into_sums, 0, 2);
    tcase_add_loop_test(tc, test_blends_become_lerp, 0, 7);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
