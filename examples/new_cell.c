/*
 * new_cell.c - a new recurrent architecture in a few lines: the minimal
 * gated unit (Zhou et al. 2016), one gate instead of the GRU's two. It is
 * defined below, gradient-checked in f64, then trained as a character
 * language model beside LSTM and GRU on the same data, and compared.
 *
 *   new_cell [FILE] [--steps N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "mgu.h"
#include "text.h"

/* ---- 1. gradient check: every weight and the input, in f64 ------------------ */

static sg_tensor *seq_loss(sg_tape *t, sg_tensor **in, void *rnn)
{
    sg_tensor *out = sg_rnn_forward(t, rnn, in[0], NULL, NULL, NULL, NULL);
    return sg_sum_all(t, sg_square(t, out));
}

static bool gradcheck_cell(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_params *ps = sg_params_new();
    sg_rnn rnn;
    sg_rnn_init(&rnn, &mgu_cell, ps, "", 3, 4, NULL, SG_F64, &rng);
    sg_tensor *x = sg_param_randn(SG_F64, 3, (int[]){2, 5, 3}, 1.0, &rng);
    const sg_cell *c = &rnn.cell[0][0];
    sg_tensor *in[5] = {x, c->p[MGU_W_IH], c->p[MGU_BIAS], c->p[MGU_U_F], c->p[MGU_U_N]};
    const char *names[5] = {"x", "weight_ih_l0", "bias_l0", "weight_f_l0", "weight_n_l0"};
    sg_gradcheck_report r;
    sg_gradcheck(seq_loss, &rnn, in, 5, NULL, &r);
    printf("gradient check of the MGU layer (f64, B=2, T=5, E=3, H=4):\n");
    sg_gradcheck_print(&r, names, stdout);
    sg_tensor_free(x);
    sg_params_free(ps);
    return r.ok;
}

/* ---- 2. train it, and LSTM and GRU, on the same characters ------------------- */

enum { B = 32, T = 64, H = 96 };

/* Loss of the model on random windows; trains if opt is given. */
static double run(const sg_cell_def *def, const int *ids, long n, int V, int steps, double *val, size_t *numel)
{
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    sg_params *ps = sg_params_new();
    sg_embedding emb;
    sg_rnn rnn;
    sg_linear out;
    sg_embedding_init(&emb, ps, "embedding.", V, H, SG_F32, &rng);
    sg_rnn_init(&rnn, def, ps, "rnn.", H, H, NULL, SG_F32, &rng);
    sg_linear_init(&out, ps, "decoder.", H, V, true, SG_F32, &rng);
    *numel = sg_params_numel(ps);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 3e-3;
    sg_optim *opt = sg_optim_new(ps, &oo);
    sg_tape *t = sg_tape_new();
    static int x[B * T], y[B * T];
    long n_train = n * 9 / 10;
    double loss = 0;
    for (int step = 0; step <= steps; step++) {
        bool eval = step == steps;                /* the last batch: held-out text */
        for (int b = 0; b < B; b++) {
            long at = eval ? n_train + (long)b * ((n - n_train - T - 1) / B)
                           : (long)sg_rng_int(&rng, (int)(n_train - T - 1));
            for (int k = 0; k < T; k++)
                x[b * T + k] = ids[at + k], y[b * T + k] = ids[at + k + 1];
        }
        sg_tape_reset(t);
        sg_tape_set_grad(t, !eval);
        sg_tensor *h = sg_rnn_forward(t, &rnn, sg_embedding_forward(t, &emb, x, B, T), NULL, NULL, NULL, NULL);
        sg_tensor *l = sg_cross_entropy(t, sg_linear_forward(t, &out, h), y, NULL);
        if (!l)
            break;
        if (eval) {
            *val = sg_tensor_get(l, 0);
            break;
        }
        sg_backward(t, l);
        sg_clip_grad_norm(ps, 1.0);
        sg_optim_step(opt, -1);
        sg_params_zero_grad(ps);
        loss = step ? 0.95 * loss + 0.05 * sg_tensor_get(l, 0) : sg_tensor_get(l, 0);
    }
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    return loss;
}

int main(int argc, char **argv)
{
    const char *path = SEQGRAD_DATA_DIR "/genesis.txt";
    int steps = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else
            path = argv[i];
    }
    if (!gradcheck_cell())
        return 1;

    text tx;
    if (text_load(&tx, path) != 0)
        return 1;
    long n = tx.n;
    int V = tx.V, *ids = tx.ids;

    printf("\ncharacter LM on %s: %d steps of batch %d x %d, hidden %d, Adam 3e-3\n", path, steps, B, T, H);
    printf("%-6s %10s %12s %12s %8s\n", "cell", "params", "train loss", "valid loss", "seconds");
    const sg_cell_def *defs[] = {&mgu_cell, &sg_gru_cell, &sg_lstm_cell};
    for (int k = 0; k < 3; k++) {
        double t0 = seconds(), val = NAN;
        size_t numel;
        double train = run(defs[k], ids, n, V, steps, &val, &numel);
        printf("%-6s %10zu %12.3f %12.3f %8.1f\n", defs[k]->name, numel, train, val, seconds() - t0);
        fflush(stdout);
    }
    free(ids);
    return 0;
}
