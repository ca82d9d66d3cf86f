/*
 * lstm.c - a solution of exercise lstm (see ../lstm.c for the task).
 * Gates in the columns of Wx (E,4H), Wh (H,4H) and b (4H), in PyTorch's
 * order: i (input), f (forget), g (candidate), o (output).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double a) { return 1 / (1 + exp(-a)); }

/* the gates after their nonlinearity, gate (B,4H): i f g o */
static void gates(int B, int E, int H, const double *x, const double *h_prev,
    const double *Wx, const double *Wh, const double *b, double *gate)
{
    for (int n = 0; n < B; n++)
        for (int j = 0; j < 4 * H; j++) {
            double a = b[j];
            for (int i = 0; i < E; i++)
                a += x[n * E + i] * Wx[i * 4 * H + j];
            for (int i = 0; i < H; i++)
                a += h_prev[n * H + i] * Wh[i * 4 * H + j];
            gate[n * 4 * H + j] = j / H == 2 ? tanh(a) : sigmoid(a);
        }
}

/* c_next = f c_prev + i g;  h_next = o tanh(c_next) */
void lstm_step_forward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,
    const double *Wx, const double *Wh, const double *b, double *h_next, double *c_next)
{
    double *gate = malloc(sizeof *gate * B * 4 * H);
    gates(B, E, H, x, h_prev, Wx, Wh, b, gate);
    for (int n = 0; n < B; n++)
        for (int j = 0; j < H; j++) {
            const double *q = gate + n * 4 * H;
            double c = q[H + j] * c_prev[n * H + j] + q[j] * q[2 * H + j];
            c_next[n * H + j] = c;
            h_next[n * H + j] = q[3 * H + j] * tanh(c);
        }
    free(gate);
}

/* From the upstream dh_next and dc_next:
 *   dc = dc_next + dh_next o (1 - tanh(c)^2)     (c reaches h through tanh)
 *   do = dh_next tanh(c)    di = dc g    dg = dc i    df = dc c_prev
 *   dc_prev = dc f
 * then through the nonlinearities (sigmoid' = s (1 - s), tanh' = 1 - t^2)
 * to the pre-activations da (B,4H), and da -> dx, dh_prev, dWx, dWh, db as
 * in the vanilla RNN. */
void lstm_step_backward(int B, int E, int H, const double *x, const double *h_prev, const double *c_prev,
    const double *Wx, const double *Wh, const double *b, const double *dh_next, const double *dc_next,
    double *dx, double *dh_prev, double *dc_prev, double *dWx, double *dWh, double *db)
{
    int G = 4 * H;
    double *gate = malloc(sizeof *gate * B * G), *da = malloc(sizeof *da * B * G);
    gates(B, E, H, x, h_prev, Wx, Wh, b, gate);
    for (int n = 0; n < B; n++)
        for (int j = 0; j < H; j++) {
            const double *q = gate + n * G;
            double i = q[j], f = q[H + j], g = q[2 * H + j], o = q[3 * H + j];
            double c = f * c_prev[n * H + j] + i * g, tc = tanh(c);
            double dh = dh_next[n * H + j];
            double dc = dc_next[n * H + j] + dh * o * (1 - tc * tc);
            double *d = da + n * G;
            d[j] = dc * g * i * (1 - i);
            d[H + j] = dc * c_prev[n * H + j] * f * (1 - f);
            d[2 * H + j] = dc * i * (1 - g * g);
            d[3 * H + j] = dh * tc * o * (1 - o);
            dc_prev[n * H + j] = dc * f;
        }
    memset(dWx, 0, sizeof *dWx * E * G);
    memset(dWh, 0, sizeof *dWh * H * G);
    memset(db, 0, sizeof *db * G);
    for (int n = 0; n < B; n++) {
        for (int i = 0; i < E; i++) {
            double s = 0;
            for (int j = 0; j < G; j++)
                s += da[n * G + j] * Wx[i * G + j];
            dx[n * E + i] = s;
        }
        for (int i = 0; i < H; i++) {
            double s = 0;
            for (int j = 0; j < G; j++)
                s += da[n * G + j] * Wh[i * G + j];
            dh_prev[n * H + i] = s;
        }
        for (int j = 0; j < G; j++) {
            for (int i = 0; i < E; i++)
                dWx[i * G + j] += x[n * E + i] * da[n * G + j];
            for (int i = 0; i < H; i++)
                dWh[i * G + j] += h_prev[n * H + i] * da[n * G + j];
            db[j] += da[n * G + j];
        }
    }
    free(gate), free(da);
}

