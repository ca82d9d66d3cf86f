/*
 * test_ops_unary.c - ops/unary.c: known values and derivatives in f32 and
 * f64, an f64 gradient check over four shapes per op, and error messages.
 * Known values were computed with Python's math module (math.tanh,
 * math.erf, ...) at x = -2, -0.5, 0, 0.5, 3 (positive inputs for log, sqrt).
 */
#include <math.h>

#include "../core/internal.h"
#include "testutil.h"

typedef sg_tensor *(*unary_fn)(sg_tape *, sg_tensor *);

static sg_tensor *leaky(sg_tape *t, sg_tensor *x) { return sg_leaky_relu(t, x, 0.1); }
static sg_tensor *clamp(sg_tape *t, sg_tensor *x) { return sg_clamp(t, x, -0.4, 0.7); }

enum { ANY, POSITIVE };

static const struct unary_case {
    const char *name;
    unary_fn f;
    int domain;
    double y[5], dy[5];      /* values and derivatives at the inputs below */
} cases[] = {
    {"sigmoid", sg_sigmoid, ANY,
     {0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.9525741268224334},
     {0.10499358540350652, 0.2350037122015945, 0.25, 0.2350037122015945, 0.045176659730912}},
    {"tanh", sg_tanh, ANY,
     {-0.9640275800758169, -0.46211715726000974, 0.0, 0.46211715726000974, 0.9950547536867305},
     {0.07065082485316443, 0.7864477329659274, 1.0, 0.7864477329659274, 0.009866037165440211}},
    {"relu", sg_relu, ANY, {0, 0, 0, 0.5, 3}, {0, 0, 0, 1, 1}},
    {"leaky_relu", leaky, ANY, {-0.2, -0.05, 0, 0.5, 3}, {0.1, 0.1, 0.1, 1, 1}},
    {"gelu", sg_gelu, ANY,
     {-0.04550026389635842, -0.15426876936299344, 0.0, 0.34573123063700656, 2.99595030590511},
     {-0.08523180107819692, 0.13250487534383712, 0.5, 0.8674951246561629, 1.011945647204184}},
    {"exp", sg_exp, ANY,
     {0.1353352832366127, 0.6065306597126334, 1.0, 1.6487212707001282, 20.085536923187668},
     {0.1353352832366127, 0.6065306597126334, 1.0, 1.6487212707001282, 20.085536923187668}},
    {"log", sg_log, POSITIVE, {-0.6931471805599453, 0.0, 0.6931471805599453, 2.302585092994046, 1.0986122886681098},
     {2, 1, 0.5, 0.1, 1.0 / 3}},
    {"sqrt", sg_sqrt, POSITIVE, {0.7071067811865476, 1.0, 1.4142135623730951, 3.1622776601683795, 1.7320508075688772},
     {0.7071067811865476, 0.5, 0.35355339059327373, 0.15811388300841897, 0.28867513459481287}},
    {"square", sg_square, ANY, {4, 0.25, 0, 0.25, 9}, {-4, -1, 0, 1, 6}},
    {"abs", sg_abs, ANY, {2, 0.5, 0, 0.5, 3}, {-1, -1, 0, 1, 1}},
    {"clamp", clamp, ANY, {-0.4, -0.4, 0, 0.5, 0.7}, {0, 0, 1, 1, 0}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static const double x_any[5] = {-2, -0.5, 0, 0.5, 3};
static const double x_pos[5] = {0.5, 1, 2, 10, 3};

/* values and derivative (backward of sum(y)) in one dtype */
static void check_known(const struct unary_case *c, sg_dtype dt, double tol)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(dt, 1, (int[]){5}, c->domain == POSITIVE ? x_pos : x_any);
    sg_tensor *y = c->f(t, x);
    tu_assert_values(y, c->y, 5, tol);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(x, c->dy, 5, tol);
    sg_tensor_free(x);
    sg_tape_free(t);
}

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    return ((const struct unary_case *)ctx)->f(t, in[0]);
}

static const int shapes[][5] = {{1, 5}, {2, 3, 4}, {3, 2, 3, 4}, {4, 2, 1, 3, 2}};  /* ndim, dims */

static void check_grad(const struct unary_case *c, int shape_i)
{
    const int *s = shapes[shape_i];
    sg_tensor *x = tu_param_away(s[0], s + 1, 100 + (uint64_t)shape_i, 0.1);
    if (c->domain == POSITIVE)
        for (size_t i = 0; i < sg_tensor_size(x); i++)
            sg_tensor_set(x, i, fabs(sg_tensor_get(x, i)) + 0.2);
    tu_gradcheck(apply, (void *)c, &x, 1, 0);
    sg_tensor_free(x);
}

