/*
 * rnn.c - a solution of exercise rnn (see ../rnn.c for the task).
 * Arrays are row-major; rows are examples: x (B,E), h (B,H), Wx (E,H),
 * Wh (H,H), b (H), sequences (B,T,.).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* h_next = tanh(x Wx + h_prev Wh + b) */
void rnn_step_forward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next)
{
    for (int n = 0; n < B; n++)
        for (int j = 0; j < H; j++) {
            double a = b[j];
            for (int i = 0; i < E; i++)
                a += x[n * E + i] * Wx[i * H + j];
            for (int i = 0; i < H; i++)
                a += h_prev[n * H + i] * Wh[i * H + j];
            h_next[n * H + j] = tanh(a);
        }
}

/* da = dh_next * (1 - h_next^2); dx = da Wx^T; dh_prev = da Wh^T;
 * dWx = x^T da; dWh = h_prev^T da; db = sum over the batch of da */
void rnn_step_backward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *h_next, const double *dh_next,
    double *dx, double *dh_prev, double *dWx, double *dWh, double *db)
{
    double *da = malloc(sizeof *da * B * H);
    for (int k = 0; k < B * H; k++)
        da[k] = dh_next[k] * (1 - h_next[k] * h_next[k]);
    memset(dWx, 0, sizeof *dWx * E * H);
    memset(dWh, 0, sizeof *dWh * H * H);
    memset(db, 0, sizeof *db * H);
    for (int n = 0; n < B; n++) {
        for (int i = 0; i < E; i++) {
            double s = 0;
            for (int j = 0; j < H; j++)
                s += da[n * H + j] * Wx[i * H + j];
            dx[n * E + i] = s;
        }
        for (int i = 0; i < H; i++) {
            double s = 0;
            for (int j = 0; j < H; j++)
                s += da[n * H + j] * Wh[i * H + j];
            dh_prev[n * H + i] = s;
        }
        for (int j = 0; j < H; j++) {
            for (int i = 0; i < E; i++)
                dWx[i * H + j] += x[n * E + i] * da[n * H + j];
            for (int i = 0; i < H; i++)
                dWh[i * H + j] += h_prev[n * H + i] * da[n * H + j];
            db[j] += da[n * H + j];
        }
    }
    free(da);
}

/* h_t = tanh(x_t Wx + h_{t-1} Wh + b), t = 0 .. T-1, from h0 */
void rnn_forward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, double *h)
{
    double *xt = malloc(sizeof *xt * B * E), *hp = malloc(sizeof *hp * B * H), *hn = malloc(sizeof *hn * B * H);
    memcpy(hp, h0, sizeof *hp * B * H);
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < B; n++)
            memcpy(xt + n * E, x + ((size_t)n * T + t) * E, sizeof *xt * E);
        rnn_step_forward(B, E, H, xt, hp, Wx, Wh, b, hn);
        for (int n = 0; n < B; n++)
            memcpy(h + ((size_t)n * T + t) * H, hn + n * H, sizeof *hn * H);
        memcpy(hp, hn, sizeof *hp * B * H);
    }
    free(xt), free(hp), free(hn);
}

/* BPTT: from t = T-1 down to 0, the gradient reaching h_t is its own dh_t
 * plus what step t+1 sent back (dh_prev of that step); the weight gradients
 * add up over the steps. */
void rnn_backward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,
    double *dx, double *dh0, double *dWx, double *dWh, double *db)
{
    double *xt = malloc(sizeof *xt * B * E), *hp = malloc(sizeof *hp * B * H), *hn = malloc(sizeof *hn * B * H);
    double *g = calloc((size_t)B * H, sizeof *g), *dxt = malloc(sizeof *dxt * B * E);
    double *sWx = malloc(sizeof *sWx * E * H), *sWh = malloc(sizeof *sWh * H * H), *sb = malloc(sizeof *sb * H);
    memset(dWx, 0, sizeof *dWx * E * H);
    memset(dWh, 0, sizeof *dWh * H * H);
    memset(db, 0, sizeof *db * H);
    for (int t = T - 1; t >= 0; t--) {
        for (int n = 0; n < B; n++) {
            memcpy(xt + n * E, x + ((size_t)n * T + t) * E, sizeof *xt * E);
            memcpy(hn + n * H, h + ((size_t)n * T + t) * H, sizeof *hn * H);
            if (t > 0)
                memcpy(hp + n * H, h + ((size_t)n * T + t - 1) * H, sizeof *hp * H);
            else
                memcpy(hp + n * H, h0 + n * H, sizeof *hp * H);
            for (int j = 0; j < H; j++)
                g[n * H + j] += dh[((size_t)n * T + t) * H + j];
        }
        rnn_step_backward(B, E, H, xt, hp, Wx, Wh, hn, g, dxt, g, sWx, sWh, sb);
        for (int n = 0; n < B; n++)
            memcpy(dx + ((size_t)n * T + t) * E, dxt + n * E, sizeof *dxt * E);
        for (int k = 0; k < E * H; k++) dWx[k] += sWx[k];
        for (int k = 0; k < H * H; k++) dWh[k] += sWh[k];
        for (int k = 0; k < H; k++) db[k] += sb[k];
    }
    memcpy(dh0, g, sizeof *g * B * H);
    free(xt), free(hp), free(hn), free(g), free(dxt), free(sWx), free(sWh), free(sb);
}
