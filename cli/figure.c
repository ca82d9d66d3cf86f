/*
 * figure.c - the lecture's pictures, one command each, as SVG.
 *
 *   seqgrad figure gradients: ||dL/dh_k|| against t - k for a loss at the
 *     last step t, for a tanh RNN whose recurrent weight is a scaled
 *     orthogonal matrix (gain < 1: vanishing; gain > 1: exploding, the
 *     lecture's "singular value of W < 1 / > 1"), an LSTM and a GRU, on one
 *     log axis. One backward per model: the tape keeps every dL/dh_k.
 *   seqgrad figure gates CHECKPOINT: the share of saturated gate units
 *     (below 0.1 or above 0.9) at each step of a text, for the first layer
 *     of a trained LSTM or GRU language model. The states h_{t-1} come from
 *     the library's own forward pass; only the gates' affine map and
 *     sigmoid are computed here, from the checkpoint's weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figure.h"
#include "plot.h"
#include "run.h"

/* ---- vanishing and exploding gradients ----------------------------------------- */

typedef struct {
    const char *label;
    const char *cell;            /* registered cell name */
    double gain;                 /* > 0: W_hh = gain * orthogonal; 0: PyTorch's init */
    double forget_bias;          /* LSTM: the forget gate's bias (0: as drawn) */
} grad_model;

/* norms[k] = ||dL/dh_k|| / sqrt(B) for L = sum(h_T * V), V fixed. */
static sg_status grad_curve(const grad_model *m, const figure_opts *o, double *norms, char *err, size_t n)
{
    enum { E = 8 };
    int B = o->batch, T = o->steps, H = o->hidden;
    sg_params *ps = sg_params_new();
    sg_tape *t = sg_tape_new();
    sg_tensor **steps = calloc((size_t)T, sizeof *steps);
    sg_status s = ps && t && steps ? SG_OK : SG_ERR_NOMEM;
    sg_rng init, data;
    sg_rng_seed(&init, o->seed);
    sg_rng_seed(&data, o->seed + 1);             /* the same inputs for every model */
    sg_rnn rnn;
    sg_rnn_opts ro = sg_rnn_defaults();
    ro.cell.forget_bias = m->forget_bias;
    if (s == SG_OK)
        s = sg_rnn_init(&rnn, sg_cell_lookup(m->cell), ps, "rnn.", E, H, &ro, SG_F64, &init);
    if (s == SG_OK && m->gain > 0) {
        sg_tensor *w = sg_params_find(ps, "rnn.weight_hh_l0");
        s = sg_init_weight(w, SG_INIT_ORTHOGONAL, 1, true, &init);
        for (size_t i = 0; s == SG_OK && i < sg_tensor_size(w); i++)
            sg_tensor_set(w, i, m->gain * sg_tensor_get(w, i));
    }
    if (s == SG_OK) {
        rnn.trace = steps;
        sg_tensor *x = sg_randn(t, SG_F64, 3, (int[]){B, T, E}, 1.0, &data);
        sg_rnn_forward(t, &rnn, x, NULL, NULL, NULL, NULL);
        sg_tensor *L = sg_sum_all(t, sg_mul(t, steps[T - 1], sg_randn(t, SG_F64, 2, (int[]){B, H}, 1.0, &data)));
        s = sg_backward(t, L);
    }
    if (s == SG_OK)
        for (int k = 0; k < T; k++) {
            double sum = 0;
            for (size_t i = 0; i < sg_tensor_size(steps[k]); i++)
                sum += sg_tensor_grad_get(steps[k], i) * sg_tensor_grad_get(steps[k], i);
            norms[k] = sqrt(sum / B);
        }
    else
        snprintf(err, n, "figure gradients: %s: %s", m->label, t ? sg_tape_errmsg(t) : "out of memory");
    free(steps);
    sg_tape_free(t);
    sg_params_free(ps);
    return s;
}

