/*
 * seqgrad/core.h - tensors, parameters, the tape, errors, random numbers and
 * gradient checking.
 *
 * A tensor is row-major and contiguous, 1 to 4 dimensions, of dtype SG_F32 or
 * SG_F64 chosen at run time. There are two kinds:
 *
 *   - tape tensors: made by an op or by sg_tensor_from()/sg_zeros() on a tape;
 *     their data and gradient live in the tape's arena and die at
 *     sg_tape_reset() or sg_tape_free(). Never free them yourself.
 *   - heap tensors: made by sg_tensor_new() or sg_param_new(); they outlive
 *     every tape and are freed by sg_tensor_free() (or by the sg_params
 *     collection that owns them). Parameters are heap tensors that require
 *     gradients; their gradients accumulate across sg_backward() calls until
 *     zeroed.
 *
 * Quick tour:
 *
 *     sg_rng rng;  sg_rng_seed(&rng, 42);
 *     sg_tensor *W = sg_param_randn(SG_F64, 2, (int[]){3, 4}, 0.5, &rng);
 *     sg_tape *t = sg_tape_new();
 *     sg_tensor *x = sg_tensor_from(t, SG_F64, 2, (int[]){2, 3}, xdata);
 *     sg_tensor *loss = sg_mean_all(t, sg_tanh(t, sg_matmul(t, x, W)));
 *     if (!loss) puts(sg_tape_errmsg(t));   // the first error, naming the op
 *     sg_backward(t, loss);                 // W's gradient now holds dloss/dW
 *     sg_tape_reset(t);                     // arena rewinds; W keeps value+grad
 *
 * Errors, one story for the whole API. Every fallible function returns a
 * status (sg_status, below) or NULL, and leaves its message on the handle it
 * was given, where one accessor reads it:
 *
 *   the tape         ops, forward passes, decoding      sg_tape_errmsg(t)
 *   the sg_params    module inits, sg_params_add,       sg_params_errmsg(ps)
 *                    optimizers, loading/saving params
 *   the checkpoint   sg_ckpt_open (a handle even for    sg_ckpt_errmsg(c)
 *                    a refused file, as sqlite3_open)
 *
 * Messages read "<op or function>: <what was wrong, with the numbers>"
 * ("matmul: (2,5) @ (4,3): inner dimensions differ"). Each handle keeps its
 * first error: an op given NULL, or a tape already in error, returns NULL at
 * once without a new message, so a whole expression is checked once at the
 * end, and the message names the op that failed first. NULL options mean
 * the defaults; invalid options are refused with a message, never clamped;
 * every accessor is safe on NULL (an empty tensor, a NULL handle's
 * message). Set SEQGRAD_ABORT_ON_ERROR=1 to make the first error print and
 * abort() (handy under gdb). The library never calls exit() and never
 * prints unless that variable is set.
 */
#ifndef SEQGRAD_CORE_H
#define SEQGRAD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_MAX_DIMS 4

typedef enum { SG_F32 = 0, SG_F64 = 1 } sg_dtype;

/* Names and enums. Each enum the tool or a config names has a table of its
 * values' names beside it (sg_attn_kind_names, sg_init_names,
 * sg_param_init_names, sg_optim_kind_names, sg_sched_kind_names,
 * sg_reduction_names): indexed by value, ended by NULL. sg_enum_parse gives
 * the value that names[] spells as text, or -1. */
int sg_enum_parse(const char *const *names, const char *text);

/* The threads each matrix product runs on (OpenBLAS's, and oneDNN's OpenMP
 * threads where oneDNN's sgemm is the f32 backend): sets n (n >= 1) and
 * returns the count before; n = 0 only reads it. Until it is set, the
 * backend's own default holds (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, else
 * every core). With oneDNN the same threads also run recurrent steps'
 * element-wise chains by rows of the batch (docs/speed.md, row runs) and
 * big work outside them in parts (copies, zeroing, losses, stacks, the
 * optimizer's update), with the same bits on any count (oneDNN's AVX-512
 * kernels; products whose 2-thread bits would differ run on one thread,
 * and large ones recorded outside a loop's hold on oneDNN's matmul
 * primitive, which keeps them; docs/speed.md). Products may differ in their last bits between thread
 * counts on OpenBLAS; the tool's sharded training (train.shards) runs
 * every shard on one. */
