/*
 * test_nn_transformer.c - nn/transformer.c: encoder and decoder layers,
 * post-norm and pre-norm, against torch.nn.TransformerEncoderLayer and
 * TransformerDecoderLayer (dropout 0, key padding and causal masks) and
 * torch.nn.LayerNorm, to 1e-10 in f64 and 1e-5 in f32; f64 gradient checks
 * of both layers and the decoder-only LM; the LM's causality.
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

/* _i = 2 * case + dtype; case: encoder post, encoder pre, decoder post, decoder pre */
START_TEST(test_layer_matches_pytorch)
{
    static const char *files[4] = {"attn_encoder_post.txt", "attn_encoder_pre.txt", "attn_decoder_post.txt",
                                   "attn_decoder_pre.txt"};
    int c = _i / 2;
    bool decoder = c >= 2, pre = c % 2;
    sg_dtype dt = (sg_dtype)(_i % 2);
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    tu_fixture *fx = tu_fixture_load(files[c]);
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_transformer_opts o = sg_transformer_defaults(8, 2);
    o.d_ff = 16, o.norm_first = pre;
    sg_tlayer l;
    ck_assert_int_eq(sg_tlayer_init(&l, ps, "", decoder, &o, dt, &rng), SG_OK);
    ck_assert_int_eq(sg_params_count(ps), decoder ? 18 : 12);
    tu_load_params(fx, ps);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_fixture_param(fx, "x", dt), *mem = decoder ? tu_fixture_param(fx, "mem", dt) : NULL;
    sg_tensor *keep = tu_fixture_const(t, fx, "keep", dt);
    sg_attn_masks masks = {.key_keep = keep};
    sg_tensor *y = decoder ? sg_tlayer_decode(t, &l, x, mem, NULL, &masks, NULL) : sg_tlayer_encode(t, &l, x, &masks, NULL);
    ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
    size_t n;
    const double *e = tu_fixture_get(fx, "out0", NULL, NULL, &n);
    tu_assert_values(y, e, n, tol);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, tu_fixture_const(t, fx, "w0", dt)))), SG_OK);
    tu_check_grad_named(fx, "x", x, tol);
    if (mem)
        tu_check_grad_named(fx, "mem", mem, tol);
    tu_check_param_grads(fx, ps, tol);
    sg_tensor_free(x), sg_tensor_free(mem), sg_params_free(ps), sg_tape_free(t), tu_fixture_free(fx);
}
END_TEST

START_TEST(test_layer_norm_matches_pytorch)
{
    sg_dtype dt = (sg_dtype)_i;
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    tu_fixture *fx = tu_fixture_load("attn_layernorm.txt");
    sg_tensor *x = tu_fixture_param(fx, "x", dt), *w = tu_fixture_param(fx, "weight", dt), *b = tu_fixture_param(fx, "bias", dt);
    sg_tape *t = sg_tape_new();
    sg_tensor *y = sg_layer_norm(t, x, w, b, 1e-5);
    size_t n;
    const double *e = tu_fixture_get(fx, "out0", NULL, NULL, &n);
    tu_assert_values(y, e, n, tol);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, tu_fixture_const(t, fx, "w0", dt)))), SG_OK);
    tu_check_grad_named(fx, "x", x, tol);
    tu_check_grad_named(fx, "weight", w, tol);
    tu_check_grad_named(fx, "bias", b, tol);
    sg_tensor_free(x), sg_tensor_free(w), sg_tensor_free(b), sg_tape_free(t), tu_fixture_free(fx);
}
END_TEST

/* ---- gradient checks: every parameter, the input (and memory) ------------- */

struct lctx { sg_tlayer l; };

static sg_tensor *layer_loss(sg_tape *t, sg_tensor **in, void *p)
{
    const sg_tlayer *l = &((struct lctx *)p)->l;
    sg_tensor *keep = sg_tensor_from_f64(t, SG_F64, 2, (int[]){2, 3}, (double[]){1, 1, 1, 1, 1, 0});
    return l->decoder ? sg_tlayer_decode(t, l, in[0], in[1], NULL, &(sg_attn_masks){.key_keep = keep}, NULL)
                      : sg_tlayer_encode(t, l, in[0], &(sg_attn_masks){.key_keep = keep, .causal = true}, NULL);
}

