/*
 * test_ops_shape.c - ops/shape.c: reshape, transpose, permute, concat, stack,
 * narrow, select, split, index_select, where, masked_fill. Known values are index
 * bookkeeping worked by hand; f64 gradient checks over shapes; the O(T)
 * backward of per-step narrows; error messages.
 */
#include "testutil.h"

static const double X6[6] = {0, 1, 2, 3, 4, 5};   /* (2,3) */

START_TEST(test_reshape_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 3}, X6);
    sg_tensor *y = sg_reshape(t, x, 3, (int[]){3, -1, 1});
    tu_assert_shape(y, 3, (int[]){3, 2, 1});
    tu_assert_values(y, X6, 6, 0);
    sg_tensor *w = sg_tensor_from_f64(t, _i, 3, (int[]){3, 2, 1}, (double[]){1, 2, 3, 4, 5, 6});
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, w))), SG_OK);
    tu_assert_grad(x, (double[]){1, 2, 3, 4, 5, 6}, 6, 0);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_transpose_permute_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, _i, 2, (int[]){2, 3}, X6);
    sg_tensor *y = sg_transpose(t, x, 0, -1);
    tu_assert_shape(y, 2, (int[]){3, 2});
    tu_assert_values(y, (double[]){0, 3, 1, 4, 2, 5}, 6, 0);
    /* (2,3,4) permuted by (2,0,1): y[k,i,j] = x[i,j,k] = 12 i + 4 j + k */
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    sg_tensor *x3 = sg_tensor_from_f64(t, _i, 3, (int[]){2, 3, 4}, v);
    sg_tensor *p = sg_permute(t, x3, (int[]){2, 0, 1});
    tu_assert_shape(p, 3, (int[]){4, 2, 3});
    double e[24];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                e[(k * 2 + i) * 3 + j] = 12 * i + 4 * j + k;
    tu_assert_values(p, e, 24, 0);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_concat_stack_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 2, (int[]){2, 1}, (double[]){1, 2});
    sg_tensor *b = tu_param_of(_i, 2, (int[]){2, 2}, (double[]){3, 4, 5, 6});
    sg_tensor *c = sg_concat(t, (sg_tensor *[]){a, b}, 2, 1);
    tu_assert_shape(c, 2, (int[]){2, 3});
    tu_assert_values(c, (double[]){1, 3, 4, 2, 5, 6}, 6, 0);
    sg_tensor *w = sg_tensor_from_f64(t, _i, 2, (int[]){2, 3}, (double[]){10, 20, 30, 40, 50, 60});
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, c, w))), SG_OK);
    tu_assert_grad(a, (double[]){10, 40}, 2, 0);
    tu_assert_grad(b, (double[]){20, 30, 50, 60}, 4, 0);
    sg_tape_reset(t);
    sg_tensor *s = sg_stack(t, (sg_tensor *[]){a, a, a}, 3, 1);   /* (2,3,1) */
    tu_assert_shape(s, 3, (int[]){2, 3, 1});
    tu_assert_values(s, (double[]){1, 1, 1, 2, 2, 2}, 6, 0);
    sg_param_zero_grad(a);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, s)), SG_OK);
    tu_assert_grad(a, (double[]){3, 3}, 2, 0);   /* fan-out accumulates */
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