int sg_blas_threads(int n);

/* Which library runs the products, chosen at build time (meson option
 * gemm, docs/speed.md): "OpenBLAS", or "oneDNN sgemm (f32), OpenBLAS (f64)".
 * A static string. */
const char *sg_gemm_backend(void);
/* On: f32 products run on OpenBLAS even where oneDNN's sgemm was built in
 * (sg_gemm_backend then says "OpenBLAS"); off: the build's choice again.
 * SEQGRAD_GEMM=openblas in the environment turns it on at the first
 * product. Returns the previous setting (true in an OpenBLAS build). The tool turns it on under mpirun, where
 * oneDNN 2.6.3's sgemm corrupted the heap when SIGTERM came mid-run
 * (docs/scale.md). */
bool sg_gemm_openblas_only(bool on);

/* Status codes shared by the whole API; 0 is success. */
typedef enum {
    SG_OK = 0,
    SG_ERR_NULL,      /* an argument was NULL (and no earlier error explains it) */
    SG_ERR_DTYPE,     /* dtypes differ, or the wrong dtype for this call */
    SG_ERR_SHAPE,     /* shapes do not fit the op */
    SG_ERR_ARG,       /* a value out of range: axis, index, probability ... */
    SG_ERR_STATE,     /* wrong state: backward of a non-scalar, tape mismatch */
    SG_ERR_ANOMALY,   /* anomaly mode found NaN or Inf */
    SG_ERR_NOMEM,     /* out of memory */
    SG_ERR_IO,        /* a file could not be read or written */
    SG_ERR_FORMAT,    /* a file's content is malformed */
} sg_status;

typedef struct sg_tensor sg_tensor;
typedef struct sg_tape sg_tape;

/* Name of a dtype: "f32" or "f64". */
const char *sg_dtype_name(sg_dtype dt);
/* Bytes per element: 4 or 8. */
size_t sg_dtype_size(sg_dtype dt);

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: one state per object that needs
 * randomness, no global state. Same seed, same sequence, on every machine. */
typedef struct { uint64_t s[4]; } sg_rng;

void     sg_rng_seed(sg_rng *r, uint64_t seed);
uint64_t sg_rng_u64(sg_rng *r);
double   sg_rng_uniform(sg_rng *r);                /* [0, 1) */
double   sg_rng_normal(sg_rng *r);                 /* N(0, 1), Box-Muller */
int      sg_rng_int(sg_rng *r, int n);             /* uniform in [0, n), n > 0 */
void     sg_rng_shuffle(sg_rng *r, int *a, int n); /* Fisher-Yates, in place */

/* ---- tensors ----------------------------------------------------------- */

/* Heap tensor of zeros; no gradient. Caller owns it: sg_tensor_free().
 * Returns NULL on a bad shape (ndim not 1..4, a dimension < 1) or no memory. */
sg_tensor *sg_tensor_new(sg_dtype dt, int ndim, const int *shape);
/* Frees a heap tensor (data, gradient and struct). NULL is a no-op; a tape
 * tensor is left alone (its tape owns it). */
void sg_tensor_free(sg_tensor *x);

