/*
 * test_optim_optim.c - optim/optim.c: three steps of every optimizer (and
 * its momentum / Nesterov / weight-decay variants) from p = [1 -2 0.5] with
 * the gradients below must give the parameters torch.optim gives (values
 * printed by torch.optim in float64, pasted here); and a linear regression
 * whose loss falls tenfold with each optimizer. Invalid options are refused.
 * Big parameters, whose update is split among threads, give the same values
 * and the same bits on 1 thread and on 2.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/internal.h"
#include "testutil.h"

static const double grads[3][3] = {{0.5, 0.1, -0.3}, {-0.2, 0.4, 0.05}, {0.3, -0.1, 0.2}};

static const struct {
    sg_optim_kind kind;
    struct { double lr, momentum, weight_decay; bool nesterov; } o;
    double p[9];            /* p after steps 1, 2, 3 */
} cases[] = {
    {SG_SGD, {.lr = 0.1}, {0.95, -2.01, 0.53, 0.97, -2.05, 0.525, 0.94, -2.04, 0.505}},
    {SG_SGD, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}, {0.949, -2.008, 0.5295, 0.9221509999999999, -2.053192, 0.5505205, 0.867064749, -2.081811608, 0.5488884294999999}},
    {SG_SGD, {.lr = 0.1, .momentum = 0.9, .nesterov = true}, {0.905, -2.019, 0.557, 0.9025000000000001, -2.1031, 0.5718000000000001, 0.82525, -2.12379, 0.5516200000000001}},
    {SG_ADAM, {.lr = 0.1}, {0.900000002, -2.099999990000001, 0.5999999966666668, 0.8654394181165108, -2.188437636024883, 0.6538537493547918, 0.8109953836811554, -2.2398076289102287, 0.6535025163355399}},
    {SG_ADAM, {.lr = 0.1, .weight_decay = 0.1}, {0.9000000016666666, -1.900000009999999, 0.5999999960000002, 0.8475190629593703, -1.9383950852503757, 0.6313446301049996, 0.7791121607663538, -1.9067093835841644, 0.6044436370881279}},
    {SG_ADAMW, {.lr = 0.1, .weight_decay = 0.1}, {0.890000002, -2.079999990000001, 0.5949999966666668, 0.8465394180965108, -2.147637636124883, 0.6429037493881251, 0.7836299894801902, -2.17753125264898, 0.636123478874992}},
    {SG_RMSPROP, {.lr = 0.01}, {0.900000019999996, -2.0999999000000997, 0.5999999666666778, 0.9373002053730881, -2.1970426726688514, 0.583479507113814, 0.8882859052415076, -2.1733537762636184, 0.5281548582719992}},
    {SG_RMSPROP, {.lr = 0.01, .momentum = 0.9, .weight_decay = 0.1}, {0.900000016666664, -1.9000000999999, 0.599999960000016, 0.8281206853841383, -1.9003697617335027, 0.6495563036124224, 0.7098962172455935, -1.8225084769305178, 0.624198133784292}},
    {SG_ADAGRAD, {.lr = 0.1}, {0.90000000002, -2.0999999999, 0.5999999999666666, 0.9371390676485138, -2.1970142498910037, 0.5835601012415363, 0.8884726413171798, -2.173444023857008, 0.5286158756771551}},
    {SG_ADAGRAD, {.lr = 0.1, .weight_decay = 0.1}, {0.9000000000166667, -1.9000000001, 0.59999999996, 0.918032786898692, -1.9902860519427812, 0.5597261385493706, 0.8639901744286906, -1.9113529106528597, 0.49134436320545744}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static sg_optim_opts opts_of(int c)
{
    sg_optim_opts o = sg_optim_defaults(cases[c].kind);
    o.lr = cases[c].o.lr, o.momentum = cases[c].o.momentum;
    o.weight_decay = cases[c].o.weight_decay, o.nesterov = cases[c].o.nesterov;
    return o;
}

START_TEST(test_optimizer_matches_torch_optim)
{
    int c = _i / 2;
    sg_dtype dt = (sg_dtype)(_i % 2);
    sg_params *ps = sg_params_new();
    sg_tensor *p = sg_params_add(ps, "p", tu_param_of(dt, 1, (int[]){3}, (double[]){1, -2, 0.5}));
    sg_optim_opts o = opts_of(c);
    sg_optim *opt = sg_optim_new(ps, &o);
    ck_assert_ptr_nonnull(opt);
    sg_tape *t = sg_tape_new();
    for (int s = 0; s < 3; s++) {
        sg_tape_reset(t);
        sg_params_zero_grad(ps);      /* dL/dp = g for L = sum(p * g) */
        sg_tensor *g = sg_tensor_from_f64(t, dt, 1, (int[]){3}, grads[s]);
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, p, g))), SG_OK);
        sg_optim_step(opt, -1);
        tu_assert_values(p, cases[c].p + 3 * s, 3, dt == SG_F64 ? 1e-14 : 1e-6);
    }
    ck_assert_int_eq(sg_optim_steps(opt), 3);
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
}
END_TEST

