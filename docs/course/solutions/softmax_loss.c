/*
 * softmax_loss.c - a solution of exercise softmax_loss (see ../softmax_loss.c).
 *   L = -(1/B) sum_{b,t} mask[b,t] log p[b,t,y[b,t]],  p = softmax(x[b,t,:])
 *   dL/dx[b,t,:] = mask[b,t] (p[b,t,:] - onehot(y[b,t])) / B
 */
#include <math.h>

double temporal_softmax_loss(int B, int T, int V, const double *x, const int *y, const int *mask,
    double *dx)
{
    double L = 0;
    for (int r = 0; r < B * T; r++) {
        const double *s = x + (long)r * V;
        double *d = dx + (long)r * V, m = -INFINITY, z = 0;
        for (int c = 0; c < V; c++)
            m = fmax(m, s[c]);
        for (int c = 0; c < V; c++)
            z += exp(s[c] - m);
        double logz = m + log(z);                  /* log sum_c e^{s_c}, without overflow */
        if (mask[r])
            L -= s[y[r]] - logz;
        for (int c = 0; c < V; c++)
            d[c] = mask[r] ? (exp(s[c] - logz) - (c == y[r])) / B : 0;
    }
    return L / B;
}
