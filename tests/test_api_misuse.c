/*
 * test_api_misuse.c - every public function that records on a tape, misused
 * as a caller could: a NULL argument, the wrong dtype, the wrong shape, an
 * axis out of range, a NULL module, a NULL tape, and a tape already in
 * error. Each gives NULL (or an error status) and its exact message, never
 * a crash; a tape in error keeps its first message. The library's ops are
 * spread over many files, and their misuse is one table here so that a new
 * function is added to it in one place (the per-file suites test each op's
 * own errors beside its values and gradients).
 */
#include <string.h>

#include "testutil.h"

typedef struct {
    sg_tape *t;
    sg_tensor *x, *y, *w, *d;      /* f32 (2,3), f32 (2,3), f32 (3,4), f64 (2,3) */
} env;

static env fresh(sg_tape *t)
{
    sg_tape_reset(t);
    return (env){t, sg_zeros(t, SG_F32, 2, (int[]){2, 3}), sg_full(t, SG_F32, 2, (int[]){2, 3}, 1),
                 sg_zeros(t, SG_F32, 2, (int[]){3, 4}), sg_zeros(t, SG_F64, 2, (int[]){2, 3})};
}

typedef sg_tensor *call_fn(env *e);
#define CALL(name, expr) static sg_tensor *name(env *e) { sg_tape *t = e->t; (void)t; return (expr); }

static const int tg[2] = {0, 1};
static sg_tensor *out2[2];

