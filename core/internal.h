/*
 * internal.h - what core/ and ops/ share and users never see: the tensor
 * struct, the op descriptor, the arena, and SG_TYPED, the one mechanism by
 * which a kernel body is written once and instantiated for float and double.
 *
 * Invariant: a tape tensor's struct, data and gradient all come from its
 * tape's arena; a heap tensor (tape == NULL) owns malloc'd data and grad.
 */
#ifndef SEQGRAD_INTERNAL_H
#define SEQGRAD_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "seqgrad/core.h"

/* An op is known to the tape only through this descriptor. forward reads
 * out->src[] and writes out->data; backward reads out->grad and accumulates
 * (+=) into the gradients of the sources that have one (grad != NULL). */
typedef struct sg_op {
    const char *name;
    void (*forward)(sg_tensor *out);
    void (*backward)(sg_tensor *out);
    /* backward writes a source's gradient that holds nothing yet
     * (sg_grad_fresh) with = over every element, or readies it with
     * sg_grad_ready before adding: the tape then skips zeroing it first */
    bool assigns;
    /* what backward never reads, so that a step's intermediates can give
     * their data back (sg_tape_recycle): bit i (SG_UNREAD(i), i < 6) for
     * source i's data, SG_UNREAD_OUT for the output's; 0 is the safe
     * default, everything read. SG_VIEW: the output shares source 0's
     * data (reshape) */
    unsigned char unread;
    /* row-local: row r of the output and of every gradient written reads
     * only row r of each tensor, along a first axis all share (core/rows.c
     * runs such ops on several threads, each on its own rows).
     * SG_ROWS_FLAT: element-wise with broadcasting within a row (sources of
     * the output's rank); SG_ROWS_OUTER: iarg[0] counts the rows (narrow,
     * select, index_select on a later axis); SG_ROWS_MATMUL: x W^T (+ C),
     * iarg[2] counts the rows, W (source 1) is read whole, and backward is
     * row-local only where W's gradient terms are staged (matmul.c decides,
     * sg_matmul_rows). 0: not row-local. */
    unsigned char rows;
} sg_op;

#define SG_ROWS_FLAT 1u
#define SG_ROWS_OUTER 2u
#define SG_ROWS_MATMUL 3u

#define SG_UNREAD(i) (1u << (i))
#define SG_VIEW 0x40u
#define SG_UNREAD_OUT 0x80u

#define SG_MAX_SRC 4

struct sg_tensor {
    sg_dtype dtype;
    int ndim;
    int shape[SG_MAX_DIMS];
    size_t size;
    void *data;
    void *grad;
    bool requires_grad;
    bool grad_pending;        /* backward: grad allocated, not yet zeroed (see tape.c) */
    bool data_read;           /* some backward reads data, or it is shared (a view) */
    bool staged;              /* a tape W with gradient terms staged (ops/matmul.c): summed
                               * when backward's walk reaches W */
    int part_row;             /* a row run's copy of the header (core/rows.c): 1 + its first row */
    sg_tape *tape;            /* NULL for heap tensors */
    sg_tensor *prev;          /* previous tensor recorded on the tape */

    const sg_op *op;          /* NULL for leaves */
    sg_tensor **src;          /* src_buf, or an arena array when more */
    int nsrc;
    sg_tensor *src_buf[SG_MAX_SRC];
    int iarg[6];              /* op arguments: axes, flags, sizes */
    double farg[2];           /* op arguments: scalars */
    void *aux;                /* op-owned arena memory: masks, indices, stats */
    void *aux2;
    char *name;               /* heap tensors in an sg_params: owned copy */
};

struct sg_arena_block;

typedef struct sg_arena {
    struct sg_arena_block *first, *cur;
    size_t used;              /* bytes used in cur */
    size_t total;             /* bytes held in all blocks */
    /* requests of half a block or more, one block each, in the order they
     * came: the next to hand out, and the one handed out before it */
    struct sg_arena_block *big_first, *big_next, *big_prev;
} sg_arena;

/* How many weights a recurrent loop may hold transposed (matmul.c). */
#define SG_MAX_HELD 8
/* How many gradient sizes backward recycles (tape.c); more sizes are left
 * in the arena until the reset. */
#define SG_SPARE_SIZES 32