sg_dtype    sg_tensor_dtype(const sg_tensor *x);
int         sg_tensor_ndim(const sg_tensor *x);
int         sg_tensor_dim(const sg_tensor *x, int axis);  /* axis < 0 counts from the end */
const int  *sg_tensor_shape(const sg_tensor *x);
size_t      sg_tensor_size(const sg_tensor *x);           /* number of elements */
void       *sg_tensor_data(sg_tensor *x);                 /* float* or double*; NULL if given back (sg_tape_keep_grads) */
void       *sg_tensor_grad(sg_tensor *x);                 /* NULL until a backward made it */
const char *sg_tensor_name(const sg_tensor *x);           /* "" unless named */
bool        sg_tensor_requires_grad(const sg_tensor *x);
/* Marks a tape leaf (or a heap tensor) as needing a gradient, so that after
 * sg_backward() its gradient is readable (dL/dx of an input, for instance). */
void sg_tensor_set_requires_grad(sg_tensor *x, bool on);
/* Element i (flat, row-major) as a double, whatever the dtype; NaN (and
 * set does nothing) out of range or for data given back. */
double sg_tensor_get(const sg_tensor *x, size_t i);
void   sg_tensor_set(sg_tensor *x, size_t i, double v);
/* Gradient element i as a double (0 if no gradient exists yet). */
double sg_tensor_grad_get(const sg_tensor *x, size_t i);
/* Copies n values from/to a double array, converting to/from the dtype. */
void sg_tensor_load(sg_tensor *x, const double *v);
void sg_tensor_store(const sg_tensor *x, double *v);
/* Copies src's values into dst (same shape; dtypes may differ). Used to carry
 * a state across sg_tape_reset() into a heap tensor. Returns SG_OK,
 * SG_ERR_SHAPE, or SG_ERR_STATE for data given back. */
sg_status sg_tensor_copy(sg_tensor *dst, const sg_tensor *src);
/* Converts a heap tensor (value and gradient) to dtype dt in place. */
sg_status sg_tensor_cast(sg_tensor *x, sg_dtype dt);
/* Writes "(2,3,4)" into buf (at least 48 bytes); returns buf. */
char *sg_shape_str(const sg_tensor *x, char *buf);

/* ---- parameters -------------------------------------------------------- */

/* A parameter is a heap tensor that requires gradients. Its gradient is
 * allocated at the first backward that reaches it and accumulates (+=) over
 * backward calls until sg_param_zero_grad() or sg_params_zero_grad(). */
sg_tensor *sg_param_new(sg_dtype dt, int ndim, const int *shape);
/* Parameter of N(0, std^2) draws from rng. */
sg_tensor *sg_param_randn(sg_dtype dt, int ndim, const int *shape, double std, sg_rng *rng);
/* Parameter of U(lo, hi) draws from rng. */
sg_tensor *sg_param_uniform(sg_dtype dt, int ndim, const int *shape, double lo, double hi, sg_rng *rng);
void sg_param_zero_grad(sg_tensor *p);

/* A named, ordered collection of parameters: what optimizers, checkpoints and
 * gradcheck iterate over. It owns the tensors added to it. */
typedef struct sg_params sg_params;

sg_params *sg_params_new(void);
void       sg_params_free(sg_params *ps);          /* frees every tensor too */
/* Adds p under name (copied; names must be unique) and takes ownership of p.
 * Returns p, or NULL (and frees p) if the name is taken or memory ran out. */
sg_tensor *sg_params_add(sg_params *ps, const char *name, sg_tensor *p);
int        sg_params_count(const sg_params *ps);
sg_tensor *sg_params_get(const sg_params *ps, int i);
const char *sg_params_name(const sg_params *ps, int i);
sg_tensor *sg_params_find(const sg_params *ps, const char *name);
size_t     sg_params_numel(const sg_params *ps);    /* total elements */
void       sg_params_zero_grad(sg_params *ps);
/* Converts every parameter to dt (f64 for a gradient check, back to f32). */
sg_status  sg_params_cast(sg_params *ps, sg_dtype dt);
/* The collection's error: the first failure of a call given ps (a module's
 * init, sg_params_add, sg_optim_new, sg_ckpt_load_params, ...) since
 * sg_params_clear_error(); SG_OK and "" if none. NULL ps: SG_ERR_NULL and a
 * message saying so. */
