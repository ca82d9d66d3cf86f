/*
 * seqgrad/nn.h - modules composed from ops only: linear, embedding, the
 * recurrent cells (RNN, LSTM, GRU, and any cell you write) and the sequence
 * layer that unrolls a cell over time. Nothing here writes a derivative:
 * backpropagation through time is the tape replaying the unrolled ops.
 *
 * Parameters are created into an sg_params collection (which owns them)
 * under PyTorch's names, so weights move between the two:
 *   linear:    <prefix>weight (out,in), <prefix>bias (out)           y = x W^T + b
 *   embedding: <prefix>weight (n,dim)
 *   recurrent: <prefix>weight_ih_l{k}[_reverse] (G*H, E), weight_hh_... (G*H, H),
 *              bias_ih_... (G*H), bias_hh_... (G*H); G = 1 (RNN), 3 (GRU), 4 (LSTM)
 * Equations and layouts: docs/recurrent.md.
 */
#ifndef SEQGRAD_NN_H
#define SEQGRAD_NN_H

#include "seqgrad/core.h"
#include "seqgrad/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- initialisation (nn/init.c) ---------------------------------------- */

typedef enum {
    SG_INIT_PYTORCH = 0,   /* every weight and bias U(-1/sqrt(H), 1/sqrt(H)), as torch.nn.RNN/LSTM/GRU */
    SG_INIT_XAVIER,        /* Glorot uniform per gate block, biases 0 */
    SG_INIT_ORTHOGONAL,    /* Glorot W_ih, orthogonal blocks of W_hh, biases 0 */
    SG_INIT_IDENTITY,      /* IRNN (Le et al. 2015): W_hh = I per block, W_ih as PyTorch, biases 0 */
} sg_init;

/* Fills p (2-D, rows a multiple of `block`) block by block with the scheme
 * for a recurrent (recurrent = true) or input weight; all from rng. */
sg_status sg_init_weight(sg_tensor *p, sg_init how, int block, bool recurrent, sg_rng *rng);
/* U(-k, k) for every element. */
void sg_init_uniform(sg_tensor *p, double k, sg_rng *rng);

/* ---- linear and embedding (nn/linear.c) -------------------------------- */

typedef struct {
    sg_tensor *weight, *bias;   /* (out,in), (out) or NULL; owned by the sg_params */
    int in, out;
} sg_linear;

/* Creates <prefix>weight and <prefix>bias, U(-1/sqrt(in), 1/sqrt(in)) as
 * torch.nn.Linear. Returns SG_OK, or SG_ERR_ARG for a taken name. */
sg_status sg_linear_init(sg_linear *l, sg_params *ps, const char *prefix, int in, int out, bool bias,
                         sg_dtype dt, sg_rng *rng);
/* y = x W^T + b: x (...,in) -> (...,out); one GEMM over all leading dims. */
sg_tensor *sg_linear_forward(sg_tape *t, const sg_linear *l, sg_tensor *x);

typedef struct {
    sg_tensor *weight;          /* (n,dim), N(0,1) as torch.nn.Embedding */
    int n, dim;
} sg_embedding;

sg_status sg_embedding_init(sg_embedding *e, sg_params *ps, const char *prefix, int n, int dim,
                            sg_dtype dt, sg_rng *rng);
/* Rows idx[0 .. B*T) of the table: (B,T,dim). Repeated ids accumulate. */
sg_tensor *sg_embedding_forward(sg_tape *t, const sg_embedding *e, const int *idx, int B, int T);

/* ---- cells (nn/cells.c) -------------------------------------------------
 * A cell is a step function over a state of one or two (B,H) tensors. The
 * sequence layer computes the input projection of every time step at once,
 *   xp = x W_ih^T + b_ih (+ b_hh where the cell allows)   (B,T,G*H)
 * and calls step() with the (B,G*H) slice of each time step. */

typedef struct sg_cell_def sg_cell_def;

typedef struct sg_cell {
    const sg_cell_def *def;
    int input_size, hidden_size;
    sg_tensor *w_ih, *w_hh, *b_ih, *b_hh;   /* biases NULL without bias */
} sg_cell;

/* What a cell may prepare once per sequence (slices of its weights, say). */
typedef struct sg_cell_run {
    const sg_cell *cell;
    sg_tensor *w[4];
} sg_cell_run;

struct sg_cell_def {
    const char *name;       /* "lstm", "gru", ... */
    int gates;              /* G: W_ih is (G*H, E), W_hh (G*H, H) */
    int n_state;            /* 1: (h); 2: (h, c). h always comes first */
    bool hoist_b_hh;        /* b_hh may join b_ih in the hoisted projection */
    /* optional; once per sequence before the first step */
    sg_status (*begin)(sg_tape *t, sg_cell_run *run);
    /* one step: xp (B,G*H), state[n_state] (B,H) in; writes next[n_state].
     * Returns SG_OK or the tape's error. */
    sg_status (*step)(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *state,
                      sg_tensor **next);
};

/* h' = tanh / relu / sigmoid(W_ih x + b_ih + W_hh h + b_hh) */
extern const sg_cell_def sg_rnn_tanh_cell, sg_rnn_relu_cell, sg_rnn_sigmoid_cell;
/* i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c' = f c + i g; h' = o tanh(c') */
extern const sg_cell_def sg_lstm_cell;
/* classic (the lecture): r, z = sigma(..); n = tanh(W_in x + b_in + W_hn (r h) + b_hn);
 * h' = (1 - z) h + z n */