/* ---- row runs (core/rows.c) -------------------------------------------------
 * A run of row-local ops (sg_op.rows) whose tensors share a first axis of
 * `rows`, executed by splitting those rows among threads: each thread runs
 * every op of the run, in order, on its own rows, through copies of the
 * tensors' headers that point at those rows. Element-wise results do not
 * depend on the split, so they are the same bits on any thread count. */
enum { SG_ROWRUN_MAX = 256 };
typedef struct {
    int n, rows;
    size_t work;                         /* elements of the ops' outputs */
    sg_tensor *op[SG_ROWRUN_MAX];
    unsigned char fresh[SG_ROWRUN_MAX];  /* backward: bit i, source i's gradient empty */
} sg_rowrun;

struct sg_tape {
    sg_arena arena;
    sg_tensor *last;          /* newest recorded tensor */
    sg_status err;
    char msg[512];
    bool grad_on;
    bool keep_grads;
    bool anomaly;
    bool abort_on_error;
    int passes;               /* backward passes since the reset */
    /* x W^T products in a loop over time (sg_tape_hold_transposes): each W's
     * transposed copy, made by the loop's first product in arena memory */
    bool hold_on;
    bool recycled;            /* spare lists hold data buffers (sg_tape_recycle) */
    int n_held;
    struct { const sg_tensor *w; const void *data; void *wt; } held[SG_MAX_HELD];
    /* backward of those products: W's gradient terms dC^T A, their rows
     * staged here and summed by one GEMM per STAGE_ROWS rows (matmul.c) */
    int n_staged;
    struct sg_stage {
        sg_tensor *w, *bias;  /* bias: a heap bias row whose gradient sums the staged dC rows too */
        int rows, cap;
        void *dc, *a;
    } staged[SG_MAX_HELD];
    /* gradients given back in backward (sg_tape_keep_grads off): free
     * buffers of one byte size each, linked through their first bytes */
    struct { size_t bytes; void *head; } spare[SG_SPARE_SIZES];
    /* inside a hold, with more than one thread (row_threads): recorded
     * row-local ops whose forward has not run yet, a cell step's chain,
     * run together by sg_tape_sync before anything reads their data */
    int row_threads;
    sg_rowrun defer;
};

/* Runs the forward of the ops a hold has deferred (sg_tape.defer), so
 * that their data can be read: before an op that is not row-local, a
 * recycle, the hold's end, a backward, and every accessor of data. */
void sg_tape_sync(sg_tape *t);
/* x's data as recorded: its tape's deferred ops run first (accessors). */
static inline void sg_synced(const sg_tensor *x)
{
    if (x && x->tape && x->tape->defer.n)
        sg_tape_sync(x->tape);
}

/* Between on and off, f32 products x W^T with a 2-D W run as x (W^T) on a
 * copy of W^T made once (ops/matmul.c), which oneDNN multiplies faster than
 * the transposed form (1.5-2.9x on 2 threads at B = 32, docs/speed.md).
 * For a loop over time steps that records the same weights again and again
 * (nn/rnn.c): W must not change between on and off. Both clear the copies.
 * Such a product, f32 or f64, also leaves W's gradient term dC^T x to
 * later: the terms' rows are staged and summed by one GEMM over many time
 * steps instead of one small-K GEMM per step, each of which reads and
 * writes all of dW (a parameter's at backward's end, a tape W's when the
 * walk reaches W). */
void sg_tape_hold_transposes(sg_tape *t, bool on);
/* Adds the staged weight-gradient terms into their weights' gradients
 * (ops/matmul.c); run_backward calls it when its walk ends. */
void sg_tape_flush_staged(sg_tape *t);
/* Adds those of a tape W (w->staged): run_backward calls it when its walk
 * reaches W, before W's gradient is read. */
void sg_tape_flush_weight(sg_tape *t, sg_tensor *w);

/* The threads a large product runs on (sg_blas_threads, else OpenMP's
 * default; 1 in a forked child, without OpenMP, and while f32 products run
 * on OpenBLAS, sg_gemm_openblas_only): row runs use as many. */
int sg_gemm_threads(void);

/* How many products oneDNN's matmul primitive ran so far (ops/matmul.c:
 * large f32 forwards of products recorded outside a hold; tests). */
long sg_matmul_primitive_runs(void);

