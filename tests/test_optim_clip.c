/*
 * test_optim_clip.c - optim/clip.c: the global norm over all parameters
 * (3-4-12-... worked by hand), scaling as clip_grad_norm_ does it
 * (max / (norm + 1e-6)), no change under the limit, clipping by value.
 */
#include "testutil.h"

/* gradients [3 4] and [12]: global norm 13 */
static sg_params *two_params(sg_dtype dt)
{
    sg_params *ps = sg_params_new();
    sg_tensor *a = sg_params_add(ps, "a", tu_param_of(dt, 1, (int[]){2}, (double[]){0, 0}));
    sg_tensor *b = sg_params_add(ps, "b", tu_param_of(dt, 1, (int[]){1}, (double[]){0}));
    sg_tape *t = sg_tape_new();
    sg_tensor *ga = sg_tensor_from_f64(t, dt, 1, (int[]){2}, (double[]){3, 4});
    sg_tensor *gb = sg_tensor_from_f64(t, dt, 1, (int[]){1}, (double[]){12});
    ck_assert_int_eq(sg_backward(t, sg_add(t, sg_sum_all(t, sg_mul(t, a, ga)), sg_sum_all(t, sg_mul(t, b, gb)))), SG_OK);
    sg_tape_free(t);
    return ps;
}

START_TEST(test_clip_grad_norm)
{
    sg_params *ps = two_params(_i);
    double s = 6.5 / (13 + 1e-6);
    ck_assert_double_eq_tol(sg_clip_grad_norm(ps, 6.5), 13, 1e-6);
    tu_assert_grad(sg_params_get(ps, 0), (double[]){3 * s, 4 * s}, 2, 1e-6);
    tu_assert_grad(sg_params_get(ps, 1), (double[]){12 * s}, 1, 1e-6);
    /* now under the limit: returned norm 6.5, nothing changes */
    ck_assert_double_eq_tol(sg_clip_grad_norm(ps, 100), 6.5, 1e-5);
    tu_assert_grad(sg_params_get(ps, 1), (double[]){12 * s}, 1, 1e-6);
    sg_params_free(ps);
}
END_TEST

START_TEST(test_clip_grad_value)
{
    sg_params *ps = two_params(_i);
    sg_clip_grad_value(ps, 3.5);
    tu_assert_grad(sg_params_get(ps, 0), (double[]){3, 3.5}, 2, 0);
    tu_assert_grad(sg_params_get(ps, 1), (double[]){3.5}, 1, 0);
    sg_params_free(ps);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim/clip");
    TCase *tc = tcase_create("clip");
    tcase_add_loop_test(tc, test_clip_grad_norm, SG_F32, SG_F64 + 1);
    tcase_add_loop_test(tc, test_clip_grad_value, SG_F32, SG_F64 + 1);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
