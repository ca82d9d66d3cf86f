/*
 * Exercise lstm: an LSTM step and its backward, then a sequence and BPTT.
 *                            Check: seqgrad course check lstm lstm.c
 *
 * The lecture's LSTM, with the four gates side by side in the columns of
 * Wx (E,4H), Wh (H,4H) and b (4H), in PyTorch's order i, f, g, o:
 *
 *   [a_i a_f a_g a_o] = x Wx + h_prev Wh + b            (B,4H)
 *   i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
 *   c_next = f * c_prev + i * g
 *   h_next = o * tanh(c_next)
 *
 * Backward, with upstream dh_next and dc_next:
 *
 *   dc = dc_next + dh_next * o * (1 - tanh(c_next)^2)
 *   do = dh_next * tanh(c_next)   di = dc * g   dg = dc * i   df = dc * c_prev
 *   dc_prev = dc * f
 *   da_i = di i (1 - i)  da_f = df f (1 - f)  da_g = dg (1 - g^2)  da_o = do o (1 - o)
 *   then da (B,4H) gives dx, dh_prev, dWx, dWh, db as in the vanilla RNN.
 *
 * The cell state is the "direct path" of the lecture: dc_prev = dc * f, no
 * product with a weight matrix.
 *
 * Sequences: x (B,T,E), h (B,T,H), element [n][t][i] at (n*T + t)*W + i;
 * c0 is zero; only h is returned, and dh (B,T,H) is the loss's gradient
 * on each h_t (no gradient arrives on c_t from outside).
 *
 * Write every output array completely; the step functions write their
 * weight gradients, they do not add to them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

void lstm_step_forward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next, double *c_next)
{
    /* TODO */
}

/* Recompute what you need of the forward from its inputs. Write dx (B,E),
 * dh_prev (B,H), dc_prev (B,H), dWx (E,4H), dWh (H,4H), db (4H). */
void lstm_step_backward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,
    const double *Wx, const double *Wh, const double *b, const double *dh_next, const double *dc_next,
    double *dx, double *dh_prev, double *dc_prev, double *dWx, double *dWh, double *db)
{
    /* TODO */
}

/* h (B,T,H) from h0 (B,H) and c0 = 0. */
void lstm_forward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, double *h)
{
    /* TODO */
}

/* BPTT. h is lstm_forward's output (the cell states you recompute), dh
 * (B,T,H) the loss's gradient on each h_t. Write dx (B,T,E), dh0 (B,H),
 * dWx, dWh, db. */
void lstm_backward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,
    double *dx, double *dh0, double *dWx, double *dWh, double *db)
{
    /* TODO */
}
