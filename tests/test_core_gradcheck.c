/*
 * test_core_gradcheck.c - core/gradcheck.c: a right gradient passes; a
 * planted wrong derivative, a wrong derivative of one element only, and a
 * backward that differs between runs are all caught; sampling of large
 * inputs; the hand-written-gradient comparison; refusals with messages.
 */
#include <math.h>

#include "../core/internal.h"
#include "testutil.h"

/* ---- planted bugs: ops with deliberately wrong backward ------------------- */

/* y = x^2 with dy/dx = 3x (should be 2x) */
static void sq_forward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data;
        T *y = out->data;
        for (size_t i = 0; i < out->size; i++)
            y[i] = x[i] * x[i];
    });
}

static void bad_sq_backward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data, *dy = out->grad;
        T *dx = out->src[0]->grad;
        for (size_t i = 0; i < out->size; i++)
            dx[i] += dy[i] * 3 * x[i];
    });
}

/* right everywhere except element 5, whose derivative is off by 1e-4 relative */
static void subtle_sq_backward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data, *dy = out->grad;
        T *dx = out->src[0]->grad;
        for (size_t i = 0; i < out->size; i++)
            dx[i] += dy[i] * 2 * x[i] * (i == 5 ? (T)1.0001 : 1);
    });
}

/* right on average, different on each backward run */
static int calls;
static void flaky_sq_backward(sg_tensor *out)
{
    SG_TYPED(out->dtype, {
        const T *x = out->src[0]->data, *dy = out->grad;
        T *dx = out->src[0]->grad;
        for (size_t i = 0; i < out->size; i++)
            dx[i] += dy[i] * 2 * x[i] + (T)(calls % 2 ? 1e-12 : 0);
    });
    calls++;
}

static const sg_op bad_sq = {"bad_square", sq_forward, bad_sq_backward, false, 0, 0};
static const sg_op subtle_sq = {"subtle_square", sq_forward, subtle_sq_backward, false, 0, 0};
static const sg_op flaky_sq = {"flaky_square", sq_forward, flaky_sq_backward, false, 0, 0};

static sg_tensor *planted(sg_tape *t, sg_tensor **in, void *ctx)
{
    sg_tensor *x = sg_tanh(t, in[0]);
    if (!x)
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    out->src[0] = x, out->nsrc = 1;
    return sg_record(t, ctx, out);
}

START_TEST(test_gradcheck_catches_wrong_derivative)
{
    sg_tensor *x = tu_param(2, (int[]){3, 4}, 5);
    sg_gradcheck_report r;
    ck_assert_int_eq(sg_gradcheck(planted, (void *)&bad_sq, &x, 1, NULL, &r), SG_OK);
    ck_assert(!r.ok);
    ck_assert(!r.in[0].ok);
    ck_assert_uint_eq(r.in[0].checked, 12);
    /* analytic 3x vs numeric 2x: relative error 1/3 */
    ck_assert_double_eq_tol(r.in[0].relerr, 1.0 / 3, 1e-6);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_gradcheck_catches_one_bad_element)
{
    sg_tensor *x = tu_param(2, (int[]){3, 4}, 5);
    sg_gradcheck_report r;
    ck_assert_int_eq(sg_gradcheck(planted, (void *)&subtle_sq, &x, 1, NULL, &r), SG_OK);
    ck_assert(!r.ok);
    ck_assert_uint_eq(r.in[0].index, 5);
    ck_assert_double_eq_tol(r.in[0].relerr, 1e-4, 1e-6);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_gradcheck_catches_nondeterministic_backward)
{
    sg_tensor *x = tu_param(1, (int[]){4}, 5);
    sg_gradcheck_report r;
    ck_assert_int_eq(sg_gradcheck(planted, (void *)&flaky_sq, &x, 1, NULL, &r), SG_OK);
    ck_assert_double_gt(r.repeat_diff, 0);
    ck_assert(!r.ok);
    sg_tensor_free(x);
}
END_TEST

static sg_tensor *good(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)ctx;
    return sg_tanh(t, sg_matmul(t, in[0], in[1]));
}

