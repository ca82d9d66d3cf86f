/*
 * test_ops_reference.c - composite expressions against PyTorch. The values
 * in tests/data/ref_*.txt were written by tools/gen_fixtures.py (PyTorch
 * 1.13, float64); each case rebuilds the same expression with seqgrad ops
 * and must match the output and every input gradient to 1e-10 in f64 and
 * 1e-5 in f32.
 */
#include <stdio.h>

#include "testutil.h"

typedef sg_tensor *(*build_fn)(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt);

/* a constant of the fixture as a tape tensor */
static sg_tensor *constant(sg_tape *t, const tu_fixture *fx, const char *name, sg_dtype dt)
{
    int ndim, shape[4];
    const double *v = tu_fixture_get(fx, name, &ndim, shape, NULL);
    return sg_tensor_from_f64(t, dt, ndim, shape, v);
}

static void targets(const tu_fixture *fx, int *out)
{
    size_t n;
    const double *v = tu_fixture_get(fx, "t", NULL, NULL, &n);
    for (size_t i = 0; i < n; i++)
        out[i] = (int)v[i];
}

static sg_tensor *mlp(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    (void)dt;
    int y[4];
    targets(fx, y);
    sg_tensor *h = sg_tanh(t, sg_add(t, sg_matmul(t, p[0], p[1]), p[2]));
    return sg_cross_entropy(t, sg_add(t, sg_matmul(t, h, p[3]), p[4]), y, NULL);
}

static sg_tensor *attention(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    sg_tensor *s = sg_scale(t, sg_bmm(t, p[0], p[1], SG_TRANS_B), 0.5);
    sg_tensor *a = sg_softmax(t, s, -1, constant(t, fx, "mask", dt));
    return sg_sum_all(t, sg_mul(t, sg_bmm(t, a, p[2], 0), constant(t, fx, "W", dt)));
}

static sg_tensor *layernorm(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    sg_tensor *y = sg_sigmoid(t, sg_gelu(t, sg_layer_norm(t, p[0], p[1], p[2], 1e-5)));
    return sg_mse_loss(t, y, constant(t, fx, "target", dt), SG_MEAN);
}

static sg_tensor *nll(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    (void)dt;
    int y[5];
    targets(fx, y);
    sg_tensor *l = sg_nll_loss(t, sg_log_softmax(t, sg_matmul(t, p[0], p[1]), 1, NULL), y, NULL);
    l = sg_add(t, l, sg_scale(t, sg_norm_all(t, p[0]), 0.1));
    return sg_add(t, l, sg_mean_all(t, sg_logsumexp(t, p[0], 1, false)));
}

static sg_tensor *misc(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    (void)fx, (void)dt;
    sg_tensor *a = p[0], *b = p[1], *c = p[2];
    sg_tensor *z = sg_div(t, sg_mul(t, sg_clamp(t, a, -1, 1), sg_exp(t, b)), sg_add_scalar(t, sg_abs(t, c), 1));
    sg_tensor *l = sg_bce_with_logits(t, z, sg_sigmoid(t, c), SG_MEAN);
    l = sg_add(t, l, sg_scale(t, sg_sum_all(t, sg_max(t, a, 1, false)), 0.5));
    return sg_add(t, l, sg_mean_all(t, sg_sqrt(t, sg_add_scalar(t, sg_square(t, c), 1))));
}

static sg_tensor *shape(sg_tape *t, sg_tensor **p, const tu_fixture *fx, sg_dtype dt)
{
    sg_tensor *y = sg_narrow(t, sg_reshape(t, sg_permute(t, p[0], (int[]){2, 0, 1}), 2, (int[]){4, 6}), 1, 1, 4);
    sg_tensor *c = sg_concat(t, (sg_tensor *[]){y, sg_scale(t, y, 2)}, 2, 0);
    sg_tensor *r0 = sg_index_select(t, c, 0, (int[]){0, 3, 3, 7}, 4);
    sg_tensor *r1 = sg_leaky_relu(t, sg_index_select(t, c, 0, (int[]){1, 2, 5, 6}, 4), 0.1);
    sg_tensor *s = sg_stack(t, (sg_tensor *[]){r0, r1}, 2, 0);
    return sg_sum_all(t, sg_mul(t, s, constant(t, fx, "W", dt)));
}

static const struct {
    const char *file;
    const char *in[5];
    int n;
    build_fn f;
} cases[] = {
    {"ref_mlp.txt", {"x", "W1", "b1", "W2", "b2"}, 5, mlp},
    {"ref_attention.txt", {"Q", "K", "V"}, 3, attention},
    {"ref_layernorm.txt", {"x", "g", "b"}, 3, layernorm},
    {"ref_nll.txt", {"x", "W"}, 2, nll},
    {"ref_misc.txt", {"a", "b", "c"}, 3, misc},
    {"ref_shape.txt", {"x"}, 1, shape},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* _i = 2 * case + dtype */
START_TEST(test_matches_pytorch)
{
    int c = _i / 2;
    sg_dtype dt = (sg_dtype)(_i % 2);
    double tol = dt == SG_F64 ? 1e-10 : 1e-5;
    tu_fixture *fx = tu_fixture_load(cases[c].file);
    sg_tensor *p[5];
    for (int k = 0; k < cases[c].n; k++) {
        int ndim, shp[4];
        const double *v = tu_fixture_get(fx, cases[c].in[k], &ndim, shp, NULL);
        p[k] = tu_param_of(dt, ndim, shp, v);
    }
    sg_tape *t = sg_tape_new();
    sg_tensor *out = cases[c].f(t, p, fx, dt);
    ck_assert_msg(out != NULL, "%s: %s", cases[c].file, sg_tape_errmsg(t));
    size_t n;
    const double *expect = tu_fixture_get(fx, "out", NULL, NULL, &n);
    tu_assert_values(out, expect, n, tol);
    ck_assert_int_eq(sg_backward(t, out), SG_OK);
    for (int k = 0; k < cases[c].n; k++) {
        char name[16];
        snprintf(name, sizeof name, "d%s", cases[c].in[k]);
        expect = tu_fixture_get(fx, name, NULL, NULL, &n);
        tu_assert_grad(p[k], expect, n, tol);
        sg_tensor_free(p[k]);
    }
    sg_tape_free(t);
    tu_fixture_free(fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/reference");
    TCase *tc = tcase_create("pytorch");
    tcase_add_loop_test(tc, test_matches_pytorch, 0, 2 * N_CASES);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
