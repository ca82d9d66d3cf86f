/*
 * test_ops_reduce.c - ops/reduce.c: sum, mean, max (argmax), logsumexp and
 * norm along an axis and over everything. Known values on
 * x = [1 5 3; 4 2 6], worked by hand (logsumexp and softmax weights with
 * Python's math module); f64 gradient checks over shapes and axes; errors.
 */
#include <math.h>

#include "testutil.h"

static const double X[6] = {1, 5, 3, 4, 2, 6};

typedef sg_tensor *(*reduce_fn)(sg_tape *, sg_tensor *, int, bool);

/* y = f(x, axis); L = sum(y); checks y's shape and values and dx */
static void check(reduce_fn f, sg_dtype dt, int axis, bool keepdim, int ndim, const int *shape,
                  const double *y, const double *dx)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(dt, 2, (int[]){2, 3}, X);
    sg_tensor *out = f(t, x, axis, keepdim);
    tu_assert_shape(out, ndim, shape);
    tu_assert_values(out, y, sg_tensor_size(out), 1e-6);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, out)), SG_OK);
    tu_assert_grad(x, dx, 6, 1e-6);
    sg_tensor_free(x), sg_tape_free(t);
}

START_TEST(test_sum_known)
{
    check(sg_sum, _i, 0, false, 1, (int[]){3}, (double[]){5, 7, 9}, (double[]){1, 1, 1, 1, 1, 1});
    check(sg_sum, _i, -1, true, 2, (int[]){2, 1}, (double[]){9, 12}, (double[]){1, 1, 1, 1, 1, 1});
}
END_TEST

START_TEST(test_mean_known)
{
    double third = 1.0 / 3;
    check(sg_mean, _i, 1, false, 1, (int[]){2}, (double[]){3, 4}, (double[]){third, third, third, third, third, third});
}
END_TEST

START_TEST(test_max_known)
{   /* row maxima 5 (at 1) and 6 (at 2); column maxima 4, 5, 6 (rows 1, 0, 1) */
    check(sg_max, _i, 1, false, 1, (int[]){2}, (double[]){5, 6}, (double[]){0, 1, 0, 0, 0, 1});
    check(sg_max, _i, 0, false, 1, (int[]){3}, (double[]){4, 5, 6}, (double[]){0, 1, 0, 1, 0, 1});
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, _i, 2, (int[]){2, 3}, X);
    const int *arg = sg_max_argmax(sg_max(t, x, 0, false));
    ck_assert_ptr_nonnull(arg);
    ck_assert_int_eq(arg[0], 1);
    ck_assert_int_eq(arg[1], 0);
    ck_assert_int_eq(arg[2], 1);
    ck_assert_ptr_null(sg_max_argmax(x));
    sg_tape_free(t);
}
END_TEST

START_TEST(test_logsumexp_known)
{   /* log(e^1 + e^5 + e^3), log(e^4 + e^2 + e^6); dx = softmax of each row */
    check(sg_logsumexp, _i, 1, false, 1, (int[]){2}, (double[]){5.1429316284999, 6.142931628499899},
          (double[]){0.01587623997646676, 0.8668133321973345, 0.1173104278261983,
                     0.11731042782619841, 0.015876239976466772, 0.8668133321973353});
}
END_TEST

START_TEST(test_norm_known)
{   /* sqrt(35), sqrt(56); dx = x / norm */
    double n1 = 5.916079783099616, n2 = 7.483314773547883;
    check(sg_norm, _i, 1, false, 1, (int[]){2}, (double[]){n1, n2},
          (double[]){1 / n1, 5 / n1, 3 / n1, 4 / n2, 2 / n2, 6 / n2});
}
END_TEST

START_TEST(test_reduce_all_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 3}, X);
    tu_assert_values(sg_sum_all(t, x), (double[]){21}, 1, 1e-6);
    tu_assert_values(sg_mean_all(t, x), (double[]){3.5}, 1, 1e-6);
    sg_tensor *n = sg_norm_all(t, x);
    tu_assert_shape(n, 1, (int[]){1});
    tu_assert_values(n, (double[]){9.539392014169456}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, n), SG_OK);
    double dx[6];
    for (int i = 0; i < 6; i++)
        dx[i] = X[i] / 9.539392014169456;
    tu_assert_grad(x, dx, 6, 1e-6);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

/* gradient checks: every reduction at each (shape, axis, keepdim) case */
static const struct { int shape[5], axis; bool keepdim; } cases[] = {
    {{1, 5}, 0, false},
    {{2, 3, 4}, 1, false},
    {{3, 2, 3, 4}, 1, true},
    {{4, 2, 3, 2, 2}, -1, false},
    {{4, 2, 3, 2, 2}, 0, true},
    {{2, 3, 4}, 100, false},            /* 100: the *_all variant */
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

struct ctx { reduce_fn f; sg_tensor *(*all)(sg_tape *, sg_tensor *); int c; };

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *p)
{
    const struct ctx *k = p;
    if (cases[k->c].axis == 100)
        return k->all ? k->all(t, in[0]) : k->f(t, sg_reshape(t, in[0], 1, (int[]){-1}), 0, false);
    return k->f(t, in[0], cases[k->c].axis, cases[k->c].keepdim);
}

static void grad(reduce_fn f, sg_tensor *(*all)(sg_tape *, sg_tensor *), int c)
{
    struct ctx k = {f, all, c};
    sg_tensor *x = tu_param(cases[c].shape[0], cases[c].shape + 1, 50 + (uint64_t)c);
    tu_gradcheck(apply, &k, &x, 1, 0);
    sg_tensor_free(x);
}

START_TEST(test_sum_gradcheck) { grad(sg_sum, sg_sum_all, _i); }
END_TEST
START_TEST(test_mean_gradcheck) { grad(sg_mean, sg_mean_all, _i); }
END_TEST
START_TEST(test_max_gradcheck) { grad(sg_max, NULL, _i); }
END_TEST
START_TEST(test_logsumexp_gradcheck) { grad(sg_logsumexp, NULL, _i); }
END_TEST
START_TEST(test_norm_gradcheck) { grad(sg_norm, sg_norm_all, _i); }
END_TEST

START_TEST(test_reduce_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_sum(t, x, 2, false), "sum: axis 2 out of range for (2,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_max(t, x, -3, false), "max: axis -3 out of range for (2,3)");
    sg_tape_reset(t);
    tu_assert_error(t, sg_norm_all(t, NULL), "norm: argument 1 is NULL");
    sg_tape_free(t);
}
END_TEST

START_TEST(test_logsumexp_large_values)
{   /* 1000 + log 2: no overflow because the max is taken out first */
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, _i, 1, (int[]){2}, (double[]){1000, 1000});
    tu_assert_values(sg_logsumexp(t, x, 0, false), (double[]){1000 + log(2.0)}, 1, 1e-7);
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/reduce");
    const tu_op_tests ops[] = {
        {"sum", test_sum_known, test_sum_gradcheck},
        {"mean", test_mean_known, test_mean_gradcheck},
        {"max", test_max_known, test_max_gradcheck},
        {"logsumexp", test_logsumexp_known, test_logsumexp_gradcheck},
        {"norm", test_norm_known, test_norm_gradcheck},
    };
    tu_add_ops(s, ops, 5, N_CASES);
    TCase *tc = tcase_create("all and errors");
    tcase_add_loop_test(tc, test_reduce_all_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_logsumexp_large_values, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_reduce_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
