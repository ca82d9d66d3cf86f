/*
 * figure.h - the lecture's pictures (cli/figure.c): `seqgrad figure
 * gradients` and `seqgrad figure gates CHECKPOINT`.
 */
#ifndef SEQGRAD_CLI_FIGURE_H
#define SEQGRAD_CLI_FIGURE_H

#include <stdio.h>

typedef struct {
    const char *out;             /* the SVG written */
    int steps, hidden, batch;    /* gradients: T, H, B */
    unsigned long seed;          /* gradients: weights and inputs */
    double gain_small, gain_large;   /* gradients: the tanh RNN's W_hh = gain * orthogonal */
    double forget_bias;          /* gradients: the second LSTM's forget-gate bias */
    const char *text;            /* gates: the text fed to the model */
} figure_opts;

/* ||dL/dh_k|| against t - k for a tanh RNN at two gains, an LSTM and a GRU
 * (f64, inputs N(0,1), L = sum(h_t * V) with V fixed); writes o->out and a
 * table to out. EXIT_OK, or EXIT_FAIL with err. */
int figure_gradients(const figure_opts *o, FILE *out, char *err, size_t n);
/* The share of saturated units of each sigmoid gate at each character of
 * o->text, layer 1 of the LSTM or GRU language model of checkpoint; writes
 * o->out and a table (mean, share open, share shut) to out. */
int figure_gates(const char *checkpoint, const figure_opts *o, FILE *out, char *err, size_t n);

#endif