/* Parameters big enough for the update to be split among threads
 * (sg_in_parts): every triple of elements starts as p above and gets the
 * gradients above, so after three steps each holds torch.optim's values
 * whichever part it fell in (checked every 999 elements, in both parts);
 * 1 and 2 threads give the same bits. */
START_TEST(test_optimizer_split_among_threads)
{
    int c = _i;
    enum { N32 = 5003, N64 = 3001 };
    float f32[2][N32];
    double f64[2][N64];
    int was = sg_blas_threads(0);
    for (int threads = 1; threads <= 2; threads++) {
        sg_blas_threads(threads);
        long before = sg_rows_parallel_runs();
        sg_params *ps = sg_params_new();
        sg_tensor *p[2] = {sg_params_add(ps, "a", sg_param_new(SG_F32, 1, (int[]){N32})),
                           sg_params_add(ps, "b", sg_param_new(SG_F64, 1, (int[]){N64}))};
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < sg_tensor_size(p[k]); i++)
                sg_tensor_set(p[k], i, (double[]){1, -2, 0.5}[i % 3]);
        sg_optim_opts o = opts_of(c);
        sg_optim *opt = sg_optim_new(ps, &o);
        sg_tape *t = sg_tape_new();
        for (int s = 0; s < 3; s++) {
            sg_tape_reset(t);
            sg_params_zero_grad(ps);
            for (int k = 0; k < 2; k++) {     /* one loss per dtype */
                sg_tensor *g = sg_zeros(t, sg_tensor_dtype(p[k]), 1, (int[]){(int)sg_tensor_size(p[k])});
                for (size_t i = 0; i < sg_tensor_size(p[k]); i++)
                    sg_tensor_set(g, i, grads[s][i % 3]);
                ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, p[k], g))), SG_OK);
            }
            sg_optim_step(opt, -1);
        }
        for (size_t i = 0; i + 3 <= N64; i += 999) {
            tu_assert_values(sg_narrow(t, p[0], 0, (int)i, 3), cases[c].p + 6, 3, 1e-6);
            tu_assert_values(sg_narrow(t, p[1], 0, (int)i, 3), cases[c].p + 6, 3, 1e-14);
        }
        memcpy(f32[threads - 1], sg_tensor_data(p[0]), sizeof f32[0]);
        memcpy(f64[threads - 1], sg_tensor_data(p[1]), sizeof f64[0]);
        ck_assert_int_eq(sg_rows_parallel_runs() - before, threads == 2 ? 3 : 0);
        sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    }
    ck_assert_mem_eq(f32[0], f32[1], sizeof f32[0]);
    ck_assert_mem_eq(f64[0], f64[1], sizeof f64[0]);
    sg_blas_threads(was);
}
END_TEST

