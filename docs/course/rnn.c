/*
 * Exercise rnn: a vanilla RNN, one step and a whole sequence, forward and
 * backward by hand.          Check: seqgrad course check rnn rnn.c
 *
 * The lecture's recurrence (rows are examples, so W x becomes x W):
 *
 *   a_t = x_t Wx + h_{t-1} Wh + b        h_t = tanh(a_t)
 *
 * Shapes (row-major double arrays): x (B,E), h (B,H), Wx (E,H), Wh (H,H),
 * b (H); a sequence x is (B,T,E) and h is (B,T,H): element [n][t][i] is at
 * (n*T + t)*E + i.
 *
 * Backward, for one step with upstream dh_next = dL/dh_t:
 *
 *   da = dh_next * (1 - h_t^2)                  (tanh' = 1 - tanh^2)
 *   dx = da Wx^T      dh_prev = da Wh^T         (the lecture's diag(f') U)
 *   dWx = x^T da      dWh = h_{t-1}^T da        db = sum over rows of da
 *
 * Through time (BPTT), the gradient reaching h_t is the loss's own dh[t]
 * plus what step t+1 sent back as its dh_prev; weight gradients are summed
 * over the steps, and dh0 is what step 0 sends back.
 *
 * Write every output array completely (the checker fills them with NaN
 * first, and an output left NaN reads "not written"). The step functions
 * write their weight gradients; they do not add to them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* h_next (B,H) = tanh(x Wx + h_prev Wh + b) */
void rnn_step_forward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next)
{
    /* TODO */
}

/* Given the forward's inputs, its output h_next and dh_next = dL/dh_next,
 * write dx (B,E), dh_prev (B,H), dWx (E,H), dWh (H,H), db (H). */
void rnn_step_backward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *h_next, const double *dh_next,
    double *dx, double *dh_prev, double *dWx, double *dWh, double *db)
{
    /* TODO */
}

/* h (B,T,H): the steps t = 0 .. T-1 from h0 (B,H). */
void rnn_forward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, double *h)
{
    /* TODO */
}

/* BPTT. h is rnn_forward's output, dh (B,T,H) the loss's gradient on each
 * h_t. Write dx (B,T,E), dh0 (B,H), dWx, dWh, db. (b is there so that
 * every cell's backward has the same signature; the RNN's does not need it.) */
void rnn_backward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,
    double *dx, double *dh0, double *dWx, double *dWh, double *db)
{
    /* TODO */
}
