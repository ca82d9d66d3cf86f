/*
 * test_core_tensor.c - core/tensor.c: heap tensors and their accessors,
 * copy and cast, parameters, and the named parameter collection.
 */
#include <math.h>
#include <stdint.h>

#include "testutil.h"

START_TEST(test_heap_tensor_basics)
{
    sg_tensor *x = sg_tensor_new(SG_F32, 3, (int[]){2, 3, 4});
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sg_tensor_ndim(x), 3);
    ck_assert_uint_eq(sg_tensor_size(x), 24);
    ck_assert_int_eq(sg_tensor_dim(x, -1), 4);
    ck_assert_int_eq(sg_tensor_dim(x, 5), 0);
    ck_assert_int_eq(sg_tensor_dtype(x), SG_F32);
    ck_assert_ptr_null(sg_tensor_grad(x));
    ck_assert(!sg_tensor_requires_grad(x));
    ck_assert_double_eq(sg_tensor_get(x, 23), 0);
    sg_tensor_set(x, 23, 1.5);
    ck_assert_float_eq(((float *)sg_tensor_data(x))[23], 1.5f);
    char buf[48];
    ck_assert_str_eq(sg_shape_str(x, buf), "(2,3,4)");
    ck_assert_str_eq(sg_dtype_name(SG_F64), "f64");
    ck_assert_uint_eq(sg_dtype_size(SG_F64), 8);
    sg_tensor_free(x);
    sg_tensor_free(NULL);
    ck_assert_ptr_null(sg_tensor_new(SG_F32, 0, (int[]){1}));
    ck_assert_ptr_null(sg_tensor_new(SG_F32, 5, (int[]){1, 1, 1, 1, 1}));
    ck_assert_ptr_null(sg_tensor_new(SG_F32, 2, (int[]){2, -1}));
}
END_TEST

START_TEST(test_copy_and_cast)
{
    sg_tensor *a = tu_param_of(SG_F64, 1, (int[]){3}, (double[]){0.1, 0.2, 1e-30});
    sg_tensor *b = sg_tensor_new(SG_F32, 1, (int[]){3});
    ck_assert_int_eq(sg_tensor_copy(b, a), SG_OK);
    ck_assert_float_eq(((float *)sg_tensor_data(b))[0], 0.1f);
    sg_tensor *c = sg_tensor_new(SG_F32, 1, (int[]){4});
    ck_assert_int_eq(sg_tensor_copy(c, a), SG_ERR_SHAPE);
    ck_assert_int_eq(sg_tensor_cast(a, SG_F32), SG_OK);
    ck_assert_int_eq(sg_tensor_dtype(a), SG_F32);
    ck_assert_float_eq(((float *)sg_tensor_data(a))[1], 0.2f);
    ck_assert_int_eq(sg_tensor_cast(a, SG_F64), SG_OK);
    ck_assert_double_eq(sg_tensor_get(a, 1), (double)0.2f);
    sg_tensor_free(a), sg_tensor_free(b), sg_tensor_free(c);
}
END_TEST

START_TEST(test_params_collection)
{
    sg_rng r;
    sg_rng_seed(&r, 3);
    sg_params *ps = sg_params_new();
    sg_tensor *W = sg_params_add(ps, "weight_ih_l0", sg_param_randn(SG_F32, 2, (int[]){8, 4}, 0.1, &r));
    sg_tensor *b = sg_params_add(ps, "bias_ih_l0", sg_param_uniform(SG_F32, 1, (int[]){8}, -0.5, 0.5, &r));
    ck_assert_ptr_nonnull(W);
    ck_assert_ptr_nonnull(b);
    ck_assert(sg_tensor_requires_grad(W));
    for (size_t i = 0; i < 8; i++)
        ck_assert(sg_tensor_get(b, i) >= -0.5 && sg_tensor_get(b, i) < 0.5);
    /* a duplicate name is refused and the tensor freed (no leak under valgrind) */
    ck_assert_ptr_null(sg_params_add(ps, "bias_ih_l0", sg_param_new(SG_F32, 1, (int[]){8})));
    ck_assert_int_eq(sg_params_count(ps), 2);
    ck_assert_str_eq(sg_params_name(ps, 1), "bias_ih_l0");
    ck_assert_str_eq(sg_tensor_name(W), "weight_ih_l0");
    ck_assert_ptr_eq(sg_params_find(ps, "weight_ih_l0"), W);
    ck_assert_ptr_null(sg_params_find(ps, "nope"));
    ck_assert_ptr_null(sg_params_get(ps, 2));
    ck_assert_uint_eq(sg_params_numel(ps), 40);
    /* gradients appear at backward, zero in one call, cast as a whole */
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_full(t, SG_F32, 2, (int[]){1, 4}, 1.0);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_add(t, sg_matmul_ex(t, x, W, SG_TRANS_B), b))), SG_OK);
    ck_assert_double_eq(sg_tensor_grad_get(b, 0), 1);
    sg_params_zero_grad(ps);
    ck_assert_double_eq(sg_tensor_grad_get(b, 0), 0);
    ck_assert_int_eq(sg_params_cast(ps, SG_F64), SG_OK);
    ck_assert_int_eq(sg_tensor_dtype(W), SG_F64);
    sg_tape_free(t);
    sg_params_free(ps);
}
END_TEST