/* copies step t of a (B,T,W) sequence into a (B,W) array, or back */
static void take(int B, int T, int W, int t, const double *seq, double *step)
{
    for (int n = 0; n < B; n++)
        memcpy(step + n * W, seq + ((size_t)n * T + t) * W, sizeof *step * W);
}

static void put(int B, int T, int W, int t, const double *step, double *seq)
{
    for (int n = 0; n < B; n++)
        memcpy(seq + ((size_t)n * T + t) * W, step + n * W, sizeof *step * W);
}

/* runs the steps from h0 and c0 = 0, keeping every c_t in cs (B,T,H) */
static void run(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, double *h, double *cs)
{
    double *xt = malloc(sizeof *xt * B * E), *hp = malloc(sizeof *hp * B * H), *cp = calloc((size_t)B * H, sizeof *cp);
    double *hn = malloc(sizeof *hn * B * H), *cn = malloc(sizeof *cn * B * H);
    memcpy(hp, h0, sizeof *hp * B * H);
    for (int t = 0; t < T; t++) {
        take(B, T, E, t, x, xt);
        lstm_step_forward(B, E, H, xt, hp, cp, Wx, Wh, b, hn, cn);
        put(B, T, H, t, hn, h);
        put(B, T, H, t, cn, cs);
        memcpy(hp, hn, sizeof *hp * B * H);
        memcpy(cp, cn, sizeof *cp * B * H);
    }
    free(xt), free(hp), free(cp), free(hn), free(cn);
}

void lstm_forward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, double *h)
{
    double *cs = malloc(sizeof *cs * B * T * H);
    run(B, T, E, H, x, h0, Wx, Wh, b, h, cs);
    free(cs);
}

/* BPTT: two gradients travel back in time, dh (plus each step's own dh_t)
 * and dc; the weight gradients add up over the steps. */
void lstm_backward(int B, int T, int E, int H, const double *x, const double *h0,
    const double *Wx, const double *Wh, const double *b, const double *h, const double *dh,
    double *dx, double *dh0, double *dWx, double *dWh, double *db)
{
    int G = 4 * H;
    double *hs = malloc(sizeof *hs * B * T * H), *cs = malloc(sizeof *cs * B * T * H);
    double *xt = malloc(sizeof *xt * B * E), *hp = malloc(sizeof *hp * B * H), *cp = malloc(sizeof *cp * B * H);
    double *gh = calloc((size_t)B * H, sizeof *gh), *gc = calloc((size_t)B * H, sizeof *gc);
    double *dxt = malloc(sizeof *dxt * B * E), *dhp = malloc(sizeof *dhp * B * H), *dcp = malloc(sizeof *dcp * B * H);
    double *sWx = malloc(sizeof *sWx * E * G), *sWh = malloc(sizeof *sWh * H * G), *sb = malloc(sizeof *sb * G);
    run(B, T, E, H, x, h0, Wx, Wh, b, hs, cs);    /* the cell states (and h again) */
    memset(dWx, 0, sizeof *dWx * E * G);
    memset(dWh, 0, sizeof *dWh * H * G);
    memset(db, 0, sizeof *db * G);
    for (int t = T - 1; t >= 0; t--) {
        take(B, T, E, t, x, xt);
        if (t > 0) {
            take(B, T, H, t - 1, hs, hp);
            take(B, T, H, t - 1, cs, cp);
        } else {
            memcpy(hp, h0, sizeof *hp * B * H);
            memset(cp, 0, sizeof *cp * B * H);
        }
        for (int n = 0; n < B; n++)
            for (int j = 0; j < H; j++)
                gh[n * H + j] += dh[((size_t)n * T + t) * H + j];
        lstm_step_backward(B, E, H, xt, hp, cp, Wx, Wh, b, gh, gc, dxt, dhp, dcp, sWx, sWh, sb);
        put(B, T, E, t, dxt, dx);
        memcpy(gh, dhp, sizeof *gh * B * H);
        memcpy(gc, dcp, sizeof *gc * B * H);
        for (int k = 0; k < E * G; k++) dWx[k] += sWx[k];
        for (int k = 0; k < H * G; k++) dWh[k] += sWh[k];
        for (int k = 0; k < G; k++) db[k] += sb[k];
    }
    memcpy(dh0, gh, sizeof *gh * B * H);
    free(hs), free(cs), free(xt), free(hp), free(cp), free(gh), free(gc), free(dxt), free(dhp), free(dcp);
    free(sWx), free(sWh), free(sb);
}
