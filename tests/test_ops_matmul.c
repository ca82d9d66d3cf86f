/*
 * test_ops_matmul.c - ops/matmul.c: known products and gradients (worked by
 * hand below), every transpose flag against an explicit sg_transpose, f64
 * gradient checks of matmul and bmm over several shapes, error messages.
 */
#include "testutil.h"

START_TEST(test_matmul_known)
{
    /* A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12]: C = [58 64; 139 154].
     * With L = sum(C): dA = 1 B^T = row sums of B = 15 19 23 on each row,
     * dB = A^T 1 = column sums of A = 5 7 9, repeated across columns. */
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 2, (int[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    sg_tensor *b = tu_param_of(_i, 2, (int[]){3, 2}, (double[]){7, 8, 9, 10, 11, 12});
    sg_tensor *c = sg_matmul(t, a, b);
    tu_assert_shape(c, 2, (int[]){2, 2});
    tu_assert_values(c, (double[]){58, 64, 139, 154}, 4, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, c)), SG_OK);
    tu_assert_grad(a, (double[]){15, 19, 23, 15, 19, 23}, 6, 1e-7);
    tu_assert_grad(b, (double[]){5, 5, 7, 7, 9, 9}, 6, 1e-7);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

/* op(A) op(B) with flags must equal the product of explicit transposes. */
START_TEST(test_matmul_trans_flags_match_transpose)
{
    int trans = _i;
    bool ta = trans & SG_TRANS_A, tb = trans & SG_TRANS_B;
    sg_tensor *a = tu_param(2, ta ? (int[]){4, 3} : (int[]){3, 4}, 1);
    sg_tensor *b = tu_param(2, tb ? (int[]){5, 4} : (int[]){4, 5}, 2);
    sg_tape *t = sg_tape_new();
    sg_tensor *c = sg_matmul_ex(t, a, b, trans);
    sg_tensor *ea = ta ? sg_transpose(t, a, 0, 1) : a, *eb = tb ? sg_transpose(t, b, 0, 1) : b;
    sg_tensor *ref = sg_matmul(t, ea, eb);
    tu_assert_shape(c, 2, (int[]){3, 5});
    double expect[15];
    sg_tensor_store(ref, expect);
    tu_assert_values(c, expect, 15, 1e-12);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

struct mm_case { int trans, bmm; int a[5], b[5]; };

static const struct mm_case grad_cases[] = {
    {0, 0, {2, 2, 3}, {2, 3, 4}},
    {0, 0, {2, 1, 5}, {2, 5, 1}},
    {0, 0, {3, 2, 3, 4}, {2, 4, 2}},            /* (...,K) @ (K,N) */
    {SG_TRANS_A, 0, {2, 3, 2}, {2, 3, 4}},
    {SG_TRANS_B, 0, {2, 2, 3}, {2, 4, 3}},
    {SG_TRANS_A | SG_TRANS_B, 0, {2, 3, 2}, {2, 4, 3}},
    {0, 1, {3, 2, 3, 4}, {3, 2, 4, 2}},
    {SG_TRANS_B, 1, {4, 2, 2, 3, 4}, {4, 2, 2, 5, 4}},  /* attention's Q K^T */
    {SG_TRANS_A, 1, {4, 1, 2, 4, 3}, {4, 1, 2, 4, 2}},
    {SG_TRANS_B, 2, {4, 2, 2, 3, 4}, {4, 2, 2, 5, 4}},  /* bmm_scaled, alpha 0.3 */
};

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    const struct mm_case *c = ctx;
    if (c->bmm == 2)
        return sg_bmm_scaled(t, in[0], in[1], c->trans, 0.3);
    return c->bmm ? sg_bmm(t, in[0], in[1], c->trans) : sg_matmul_ex(t, in[0], in[1], c->trans);
}

START_TEST(test_matmul_gradcheck)
{
    const struct mm_case *c = &grad_cases[_i];
    sg_tensor *in[2] = {tu_param(c->a[0], c->a + 1, 3), tu_param(c->b[0], c->b + 1, 4)};
    tu_gradcheck(apply, (void *)c, in, 2, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]);
}
END_TEST

START_TEST(test_bmm_known)
{
    /* two batches of (1,2) @ (2,1): [1 2].[3 4] = 11, [5 6].[7 8] = 83 */
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 3, (int[]){2, 1, 2}, (double[]){1, 2, 5, 6});
    sg_tensor *b = tu_param_of(_i, 3, (int[]){2, 2, 1}, (double[]){3, 4, 7, 8});
    sg_tensor *c = sg_bmm(t, a, b, 0);
    tu_assert_shape(c, 3, (int[]){2, 1, 1});
    tu_assert_values(c, (double[]){11, 83}, 2, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, c)), SG_OK);
    tu_assert_grad(a, (double[]){3, 4, 7, 8}, 4, 1e-7);
    tu_assert_grad(b, (double[]){1, 2, 5, 6}, 4, 1e-7);
    /* scaled by 0.5: values and both gradients halve (grads accumulate: +half) */
    sg_tensor *h = sg_bmm_scaled(t, a, b, 0, 0.5);
    tu_assert_values(h, (double[]){5.5, 41.5}, 2, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, h)), SG_OK);
    tu_assert_grad(a, (double[]){4.5, 6, 10.5, 12}, 4, 1e-7);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

