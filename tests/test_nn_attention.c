/*
 * test_nn_attention.c - nn/attention.c: additive and Luong (dot, general,
 * concat) attention and torch.nn.MultiheadAttention (key padding mask;
 * causal mask) against PyTorch to 1e-10 in f64 and 1e-5 in f32 (values from
 * tools/gen_fixtures.py); f64 gradient checks of every kind, local-monotonic
 * windows, scaled dot-product attention in 3-D and 4-D; a fully masked query
 * gives zeros, not NaN; errors.
 */
#include <math.h>

#include <stdio.h>

#include "testutil.h"

static const char *kinds[] = {"dot", "general", "concat", "additive"};

/* _i = 2 * kind + dtype */
START_TEST(test_attention_matches_pytorch)
{
    sg_attn_kind kind = (sg_attn_kind)(_i / 2);
    sg_dtype dt = (sg_dtype)(_i % 2);
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    char file[64];
    snprintf(file, sizeof file, "attn_%s.txt", kinds[kind]);
    tu_fixture *fx = tu_fixture_load(file);
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    int Q = kind == SG_ATTN_DOT ? 6 : 4;
    sg_attention a;
    ck_assert_int_eq(sg_attention_init(&a, ps, "", kind, Q, 6, 5, dt, &rng), SG_OK);
    tu_load_params(fx, ps);
    sg_tensor *s = tu_fixture_param(fx, "s", dt), *h = tu_fixture_param(fx, "h", dt);
    sg_tape *t = sg_tape_new();
    sg_tensor *w;
    sg_tensor *c = sg_attention_forward(t, &a, s, h, NULL, tu_fixture_const(t, fx, "keep", dt), 0, &w);
    ck_assert_msg(c != NULL, "%s", sg_tape_errmsg(t));
    size_t n;
    const double *e_c = tu_fixture_get(fx, "out0", NULL, NULL, &n);
    tu_assert_values(c, e_c, n, tol);
    const double *e_w = tu_fixture_get(fx, "out1", NULL, NULL, &n);
    tu_assert_values(w, e_w, n, tol);
    sg_tensor *loss = sg_add(t, sg_sum_all(t, sg_mul(t, c, tu_fixture_const(t, fx, "w0", dt))),
                             sg_sum_all(t, sg_mul(t, w, tu_fixture_const(t, fx, "w1", dt))));
    ck_assert_int_eq(sg_backward(t, loss), SG_OK);
    tu_check_grad_named(fx, "s", s, tol);
    tu_check_grad_named(fx, "h", h, tol);
    tu_check_param_grads(fx, ps, tol);
    sg_tensor_free(s), sg_tensor_free(h), sg_params_free(ps), sg_tape_free(t), tu_fixture_free(fx);
}
END_TEST

/* _i = 2 * case + dtype; case 0: cross-attention with key padding, 1: causal self-attention */
START_TEST(test_mha_matches_pytorch)
{
    bool causal = _i / 2;
    sg_dtype dt = (sg_dtype)(_i % 2);
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    tu_fixture *fx = tu_fixture_load(causal ? "attn_mha_causal.txt" : "attn_mha_pad.txt");
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_mha m;
    ck_assert_int_eq(sg_mha_init(&m, ps, "", 8, 2, dt, &rng), SG_OK);
    tu_load_params(fx, ps);
    sg_tape *t = sg_tape_new();
    sg_tensor *keep = tu_fixture_const(t, fx, "keep", dt), *y, *in[3];
    if (causal) {
        in[0] = tu_fixture_param(fx, "x", dt);
        y = sg_mha_forward(t, &m, in[0], in[0], in[0], &(sg_attn_masks){.key_keep = keep, .causal = true}, NULL);
    } else {
        in[0] = tu_fixture_param(fx, "query", dt), in[1] = tu_fixture_param(fx, "key", dt);
        in[2] = tu_fixture_param(fx, "value", dt);
        y = sg_mha_forward(t, &m, in[0], in[1], in[2], &(sg_attn_masks){.key_keep = keep}, NULL);
    }
    ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
    size_t n;
    const double *e_y = tu_fixture_get(fx, "out0", NULL, NULL, &n);
    tu_assert_values(y, e_y, n, tol);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, tu_fixture_const(t, fx, "w0", dt)))), SG_OK);
    if (causal) {
        tu_check_grad_named(fx, "x", in[0], tol);
        sg_tensor_free(in[0]);
    } else {
        static const char *names[3] = {"query", "key", "value"};
        for (int k = 0; k < 3; k++) {
            tu_check_grad_named(fx, names[k], in[k], tol);
            sg_tensor_free(in[k]);
        }
    }
    tu_check_param_grads(fx, ps, tol);
    sg_params_free(ps), sg_tape_free(t), tu_fixture_free(fx);
}
END_TEST

