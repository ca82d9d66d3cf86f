/*
 * test_core_rows.c - core/rows.c: which ops join a row run, a run's values
 * against the same ops run one by one, forward deferred inside a hold and
 * read through every accessor, and recurrent layers (LSTM, both GRUs, RNN;
 * two layers, gradients kept and not) giving the same bits on 1 thread and
 * on 2, with runs really split between the two; and the work outside the
 * runs that is split into parts (sg_in_parts) giving the right values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "testutil.h"

static sg_tensor *uniform(sg_tape *t, int rows, int cols, unsigned seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){rows, cols});
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        sg_tensor_set(x, i, 2 * sg_rng_uniform(&rng) - 1);
    return x;
}

/* element-wise on a shared first axis joins; a bias row, a slice along the
 * first axis, a reduction and a plain matmul over a 3-D input do not */
START_TEST(test_rows_joins)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *a = uniform(t, 6, 8, 1), *b = uniform(t, 6, 8, 2), *w = uniform(t, 5, 8, 3);
    sg_tensor *row = sg_zeros(t, SG_F32, 1, (int[]){8}), *col = sg_zeros(t, SG_F32, 2, (int[]){6, 1});
    sg_rowrun r = {.n = 0};
    ck_assert(sg_rows_joins(&r, sg_tanh(t, a)));
    ck_assert(sg_rows_joins(&r, sg_mul(t, a, b)));
    ck_assert(sg_rows_joins(&r, sg_mul(t, a, col)));          /* broadcast within a row */
    ck_assert(!sg_rows_joins(&r, sg_add(t, a, row)));         /* its gradient sums rows */
    ck_assert(sg_rows_joins(&r, sg_narrow(t, a, 1, 2, 3)));
    ck_assert(!sg_rows_joins(&r, sg_narrow(t, a, 0, 2, 3)));  /* rows themselves */
    ck_assert(!sg_rows_joins(&r, sg_sum(t, a, 1, false)));
    sg_tensor *p = sg_matmul_ex(t, a, w, SG_TRANS_B);
    ck_assert(sg_rows_joins(&r, p));
    ck_assert(sg_rows_joins(&r, sg_addmm(t, a, w, sg_zeros(t, SG_F32, 1, (int[]){5}), SG_TRANS_B)));
    ck_assert(!sg_rows_joins(&r, sg_matmul(t, a, sg_transpose(t, w, 0, 1))));   /* not x W^T */
    sg_rows_add(&r, sg_tanh(t, a), 0);                              /* a run of 6 rows */
    ck_assert(!sg_rows_joins(&r, sg_tanh(t, uniform(t, 5, 8, 4))));
    ck_assert(sg_rows_joins(&r, sg_tanh(t, b)));
    ck_assert(!sg_rows_joins(&r, sg_tanh(t, uniform(t, 1, 8, 5))));   /* one row: nothing to split */
    sg_tape_free(t);
}
END_TEST

/* A chain of ops with gradients: y = sum(tanh(a * sigmoid(b)) + narrow(c))
 * recorded inside a hold on 2 threads (forward deferred, backward in runs)
 * gives the values and gradients of the same chain outside a hold, bit for
 * bit; rows 37 split 18 / 19. */
static void chain(sg_tape *t, sg_tensor *a, sg_tensor *b, sg_tensor *c, sg_tensor *w, bool hold, float *out)
{
    sg_tape_reset(t);
    if (hold)
        sg_tape_hold_transposes(t, true);
    sg_tensor *h = sg_mul(t, a, sg_sigmoid(t, b));
    sg_tensor *g = sg_addmm(t, h, w, sg_tanh(t, sg_narrow(t, c, 1, 4, 96)), SG_TRANS_B);
    sg_tensor *y = sg_add(t, sg_tanh(t, g), sg_one_minus(t, sg_narrow(t, c, 1, 0, 96)));
    if (hold)
        sg_tape_hold_transposes(t, false);
    memcpy(out, sg_tensor_data(y), sg_tensor_size(y) * sizeof(float));
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, y))), SG_OK);
}

