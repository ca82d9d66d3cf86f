/*
 * manual_bptt.c - a hand-derived BPTT checked against the tape, as a student
 * checking a derivation would do it. The vanilla RNN of the lecture, in f64:
 *
 *   a_t = W h_{t-1} + U x_t,   h_t = tanh(a_t),   o_t = V h_t
 *   p_t = softmax(o_t),        J = sum_t -log p_t[y_t]
 *
 * Backward by hand, from t = T down to 1:
 *   do_t = p_t - onehot(y_t)                         dJ/do_t
 *   dh_t = V^T do_t + W^T da_{t+1}                   dJ/dh_t (da_{T+1} = 0)
 *   da_t = (1 - h_t^2) * dh_t                        through tanh
 *   dV  += do_t h_t^T,  dW += da_t h_{t-1}^T,  dU += da_t x_t^T
 *
 * The tape computes the same gradients from the forward ops alone; the
 * comparison helper scores each parameter and each dJ/dh_t, element by
 * element. Exit status 0 only if all agree to the default tolerance (1e-7
 * relative). Vectors are rows here: W h is h W^T.
 */
#include <math.h>
#include <stdio.h>

#include <seqgrad/seqgrad.h>

enum { K = 4, D = 5, T = 6 };     /* inputs one-hot over K symbols, hidden D, steps T */

static const int xs[T] = {0, 2, 1, 3, 3, 0}, ys[T] = {2, 1, 3, 3, 0, 1};

int main(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 2024);
    sg_tensor *W = sg_param_randn(SG_F64, 2, (int[]){D, D}, 0.5, &rng);   /* recurrent */
    sg_tensor *U = sg_param_randn(SG_F64, 2, (int[]){D, K}, 0.5, &rng);   /* input */
    sg_tensor *V = sg_param_randn(SG_F64, 2, (int[]){K, D}, 0.5, &rng);   /* output */
    const double *w = sg_tensor_data(W), *u = sg_tensor_data(U), *v = sg_tensor_data(V);

    /* ---- the tape's gradients ---------------------------------------------- */
    sg_tape *t = sg_tape_new();
    sg_tensor *h[T + 1], *J = NULL;
    h[0] = sg_zeros(t, SG_F64, 2, (int[]){1, D});
    for (int s = 0; s < T; s++) {
        double onehot[K] = {0};
        onehot[xs[s]] = 1;
        sg_tensor *x = sg_tensor_from_f64(t, SG_F64, 2, (int[]){1, K}, onehot);
        sg_tensor *a = sg_add(t, sg_matmul_ex(t, h[s], W, SG_TRANS_B), sg_matmul_ex(t, x, U, SG_TRANS_B));
        h[s + 1] = sg_tanh(t, a);
        sg_tensor *o = sg_matmul_ex(t, h[s + 1], V, SG_TRANS_B);
        sg_loss_opts sum = {SG_SUM, -100};
        sg_tensor *j = sg_cross_entropy(t, o, &ys[s], &sum);
        J = J ? sg_add(t, J, j) : j;
    }
    if (sg_backward(t, J) != SG_OK) {
        fprintf(stderr, "manual_bptt: %s\n", sg_tape_errmsg(t));
        return 1;
    }

    /* ---- the same by hand -------------------------------------------------- */
    double hv[T + 1][D] = {{0}}, p[T][K];
    for (int s = 0; s < T; s++) {              /* forward again, in plain C */
        for (int i = 0; i < D; i++) {
            double a = u[i * K + xs[s]];
            for (int j = 0; j < D; j++)
                a += w[i * D + j] * hv[s][j];
            hv[s + 1][i] = tanh(a);
        }
        double m = -INFINITY, z = 0;
        for (int k = 0; k < K; k++) {
            p[s][k] = 0;
            for (int i = 0; i < D; i++)
                p[s][k] += v[k * D + i] * hv[s + 1][i];
            m = fmax(m, p[s][k]);
        }
        for (int k = 0; k < K; k++)
            z += p[s][k] = exp(p[s][k] - m);
        for (int k = 0; k < K; k++)
            p[s][k] /= z;
    }
    double dW[D * D] = {0}, dU[D * K] = {0}, dV[K * D] = {0}, dh[T][D], da_next[D] = {0};
    for (int s = T - 1; s >= 0; s--) {
        double dout[K], da[D];
        for (int k = 0; k < K; k++)
            dout[k] = p[s][k] - (k == ys[s]);                                 /* do_t */
        for (int i = 0; i < D; i++) {
            dh[s][i] = 0;
            for (int k = 0; k < K; k++)
                dh[s][i] += v[k * D + i] * dout[k];                           /* V^T do_t */
            for (int j = 0; j < D; j++)
                dh[s][i] += w[j * D + i] * da_next[j];                        /* W^T da_{t+1} */
        }
        for (int i = 0; i < D; i++)
            da[i] = (1 - hv[s + 1][i] * hv[s + 1][i]) * dh[s][i];           /* tanh' */
        for (int k = 0; k < K; k++)
            for (int i = 0; i < D; i++)
                dV[k * D + i] += dout[k] * hv[s + 1][i];
        for (int i = 0; i < D; i++) {
            for (int j = 0; j < D; j++)
                dW[i * D + j] += da[i] * hv[s][j];
            dU[i * K + xs[s]] += da[i];
            da_next[i] = da[i];
        }
    }

    /* ---- compare: per parameter, then dJ/dh_t per time step ----------------- */
    int bad = 0;
    sg_gradcheck_entry e, steps[T];
    sg_grad_compare_header(stdout);
    struct { const char *name; const sg_tensor *p; const double *g; } params[] = {{"dW", W, dW}, {"dU", U, dU}, {"dV", V, dV}};
    for (int k = 0; k < 3; k++) {
        bad += !sg_grad_compare_tensor(params[k].g, params[k].p, NULL, &e);
        sg_grad_compare_print(params[k].name, &e, "i,j", stdout);
    }
    for (int s = 0; s < T; s++)
        sg_grad_compare_tensor(dh[s], h[s + 1], NULL, &steps[s]);   /* the tape keeps dJ/dh_t */
    bad += sg_grad_compare_steps_print("dh", steps, T, 1, "b,i", stdout);
    printf("%s\n", bad ? "the hand-written gradient disagrees with the tape" : "every gradient agrees with the tape");
    sg_tape_free(t);
    sg_tensor_free(W), sg_tensor_free(U), sg_tensor_free(V);
    return bad ? 1 : 0;
}