/* Whether a product x W^T (SG_ROWS_MATMUL) may run its backward in a row
 * run, its rows of W's gradient terms staged at places reserved now; false
 * when it must run alone, or, with a run pending, when the staged rows
 * must first be summed: run the pending run and ask again (matmul.c). */
bool sg_matmul_rows(sg_tensor *x, bool run_pending);

/* Whether x's op may join r (or start it, when r is empty). */
bool sg_rows_joins(const sg_rowrun *r, const sg_tensor *x);
/* Whether x is one of r's ops (its data not computed yet, in a deferred run). */
bool sg_rows_pending(const sg_rowrun *r, const sg_tensor *x);
/* Adds x (which sg_rows_joins accepted); fresh as in sg_rowrun. */
void sg_rows_add(sg_rowrun *r, sg_tensor *x, unsigned fresh);
/* Runs r's ops (their backward, or forward) on up to threads threads, and
 * empties r. */
void sg_rows_run(sg_rowrun *r, bool backward, int threads);
/* How many row runs and sg_in_parts calls so far were split among threads
 * (tests). */
long sg_rows_parallel_runs(void);

/* Runs part(ctx, k, n) for k = 0..n-1, one per thread, on the threads of
 * sg_gemm_threads() when work (bytes or elements, the caller's measure) is
 * at least SG_PARTS_WORK and no parallel region is running, else part(ctx,
 * 0, 1). For work outside a time step's row runs that would leave the
 * second core idle: big zeroings and copies, a loss, a stack, a lookup, the
 * optimizer's update. Each part must compute its elements as the whole
 * would, so the split changes no bit. */
enum { SG_PARTS_WORK = 1 << 18 };
void sg_in_parts(size_t work, void (*part)(void *ctx, int k, int n), void *ctx);
/* Part k of n of [0, len): [*lo, *hi). */
static inline void sg_part_range(size_t len, int k, int n, size_t *lo, size_t *hi)
{
    *lo = len * (size_t)k / (size_t)n;
    *hi = len * (size_t)(k + 1) / (size_t)n;
}

/* Whether SEQGRAD_ABORT_ON_ERROR asks the first error to print and abort. */
bool sg_abort_on_error_wanted(void);

/* Library heap allocation: every malloc of seqgrad goes through these. */
void *sg_malloc(size_t n);
void *sg_calloc(size_t n);
void  sg_free(void *p);

/* Back to the first block, keeping every block (sg_tape_reset). */
void sg_arena_rewind(sg_arena *a);
/* Frees every block (sg_tape_free). */
void sg_arena_release(sg_arena *a);

#define SG_ALIGN 64

struct sg_arena_block {
    struct sg_arena_block *next;
    size_t cap;
    unsigned char *mem;       /* 64-byte aligned start inside this allocation */
};

/* sg_arena_alloc when the current block has no room (or n is 0 or huge):
 * the next kept block, else a new one. */
void *sg_arena_grow(sg_tape *t, size_t n, bool zero);

/* Arena memory, 64-byte aligned, zeroed when zero is true. NULL (and an
 * SG_ERR_NOMEM error on t) if the heap refused. Inline: every recorded op
 * asks at least once. */
static inline void *sg_arena_alloc(sg_tape *t, size_t n, bool zero)
{
    sg_arena *a = &t->arena;
    size_t m = (n + SG_ALIGN - 1) & ~(size_t)(SG_ALIGN - 1);
    if (n - 1 >= ((size_t)1 << 40) || !a->cur || a->used + m > a->cur->cap)
        return sg_arena_grow(t, n, zero);
    void *p = a->cur->mem + a->used;
    a->used += m;
    if (zero)
        memset(p, 0, m);
    return p;
}

/* With gradients not kept (sg_tape_keep_grads off): the tensors recorded
 * after mark (the tape's newest tensor before a loop step; NULL for all)
 * up to from (the newest, inclusive), except keep[0..nkeep-1], give their
 * data buffers to the tape's spare lists where no backward reads them, for
 * the next tensors of the same size. A step's intermediates must not be
 * read after the step. */
void sg_tape_recycle(sg_tape *t, sg_tensor *from, const sg_tensor *mark, sg_tensor *const *keep, int nkeep);
/* The newest tensor recorded on t (a mark for sg_tape_recycle). */
static inline sg_tensor *sg_tape_last(const sg_tape *t) { return t->last; }