extern const sg_cell_def sg_gru_cell;
/* PyTorch's nn.GRU: n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 - z) n + z h */
extern const sg_cell_def sg_gru_reset_after_cell;

/* Cells by name, for configs: "rnn" (tanh), "rnn_relu", "rnn_sigmoid",
 * "lstm", "gru", "gru_reset_after" are there from the start; a program adds
 * its own cell before reading a config. Names are not copied (keep them
 * alive). Returns SG_OK, or SG_ERR_ARG if the name is taken or the table
 * (32 entries) is full. */
sg_status sg_cell_register(const char *name, const sg_cell_def *def);
/* The cell registered under name, or NULL. */
const sg_cell_def *sg_cell_lookup(const char *name);
/* Writes the registered names, separated by '|', to out (n bytes). */
void sg_cell_names(char *out, size_t n);

typedef struct {
    bool bias;              /* default true */
    sg_init init;           /* default SG_INIT_PYTORCH */
    double forget_bias;     /* LSTM: b_ih forget block set to this, b_hh's to 0 (0 = leave as drawn) */
} sg_cell_opts;

sg_cell_opts sg_cell_defaults(void);

/* Creates the cell's four parameters in ps as <prefix>weight_ih<suffix> ...
 * (suffix "_l0", "_l1_reverse", ...). */
sg_status sg_cell_init(sg_cell *c, const sg_cell_def *def, sg_params *ps, const char *prefix,
                       const char *suffix, int input_size, int hidden_size, const sg_cell_opts *o,
                       sg_dtype dt, sg_rng *rng);
/* The hoisted input projection x W_ih^T + b_ih (+ b_hh if the cell allows):
 * (...,E) -> (...,G*H). sg_rnn_forward does this once for all time steps. */
sg_tensor *sg_cell_project(sg_tape *t, const sg_cell *c, sg_tensor *x);
/* One time step outside the sequence layer (decoders, hand-written loops):
 * x (B,E), state[n_state] (B,H) -> next[n_state]. Projects x itself, and
 * runs the cell's begin() each call: for a loop of steps, call
 * sg_cell_begin once and sg_cell_step_run per step instead. */
sg_status sg_cell_step(sg_tape *t, const sg_cell *c, sg_tensor *x, sg_tensor *const *state, sg_tensor **next);
/* What a cell prepares once per sequence (slices of its weights); the run
 * holds tape tensors, so it lives until the tape's reset. */
sg_status sg_cell_begin(sg_tape *t, const sg_cell *c, sg_cell_run *run);
/* sg_cell_step on a prepared run. */
sg_status sg_cell_step_run(sg_tape *t, const sg_cell_run *run, sg_tensor *x, sg_tensor *const *state, sg_tensor **next);

/* ---- the sequence layer (nn/rnn.c) ------------------------------------- */

#define SG_RNN_MAX_LAYERS 8

typedef struct {
    const sg_cell_def *def;
    int input_size, hidden_size, layers, dirs;
    double dropout;                              /* between layers, if given an rng */
    sg_cell cell[SG_RNN_MAX_LAYERS][2];          /* [layer][direction] */
    /* NULL, or room for T tensors: sg_rnn_forward stores there the last
     * layer's state h_t (B,H) of every step (forward direction). They are
     * tape tensors, so after sg_backward their gradients dL/dh_t, which
     * include everything that flows back through the recurrence, are
     * readable (the vanishing-gradient picture). */
    sg_tensor **trace;
} sg_rnn;

typedef struct {
    int layers;             /* default 1 */
    bool bidirectional;     /* default false */
    double dropout;         /* default 0: applied to each layer's output but the last */
    sg_cell_opts cell;
} sg_rnn_opts;

sg_rnn_opts sg_rnn_defaults(void);

/* A stack of `layers` (x2 if bidirectional) cells of kind def, parameters
 * named as torch.nn.LSTM/GRU/RNN name them, after prefix. */
sg_status sg_rnn_init(sg_rnn *r, const sg_cell_def *def, sg_params *ps, const char *prefix,
                      int input_size, int hidden_size, const sg_rnn_opts *o, sg_dtype dt, sg_rng *rng);

/* Runs the stack over a batch-first sequence.
 *   x        (B,T,E)
 *   h0       NULL (zeros) or n_state tensors, each (layers*dirs, B, H) as PyTorch
 *   lengths  NULL (every sequence is T long) or B lengths in [1,T]: steps at
 *            t >= length leave the state unchanged and output zeros; the
 *            reverse direction starts at each sequence's own last step
 *   rng      dropout between layers when r->dropout > 0 (NULL: no dropout)
 *   state_out NULL or room for n_state tensors (layers*dirs, B, H): the final
 *            states (each sequence's state at its own last step)
 * Returns the last layer's outputs (B,T,dirs*H), directions concatenated. */
sg_tensor *sg_rnn_forward(sg_tape *t, const sg_rnn *r, sg_tensor *x, sg_tensor *const *h0,
                          const int *lengths, sg_rng *rng, sg_tensor **state_out);

/* Lengths from a (B,T) padding mask (nonzero = a real step), for
 * sg_rnn_forward. Each row must be ones then zeros, at least one one; a row
 * with a hole (1 0 1) is refused with SG_ERR_ARG, since a recurrent state
 * cannot skip a step and resume. */
sg_status sg_rnn_lengths_from_mask(const sg_tensor *mask, int *lengths);

#ifdef __cplusplus
}
#endif
#endif
