/*
 * Exercise softmax_loss: the temporal softmax (cross-entropy) loss of a
 * language model over a padded batch, and its gradient.
 *                            Check: seqgrad course check softmax_loss softmax_loss.c
 *
 * Scores x (B,T,V) over a vocabulary of V, targets y (B,T) in 0..V-1, and
 * mask (B,T): 1 where a step counts, 0 where it is padding.
 *
 *   p[b,t,:] = softmax(x[b,t,:])
 *   L = -(1/B) sum_{b,t} mask[b,t] log p[b,t,y[b,t]]      (a mean over sequences)
 *   dL/dx[b,t,c] = mask[b,t] (p[b,t,c] - [c == y[b,t]]) / B
 *
 * log p = x - logsumexp(x); compute logsumexp as m + log sum_c exp(x_c - m)
 * with m the largest score, or exp overflows for large scores.
 *
 * Return L; write dx (B,T,V) completely (zeros where the mask is 0).
 */
#include <math.h>

double temporal_softmax_loss(int B, int T, int V, const double *x, const int *y, const int *mask,
    double *dx)
{
    /* TODO */
    return NAN;
}