START_TEST(test_layer_gradcheck)
{
    /* _i: encoder post, encoder pre (gelu), decoder post, decoder pre */
    bool decoder = _i >= 2;
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    struct lctx k;
    sg_transformer_opts o = sg_transformer_defaults(4, 2);
    o.d_ff = 6, o.norm_first = _i % 2, o.gelu = _i == 1;
    ck_assert_int_eq(sg_tlayer_init(&k.l, ps, "", decoder, &o, SG_F64, &rng), SG_OK);
    for (int j = 0; j < sg_params_count(ps); j++) {      /* non-trivial biases and norms */
        sg_tensor *p = sg_params_get(ps, j);
        if (sg_tensor_ndim(p) == 1)
            for (size_t i = 0; i < sg_tensor_size(p); i++)
                sg_tensor_set(p, i, sg_tensor_get(p, i) + 0.3 * sg_rng_normal(&rng));
    }
    sg_tensor *in[SG_GRADCHECK_MAX] = {tu_param(3, (int[]){2, 3, 4}, 6), tu_param(3, (int[]){2, 3, 4}, 7)};
    int n = 2;
    for (int j = 0; j < sg_params_count(ps) && n < SG_GRADCHECK_MAX; j++)
        in[n++] = sg_params_get(ps, j);
    ck_assert_int_eq(n, 2 + sg_params_count(ps));     /* every parameter is checked */
    tu_gradcheck(layer_loss, &k, in, n, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]), sg_params_free(ps);
}
END_TEST

struct mctx { sg_transformer_lm m; };

static sg_tensor *lm_loss(sg_tape *t, sg_tensor **in, void *p)
{
    (void)in;
    static const int ids[8] = {1, 4, 2, 0, 3, 3, 1, 4}, next[8] = {4, 2, 0, 1, 3, 1, 4, 2};
    sg_tensor *z = sg_transformer_lm_forward(t, &((struct mctx *)p)->m, ids, 2, 4, NULL);
    return sg_cross_entropy(t, z, next, NULL);
}

START_TEST(test_lm_gradcheck)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 8);
    struct mctx k;
    sg_transformer_opts o = sg_transformer_defaults(4, 2);
    o.d_ff = 8, o.norm_first = true, o.gelu = true;
    ck_assert_int_eq(sg_transformer_lm_init(&k.m, ps, 5, 6, 1, _i == 1, &o, SG_F64, &rng), SG_OK);
    sg_tensor *in[SG_GRADCHECK_MAX];
    int n = 0;
    for (int j = 0; j < sg_params_count(ps) && n < SG_GRADCHECK_MAX; j++)
        in[n++] = sg_params_get(ps, j);
    tu_gradcheck(lm_loss, &k, in, n, 0);
    sg_params_free(ps);
}
END_TEST

START_TEST(test_lm_is_causal)
{
    /* changing the last token changes only the last position's logits */
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 8);
    sg_transformer_lm m;
    sg_transformer_opts o = sg_transformer_defaults(8, 2);
    ck_assert_int_eq(sg_transformer_lm_init(&m, ps, 7, 16, 2, false, &o, SG_F64, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    sg_tensor *a = sg_transformer_lm_forward(t, &m, (int[]){1, 2, 3, 4, 5}, 1, 5, NULL);
    sg_tensor *b = sg_transformer_lm_forward(t, &m, (int[]){1, 2, 3, 4, 6}, 1, 5, NULL);
    tu_assert_shape(a, 3, (int[]){1, 5, 7});
    for (size_t i = 0; i < 4 * 7; i++)
        ck_assert_double_eq_tol(sg_tensor_get(a, i), sg_tensor_get(b, i), 1e-12);
    double diff = 0;
    for (size_t i = 4 * 7; i < 5 * 7; i++)
        diff += fabs(sg_tensor_get(a, i) - sg_tensor_get(b, i));
    ck_assert_double_gt(diff, 1e-6);
    tu_assert_error(t, sg_transformer_lm_forward(t, &m, (int[]){1}, 1, 17, NULL),
                    "transformer_lm: sequence of 17 is longer than max_len 16");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/transformer");
    TCase *tc = tcase_create("pytorch");
    tcase_add_loop_test(tc, test_layer_matches_pytorch, 0, 8);
    tcase_add_loop_test(tc, test_layer_norm_matches_pytorch, SG_F32, SG_F64 + 1);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_loop_test(tc, test_layer_gradcheck, 0, 4);
    tcase_add_loop_test(tc, test_lm_gradcheck, 0, 2);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("causality");
    tcase_add_test(tc, test_lm_is_causal);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