sg_status   sg_params_error(const sg_params *ps);
const char *sg_params_errmsg(const sg_params *ps);
void        sg_params_clear_error(sg_params *ps);
/* Records err and a printf-style message on ps unless it holds an error
 * already, and returns err (NULL ps: returns err). For modules of your
 * own: "mycell: hidden size 0 (at least 1)". */
sg_status   sg_params_fail(sg_params *ps, sg_status err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- the tape ---------------------------------------------------------- */

sg_tape *sg_tape_new(void);
void     sg_tape_free(sg_tape *t);                /* NULL is a no-op */
/* Forgets the recording and rewinds the arena: every tape tensor dies, the
 * error is cleared; parameters keep their values and gradients. Memory is
 * kept, so recording the same graph again allocates nothing from the heap. */
void     sg_tape_reset(sg_tape *t);

/* Scratch memory for n items of size bytes, zeroed, from the tape's arena:
 * it lives until sg_tape_reset() and costs no heap allocation in steady
 * state (per-step arrays of a module, sized by the data, never on the
 * stack). NULL, with the tape's error set, if it cannot be had. */
void *sg_tape_alloc(sg_tape *t, size_t n, size_t size);
/* No-grad mode: while off, ops compute but record no backward work
 * (evaluation, sampling, decoding). Returns the previous setting. */
bool sg_tape_set_grad(sg_tape *t, bool on);
/* Anomaly mode: when on, the first op whose output (forward) or whose input
 * gradient (backward) holds NaN or Inf becomes the tape's error. */
void sg_tape_set_anomaly(sg_tape *t, bool on);
/* Whether backward keeps the gradient of every op's output (on, the
 * default: read any intermediate's gradient afterwards, e.g. dL/dh_t per
 * time step) or only while it needs it (off, for training): an op's
 * output then gets its gradient buffer when the first op using it runs
 * backward and gives it back, for another of the same size, when its own
 * backward has run, so the gradients alive at once are a few time steps',
 * not the whole graph's. Off, after a backward sg_tensor_grad is NULL for
 * op outputs (sg_tensor_grad_get reads 0); leaves and parameters keep
 * theirs either way. Off, sg_rnn_forward also gives back, after each time
 * step, the data of the step's
 * intermediates that no backward reads (the gates before their
 * activations, slices, sums: the op descriptors say which), for the next
 * step's tensors: such a tensor's sg_tensor_data is then NULL, its
 * elements read NaN, and an op given it records an error that says so.
 * Returns the previous setting. */
bool sg_tape_keep_grads(sg_tape *t, bool keep);

/* The first error recorded since the last reset, SG_OK if none. */
sg_status   sg_tape_error(const sg_tape *t);
const char *sg_tape_errmsg(const sg_tape *t);     /* "" if none */
/* Records err with a printf-style message unless an error is already
 * recorded; always returns NULL so ops can `return sg_fail(...)`. */
sg_tensor *sg_fail(sg_tape *t, sg_status err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes the arena holds (in use or not) and how many blocks it has. */
size_t sg_tape_arena_bytes(const sg_tape *t);

/* Backward from a scalar (one-element) loss: seeds dloss = 1, fills the
 * gradients of every recorded tensor that requires one (fresh each call;
 * see sg_tape_keep_grads) and accumulates into parameters. Returns SG_OK or the tape's error code:
 * SG_ERR_STATE if the tape holds an error, loss is not one element, or it
 * does not require a gradient. */
sg_status sg_backward(sg_tape *t, sg_tensor *loss);
/* Backward from y with an explicit upstream gradient dy (same shape, dtype). */
sg_status sg_backward_with(sg_tape *t, sg_tensor *y, const sg_tensor *dy);

/* ---- tape leaves ------------------------------------------------------- */

/* A tensor on the tape holding a copy of data (float* for f32, double* for
 * f64); data may be NULL for zeros. No gradient unless asked for. */
sg_tensor *sg_tensor_from(sg_tape *t, sg_dtype dt, int ndim, const int *shape, const void *data);
/* Same, from doubles whatever the dtype. */
sg_tensor *sg_tensor_from_f64(sg_tape *t, sg_dtype dt, int ndim, const int *shape, const double *v);
sg_tensor *sg_zeros(sg_tape *t, sg_dtype dt, int ndim, const int *shape);
sg_tensor *sg_full(sg_tape *t, sg_dtype dt, int ndim, const int *shape, double value);
sg_tensor *sg_randn(sg_tape *t, sg_dtype dt, int ndim, const int *shape, double std, sg_rng *rng);
/* A copy of x as a leaf: same values, no history, no gradient (cuts the
 * graph; truncated BPTT). To carry it across sg_tape_reset(), copy it into a
 * heap tensor with sg_tensor_copy(). */
sg_tensor *sg_detach(sg_tape *t, sg_tensor *x);

/* ---- gradient checking ------------------------------------------------- */

/* The function under test: builds an output on t from the inputs. It must be
 * deterministic (reseed any rng it uses, e.g. for dropout, inside it). */
typedef sg_tensor *(*sg_gradcheck_fn)(sg_tape *t, sg_tensor **inputs, void *ctx);

/* 0 in a field means its default; a negative or NaN value is refused. */
typedef struct {
    double eps;          /* step h of the 4th-order central difference; default 1e-4.
                          * An element that fails at h is measured again at h/10
                          * and reported only if it fails there too. */
    double rtol;         /* pass if |a-n| / max(|a|,|n|) <= rtol ...; default 1e-7 */
    double atol;         /* ... or |a-n| <= atol; default 1e-9 */
    size_t max_elems;    /* per input; more are sampled (seeded); default 4096 */
    uint64_t seed;       /* projection vector and sampling; default 1 */
} sg_gradcheck_opts;

/* Defaults (eps 1e-4, rtol 1e-7, atol 1e-9, max_elems 4096, seed 1). The
 * tool's `seqgrad gradcheck` uses the same. */
sg_gradcheck_opts sg_gradcheck_defaults(void);

/* Which tolerance decided the verdict of an element. */
typedef enum {
    SG_DECIDED_RTOL,     /* passed on the relative error */
    SG_DECIDED_ATOL,     /* relative error too large, passed on the absolute one */
    SG_DECIDED_NEITHER   /* failed both */
} sg_decided;

/* One compared tensor: how many elements were compared and failed, and its
 * worst element (the one closest to failing, or failing worst): its flat
 * index, the tape's derivative, the other one (finite differences in
 * sg_gradcheck, yours in sg_grad_compare), both errors, which tolerance
 * decided. ndim/shape give the index as [i,j,...] when printed. */
typedef struct {
    size_t checked;      /* elements compared */
    size_t failed;       /* elements beyond both tolerances */
    size_t index;        /* flat (row-major) index of the worst element */
    int ndim, shape[SG_MAX_DIMS];
    double tape, other;  /* at index: the tape's value, and numeric or yours */
    double relerr, abserr;
    sg_decided decided;  /* for the worst element */
    bool kink;           /* sg_gradcheck: the numeric derivative of a failing
                          * element changed with the step (h against h/10) */
    double other_small;  /* sg_gradcheck: the numeric derivative at h/10, when kink */
    bool ok;             /* failed == 0 */
} sg_gradcheck_entry;

#define SG_GRADCHECK_MAX 64

typedef struct {
    int n;                                 /* inputs checked */
    sg_gradcheck_entry in[SG_GRADCHECK_MAX];
    double eps, rtol, atol;                /* as used */
    bool repeat_checked;                   /* backward ran twice (the second with gradients not kept) ... */
    double repeat_diff;                    /* ... and max |g1 - g2| of the two runs */
    char kinks[64];                        /* kinked ops f recorded ("relu, max"), or "" */
    bool ok;                               /* every input passed and repeat_diff == 0 */
    char msg[256];                         /* why the check could not run, if it could not */
} sg_gradcheck_report;

/* Checks the tape's gradient of f against central differences in f64.
 * inputs: n (<= SG_GRADCHECK_MAX) f64 heap tensors requiring gradients
 * (parameters); their gradients are overwritten and left holding the tape's
 * gradient. The output y of f (any shape) is projected on a fixed random
 * vector v: L = sum(v * y), since an all-ones upstream gradient hides bugs.
 * For each input, every element (or a seeded sample of max_elems) is
 * perturbed by +-h and +-2h, and
 *   numeric = (-L(x+2h) + 8 L(x+h) - 8 L(x-h) + L(x-2h)) / 12h   (error O(h^4)).
 * An element that fails is measured again at h/10: a failure is reported
 * only when it fails at both steps, and when the two numeric values differ,
 * the entry says so (kink): a step crossed a kink (relu, abs, max, clamp).
 * Backward is also run twice and must agree exactly. Returns SG_OK if the
 * check ran (see r->ok for the verdict), or an error with r->msg saying why
 * it could not run. */
sg_status sg_gradcheck(sg_gradcheck_fn f, void *ctx, sg_tensor **inputs, int n,
                       const sg_gradcheck_opts *opts, sg_gradcheck_report *r);

/* Compares your gradient (or any values) with the tape's, element by
 * element, with the tolerances of opts (NULL: defaults). Both arrays hold
 * the elements of a tensor of shape (ndim, shape), row-major. The result,
 * with the worst element, goes to *e. Returns e->ok; false (and e->checked
 * 0) when an argument is NULL or the shape is not 1..4 positive sizes. */
bool sg_grad_compare(const double *yours, const double *tape, int ndim, const int *shape,
                     const sg_gradcheck_opts *opts, sg_gradcheck_entry *e);
/* Same, against the gradient held by tensor x after a backward. */
bool sg_grad_compare_tensor(const double *yours, const sg_tensor *x,
                            const sg_gradcheck_opts *opts, sg_gradcheck_entry *e);

/* Prints a report of sg_gradcheck: the method and tolerances, one line per
 * input (name, shape, checked, failed with their share, worst element as
 * [i,j], tape, numeric, relerr, the tolerance that decided, ok|FAIL), a note
 * per failure with a kink, and the backward-twice line. names may be NULL;
 * stream NULL is stdout. */
void sg_gradcheck_print(const sg_gradcheck_report *r, const char *const *names, FILE *stream);

/* Prints the header of the lines below ("tape" and "yours" columns). */
void sg_grad_compare_header(FILE *stream);
/* One line for a result of sg_grad_compare: name, shape, checked, failed,
 * worst element, tape, yours, relerr, decided by, verdict. axes names the
 * tensor's axes, comma-separated ("b,i": the worst element prints as
 * [b=1, i=4]); NULL prints [1,4]. */
void sg_grad_compare_print(const char *name, const sg_gradcheck_entry *e, const char *axes, FILE *stream);
/* A sequence quantity compared per time step (e[0..T-1], step k labelled
 * t = first + k): a line per step, then one summary line naming the failing
 * steps and the worst element over all steps. Returns the number of failing
 * steps. */
int sg_grad_compare_steps_print(const char *name, const sg_gradcheck_entry *e, int T, int first,
                                const char *axes, FILE *stream);
/* Writes the multi-index of flat element `index` of a tensor of shape (ndim,
 * shape) into buf: "[1,4]", or "[b=1, i=4]" with axes "b,i". Returns buf. */
char *sg_index_str(char *buf, size_t n, int ndim, const int *shape, size_t index, const char *axes);

#ifdef __cplusplus
}
#endif
#endif