START_TEST(test_narrow_split_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 3}, X6);
    sg_tensor *n = sg_narrow(t, x, 1, 1, 2);
    tu_assert_shape(n, 2, (int[]){2, 2});
    tu_assert_values(n, (double[]){1, 2, 4, 5}, 4, 0);
    sg_tensor *parts[2];
    ck_assert_int_eq(sg_split(t, x, 1, (int[]){1, 2}, 2, parts), SG_OK);
    tu_assert_values(parts[0], (double[]){0, 3}, 2, 0);
    tu_assert_values(parts[1], (double[]){1, 2, 4, 5}, 4, 0);
    sg_tensor *l = sg_add(t, sg_sum_all(t, n), sg_sum_all(t, sg_scale(t, parts[0], 2)));
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(x, (double[]){2, 1, 1, 2, 1, 1}, 6, 0);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_select_known)
{   /* x (2,3): column 2 is [2 5], row 1 is [3 4 5] */
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param_of(_i, 2, (int[]){2, 3}, X6);
    sg_tensor *c = sg_select(t, x, 1, 2), *r = sg_select(t, x, 0, 1);
    tu_assert_shape(c, 1, (int[]){2});
    tu_assert_values(c, (double[]){2, 5}, 2, 0);
    tu_assert_shape(r, 1, (int[]){3});
    tu_assert_values(r, (double[]){3, 4, 5}, 3, 0);
    ck_assert_int_eq(sg_backward(t, sg_add(t, sg_sum_all(t, c), sg_sum_all(t, r))), SG_OK);
    tu_assert_grad(x, (double[]){0, 0, 1, 1, 1, 2}, 6, 0);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_index_select_known)
{   /* embedding lookup with a repeated row: its gradient accumulates */
    sg_tape *t = sg_tape_new();
    sg_tensor *E = tu_param_of(_i, 2, (int[]){3, 2}, X6);
    sg_tensor *y = sg_index_select(t, E, 0, (int[]){2, 0, 2, 2}, 4);
    tu_assert_shape(y, 2, (int[]){4, 2});
    tu_assert_values(y, (double[]){4, 5, 0, 1, 4, 5, 4, 5}, 8, 0);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(E, (double[]){1, 1, 0, 0, 3, 3}, 6, 0);
    sg_tensor *c = sg_index_select(t, E, 1, (int[]){1}, 1);
    tu_assert_values(c, (double[]){1, 3, 5}, 3, 0);
    sg_tensor_free(E), sg_tape_free(t);
}
END_TEST

START_TEST(test_where_masked_fill_known)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 2, (int[]){2, 3}, X6);
    sg_tensor *b = tu_param_of(_i, 1, (int[]){3}, (double[]){-1, -2, -3});
    sg_tensor *c = sg_tensor_from_f64(t, _i, 1, (int[]){3}, (double[]){1, 0, 1});
    sg_tensor *y = sg_where(t, c, a, b);
    tu_assert_values(y, (double[]){0, -2, 2, 3, -2, 5}, 6, 0);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(a, (double[]){1, 0, 1, 1, 0, 1}, 6, 0);
    tu_assert_grad(b, (double[]){0, 2, 0}, 3, 0);
    sg_tape_reset(t);
    sg_param_zero_grad(a);
    sg_tensor *m = sg_tensor_from_f64(t, _i, 2, (int[]){2, 1}, (double[]){0, 1});
    sg_tensor *f = sg_masked_fill(t, a, m, -1e9);
    tu_assert_values(f, (double[]){0, 1, 2, -1e9, -1e9, -1e9}, 6, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, f)), SG_OK);
    tu_assert_grad(a, (double[]){1, 1, 1, 0, 0, 0}, 6, 0);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

/* ---- gradient checks: one function per op, applied at several shapes ------ */

static const int shapes[][5] = {{1, 6}, {2, 3, 4}, {3, 2, 3, 4}, {4, 2, 1, 3, 2}};

