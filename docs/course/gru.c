/*
 * Exercise gru: a GRU step and its backward.
 *                            Check: seqgrad course check gru gru.c
 *
 * The lecture's GRU (the reset gate scales h_prev before the recurrent
 * product), with the gates in the columns of Wx (E,3H), Wh (H,3H) and
 * b (3H), in the order z (update), r (reset), n (candidate):
 *
 *   z = sigmoid(x Wx_z + h_prev Wh_z + b_z)
 *   r = sigmoid(x Wx_r + h_prev Wh_r + b_r)
 *   n = tanh(x Wx_n + (r * h_prev) Wh_n + b_n)
 *   h_next = (1 - z) * h_prev + z * n
 *
 * (PyTorch's nn.GRU applies r after the product, r * (h_prev Wh_n + b_hn):
 * a different function, so a different gradient.)
 *
 * Backward, with upstream dh_next: h_prev reaches h_next by four paths
 * (directly through (1 - z), and through z, r and n), and each adds to
 * dh_prev. Wx_n..: column block j of Wx is Wx[i*3H + j*H + k].
 *
 * Write every output array completely; the weight gradients are written,
 * not added to.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gru_step_forward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next)
{
    /* TODO */
}

/* Write dx (B,E), dh_prev (B,H), dWx (E,3H), dWh (H,3H), db (3H). */
void gru_step_backward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, const double *dh_next,
    double *dx, double *dh_prev, double *dWx, double *dWh, double *db)
{
    /* TODO */
}
