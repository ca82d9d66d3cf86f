/*
 * test_ops_loss.c - ops/loss.c: cross-entropy (with ignore index and every
 * reduction), NLL, MSE and BCE-with-logits. Known values from Python's math
 * module on logits [1 2 3]: softmax P, logsumexp 3.40760596444438. f64
 * gradient checks over shapes and reductions; error messages.
 */
#include <math.h>

#include "testutil.h"

static const double P[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
static const double Z[6] = {1, 2, 3, 1, 2, 3};

START_TEST(test_cross_entropy_known)
{   /* rows (targets 2, 0): 0.4076..., 2.4076...; mean 1.4076...; dz = (P - onehot)/2 */
    sg_tape *t = sg_tape_new();
    sg_tensor *z = tu_param_of(_i, 2, (int[]){2, 3}, Z);
    sg_tensor *l = sg_cross_entropy(t, z, (int[]){2, 0}, NULL);
    tu_assert_shape(l, 1, (int[]){1});
    tu_assert_values(l, (double[]){1.4076059644443801}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(z, (double[]){P[0] / 2, P[1] / 2, (P[2] - 1) / 2, (P[0] - 1) / 2, P[1] / 2, P[2] / 2}, 6, 1e-6);
    sg_tensor_free(z), sg_tape_free(t);
}
END_TEST

START_TEST(test_cross_entropy_ignore_and_reductions)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *z = tu_param_of(_i, 3, (int[]){1, 2, 3}, Z);
    sg_loss_opts o = sg_loss_defaults();
    /* mean over the one row not ignored; the ignored row gets no gradient */
    sg_tensor *l = sg_cross_entropy(t, z, (int[]){2, -100}, &o);
    tu_assert_values(l, (double[]){0.4076059644443803}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(z, (double[]){P[0], P[1], P[2] - 1, 0, 0, 0}, 6, 1e-6);
    sg_tape_reset(t);
    o.reduction = SG_SUM;
    tu_assert_values(sg_cross_entropy(t, z, (int[]){2, 0}, &o), (double[]){2.81521192888876}, 1, 1e-6);
    o.reduction = SG_NONE, o.ignore_index = 1;
    l = sg_cross_entropy(t, z, (int[]){1, 0}, &o);
    tu_assert_shape(l, 2, (int[]){1, 2});
    tu_assert_values(l, (double[]){0, 2.40760596444438}, 2, 1e-6);
    /* all rows ignored: mean is 0, not NaN */
    o = sg_loss_defaults();
    tu_assert_values(sg_cross_entropy(t, z, (int[]){-100, -100}, &o), (double[]){0}, 1, 0);
    sg_tensor_free(z), sg_tape_free(t);
}
END_TEST

START_TEST(test_nll_loss_known)
{   /* -logp[y]: targets 1 and 2 of logp rows [-1 -2 -3], [-0.5 -1 -4] -> mean (2 + 4)/2 */
    sg_tape *t = sg_tape_new();
    sg_tensor *p = tu_param_of(_i, 2, (int[]){2, 3}, (double[]){-1, -2, -3, -0.5, -1, -4});
    sg_tensor *l = sg_nll_loss(t, p, (int[]){1, 2}, NULL);
    tu_assert_values(l, (double[]){3}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(p, (double[]){0, -0.5, 0, 0, 0, -0.5}, 6, 1e-6);
    sg_tensor_free(p), sg_tape_free(t);
}
END_TEST

START_TEST(test_mse_loss_known)
{   /* a = [1 2 3], b = [0 2 5]: (1 + 0 + 4)/3; da = 2(a - b)/3 = -db */
    sg_tape *t = sg_tape_new();
    sg_tensor *a = tu_param_of(_i, 1, (int[]){3}, (double[]){1, 2, 3});
    sg_tensor *b = tu_param_of(_i, 1, (int[]){3}, (double[]){0, 2, 5});
    sg_tensor *l = sg_mse_loss(t, a, b, SG_MEAN);
    tu_assert_values(l, (double[]){5.0 / 3}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(a, (double[]){2.0 / 3, 0, -4.0 / 3}, 3, 1e-6);
    tu_assert_grad(b, (double[]){-2.0 / 3, 0, 4.0 / 3}, 3, 1e-6);
    tu_assert_values(sg_mse_loss(t, a, b, SG_NONE), (double[]){1, 0, 4}, 3, 1e-6);
    sg_tensor_free(a), sg_tensor_free(b), sg_tape_free(t);
}
END_TEST

START_TEST(test_bce_with_logits_known)
{   /* z = [0 2 -1], y = [1 0 0.5]; dz = (sigmoid(z) - y)/3 */
    sg_tape *t = sg_tape_new();
    sg_tensor *z = tu_param_of(_i, 1, (int[]){3}, (double[]){0, 2, -1});
    sg_tensor *y = sg_tensor_from_f64(t, _i, 1, (int[]){3}, (double[]){1, 0, 0.5});
    sg_tensor *l = sg_bce_with_logits(t, z, y, SG_MEAN);
    tu_assert_values(l, (double[]){1.2111122930403804}, 1, 1e-6);
    ck_assert_int_eq(sg_backward(t, l), SG_OK);
    tu_assert_grad(z, (double[]){-0.16666666666666666, 0.29359902599262744, -0.07701952621000163}, 3, 1e-6);
    tu_assert_values(sg_bce_with_logits(t, z, y, SG_NONE),
                     (double[]){0.6931471805599453, 2.1269280110429727, 0.8132616875182228}, 3, 1e-6);
    /* huge logits: no overflow, loss 0 when right, |z| when wrong */
    sg_tensor *big = sg_tensor_from_f64(t, _i, 1, (int[]){2}, (double[]){1000, -1000});
    sg_tensor *tg = sg_tensor_from_f64(t, _i, 1, (int[]){2}, (double[]){1, 1});
    tu_assert_values(sg_bce_with_logits(t, big, tg, SG_NONE), (double[]){0, 1000}, 2, 1e-6);
    sg_tensor_free(z), sg_tape_free(t);
}
END_TEST

/* ---- gradient checks ------------------------------------------------------ */

static const struct { int shape[5]; sg_reduction red; int ignore; } cases[] = {
    {{2, 4, 5}, SG_MEAN, 0},
    {{3, 2, 3, 4}, SG_SUM, 0},
    {{3, 2, 3, 4}, SG_MEAN, 1},          /* every third row ignored */
    {{4, 2, 2, 2, 3}, SG_NONE, 1},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

struct ctx { int kind, c; int targets[64]; };

static sg_tensor *apply(sg_tape *t, sg_tensor **in, void *p)
{
    struct ctx *k = p;
    sg_loss_opts o = {cases[k->c].red, -100};
    switch (k->kind) {
    case 0: return sg_cross_entropy(t, in[0], k->targets, &o);
    case 1: return sg_nll_loss(t, sg_log_softmax(t, in[0], -1, NULL), k->targets, &o);
    case 2: return sg_mse_loss(t, in[0], in[1], cases[k->c].red);
    default: return sg_bce_with_logits(t, in[0], sg_sigmoid(t, in[1]), cases[k->c].red);
    }
}

static void grad(int kind, int c)
{
    struct ctx k = {kind, c, {0}};
    const int *s = cases[c].shape;
    sg_tensor *in[2] = {tu_param(s[0], s + 1, 90 + (uint64_t)c), tu_param(s[0], s + 1, 95 + (uint64_t)c)};
    int C = s[s[0]];
    for (int r = 0; r < 64; r++)
        k.targets[r] = cases[c].ignore && r % 3 == 2 ? -100 : (r * 7) % C;
    tu_gradcheck(apply, &k, in, kind >= 2 ? 2 : 1, 0);
    sg_tensor_free(in[0]), sg_tensor_free(in[1]);
}

START_TEST(test_cross_entropy_gradcheck) { grad(0, _i); }
END_TEST
START_TEST(test_nll_loss_gradcheck) { grad(1, _i); }
END_TEST
START_TEST(test_mse_loss_gradcheck) { grad(2, _i); }
END_TEST
START_TEST(test_bce_with_logits_gradcheck) { grad(3, _i); }
END_TEST

START_TEST(test_loss_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *z = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_cross_entropy(t, z, (int[]){0, 7}, NULL),
                    "cross_entropy: target 7 at row 1 is out of range [0,3) for logits (2,3)");
    sg_tape_reset(t);
    z = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_nll_loss(t, z, NULL, NULL), "nll_loss: targets is NULL");
    sg_tape_reset(t);
    z = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    sg_tensor *w = sg_zeros(t, SG_F32, 2, (int[]){3, 2});
    tu_assert_error(t, sg_mse_loss(t, z, w, SG_MEAN), "mse_loss: shapes (2,3) and (3,2) differ");
    sg_tape_reset(t);
    z = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    w = sg_zeros(t, SG_F32, 2, (int[]){2, 3});
    tu_assert_error(t, sg_bce_with_logits(t, z, w, (sg_reduction)7), "bce_with_logits: unknown reduction 7");
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/loss");
    const tu_op_tests ops[] = {
        {"cross_entropy", test_cross_entropy_known, test_cross_entropy_gradcheck},
        {"nll_loss", test_nll_loss_known, test_nll_loss_gradcheck},
        {"mse_loss", test_mse_loss_known, test_mse_loss_gradcheck},
        {"bce_with_logits", test_bce_with_logits_known, test_bce_with_logits_gradcheck},
    };
    tu_add_ops(s, ops, 4, N_CASES);
    TCase *tc = tcase_create("options and errors");
    tcase_add_loop_test(tc, test_cross_entropy_ignore_and_reductions, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_loss_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