/* y = X w* + 0.01 noise, 64 points, 5 features; mean squared error */
START_TEST(test_optimizer_fits_a_regression)
{
    static const double lr[] = {0.1, 0.05, 0.05, 0.01, 0.5};
    sg_optim_kind kind = (sg_optim_kind)_i;
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    double X[64 * 5], y[64], w_true[5] = {1, -2, 0.5, 3, -1};
    for (int i = 0; i < 64; i++) {
        y[i] = 0.01 * sg_rng_normal(&rng);
        for (int j = 0; j < 5; j++) {
            X[i * 5 + j] = sg_rng_normal(&rng);
            y[i] += X[i * 5 + j] * w_true[j];
        }
    }
    sg_params *ps = sg_params_new();
    sg_tensor *w = sg_params_add(ps, "w", sg_param_new(SG_F32, 2, (int[]){5, 1}));
    sg_optim_opts o = sg_optim_defaults(kind);
    o.lr = lr[kind];
    if (kind == SG_SGD)
        o.momentum = 0.9;
    sg_optim *opt = sg_optim_new(ps, &o);
    sg_tape *t = sg_tape_new();
    double first = 0, last = 0;
    for (int s = 0; s < 300; s++) {
        sg_tape_reset(t);
        sg_params_zero_grad(ps);
        sg_tensor *Xt = sg_tensor_from_f64(t, SG_F32, 2, (int[]){64, 5}, X);
        sg_tensor *yt = sg_tensor_from_f64(t, SG_F32, 2, (int[]){64, 1}, y);
        sg_tensor *loss = sg_mse_loss(t, sg_matmul(t, Xt, w), yt, SG_MEAN);
        ck_assert_int_eq(sg_backward(t, loss), SG_OK);
        sg_optim_step(opt, -1);
        last = sg_tensor_get(loss, 0);
        if (s == 0)
            first = last;
    }
    ck_assert_msg(last < first / 10, "%s: loss %g -> %g", sg_optim_name(kind), first, last);
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
}
END_TEST

START_TEST(test_optimizer_state_and_refusals)
{
    sg_params *ps = sg_params_new();
    sg_params_add(ps, "p", sg_param_new(SG_F32, 1, (int[]){4}));
    sg_optim_opts o = sg_optim_defaults(SG_SGD);
    o.nesterov = true;                               /* without momentum */
    ck_assert_ptr_null(sg_optim_new(ps, &o));
    ck_assert_str_eq(sg_params_errmsg(ps), "optim: invalid options (kind 0, lr 0.01, momentum 0, weight_decay 0, "
                                           "eps 1e-08, beta1 0.9, beta2 0.999, alpha 0.99, nesterov 1): lr > 0, betas "
                                           "and alpha in [0,1), the rest >= 0, nesterov needs momentum");
    sg_params_clear_error(ps);
    ck_assert_ptr_null(sg_optim_new(NULL, &o));
    sg_optim_step(NULL, 0.1), sg_optim_free(NULL);
    ck_assert_int_eq(sg_optim_steps(NULL), 0);
    ck_assert_ptr_null(sg_optim_state(NULL, 0, 0));
    ck_assert_double_eq(sg_schedule_lr(NULL, 3), 0);
    o = sg_optim_defaults(SG_ADAM);
    o.lr = 0;
    ck_assert_ptr_null(sg_optim_new(ps, &o));
    o = sg_optim_defaults(SG_ADAM);
    o.beta1 = 1;
    ck_assert_ptr_null(sg_optim_new(ps, &o));
    o = sg_optim_defaults(SG_ADAM);
    sg_optim *opt = sg_optim_new(ps, &o);
    ck_assert_ptr_nonnull(sg_optim_state(opt, 0, 0));
    ck_assert_ptr_nonnull(sg_optim_state(opt, 0, 1));
    ck_assert_ptr_null(sg_optim_state(opt, 1, 0));
    sg_optim_step(opt, -1);                          /* no gradient yet: skipped */
    ck_assert_double_eq(sg_tensor_get(sg_params_get(ps, 0), 0), 0);
    ck_assert_str_eq(sg_optim_name(SG_RMSPROP), "rmsprop");
    sg_optim_free(opt), sg_params_free(ps);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim/optim");
    TCase *tc = tcase_create("torch.optim");
    tcase_add_loop_test(tc, test_optimizer_matches_torch_optim, 0, 2 * N_CASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("regression");
    tcase_add_loop_test(tc, test_optimizer_fits_a_regression, SG_SGD, SG_ADAGRAD + 1);
    tcase_add_test(tc, test_optimizer_state_and_refusals);
    suite_add_tcase(s, tc);
    if (strcmp(sg_gemm_backend(), "OpenBLAS")) {
        tc = tcase_create("threads");
        tcase_add_loop_test(tc, test_optimizer_split_among_threads, 0, N_CASES);
        suite_add_tcase(s, tc);
    } else
        printf("test_optim_optim: the update split among threads: left out on OpenBLAS (no OpenMP)\n");
    return tu_run(s);
}
