/*
 * testutil.h - helpers shared by the check suites: seeded parameters, value
 * and error assertions, gradient checks that fail with the report, and the
 * loader of the PyTorch reference files in tests/data (written by
 * tools/gen_fixtures.py; the tests themselves never run Python).
 */
#ifndef SEQGRAD_TESTUTIL_H
#define SEQGRAD_TESTUTIL_H

#include <check.h>

#include "seqgrad/seqgrad.h"

/* f64 parameter with N(0,1) values drawn from seed. */
sg_tensor *tu_param(int ndim, const int *shape, uint64_t seed);
/* Same, then values v with |v| < gap are pushed to +-gap (away from kinks). */
sg_tensor *tu_param_away(int ndim, const int *shape, uint64_t seed, double gap);
/* Parameter holding the given values. */
sg_tensor *tu_param_of(sg_dtype dt, int ndim, const int *shape, const double *v);

/* Fails the test unless x holds expect[0..n) within tol (and has n elements). */
void tu_assert_values(const sg_tensor *x, const double *expect, size_t n, double tol);
/* Fails the test unless x's gradient holds expect[0..n) within tol. */
void tu_assert_grad(const sg_tensor *x, const double *expect, size_t n, double tol);
/* Fails unless the op returned NULL and the tape holds exactly msg. */
void tu_assert_error(sg_tape *t, const sg_tensor *y, const char *msg);
/* Fails unless x has this shape. */
void tu_assert_shape(const sg_tensor *x, int ndim, const int *shape);

/* Runs sg_gradcheck with default tolerances (or rtol if > 0) and fails the
 * test, printing the report, unless every input passes. Frees nothing. */
void tu_gradcheck(sg_gradcheck_fn f, void *ctx, sg_tensor **in, int n, double rtol);

/* Reference files: one tensor per line, "name ndim d0 .. dk v0 v1 ...". */
typedef struct tu_fixture tu_fixture;
tu_fixture *tu_fixture_load(const char *file);      /* relative to tests/data */
void tu_fixture_free(tu_fixture *fx);
/* The values of name (fails the test if absent); shape/ndim out if not NULL. */
const double *tu_fixture_get(const tu_fixture *fx, const char *name, int *ndim, int *shape, size_t *n);

/* One TCase per op: `known` looped over both dtypes (_i is the sg_dtype;
 * skipped if NULL) and `grad` looped over n_grad cases (_i is the case). */
typedef struct { const char *name; const TTest *known, *grad; } tu_op_tests;
void tu_add_ops(Suite *s, const tu_op_tests *ops, int n, int n_grad);

/* Loads every parameter of ps from the fixture tensor of the same name. */
void tu_load_params(const tu_fixture *fx, sg_params *ps);
/* Fails unless every parameter's gradient matches fixture "d<name>" within
 * tol (relative to max(1, |expected|)). */
void tu_check_param_grads(const tu_fixture *fx, sg_params *ps, double tol);
/* Fails unless x's gradient matches fixture "d<name>". */
void tu_check_grad_named(const tu_fixture *fx, const char *name, const sg_tensor *x, double tol);
/* A parameter (requires grad) holding fixture tensor name, in dtype dt. */
sg_tensor *tu_fixture_param(const tu_fixture *fx, const char *name, sg_dtype dt);
/* A tape leaf holding fixture tensor name. */
sg_tensor *tu_fixture_const(sg_tape *t, const tu_fixture *fx, const char *name, sg_dtype dt);

/* Runs a suite and returns the process exit code (0 if all passed). */
int tu_run(Suite *s);

#endif