START_TEST(test_rows_run_as_one_by_one)
{
    enum { R = 37, C = 160, N = 96 };
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    sg_tensor *a = sg_param_uniform(SG_F32, 2, (int[]){R, C}, -1, 1, &rng);
    sg_tensor *b = sg_param_uniform(SG_F32, 2, (int[]){R, C}, -1, 1, &rng);
    sg_tensor *c = sg_param_uniform(SG_F32, 2, (int[]){R, 104}, -1, 1, &rng);
    sg_tensor *w = sg_param_uniform(SG_F32, 2, (int[]){N, C}, -1, 1, &rng);
    sg_tensor *ps[] = {a, b, c, w};
    float y[2][R * N], *g[2][4];
    int was = sg_blas_threads(0);
    sg_blas_threads(2);
    sg_tape *t = sg_tape_new();
    long before = sg_rows_parallel_runs();
    for (int k = 0; k < 2; k++) {
        for (int p = 0; p < 4; p++)
            sg_param_zero_grad(ps[p]);
        chain(t, a, b, c, w, k == 1, y[k]);
        for (int p = 0; p < 4; p++) {
            g[k][p] = malloc(sg_tensor_size(ps[p]) * sizeof(float));
            memcpy(g[k][p], sg_tensor_grad(ps[p]), sg_tensor_size(ps[p]) * sizeof(float));
        }
    }
    if (strcmp(sg_gemm_backend(), "OpenBLAS"))      /* OpenMP there: the runs split */
        ck_assert_int_ge(sg_rows_parallel_runs() - before, 2);
    ck_assert(!memcmp(y[0], y[1], sizeof y[0]));
    for (int p = 0; p < 4; p++) {
        ck_assert_msg(!memcmp(g[0][p], g[1][p], sg_tensor_size(ps[p]) * sizeof(float)), "gradient %d differs", p);
        free(g[0][p]), free(g[1][p]);
    }
    sg_blas_threads(was);
    sg_tape_free(t);
    for (int p = 0; p < 4; p++)
        sg_tensor_free(ps[p]);
}
END_TEST

/* The rest of a training step outside the runs, in parts: an embedding's
 * lookup (index_select), a stack of steps and its backward, a reshape's
 * backward, cross-entropy forward and backward; the same bits on 1 thread
 * as on 2, and the work really split on 2. */
START_TEST(test_rows_parts_of_a_step)
{
    enum { V = 50, R = 640, H = 512, S = 4, C = 65 };
    static int idx[R], y[R * S];
    for (int i = 0; i < R; i++)
        idx[i] = (i * 7) % V;
    for (int i = 0; i < R * S; i++)
        y[i] = (i * 11) % C;
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_tensor *table = sg_param_uniform(SG_F32, 2, (int[]){V, H}, -1, 1, &rng);
    sg_tensor *w = sg_param_uniform(SG_F32, 2, (int[]){C, H}, -1, 1, &rng);
    static float loss[2], emb[2][V * H], dw[2][C * H];
    int was = sg_blas_threads(0);
    for (int k = 0; k < 2; k++) {
        sg_blas_threads(k + 1);
        long before = sg_rows_parallel_runs();
        sg_param_zero_grad(table), sg_param_zero_grad(w);
        sg_tape *t = sg_tape_new();
        sg_tensor *e = sg_index_select(t, table, 0, idx, R), *steps[S];
        for (int s = 0; s < S; s++)
            steps[s] = sg_tanh(t, sg_scale(t, e, 0.5 * (s + 1)));
        sg_tensor *h = sg_reshape(t, sg_stack(t, steps, S, 1), 2, (int[]){R * S, H});
        sg_tensor *l = sg_cross_entropy(t, sg_matmul_ex(t, h, w, SG_TRANS_B), y, NULL);
        ck_assert_int_eq(sg_backward(t, l), SG_OK);
        loss[k] = (float)sg_tensor_get(l, 0);
        memcpy(emb[k], sg_tensor_grad(table), sizeof emb[k]);
        memcpy(dw[k], sg_tensor_grad(w), sizeof dw[k]);
        if (k == 1)
            ck_assert_int_ge(sg_rows_parallel_runs() - before, 6);
        sg_tape_free(t);
    }
    ck_assert_float_eq(loss[0], loss[1]);
    ck_assert(!memcmp(emb[0], emb[1], sizeof emb[0]));
    ck_assert(!memcmp(dw[0], dw[1], sizeof dw[0]));
    sg_blas_threads(was);
    sg_tensor_free(table), sg_tensor_free(w);
}
END_TEST

/* A run on 3 rows: oneDNN's sgemm takes another path for a single row
 * (a matrix-vector product, other bits), so no thread's part may be 1 row:
 * the same bits on 1 thread and on 2. */