int figure_gradients(const figure_opts *o, FILE *out, char *err, size_t n)
{
    char small[48], large[48], fb[48];
    snprintf(small, sizeof small, "tanh RNN, W_hh = %g Q", o->gain_small);
    snprintf(large, sizeof large, "tanh RNN, W_hh = %g Q", o->gain_large);
    snprintf(fb, sizeof fb, "LSTM, forget bias %g", o->forget_bias);
    const grad_model models[] = {{small, "rnn", o->gain_small, 0}, {large, "rnn", o->gain_large, 0},
                                 {"LSTM (PyTorch init)", "lstm", 0, 0}, {fb, "lstm", 0, o->forget_bias},
                                 {"GRU (PyTorch init)", "gru", 0, 0}};
    enum { M = sizeof models / sizeof models[0] };
    int T = o->steps;
    double *norms = calloc((size_t)M * T, sizeof *norms), *back = calloc((size_t)T, sizeof *back);
    double *rev = calloc((size_t)M * T, sizeof *rev);
    int rc = norms && back && rev ? EXIT_OK : EXIT_FAIL;
    if (rc != EXIT_OK)
        snprintf(err, n, "figure gradients: out of memory");
    for (int m = 0; m < M && rc == EXIT_OK; m++)
        if (grad_curve(&models[m], o, norms + (size_t)m * T, err, n) != SG_OK)
            rc = EXIT_FAIL;
    if (rc == EXIT_OK) {
        plot_series s[M];
        for (int k = 0; k < T; k++)
            back[k] = k;
        for (int m = 0; m < M; m++) {
            for (int k = 0; k < T; k++)          /* x: steps back from the loss */
                rev[(size_t)m * T + k] = norms[(size_t)m * T + T - 1 - k];
            s[m] = (plot_series){.label = models[m].label, .x = back, .y = rev + (size_t)m * T, .n = T};
        }
        char title[160];
        snprintf(title, sizeof title, "gradient reaching h_k from a loss at step t = %d (H = %d, batch %d, seed %lu)",
                 T, o->hidden, o->batch, o->seed);
        plot_axes ax = {title, "steps back from the loss, t - k", "||dL/dh_k|| (log scale)", true, 0, 0};
        if (plot_lines(o->out, s, M, &ax) != 0)
            rc = cli_fail(err, n, EXIT_FAIL, "figure gradients: cannot write %s", o->out);
    }
    if (rc == EXIT_OK) {
        int cols[] = {0, 10, 25, 50, 100, 200, 400, T - 1}, nc = 0;
        for (int c = 0; c < 8; c++)              /* the round ones below T - 1, then T - 1 */
            if (cols[c] < T - 1 || c == 7)
                cols[nc++] = cols[c];
        fprintf(out, "||dL/dh_k|| for a loss at step t = %d, by t - k (Q: a random orthogonal matrix)\n%-24s", T,
                "model");
        for (int c = 0; c < nc; c++)
            fprintf(out, " %10d", cols[c]);
        fprintf(out, "\n");
        for (int m = 0; m < M; m++) {
            fprintf(out, "%-24s", models[m].label);
            for (int c = 0; c < nc; c++)
                fprintf(out, " %10.3e", rev[(size_t)m * T + cols[c]]);
            fprintf(out, "\n");
        }
        fprintf(out, "wrote %s\n", o->out);
    }
    free(norms), free(back), free(rev);
    return rc;
}

/* ---- saturated gates ------------------------------------------------------------- */

/* The gates that are sigmoids, by cell: their block in the [G*H] layout
 * of the weights (PyTorch's order) and their names. */
typedef struct {
    const char *cell;
    int n;
    int block[3];
    const char *name[3];
} gate_layout;

static const gate_layout layouts[] = {
    {"lstm", 3, {0, 1, 3}, {"input gate i", "forget gate f", "output gate o"}},
    {"gru", 2, {0, 1}, {"reset gate r", "update gate z"}},
    {"gru_reset_after", 2, {0, 1}, {"reset gate r", "update gate z"}},
};

static double sigmoid(double a) { return 1 / (1 + exp(-a)); }

/* W (rows, cols) times v, row `row` of W */
static double dot_row(const sg_tensor *w, int row, const double *v, int cols)
{
    double s = 0;
    for (int j = 0; j < cols; j++)
        s += sg_tensor_get(w, (size_t)row * cols + j) * v[j];
    return s;
}

