/*
 * bench_tape.c - what the tape costs per op: a chain of N tiny element-wise
 * ops (alternately tanh and + 0.5 on a (1, 8) tensor) recorded and
 * differentiated, N = 1000, repeated; prints nanoseconds per op for the
 * forward (recording) and for the backward, and per op in all. The ops'
 * arithmetic is a few nanoseconds; the rest is the tape's bookkeeping.
 *
 *   bench_tape [N] [REPEATS]
 */
#include <stdlib.h>

#include "bench.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000, reps = argc > 2 ? atoi(argv[2]) : 200;
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tensor *w = sg_param_uniform(SG_F32, 2, (int[]){1, 8}, -1, 1, &rng);
    sg_tape *t = sg_tape_new();
    double fwd = 0, bwd = 0;
    for (int r = 0; r < reps + reps / 10 + 1; r++) {
        sg_tape_reset(t);
        double t0 = seconds();
        sg_tensor *x = w;
        for (int k = 0; k < n; k++)
            x = k % 2 ? sg_add_scalar(t, x, 0.5) : sg_tanh(t, x);
        sg_tensor *loss = sg_sum_all(t, x);
        double t1 = seconds();
        if (sg_backward(t, loss) != SG_OK) {
            fprintf(stderr, "bench_tape: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        double t2 = seconds();
        sg_param_zero_grad(w);
        if (r > reps / 10)                     /* the first tenth warms the arena up */
            fwd += t1 - t0, bwd += t2 - t1;
    }
    double per = 1e9 / ((double)reps * (n + 1));
    printf("ops %d repeats %d forward_ns_per_op %.1f backward_ns_per_op %.1f total_ns_per_op %.1f\n", n + 1, reps,
           fwd * per, bwd * per, (fwd + bwd) * per);
    sg_tape_free(t);
    sg_tensor_free(w);
    return 0;
}