START_TEST(test_rows_no_part_of_one_row)
{
    enum { R = 3, K = 32, N = 8192 };      /* R N above PARALLEL_WORK; R N K below SMALL_PRODUCT */
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_tensor *x = sg_param_uniform(SG_F32, 2, (int[]){R, K}, -1, 1, &rng);
    sg_tensor *w = sg_param_uniform(SG_F32, 2, (int[]){N, K}, -1, 1, &rng);
    static float y[2][R * N], gx[2][R * K];
    int was = sg_blas_threads(0);
    for (int k = 0; k < 2; k++) {
        sg_blas_threads(k + 1);
        sg_param_zero_grad(x), sg_param_zero_grad(w);
        sg_tape *t = sg_tape_new();
        sg_tape_hold_transposes(t, true);
        sg_tensor *h = sg_tanh(t, sg_matmul_ex(t, x, w, SG_TRANS_B));
        sg_tape_hold_transposes(t, false);
        memcpy(y[k], sg_tensor_data(h), sizeof y[k]);
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, h, h))), SG_OK);
        memcpy(gx[k], sg_tensor_grad(x), sizeof gx[k]);
        sg_tape_free(t);
    }
    ck_assert(!memcmp(y[0], y[1], sizeof y[0]));
    ck_assert(!memcmp(gx[0], gx[1], sizeof gx[0]));
    sg_blas_threads(was);
    sg_tensor_free(x), sg_tensor_free(w);
}
END_TEST

/* Inside a hold, deferred values are there for every reader: get, data,
 * store, copy, set (which must not be overwritten later), a mask read at
 * recording (where), detach, a backward; a reset drops what is pending. */
START_TEST(test_rows_deferred_values_are_read_right)
{
    int was = sg_blas_threads(0);
    sg_blas_threads(2);
    sg_tape *t = sg_tape_new();
    sg_tensor *a = uniform(t, 4, 8, 11);
    sg_tape_hold_transposes(t, true);
    sg_tensor *y = sg_add_scalar(t, a, 1.0);
    ck_assert_double_eq(sg_tensor_get(y, 5), (float)sg_tensor_get(a, 5) + 1.0f);
    sg_tensor *z = sg_scale(t, y, 2.0);
    ck_assert_double_eq(((float *)sg_tensor_data(z))[3], 2 * ((float)sg_tensor_get(a, 3) + 1.0f));
    sg_tensor *u = sg_neg(t, z);
    double v[32];
    sg_tensor_store(u, v);
    ck_assert_double_eq(v[7], -sg_tensor_get(z, 7));
    sg_tensor *s = sg_one_minus(t, u);
    sg_tensor_set(s, 0, 42.0);                       /* after s is computed, not before */
    sg_tape_hold_transposes(t, false);
    ck_assert_double_eq(sg_tensor_get(s, 0), 42.0);
    sg_tape_hold_transposes(t, true);
    sg_tensor *m = sg_add_scalar(t, sg_scale(t, a, 0.0), 1.0);   /* all ones, deferred */
    sg_tensor *wh = sg_where(t, m, a, sg_zeros(t, SG_F32, 2, (int[]){4, 8}));
    ck_assert_double_eq(sg_tensor_get(wh, 9), sg_tensor_get(a, 9));
    sg_tensor *d = sg_detach(t, sg_scale(t, a, 3.0));      /* copied at once */
    ck_assert_double_eq(sg_tensor_get(d, 6), 3.0f * (float)sg_tensor_get(a, 6));
    sg_tensor *c = sg_tanh(t, a), *dst = sg_zeros(t, SG_F32, 2, (int[]){4, 8});
    ck_assert_int_eq(sg_tensor_copy(dst, c), SG_OK);
    ck_assert_double_eq(sg_tensor_get(dst, 2), tanhf((float)sg_tensor_get(a, 2)));
    sg_tanh(t, a);                                    /* pending at the reset */
    sg_tape_reset(t);
    ck_assert_int_eq(t->defer.n, 0);
    sg_tape_free(t);
    sg_blas_threads(was);
}
END_TEST

/* A weight computed inside the hold, with as many rows as the batch (so its
 * op would join the batch's run), is whole before a product reads it: the
 * same values and gradients as outside a hold, to rounding (outside a hold
 * the product runs on oneDNN's matmul primitive, inside on its sgemm: the
 * two may round differently; a weight read before it is whole would be off
 * by far more). */