/* A new tape tensor with room for its data (not zeroed) but not yet recorded.
 * shape has ndim entries. NULL and a recorded error on failure. */
sg_tensor *sg_tensor_alloc(sg_tape *t, sg_dtype dt, int ndim, const int *shape);

/* A tape tensor of another shape (same element count) sharing x's data:
 * for ops whose output is their input rearranged without a copy (reshape).
 * Safe because no op writes a tensor after making it. */
sg_tensor *sg_tensor_view(sg_tape *t, sg_tensor *x, int ndim, const int *shape);

/* For an op: makes out, wires it to its sources and records it: runs the
 * forward, checks anomalies, links it on the tape. Returns out or NULL. */
sg_tensor *sg_record(sg_tape *t, const sg_op *op, sg_tensor *out);

/* In the backward of an op that assigns (sg_op.assigns): whether x's
 * gradient holds nothing yet, so the op must write it with =, every
 * element; sg_grad_ready zeroes it instead, for a path that adds. */
static inline bool sg_grad_fresh(const sg_tensor *x) { return x->grad_pending; }
void sg_grad_ready(sg_tensor *x);

/* Whether an op may run on its arguments: false, with an error recorded on
 * t, for a NULL argument, one from another tape, one whose data a loop
 * step gave back (sg_tape_recycle) or a dtype mix, and false
 * once t holds an error. Used as:
 *     if (!sg_check_args(t, "add", 2, a, b)) return NULL;
 * The first n of the arguments are checked. */
#define sg_check_args(t, op, n, ...) sg_check_list(t, op, n, (const sg_tensor *const[]){__VA_ARGS__})
bool sg_check_failed(sg_tape *t, const char *op, int n, const sg_tensor *const *xs);

/* sg_check_args: the common case inline (ops are recorded millions of
 * times), the error's wording in sg_check_failed. */
static inline bool sg_check_list(sg_tape *t, const char *op, int n, const sg_tensor *const *xs)
{
    if (!t || t->err != SG_OK)
        return false;
    for (int i = 0; i < n; i++)
        if (!xs[i] || !xs[i]->data || (xs[i]->tape && xs[i]->tape != t) || xs[i]->dtype != xs[0]->dtype)
            return sg_check_failed(t, op, n, xs);
    return true;
}

/* Normalises a possibly negative axis against ndim; -1 means last. Records
 * "<op>: axis A out of range for (shape)" and returns -1 if bad. */
int sg_axis(sg_tape *t, const char *op, const sg_tensor *x, int axis);

/* True if x needs a gradient on this tape (in grad mode). */
static inline bool sg_wants_grad(const sg_tape *t, const sg_tensor *x)
{
    return t->grad_on && x->requires_grad;
}

/* Sizes of the dimensions before, at and after axis: x = (outer, n, inner). */
static inline void sg_split_axis(const sg_tensor *x, int axis, size_t *outer, size_t *n, size_t *inner)
{
    size_t o = 1, in = 1;
    for (int d = 0; d < axis; d++)
        o *= (size_t)x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        in *= (size_t)x->shape[d];
    *outer = o, *n = (size_t)x->shape[axis], *inner = in;
}

/* ---- broadcasting (core/broadcast.c) -------------------------------------
 * Shapes are aligned on the right and padded to 4-D; a source dimension of 1
 * gets stride 0, so one loop serves every broadcast. */
typedef struct {
    int shape[SG_MAX_DIMS];         /* the output's, padded on the left */
    size_t sa[SG_MAX_DIMS], sb[SG_MAX_DIMS];  /* element strides of a and b */
} sg_bcast;

/* Output shape of broadcasting a with b; records
 * "<op>: shapes (2,3) and (4) cannot be broadcast" and returns false if not. */
bool sg_broadcast_shape(sg_tape *t, const char *op, const sg_tensor *a, const sg_tensor *b,
                        int *ndim, int *shape);
/* One keep flag (mask value != 0) per element of x, for a mask that
 * broadcasts to x's shape; arena memory. Records an error naming op if the
 * mask does not broadcast to x. */
unsigned char *sg_expand_mask(sg_tape *t, const char *op, const sg_tensor *x, const sg_tensor *mask);
/* Strides that read a and b (either may be NULL) at out's positions. */
void sg_bcast_init(sg_bcast *g, const sg_tensor *out, const sg_tensor *a, const sg_tensor *b);

