/*
 * test_nn_init.c - nn/init.c: PyTorch and Glorot bounds, orthogonal blocks
 * (U U^T = I), identity blocks, seeding, shape refusals.
 */
#include <math.h>

#include "testutil.h"

START_TEST(test_init_schemes)
{
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    enum { H = 8, G = 4, E = 5 };
    sg_tensor *w = sg_param_new(SG_F64, 2, (int[]){G * H, H});
    sg_tensor *wi = sg_param_new(SG_F64, 2, (int[]){G * H, E});

    ck_assert_int_eq(sg_init_weight(w, SG_INIT_PYTORCH, H, true, &rng), SG_OK);
    double k = 1 / sqrt((double)H), mx = 0;
    for (size_t i = 0; i < sg_tensor_size(w); i++)
        mx = fmax(mx, fabs(sg_tensor_get(w, i)));
    ck_assert(mx <= k && mx > 0.8 * k);

    ck_assert_int_eq(sg_init_weight(wi, SG_INIT_XAVIER, H, false, &rng), SG_OK);
    k = sqrt(6.0 / (H + E)), mx = 0;
    for (size_t i = 0; i < sg_tensor_size(wi); i++)
        mx = fmax(mx, fabs(sg_tensor_get(wi, i)));
    ck_assert(mx <= k && mx > 0.7 * k);

    ck_assert_int_eq(sg_init_weight(w, SG_INIT_ORTHOGONAL, H, true, &rng), SG_OK);
    for (int g = 0; g < G; g++)                 /* each gate block U: U U^T = I */
        for (int a = 0; a < H; a++)
            for (int b = 0; b < H; b++) {
                double dot = 0;
                for (int c = 0; c < H; c++)
                    dot += sg_tensor_get(w, (size_t)((g * H + a) * H + c)) * sg_tensor_get(w, (size_t)((g * H + b) * H + c));
                ck_assert_double_eq_tol(dot, a == b, 1e-12);
            }

    ck_assert_int_eq(sg_init_weight(w, SG_INIT_IDENTITY, H, true, &rng), SG_OK);
    for (int r = 0; r < G * H; r++)
        for (int c = 0; c < H; c++)
            ck_assert_double_eq(sg_tensor_get(w, (size_t)(r * H + c)), r % H == c);

    ck_assert_int_eq(sg_init_weight(w, SG_INIT_PYTORCH, 7, true, &rng), SG_ERR_SHAPE);   /* 32 rows, blocks of 7 */
    sg_tensor_free(w), sg_tensor_free(wi);
}
END_TEST

START_TEST(test_init_is_seeded)
{
    sg_tensor *a = sg_param_new(SG_F32, 2, (int[]){6, 3}), *b = sg_param_new(SG_F32, 2, (int[]){6, 3});
    sg_rng r1, r2;
    sg_rng_seed(&r1, 9), sg_rng_seed(&r2, 9);
    sg_init_weight(a, SG_INIT_ORTHOGONAL, 3, true, &r1);
    sg_init_weight(b, SG_INIT_ORTHOGONAL, 3, true, &r2);
    for (size_t i = 0; i < 18; i++)
        ck_assert_double_eq(sg_tensor_get(a, i), sg_tensor_get(b, i));
    sg_tensor_free(a), sg_tensor_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/init");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, test_init_schemes);
    tcase_add_test(tc, test_init_is_seeded);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