START_TEST(test_gradcheck_passes_and_samples)
{
    sg_tensor *in[2] = {tu_param(2, (int[]){3, 4}, 1), tu_param(2, (int[]){4, 300}, 2)};
    sg_gradcheck_opts o = sg_gradcheck_defaults();
    o.max_elems = 100;
    sg_gradcheck_report r;
    ck_assert_int_eq(sg_gradcheck(good, NULL, in, 2, &o, &r), SG_OK);
    ck_assert_msg(r.ok, "relerr %g %g", r.in[0].relerr, r.in[1].relerr);
    ck_assert_uint_eq(r.in[0].checked, 12);
    ck_assert_uint_eq(r.in[1].checked, 100);          /* 1200 elements, 100 sampled */
    ck_assert_double_eq(r.repeat_diff, 0);
    /* the inputs are left holding the analytic gradient */
    ck_assert_double_eq(sg_tensor_grad_get(in[1], r.in[1].index), r.in[1].tape);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]);
}
END_TEST

START_TEST(test_gradcheck_refusals)
{
    sg_gradcheck_report r;
    sg_tensor *f = sg_param_new(SG_F32, 1, (int[]){3});
    ck_assert_int_eq(sg_gradcheck(good, NULL, &f, 1, NULL, &r), SG_ERR_DTYPE);
    ck_assert_str_eq(r.msg, "gradcheck: input 1 is f32; checks run in f64 (sg_params_cast)");
    sg_tensor *n = sg_tensor_new(SG_F64, 1, (int[]){3});
    ck_assert_int_eq(sg_gradcheck(good, NULL, &n, 1, NULL, &r), SG_ERR_ARG);
    ck_assert_str_eq(r.msg, "gradcheck: input 1 must be a parameter (sg_param_new)");
    sg_tensor *in[2] = {tu_param(2, (int[]){3, 4}, 1), tu_param(2, (int[]){3, 4}, 2)};
    ck_assert_int_eq(sg_gradcheck(good, NULL, in, 2, NULL, &r), SG_ERR_SHAPE);
    ck_assert_str_eq(r.msg, "gradcheck: the function failed: matmul: (3,4) @ (3,4): inner dimensions differ");
    /* an invalid tolerance is refused, not replaced by the default */
    sg_gradcheck_opts o = sg_gradcheck_defaults();
    o.rtol = -1;
    ck_assert_int_eq(sg_gradcheck(good, NULL, in, 1, &o, &r), SG_ERR_ARG);
    ck_assert_str_eq(r.msg, "gradcheck: eps 0.0001, rtol -1, atol 1e-09: each must be >= 0 (0: the default)");
    sg_gradcheck_entry e;
    ck_assert(!sg_grad_compare((double[]){1}, (double[]){1}, 1, (int[]){1}, &o, &e));
    sg_tensor_free(f), sg_tensor_free(n), sg_tensor_free(in[0]), sg_tensor_free(in[1]);
}
END_TEST

