/*
 * test_nn_linear.c - nn/linear.c: linear layer values worked by hand, its
 * gradient check over a 3-D input, PyTorch's init bound and names; the
 * embedding lookup, with a repeated id accumulating its gradient.
 */
#include <math.h>

#include "testutil.h"

START_TEST(test_linear_known)
{   /* W = [1 2; 3 4; 5 6], b = [1 1 1], x = [1 1]: y = x W^T + b = [4 8 12] */
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_linear l;
    ck_assert_int_eq(sg_linear_init(&l, ps, "decoder.", 2, 3, true, _i, &rng), SG_OK);
    ck_assert_ptr_eq(sg_params_find(ps, "decoder.weight"), l.weight);
    ck_assert_ptr_eq(sg_params_find(ps, "decoder.bias"), l.bias);
    for (size_t i = 0; i < 6; i++)
        ck_assert(fabs(sg_tensor_get(l.weight, i)) <= 1 / sqrt(2.0));
    sg_tensor_load(l.weight, (double[]){1, 2, 3, 4, 5, 6});
    sg_tensor_load(l.bias, (double[]){1, 1, 1});
    sg_tape *t = sg_tape_new();
    sg_tensor *y = sg_linear_forward(t, &l, sg_full(t, _i, 2, (int[]){1, 2}, 1));
    tu_assert_values(y, (double[]){4, 8, 12}, 3, 1e-7);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(l.weight, (double[]){1, 1, 1, 1, 1, 1}, 6, 0);
    tu_assert_grad(l.bias, (double[]){1, 1, 1}, 3, 0);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

static sg_tensor *linear_apply(sg_tape *t, sg_tensor **in, void *ctx)
{
    return sg_tanh(t, sg_linear_forward(t, ctx, in[0]));
}

START_TEST(test_linear_gradcheck)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 2);
    sg_linear l;
    ck_assert_int_eq(sg_linear_init(&l, ps, "", 4, 3, _i == 0, SG_F64, &rng), SG_OK);
    sg_tensor *in[3] = {tu_param(3, (int[]){2, 5, 4}, 3), l.weight, l.bias};
    tu_gradcheck(linear_apply, &l, in, _i == 0 ? 3 : 2, 0);
    sg_tensor_free(in[0]), sg_params_free(ps);
}
END_TEST

START_TEST(test_embedding_known)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_embedding e;
    ck_assert_int_eq(sg_embedding_init(&e, ps, "embedding.", 4, 2, _i, &rng), SG_OK);
    sg_tensor_load(e.weight, (double[]){0, 1, 10, 11, 20, 21, 30, 31});
    sg_tape *t = sg_tape_new();
    sg_tensor *y = sg_embedding_forward(t, &e, (int[]){3, 1, 1, 0, 3, 3}, 2, 3);
    tu_assert_shape(y, 3, (int[]){2, 3, 2});
    tu_assert_values(y, (double[]){30, 31, 10, 11, 10, 11, 0, 1, 30, 31, 30, 31}, 12, 0);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, y)), SG_OK);
    tu_assert_grad(e.weight, (double[]){1, 1, 2, 2, 0, 0, 3, 3}, 8, 0);
    tu_assert_error(t, sg_embedding_forward(t, &e, (int[]){4}, 1, 1),
                    "index_select: index 4 at position 0 is out of range [0,4) for (4,2)");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* module constructors say what is wrong on the collection; embedding
 * lookups whose B*T overflows int are refused (an overrun before) */
START_TEST(test_linear_embedding_misuse)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_linear l;
    sg_embedding e;
    ck_assert_int_eq(sg_linear_init(&l, ps, "fc.", 0, 3, true, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "linear fc.: 0 inputs, 3 outputs (each at least 1)");
    sg_params_clear_error(ps);
    ck_assert_int_eq(sg_embedding_init(&e, ps, "emb.", 5, -2, SG_F32, &rng), SG_ERR_ARG);
    ck_assert_str_eq(sg_params_errmsg(ps), "embedding emb.: 5 rows of size -2 (each at least 1)");
    ck_assert_int_eq(sg_embedding_init(&e, ps, "emb.", 5, 2, SG_F32, &rng), SG_OK);
    sg_tape *t = sg_tape_new();
    int ids[4] = {0, 1, 2, 3};
    tu_assert_error(t, sg_embedding_forward(t, &e, ids, 65536, 65536),
                    "embedding: 65536 x 65536 ids (each at least 1, the product an int)");
    sg_tape_reset(t);
    tu_assert_error(t, sg_embedding_forward(t, &e, NULL, 1, 4), "embedding: idx is NULL");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/linear");
    TCase *tc = tcase_create("linear");
    tcase_add_loop_test(tc, test_linear_known, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_linear_gradcheck, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("embedding");
    tcase_add_loop_test(tc, test_embedding_known, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_linear_embedding_misuse);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
