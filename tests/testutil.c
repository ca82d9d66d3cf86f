/*
 * testutil.c - see testutil.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

sg_tensor *tu_param(int ndim, const int *shape, uint64_t seed)
{
    sg_rng r;
    sg_rng_seed(&r, seed);
    sg_tensor *p = sg_param_randn(SG_F64, ndim, shape, 1.0, &r);
    ck_assert_ptr_nonnull(p);
    return p;
}

sg_tensor *tu_param_away(int ndim, const int *shape, uint64_t seed, double gap)
{
    sg_tensor *p = tu_param(ndim, shape, seed);
    for (size_t i = 0; i < sg_tensor_size(p); i++) {
        double v = sg_tensor_get(p, i);
        if (fabs(v) < gap)
            sg_tensor_set(p, i, v < 0 ? -gap - fabs(v) : gap + v);
    }
    return p;
}

sg_tensor *tu_param_of(sg_dtype dt, int ndim, const int *shape, const double *v)
{
    sg_tensor *p = sg_param_new(dt, ndim, shape);
    ck_assert_ptr_nonnull(p);
    sg_tensor_load(p, v);
    return p;
}

static void assert_buf(const char *what, const sg_tensor *x, bool grad, const double *expect, size_t n, double tol)
{
    ck_assert_msg(x != NULL, "%s: tensor is NULL", what);
    ck_assert_msg(sg_tensor_size(x) == n, "%s: %zu elements, expected %zu", what, sg_tensor_size(x), n);
    for (size_t i = 0; i < n; i++) {
        double got = grad ? sg_tensor_grad_get(x, i) : sg_tensor_get(x, i);
        ck_assert_msg(fabs(got - expect[i]) <= tol * fmax(1.0, fabs(expect[i])),
                      "%s[%zu] = %.17g, expected %.17g (tol %g)", what, i, got, expect[i], tol);
    }
}

void tu_assert_values(const sg_tensor *x, const double *expect, size_t n, double tol)
{
    assert_buf("value", x, false, expect, n, tol);
}

void tu_assert_grad(const sg_tensor *x, const double *expect, size_t n, double tol)
{
    assert_buf("grad", x, true, expect, n, tol);
}

void tu_assert_error(sg_tape *t, const sg_tensor *y, const char *msg)
{
    ck_assert_msg(y == NULL, "expected the op to fail with \"%s\"", msg);
    ck_assert_int_ne(sg_tape_error(t), SG_OK);
    ck_assert_str_eq(sg_tape_errmsg(t), msg);
}

void tu_assert_shape(const sg_tensor *x, int ndim, const int *shape)
{
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sg_tensor_ndim(x), ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(sg_tensor_shape(x)[d] == shape[d], "dim %d is %d, expected %d",
                      d, sg_tensor_shape(x)[d], shape[d]);
}

void tu_gradcheck(sg_gradcheck_fn f, void *ctx, sg_tensor **in, int n, double rtol)
{
    sg_gradcheck_opts o = sg_gradcheck_defaults();
    sg_gradcheck_report r;
    if (rtol > 0)
        o.rtol = rtol;
    sg_status s = sg_gradcheck(f, ctx, in, n, &o, &r);
    if (s != SG_OK || !r.ok)
        sg_gradcheck_print(&r, NULL, stderr);
    ck_assert_msg(s == SG_OK, "gradcheck could not run: %s", r.msg);
    ck_assert_msg(r.ok, "gradcheck failed (report above)");
}

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct {
    char name[64];
    int ndim, shape[4];
    size_t n;
    double *v;
} tu_entry;

struct tu_fixture {
    tu_entry *e;
    int n;
};

tu_fixture *tu_fixture_load(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TEST_DATA_DIR, file);
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open fixture %s", path);
    tu_fixture *fx = calloc(1, sizeof *fx);
    char name[64];
    int ndim;
    while (fscanf(fp, "%63s %d", name, &ndim) == 2) {
        fx->e = realloc(fx->e, (size_t)(fx->n + 1) * sizeof *fx->e);
        tu_entry *e = &fx->e[fx->n++];
        memset(e, 0, sizeof *e);
        strcpy(e->name, name);
        e->ndim = ndim;
        e->n = 1;
        for (int d = 0; d < ndim; d++) {
            ck_assert_int_eq(fscanf(fp, "%d", &e->shape[d]), 1);
            e->n *= (size_t)e->shape[d];
        }
        e->v = malloc(e->n * sizeof *e->v);
        for (size_t i = 0; i < e->n; i++)
            ck_assert_msg(fscanf(fp, "%lf", &e->v[i]) == 1, "fixture %s: %s is short", file, name);
    }
    fclose(fp);
    ck_assert_msg(fx->n > 0, "fixture %s is empty", file);
    return fx;
}

void tu_fixture_free(tu_fixture *fx)
{
    for (int i = 0; fx && i < fx->n; i++)
        free(fx->e[i].v);
    if (fx)
        free(fx->e);
    free(fx);
}

const double *tu_fixture_get(const tu_fixture *fx, const char *name, int *ndim, int *shape, size_t *n)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->e[i].name, name) == 0) {
            if (ndim)
                *ndim = fx->e[i].ndim;
            if (shape)
                memcpy(shape, fx->e[i].shape, sizeof fx->e[i].shape);
            if (n)
                *n = fx->e[i].n;
            return fx->e[i].v;
        }
    ck_abort_msg("fixture has no tensor named %s", name);
    return NULL;
}

void tu_load_params(const tu_fixture *fx, sg_params *ps)
{
    for (int k = 0; k < sg_params_count(ps); k++) {
        size_t n;
        const double *v = tu_fixture_get(fx, sg_params_name(ps, k), NULL, NULL, &n);
        ck_assert_msg(n == sg_tensor_size(sg_params_get(ps, k)), "%s: %zu values in the fixture", sg_params_name(ps, k), n);
        sg_tensor_load(sg_params_get(ps, k), v);
    }
}

void tu_check_grad_named(const tu_fixture *fx, const char *name, const sg_tensor *x, double tol)
{
    char g[128];
    size_t n;
    snprintf(g, sizeof g, "d%s", name);
    const double *e = tu_fixture_get(fx, g, NULL, NULL, &n);
    ck_assert_msg(n == sg_tensor_size(x), "%s: size %zu, fixture %zu", g, sg_tensor_size(x), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(sg_tensor_grad_get(x, i) - e[i]) <= tol * fmax(1, fabs(e[i])),
                      "%s[%zu] = %.17g, PyTorch %.17g", g, i, sg_tensor_grad_get(x, i), e[i]);
}

void tu_check_param_grads(const tu_fixture *fx, sg_params *ps, double tol)
{
    for (int k = 0; k < sg_params_count(ps); k++)
        tu_check_grad_named(fx, sg_params_name(ps, k), sg_params_get(ps, k), tol);
}

sg_tensor *tu_fixture_param(const tu_fixture *fx, const char *name, sg_dtype dt)
{
    int ndim, shape[4];
    const double *v = tu_fixture_get(fx, name, &ndim, shape, NULL);
    return tu_param_of(dt, ndim, shape, v);
}

sg_tensor *tu_fixture_const(sg_tape *t, const tu_fixture *fx, const char *name, sg_dtype dt)
{
    int ndim, shape[4];
    const double *v = tu_fixture_get(fx, name, &ndim, shape, NULL);
    return sg_tensor_from_f64(t, dt, ndim, shape, v);
}

void tu_add_ops(Suite *s, const tu_op_tests *ops, int n, int n_grad)
{
    for (int k = 0; k < n; k++) {
        TCase *tc = tcase_create(ops[k].name);
        if (ops[k].known)
            tcase_add_loop_test(tc, ops[k].known, SG_F32, SG_F64 + 1);
        tcase_add_loop_test(tc, ops[k].grad, 0, n_grad);
        suite_add_tcase(s, tc);
    }
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