/* ---- gradient checks --------------------------------------------------------- */

struct actx { sg_attention a; int pos; };

static sg_tensor *attn_loss(sg_tape *t, sg_tensor **in, void *p)
{
    struct actx *k = p;
    sg_tensor *keep = sg_tensor_from_f64(t, SG_F64, 2, (int[]){2, 5}, (double[]){1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    sg_tensor *w, *c = sg_attention_forward(t, &k->a, in[0], in[1], NULL, keep, k->pos, &w);
    return sg_concat(t, (sg_tensor *[]){c, sg_square(t, w)}, 2, 1);
}

START_TEST(test_attention_gradcheck)
{
    /* _i: 4 kinds, then additive and dot with a local window of 1 around pos 2 */
    sg_attn_kind kind = (sg_attn_kind)(_i < 4 ? _i : _i == 4 ? SG_ATTN_ADDITIVE : SG_ATTN_DOT);
    int Q = kind == SG_ATTN_DOT ? 3 : 4;
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    struct actx k = {.pos = 2};
    ck_assert_int_eq(sg_attention_init(&k.a, ps, "", kind, Q, 3, 4, SG_F64, &rng), SG_OK);
    if (_i >= 4)
        k.a.window = 1;
    sg_tensor *in[5] = {tu_param(2, (int[]){2, Q}, 4), tu_param(3, (int[]){2, 5, 3}, 5)};
    int n = 2;
    for (int j = 0; j < sg_params_count(ps); j++)
        in[n++] = sg_params_get(ps, j);
    tu_gradcheck(attn_loss, &k, in, n, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]), sg_params_free(ps);
}
END_TEST

static sg_tensor *sdpa_loss(sg_tape *t, sg_tensor **in, void *p)
{
    bool four = *(bool *)p;
    sg_tensor *mask = four ? sg_mul(t, sg_causal_mask(t, SG_F64, 3, 4),
                                    sg_tensor_from_f64(t, SG_F64, 4, (int[]){2, 1, 1, 4}, (double[]){1, 1, 1, 1, 1, 1, 0, 1}))
                           : sg_causal_mask(t, SG_F64, 3, 4);
    return sg_sdpa(t, in[0], in[1], in[2], mask, NULL);
}

START_TEST(test_sdpa_gradcheck)
{
    bool four = _i;
    sg_tensor *in[3];
    if (four) {
        in[0] = tu_param(4, (int[]){2, 2, 3, 4}, 1), in[1] = tu_param(4, (int[]){2, 2, 4, 4}, 2);
        in[2] = tu_param(4, (int[]){2, 2, 4, 3}, 3);
    } else {
        in[0] = tu_param(3, (int[]){2, 3, 4}, 1), in[1] = tu_param(3, (int[]){2, 4, 4}, 2);
        in[2] = tu_param(3, (int[]){2, 4, 3}, 3);
    }
    tu_gradcheck(sdpa_loss, &four, in, 3, 0);
    for (int k = 0; k < 3; k++)
        sg_tensor_free(in[k]);
}
END_TEST

struct mctx { sg_mha m; };

static sg_tensor *mha_loss(sg_tape *t, sg_tensor **in, void *p)
{
    sg_tensor *keep = sg_tensor_from_f64(t, SG_F64, 2, (int[]){2, 3}, (double[]){1, 1, 1, 1, 1, 0});
    return sg_mha_forward(t, &((struct mctx *)p)->m, in[0], in[0], in[0], &(sg_attn_masks){.key_keep = keep, .causal = true},
                          NULL);
}

START_TEST(test_mha_gradcheck)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    struct mctx k;
    ck_assert_int_eq(sg_mha_init(&k.m, ps, "", 4, 2, SG_F64, &rng), SG_OK);
    for (int i = 0; i < 12; i++)        /* non-zero biases, so their gradients matter */
        sg_tensor_set(k.m.in_b, (size_t)i, 0.1 * i - 0.5);
    sg_tensor *in[5] = {tu_param(3, (int[]){2, 3, 4}, 6)};
    for (int j = 0; j < 4; j++)
        in[j + 1] = sg_params_get(ps, j);
    tu_gradcheck(mha_loss, &k, in, 5, 0);
    sg_tensor_free(in[0]), sg_params_free(ps);
}
END_TEST

