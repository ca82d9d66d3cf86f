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
extern const char *const sg_init_names[];        /* "pytorch", "xavier", "orthogonal", "identity" */

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
 * A cell is a step function over states of shape (B,H) (h first, then c or
 * whatever else it carries) and parameters it declares by name and shape.
 * Built-in and user cells are defined the same way (docs/cells.md):
 *
 *   static const sg_cell_def my_cell = {
 *       .name = "mine", .states = {"h"},
 *       .params = {{"weight_ih", "H, E", SG_PARAM_INPUT}, {"weight_hh", "H, H", SG_PARAM_RECURRENT},
 *                  {"gain", "H", SG_PARAM_ONES}},
 *       .project = my_project, .step = my_step};
 *
 * The sequence layer calls, per layer and direction:
 *   begin(run)          once per sequence: slices of weights and the like
 *   project(run, x)     once for all time steps: what depends on x alone,
 *                       x (B,T,E) -> xp (B,T,K) (x itself when NULL)
 *   step(run, xp_t, s)  per time step, with the (B,K) slice xp_t          */

#define SG_CELL_MAX_PARAMS 16
#define SG_CELL_MAX_STATES 4

typedef enum {
    SG_PARAM_UNIFORM = 0,   /* U(-1/sqrt(H), 1/sqrt(H)): PyTorch's default for recurrent weights */
    SG_PARAM_INPUT,         /* a weight on x, (k*H, ...): the model's scheme (sg_cell_opts.init) per H rows */
    SG_PARAM_RECURRENT,     /* a weight on h, (k*H, ...): the model's scheme, orthogonal/identity per block */
    SG_PARAM_BIAS,          /* uniform as PyTorch, zeros under other schemes; absent with bias = false */
    SG_PARAM_XAVIER,        /* Glorot uniform over the whole (2-D) tensor */
    SG_PARAM_ORTHOGONAL,    /* orthonormal rows (or columns) of the whole (2-D) tensor */
    SG_PARAM_ZEROS,
    SG_PARAM_ONES,
    SG_PARAM_CONSTANT,      /* every element = value */
} sg_param_init;
extern const char *const sg_param_init_names[];  /* "uniform", "input", ... "constant" */

/* One declared parameter. Its shape is 1 or 2 sizes separated by a comma,
 * each a sum of terms n, H, E, nH, nE, n*H (E: input size, H: hidden size),
 * e.g. "4H, E", "3, H", "4H", "H, E+H". It is created in the sg_params as
 * <prefix><name><suffix>: "rnn.weight_ih_l0", "rnn.peephole_l1_reverse". */
typedef struct {
    const char *name;
    const char *shape;
    sg_param_init init;
    double value;           /* SG_PARAM_CONSTANT */
    int forget_block;       /* k > 0: rows [(k-1)H, kH) hold a forget gate; sg_cell_opts.forget_bias
                             * goes there in the first parameter that says so, 0 in later ones */
} sg_param_decl;

typedef struct sg_cell_def sg_cell_def;

typedef struct sg_cell {
    const sg_cell_def *def;
    int input_size, hidden_size;
    int n_params;
    sg_tensor *p[SG_CELL_MAX_PARAMS];   /* in declaration order; owned by the sg_params; NULL: an absent bias */
} sg_cell;

/* What begin() prepares once per sequence. Its tensors are tape tensors:
 * the run lives until the tape's reset. */
typedef struct sg_cell_run {
    const sg_cell *cell;
    void *ctx;                  /* the definition's ctx */
    sg_tensor *w[8];            /* the cell's own use */
    sg_tensor **scratch;        /* the cell's own use (sg_tape_alloc'ed in begin) */
} sg_cell_run;