int figure_gates(const char *checkpoint, const figure_opts *o, FILE *out, char *err, size_t n)
{
    run r = {0};
    int rc = run_open_checkpoint(&r, checkpoint, NULL, USE_VOCAB, err, n), T = 0;
    const gate_layout *lay = NULL;
    int *ids = NULL;
    double *share = NULL, *xs = NULL, *hx = NULL, *stats = NULL;
    sg_tape *t = NULL;
    if (rc != EXIT_OK)
        goto out;
    for (size_t k = 0; r.model == MODEL_RNN_LM && k < sizeof layouts / sizeof layouts[0]; k++)
        if (!strcmp(layouts[k].cell, r.rnn.def->name))
            lay = &layouts[k];
    if (!lay) {
        snprintf(err, n, "figure gates: %s is a %s model; the gates need an LSTM or GRU language model", checkpoint,
                 cfg_str(&r.cfg, "model.kind"));
        rc = EXIT_USAGE;
        goto out;
    }
    long len = (long)strlen(o->text);
    ids = malloc(sizeof *ids * (size_t)(len ? len : 1));
    long k = ids ? data_encode(&r.d, o->text, len, ids) : 0;
    if (k < 0)
        snprintf(err, n, "figure gates: --text: byte 0x%02x at offset %ld is not in the model's vocabulary",
                 (unsigned char)o->text[-k - 1], -k - 1);
    else if (k == 0)
        snprintf(err, n, ids ? "figure gates: --text is empty" : "figure gates: out of memory");
    if (k < 1) {
        rc = ids ? EXIT_USAGE : EXIT_FAIL;
        goto out;
    }
    T = (int)k;
    int H = r.H, E = r.emb.dim;
    share = calloc((size_t)lay->n * T, sizeof *share);
    stats = calloc((size_t)lay->n * 3, sizeof *stats);
    xs = calloc((size_t)T, sizeof *xs);
    hx = calloc((size_t)(E + H), sizeof *hx);
    t = sg_tape_new();
    if (!share || !stats || !xs || !hx || !t) {
        snprintf(err, n, "figure gates: out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    /* the first layer's states, from the library: a one-layer view of the stack */
    sg_rnn first = r.rnn;
    first.layers = 1;
    sg_tape_set_grad(t, false);
    sg_tensor *emb = sg_embedding_forward(t, &r.emb, ids, 1, T);
    sg_tensor *h = sg_rnn_forward(t, &first, emb, NULL, NULL, NULL, NULL);    /* (1,T,H) */
    if (!h) {
        snprintf(err, n, "figure gates: %s", sg_tape_errmsg(t));
        rc = EXIT_FAIL;
        goto out;
    }
    const sg_cell *c = &r.rnn.cell[0][0];
    sg_tensor *w_ih = sg_cell_param(c, "weight_ih"), *w_hh = sg_cell_param(c, "weight_hh");
    sg_tensor *b_ih = sg_cell_param(c, "bias_ih"), *b_hh = sg_cell_param(c, "bias_hh");
    for (int s = 0; s < T; s++) {
        xs[s] = s;
        for (int j = 0; j < E; j++)
            hx[j] = sg_tensor_get(emb, (size_t)s * E + j);
        for (int j = 0; j < H; j++)
            hx[E + j] = s ? sg_tensor_get(h, (size_t)(s - 1) * H + j) : 0;
        for (int g = 0; g < lay->n; g++) {
            int sat = 0;
            for (int u = 0; u < H; u++) {
                int row = lay->block[g] * H + u;
                double a = dot_row(w_ih, row, hx, E) + dot_row(w_hh, row, hx + E, H);
                a += (b_ih ? sg_tensor_get(b_ih, row) : 0) + (b_hh ? sg_tensor_get(b_hh, row) : 0);
                double v = sigmoid(a);
                sat += v < 0.1 || v > 0.9;
                stats[g * 3] += v, stats[g * 3 + 1] += v > 0.9, stats[g * 3 + 2] += v < 0.1;
            }
            share[(size_t)g * T + s] = (double)sat / H;
        }
    }
    plot_series ser[3];
    for (int g = 0; g < lay->n; g++)
        ser[g] = (plot_series){.label = lay->name[g], .x = xs, .y = share + (size_t)g * T, .n = T};
    char title[200];
    snprintf(title, sizeof title, "saturated gates (below 0.1 or above 0.9), layer 1 of %s, %d characters",
             cfg_str(&r.cfg, "model.kind"), T);
    plot_axes ax = {title, "time step (character of the text)", "share of units saturated", false, 0, 1};
    if (plot_lines(o->out, ser, lay->n, &ax) != 0) {
        snprintf(err, n, "figure gates: cannot write %s", o->out);
        rc = EXIT_FAIL;
        goto out;
    }
    fprintf(out, "gates of layer 1 of %s (%d units) over %d characters:\n%-16s %10s %10s %10s %10s\n",
            cfg_str(&r.cfg, "model.kind"), H, T, "gate", "mean", "open>0.9", "shut<0.1", "saturated");
    for (int g = 0; g < lay->n; g++) {
        double N = (double)H * T;
        fprintf(out, "%-16s %10.3f %9.1f%% %9.1f%% %9.1f%%\n", lay->name[g], stats[g * 3] / N,
                100 * stats[g * 3 + 1] / N, 100 * stats[g * 3 + 2] / N,
                100 * (stats[g * 3 + 1] + stats[g * 3 + 2]) / N);
    }
    fprintf(out, "wrote %s\n", o->out);
out:
    free(ids), free(share), free(stats), free(xs), free(hx);
    sg_tape_free(t);
    run_free(&r);
    return rc;
}