/* Every accessor on NULL reads as an empty tensor; out-of-range elements
 * read NaN and are never written; sizes that overflow are refused (each of
 * these crashed or overran a buffer before). */
START_TEST(test_accessors_null_and_range)
{
    char buf[48];
    ck_assert_int_eq(sg_tensor_ndim(NULL), 0);
    ck_assert_int_eq(sg_tensor_dim(NULL, 0), 0);
    ck_assert_uint_eq(sg_tensor_size(NULL), 0);
    ck_assert_ptr_null(sg_tensor_data(NULL));
    ck_assert_ptr_null(sg_tensor_grad(NULL));
    ck_assert_str_eq(sg_tensor_name(NULL), "");
    ck_assert(!sg_tensor_requires_grad(NULL));
    ck_assert_int_eq(sg_tensor_shape(NULL)[0], 0);
    ck_assert(isnan(sg_tensor_get(NULL, 0)));
    ck_assert(isnan(sg_tensor_grad_get(NULL, 0)));
    sg_tensor_set(NULL, 0, 1);
    sg_tensor_set_requires_grad(NULL, true);
    sg_tensor_load(NULL, NULL), sg_tensor_store(NULL, NULL);
    ck_assert_str_eq(sg_shape_str(NULL, buf), "(NULL)");
    ck_assert_int_eq(sg_tensor_cast(NULL, SG_F64), SG_ERR_NULL);
    ck_assert_int_eq(sg_tensor_copy(NULL, NULL), SG_ERR_NULL);
    sg_tensor *x = sg_tensor_new(SG_F32, 1, (int[]){3});
    ck_assert(isnan(sg_tensor_get(x, 3)));
    sg_tensor_set(x, 3, 7);                                  /* ignored, not written past the end */
    ck_assert_int_eq(sg_tensor_cast(x, (sg_dtype)7), SG_ERR_DTYPE);
    ck_assert_ptr_null(sg_tensor_new((sg_dtype)2, 1, (int[]){3}));
    ck_assert_ptr_null(sg_tensor_new(SG_F32, 4, (int[]){1 << 30, 1 << 30, 1 << 30, 1 << 30}));   /* 2^120 elements */
    /* the tape */
    ck_assert_int_eq(sg_tape_error(NULL), SG_ERR_NULL);
    ck_assert_str_eq(sg_tape_errmsg(NULL), "tape: the tape is NULL (sg_tape_new failed?)");
    sg_tape_reset(NULL), sg_tape_set_anomaly(NULL, true);
    ck_assert(!sg_tape_set_grad(NULL, true));
    sg_tape *t = sg_tape_new();
    ck_assert_ptr_null(sg_zeros(t, SG_F32, 4, (int[]){1 << 30, 1 << 30, 1 << 30, 1 << 30}));
    ck_assert_str_eq(sg_tape_errmsg(t), "tensor: 1073741824 x 1073741824 elements do not fit in memory");
    sg_tape_reset(t);
    ck_assert_ptr_null(sg_zeros(t, (sg_dtype)5, 1, (int[]){2}));
    ck_assert_str_eq(sg_tape_errmsg(t), "tensor: dtype 5 is neither SG_F32 nor SG_F64");
    sg_tape_reset(t);
    ck_assert_ptr_null(sg_randn(t, SG_F32, 1, (int[]){2}, 1.0, NULL));
    ck_assert_str_eq(sg_tape_errmsg(t), "randn: rng is NULL");
    ck_assert_ptr_null(sg_tape_alloc(t, SIZE_MAX / 2, 8));
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

/* Errors of calls given a parameter collection are messages on it. */
START_TEST(test_enum_names)
{
    /* every table spells each value at its index and ends with NULL */
    ck_assert_int_eq(sg_enum_parse(sg_attn_kind_names, "additive"), SG_ATTN_ADDITIVE);
    ck_assert_int_eq(sg_enum_parse(sg_attn_kind_names, "dot"), SG_ATTN_DOT);
    ck_assert_int_eq(sg_enum_parse(sg_init_names, "identity"), SG_INIT_IDENTITY);
    ck_assert_int_eq(sg_enum_parse(sg_param_init_names, "constant"), SG_PARAM_CONSTANT);
    ck_assert_int_eq(sg_enum_parse(sg_param_init_names, "input"), SG_PARAM_INPUT);
    ck_assert_int_eq(sg_enum_parse(sg_optim_kind_names, "adagrad"), SG_ADAGRAD);
    ck_assert_int_eq(sg_enum_parse(sg_sched_kind_names, "cosine"), SG_SCHED_COSINE);
    ck_assert_int_eq(sg_enum_parse(sg_reduction_names, "none"), SG_NONE);
    ck_assert_ptr_null(sg_attn_kind_names[SG_ATTN_ADDITIVE + 1]);
    ck_assert_ptr_null(sg_param_init_names[SG_PARAM_CONSTANT + 1]);
    ck_assert_ptr_null(sg_optim_kind_names[SG_ADAGRAD + 1]);
    /* unknown names, case, NULL text or table: -1 */
    ck_assert_int_eq(sg_enum_parse(sg_optim_kind_names, "Adam"), -1);
    ck_assert_int_eq(sg_enum_parse(sg_optim_kind_names, ""), -1);
    ck_assert_int_eq(sg_enum_parse(sg_optim_kind_names, NULL), -1);
    ck_assert_int_eq(sg_enum_parse(NULL, "adam"), -1);
}
END_TEST

START_TEST(test_params_errors)
{
    sg_params *ps = sg_params_new();
    ck_assert_int_eq(sg_params_error(ps), SG_OK);
    ck_assert_str_eq(sg_params_errmsg(ps), "");
    ck_assert_ptr_nonnull(sg_params_add(ps, "w", sg_param_new(SG_F32, 1, (int[]){2})));
    ck_assert_ptr_null(sg_params_add(ps, "w", sg_param_new(SG_F32, 1, (int[]){2})));
    ck_assert_int_eq(sg_params_error(ps), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "params: the name w is taken");
    ck_assert_ptr_null(sg_params_add(ps, "v", NULL));
    ck_assert_str_eq(sg_params_errmsg(ps), "params: the name w is taken");      /* the first error stays */
    sg_params_clear_error(ps);
    ck_assert_ptr_null(sg_params_add(ps, "v", NULL));
    ck_assert_str_eq(sg_params_errmsg(ps), "params: no tensor for v (out of memory)");
    ck_assert_int_eq(sg_params_error(ps), SG_ERR_NOMEM);
    sg_params_clear_error(ps);
    ck_assert_int_eq(sg_params_cast(ps, (sg_dtype)3), SG_ERR_DTYPE);
    ck_assert_str_eq(sg_params_errmsg(ps), "params_cast: dtype 3 is neither SG_F32 nor SG_F64");
    ck_assert_ptr_null(sg_params_find(ps, NULL));
    ck_assert_int_eq(sg_params_error(NULL), SG_ERR_NULL);
    ck_assert_str_eq(sg_params_errmsg(NULL), "params: the collection is NULL (sg_params_new failed?)");
    ck_assert_int_eq(sg_params_cast(NULL, SG_F64), SG_ERR_NULL);
    sg_params_free(ps);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_heap_tensor_basics);
    tcase_add_test(tc, test_copy_and_cast);
    suite_add_tcase(s, tc);
    tc = tcase_create("params");
    tcase_add_test(tc, test_params_collection);
    tcase_add_test(tc, test_accessors_null_and_range);
    tcase_add_test(tc, test_params_errors);
    tcase_add_test(tc, test_enum_names);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