START_TEST(test_addmm_known)
{   /* [1 2; 3 4] W^T + b with W = I (2x2), b = [10 20]: [11 22; 13 24]; db = column sums of 1 = 2 */
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){1, 2, 3, 4});
    sg_tensor *w = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){1, 0, 0, 1});
    sg_tensor *b = tu_param_of(_i, 1, (int[]){2}, (double[]){10, 20});
    sg_tensor *y = sg_addmm(t, x, w, b, SG_TRANS_B);
    tu_assert_values(y, (double[]){11, 22, 13, 24}, 4, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(b, (double[]){2, 2}, 2, 0);
    tu_assert_grad(x, (double[]){1, 1, 1, 1}, 4, 0);
    tu_assert_grad(w, (double[]){4, 6, 4, 6}, 4, 0);
    sg_tensor_free(x), sg_tensor_free(w), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

static const struct { int trans; int x[5], w[5]; } addmm_cases[] = {
    {0, {2, 3, 4}, {2, 4, 5}},
    {SG_TRANS_B, {3, 2, 3, 4}, {2, 5, 4}},
    {SG_TRANS_A, {2, 4, 3}, {2, 4, 2}},
};

static sg_tensor *addmm_apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    return sg_addmm(t, in[0], in[1], in[2], addmm_cases[*(int *)ctx].trans);
}

START_TEST(test_addmm_gradcheck)
{
    int c = _i;
    int N = addmm_cases[c].trans & SG_TRANS_B ? addmm_cases[c].w[1] : addmm_cases[c].w[2];
    sg_tensor *in[3] = {tu_param(addmm_cases[c].x[0], addmm_cases[c].x + 1, 7),
                        tu_param(addmm_cases[c].w[0], addmm_cases[c].w + 1, 8), tu_param(1, &N, 9)};
    tu_gradcheck(addmm_apply, &c, in, 3, 0);
    for (int k = 0; k < 3; k++)
        sg_tensor_free(in[k]);
}
END_TEST

START_TEST(test_matmul_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = sg_zeros(t, SG_F32, 2, (int[]){2, 5}), *b = sg_zeros(t, SG_F32, 2, (int[]){4, 3});
    tu_assert_error(t, sg_matmul(t, a, b), "matmul: (2,5) @ (4,3): inner dimensions differ");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 5}), b = sg_zeros(t, SG_F32, 2, (int[]){3, 4});
    tu_assert_error(t, sg_matmul_ex(t, a, b, SG_TRANS_B), "matmul: (2,5) @ (3,4)^T: inner dimensions differ");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 3, (int[]){2, 2, 5}), b = sg_zeros(t, SG_F32, 3, (int[]){2, 5, 3});
    tu_assert_error(t, sg_matmul(t, a, b), "matmul: (2,2,5) @ (2,5,3): B must be 2-D (use bmm for batches)");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 3, (int[]){2, 2, 5}), b = sg_zeros(t, SG_F32, 3, (int[]){3, 5, 3});
    tu_assert_error(t, sg_bmm(t, a, b, 0), "bmm: (2,2,5) @ (3,5,3): batch dimensions differ");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 3, (int[]){2, 2, 5}), b = sg_zeros(t, SG_F32, 3, (int[]){2, 4, 3});
    tu_assert_error(t, sg_bmm_scaled(t, a, b, 0, 0.5), "bmm: (2,2,5) @ (2,4,3): inner dimensions differ");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 5}), b = sg_zeros(t, SG_F64, 2, (int[]){5, 3});
    tu_assert_error(t, sg_matmul(t, a, b), "matmul: dtype mismatch: argument 1 is f32, argument 2 is f64");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 5}), b = sg_zeros(t, SG_F32, 2, (int[]){5, 3});
    sg_tensor *bias = sg_zeros(t, SG_F32, 1, (int[]){4});
    tu_assert_error(t, sg_addmm(t, a, b, bias, 0), "addmm: bias (4), expected (3)");
    sg_tape_reset(t);
    a = sg_zeros(t, SG_F32, 2, (int[]){2, 5}), b = sg_zeros(t, SG_F32, 2, (int[]){4, 3});
    bias = sg_zeros(t, SG_F32, 1, (int[]){3});
    tu_assert_error(t, sg_addmm(t, a, b, bias, 0), "addmm: (2,5) @ (4,3): inner dimensions differ");
    sg_tape_free(t);
}
END_TEST

/* the BLAS's threads: set, read back, restored; 0 only reads */
START_TEST(test_blas_threads)
{
    int was = sg_blas_threads(0);
    ck_assert_int_ge(was, 1);
    ck_assert_int_eq(sg_blas_threads(1), was);
    ck_assert_int_eq(sg_blas_threads(0), 1);
    ck_assert_int_eq(sg_blas_threads(-3), 1);          /* not a count: nothing set */
    ck_assert_int_eq(sg_blas_threads(was), 1);
    ck_assert_int_eq(sg_blas_threads(0), was);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/matmul");
    TCase *tc = tcase_create("matmul");
    tcase_add_loop_test(tc, test_matmul_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_matmul_trans_flags_match_transpose, 0, 4);
    tcase_add_loop_test(tc, test_matmul_gradcheck, 0, sizeof grad_cases / sizeof grad_cases[0]);
    tcase_add_test(tc, test_matmul_errors);
    tcase_add_test(tc, test_blas_threads);
    suite_add_tcase(s, tc);
    tc = tcase_create("addmm");
    tcase_add_loop_test(tc, test_addmm_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_addmm_gradcheck, 0, 3);
    suite_add_tcase(s, tc);
    tc = tcase_create("bmm");
    tcase_add_loop_test(tc, test_bmm_known, SG_F32, SG_F64 + 1);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