static sg_tensor *g_reshape(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    return sg_reshape(t, sg_tanh(t, in[0]), 2, (int[]){2, -1});
}
static sg_tensor *g_transpose(sg_tape *t, sg_tensor **in, int s)
{
    return sg_transpose(t, sg_tanh(t, in[0]), 0, shapes[s][0] - 1);
}
static sg_tensor *g_permute(sg_tape *t, sg_tensor **in, int s)
{
    static const int perms[][4] = {{0}, {1, 0}, {2, 0, 1}, {3, 1, 0, 2}};
    return sg_permute(t, in[0], perms[shapes[s][0] - 1]);
}
static sg_tensor *g_concat(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    return sg_concat(t, (sg_tensor *[]){in[0], sg_square(t, in[0]), in[0]}, 3, -1);
}
static sg_tensor *g_stack(sg_tape *t, sg_tensor **in, int s)
{
    if (shapes[s][0] == 4) {   /* 3-D pieces into a 4-D result */
        sg_tensor *r = sg_sum(t, in[0], 0, false);
        return sg_stack(t, (sg_tensor *[]){r, sg_square(t, r)}, 2, 1);
    }
    return sg_stack(t, (sg_tensor *[]){in[0], sg_square(t, in[0])}, 2, -1);
}
static sg_tensor *g_narrow(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    return sg_mul(t, sg_narrow(t, in[0], -1, 1, 1), sg_narrow(t, in[0], -1, 0, 2));
}
static sg_tensor *g_split(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    sg_tensor *p[2];
    int n = sg_tensor_dim(in[0], 0);
    if (n == 1)
        return sg_square(t, in[0]);
    if (sg_split(t, in[0], 0, (int[]){1, n - 1}, 2, p) != SG_OK)
        return NULL;
    return sg_concat(t, (sg_tensor *[]){sg_tanh(t, p[1]), sg_square(t, p[0])}, 2, 0);
}
static sg_tensor *g_select(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    int n = sg_tensor_dim(in[0], 0);
    return sg_mul(t, sg_select(t, in[0], 0, n - 1), sg_select(t, in[0], 0, 0));
}
static sg_tensor *g_index_select(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    int n = sg_tensor_dim(in[0], 0);
    return sg_index_select(t, in[0], 0, (int[]){n - 1, 0, n - 1, n / 2}, 4);
}
static sg_tensor *g_where(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    sg_tensor *c = sg_tensor_from_f64(t, SG_F64, 1, (int[]){2}, (double[]){1, 0});
    int last = sg_tensor_dim(in[0], -1);
    sg_tensor *x = last >= 2 ? sg_narrow(t, in[0], -1, 0, 2) : in[0];
    return sg_where(t, c, x, sg_square(t, x));
}
static sg_tensor *g_masked_fill(sg_tape *t, sg_tensor **in, int s)
{
    (void)s;
    sg_tensor *m = sg_tensor_from_f64(t, SG_F64, 1, (int[]){2}, (double[]){0, 1});
    sg_tensor *x = sg_narrow(t, in[0], -1, 0, 2);
    return sg_masked_fill(t, x, m, 3.0);
}

struct ctx { sg_tensor *(*f)(sg_tape *, sg_tensor **, int); int s; };

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *p)
{
    const struct ctx *k = p;
    return k->f(t, in, k->s);
}

static void grad(sg_tensor *(*f)(sg_tape *, sg_tensor **, int), int s)
{
    struct ctx k = {f, s};
    sg_tensor *x = tu_param(shapes[s][0], shapes[s] + 1, 30 + (uint64_t)s);
    tu_gradcheck(apply, &k, &x, 1, 0);
    sg_tensor_free(x);
}

START_TEST(test_reshape_gradcheck) { grad(g_reshape, _i); }
END_TEST
START_TEST(test_transpose_gradcheck) { grad(g_transpose, _i); }
END_TEST
START_TEST(test_permute_gradcheck) { grad(g_permute, _i); }
END_TEST
START_TEST(test_concat_gradcheck) { grad(g_concat, _i); }
END_TEST
START_TEST(test_stack_gradcheck) { grad(g_stack, _i); }
END_TEST
START_TEST(test_narrow_gradcheck) { grad(g_narrow, _i); }
END_TEST
START_TEST(test_split_gradcheck) { grad(g_split, _i); }
END_TEST
START_TEST(test_select_gradcheck) { grad(g_select, _i); }
END_TEST
START_TEST(test_index_select_gradcheck) { grad(g_index_select, _i); }
END_TEST
START_TEST(test_where_gradcheck) { grad(g_where, _i); }
END_TEST
START_TEST(test_masked_fill_gradcheck) { grad(g_masked_fill, _i); }
END_TEST

/* A concat of more inputs than fit inline (the T outputs of an RNN). */
START_TEST(test_concat_many_inputs)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = tu_param(2, (int[]){3, 2}, 5);
    sg_tensor *parts[40];
    for (int i = 0; i < 40; i++)
        parts[i] = sg_scale(t, x, i);
    sg_tensor *c = sg_stack(t, parts, 40, 0);
    tu_assert_shape(c, 3, (int[]){40, 3, 2});
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, c)), SG_OK);
    for (int j = 0; j < 6; j++)                   /* sum of 0..39 */
        ck_assert_double_eq_tol(sg_tensor_grad_get(x, (size_t)j), 780, 1e-12);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

