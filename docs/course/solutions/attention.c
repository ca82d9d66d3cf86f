/*
 * attention.c - a solution of exercise attention (see ../attention.c).
 * Additive (Bahdanau) attention of a query q (B,D) over S encoder states
 * k (B,S,E), which serve as keys and values:
 *   u_j = tanh(q Wq + k_j Wk)   (A)      e_j = v . u_j
 *   a = softmax(e)  (S)                  context = sum_j a_j k_j   (E)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* u (S,A) and a (S) of one row n */
static void scores(int n, int S, int D, int E, int A, const double *q, const double *k,
    const double *Wq, const double *Wk, const double *v, double *u, double *a)
{
    double m = -INFINITY, z = 0;
    for (int j = 0; j < S; j++) {
        double e = 0;
        for (int c = 0; c < A; c++) {
            double s = 0;
            for (int i = 0; i < D; i++)
                s += q[n * D + i] * Wq[i * A + c];
            for (int i = 0; i < E; i++)
                s += k[((size_t)n * S + j) * E + i] * Wk[i * A + c];
            u[j * A + c] = tanh(s);
            e += v[c] * u[j * A + c];
        }
        a[j] = e;
        m = fmax(m, e);
    }
    for (int j = 0; j < S; j++)
        z += a[j] = exp(a[j] - m);
    for (int j = 0; j < S; j++)
        a[j] /= z;
}

void attention_forward(int B, int S, int D, int E, int A, const double *q, const double *k,
    const double *Wq, const double *Wk, const double *v, double *context, double *weights)
{
    double *u = malloc(sizeof *u * S * A);
    for (int n = 0; n < B; n++) {
        scores(n, S, D, E, A, q, k, Wq, Wk, v, u, weights + n * S);
        for (int i = 0; i < E; i++) {
            double c = 0;
            for (int j = 0; j < S; j++)
                c += weights[n * S + j] * k[((size_t)n * S + j) * E + i];
            context[n * E + i] = c;
        }
    }
    free(u);
}

/* From dcontext (B,E):
 *   da_j = dcontext . k_j        dk_j = a_j dcontext  (+ the score path)
 *   de_j = a_j (da_j - sum_l a_l da_l)          (softmax's backward)
 *   dv += de_j u_j     du_j = de_j v     ds_j = du_j (1 - u_j^2)
 *   dWq += q^T ds_j    dq += ds_j Wq^T   dWk += k_j^T ds_j   dk_j += ds_j Wk^T */
void attention_backward(int B, int S, int D, int E, int A, const double *q, const double *k,
    const double *Wq, const double *Wk, const double *v, const double *dcontext,
    double *dq, double *dk, double *dWq, double *dWk, double *dv)
{
    double *u = malloc(sizeof *u * S * A), *a = malloc(sizeof *a * S), *da = malloc(sizeof *da * S);
    double *ds = malloc(sizeof *ds * A);
    memset(dq, 0, sizeof *dq * B * D);
    memset(dk, 0, sizeof *dk * B * S * E);
    memset(dWq, 0, sizeof *dWq * D * A);
    memset(dWk, 0, sizeof *dWk * E * A);
    memset(dv, 0, sizeof *dv * A);
    for (int n = 0; n < B; n++) {
        scores(n, S, D, E, A, q, k, Wq, Wk, v, u, a);
        const double *dc = dcontext + n * E;
        double dot = 0;
        for (int j = 0; j < S; j++) {
            const double *kj = k + ((size_t)n * S + j) * E;
            double *dkj = dk + ((size_t)n * S + j) * E;
            da[j] = 0;
            for (int i = 0; i < E; i++) {
                da[j] += dc[i] * kj[i];
                dkj[i] += a[j] * dc[i];
            }
            dot += a[j] * da[j];
        }
        for (int j = 0; j < S; j++) {
            const double *kj = k + ((size_t)n * S + j) * E;
            double *dkj = dk + ((size_t)n * S + j) * E;
            double de = a[j] * (da[j] - dot);
            for (int c = 0; c < A; c++) {
                dv[c] += de * u[j * A + c];
                ds[c] = de * v[c] * (1 - u[j * A + c] * u[j * A + c]);
            }
            for (int c = 0; c < A; c++) {
                for (int i = 0; i < D; i++) {
                    dWq[i * A + c] += q[n * D + i] * ds[c];
                    dq[n * D + i] += ds[c] * Wq[i * A + c];
                }
                for (int i = 0; i < E; i++) {
                    dWk[i * A + c] += kj[i] * ds[c];
                    dkj[i] += ds[c] * Wk[i * A + c];
                }
            }
        }
    }
    free(u), free(a), free(da), free(ds);
}
