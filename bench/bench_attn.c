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

enum { B = 32, S = 20 };

typedef struct {
    bool tlm;
    int T;
    sg_params *ps;
    sg_transformer_lm lm;
    sg_seq2seq s2s;
    sg_optim *opt;
    int *x, *y, *src;
} model;

static bool step(void *ctx, sg_tape *t)
{
    model *m = ctx;
    sg_tensor *loss = m->tlm ? sg_cross_entropy(t, sg_transformer_lm_forward(t, &m->lm, m->x, B, m->T, NULL), m->y, NULL)
                             : sg_seq2seq_loss(t, &m->s2s, m->src, NULL, B, S, m->x, m->y, m->T, 0, NULL);
    if (sg_backward(t, loss) != SG_OK)
        return false;
    sg_optim_step(m->opt, -1);
    sg_params_zero_grad(m->ps);
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_attn tlm D STEPS | s2s H STEPS\n");
        return 2;
    }
    model m = {.tlm = !strcmp(argv[1], "tlm"), .ps = sg_params_new()};
    int size = atoi(argv[2]), steps = atoi(argv[3]), V = m.tlm ? 65 : 32;
    m.T = m.tlm ? 64 : 20;
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    if (m.tlm) {
        sg_transformer_opts o = sg_transformer_defaults(size, 4);
        sg_transformer_lm_init(&m.lm, m.ps, V, m.T, 2, false, &o, SG_F32, &rng);
    } else {
        sg_seq2seq_opts o = sg_seq2seq_defaults();
        o.cell = &sg_gru_reset_after_cell;
        sg_seq2seq_init(&m.s2s, m.ps, V, V, size, size, &o, SG_F32, &rng);
    }
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    m.opt = sg_optim_new(m.ps, &oo);
    m.x = malloc((size_t)B * m.T * sizeof *m.x), m.y = malloc((size_t)B * m.T * sizeof *m.y);
    m.src = malloc((size_t)B * S * sizeof *m.src);
    for (int i = 0; i < B * m.T; i++)
        m.x[i] = sg_rng_int(&rng, V), m.y[i] = sg_rng_int(&rng, V);
    for (int i = 0; i < B * S; i++)
        m.src[i] = sg_rng_int(&rng, V);
    int rc = timed(steps, (long)B * m.T, "bench_attn", step, &m);
    sg_optim_free(m.opt), sg_params_free(m.ps);
    free(m.x), free(m.y), free(m.src);
    return rc;
}
