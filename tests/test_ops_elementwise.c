/*
 * test_ops_elementwise.c - ops/elementwise.c (and core/broadcast.c through
 * it): known values and gradients with broadcasting in f32 and f64, f64
 * gradient checks over four shape pairs, and the error messages; lerp
 * (three tensors of one shape) likewise, aliased arguments included.
 * Known values are small integers worked by hand in the comments.
 */
#include <math.h>

#include "testutil.h"

typedef sg_tensor *(*binary_fn)(sg_tape *, sg_tensor *, sg_tensor *);

static const double A[6] = {1, 2, 3, 4, 5, 6};   /* (2,3) */
static const double B[3] = {10, 20, 30};         /* (3), broadcast over rows */

/* y = op(a, b); loss = sum(y); checks y, da, db */
static void check_binary(binary_fn f, sg_dtype dt, const double *y, const double *da, const double *db, double tol)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(dt, 2, (int[]){2, 3}, A), *b = tu_param_of(dt, 1, (int[]){3}, B);
    sg_tensor *out = f(t, a, b);
    tu_assert_shape(out, 2, (int[]){2, 3});
    tu_assert_values(out, y, 6, tol);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, out)), SG_OK);
    tu_assert_grad(a, da, 6, tol);
    tu_assert_grad(b, db, 3, tol);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}

START_TEST(test_add_known)
{   /* da = 1; db = rows summed = 2 */
    check_binary(sg_add, _i, (double[]){11, 22, 33, 14, 25, 36}, (double[]){1, 1, 1, 1, 1, 1},
                 (double[]){2, 2, 2}, 1e-7);
}
END_TEST

START_TEST(test_sub_known)
{
    check_binary(sg_sub, _i, (double[]){-9, -18, -27, -6, -15, -24}, (double[]){1, 1, 1, 1, 1, 1},
                 (double[]){-2, -2, -2}, 1e-7);
}
END_TEST

START_TEST(test_mul_known)
{   /* da = b; db = column sums of a = 1+4, 2+5, 3+6 */
    check_binary(sg_mul, _i, (double[]){10, 40, 90, 40, 100, 180}, (double[]){10, 20, 30, 10, 20, 30},
                 (double[]){5, 7, 9}, 1e-7);
}
END_TEST

START_TEST(test_div_known)
{   /* da = 1/b; db = -(a1 + a2)/b^2 = -5/100, -7/400, -9/900 */
    check_binary(sg_div, _i, (double[]){0.1, 0.1, 0.1, 0.4, 0.25, 0.2}, (double[]){0.1, 0.05, 1.0 / 30, 0.1, 0.05, 1.0 / 30},
                 (double[]){-0.05, -0.0175, -0.01}, 1e-7);
}
END_TEST

/* four broadcasting cases: same shape, row vector, middle 1, both stretched */
static const int pairs[][2][5] = {
    {{1, 5}, {1, 5}},
    {{2, 3, 4}, {1, 4}},
    {{3, 2, 3, 4}, {3, 2, 1, 4}},
    {{4, 2, 1, 3, 1}, {4, 1, 4, 1, 2}},
};

struct fn_box { binary_fn f; };   /* ISO C: a function pointer cannot travel as void* */

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    return ((struct fn_box *)ctx)->f(t, in[0], in[1]);
}

static void grad_binary(binary_fn f, int i, bool away_from_zero)
{
    sg_tensor *in[2];
    for (int k = 0; k < 2; k++)
        in[k] = tu_param(pairs[i][k][0], pairs[i][k] + 1, 10 * (uint64_t)i + (uint64_t)k);
    if (away_from_zero)
        for (size_t j = 0; j < sg_tensor_size(in[1]); j++)
            sg_tensor_set(in[1], j, fabs(sg_tensor_get(in[1], j)) + 0.5);
    struct fn_box box = {f};
    tu_gradcheck(apply, &box, in, 2, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]);
}

START_TEST(test_add_gradcheck) { grad_binary(sg_add, _i, false); }
END_TEST
START_TEST(test_sub_gradcheck) { grad_binary(sg_sub, _i, false); }
END_TEST
START_TEST(test_mul_gradcheck) { grad_binary(sg_mul, _i, false); }
END_TEST
START_TEST(test_div_gradcheck) { grad_binary(sg_div, _i, true); }
END_TEST

/* ---- affine maps --------------------------------------------------------- */

static sg_tensor *add3(sg_tape *t, sg_tensor *x) { return sg_add_scalar(t, x, 3); }
static sg_tensor *scale2(sg_tape *t, sg_tensor *x) { return sg_scale(t, x, -2.5); }

START_TEST(test_affine_known)
{
    static const struct { sg_tensor *(*f)(sg_tape *, sg_tensor *); double y[3], d; } c[] = {
        {sg_neg, {-1, 2, -0.5}, -1},
        {add3, {4, 1, 3.5}, 1},
        {scale2, {-2.5, 5, -1.25}, -2.5},
        {sg_one_minus, {0, 3, 0.5}, -1},
    };
    for (int k = 0; k < 4; k++) {
        sg_tape *t = sg_tape_new();
        sg_tensor *x = tu_param_of(_i, 1, (int[]){3}, (double[]){1, -2, 0.5});
        sg_tensor *y = c[k].f(t, x);
        tu_assert_values(y, c[k].y, 3, 1e-7);
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
        tu_assert_grad(x, (double[]){c[k].d, c[k].d, c[k].d}, 3, 1e-7);
        sg_tensor_free(x), sg_tape_free(t);
    }
}
END_TEST

