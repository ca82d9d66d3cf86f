/*
 * test_ops_softmax.c - ops/softmax.c: softmax and log-softmax values and
 * gradients (Python's math module for the numbers), masks including a fully
 * masked row (zeros, not NaN), f64 gradient checks over shapes, axes and
 * masks, and the error messages.
 */
#include <math.h>

#include "testutil.h"

static const double P[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};

/* y = f(x) on x = [1 2 3]; upstream dy = [1 0 0] */
START_TEST(test_softmax_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 1, (int[]){3}, (double[]){1, 2, 3});
    sg_tensor *y = sg_softmax(t, x, 0, NULL);
    tu_assert_values(y, P, 3, 1e-6);
    sg_tensor *dy = sg_tensor_from_f64(t, _i, 1, (int[]){3}, (double[]){1, 0, 0});
    ck_assert_int_eq(sg_backward_with(t, y, dy), SG_OK);
    /* dx_i = y_i (dy_i - y_0) */
    tu_assert_grad(x, (double[]){P[0] * (1 - P[0]), -P[0] * P[1], -P[0] * P[2]}, 3, 1e-6);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_log_softmax_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 1, (int[]){3}, (double[]){1, 2, 3});
    sg_tensor *y = sg_log_softmax(t, x, -1, NULL);
    tu_assert_values(y, (double[]){-2.40760596444438, -1.4076059644443801, -0.4076059644443803}, 3, 1e-6);
    sg_tensor *dy = sg_tensor_from_f64(t, _i, 1, (int[]){3}, (double[]){1, 0, 0});
    ck_assert_int_eq(sg_backward_with(t, y, dy), SG_OK);
    /* dx = dy - softmax * sum(dy) */
    tu_assert_grad(x, (double[]){1 - P[0], -P[1], -P[2]}, 3, 1e-6);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_softmax_mask_and_fully_masked_row)
{
    /* row 0 keeps positions 0 and 1: softmax of [1 2]; row 1 keeps nothing */
    sg_tape *t = sg_tape_new();
    sg_tape_set_anomaly(t, true);
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    sg_tensor *mask = sg_tensor_from_f64(t, _i, 2, (int[]){2, 3}, (double[]){1, 1, 0, 0, 0, 0});
    sg_tensor *y = sg_softmax(t, x, 1, mask);
    ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
    tu_assert_values(y, (double[]){0.2689414213699951, 0.7310585786300049, 0, 0, 0, 0}, 6, 1e-6);
    sg_tensor *ly = sg_log_softmax(t, x, 1, mask);
    tu_assert_values(ly, (double[]){log(0.2689414213699951), log(0.7310585786300049), 0, 0, 0, 0}, 6, 1e-6);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_add(t, sg_square(t, y), ly))), SG_OK);
    for (int i = 2; i < 6; i++)
        ck_assert_double_eq(sg_tensor_grad_get(x, i), 0);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_softmax_broadcast_mask_axis0)
{
    /* softmax down the columns; mask (3) drops column 2 entirely */
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, _i, 2, (int[]){2, 3}, (double[]){1, 5, 3, 2, 5, 1});
    sg_tensor *mask = sg_tensor_from_f64(t, _i, 1, (int[]){3}, (double[]){1, 1, 0});
    tu_assert_values(sg_softmax(t, x, 0, mask), (double[]){0.2689414213699951, 0.5, 0, 0.7310585786300049, 0.5, 0},
                     6, 1e-6);
    sg_tape_free(t);
}
END_TEST

static const struct { int shape[5], axis, mask; } cases[] = {
    {{1, 5}, 0, 0},
    {{2, 3, 4}, 1, 0},
    {{3, 2, 3, 4}, 1, 0},
    {{3, 2, 3, 4}, -1, 1},               /* mask (1,4) broadcast over rows */
    {{4, 2, 2, 3, 4}, -1, 2},            /* key padding mask (2,1,1,4), one row fully masked */
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

struct ctx { bool logp; int c; };

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *p)
{
    const struct ctx *k = p;
    int c = k->c;
    sg_tensor *mask = NULL;
    if (cases[c].mask == 1)
        mask = sg_tensor_from_f64(t, SG_F64, 2, (int[]){1, 4}, (double[]){1, 0, 1, 1});
    else if (cases[c].mask == 2)
        mask = sg_tensor_from_f64(t, SG_F64, 4, (int[]){2, 1, 1, 4}, (double[]){1, 1, 0, 1, 0, 0, 0, 0});
    return (k->logp ? sg_log_softmax : sg_softmax)(t, in[0], cases[c].axis, mask);
}

static void grad(bool logp, int c)
{
    struct ctx k = {logp, c};
    sg_tensor *x = tu_param(cases[c].shape[0], cases[c].shape + 1, 70 + (uint64_t)c);
    tu_gradcheck(apply, &k, &x, 1, 0);
    sg_tensor_free(x);
}

START_TEST(test_softmax_gradcheck) { grad(false, _i); }
END_TEST
START_TEST(test_log_softmax_gradcheck) { grad(true, _i); }
END_TEST

START_TEST(test_softmax_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_softmax(t, x, 2, NULL), "softmax: axis 2 out of range for (2,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    sg_tensor *m = sg_zeros(t, SG_F32, 1, (int[]){4});
    tu_assert_error(t, sg_softmax(t, x, 1, m), "softmax: shapes (2,3) and (4) cannot be broadcast");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    m = sg_zeros(t, SG_F32, 3, (int[]){2, 1, 3});
    tu_assert_error(t, sg_log_softmax(t, x, 1, m), "log_softmax: mask (2,1,3) does not broadcast to input (2,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    m = sg_zeros(t, SG_F64, 1, (int[]){3});
    tu_assert_error(t, sg_softmax(t, x, 1, m), "softmax: dtype mismatch: argument 1 is f32, argument 2 is f64");
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/softmax");
    TCase *tc = tcase_create("softmax");
    tcase_add_loop_test(tc, test_softmax_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_softmax_gradcheck, 0, N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("log_softmax");
    tcase_add_loop_test(tc, test_log_softmax_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_log_softmax_gradcheck, 0, N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("masks and errors");
    tcase_add_loop_test(tc, test_softmax_mask_and_fully_masked_row, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_softmax_broadcast_mask_axis0, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_softmax_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
