/*
 * gru.c - a solution of exercise gru (see ../gru.c for the task). The
 * lecture's GRU: the reset gate scales h_prev before the recurrent product.
 * Columns of Wx (E,3H), Wh (H,3H) and b (3H): z (update), r (reset), n
 * (candidate).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double a) { return 1 / (1 + exp(-a)); }

/* z, r, n and r*h for each row: q (B,3H) holds z r n, rh (B,H) */
static void forward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *q, double *rh)
{
    int G = 3 * H;
    for (int s = 0; s < B; s++) {
        for (int j = 0; j < 2 * H; j++) {            /* z and r */
            double a = b[j];
            for (int i = 0; i < E; i++)
                a += x[s * E + i] * Wx[i * G + j];
            for (int i = 0; i < H; i++)
                a += h_prev[s * H + i] * Wh[i * G + j];
            q[s * G + j] = sigmoid(a);
        }
        for (int i = 0; i < H; i++)
            rh[s * H + i] = q[s * G + H + i] * h_prev[s * H + i];
        for (int j = 2 * H; j < G; j++) {            /* n */
            double a = b[j];
            for (int i = 0; i < E; i++)
                a += x[s * E + i] * Wx[i * G + j];
            for (int i = 0; i < H; i++)
                a += rh[s * H + i] * Wh[i * G + j];
            q[s * G + j] = tanh(a);
        }
    }
}

/* h_next = (1 - z) h_prev + z n */
void gru_step_forward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next)
{
    double *q = malloc(sizeof *q * B * 3 * H), *rh = malloc(sizeof *rh * B * H);
    forward(B, E, H, x, h_prev, Wx, Wh, b, q, rh);
    for (int s = 0; s < B; s++)
        for (int j = 0; j < H; j++) {
            double z = q[s * 3 * H + j], n = q[s * 3 * H + 2 * H + j];
            h_next[s * H + j] = (1 - z) * h_prev[s * H + j] + z * n;
        }
    free(q), free(rh);
}

/*   dz = dh (n - h_prev)     dn = dh z       dh_prev = dh (1 - z) + ...
 *   dan = dn (1 - n^2)       d(rh) = dan Wh_n^T     dr = d(rh) h_prev
 *   dh_prev += d(rh) r       daz = dz z (1 - z)     dar = dr r (1 - r)
 *   dh_prev += daz Wh_z^T + dar Wh_r^T
 *   dWh_n = (r h)^T dan, dWh_z = h^T daz, dWh_r = h^T dar; dx = da Wx^T */
void gru_step_backward(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, const double *dh_next,
    double *dx, double *dh_prev, double *dWx, double *dWh, double *db)
{
    int G = 3 * H;
    double *q = malloc(sizeof *q * B * G), *rh = malloc(sizeof *rh * B * H), *da = malloc(sizeof *da * B * G);
    forward(B, E, H, x, h_prev, Wx, Wh, b, q, rh);
    for (int s = 0; s < B; s++) {
        const double *g = q + s * G;
        double *d = da + s * G;
        for (int j = 0; j < H; j++) {
            double z = g[j], n = g[2 * H + j], dh = dh_next[s * H + j];
            d[j] = dh * (n - h_prev[s * H + j]) * z * (1 - z);
            d[2 * H + j] = dh * z * (1 - n * n);
            dh_prev[s * H + j] = dh * (1 - z);
        }
        for (int i = 0; i < H; i++) {
            double acc = 0;
            for (int j = 0; j < H; j++)
                acc += d[2 * H + j] * Wh[i * G + 2 * H + j];
            double r = g[H + i];
            d[H + i] = acc * h_prev[s * H + i] * r * (1 - r);
            dh_prev[s * H + i] += acc * r;
        }
        for (int i = 0; i < H; i++)
            for (int j = 0; j < 2 * H; j++)
                dh_prev[s * H + i] += d[j] * Wh[i * G + j];
        for (int i = 0; i < E; i++) {
            double acc = 0;
            for (int j = 0; j < G; j++)
                acc += d[j] * Wx[i * G + j];
            dx[s * E + i] = acc;
        }
    }
    memset(dWx, 0, sizeof *dWx * E * G);
    memset(dWh, 0, sizeof *dWh * H * G);
    memset(db, 0, sizeof *db * G);
    for (int s = 0; s < B; s++)
        for (int j = 0; j < G; j++) {
            double d = da[s * G + j];
            for (int i = 0; i < E; i++)
                dWx[i * G + j] += x[s * E + i] * d;
            for (int i = 0; i < H; i++)      /* z and r see h, n sees r * h */
                dWh[i * G + j] += (j < 2 * H ? h_prev[s * H + i] : rh[s * H + i]) * d;
            db[j] += d;
        }
    free(q), free(rh), free(da);
}