static void computed_weight(sg_tape *t, sg_tensor *x, sg_tensor *wp, sg_tensor *b, bool hold, float *out)
{
    sg_tape_reset(t);
    if (hold)
        sg_tape_hold_transposes(t, true);
    sg_tensor *h = sg_tanh(t, x), *w = sg_tanh(t, wp);     /* both deferred inside the hold */
    sg_tensor *y = sg_addmm(t, h, w, b, SG_TRANS_B);
    if (hold)
        sg_tape_hold_transposes(t, false);
    memcpy(out, sg_tensor_data(y), sg_tensor_size(y) * sizeof(float));
    ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, y))), SG_OK);
}

START_TEST(test_rows_computed_weight_is_whole)
{
    enum { R = 64, C = 300 };
    sg_rng rng;
    sg_rng_seed(&rng, 13);
    sg_tensor *x = sg_param_uniform(SG_F32, 2, (int[]){R, C}, -1, 1, &rng);
    sg_tensor *wp = sg_param_uniform(SG_F32, 2, (int[]){R, C}, -1, 1, &rng);
    sg_tensor *b = sg_param_uniform(SG_F32, 1, (int[]){R}, -1, 1, &rng);
    int was = sg_blas_threads(0);
    sg_blas_threads(2);
    sg_tape *t = sg_tape_new();
    float y[2][R * R], gw[2][R * C];
    for (int k = 0; k < 2; k++) {
        sg_param_zero_grad(x), sg_param_zero_grad(wp), sg_param_zero_grad(b);
        computed_weight(t, x, wp, b, k == 0, y[k]);    /* held first: no values left in the arena */
        memcpy(gw[k], sg_tensor_grad(wp), sizeof gw[k]);
    }
    for (int i = 0; i < R * R; i++)
        ck_assert_float_eq_tol(y[0][i], y[1][i], 1e-4f * (1 + fabsf(y[1][i])));
    for (int i = 0; i < R * C; i++)
        ck_assert_float_eq_tol(gw[0][i], gw[1][i], 1e-4f * (1 + fabsf(gw[1][i])));
    sg_blas_threads(was);
    sg_tape_free(t);
    sg_tensor_free(x), sg_tensor_free(wp), sg_tensor_free(b);
}
END_TEST

/* Recurrent layers: outputs, final states and every gradient the same bits
 * on 1 thread (no runs) and on 2 (runs split 4 / 5 rows). */
START_TEST(test_rows_layers_same_bits_on_1_and_2_threads)
{
    static const sg_cell_def *const cells[] = {&sg_lstm_cell, &sg_gru_reset_after_cell, &sg_gru_cell,
                                               &sg_rnn_tanh_cell};
    const sg_cell_def *def = cells[_i / 2];
    bool lean = _i % 2;
    enum { B = 9, T = 5, I = 40, H = 160 };
    int was = sg_blas_threads(0);
    sg_rng rng;
    sg_rng_seed(&rng, 21);
    sg_params *ps = sg_params_new();
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = 2;
    sg_rnn rnn;
    ck_assert_int_eq(sg_rnn_init(&rnn, def, ps, "", I, H, &o, SG_F32, &rng), SG_OK);
    sg_tensor *x = sg_param_uniform(SG_F32, 3, (int[]){B, T, I}, -1, 1, &rng);
    size_t ny = (size_t)B * T * H, nw = sg_params_numel(ps), nx = (size_t)B * T * I;
    float *got[2];
    long before = sg_rows_parallel_runs();
    for (int k = 0; k < 2; k++) {
        sg_blas_threads(k + 1);
        sg_params_zero_grad(ps);
        sg_param_zero_grad(x);
        sg_tape *t = sg_tape_new();
        sg_tape_keep_grads(t, !lean);
        sg_tensor *y = sg_rnn_forward(t, &rnn, x, NULL, NULL, NULL, NULL);
        ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
        float *v = got[k] = malloc((ny + nw + nx) * sizeof(float));
        memcpy(v, sg_tensor_data(y), ny * sizeof(float));
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, sg_mul(t, y, y))), SG_OK);
        v += ny;
        for (int p = 0; p < sg_params_count(ps); p++) {
            sg_tensor *w = sg_params_get(ps, p);
            memcpy(v, sg_tensor_grad(w), sg_tensor_size(w) * sizeof(float));
            v += sg_tensor_size(w);
        }
        memcpy(v, sg_tensor_grad(x), nx * sizeof(float));
        sg_tape_free(t);
    }
    ck_assert_int_gt(sg_rows_parallel_runs() - before, 0);
    ck_assert_msg(!memcmp(got[0], got[1], (ny + nw + nx) * sizeof(float)), "%s: 1 and 2 threads differ", def->name);
    free(got[0]), free(got[1]);
    sg_blas_threads(was);
    sg_tensor_free(x);
    sg_params_free(ps);
}
END_TEST