START_TEST(test_fully_masked_query_gives_zeros)
{
    sg_tape *t = sg_tape_new();
    sg_tape_set_anomaly(t, true);
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tensor *q = sg_randn(t, SG_F32, 3, (int[]){1, 2, 4}, 1, &rng), *k = sg_randn(t, SG_F32, 3, (int[]){1, 3, 4}, 1, &rng);
    sg_tensor *v = sg_randn(t, SG_F32, 3, (int[]){1, 3, 4}, 1, &rng);
    sg_tensor_set_requires_grad(q, true);
    /* query 1 may see nothing */
    sg_tensor *mask = sg_tensor_from_f64(t, SG_F32, 3, (int[]){1, 2, 3}, (double[]){1, 1, 0, 0, 0, 0});
    sg_tensor *w, *o = sg_sdpa(t, q, k, v, mask, &w);
    ck_assert_msg(o != NULL, "%s", sg_tape_errmsg(t));
    for (int j = 4; j < 8; j++)
        ck_assert_double_eq(sg_tensor_get(o, (size_t)j), 0);
    for (int j = 3; j < 6; j++)
        ck_assert_double_eq(sg_tensor_get(w, (size_t)j), 0);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, o)), SG_OK);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_attention_errors)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_attention a;
    ck_assert_int_eq(sg_attention_init(&a, ps, "", SG_ATTN_DOT, 4, 3, 0, SG_F32, &rng), SG_ERR_SHAPE);
    ck_assert_str_eq(sg_params_errmsg(ps), "attention: dot scores need query and key of one size (query 4, key 3)");
    sg_params_clear_error(ps);
    ck_assert_int_eq(sg_attention_init(&a, ps, "", SG_ATTN_ADDITIVE, 4, 3, 5, SG_F32, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *q = sg_zeros(t, SG_F32, 2, (int[]){2, 4}), *h = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 6});
    tu_assert_error(t, sg_attention_forward(t, &a, q, h, NULL, NULL, 0, NULL),
                    "attention: query (2,4) and keys (2,5,6), expected (B,4) and (B,S,3)");
    sg_mha m;
    ck_assert_int_eq(sg_mha_init(&m, ps, "mha.", 6, 4, SG_F32, &rng), SG_ERR_ARG);   /* 6 heads of 1.5 */
    ck_assert_str_eq(sg_params_errmsg(ps), "mha: embed_dim 6 is not a positive multiple of 4 heads");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* Misuse of multi-head attention: each failure inside (a key of another
 * size, a 2-D key, a mask of the wrong shape, another dtype, a tape already
 * in error) is a message on the tape, never a crash; a (Tk,B) mask is not
 * read as (B,Tk). Each case crashed (or misread) before. */
START_TEST(test_mha_misuse)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_mha m;
    ck_assert_int_eq(sg_mha_init(&m, ps, "mha.", 4, 2, SG_F32, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4}), *k = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 4});
    sg_tensor *k6 = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 6}), *k2 = sg_zeros(t, SG_F32, 2, (int[]){5, 4});
    tu_assert_error(t, sg_mha_forward(t, &m, q, k6, k6, NULL, NULL),
                    "mha: key (2,5,6) and value (2,5,6), expected both (2,S,4) like the query (2,3,4)");
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4}), k = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 4});
    k2 = sg_zeros(t, SG_F32, 2, (int[]){5, 4});
    tu_assert_error(t, sg_mha_forward(t, &m, q, k2, k2, NULL, NULL),
                    "mha: key (5,4) and value (5,4), expected both (2,S,4) like the query (2,3,4)");
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4}), k = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 4});
    sg_tensor *wrong = sg_full(t, SG_F32, 2, (int[]){5, 2}, 1);     /* (Tk,B): same count as (B,Tk) */
    tu_assert_error(t, sg_mha_forward(t, &m, q, k, k, &(sg_attn_masks){.key_keep = wrong}, NULL),
                    "mha: key mask (5,2), expected (2,5): (B,S), 1 = attend");
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4}), k = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 4});
    sg_tensor *am = sg_full(t, SG_F32, 2, (int[]){5, 3}, 1);
    tu_assert_error(t, sg_mha_forward(t, &m, q, k, k, &(sg_attn_masks){.attn_mask = am}, NULL),
                    "mha: attention mask (5,3), expected (3,5) or (2,3,5): (T,S) or (B,T,S)");
    sg_tape_reset(t);
    sg_tensor *q64 = sg_zeros(t, SG_F64, 3, (int[]){2, 3, 4});
    tu_assert_error(t, sg_mha_forward(t, &m, q64, q64, q64, NULL, NULL), "mha: query is f64 but the parameters are f32");
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4});
    sg_fail(t, SG_ERR_ARG, "earlier: something failed");
    ck_assert_ptr_null(sg_mha_forward(t, &m, q, q, q, NULL, NULL));
    ck_assert_str_eq(sg_tape_errmsg(t), "earlier: something failed");
    sg_tape_reset(t);
    ck_assert_ptr_null(sg_mha_forward(t, NULL, q, q, q, NULL, NULL));
    ck_assert_str_eq(sg_tape_errmsg(t), "mha: the module is NULL or not initialised");
    /* a decoder layer without memory, an encoder layer used as a decoder */
    sg_transformer_opts o = sg_transformer_defaults(4, 2);
    sg_tlayer dec, enc;
    ck_assert_int_eq(sg_tlayer_init(&dec, ps, "dec.", true, &o, SG_F32, &rng), SG_OK);
    ck_assert_int_eq(sg_tlayer_init(&enc, ps, "enc.", false, &o, SG_F32, &rng), SG_OK);
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4});
    tu_assert_error(t, sg_tlayer_decode(t, &dec, q, NULL, NULL, NULL, NULL),
                    "transformer decoder layer: memory is NULL (the encoder's output, (B,S,d))");
    sg_tape_reset(t);
    q = sg_zeros(t, SG_F32, 3, (int[]){2, 3, 4});
    tu_assert_error(t, sg_tlayer_decode(t, &enc, q, q, NULL, NULL, NULL),
                    "transformer decoder layer: an encoder layer (decoder = false) given");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* An attention mask as PyTorch's: a (T,S) keep-mask and the additive form
 * with -inf give the same weights, zero where forbidden; a causal flag equals
 * the lower-triangular attn_mask. */
