/*
 * bench_layer.c - the recurrent layer alone, as bench_dnnl.c times oneDNN's
 * fused primitive: L stacked layers of hidden H over an input (T, B, H)
 * ... here (B, T, H), forward and backward from a fixed upstream gradient,
 * explicit zero initial states, the weight gradients zeroed every step.
 *
 *   bench_layer CELL H L B T STEPS     CELL: lstm | gru (gru_reset_after, = oneDNN's lbr_gru) | rnn
 *   bench_layer CELL H L B T STEPS --gemm-only
 *                                      the same matrix products alone (the bound
 *                                      the layer's step can approach): per layer
 *                                      x W_ih^T, h W_hh^T per step (on W_hh^T, as
 *                                      the loop holds it), and backward's dG W_hh,
 *                                      dG^T h per step, dXP W_ih and dXP^T x
 *   bench_layer --gemm                 the GEMM backend seqgrad was built with
 *
 * Prints the line bench.h prints; bench/layer.py runs both side by side.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct {
    sg_params *ps;
    sg_rnn rnn;
    float *x, *dy;
    int B, T, H, L, G, n_states;
    sg_tensor *w_ih, *w_hh, *w_hh_t, *h, *dg, *xs, *dxp;   /* --gemm-only's operands */
} layer;

static bool step(void *ctx, sg_tape *t)
{
    layer *m = ctx;
    sg_params_zero_grad(m->ps);
    sg_tensor *x = sg_tensor_from(t, SG_F32, 3, (int[]){m->B, m->T, m->H}, m->x);
    sg_tensor *h0[SG_CELL_MAX_STATES] = {NULL};
    for (int k = 0; k < m->n_states; k++)
        h0[k] = sg_zeros(t, SG_F32, 3, (int[]){m->L, m->B, m->H});
    sg_tensor *y = sg_rnn_forward(t, &m->rnn, x, h0, NULL, NULL, NULL);
    sg_tensor *dy = sg_tensor_from(t, SG_F32, 3, (int[]){m->B, m->T, m->H}, m->dy);
    return y && sg_backward_with(t, y, dy) == SG_OK;
}

/* The products of one step of the layer, nothing else, without a gradient
 * tape: what the step would cost if everything but the GEMMs were free. */
static bool gemm_step(void *ctx, sg_tape *t)
{
    layer *m = ctx;
    sg_tape_set_grad(t, false);
    bool ok = true;
    for (int l = 0; l < m->L && ok; l++) {
        ok = ok && sg_matmul_ex(t, m->xs, m->w_ih, SG_TRANS_B);
        for (int s = 0; s < m->T && ok; s++)
            ok = sg_matmul(t, m->h, m->w_hh_t) && sg_matmul(t, m->dg, m->w_hh) &&
                 sg_matmul_ex(t, m->dg, m->h, SG_TRANS_A);
        ok = ok && sg_matmul(t, m->dxp, m->w_ih) && sg_matmul_ex(t, m->dxp, m->xs, SG_TRANS_A);
    }
    return ok;
}

static sg_tensor *uniform(int rows, int cols, sg_rng *rng)
{
    return sg_param_uniform(SG_F32, 2, (int[]){rows, cols}, -1, 1, rng);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--gemm")) {     /* for the benchmark's header */
        printf("%s\n", sg_gemm_backend());
        return 0;
    }
    bool gemm_only = argc == 8 && !strcmp(argv[7], "--gemm-only");
    if (argc != 7 && !gemm_only) {
        fprintf(stderr, "usage: bench_layer lstm|gru|rnn H L B T STEPS [--gemm-only]\n");
        return 2;
    }
    const sg_cell_def *cell = !strcmp(argv[1], "lstm") ? &sg_lstm_cell
                            : !strcmp(argv[1], "gru")  ? &sg_gru_reset_after_cell
                                                       : &sg_rnn_tanh_cell;
    layer m = {.H = atoi(argv[2]), .L = atoi(argv[3]), .B = atoi(argv[4]), .T = atoi(argv[5])};
    int steps = atoi(argv[6]);
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    m.ps = sg_params_new();
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = m.L;
    if (sg_rnn_init(&m.rnn, cell, m.ps, "rnn.", m.H, m.H, &o, SG_F32, &rng) != SG_OK) {
        fprintf(stderr, "bench_layer: %s\n", sg_params_errmsg(m.ps));
        return 1;
    }
    m.n_states = sg_cell_n_states(cell);
    size_t n = (size_t)m.B * m.T * m.H;
    m.x = malloc(n * sizeof *m.x), m.dy = malloc(n * sizeof *m.dy);
    for (size_t i = 0; i < n; i++)                /* U(-1, 1), as bench_dnnl */
        m.x[i] = (float)(2 * sg_rng_uniform(&rng) - 1), m.dy[i] = (float)(2 * sg_rng_uniform(&rng) - 1);
    int rc;
    if (gemm_only) {
        m.G = !strcmp(argv[1], "lstm") ? 4 : !strcmp(argv[1], "gru") ? 3 : 1;
        int G = m.G * m.H, TB = m.T * m.B;
        m.w_ih = uniform(G, m.H, &rng), m.w_hh = uniform(G, m.H, &rng), m.w_hh_t = uniform(m.H, G, &rng);
        m.h = uniform(m.B, m.H, &rng), m.dg = uniform(m.B, G, &rng);
        m.xs = uniform(TB, m.H, &rng), m.dxp = uniform(TB, G, &rng);
        rc = timed(steps, (long)m.B * m.T, "bench_layer", gemm_step, &m);
        sg_tensor *own[] = {m.w_ih, m.w_hh, m.w_hh_t, m.h, m.dg, m.xs, m.dxp};
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            sg_tensor_free(own[i]);
    } else
        rc = timed(steps, (long)m.B * m.T, "bench_layer", step, &m);
    free(m.x), free(m.dy);
    sg_params_free(m.ps);
    return rc;
}