static sg_tensor *affine_chain(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)ctx;
    return sg_one_minus(t, sg_add_scalar(t, sg_scale(t, sg_neg(t, in[0]), 1.5), -0.25));
}

START_TEST(test_affine_gradcheck)
{
    const int *s = pairs[_i][0];
    sg_tensor *x = tu_param(s[0], s + 1, 7 + (uint64_t)_i);
    tu_gradcheck(affine_chain, NULL, &x, 1, 0);
    sg_tensor_free(x);
}
END_TEST

/* ---- lerp: y = a + w (b - a) ------------------------------------------------ */

START_TEST(test_lerp_known)
{   /* a = 1 2 3 4, b = 5 -2 3 0, w = 0 1 0.5 0.25:
     * y = 1, -2, 3, 3; loss = sum(y * c), c = 1 2 3 4 weighs each element:
     * da = c (1 - w) = 1 0 1.5 3; db = c w = 0 2 1.5 1; dw = c (b - a) = 4 -8 0 -16 */
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){1, 2, 3, 4});
    sg_tensor *b = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){5, -2, 3, 0});
    sg_tensor *w = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){0, 1, 0.5, 0.25});
    sg_tensor *c = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){1, 2, 3, 4});
    sg_tensor *y = sg_lerp(t, a, b, w);
    tu_assert_shape(y, 2, (int[]){2, 2});
    tu_assert_values(y, (double[]){1, -2, 3, 3}, 4, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, c))), SG_OK);
    tu_assert_grad(a, (double[]){1, 0, 1.5, 3}, 4, 1e-7);
    tu_assert_grad(b, (double[]){0, 2, 1.5, 1}, 4, 1e-7);
    tu_assert_grad(w, (double[]){4, -8, 0, -16}, 4, 1e-7);
    sg_tensor_free(a), sg_tensor_free(b), sg_tensor_free(w), sg_tensor_free(c), sg_tape_free(t);
}
END_TEST

/* the first shape of each pair; _i = 3 passes a as both a and w (aliased
 * sources: their gradient terms add), as a GRU step's lerp(h, n, z) passes
 * three distinct tensors; inputs through a tanh so that the gradients
 * arrive at intermediates, not only at leaves */
static sg_tensor *lerp_of(sg_tape *t, sg_tensor **in, void *ctx)
{
    bool alias = *(const int *)ctx == 3;
    sg_tensor *a = sg_tanh(t, in[0]), *w = alias ? a : sg_sigmoid(t, in[2]);
    return sg_lerp(t, a, in[1], w);
}

START_TEST(test_lerp_gradcheck)
{
    const int *s = pairs[_i][0];
    sg_tensor *in[3];
    for (int k = 0; k < 3; k++)
        in[k] = tu_param(s[0], s + 1, 30 + 3 * (uint64_t)_i + (uint64_t)k);
    int i = _i;
    tu_gradcheck(lerp_of, &i, in, 3, 0);
    for (int k = 0; k < 3; k++)
        sg_tensor_free(in[k]);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

START_TEST(test_elementwise_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = sg_zeros(t, SG_F32, 2, (int[]){2, 3}), *b = sg_zeros(t, SG_F32, 1, (int[]){4});
    sg_tensor *c = sg_zeros(t, SG_F64, 2, (int[]){2, 3});
    tu_assert_error(t, sg_add(t, a, b), "add: shapes (2,3) and (4) cannot be broadcast");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 3}), c = sg_zeros(t, SG_F64, 2, (int[]){2, 3});
    tu_assert_error(t, sg_mul(t, a, c), "mul: dtype mismatch: argument 1 is f32, argument 2 is f64");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_div(t, a, NULL), "div: argument 2 is NULL");
    sg_tape_reset(t);
    tu_assert_error(t, sg_neg(t, NULL), "neg: argument 1 is NULL");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 3}), b = sg_zeros(t, SG_F32, 1, (int[]){3});
    tu_assert_error(t, sg_lerp(t, a, a, b), "lerp: shapes (2,3), (2,3) and (3) differ");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 3}), c = sg_zeros(t, SG_F64, 2, (int[]){2, 3});
    tu_assert_error(t, sg_lerp(t, a, c, a), "lerp: dtype mismatch: argument 1 is f32, argument 2 is f64");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_lerp(t, a, a, NULL), "lerp: argument 3 is NULL");
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/elementwise");
    const tu_op_tests ops[] = {
        {"add", test_add_known, test_add_gradcheck},
        {"sub", test_sub_known, test_sub_gradcheck},
        {"mul", test_mul_known, test_mul_gradcheck},
        {"div", test_div_known, test_div_gradcheck},
        {"affine", test_affine_known, test_affine_gradcheck},
        {"lerp", test_lerp_known, test_lerp_gradcheck},
    };
    tu_add_ops(s, ops, 6, 4);
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_elementwise_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
