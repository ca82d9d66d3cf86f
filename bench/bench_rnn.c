/*
 * bench_rnn.c - one training workload of the char-LM kind, timed:
 *   embedding (V, H) -> RNN/LSTM/GRU (L layers, hidden H) -> linear (H, V)
 *   -> cross-entropy at every step -> backward -> Adam,
 * on random token ids (batch B, length T, vocabulary V), the same workload
 * as bench_rnn.py runs in PyTorch. GRU is the reset-after form, as
 * torch.nn.GRU. Prints one line: tokens/s and peak resident memory.
 *
 *   bench_rnn CELL H L B T STEPS      CELL: lstm | gru | rnn
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "bench.h"

enum { V = 65 };

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_rnn lstm|gru|rnn H L B T STEPS\n");
        return 2;
    }
    const sg_cell_def *def = !strcmp(argv[1], "lstm") ? &sg_lstm_cell
                             : !strcmp(argv[1], "gru") ? &sg_gru_reset_after_cell
                                                       : &sg_rnn_tanh_cell;
    int H = atoi(argv[2]), L = atoi(argv[3]), B = atoi(argv[4]), T = atoi(argv[5]), steps = atoi(argv[6]);
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_params *ps = sg_params_new();
    sg_embedding emb;
    sg_rnn rnn;
    sg_linear out;
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = L;
    sg_embedding_init(&emb, ps, "emb.", V, H, SG_F32, &rng);
    sg_rnn_init(&rnn, def, ps, "rnn.", H, H, &o, SG_F32, &rng);
    sg_linear_init(&out, ps, "out.", H, V, true, SG_F32, &rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    sg_optim *opt = sg_optim_new(ps, &oo);
    sg_tape *t = sg_tape_new();
    int *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y);
    for (int i = 0; i < B * T; i++)
        x[i] = sg_rng_int(&rng, V), y[i] = sg_rng_int(&rng, V);

    double t0 = 0;
    int warm = warmup(steps);
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = seconds();
        sg_tape_reset(t);
        sg_tensor *h = sg_rnn_forward(t, &rnn, sg_embedding_forward(t, &emb, x, B, T), NULL, NULL, NULL, NULL);
        sg_tensor *loss = sg_cross_entropy(t, sg_linear_forward(t, &out, h), y, NULL);
        if (sg_backward(t, loss) != SG_OK) {
            fprintf(stderr, "bench_rnn: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        sg_optim_step(opt, -1);
        sg_params_zero_grad(ps);
    }
    double dt = seconds() - t0;
    report(steps, (long)B * T, dt);
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    free(x), free(y);
    return 0;
}
