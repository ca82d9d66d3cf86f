/*
 * test_core_tape.c - core/tape.c: recording and backward semantics (fresh
 * intermediate gradients, accumulating parameter gradients, no-grad mode,
 * detach, reset), leaves, errors (NULL propagation, refusal of a tape in
 * error, exact messages), SEQGRAD_ABORT_ON_ERROR and anomaly mode.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* L = sum(tanh(x W)) with x (2,3) and W (3,2) given */
static sg_tensor *small_loss(sg_tape *t, sg_tensor *W, sg_tensor **h_out)
{
    sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 2, (int[]){2, 3}, (double[]){1, -1, 0.5, 0.2, 0.3, -0.7});
    sg_tensor *h = sg_tanh(t, sg_matmul(t, x, W));
    if (h_out)
        *h_out = h;
    return sg_sum_all(t, h);
}

START_TEST(test_intermediate_grads_fresh_params_accumulate)
{
    sg_tensor *W = tu_param(2, (int[]){3, 2}, 1);
    sg_tape *t = sg_tape_new();
    sg_tensor *h;
    sg_tensor *L = small_loss(t, W, &h);
    ck_assert_int_eq(sg_backward(t, L), SG_OK);
    double g1[6], dh1[4];
    for (int i = 0; i < 6; i++)
        g1[i] = sg_tensor_grad_get(W, (size_t)i);
    for (int i = 0; i < 4; i++)
        dh1[i] = sg_tensor_grad_get(h, (size_t)i);
    /* second backward on the same recording: h's gradient is the same
     * (fresh), W's has doubled (accumulated) */
    ck_assert_int_eq(sg_backward(t, L), SG_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(sg_tensor_grad_get(h, (size_t)i), dh1[i]);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(sg_tensor_grad_get(W, (size_t)i), 2 * g1[i], 1e-15);
    /* across a reset too, until zeroed */
    sg_tape_reset(t);
    ck_assert_int_eq(sg_backward(t, small_loss(t, W, NULL)), SG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(sg_tensor_grad_get(W, (size_t)i), 3 * g1[i], 1e-15);
    sg_param_zero_grad(W);
    sg_tape_reset(t);
    ck_assert_int_eq(sg_backward(t, small_loss(t, W, NULL)), SG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(sg_tensor_grad_get(W, (size_t)i), g1[i], 1e-15);
    sg_tensor_free(W), sg_tape_free(t);
}
END_TEST

START_TEST(test_no_grad_mode)
{
    sg_tensor *W = tu_param(2, (int[]){3, 2}, 1);
    sg_tape *t = sg_tape_new();
    ck_assert(sg_tape_set_grad(t, false));
    sg_tensor *L = small_loss(t, W, NULL);
    ck_assert_ptr_nonnull(L);
    ck_assert(!sg_tensor_requires_grad(L));
    ck_assert_int_eq(sg_backward(t, L), SG_ERR_STATE);
    ck_assert_str_eq(sg_tape_errmsg(t), "backward: the loss does not depend on anything that requires a gradient");
    ck_assert_ptr_null(sg_tensor_grad(W));
    ck_assert(!sg_tape_set_grad(t, true));
    sg_tensor_free(W), sg_tape_free(t);
}
END_TEST

START_TEST(test_detach_cuts_the_graph)
{   /* L = sum(detach(2w) * w): dL/dw = 2w, not 4w */
    sg_tensor *w = tu_param_of(SG_F64, 1, (int[]){2}, (double[]){1, 3});
    sg_tape *t = sg_tape_new();
    sg_tensor *d = sg_detach(t, sg_scale(t, w, 2));
    ck_assert(!sg_tensor_requires_grad(d));
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, d, w))), SG_OK);
    tu_assert_grad(w, (double[]){2, 6}, 2, 0);
    /* carried across a reset in a heap tensor (truncated BPTT) */
    sg_tensor *state = sg_tensor_new(SG_F64, 1, (int[]){2});
    ck_assert_int_eq(sg_tensor_copy(state, d), SG_OK);
    sg_tape_reset(t);
    tu_assert_values(state, (double[]){2, 6}, 2, 0);
    sg_tensor_free(state), sg_tensor_free(w), sg_tape_free(t);
}
END_TEST

