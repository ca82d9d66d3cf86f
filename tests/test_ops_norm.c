/*
 * test_ops_norm.c - ops/norm.c: dropout (mask drawn once and reused by
 * backward, inverted scaling, seeded) and layer norm (known values from
 * Python's math module for x = [1 2 3 4], eps 1e-5), f64 gradient checks
 * over shapes, and error messages.
 */
#include <math.h>

#include "testutil.h"

START_TEST(test_dropout_known)
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_tape *t = sg_tape_new();
    enum { N = 10000 };
    static double ones[N];
    for (int i = 0; i < N; i++)
        ones[i] = 1;
    sg_tensor *x = tu_param_of(_i, 1, (int[]){N}, ones);
    sg_tensor *y = sg_dropout(t, x, 0.25, &rng);
    ck_assert_ptr_nonnull(y);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        double v = sg_tensor_get(y, (size_t)i);
        ck_assert_msg(v == 0 || fabs(v - 1 / 0.75) < 1e-6, "y[%d] = %g", i, v);
        kept += v != 0;
    }
    ck_assert_int_gt(kept, 7300);               /* 7500 expected, sd ~43 */
    ck_assert_int_lt(kept, 7700);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    for (int i = 0; i < N; i++)              /* backward reuses the forward's mask */
        ck_assert_double_eq_tol(sg_tensor_grad_get(x, (size_t)i), sg_tensor_get(y, (size_t)i), 1e-6);
    sg_tape_reset(t);
    tu_assert_values(sg_dropout(t, x, 0, NULL), ones, N, 0);   /* p = 0 is the identity */
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_layer_norm_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){1, 4}, (double[]){1, 2, 3, 4});
    sg_tensor *g = tu_param_of(_i, 1, (int[]){4}, (double[]){1, 2, 1, 2});
    sg_tensor *b = tu_param_of(_i, 1, (int[]){4}, (double[]){0, 0, 1, 1});
    static const double xh[4] = {-1.3416354199689269, -0.447211806656309, 0.447211806656309, 1.3416354199689269};
    tu_assert_values(sg_layer_norm(t, x, NULL, NULL, 1e-5), xh, 4, 1e-6);
    sg_tensor *y = sg_layer_norm(t, x, g, b, 1e-5);
    tu_assert_values(y, (double[]){-1.3416354199689269, -0.894423613312618, 1.447211806656309, 3.6832708399378538}, 4,
                     1e-6);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(g, xh, 4, 1e-6);                        /* dgamma = dy xh */
    tu_assert_grad(b, (double[]){1, 1, 1, 1}, 4, 1e-6);    /* dbeta = dy */
    sg_tensor_free(x), sg_tensor_free(g), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

static const int shapes[][5] = {{1, 5}, {2, 3, 4}, {3, 2, 3, 4}, {4, 2, 2, 3, 4}};

static sg_tensor *ln_apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    bool affine = *(bool *)ctx;
    return sg_layer_norm(t, in[0], affine ? in[1] : NULL, affine ? in[2] : NULL, 1e-5);
}

START_TEST(test_layer_norm_gradcheck)
{
    const int *s = shapes[_i];
    int D = s[s[0]];
    sg_tensor *in[3] = {tu_param(s[0], s + 1, 11 + (uint64_t)_i), tu_param(1, &D, 12), tu_param(1, &D, 13)};
    bool affine = true;
    tu_gradcheck(ln_apply, &affine, in, 3, 0);
    affine = false;
    tu_gradcheck(ln_apply, &affine, in, 1, 0);
    for (int k = 0; k < 3; k++)
        sg_tensor_free(in[k]);
}
END_TEST

static sg_tensor *dropout_apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)ctx;
    sg_rng rng;
    sg_rng_seed(&rng, 77);    /* reseeded each call: the same mask every time */
    return sg_dropout(t, sg_tanh(t, in[0]), 0.3, &rng);
}

START_TEST(test_dropout_gradcheck)
{
    const int *s = shapes[_i];
    sg_tensor *x = tu_param(s[0], s + 1, 21 + (uint64_t)_i);
    tu_gradcheck(dropout_apply, NULL, &x, 1, 0);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_norm_errors)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_dropout(t, x, 1.0, &rng), "dropout: p = 1 is outside [0, 1)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_dropout(t, x, 0.5, NULL), "dropout: rng is NULL");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    sg_tensor *g = sg_zeros(t, SG_F32, 1, (int[]){2});
    tu_assert_error(t, sg_layer_norm(t, x, g, NULL, 1e-5), "layer_norm: gamma has shape (2), expected (3) for input (2,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_layer_norm(t, x, NULL, NULL, 0), "layer_norm: eps = 0 must be positive");
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/norm");
    TCase *tc = tcase_create("dropout");
    tcase_add_loop_test(tc, test_dropout_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_dropout_gradcheck, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("layer_norm");
    tcase_add_loop_test(tc, test_layer_norm_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_layer_norm_gradcheck, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_norm_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
