/*
 * bench_layer.c - the recurrent layer alone, as bench_dnnl.c times oneDNN's
 * fused primitive: L stacked layers of hidden H over an input (T, B, H)
 * ... here (B, T, H), forward and backward from a fixed upstream gradient,
 * explicit zero initial states, the weight gradients zeroed every step,
 * and the input's gradient computed (zeroed every step), as oneDNN's
 * backward computes diff_src_layer.
 *
 *   bench_layer CELL H L B T STEPS     CELL: lstm | gru (gru_reset_after, = oneDNN's lbr_gru) | rnn
 *                                      | gru_classic (the lecture's GRU, = oneDNN's vanilla GRU: the
 *                                      reset gate before U_n, so U_rz h and U_n (r h) are two
 *                                      products, on slices of W_hh)
 *   bench_layer CELL H L B T STEPS --gemm-only
 *                                      the same matrix products alone, straight
 *                                      into seqgrad's GEMM backend (the bound the
 *                                      layer's step can approach): per layer
 *                                      x W_ih^T, h W_hh^T per step (on W_hh^T, as
 *                                      the loop holds it), and backward's dG W_hh,
 *                                      dG^T h per step, dXP W_ih and dXP^T x
 *   bench_layer --gemm                 the GEMM backend seqgrad was built with
 *
 * Prints the line bench.h prints; bench/layer.py runs both side by side.
 */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef SG_GEMM_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include "bench.h"

typedef struct {
    sg_params *ps;
    sg_rnn rnn;
    sg_tensor *x, *dy;        /* the input and upstream gradient, made once as bench_dnnl's */
    int B, T, H, L, G, n_states;
    float *w_ih, *w_hh, *w_hh_t, *xs, *xp, *h, *dxp, *dh, *dx, *dw_ih, *dw_hh;   /* --gemm-only's */
} layer;

static bool step(void *ctx, sg_tape *t)
{
    layer *m = ctx;
    sg_params_zero_grad(m->ps);
    sg_param_zero_grad(m->x);
    sg_tensor *h0[SG_CELL_MAX_STATES] = {NULL};
    for (int k = 0; k < m->n_states; k++)
        h0[k] = sg_zeros(t, SG_F32, 3, (int[]){m->L, m->B, m->H});
    sg_tensor *y = sg_rnn_forward(t, &m->rnn, m->x, h0, NULL, NULL, NULL);
    return y && sg_backward_with(t, y, m->dy) == SG_OK;
}

/* C = op(A) op(B) + beta C through the library seqgrad's products use */
static void sgemm(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
#ifdef SG_GEMM_ONEDNN
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda,
                B, ldb, beta, C, ldc);
#endif
}

/* The products of one step of the layer in the order and form seqgrad
 * runs them, nothing else, straight into the backend: what the step would
 * cost if everything but the GEMMs were free. h and dG are per time step,
 * as on the tape; the weight gradients accumulate (beta 1). */
static bool gemm_step(void *ctx, sg_tape *t)
{
    layer *m = ctx;
    (void)t;
    int B = m->B, H = m->H, G = m->G * m->H, TB = m->T * m->B;
    for (int l = 0; l < m->L; l++) {
        sgemm(false, true, TB, G, H, m->xs, H, m->w_ih, H, 0, m->xp, G);                  /* x W_ih^T */
        for (int s = 0; s < m->T; s++)                                                   /* h W_hh^T, held */
            sgemm(false, false, B, G, H, m->h + (size_t)s * B * H, H, m->w_hh_t, G, 0, m->xp + (size_t)s * B * G, G);
        for (int s = m->T - 1; s >= 0; s--) {
            const float *dg = m->dxp + (size_t)s * B * G, *h = m->h + (size_t)s * B * H;
            sgemm(false, false, B, H, G, dg, G, m->w_hh, H, 0, m->dh, H);                /* dh = dG W_hh */
            sgemm(true, false, G, H, B, dg, G, h, H, 1, m->dw_hh, H);                    /* dW_hh += dG^T h */
        }
        sgemm(false, false, TB, H, G, m->dxp, G, m->w_ih, H, 0, m->dx, H);               /* dx = dXP W_ih */
        sgemm(true, false, G, H, TB, m->dxp, G, m->xs, H, 1, m->dw_ih, H);               /* dW_ih += dXP^T x */
    }
    return true;
}

static float *filled(size_t n, sg_rng *rng)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = (float)(2 * sg_rng_uniform(rng) - 1);
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--gemm")) {     /* for the benchmark's header */
        printf("%s\n", sg_gemm_backend());
        return 0;
    }
    bool gemm_only = argc == 8 && !strcmp(argv[7], "--gemm-only");
    if (argc != 7 && !gemm_only) {
        fprintf(stderr, "usage: bench_layer lstm|gru|gru_classic|rnn H L B T STEPS [--gemm-only]\n");
        return 2;
    }
    const sg_cell_def *cell = !strcmp(argv[1], "lstm") ? &sg_lstm_cell
                            : !strcmp(argv[1], "gru")  ? &sg_gru_reset_after_cell
                            : !strcmp(argv[1], "gru_classic") ? &sg_gru_cell
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
    m.x = sg_tensor_new(SG_F32, 3, (int[]){m.B, m.T, m.H}), m.dy = sg_tensor_new(SG_F32, 3, (int[]){m.B, m.T, m.H});
    /* the input's gradient is computed, as oneDNN's backward computes
     * diff_src_layer (and a layer inside a model needs it) */
    sg_tensor_set_requires_grad(m.x, true);
    float *x = sg_tensor_data(m.x), *dy = sg_tensor_data(m.dy);
    for (size_t i = 0; i < n; i++)                /* U(-1, 1), as bench_dnnl */
        x[i] = (float)(2 * sg_rng_uniform(&rng) - 1), dy[i] = (float)(2 * sg_rng_uniform(&rng) - 1);
    int rc;
    if (gemm_only) {
        /* gru_classic: its two recurrent products (2H and H rows of W_hh) as one of 3H */
        m.G = !strcmp(argv[1], "lstm") ? 4 : !strncmp(argv[1], "gru", 3) ? 3 : 1;
        size_t G = (size_t)m.G * m.H, H = (size_t)m.H, TB = (size_t)m.T * m.B;
        float **own[] = {&m.w_ih, &m.w_hh, &m.w_hh_t, &m.xs, &m.xp, &m.h, &m.dxp, &m.dh, &m.dx, &m.dw_ih, &m.dw_hh};
        size_t len[] = {G * H, G * H, G * H, TB * H, TB * G, TB * H, TB * G, (size_t)m.B * H, TB * H, G * H, G * H};
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            *own[i] = filled(len[i], &rng);
        rc = timed(steps, (long)m.B * m.T, "bench_layer", gemm_step, &m);
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            free(*own[i]);
    } else
        rc = timed(steps, (long)m.B * m.T, "bench_layer", step, &m);
    sg_tensor_free(m.x), sg_tensor_free(m.dy);
    sg_params_free(m.ps);
    return rc;
}