START_TEST(test_leaf_requires_grad_and_backward_with)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 1, (int[]){3}, (double[]){1, 2, 3});
    sg_tensor_set_requires_grad(x, true);
    sg_tensor *y = sg_square(t, x);
    sg_tensor *dy = sg_tensor_from_f64(t, SG_F64, 1, (int[]){3}, (double[]){1, 10, 100});
    ck_assert_int_eq(sg_backward_with(t, y, dy), SG_OK);
    tu_assert_grad(x, (double[]){2, 40, 600}, 3, 0);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_backward_errors)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *W = tu_param(2, (int[]){3, 2}, 1);
    sg_tensor *h;
    small_loss(t, W, &h);
    ck_assert_int_eq(sg_backward(t, h), SG_ERR_STATE);
    ck_assert_str_eq(sg_tape_errmsg(t), "backward: loss has shape (2,2); it must have one element (use sg_backward_with)");
    sg_tape_reset(t);
    small_loss(t, W, &h);
    sg_tensor *dy = sg_zeros(t, SG_F64, 1, (int[]){3});
    ck_assert_int_eq(sg_backward_with(t, h, dy), SG_ERR_SHAPE);
    ck_assert_str_eq(sg_tape_errmsg(t), "backward: upstream gradient (3) f64 does not match output (2,2) f64");
    /* a tape in error refuses backward and keeps the first message */
    sg_tape_reset(t);
    sg_tensor *x = sg_zeros(t, SG_F64, 2, (int[]){2, 5});
    sg_tensor *L = sg_sum_all(t, sg_tanh(t, sg_matmul(t, x, W)));
    ck_assert_ptr_null(L);
    ck_assert_int_eq(sg_backward(t, L), SG_ERR_STATE);
    ck_assert_str_eq(sg_tape_errmsg(t), "matmul: (2,5) @ (3,2): inner dimensions differ");
    ck_assert_int_eq(sg_tape_error(t), SG_ERR_SHAPE);
    /* reset clears the error */
    sg_tape_reset(t);
    ck_assert_int_eq(sg_tape_error(t), SG_OK);
    ck_assert_str_eq(sg_tape_errmsg(t), "");
    sg_tensor_free(W), sg_tape_free(t);
}
END_TEST

START_TEST(test_tensor_from_another_tape)
{
    sg_tape *t1 = sg_tape_new(), *t2 = sg_tape_new();
    sg_tensor *a = sg_zeros(t1, SG_F32, 1, (int[]){2}), *b = sg_zeros(t2, SG_F32, 1, (int[]){2});
    tu_assert_error(t1, sg_add(t1, a, b), "add: argument 2 belongs to another tape");
    sg_tape_free(t1), sg_tape_free(t2);
}
END_TEST

START_TEST(test_leaf_shape_errors)
{
    sg_tape *t = sg_tape_new();
    tu_assert_error(t, sg_zeros(t, SG_F32, 2, (int[]){3, 0}), "tensor: dimension 1 is 0 (must be >= 1)");
    sg_tape_reset(t);
    tu_assert_error(t, sg_zeros(t, SG_F32, 5, (int[]){1, 1, 1, 1, 1}), "tensor: 5 dimensions (1 to 4 allowed)");
    sg_tape_reset(t);
    tu_assert_error(t, sg_zeros(t, SG_F32, 1, NULL), "tensor: shape is NULL");
    sg_tape_free(t);
}
END_TEST

START_TEST(test_anomaly_in_backward)
{   /* sqrt at 0: forward 0 is fine, backward 1/(2*0) is not */
    sg_tape *t = sg_tape_new();
    sg_tape_set_anomaly(t, true);
    sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 1, (int[]){2}, (double[]){4, 0});
    sg_tensor_set_requires_grad(x, true);
    sg_tensor *L = sg_sum_all(t, sg_sqrt(t, x));
    ck_assert_ptr_nonnull(L);
    ck_assert_int_eq(sg_backward(t, L), SG_ERR_ANOMALY);
    ck_assert_str_eq(sg_tape_errmsg(t), "anomaly: backward of sqrt produced a non-finite gradient for argument 1 at element 1");
    sg_tape_free(t);
}
END_TEST

/* SEQGRAD_ABORT_ON_ERROR=1: the first error prints "seqgrad: <message>" to
 * stderr and aborts. Run in a child so the suite survives (and CK_FORK=no). */
START_TEST(test_abort_on_error_env)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        setenv("SEQGRAD_ABORT_ON_ERROR", "1", 1);
        sg_tape *t = sg_tape_new();
        sg_tensor *a = sg_zeros(t, SG_F32, 1, (int[]){2}), *b = sg_zeros(t, SG_F32, 1, (int[]){3});
        sg_add(t, a, b);
        _exit(0);   /* not reached if the abort happened */
    }
    close(fd[1]);
    char buf[256] = {0};
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    int status;
    waitpid(pid, &status, 0);
    close(fd[0]);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strncmp(buf, "seqgrad: add: shapes (2) and (3) cannot be broadcast\n", 53) == 0, "stderr: %s", buf);
}
END_TEST