START_TEST(test_grad_compare)
{
    double tape[4] = {1, -2, 3e-12, 0.5}, manual[4] = {1, -2, 0, 0.5};
    sg_gradcheck_entry e;
    ck_assert(sg_grad_compare(manual, tape, 1, (int[]){4}, NULL, &e));    /* 3e-12 is within atol */
    ck_assert_uint_eq(e.index, 2);
    ck_assert_int_eq(e.decided, SG_DECIDED_ATOL);
    manual[3] = 0.5000001;                                   /* relative 2e-7 */
    ck_assert(!sg_grad_compare(manual, tape, 1, (int[]){4}, NULL, &e));
    ck_assert_uint_eq(e.index, 3);
    ck_assert_uint_eq(e.failed, 1);
    ck_assert_double_eq_tol(e.relerr, 2e-7, 1e-9);
    ck_assert_int_eq(e.decided, SG_DECIDED_NEITHER);
    sg_gradcheck_opts o = sg_gradcheck_defaults();
    o.rtol = 1e-6;
    ck_assert(sg_grad_compare(manual, tape, 1, (int[]){4}, &o, &e));
    /* refusals: NULL arrays, a bad shape */
    ck_assert(!sg_grad_compare(NULL, tape, 1, (int[]){4}, NULL, &e));
    ck_assert_uint_eq(e.checked, 0);
    ck_assert(!sg_grad_compare(manual, tape, 5, (int[]){1, 1, 1, 1, 4}, NULL, &e));
    ck_assert(!sg_grad_compare(manual, tape, 2, (int[]){0, 4}, NULL, NULL));
    /* against a tensor's gradient after a backward */
    sg_tensor *x = tu_param_of(SG_F64, 1, (int[]){2}, (double[]){1, 2});
    sg_tape *t = sg_tape_new();
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_square(t, x))), SG_OK);
    ck_assert(sg_grad_compare_tensor((double[]){2, 4}, x, NULL, &e));
    ck_assert(!sg_grad_compare_tensor((double[]){2, 4.1}, x, NULL, &e));
    ck_assert(!sg_grad_compare_tensor((double[]){2, 4}, NULL, NULL, &e));
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

/* a small absolute difference on a tiny gradient passes on atol, and says so */
START_TEST(test_grad_compare_atol_decides)
{
    double tape[2] = {1e-11, 1}, yours[2] = {2e-11, 1};
    sg_gradcheck_entry e;
    ck_assert(sg_grad_compare(yours, tape, 1, (int[]){2}, NULL, &e));
    ck_assert_uint_eq(e.index, 0);
    ck_assert_int_eq(e.decided, SG_DECIDED_ATOL);
    ck_assert_double_eq_tol(e.relerr, 0.5, 1e-12);
}
END_TEST

static char *printed(void (*print)(FILE *, void *), void *arg)
{
    static char buf[4096];
    FILE *fp = fmemopen(buf, sizeof buf, "w");
    print(fp, arg);
    fclose(fp);
    return buf;
}

static void print_compare(FILE *fp, void *arg)
{
    const sg_gradcheck_entry *e = arg;
    sg_grad_compare_header(fp);
    sg_grad_compare_print("dW", e, "b,i", fp);
}

/* the report a student reads: index by axis, count and share of failures,
 * which tolerance decided, "tape" and "yours" */
START_TEST(test_grad_compare_report_pinned)
{
    double tape[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, yours[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5};
    yours[3] = 4.0001;
    sg_gradcheck_entry e;
    ck_assert(!sg_grad_compare(yours, tape, 2, (int[]){2, 5}, NULL, &e));
    ck_assert_uint_eq(e.index, 9);
    ck_assert_uint_eq(e.failed, 2);
    ck_assert_str_eq(printed(print_compare, &e),
        "what         shape        checked     failed  worst at                   tape          yours    relerr  decided  verdict\n"
        "dW           (2,5)             10    2 (20%)  [b=1, i=4]         1.000000e+01   1.050000e+01  4.76e-02  neither  FAIL\n");
    char buf[64];
    ck_assert_str_eq(sg_index_str(buf, sizeof buf, 2, (int[]){2, 5}, 9, NULL), "[1,4]");
    ck_assert_str_eq(sg_index_str(buf, sizeof buf, 3, (int[]){2, 3, 4}, 23, "t,b,i"), "[t=1, b=2, i=3]");
    ck_assert_str_eq(sg_index_str(buf, sizeof buf, 0, NULL, 7, NULL), "[7]");
}
END_TEST

static void print_steps(FILE *fp, void *arg)
{
    sg_grad_compare_steps_print("dh", arg, 3, 1, "b,i", fp);
}

START_TEST(test_grad_compare_steps_pinned)
{
    double tape[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {1, 1, 1, 1}};
    double yours[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8.5}, {1, 1, 1.25, 1}};
    sg_gradcheck_entry e[3];
    for (int t = 0; t < 3; t++)
        sg_grad_compare(yours[t], tape[t], 2, (int[]){2, 2}, NULL, &e[t]);
    ck_assert_str_eq(printed(print_steps, e),
        "dh[t=1]      (2,2)              4          0  [b=0, i=0]         1.000000e+00   1.000000e+00  0.00e+00  rtol     ok\n"
        "dh[t=2]      (2,2)              4    1 (25%)  [b=1, i=1]         8.000000e+00   8.500000e+00  5.88e-02  neither  FAIL\n"
        "dh[t=3]      (2,2)              4    1 (25%)  [b=1, i=0]         1.000000e+00   1.250000e+00  2.00e-01  neither  FAIL\n"
        "dh: 2 of 3 steps fail (t = 2, 3); the worst is t = 3, [b=1, i=0]: tape 1.000000e+00, yours 1.250000e+00\n");
}
END_TEST