#define UNARY_TESTS(i, op)                                                   \
    START_TEST(test_##op##_known_f64) { check_known(&cases[i], SG_F64, 1e-14); } \
    END_TEST                                                                 \
    START_TEST(test_##op##_known_f32) { check_known(&cases[i], SG_F32, 1e-6); }  \
    END_TEST                                                                 \
    START_TEST(test_##op##_gradcheck) { check_grad(&cases[i], _i); }         \
    END_TEST

UNARY_TESTS(0, sigmoid)
UNARY_TESTS(1, tanh)
UNARY_TESTS(2, relu)
UNARY_TESTS(3, leaky_relu)
UNARY_TESTS(4, gelu)
UNARY_TESTS(5, exp)
UNARY_TESTS(6, log)
UNARY_TESTS(7, sqrt)
UNARY_TESTS(8, square)
UNARY_TESTS(9, abs)
UNARY_TESTS(10, clamp)

START_TEST(test_sigmoid_large_inputs_stay_finite)
{
    for (int dt = 0; dt < 2; dt++) {
        sg_tape *t = sg_tape_new();
        sg_tape_set_anomaly(t, true);
        sg_tensor *x = tu_param_of((sg_dtype)dt, 1, (int[]){4}, (double[]){-800, -80, 80, 800});
        sg_tensor *y = sg_sigmoid(t, x);
        ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
        tu_assert_values(y, (double[]){0, exp(-80.0), 1, 1}, 4, dt ? 1e-15 : 1e-7);
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
        sg_tensor_free(x);
        sg_tape_free(t);
    }
}
END_TEST

/* sg_expf (the vectorised exp of the f32 kernels) against libm's exp in
 * double over its whole range, and the f32 sigmoid and tanh built on it. */
START_TEST(test_fast_exp_accuracy)
{
    double worst = 0;
    for (double x = -87; x <= 88; x += 0.001) {
        double e = exp((double)(float)x);
        worst = fmax(worst, fabs(sg_expf((float)x) - e) / e);
    }
    ck_assert_msg(worst < 2e-7, "sg_expf: relative error %g", worst);
    enum { N = 40001 };
    static double xs[N];
    for (int i = 0; i < N; i++)
        xs[i] = (float)(-100 + 0.005 * i);
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, SG_F32, 1, (int[]){N}, xs);
    sg_tensor *s = sg_sigmoid(t, x), *th = sg_tanh(t, x);
    double ws = 0, wt = 0;
    for (int i = 0; i < N; i++) {
        ws = fmax(ws, fabs(sg_tensor_get(s, (size_t)i) - 1 / (1 + exp(-xs[i]))));
        wt = fmax(wt, fabs(sg_tensor_get(th, (size_t)i) - tanh(xs[i])));
    }
    ck_assert_msg(ws < 2e-7 && wt < 3e-7, "f32 sigmoid error %g, tanh error %g", ws, wt);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_unary_errors)
{
    sg_tape *t = sg_tape_new();
    tu_assert_error(t, sg_tanh(t, NULL), "tanh: argument 1 is NULL");
    sg_tape_reset(t);
    sg_tensor *x = sg_zeros(t, SG_F32, 1, (int[]){3});
    tu_assert_error(t, sg_clamp(t, x, 1, -1), "clamp: lo 1 is greater than hi -1");
    /* a NULL from a failed op passes through quietly: the first error stays */
    tu_assert_error(t, sg_sigmoid(t, sg_exp(t, sg_clamp(t, x, 2, 1))), "clamp: lo 1 is greater than hi -1");
    sg_tape_free(t);
}
END_TEST

START_TEST(test_log_anomaly_names_the_op)
{
    sg_tape *t = sg_tape_new();
    sg_tape_set_anomaly(t, true);
    sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 1, (int[]){3}, (double[]){1, -1, 2});
    tu_assert_error(t, sg_log(t, x), "anomaly: log produced a non-finite value at element 1 in forward");
    sg_tape_free(t);
}
END_TEST

#define ADD_OP(s, op)                                                   \
    do {                                                                \
        TCase *tc = tcase_create(#op);                                  \
        tcase_add_test(tc, test_##op##_known_f64);                      \
        tcase_add_test(tc, test_##op##_known_f32);                      \
        tcase_add_loop_test(tc, test_##op##_gradcheck, 0, 4);           \
        suite_add_tcase(s, tc);                                         \
    } while (0)

/* NaN and infinities through the f32 exp kernel: NaN stays NaN (it reached
 * a float-to-int conversion, undefined behaviour, before; UBSan watches) */
START_TEST(test_fast_exp_nan)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, SG_F32, 1, (int[]){4}, (double[]){NAN, -INFINITY, 0, 1});
    sg_tensor *y = sg_exp(t, x), *s = sg_sigmoid(t, x);
    ck_assert(isnan(sg_tensor_get(y, 0)));
    ck_assert_double_eq(sg_tensor_get(y, 1), 0);
    ck_assert_double_eq(sg_tensor_get(y, 2), 1);
    ck_assert(isnan(sg_tensor_get(s, 0)));
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/unary");
    ADD_OP(s, sigmoid);
    ADD_OP(s, tanh);
    ADD_OP(s, relu);
    ADD_OP(s, leaky_relu);
    ADD_OP(s, gelu);
    ADD_OP(s, exp);
    ADD_OP(s, log);
    ADD_OP(s, sqrt);
    ADD_OP(s, square);
    ADD_OP(s, abs);
    ADD_OP(s, clamp);
    TCase *tc = tcase_create("numerics and errors");
    tcase_add_test(tc, test_sigmoid_large_inputs_stay_finite);
    tcase_add_test(tc, test_fast_exp_accuracy);
    tcase_add_test(tc, test_fast_exp_nan);
    tcase_add_test(tc, test_unary_errors);
    tcase_add_test(tc, test_log_anomaly_names_the_op);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