/* NULL arguments */
CALL(n_matmul, sg_matmul(t, NULL, e->w))
CALL(n_matmul_ex, sg_matmul_ex(t, e->x, NULL, SG_TRANS_B))
CALL(n_bmm, sg_bmm(t, NULL, e->x, 0))
CALL(n_addmm, sg_addmm(t, e->x, e->w, NULL, 0))
CALL(n_add, sg_add(t, NULL, e->y))
CALL(n_sub, sg_sub(t, e->x, NULL))
CALL(n_mul, sg_mul(t, NULL, e->y))
CALL(n_div, sg_div(t, e->x, NULL))
CALL(n_neg, sg_neg(t, NULL))
CALL(n_scale, sg_scale(t, NULL, 2))
CALL(n_one_minus, sg_one_minus(t, NULL))
CALL(n_lerp, sg_lerp(t, e->x, NULL, e->x))
CALL(n_sigmoid, sg_sigmoid(t, NULL))
CALL(n_tanh, sg_tanh(t, NULL))
CALL(n_relu, sg_relu(t, NULL))
CALL(n_gelu, sg_gelu(t, NULL))
CALL(n_exp, sg_exp(t, NULL))
CALL(n_log, sg_log(t, NULL))
CALL(n_clamp, sg_clamp(t, NULL, 0, 1))
CALL(n_sum, sg_sum(t, NULL, 0, false))
CALL(n_sum_all, sg_sum_all(t, NULL))
CALL(n_softmax, sg_softmax(t, NULL, 1, NULL))
CALL(n_ce_logits, sg_cross_entropy(t, NULL, tg, NULL))
CALL(n_ce_targets, sg_cross_entropy(t, e->x, NULL, NULL))
CALL(n_nll_targets, sg_nll_loss(t, e->x, NULL, NULL))
CALL(n_mse, sg_mse_loss(t, e->x, NULL, SG_MEAN))
CALL(n_bce, sg_bce_with_logits(t, NULL, e->x, SG_MEAN))
CALL(n_reshape_shape, sg_reshape(t, e->x, 2, NULL))
CALL(n_reshape, sg_reshape(t, NULL, 2, (int[]){3, 2}))
CALL(n_permute, sg_permute(t, e->x, NULL))
CALL(n_concat, sg_concat(t, (sg_tensor *[]){e->x, NULL}, 2, 0))
CALL(n_index_select, sg_index_select(t, e->x, 0, NULL, 2))
CALL(n_where, sg_where(t, NULL, e->x, e->y))
CALL(n_masked_fill, sg_masked_fill(t, e->x, NULL, 0))
CALL(n_dropout_rng, sg_dropout(t, e->x, 0.5, NULL))
CALL(n_detach, sg_detach(t, NULL))
CALL(n_from_shape, sg_tensor_from(t, SG_F32, 2, NULL, NULL))
CALL(n_randn, sg_randn(t, SG_F32, 1, (int[]){2}, 1, NULL))
CALL(n_linear, sg_linear_forward(t, NULL, e->x))
CALL(n_embedding, sg_embedding_forward(t, NULL, tg, 1, 2))
CALL(n_cell, sg_cell_project(t, NULL, e->x))
CALL(n_cell_step, (sg_cell_step(t, NULL, e->x, NULL, out2), NULL))
CALL(n_attention, sg_attention_forward(t, NULL, e->x, e->y, NULL, NULL, 0, NULL))
CALL(n_mha, sg_mha_forward(t, NULL, e->x, e->x, e->x, NULL, NULL))
CALL(n_tlayer, sg_tlayer_encode(t, NULL, e->x, NULL, NULL))
CALL(n_rnn, sg_rnn_forward(t, NULL, e->x, NULL, NULL, NULL, NULL))
CALL(n_tlm, sg_transformer_lm_forward(t, NULL, tg, 1, 2, NULL))
CALL(n_s2s_step, sg_seq2seq_step(t, NULL, NULL, tg, NULL))
CALL(n_s2s_loss, sg_seq2seq_loss(t, NULL, tg, NULL, 1, 2, tg, tg, 2, 0, NULL))
CALL(n_ts2s_encode, sg_transformer_s2s_encode(t, NULL, tg, NULL, 1, 2, NULL, NULL))
CALL(n_decode, (sg_seq2seq_decode(t, NULL, tg, 2, NULL, (int[2]){0}), NULL))
CALL(n_greedy, (sg_seq2seq_greedy(t, NULL, tg, NULL, 1, 2, NULL, (int[2]){0}, (int[1]){0}), NULL))
CALL(n_tgreedy, (sg_transformer_s2s_greedy(t, NULL, tg, NULL, 1, 2, NULL, (int[2]){0}, (int[1]){0}), NULL))
CALL(n_sqrt, sg_sqrt(t, NULL))
CALL(n_square, sg_square(t, NULL))
CALL(n_abs, sg_abs(t, NULL))
CALL(n_leaky_relu, sg_leaky_relu(t, NULL, 0.1))
CALL(n_add_scalar, sg_add_scalar(t, NULL, 1))
CALL(n_mean, sg_mean(t, NULL, 0, false))
CALL(n_max, sg_max(t, NULL, 1, true))
CALL(n_logsumexp, sg_logsumexp(t, NULL, 1, false))
CALL(n_norm, sg_norm(t, NULL, 1, false))
CALL(n_mean_all, sg_mean_all(t, NULL))
CALL(n_norm_all, sg_norm_all(t, NULL))
CALL(n_log_softmax, sg_log_softmax(t, NULL, 1, NULL))
CALL(n_bmm_scaled, sg_bmm_scaled(t, e->x, NULL, 0, 0.5))
CALL(n_transpose, sg_transpose(t, NULL, 0, 1))
CALL(n_stack, sg_stack(t, (sg_tensor *[]){e->x, NULL}, 2, 0))
CALL(n_narrow, sg_narrow(t, NULL, 0, 0, 1))
CALL(n_select, sg_select(t, NULL, 0, 0))
CALL(n_split, (sg_split(t, NULL, 0, (int[]){1, 1}, 2, out2), NULL))
CALL(n_layer_norm, sg_layer_norm(t, NULL, NULL, NULL, 1e-5))
CALL(n_sdpa, sg_sdpa(t, NULL, e->x, e->x, NULL, NULL))
CALL(n_backward, (sg_backward(t, NULL), NULL))
CALL(n_backward_with, (sg_backward_with(t, NULL, e->x), NULL))
CALL(n_full_shape, sg_full(t, SG_F32, 2, NULL, 1))
CALL(n_cell_step_run, (sg_cell_step_run(t, NULL, e->x, NULL, out2), NULL))
CALL(n_attention_keys, sg_attention_keys(t, NULL, e->x))
CALL(n_tlayer_decode, sg_tlayer_decode(t, NULL, e->x, e->x, NULL, NULL, NULL))
CALL(n_s2s_encode, (sg_seq2seq_encode(t, NULL, tg, NULL, 1, 2, NULL), NULL))
CALL(n_ts2s_decode, sg_transformer_s2s_decode(t, NULL, e->x, NULL, tg, 1, 2, NULL))
CALL(n_ts2s_loss, sg_transformer_s2s_loss(t, NULL, tg, NULL, 1, 2, tg, tg, 2, NULL))
CALL(n_generate, (sg_transformer_s2s_generate(t, NULL, tg, 2, NULL, (int[2]){0}), NULL))
CALL(d_mse, sg_mse_loss(t, e->x, e->d, SG_MEAN))
CALL(d_concat, sg_concat(t, (sg_tensor *[]){e->x, e->d}, 2, 0))
CALL(s_backward, (sg_backward(t, sg_tanh(t, e->x)), NULL))
CALL(s_causal, sg_causal_mask(t, SG_F32, 0, 3))
CALL(s_positions, sg_sinusoidal_positions(t, SG_F32, -1, 4))
CALL(a_max, sg_max(t, e->x, 2, true))
CALL(a_concat, sg_concat(t, (sg_tensor *[]){e->x, e->y}, 2, 2))
/* wrong dtype */
CALL(d_add, sg_add(t, e->x, e->d))
CALL(d_matmul, sg_matmul(t, e->d, e->w))
CALL(d_where, sg_where(t, e->x, e->d, e->y))
/* wrong shape */
CALL(s_matmul, sg_matmul(t, e->x, e->x))
CALL(s_add, sg_add(t, e->x, e->w))
CALL(s_bmm, sg_bmm(t, e->x, e->y, 0))
CALL(s_reshape, sg_reshape(t, e->x, 2, (int[]){4, -1}))
CALL(s_mse, sg_mse_loss(t, e->x, e->w, SG_MEAN))
CALL(s_layer_norm, sg_layer_norm(t, e->x, e->y, e->y, 1e-5))
CALL(s_split, (sg_split(t, e->x, 1, (int[]){1, 1}, 2, out2), NULL))
/* axis out of range */
CALL(a_sum, sg_sum(t, e->x, 5, false))
CALL(a_softmax, sg_softmax(t, e->x, -3, NULL))
CALL(a_logsumexp, sg_logsumexp(t, e->x, 2, true))
CALL(a_transpose, sg_transpose(t, e->x, 0, 5))
CALL(a_narrow, sg_narrow(t, e->x, 3, 0, 1))
CALL(a_select, sg_select(t, e->x, 0, 9))
CALL(a_stack, sg_stack(t, (sg_tensor *[]){e->x, e->y}, 2, 4))
/* values out of range */
CALL(v_dropout, sg_dropout(t, e->x, 1.5, NULL))
CALL(v_index, sg_index_select(t, e->x, 0, (int[]){5}, 1))
CALL(v_reduction, sg_mse_loss(t, e->x, e->y, (sg_reduction)9))
CALL(v_ce_target, sg_cross_entropy(t, e->x, (int[]){0, 7}, NULL))
CALL(v_dims, sg_full(t, SG_F64, 0, (int[]){1}, 1))