/* relu(x) summed, x just beside the kink at 0 */
static sg_tensor *relu_sum(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)ctx;
    return sg_relu(t, in[0]);
}

/* x = 5e-5 is crossed by h = 1e-4 but not by h/10: the confirmation step
 * clears it; x = 5e-6 is crossed by both: a failure with a kink note */
START_TEST(test_gradcheck_kink)
{
    sg_tensor *x = tu_param_of(SG_F64, 1, (int[]){3}, (double[]){0.5, 5e-5, -0.3});
    sg_gradcheck_report r;
    ck_assert_int_eq(sg_gradcheck(relu_sum, NULL, &x, 1, NULL, &r), SG_OK);
    ck_assert_msg(r.ok, "relerr %g", r.in[0].relerr);
    ck_assert_str_eq(r.kinks, "relu");
    sg_tensor_set(x, 1, 5e-6);
    ck_assert_int_eq(sg_gradcheck(relu_sum, NULL, &x, 1, NULL, &r), SG_OK);
    ck_assert(!r.ok);
    ck_assert(r.in[0].kink);
    ck_assert_uint_eq(r.in[0].index, 1);
    ck_assert_uint_eq(r.in[0].failed, 1);
    static char buf[2048];
    FILE *fp = fmemopen(buf, sizeof buf, "w");
    sg_gradcheck_print(&r, (const char *[]){"x"}, fp);
    fclose(fp);
    ck_assert_msg(strstr(buf, "note: x: the numeric derivative changes with the step") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "the function is not smooth near this point (it has relu); a failure there may be "
                              "the step crossing a kink, not a wrong gradient") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "backward twice: max difference 0 (ok)\n") != NULL, "%s", buf);
    sg_tensor_free(x);
}
END_TEST

/* a report that ran no backward says nothing about running it twice */
START_TEST(test_gradcheck_print_refused)
{
    sg_gradcheck_report r;
    sg_tensor *n = sg_tensor_new(SG_F64, 1, (int[]){3});
    ck_assert_int_eq(sg_gradcheck(good, NULL, &n, 1, NULL, &r), SG_ERR_ARG);
    static char buf[2048];
    FILE *fp = fmemopen(buf, sizeof buf, "w");
    sg_gradcheck_print(&r, NULL, fp);
    fclose(fp);
    ck_assert_msg(strstr(buf, "backward twice") == NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "gradcheck: input 1 must be a parameter (sg_param_new)\n") == buf, "%s", buf);
    sg_tensor_free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/gradcheck");
    TCase *tc = tcase_create("planted bugs");
    tcase_add_test(tc, test_gradcheck_catches_wrong_derivative);
    tcase_add_test(tc, test_gradcheck_catches_one_bad_element);
    tcase_add_test(tc, test_gradcheck_catches_nondeterministic_backward);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_test(tc, test_gradcheck_passes_and_samples);
    tcase_add_test(tc, test_gradcheck_refusals);
    tcase_add_test(tc, test_grad_compare);
    tcase_add_test(tc, test_grad_compare_atol_decides);
    tcase_add_test(tc, test_grad_compare_report_pinned);
    tcase_add_test(tc, test_grad_compare_steps_pinned);
    tcase_add_test(tc, test_gradcheck_kink);
    tcase_add_test(tc, test_gradcheck_print_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