START_TEST(test_library_is_silent_without_env)
{   /* errors are recorded, not printed: nothing reaches stderr */
    unsetenv("SEQGRAD_ABORT_ON_ERROR");
    sg_tape *t = sg_tape_new();
    sg_tensor *a = sg_zeros(t, SG_F32, 1, (int[]){2}), *b = sg_zeros(t, SG_F32, 1, (int[]){3});
    ck_assert_ptr_null(sg_add(t, a, b));
    sg_tape_free(t);
}
END_TEST

/* Backward writes a gradient that holds nothing yet with = where the op
 * can (sg_op.assigns) and adds after that: x feeds tanh, the second
 * factor of a mul and a matmul, then mul(y, y) takes one tensor twice, and
 * u is never reached. Every gradient against its value worked by hand:
 *   y = 2x, L = sum(tanh(x)) + sum(y * x) + sum(x @ 1) + sum(y * y)      */
START_TEST(test_gradients_written_then_added)
{
    double xv[3] = {0.5, -1, 2};
    sg_tensor *x = tu_param_of(SG_F64, 2, (int[]){1, 3}, xv);
    sg_tape *t = sg_tape_new();
    sg_tensor *u = sg_scale(t, x, 7);                   /* recorded, never reached */
    sg_tensor *y = sg_scale(t, x, 2);
    sg_tensor *one = sg_tensor_from_f64(t, SG_F64, 2, (int[]){3, 1}, (double[]){1, 1, 1});
    sg_tensor *parts[4] = {sg_sum_all(t, sg_tanh(t, x)), sg_sum_all(t, sg_mul(t, y, x)),
                           sg_sum_all(t, sg_matmul(t, x, one)), sg_sum_all(t, sg_mul(t, y, y))};
    sg_tensor *L = sg_add(t, sg_add(t, parts[0], parts[1]), sg_add(t, parts[2], parts[3]));
    ck_assert_int_eq(sg_backward(t, L), SG_OK);
    /* dL/dy = x + 2y = 5x, dL/dx = (1 - tanh^2 x) + y + 1 + 2 dL/dy = 1 - tanh^2 x + 12x + 1 */
    double dx[3], dy[3];
    for (int i = 0; i < 3; i++) {
        double th = tanh(xv[i]);
        dy[i] = 5 * xv[i];
        dx[i] = 1 - th * th + 12 * xv[i] + 1;
    }
    tu_assert_grad(y, dy, 3, 1e-12);
    tu_assert_grad(x, dx, 3, 1e-12);
    tu_assert_grad(u, (double[]){0, 0, 0}, 3, 0);
    /* again on the same recording: the same values, not twice them (x is
     * a parameter and accumulates) */
    sg_param_zero_grad(x);
    ck_assert_int_eq(sg_backward(t, L), SG_OK);
    tu_assert_grad(y, dy, 3, 1e-12);
    tu_assert_grad(x, dx, 3, 1e-12);
    tu_assert_grad(u, (double[]){0, 0, 0}, 3, 0);
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

/* sg_tape_keep_grads off: the same gradients for parameters and tape
 * leaves as with it on (a graph that reuses tensors, one never reached,
 * a tape leaf requiring a gradient), on a first and a second backward;
 * afterwards op outputs have no gradient (grad_get reads 0), leaves keep
 * theirs; anomaly mode still names the op. */
static sg_tensor *reusing_graph(sg_tape *t, sg_tensor *x, sg_tensor *leaf)
{
    sg_tensor *y = sg_scale(t, x, 2);
    sg_scale(t, x, 7);                                   /* recorded, never reached */
    sg_tensor *h = sg_tanh(t, sg_add(t, y, leaf));
    for (int k = 0; k < 3; k++)
        h = sg_tanh(t, sg_add(t, sg_mul(t, h, y), leaf));
    return sg_add(t, sg_sum_all(t, sg_mul(t, h, h)), sg_sum_all(t, y));
}

START_TEST(test_grads_not_kept)
{
    double xv[4] = {0.5, -1, 2, 0.25}, lv[4] = {0.1, 0.2, -0.3, 0.4}, want_x[2][4], want_leaf[2][4];
    sg_tensor *x = tu_param_of(SG_F64, 2, (int[]){2, 2}, xv);
    sg_tape *t = sg_tape_new();
    ck_assert(sg_tape_keep_grads(t, true));             /* the default */
    for (int keep = 1; keep >= 0; keep--) {
        sg_tape_reset(t);
        ck_assert(sg_tape_keep_grads(t, keep) == !keep || keep);
        sg_param_zero_grad(x);
        sg_tensor *leaf = sg_tensor_from_f64(t, SG_F64, 2, (int[]){2, 2}, lv);
        sg_tensor_set_requires_grad(leaf, true);
        sg_tensor *L = reusing_graph(t, x, leaf);
        for (int pass = 0; pass < 2; pass++) {
            ck_assert_int_eq(sg_backward(t, L), SG_OK);
            for (int i = 0; i < 4; i++) {
                double gx = sg_tensor_grad_get(x, i) - (pass ? want_x[0][i] : 0);
                if (keep)
                    want_x[pass][i] = gx, want_leaf[pass][i] = sg_tensor_grad_get(leaf, i);
                else {
                    ck_assert_double_eq_tol(gx, want_x[pass][i], 1e-14);
                    ck_assert_double_eq_tol(sg_tensor_grad_get(leaf, i), want_leaf[pass][i], 1e-14);
                }
            }
            ck_assert_ptr_nonnull(sg_tensor_grad(leaf));
            ck_assert(keep ? sg_tensor_grad(L) != NULL : sg_tensor_grad(L) == NULL);
        }
    }
    ck_assert_double_eq_tol(want_x[1][0], want_x[0][0], 1e-14);    /* a second pass adds the same */
    sg_tape_reset(t);
    sg_tape_set_anomaly(t, true);
    sg_tensor *z = sg_tensor_from_f64(t, SG_F64, 1, (int[]){2}, (double[]){4, 0});
    sg_tensor_set_requires_grad(z, true);
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_tanh(t, sg_sqrt(t, z)))), SG_ERR_ANOMALY);
    ck_assert_str_eq(sg_tape_errmsg(t), "anomaly: backward of sqrt produced a non-finite gradient for argument 1 at element 1");
    sg_tensor_free(x), sg_tape_free(t);
}
END_TEST