/* Runs body for every output element with o (flat output index), ia and ib
 * (flat indices into a and b) in scope. */
#define SG_FOR_BCAST(g, ...)                                                        \
    do {                                                                            \
        size_t o_ = 0;                                                              \
        for (int i0_ = 0; i0_ < (g).shape[0]; i0_++)                                \
            for (int i1_ = 0; i1_ < (g).shape[1]; i1_++)                            \
                for (int i2_ = 0; i2_ < (g).shape[2]; i2_++) {                      \
                    size_t ia_ = i0_ * (g).sa[0] + i1_ * (g).sa[1] + i2_ * (g).sa[2]; \
                    size_t ib_ = i0_ * (g).sb[0] + i1_ * (g).sb[1] + i2_ * (g).sb[2]; \
                    for (int i3_ = 0; i3_ < (g).shape[3];                           \
                         i3_++, o_++, ia_ += (g).sa[3], ib_ += (g).sb[3]) {         \
                        const size_t o = o_, ia = ia_, ib = ib_;                    \
                        (void)o, (void)ia, (void)ib;                                \
                        __VA_ARGS__                                                 \
                    }                                                               \
                }                                                                   \
    } while (0)

/* SG_HOT: the few element-wise kernels that dominate a training step are
 * built three times, for AVX-512F (16 floats a vector), AVX2 and the x86-64
 * baseline, and the loader picks one (an ifunc). Results are identical: ISO
 * C mode keeps -ffp-contract=off (no FMA fusion), the vectoriser never
 * reassociates, and the reductions' orders are written out (SUM8); the
 * outputs and gradients of LSTM, GRU and RNN layers, layer norm and both
 * softmaxes were compared bit for bit between the AVX-512 and AVX2 builds
 * (docs/speed.md). The AVX-512 versions ran the recurrent layers 2-10 %
 * faster. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SG_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SG_HOT
#endif

/* ---- a vectorisable float exp ---------------------------------------------
 * e^x for x in [-87, 88], never NaN: callers clamp first, in a pass of their
 * own (a clamp or a NaN test in the same loop stops GCC from vectorising it),
 * with `a >= -87 ? a : -87`, which also sends NaN to -87, and restore NaN in
 * the pass after. e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2,
 * e^r by the Cephes polynomial (evaluated by Estrin's scheme); relative error below 2e-7
 * (tests/test_ops_unary.c checks it against libm). f32 kernels use it; f64
 * kernels keep libm for gradient checks. */
static inline float sg_expf(float x)
{
    /* round to nearest by truncation (floorf is a call without SSE4.1) */
    int k = (int)(x * 1.44269504088896341f + __builtin_copysignf(0.5f, x));
    float n = (float)k;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    /* the polynomial by Estrin's scheme: three pairs at once, then r^2 and
     * r^4, so the chain of dependent operations is half of Horner's (a
     * tanh or sigmoid of a few elements waits on that chain: bench_tape) */
    float r2 = r * r, r4 = r2 * r2;
    float p01 = 1.9875691500e-4f * r + 1.3981999507e-3f;
    float p23 = 8.3334519073e-3f * r + 4.1665795894e-2f;
    float p45 = 1.6666665459e-1f * r + 5.0000001201e-1f;
    float p = (p01 * r4 + p23 * r2) + p45;
    p = p * r2 + r + 1.0f;
    union { unsigned u; float f; } scale = {.u = (unsigned)(k + 127) << 23};
    return p * scale.f;
}

/*
 * SG_TYPED(dtype, body): runs body with `T` defined as float or double to
 * match dtype. Together with <tgmath.h> (exp, tanh, log ... pick the float or
 * double function from the argument's type) a kernel is written once:
 *
 *     SG_TYPED(out->dtype, {
 *         const T *x = out->src[0]->data;
 *         T *y = out->data;
 *         for (size_t i = 0; i < out->size; i++)
 *             y[i] = tanh(x[i]);
 *     });
 *
 * Literals inside must be cast ((T)0.5) so float kernels stay float.
 */
#define SG_TYPED(dt, ...)                                   \
    do {                                                    \
        if ((dt) == SG_F32) {                               \
            typedef float T;                                \
            __VA_ARGS__                                     \
        } else {                                            \
            typedef double T;                               \
            __VA_ARGS__                                     \
        }                                                   \
    } while (0)

#endif
