/*
 * bench_attn.c - attention workloads, timed; bench_attn.py runs the same in
 * PyTorch:
 *   tlm D STEPS  2-layer transformer LM, d_model D, 4 heads, feed-forward 4D,
 *                post-norm, relu, sinusoidal positions, causal mask; batch 32,
 *                T 64, vocabulary 65, cross-entropy, Adam
 *   s2s H STEPS  GRU (reset-after, = nn.GRU) encoder-decoder with additive
 *                attention, hidden = embedding = H, batch 32, source and target
 *                length 20, vocabulary 32, teacher forcing, Adam
 * Prints tokens/s (target tokens) and peak resident memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "bench.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_attn tlm D STEPS | s2s H STEPS\n");
        return 2;
    }
    bool tlm = !strcmp(argv[1], "tlm");
    int size = atoi(argv[2]), steps = atoi(argv[3]);
    int B = 32, T = tlm ? 64 : 20, S = 20, V = tlm ? 65 : 32;
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_params *ps = sg_params_new();
    sg_transformer_lm lm;
    sg_seq2seq s2s;
    if (tlm) {
        sg_transformer_opts o = sg_transformer_defaults(size, 4);
        sg_transformer_lm_init(&lm, ps, V, T, 2, false, &o, SG_F32, &rng);
    } else {
        sg_seq2seq_opts o = sg_seq2seq_defaults();
        o.cell = &sg_gru_reset_after_cell;
        sg_seq2seq_init(&s2s, ps, V, V, size, size, &o, SG_F32, &rng);
    }
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    sg_optim *opt = sg_optim_new(ps, &oo);
    sg_tape *t = sg_tape_new();
    int *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y);
    int *src = malloc((size_t)B * S * sizeof *src);
    for (int i = 0; i < B * T; i++)
        x[i] = sg_rng_int(&rng, V), y[i] = sg_rng_int(&rng, V);
    for (int i = 0; i < B * S; i++)
        src[i] = sg_rng_int(&rng, V);

    double t0 = 0;
    int warm = warmup(steps);
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = seconds();
        sg_tape_reset(t);
        sg_tensor *loss = tlm ? sg_cross_entropy(t, sg_transformer_lm_forward(t, &lm, x, B, T, NULL), y, NULL)
                              : sg_seq2seq_loss(t, &s2s, src, NULL, B, S, x, y, T, 0, NULL);
        if (sg_backward(t, loss) != SG_OK) {
            fprintf(stderr, "bench_attn: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        sg_optim_step(opt, -1);
        sg_params_zero_grad(ps);
    }
    double dt = seconds() - t0;
    report(steps, (long)B * T, dt);
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    free(x), free(y), free(src);
    return 0;
}