/* keep_grads off gives gradient buffers back for others of their size: 64
 * steps of a (32, 256) recurrence end with an arena under 0.7x of the one
 * that keeps every gradient, and a second step allocates nothing more. */
START_TEST(test_grads_not_kept_reuse_memory)
{
    sg_tensor *w = tu_param(2, (int[]){256, 256}, 3);
    size_t bytes[2][2];
    for (int keep = 0; keep < 2; keep++) {
        sg_tape *t = sg_tape_new();
        sg_tape_keep_grads(t, keep);
        for (int step = 0; step < 2; step++) {
            sg_tape_reset(t);
            sg_tensor *h = sg_full(t, SG_F64, 2, (int[]){32, 256}, 0.5);
            for (int k = 0; k < 64; k++)
                h = sg_tanh(t, sg_matmul_ex(t, h, w, SG_TRANS_B));
            ck_assert_int_eq(sg_backward(t, sg_sum_all(t, h)), SG_OK);
            bytes[keep][step] = sg_tape_arena_bytes(t);
        }
        sg_tape_free(t);
    }
    ck_assert_msg(bytes[0][0] < 0.7 * bytes[1][0], "arena %zu bytes not keeping gradients, %zu keeping them",
                  bytes[0][0], bytes[1][0]);
    ck_assert_uint_eq(bytes[0][1], bytes[0][0]);
    sg_tensor_free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/tape");
    TCase *tc = tcase_create("gradient semantics");
    tcase_add_test(tc, test_intermediate_grads_fresh_params_accumulate);
    tcase_add_test(tc, test_no_grad_mode);
    tcase_add_test(tc, test_detach_cuts_the_graph);
    tcase_add_test(tc, test_leaf_requires_grad_and_backward_with);
    tcase_add_test(tc, test_gradients_written_then_added);
    tcase_add_test(tc, test_grads_not_kept);
    tcase_add_test(tc, test_grads_not_kept_reuse_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_backward_errors);
    tcase_add_test(tc, test_tensor_from_another_tape);
    tcase_add_test(tc, test_leaf_shape_errors);
    tcase_add_test(tc, test_anomaly_in_backward);
    tcase_add_test(tc, test_abort_on_error_env);
    tcase_add_test(tc, test_library_is_silent_without_env);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
