/*
 * bench_rnn.c - one training workload of the char-LM kind, timed:
 *   embedding (V, H) -> RNN/LSTM/GRU (L layers, hidden H) -> linear (H, V)
 *   -> cross-entropy at every step -> backward -> Adam,
 * on random token ids (batch B, length T, vocabulary V), the same workload
 * as bench_rnn.py runs in PyTorch. GRU is the reset-after form, as
 * torch.nn.GRU. Prints one line: tokens/s and peak resident memory.
 *
 *   bench_rnn CELL H L B T STEPS      CELL: lstm | gru | rnn | a config with a cell: section
 *
 * A cell from a config (examples/cells/lstm.yaml) is compiled as the tool
 * compiles it: bench/cells.py times it against the built-in cell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "../cli/config.h"
#include "../cli/run.h"
#include "bench.h"

enum { V = 65 };

typedef struct {
    sg_params *ps;
    sg_embedding emb;
    sg_rnn rnn;
    sg_linear out;
    sg_optim *opt;
    int *x, *y, B, T;
} model;

static bool step(void *ctx, sg_tape *t)
{
    model *m = ctx;
    sg_tensor *h = sg_rnn_forward(t, &m->rnn, sg_embedding_forward(t, &m->emb, m->x, m->B, m->T), NULL, NULL, NULL, NULL);
    sg_tensor *loss = sg_cross_entropy(t, sg_linear_forward(t, &m->out, h), m->y, NULL);
    if (sg_backward(t, loss) != SG_OK)
        return false;
    sg_optim_step(m->opt, -1);
    sg_params_zero_grad(m->ps);
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_rnn lstm|gru|rnn H L B T STEPS\n");
        return 2;
    }
    const sg_cell_def *def = !strcmp(argv[1], "lstm") ? &sg_lstm_cell
                             : !strcmp(argv[1], "gru") ? &sg_gru_reset_after_cell
                                                       : &sg_rnn_tanh_cell;
    sg_cell_def *own = NULL;
    if (strstr(argv[1], ".yaml")) {
        static sg_config c;
        char err[1024] = "";
        if (cfg_load(&c, argv[1], err, sizeof err) == 0 && !c.cell.present)
            snprintf(err, sizeof err, "%s: no cell: section", argv[1]);
        else if (!err[0])
            run_compile_cell(&c, &own, err, sizeof err);
        if (!own) {
            fprintf(stderr, "bench_rnn: %s\n", err);
            return 2;
        }
        def = own;
    }
    int H = atoi(argv[2]), L = atoi(argv[3]), steps = atoi(argv[6]);
    model m = {.ps = sg_params_new(), .B = atoi(argv[4]), .T = atoi(argv[5])};
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = L;
    sg_embedding_init(&m.emb, m.ps, "emb.", V, H, SG_F32, &rng);
    sg_rnn_init(&m.rnn, def, m.ps, "rnn.", H, H, &o, SG_F32, &rng);
    sg_linear_init(&m.out, m.ps, "out.", H, V, true, SG_F32, &rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    m.opt = sg_optim_new(m.ps, &oo);
    m.x = malloc((size_t)m.B * m.T * sizeof *m.x), m.y = malloc((size_t)m.B * m.T * sizeof *m.y);
    for (int i = 0; i < m.B * m.T; i++)
        m.x[i] = sg_rng_int(&rng, V), m.y[i] = sg_rng_int(&rng, V);
    int rc = timed(steps, (long)m.B * m.T, "bench_rnn", step, &m);
    sg_optim_free(m.opt), sg_params_free(m.ps);
    sg_cell_def_free(own);
    free(m.x), free(m.y);
    return rc;
}