static const struct { const char *name; call_fn *f; const char *msg; } cases[] = {
    {"matmul NULL", n_matmul, "matmul: argument 1 is NULL"},
    {"matmul_ex NULL", n_matmul_ex, "matmul: argument 2 is NULL"},
    {"bmm NULL", n_bmm, "bmm: argument 1 is NULL"},
    {"addmm NULL", n_addmm, "addmm: argument 3 is NULL"},
    {"add NULL", n_add, "add: argument 1 is NULL"},
    {"sub NULL", n_sub, "sub: argument 2 is NULL"},
    {"mul NULL", n_mul, "mul: argument 1 is NULL"},
    {"div NULL", n_div, "div: argument 2 is NULL"},
    {"neg NULL", n_neg, "neg: argument 1 is NULL"},
    {"scale NULL", n_scale, "scale: argument 1 is NULL"},
    {"one_minus NULL", n_one_minus, "one_minus: argument 1 is NULL"},
    {"lerp NULL", n_lerp, "lerp: argument 2 is NULL"},
    {"sigmoid NULL", n_sigmoid, "sigmoid: argument 1 is NULL"},
    {"tanh NULL", n_tanh, "tanh: argument 1 is NULL"},
    {"relu NULL", n_relu, "relu: argument 1 is NULL"},
    {"gelu NULL", n_gelu, "gelu: argument 1 is NULL"},
    {"exp NULL", n_exp, "exp: argument 1 is NULL"},
    {"log NULL", n_log, "log: argument 1 is NULL"},
    {"clamp NULL", n_clamp, "clamp: argument 1 is NULL"},
    {"sum NULL", n_sum, "sum: argument 1 is NULL"},
    {"sum_all NULL", n_sum_all, "sum: argument 1 is NULL"},
    {"softmax NULL", n_softmax, "softmax: argument 1 is NULL"},
    {"cross_entropy NULL logits", n_ce_logits, "cross_entropy: argument 1 is NULL"},
    {"cross_entropy NULL targets", n_ce_targets, "cross_entropy: targets is NULL"},
    {"nll_loss NULL targets", n_nll_targets, "nll_loss: targets is NULL"},
    {"mse_loss NULL", n_mse, "mse_loss: argument 2 is NULL"},
    {"bce_with_logits NULL", n_bce, "bce_with_logits: argument 1 is NULL"},
    {"reshape NULL shape", n_reshape_shape, "reshape: shape is NULL"},
    {"reshape NULL", n_reshape, "reshape: argument 1 is NULL"},
    {"permute NULL", n_permute, "permute: perm is NULL"},
    {"concat NULL", n_concat, "concat: argument 2 is NULL"},
    {"index_select NULL", n_index_select, "index_select: idx is NULL"},
    {"where NULL", n_where, "where: argument 3 is NULL"},
    {"masked_fill NULL", n_masked_fill, "masked_fill: argument 2 is NULL"},
    {"dropout NULL rng", n_dropout_rng, "dropout: rng is NULL"},
    {"detach NULL", n_detach, "detach: argument 1 is NULL"},
    {"tensor_from NULL shape", n_from_shape, "tensor: shape is NULL"},
    {"randn NULL rng", n_randn, "randn: rng is NULL"},
    {"linear NULL", n_linear, "linear: the module is NULL"},
    {"embedding NULL", n_embedding, "embedding: the module is NULL"},
    {"cell NULL", n_cell, "cell project: the run or x is NULL"},
    {"cell_step NULL", n_cell_step, "cell: the module or its definition is NULL"},
    {"attention NULL", n_attention, "attention: the module is NULL"},
    {"mha NULL", n_mha, "mha: the module is NULL or not initialised"},
    {"tlayer NULL", n_tlayer, "transformer encoder layer: the layer is NULL or not initialised"},
    {"rnn NULL", n_rnn, "rnn: step failed"},
    {"transformer_lm NULL", n_tlm, "transformer_lm: the model or ids is NULL"},
    {"seq2seq_step NULL", n_s2s_step, "seq2seq_step: the model, enc or prev is NULL"},
    {"seq2seq_loss NULL", n_s2s_loss, "seq2seq_loss: the model or a target is NULL"},
    {"transformer_s2s_encode NULL", n_ts2s_encode, "transformer_s2s_encode: the model or src is NULL"},
    {"seq2seq_decode NULL", n_decode, "seq2seq_decode: the model, src or out is NULL"},
    {"seq2seq_greedy NULL", n_greedy, "seq2seq_greedy: the model, src, out or out_len is NULL"},
    {"transformer_s2s_greedy NULL", n_tgreedy, "transformer_s2s_greedy: the model, src, out or out_len is NULL"},
    {"sqrt NULL", n_sqrt, "sqrt: argument 1 is NULL"},
    {"square NULL", n_square, "square: argument 1 is NULL"},
    {"abs NULL", n_abs, "abs: argument 1 is NULL"},
    {"leaky_relu NULL", n_leaky_relu, "leaky_relu: argument 1 is NULL"},
    {"add_scalar NULL", n_add_scalar, "add_scalar: argument 1 is NULL"},
    {"mean NULL", n_mean, "mean: argument 1 is NULL"},
    {"max NULL", n_max, "max: argument 1 is NULL"},
    {"logsumexp NULL", n_logsumexp, "logsumexp: argument 1 is NULL"},
    {"norm NULL", n_norm, "norm: argument 1 is NULL"},
    {"mean_all NULL", n_mean_all, "mean: argument 1 is NULL"},
    {"norm_all NULL", n_norm_all, "norm: argument 1 is NULL"},
    {"log_softmax NULL", n_log_softmax, "log_softmax: argument 1 is NULL"},
    {"bmm_scaled NULL", n_bmm_scaled, "bmm: argument 2 is NULL"},
    {"transpose NULL", n_transpose, "transpose: argument 1 is NULL"},
    {"stack NULL", n_stack, "stack: argument 2 is NULL"},
    {"narrow NULL", n_narrow, "narrow: argument 1 is NULL"},
    {"select NULL", n_select, "select: argument 1 is NULL"},
    {"split NULL", n_split, "split: argument 1 is NULL"},
    {"layer_norm NULL", n_layer_norm, "layer_norm: argument 1 is NULL"},
    {"sdpa NULL", n_sdpa, "sdpa: q is NULL"},
    {"backward NULL", n_backward, "backward: loss is NULL"},
    {"backward_with NULL", n_backward_with, "backward: loss is NULL"},
    {"full NULL shape", n_full_shape, "tensor: shape is NULL"},
    {"cell_step_run NULL", n_cell_step_run, "cell step: the run, state or next is NULL"},
    {"attention_keys NULL", n_attention_keys, "attention: the module is NULL"},
    {"tlayer_decode NULL", n_tlayer_decode, "transformer decoder layer: the layer is NULL"},
    {"seq2seq_encode NULL", n_s2s_encode, "seq2seq_encode: the model, src or enc is NULL"},
    {"transformer_s2s_decode NULL", n_ts2s_decode, "transformer_s2s_decode: the model or tgt_in is NULL"},
    {"transformer_s2s_loss NULL", n_ts2s_loss, "transformer_s2s_loss: the model or tgt_out is NULL"},
    {"transformer_s2s_generate NULL", n_generate, "transformer_s2s_generate: the model, src or out is NULL"},
    {"mse_loss dtype", d_mse, "mse_loss: dtype mismatch: argument 1 is f32, argument 2 is f64"},
    {"concat dtype", d_concat, "concat: dtype mismatch: argument 1 is f32, argument 2 is f64"},
    {"backward of a non-scalar", s_backward, "backward: the loss does not depend on anything that requires a gradient"},
    {"causal_mask size", s_causal, "causal_mask: 0 queries and 3 keys (each at least 1)"},
    {"sinusoidal_positions size", s_positions, "sinusoidal_positions: -1 positions of size 4 (each at least 1)"},
    {"max axis", a_max, "max: axis 2 out of range for (2,3)"},
    {"concat axis", a_concat, "concat: axis 2 out of range for (2,3)"},
    {"add dtype", d_add, "add: dtype mismatch: argument 1 is f32, argument 2 is f64"},
    {"matmul dtype", d_matmul, "matmul: dtype mismatch: argument 1 is f64, argument 2 is f32"},
    {"where dtype", d_where, "where: dtype mismatch: argument 1 is f64, argument 2 is f32"},
    {"matmul shape", s_matmul, "matmul: (2,3) @ (2,3): inner dimensions differ"},
    {"add shape", s_add, "add: shapes (2,3) and (3,4) cannot be broadcast"},
    {"bmm shape", s_bmm, "bmm: (2,3) @ (2,3): both must be 3-D or both 4-D"},
    {"reshape shape", s_reshape, "reshape: cannot view (2,3) (6 elements) as (4,-1)"},
    {"mse_loss shape", s_mse, "mse_loss: shapes (2,3) and (3,4) differ"},
    {"layer_norm shape", s_layer_norm, "layer_norm: gamma has shape (2,3), expected (3) for input (2,3)"},
    {"split shape", s_split, "split: sizes add up to 2 but axis 1 of (2,3) has 3"},
    {"sum axis", a_sum, "sum: axis 5 out of range for (2,3)"},
    {"softmax axis", a_softmax, "softmax: axis -3 out of range for (2,3)"},
    {"logsumexp axis", a_logsumexp, "logsumexp: axis 2 out of range for (2,3)"},
    {"transpose axis", a_transpose, "transpose: axis 5 out of range for (2,3)"},
    {"narrow axis", a_narrow, "narrow: axis 3 out of range for (2,3)"},
    {"select index", a_select, "select: index 9 is outside axis 0 of (2,3)"},
    {"stack axis", a_stack, "stack: axis 4 out of range for (2,3)"},
    {"dropout p", v_dropout, "dropout: p = 1.5 is outside [0, 1)"},
    {"index_select index", v_index, "index_select: index 5 at position 0 is out of range [0,2) for (2,3)"},
    {"mse_loss reduction", v_reduction, "mse_loss: unknown reduction 9"},
    {"cross_entropy target", v_ce_target, "cross_entropy: target 7 at row 1 is out of range [0,3) for logits (2,3)"},
    {"full dims", v_dims, "tensor: 0 dimensions (1 to 4 allowed)"},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* each misuse: NULL (or an error) and its exact message */
START_TEST(test_misuse_message)
{
    sg_tape *t = sg_tape_new();
    env e = fresh(t);
    sg_tensor *y = cases[_i].f(&e);
    ck_assert_msg(y == NULL, "%s: returned a tensor", cases[_i].name);
    ck_assert_int_ne(sg_tape_error(t), SG_OK);
    ck_assert_msg(strcmp(sg_tape_errmsg(t), cases[_i].msg) == 0, "%s: \"%s\", expected \"%s\"", cases[_i].name,
                  sg_tape_errmsg(t), cases[_i].msg);
    sg_tape_free(t);
}
END_TEST

/* the same call on a tape already in error: NULL, and the first message stays */
START_TEST(test_misuse_after_an_error)
{
    sg_tape *t = sg_tape_new();
    env e = fresh(t);
    sg_fail(t, SG_ERR_ARG, "first: the error that came first");
    ck_assert_ptr_null(cases[_i].f(&e));
    ck_assert_str_eq(sg_tape_errmsg(t), "first: the error that came first");
    ck_assert_int_eq(sg_tape_error(t), SG_ERR_ARG);
    sg_tape_free(t);
}
END_TEST

/* and with no tape at all: NULL, no crash */
START_TEST(test_misuse_without_a_tape)
{
    sg_tape *t = sg_tape_new();
    env e = fresh(t);
    e.t = NULL;
    ck_assert_ptr_null(cases[_i].f(&e));
    sg_tape_free(t);
}
END_TEST

/* ---- constructors: the message goes on the parameter collection -------------- */

typedef sg_status init_fn(sg_params *ps, sg_rng *rng);
#define INIT(name, expr) static sg_status name(sg_params *ps, sg_rng *rng) { (void)rng; return (expr); }

static sg_linear lin;
static sg_embedding emb;
static sg_cell cell;
static sg_rnn rnn;
static sg_attention att;
static sg_mha mha;
static sg_tlayer tl;
static sg_transformer_lm tlm;
static sg_transformer_s2s ts2s;

INIT(i_linear_null, sg_linear_init(NULL, ps, "fc.", 3, 4, true, SG_F32, rng))
INIT(i_linear_size, sg_linear_init(&lin, ps, "fc.", 3, 0, true, SG_F32, rng))
INIT(i_embedding, sg_embedding_init(&emb, ps, "emb.", 0, 2, SG_F32, rng))
INIT(i_cell_def, sg_cell_init(&cell, NULL, ps, "c.", "", 3, 4, NULL, SG_F32, rng))
INIT(i_cell_size, sg_cell_init(&cell, &sg_gru_cell, ps, "c.", "", 0, 4, NULL, SG_F32, rng))
INIT(i_rnn_layers, sg_rnn_init(&rnn, &sg_lstm_cell, ps, "r.", 3, 4, &(sg_rnn_opts){.layers = 0}, SG_F32, rng))
INIT(i_attention_kind, sg_attention_init(&att, ps, "a.", (sg_attn_kind)9, 4, 4, 4, SG_F32, rng))
INIT(i_attention_size, sg_attention_init(&att, ps, "a.", SG_ATTN_ADDITIVE, 4, 3, 0, SG_F32, rng))
INIT(i_mha, sg_mha_init(&mha, ps, "m.", 6, 4, SG_F32, rng))
INIT(i_tlayer_opts, sg_tlayer_init(&tl, ps, "t.", false, NULL, SG_F32, rng))
INIT(i_tlayer_eps, sg_tlayer_init(&tl, ps, "t.", false, &(sg_transformer_opts){.d_model = 4, .heads = 2, .d_ff = 8,
                                                                             .eps = -1}, SG_F32, rng))
INIT(i_tlm_layers, sg_transformer_lm_init(&tlm, ps, 5, 8, 13, false, &(sg_transformer_opts){.d_model = 4, .heads = 2,
                                                                                           .d_ff = 8}, SG_F32, rng))
INIT(i_s2s_null, sg_seq2seq_init(NULL, ps, 5, 5, 3, 4, NULL, SG_F32, rng))
INIT(i_ts2s_layers, sg_transformer_s2s_init(&ts2s, ps, 5, 5, 0, &(sg_transformer_opts){.d_model = 4, .heads = 2,
                                                                                      .d_ff = 8}, SG_F32, rng))

static const struct { const char *name; init_fn *f; sg_status status; const char *msg; } inits[] = {
    {"linear NULL", i_linear_null, SG_ERR_NULL, "linear: the module is NULL"},
    {"linear size", i_linear_size, SG_ERR_ARG, "linear fc.: 3 inputs, 0 outputs (each at least 1)"},
    {"embedding size", i_embedding, SG_ERR_ARG, "embedding emb.: 0 rows of size 2 (each at least 1)"},
    {"cell definition", i_cell_def, SG_ERR_NULL, "cell c.: the definition is NULL"},
    {"cell size", i_cell_size, SG_ERR_ARG, "gru: input size 0, hidden size 4 (each at least 1)"},
    {"rnn layers", i_rnn_layers, SG_ERR_ARG, "rnn: 0 layers (1 to 8 allowed)"},
    {"attention kind", i_attention_kind, SG_ERR_ARG, "attention: unknown kind 9"},
    {"attention size", i_attention_size, SG_ERR_ARG,
     "attention: query size 4, key size 3, attention size 0 (each at least 1)"},
    {"mha heads", i_mha, SG_ERR_ARG, "mha: embed_dim 6 is not a positive multiple of 4 heads"},
    {"tlayer options", i_tlayer_opts, SG_ERR_NULL, "transformer layer: the options are NULL"},
    {"tlayer eps", i_tlayer_eps, SG_ERR_ARG, "transformer layer: layer norm eps -1 (0: the default 1e-5)"},
    {"transformer lm layers", i_tlm_layers, SG_ERR_ARG, "transformer lm: 13 layers (1 to 12), max_len 8 (at least 1)"},
    {"seq2seq NULL", i_s2s_null, SG_ERR_NULL, "seq2seq: the module is NULL"},
    {"transformer s2s layers", i_ts2s_layers, SG_ERR_ARG, "transformer s2s: 0 layers (1 to 12)"},
};
enum { NINITS = sizeof inits / sizeof inits[0] };

START_TEST(test_constructor_misuse)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    ck_assert_int_eq(inits[_i].f(ps, &rng), inits[_i].status);
    ck_assert_msg(strcmp(sg_params_errmsg(ps), inits[_i].msg) == 0, "%s: \"%s\", expected \"%s\"", inits[_i].name,
                  sg_params_errmsg(ps), inits[_i].msg);
    ck_assert_int_eq(sg_params_error(ps), inits[_i].status);
    sg_params_free(ps);
    /* and without a collection: an error, no crash */
    ck_assert_int_ne(inits[_i].f(NULL, &rng), SG_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api/misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_loop_test(tc, test_misuse_message, 0, NCASES);
    tcase_add_loop_test(tc, test_misuse_after_an_error, 0, NCASES);
    tcase_add_loop_test(tc, test_misuse_without_a_tape, 0, NCASES);
    tcase_add_loop_test(tc, test_constructor_misuse, 0, NINITS);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