START_TEST(test_mha_attn_mask)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_mha m;
    ck_assert_int_eq(sg_mha_init(&m, ps, "mha.", 4, 2, SG_F64, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_randn(t, SG_F64, 3, (int[]){2, 3, 4}, 1.0, &rng);
    double keepv[9] = {1, 0, 0, 1, 1, 0, 1, 1, 1}, addv[9];
    for (int i = 0; i < 9; i++)
        addv[i] = keepv[i] ? 0 : -INFINITY;
    sg_tensor *keep = sg_tensor_from_f64(t, SG_F64, 2, (int[]){3, 3}, keepv);
    sg_tensor *add = sg_tensor_from_f64(t, SG_F64, 2, (int[]){3, 3}, addv);
    sg_tensor *w1, *w2, *w3;
    sg_tensor *y1 = sg_mha_forward(t, &m, x, x, x, &(sg_attn_masks){.attn_mask = keep}, &w1);
    sg_tensor *y2 = sg_mha_forward(t, &m, x, x, x, &(sg_attn_masks){.attn_mask = add, .attn_additive = true}, &w2);
    sg_tensor *y3 = sg_mha_forward(t, &m, x, x, x, &(sg_attn_masks){.causal = true}, &w3);
    ck_assert_msg(y1 && y2 && y3, "%s", sg_tape_errmsg(t));
    for (size_t i = 0; i < sg_tensor_size(y1); i++) {
        ck_assert_double_eq_tol(sg_tensor_get(y1, i), sg_tensor_get(y2, i), 1e-14);
        ck_assert_double_eq_tol(sg_tensor_get(y1, i), sg_tensor_get(y3, i), 1e-14);
    }
    for (size_t i = 0; i < sg_tensor_size(w1); i++)     /* (B,h,3,3): forbidden weights are 0 */
        if (!keepv[i % 9])
            ck_assert_double_eq(sg_tensor_get(w1, i), 0);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* the additive bias of sg_sdpa_ex (PyTorch's float attn_mask) in the
 * gradient check too: q, k, v and the bias itself, over (3,4) scores */
static sg_tensor *sdpa_bias_loss(sg_tape *t, sg_tensor **in, void *p)
{
    (void)p;
    return sg_sdpa_ex(t, in[0], in[1], in[2], NULL, in[3], NULL);
}

START_TEST(test_sdpa_bias_gradcheck)
{
    sg_tensor *in[4] = {tu_param(3, (int[]){2, 3, 4}, 1), tu_param(3, (int[]){2, 4, 4}, 2),
                        tu_param(3, (int[]){2, 4, 3}, 3), tu_param(2, (int[]){3, 4}, 4)};
    tu_gradcheck(sdpa_bias_loss, NULL, in, 4, 0);
    for (int k = 0; k < 4; k++)
        sg_tensor_free(in[k]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/attention");
    TCase *tc = tcase_create("pytorch");
    tcase_add_loop_test(tc, test_attention_matches_pytorch, 0, 8);
    tcase_add_loop_test(tc, test_mha_matches_pytorch, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_loop_test(tc, test_attention_gradcheck, 0, 6);
    tcase_add_loop_test(tc, test_sdpa_gradcheck, 0, 2);
    tcase_add_test(tc, test_sdpa_bias_gradcheck);
    tcase_add_test(tc, test_mha_gradcheck);
    suite_add_tcase(s, tc);
    tc = tcase_create("masks and errors");
    tcase_add_test(tc, test_fully_masked_query_gives_zeros);
    tcase_add_test(tc, test_attention_errors);
    tcase_add_test(tc, test_mha_misuse);
    tcase_add_test(tc, test_mha_attn_mask);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