/* Several time steps to a run (nn/rnn.c, steps_per_run): a bidirectional
 * LSTM over 13 steps (two runs of 8 and 5 in each direction on 2 threads)
 * with sequences of different lengths and a trace of h_t, gradients not
 * kept, so each run's steps give back what they made only after the run.
 * Outputs, final states, every h_t of the trace and every parameter's
 * gradient: the same bits on 1 thread and on 2. */
START_TEST(test_rows_runs_of_several_steps)
{
    enum { B = 6, T = 13, I = 24, H = 32 };
    static const int lengths[B] = {13, 9, 13, 1, 8, 12};
    int was = sg_blas_threads(0);
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_params *ps = sg_params_new();
    sg_rnn_opts o = sg_rnn_defaults();
    o.bidirectional = true;
    sg_rnn rnn;
    ck_assert_int_eq(sg_rnn_init(&rnn, &sg_lstm_cell, ps, "", I, H, &o, SG_F32, &rng), SG_OK);
    sg_tensor *x = sg_param_uniform(SG_F32, 3, (int[]){B, T, I}, -1, 1, &rng);
    size_t ny = (size_t)B * T * 2 * H, ns = 2 * 2 * (size_t)B * H, nh = (size_t)T * B * H, nw = sg_params_numel(ps);
    size_t n = ny + ns + nh + nw;
    float *got[2];
    sg_tensor *trace[T];
    rnn.trace = trace;
    for (int k = 0; k < 2; k++) {
        sg_blas_threads(k + 1);
        sg_params_zero_grad(ps);
        sg_tape *t = sg_tape_new();
        sg_tape_keep_grads(t, false);
        sg_tensor *last[2];
        sg_tensor *y = sg_rnn_forward(t, &rnn, x, NULL, lengths, NULL, last);
        ck_assert_msg(y != NULL, "%s", sg_tape_errmsg(t));
        float *v = got[k] = malloc(n * sizeof(float));
        memcpy(v, sg_tensor_data(y), ny * sizeof(float)), v += ny;
        for (int j = 0; j < 2; j++)
            memcpy(v, sg_tensor_data(last[j]), ns / 2 * sizeof(float)), v += ns / 2;
        for (int s = 0; s < T; s++)
            memcpy(v, sg_tensor_data(trace[s]), (size_t)B * H * sizeof(float)), v += (size_t)B * H;
        /* the loss reads the final states too: their gradients flow back */
        sg_tensor *loss = sg_add(t, sg_sum_all(t, sg_mul(t, y, y)), sg_sum_all(t, last[1]));
        ck_assert_int_eq(sg_backward(t, loss), SG_OK);
        for (int p = 0; p < sg_params_count(ps); p++) {
            sg_tensor *w = sg_params_get(ps, p);
            memcpy(v, sg_tensor_grad(w), sg_tensor_size(w) * sizeof(float)), v += sg_tensor_size(w);
        }
        sg_tape_free(t);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[0][i] == got[1][i], "element %zu of %zu: %g on 1 thread, %g on 2", i, n, got[0][i],
                      got[1][i]);
    free(got[0]), free(got[1]);
    sg_blas_threads(was);
    sg_tensor_free(x);
    sg_params_free(ps);
}
END_TEST

/* Work outside the runs split into parts (sg_in_parts): an addmm's addend
 * (a bias row on every row, and a full one) copied in parts, a held W^T
 * written in parts, a bias row's gradient summed over rows in parts, and a
 * second backward zeroing a stale gradient in parts, on 1 thread and on 2. The
 * operands are small integers, so every result is exact whatever the
 * order: a part copied or zeroed wrong shows as a wrong value. */