struct sg_cell_def {
    const char *name;                               /* "lstm", "peephole", ... */
    const char *states[SG_CELL_MAX_STATES + 1];     /* state names, NULL-ended; the first is the output */
    sg_param_decl params[SG_CELL_MAX_PARAMS + 1];   /* ended by a NULL name */
    /* optional; once per sequence before the first step */
    sg_status (*begin)(sg_tape *t, sg_cell_run *run);
    /* optional; x (...,E) -> (...,K) for all time steps at once, after begin */
    sg_tensor *(*project)(sg_tape *t, const sg_cell_run *run, sg_tensor *x);
    /* one step: xp (B,K), state[n] (B,H) in; writes next[n]. Returns SG_OK
     * or the tape's error. What else it records is the step's own: with
     * gradients not kept (sg_tape_keep_grads) sg_rnn_forward gives the
     * data of those no backward reads to the steps after it, so a step must
     * not keep them for later (an op given one records an error). On more
     * than one thread (sg_blas_threads) sg_rnn_forward runs a step's chain
     * of row-local ops (element-wise ops, slices on a later axis, x W^T
     * products) on all threads, each on its own rows of the batch, after
     * the chain is recorded, the chains of up to 8 steps together
     * (docs/speed.md, row runs): reading a value inside the step
     * (sg_tensor_get, sg_tensor_data) is right, and runs what was recorded
     * before it first. */
    sg_status (*step)(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *state,
                      sg_tensor **next);
    /* optional; at sg_cell_init, E and H known: SG_OK, or an error written
     * to err (shape checks of cells compiled from equations) */
    sg_status (*check)(const sg_cell_def *def, int input_size, int hidden_size, char *err, size_t n);
    void *ctx;                                      /* handed to begin/project/step as run->ctx */
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

/* Whether def is a valid definition: a name, at least one state, distinct
 * names, shapes that are functions of E and H, a step. SG_OK, or SG_ERR_ARG
 * with "cell NAME: field: problem" in err (n bytes). */
sg_status sg_cell_check(const sg_cell_def *def, char *err, size_t n);
/* The number of states of def (0 for NULL). */
int sg_cell_n_states(const sg_cell_def *def);
/* The declared parameter `name` of c (NULL if none or absent). */
sg_tensor *sg_cell_param(const sg_cell *c, const char *name);

/* Cells by name, for configs: "rnn" (tanh), "rnn_relu", "rnn_sigmoid",
 * "lstm", "gru", "gru_reset_after" are there from the start; a program adds
 * its own cell, under def->name, before reading a config. The definition is
 * not copied (keep it alive). Returns SG_OK, or SG_ERR_ARG with the reason
 * in err: the definition is invalid (sg_cell_check), the name is taken or
 * the table (32 entries) is full. err may be NULL. */
sg_status sg_cell_register(const sg_cell_def *def, char *err, size_t n);
/* The cell registered under name, or NULL. */
const sg_cell_def *sg_cell_lookup(const char *name);
/* Writes the registered names, separated by '|', to out (n bytes). */
void sg_cell_names(char *out, size_t n);

typedef struct {
    bool bias;              /* default true; false: SG_PARAM_BIAS parameters are absent (NULL) */
    sg_init init;           /* default SG_INIT_PYTORCH: the scheme of INPUT, RECURRENT and BIAS parameters */
    double forget_bias;     /* the forget block (sg_param_decl.forget_block) set to this (0 = leave as drawn) */
} sg_cell_opts;

sg_cell_opts sg_cell_defaults(void);

/* Checks def (sg_cell_check, then def->check at these sizes), then creates
 * its parameters in ps as <prefix><name><suffix> (suffix "_l0",
 * "_l1_reverse", ...), drawn in declaration order. Errors go to ps's
 * message (sg_params_errmsg). */
sg_status sg_cell_init(sg_cell *c, const sg_cell_def *def, sg_params *ps, const char *prefix,
                       const char *suffix, int input_size, int hidden_size, const sg_cell_opts *o,
                       sg_dtype dt, sg_rng *rng);
/* Prepares a run (the cell's begin()); the run holds tape tensors, so it
 * lives until the tape's reset. */
sg_status sg_cell_begin(sg_tape *t, const sg_cell *c, sg_cell_run *run);
/* The cell's projection of x (...,E) -> (...,K) on a prepared run (x itself
 * for a cell without one). sg_rnn_forward does this once for all steps. */
sg_tensor *sg_cell_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x);
/* One time step outside the sequence layer (decoders, hand-written loops)
 * on a prepared run: x (B,E), state[n] (B,H) -> next[n]. Projects x itself. */
sg_status sg_cell_step_run(sg_tape *t, const sg_cell_run *run, sg_tensor *x, sg_tensor *const *state, sg_tensor **next);
/* sg_cell_begin and sg_cell_step_run in one call: for a single step. */
sg_status sg_cell_step(sg_tape *t, const sg_cell *c, sg_tensor *x, sg_tensor *const *state, sg_tensor **next);

/* ---- cells from equations (nn/cellexpr.c) --------------------------------
 * A cell written as text, compiled once into the op calls a C cell makes
 * (the language: docs/cells.md). Each text carries where it came from, so
 * errors read "file:line:col: ...". */
typedef struct {
    const char *text;
    const char *file;       /* for messages; NULL: "cell" */
    int line, col;          /* where text[0] is (1-based; 0: unknown) */
} sg_cell_text;

typedef struct {
    sg_cell_text name;      /* the cell's name, and where the cell is defined */
    int n_states;
    sg_cell_text states[SG_CELL_MAX_STATES];
    int n_params;
    struct {
        sg_cell_text name, shape;
        sg_param_init init;
        double value;
    } params[SG_CELL_MAX_PARAMS];
    int n_equations;
    const sg_cell_text *equations;
} sg_cell_spec;

/* Parses and checks the equations of spec (names, syntax, every state
 * updated) into a new definition the caller owns (free it with
 * sg_cell_def_free once no model uses it). Shapes are checked by
 * sg_cell_init, when E and H are known. NULL with "file:line:col: problem"
 * in err on failure. */
sg_cell_def *sg_cell_compile(const sg_cell_spec *spec, char *err, size_t n);
void sg_cell_def_free(sg_cell_def *def);

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
 *   h0       NULL (zeros) or one tensor per state, each (layers*dirs, B, H) as PyTorch
 *   lengths  NULL (every sequence is T long) or B lengths in [1,T]: steps at
 *            t >= length leave the state unchanged and output zeros; the
 *            reverse direction starts at each sequence's own last step
 *   rng      dropout between layers when r->dropout > 0 (NULL: no dropout)
 *   state_out NULL or room for one tensor per state (layers*dirs, B, H): the final
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