START_TEST(test_shape_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
#define FRESH() (sg_tape_reset(t), x = sg_zeros(t, SG_F32, 2, (int[]){2, 3}))
    tu_assert_error(t, sg_reshape(t, x, 2, (int[]){4, -1}), "reshape: cannot view (2,3) (6 elements) as (4,-1)");
    FRESH();
    tu_assert_error(t, sg_transpose(t, x, 0, 2), "transpose: axis 2 out of range for (2,3)");
    FRESH();
    tu_assert_error(t, sg_permute(t, x, (int[]){0, 0}), "permute: (0,0,-1,-1) is not a permutation of the axes of (2,3)");
    FRESH();
    sg_tensor *y = sg_zeros(t, SG_F32, 2, (int[]){3, 3});
    tu_assert_error(t, sg_concat(t, (sg_tensor *[]){x, y}, 2, 1),
                    "concat: input 2 has shape (3,3), input 1 has (2,3) (only the axis may differ)");
    FRESH();
    y = sg_zeros(t, SG_F32, 2, (int[]){2, 4});
    tu_assert_error(t, sg_stack(t, (sg_tensor *[]){x, y}, 2, 0), "stack: input 2 has shape (2,4), input 1 has (2,3)");
    FRESH();
    tu_assert_error(t, sg_narrow(t, x, 1, 2, 2), "narrow: [2, 4) is outside axis 1 of (2,3)");
    FRESH();
    tu_assert_error(t, sg_select(t, x, 0, 2), "select: index 2 is outside axis 0 of (2,3)");
    FRESH();
    sg_tensor *parts[2];
    ck_assert_int_eq(sg_split(t, x, 1, (int[]){1, 1}, 2, parts), SG_ERR_SHAPE);
    ck_assert_str_eq(sg_tape_errmsg(t), "split: sizes add up to 2 but axis 1 of (2,3) has 3");
    FRESH();
    tu_assert_error(t, sg_index_select(t, x, 0, (int[]){0, 2}, 2),
                    "index_select: index 2 at position 1 is out of range [0,2) for (2,3)");
    FRESH();
    y = sg_zeros(t, SG_F32, 1, (int[]){2});
    tu_assert_error(t, sg_masked_fill(t, x, y, 0), "masked_fill: shapes (2,3) and (2) cannot be broadcast");
    sg_tape_free(t);
#undef FRESH
}
END_TEST

/* narrow whose start + len overflows int, split without sizes or with a
 * negative size: messages, not out-of-bounds reads (both crashed before) */
START_TEST(test_shape_misuse)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){2, 3}), *out[2];
    tu_assert_error(t, sg_narrow(t, x, 1, 2, 2147483647), "narrow: [2, 2147483647) is outside axis 1 of (2,3)");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    ck_assert_int_eq(sg_split(t, x, 1, NULL, 2, out), SG_ERR_NULL);
    ck_assert_str_eq(sg_tape_errmsg(t), "split: sizes is NULL");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    ck_assert_int_eq(sg_split(t, x, 1, (int[]){-1, 4}, 2, out), SG_ERR_SHAPE);
    ck_assert_str_eq(sg_tape_errmsg(t), "split: part 0 of size -1 does not fit axis 1 of (2,3) after 0");
    sg_tape_reset(t);
    x = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    ck_assert_int_eq(sg_split(t, x, 1, (int[]){2, 2147483647}, 2, out), SG_ERR_SHAPE);
    ck_assert_str_eq(sg_tape_errmsg(t), "split: part 1 of size 2147483647 does not fit axis 1 of (2,3) after 2");
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/shape");
    const tu_op_tests ops[] = {
        {"reshape", test_reshape_known, test_reshape_gradcheck},
        {"transpose", test_transpose_permute_known, test_transpose_gradcheck},
        {"permute", NULL, test_permute_gradcheck},
        {"concat", test_concat_stack_known, test_concat_gradcheck},
        {"stack", NULL, test_stack_gradcheck},
        {"narrow", test_narrow_split_known, test_narrow_gradcheck},
        {"split", NULL, test_split_gradcheck},
        {"select", test_select_known, test_select_gradcheck},
        {"index_select", test_index_select_known, test_index_select_gradcheck},
        {"where", test_where_masked_fill_known, test_where_gradcheck},
        {"masked_fill", NULL, test_masked_fill_gradcheck},
    };
    tu_add_ops(s, ops, 11, 4);
    TCase *tc = tcase_create("many inputs and errors");
    tcase_add_test(tc, test_concat_many_inputs);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_shape_misuse);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