START_TEST(test_rows_parts_outside_runs)
{
    enum { R = 600, K = 8, N = 512 };     /* C of 1.2 MB: above SG_PARTS_WORK */
    int was = sg_blas_threads(0);
    for (int threads = 1; threads <= 2; threads++) {
        sg_blas_threads(threads);
        long before = sg_rows_parallel_runs();
        sg_tape *t = sg_tape_new();
        sg_tensor *x = sg_zeros(t, SG_F32, 2, (int[]){R, K}), *w = sg_zeros(t, SG_F32, 2, (int[]){N, K});
        sg_tensor *b = sg_zeros(t, SG_F32, 1, (int[]){N}), *c = sg_zeros(t, SG_F32, 2, (int[]){R, N});
        for (int i = 0; i < R * K; i++)
            sg_tensor_set(x, (size_t)i, i % 5 - 2);
        for (int i = 0; i < N * K; i++)
            sg_tensor_set(w, (size_t)i, i % 3 - 1);
        for (int j = 0; j < N; j++)
            sg_tensor_set(b, (size_t)j, j % 7);
        for (int i = 0; i < R * N; i++)
            sg_tensor_set(c, (size_t)i, i % 11);
        sg_tensor_set_requires_grad(x, true);
        sg_tensor_set_requires_grad(b, true);
        sg_tensor *yb = sg_addmm(t, x, w, b, SG_TRANS_B), *yc = sg_addmm(t, x, w, c, SG_TRANS_B);
        /* x W^T on W^T held: W (N, K) transposed in parts (here W = x,
         * (R, K), so the product is x x^T, (R, R)) */
        sg_tape_hold_transposes(t, true);
        sg_tensor *xx = sg_matmul_ex(t, x, x, SG_TRANS_B);
        sg_tape_hold_transposes(t, false);
        for (int r = 0; r < R; r += 37)
            for (int j = 0; j < N; j += 13) {
                double p = 0;
                for (int k = 0; k < K; k++)
                    p += (double)((r * K + k) % 5 - 2) * ((j * K + k) % 3 - 1);
                ck_assert_double_eq(sg_tensor_get(yb, (size_t)r * N + j), p + j % 7);
                ck_assert_double_eq(sg_tensor_get(yc, (size_t)r * N + j), p + (r * N + j) % 11);
            }
        for (int r = 0; r < R; r += 41)
            for (int j = 0; j < R; j += 7) {
                double p = 0;
                for (int k = 0; k < K; k++)
                    p += (double)((r * K + k) % 5 - 2) * ((j * K + k) % 5 - 2);
                ck_assert_double_eq(sg_tensor_get(xx, (size_t)r * R + j), p);
            }
        /* b's gradient: the sum of yb's gradient (ones) over R rows, in parts */
        ck_assert_int_eq(sg_backward(t, sg_sum_all(t, yb)), SG_OK);
        for (int j = 0; j < N; j++)
            ck_assert_float_eq(((const float *)sg_tensor_grad(b))[j], R);
        /* x's gradient made by the first backward, stale at the second:
         * zeroed (in parts) before the second adds into it */
        sg_tensor *wide = sg_zeros(t, SG_F32, 2, (int[]){R, N * 64});
        sg_tensor_set_requires_grad(wide, true);
        sg_tensor *loss = sg_sum_all(t, sg_narrow(t, wide, 1, 0, N * 32));
        ck_assert_int_eq(sg_backward(t, loss), SG_OK);
        ck_assert_int_eq(sg_backward(t, loss), SG_OK);
        const float *g = sg_tensor_grad(wide);
        for (size_t i = 0; i < (size_t)R * N * 64; i += 4099)
            ck_assert_float_eq(g[i], i % ((size_t)N * 64) < (size_t)N * 32 ? 1 : 0);
        if (threads == 2)
            ck_assert_int_ge(sg_rows_parallel_runs() - before, 6);
        else
            ck_assert_int_eq(sg_rows_parallel_runs(), before);
        sg_tape_free(t);
    }
    sg_blas_threads(was);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/rows");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rows_joins);
    tcase_add_test(tc, test_rows_run_as_one_by_one);
    tcase_add_test(tc, test_rows_deferred_values_are_read_right);
    tcase_add_test(tc, test_rows_computed_weight_is_whole);
    if (strcmp(sg_gemm_backend(), "OpenBLAS")) {
        tcase_add_loop_test(tc, test_rows_layers_same_bits_on_1_and_2_threads, 0, 8);
        tcase_add_test(tc, test_rows_runs_of_several_steps);
        tcase_add_test(tc, test_rows_parts_outside_runs);
        tcase_add_test(tc, test_rows_no_part_of_one_row);
        tcase_add_test(tc, test_rows_parts_of_a_step);
    } else        /* as in test_ops_matmul: OpenBLAS's own products differ between 1 and 2 threads */
        printf("test_core_rows: layers' same bits on 1 and 2 threads, and work in parts: left out on OpenBLAS (no "
               "OpenMP, no runs)\n");
    suite_add_tcase(s, tc);
    return tu_run(s);
}
