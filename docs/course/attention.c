/*
 * Exercise attention: additive (Bahdanau) attention and its backward.
 *                            Check: seqgrad course check attention attention.c
 *
 * The lecture's Bahdanau attention: a query q (the decoder state, (B,D))
 * scores each of S encoder states k_j ((B,S,E): keys and values both) with
 * a small network, and the context is the weighted average of the states:
 *
 *   u_j = tanh(q Wq + k_j Wk)        Wq (D,A), Wk (E,A), u_j (A)
 *   e_j = v . u_j                    v (A): the energy of state j
 *   a = softmax(e)                   weights (B,S), each row sums to 1
 *   context = sum_j a_j k_j          (B,E)
 *
 * Backward, from dcontext (B,E) (weights is a by-product: no gradient
 * arrives on it):
 *
 *   da_j = dcontext . k_j            dk_j = a_j dcontext + (the score path)
 *   de_j = a_j (da_j - sum_l a_l da_l)          softmax's backward
 *   dv = sum_j de_j u_j              ds_j = de_j v * (1 - u_j^2)
 *   dWq = sum_j q^T ds_j   dq = sum_j ds_j Wq^T
 *   dWk = sum_j k_j^T ds_j           dk_j += ds_j Wk^T
 *
 * Subtract the row's largest energy before exp (softmax is unchanged, and
 * exp never overflows). Write every output array completely.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

void attention_forward(int B, int S, int D, int E, int A, const double *q, const double *k,
    const double *Wq, const double *Wk, const double *v, double *context, double *weights)
{
    /* TODO */
}

/* Write dq (B,D), dk (B,S,E), dWq (D,A), dWk (E,A), dv (A). */
void attention_backward(int B, int S, int D, int E, int A, const double *q, const double *k,
    const double *Wq, const double *Wk, const double *v, const double *dcontext,
    double *dq, double *dk, double *dWq, double *dWk, double *dv)
{
    /* TODO */
}
