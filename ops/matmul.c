/*
 * matmul.c - C = op(A) op(B), row-major, via OpenBLAS or oneDNN; batched for attention.
 *   forward:  C(M,N)  = alpha A'(M,K) @ B'(K,N)   A' = A or A^T, B' = B or B^T
 *   backward: dA'    += alpha dC @ B'^T          (dA = dA'^T when A was transposed)
 *             dB'    += alpha A'^T @ dC          (dB = dB'^T when B was transposed)
 * alpha is 1 except for sg_bmm_scaled (attention's 1/sqrt(d), free in GEMM).
 * beta = 1 in the backward GEMMs is what makes them accumulate; beta = 0
 * writes a gradient that holds nothing yet (sg_grad_fresh) without zeroing
 * it. Transposes go to the GEMM as flags, except the held W^T below.
 * addmm adds a bias row: C = A' B' + b, C pre-filled with b and beta = 1,
 * db += column sums of dC (the linear layer in one op, as torch.addmm); or
 * a whole addend of C's shape, db = dC (a cell's gates: xp_t + h W_hh^T).
 * Inside a loop that holds transposes (sg_tape_hold_transposes, nn/rnn.c),
 * x W^T runs forward as x (W^T) on a copy of W^T made once per loop; the
 * backward reads W either way. There, in f32 and f64, W's gradient term
 * dW += dC^T x is staged: its rows of dC and x are copied aside and summed
 * when STAGE_ROWS rows have gathered, or when backward ends for a heap W
 * (sg_tape_flush_staged) and when the walk reaches a tape W (a slice of a
 * parameter: sg_tape_flush_weight), one GEMM with K up to 256 rather than a
 * GEMM with K = B per time step, each of which reads and writes all of dW.
 * iarg: [0] trans flags, [1] batch count, [2] M, [3] N, [4] K, [5] 1 when
 * W's gradient is staged; farg[0] alpha; aux: the held W^T or NULL.
 */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#ifdef SG_GEMM_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#endif

#include "../core/internal.h"
#include "seqgrad/ops.h"

void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

/* The GEMM backend is chosen at build time (meson option gemm): OpenBLAS
 * always runs f64, and f32 too unless oneDNN's sgemm was found, which runs
 * the skinny products of recurrent layers 1.3-2.1x faster here
 * (docs/speed.md). oneDNN threads with OpenMP, whose thread count belongs to
 * each calling thread: every thread sets it before a product whenever the
 * count it wants changes, so a shard's thread runs on one like OpenBLAS.
 * A product under SMALL_PRODUCT multiply-adds runs on one thread: waking
 * the second costs more than it saves (a course-size char-LM's products,
 * 4096 to 409 600, ran 1.25x slower on 2 threads than on 1 without it). GNU
 * OpenMP's threads do not survive fork(), and a child that opened a
 * parallel region would wait for them forever: a forked child's products
 * run on one thread.
 * The same bits on any thread count: oneDNN 2.6's sgemm on 2 threads gave
 * other bits than on 1 for a single row (M = 1, any form) and for x W^T
 * with K > 768 (K = 1024 to 16384, M 16 to 2048, N 256 and 1024; K up to
 * 768 gave the same bits), measured with its AVX-512 kernels here: such
 * products run on one thread. (With its AVX2 kernels, ONEDNN_MAX_CPU_ISA=
 * AVX2, it also splits K when M N is small, from M N = 16 to 16384 with
 * K >= 1024; not covered here.) */
#ifdef SG_GEMM_ONEDNN
#define SMALL_PRODUCT 1048576.0
static atomic_int blas_threads;            /* 0 until sg_blas_threads sets it */
static int default_threads;                /* OpenMP's count before any was set */
static _Thread_local int omp_threads;      /* what this thread last told OpenMP */
static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;

static void in_forked_child(void)
{
    atomic_store(&blas_threads, 1);
    omp_threads = 0;
}

static atomic_bool openblas_only;

/* ---- large products outside a hold: oneDNN's matmul primitive ----------------
 * dnnl_sgemm allocates its packing buffers on every call, in every thread
 * it runs on. For the layer's big products (the input projection) that is
 * an 800 KB aligned allocation per call in the second thread, and glibc's
 * allocator lets that thread's arena grow a call at a time (the small
 * remainders of each aligned block, cached per thread, keep the freed
 * blocks apart): 7 MB of the GRU layer's 2-thread peak, none of it in use
 * (docs/speed.md). The matmul primitive takes its scratch memory from the
 * caller instead (here one buffer per thread, kept), is as fast on these
 * shapes (brgemm), and gives the same bits on 1 and 2 threads (checked for
 * M 64 to 4096, N 65 to 2048, K 256 to 2048; tests/test_ops_matmul.c).
 * It runs the forward of products recorded outside a hold with at least
 * PRIM_MIN_ROWS rows: such a product never runs split among row runs, so
 * it takes this path on any thread count. Primitives are made once per
 * shape and kept, PRIM_CACHE of them; other shapes go to dnnl_sgemm. */
enum { PRIM_MIN_ROWS = 64, PRIM_CACHE = 32 };

typedef struct {
    int M, N, K, lda, ldb, ldc, threads;
    bool ta, tb, add, bias;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t md[5];            /* A, B, C, scratch, the bias row */
} prim_entry;

static dnnl_engine_t engine;             /* NULL: no primitives */
static pthread_mutex_t prim_lock = PTHREAD_MUTEX_INITIALIZER;
static prim_entry prims[PRIM_CACHE];
static int n_prims;
static atomic_long prim_runs;

long sg_matmul_primitive_runs(void) { return atomic_load(&prim_runs); }

/* each calling thread's stream and scratch buffer, freed when it exits */
typedef struct {
    dnnl_stream_t stream;
    void *scratch;
    size_t cap;
} prim_thread;
static pthread_key_t prim_key;

static void prim_thread_free(void *p)
{
    prim_thread *pt = p;
    if (pt->stream)
        dnnl_stream_destroy(pt->stream);
    sg_free(pt->scratch);
    sg_free(pt);
}

static void gemm_init(void)
{
    const char *e = getenv("SEQGRAD_GEMM");
    if (e && !strcmp(e, "openblas"))
        atomic_store(&openblas_only, true);
    default_threads = omp_get_max_threads();
    pthread_atfork(NULL, NULL, in_forked_child);
    if (pthread_key_create(&prim_key, prim_thread_free) != 0 || dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

/* this thread's OpenMP count set for the product C(M,N) = A' B' (B' = B^T
 * when tb), by dnnl_sgemm (sgemm) or the matmul primitive */
static void threads_for(int M, int N, int K, bool tb, bool sgemm)
{
    pthread_once(&gemm_once, gemm_init);
    int n = atomic_load(&blas_threads);
    /* a row run's part (core/rows.c) is already one of the threads; by
     * sgemm, a row alone, or x W^T over K > 768, gets other bits on more
     * (see above) */
    bool alone = (double)M * N * K < SMALL_PRODUCT || omp_in_parallel() || (sgemm && (M == 1 || (tb && K > 768)));
    n = alone ? 1 : n ? n : default_threads;
    if (n != omp_threads)
        omp_set_num_threads(omp_threads = n);
}
#endif

int sg_blas_threads(int n)
{
#ifdef SG_GEMM_ONEDNN
    pthread_once(&gemm_once, gemm_init);
    int set = atomic_load(&blas_threads), was = set ? set : default_threads;
    if (n >= 1)
        atomic_store(&blas_threads, n);
#else
    int was = openblas_get_num_threads();
#endif
    if (n >= 1)
        openblas_set_num_threads(n);
    return was;
}

int sg_gemm_threads(void)
{
#ifdef SG_GEMM_ONEDNN
    pthread_once(&gemm_once, gemm_init);
    if (atomic_load(&openblas_only))
        return 1;       /* OpenBLAS's pool runs the products: no second pool */
    int n = atomic_load(&blas_threads);
    return n ? n : default_threads;
#else
    return 1;
#endif
}

bool sg_gemm_openblas_only(bool on)
{
#ifdef SG_GEMM_ONEDNN
    pthread_once(&gemm_once, gemm_init);
    return atomic_exchange(&openblas_only, on);
#else
    (void)on;
    return true;
#endif
}

#ifndef SG_GEMM_ONEDNN
long sg_matmul_primitive_runs(void) { return 0; }
#endif

const char *sg_gemm_backend(void)
{
#ifdef SG_GEMM_ONEDNN
    pthread_once(&gemm_once, gemm_init);
    if (!atomic_load(&openblas_only))
        return "oneDNN sgemm (f32), OpenBLAS (f64)";
#endif
    return "OpenBLAS";
}

#ifdef SG_GEMM_ONEDNN
/* A (M,K) stored as op(A) with leading dimension ld: the strides of a
 * plain (rows, cols) matrix, transposed when t */
static bool plain_md(dnnl_memory_desc_t *md, int rows, int cols, bool t, int ld)
{
    dnnl_dims_t strides = {t ? 1 : ld, t ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, (dnnl_dims_t){rows, cols}, dnnl_f32, strides) == dnnl_success;
}

/* The cached primitive for this product, made if new; NULL if it cannot be
 * (the cache is full, or oneDNN refused). */
static const prim_entry *prim_for(bool ta, bool tb, int M, int N, int K, int lda, int ldb, int ldc, bool add,
                                  bool bias, int threads)
{
    const prim_entry *found = NULL;
    pthread_mutex_lock(&prim_lock);
    for (int i = 0; i < n_prims && !found; i++) {
        const prim_entry *p = &prims[i];
        if (p->M == M && p->N == N && p->K == K && p->lda == lda && p->ldb == ldb && p->ldc == ldc &&
            p->ta == ta && p->tb == tb && p->add == add && p->bias == bias && p->threads == threads)
            found = p;
    }
    if (!found && n_prims < PRIM_CACHE) {
        prim_entry *p = &prims[n_prims];
        *p = (prim_entry){.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .ta = ta, .tb = tb,
                          .add = add, .bias = bias, .threads = threads};
        dnnl_matmul_desc_t md;
        dnnl_primitive_attr_t attr = NULL;
        dnnl_post_ops_t ops = NULL;
        dnnl_primitive_desc_t pd = NULL;
        const dnnl_memory_desc_t *sd;
        bool ok = plain_md(&p->md[0], M, K, ta, lda) && plain_md(&p->md[1], K, N, tb, ldb) &&
                  plain_md(&p->md[2], M, N, false, ldc) && (!bias || plain_md(&p->md[4], 1, N, false, N)) &&
                  dnnl_matmul_desc_init(&md, &p->md[0], &p->md[1], bias ? &p->md[4] : NULL, &p->md[2]) == dnnl_success &&
                  dnnl_primitive_attr_create(&attr) == dnnl_success &&
                  dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
        if (ok && add)      /* beta 1: C += A' B' */
            ok = dnnl_post_ops_create(&ops) == dnnl_success && dnnl_post_ops_append_sum(ops, 1.0f) == dnnl_success &&
                 dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
        ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success &&
             (sd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)) != NULL &&
             dnnl_primitive_create(&p->prim, pd) == dnnl_success;
        if (ok) {
            p->md[3] = *sd;
            found = p;
            n_prims++;
        }
        if (pd)
            dnnl_primitive_desc_destroy(pd);
        if (ops)
            dnnl_post_ops_destroy(ops);
        if (attr)
            dnnl_primitive_attr_destroy(attr);
    }
    pthread_mutex_unlock(&prim_lock);
    return found;
}

/* C = op(A) op(B) (+ C when add, + the row bias on every row when given)
 * by the cached primitive; false if it did not run (the caller then runs
 * dnnl_sgemm). Threads as threads_for set. */
static bool prim_gemm(bool ta, bool tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb,
                      bool add, const void *bias, void *C, int ldc)
{
    if (!engine)
        return false;
    const prim_entry *p = prim_for(ta, tb, M, N, K, lda, ldb, ldc, add, bias != NULL, omp_threads);
    prim_thread *pt = p ? pthread_getspecific(prim_key) : NULL;
    if (p && !pt) {
        if (!(pt = sg_calloc(sizeof *pt)) || pthread_setspecific(prim_key, pt) != 0) {
            sg_free(pt);
            return false;
        }
    }
    if (!p || (!pt->stream && dnnl_stream_create(&pt->stream, engine, dnnl_stream_default_flags) != dnnl_success))
        return false;
    size_t need = dnnl_memory_desc_get_size(&p->md[3]);
    if (need > pt->cap) {
        void *grown = sg_malloc(need);
        if (!grown)
            return false;
        sg_free(pt->scratch);
        pt->scratch = grown, pt->cap = need;
    }
    void *data[5] = {(void *)A, (void *)B, C, pt->scratch, (void *)bias};
    static const int arg[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD, DNNL_ARG_BIAS};
    dnnl_exec_arg_t args[5];
    int made = 0, n = bias ? 5 : 4;
    while (made < n && dnnl_memory_create(&args[made].memory, &p->md[made], engine, data[made]) == dnnl_success)
        args[made].arg = arg[made], made++;
    bool ok = made == n && dnnl_primitive_execute(p->prim, pt->stream, n, args) == dnnl_success &&
              dnnl_stream_wait(pt->stream) == dnnl_success;
    for (int i = 0; i < made; i++)
        dnnl_memory_destroy(args[i].memory);
    if (ok)
        atomic_fetch_add(&prim_runs, 1);
    return ok;
}

#endif

/* For a product that never runs split among row runs (the forward of one
 * recorded outside a hold): C = op(A) op(B) + beta C (+ bias, a row of N,
 * on every row, when given) by the matmul primitive if it can (large,
 * f32, alpha 1, beta 0 or 1); true if it ran. */
static bool gemm_whole(sg_dtype dt, bool ta, bool tb, int M, int N, int K, double alpha, const void *A, int lda,
                       const void *B, int ldb, double beta, const void *bias, void *C, int ldc)
{
#ifdef SG_GEMM_ONEDNN
    pthread_once(&gemm_once, gemm_init);
    if (dt == SG_F32 && M >= PRIM_MIN_ROWS && alpha == 1.0 && (beta == 0.0 || beta == 1.0) && !omp_in_parallel() &&
        !atomic_load_explicit(&openblas_only, memory_order_relaxed)) {
        threads_for(M, N, K, tb, false);
        return prim_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta == 1.0, bias, C, ldc);
    }
#else
    (void)dt, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb;
    (void)beta, (void)bias, (void)C, (void)ldc;
#endif
    return false;
}

/* One GEMM in either dtype: C = alpha op(A) op(B) + beta C. */
static void gemm(sg_dtype dt, bool ta, bool tb, int M, int N, int K, double alpha,
                 const void *A, int lda, const void *B, int ldb, double beta, void *C, int ldc)
{
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (dt == SG_F32) {
#ifdef SG_GEMM_ONEDNN
        pthread_once(&gemm_once, gemm_init);
        if (!atomic_load_explicit(&openblas_only, memory_order_relaxed)) {
            threads_for(M, N, K, tb, true);
            if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, (float)alpha, A, lda, B, ldb,
                           (float)beta, C, ldc) == dnnl_success)
                return;
        }
#endif
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
    } else
        cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

struct transposing {
    const sg_tensor *w;
    float *wt;
};

/* Part k of n of W (N, K) written transposed: W's rows of one range of
 * tiles, into their columns of W^T (whole cache lines: 16 floats). In
 * tiles, each written row by row: rows of N floats 4 KB apart (N = 1024)
 * alias in the L1 cache, and writing down a tile's column (32 wide, as
 * before) took 1.7 ms for a (1024, 256) W, this 0.09. */
static void transpose_part(void *ctx, int k, int n)
{
    enum { TILE = 16 };
    const struct transposing *tr = ctx;
    int N = tr->w->shape[0], K = tr->w->shape[1];
    const float *W = tr->w->data;
    size_t lo, hi;
    sg_part_range((size_t)(N + TILE - 1) / TILE, k, n, &lo, &hi);
    for (int n0 = (int)lo * TILE; n0 < (int)hi * TILE && n0 < N; n0 += TILE)
        for (int k0 = 0; k0 < K; k0 += TILE)
            for (int r = k0; r < K && r < k0 + TILE; r++)
                for (int c = n0; c < N && c < n0 + TILE; c++)
                    tr->wt[(size_t)r * N + c] = W[(size_t)c * K + r];
}

/* W^T (K, N) for x W^T with W (N, K), from the tape's held copies or made
 * now (in parts); NULL where the product keeps the transposed form (no
 * hold, f64, a full table, or no memory: the product is still right
 * without it). */
static const void *held_transpose(sg_tape *t, const sg_tensor *w)
{
    if (!t->hold_on || w->dtype != SG_F32 || w->ndim != 2)
        return NULL;
    for (int i = 0; i < t->n_held; i++)
        if (t->held[i].w == w && t->held[i].data == w->data)
            return t->held[i].wt;
    if (t->n_held == SG_MAX_HELD)
        return NULL;
    float *wt = sg_arena_alloc(t, w->size * sizeof *wt, false);
    if (!wt)
        return NULL;
    sg_in_parts(w->size * sizeof *wt, transpose_part, &(struct transposing){w, wt});
    t->held[t->n_held].w = w, t->held[t->n_held].data = w->data, t->held[t->n_held].wt = wt;
    t->n_held++;
    return wt;
}

/* Rows staged per weight before a GEMM sums them: enough for the GEMM to
 * run at its large-K speed (256 ran as fast as 512 on the LSTM H = 512 and
 * GRU H = 256 layers, in 1 to 3.6 MB less), and at most STAGE_BYTES of
 * copies per weight. */
enum { STAGE_ROWS = 256, STAGE_BYTES = 4 << 20 };

struct row_sum {
    sg_dtype dt;
    void *db;
    const void *dc;
    size_t rows;
    int n;
};

/* Part k of n of the columns of add_rows */
static void add_rows_part(void *ctx, int k, int n)
{
    const struct row_sum *a = ctx;
    size_t lo, hi;
    sg_part_range((size_t)a->n, k, n, &lo, &hi);
    SG_TYPED(a->dt, {
        const T *c = a->dc;
        T *b = a->db;
        for (size_t r = 0; r < a->rows; r++)
            for (size_t j = lo; j < hi; j++)
                b[j] += c[r * (size_t)a->n + j];
    });
}

/* db(n) += each of dc's rows (rows, n), one after the other (each column
 * in that order, whichever part of the columns a thread takes) */
static void add_rows(sg_dtype dt, void *db, const void *dc, size_t rows, int n)
{
    sg_in_parts(rows * (size_t)n * sg_dtype_size(dt), add_rows_part, &(struct row_sum){dt, db, dc, rows, n});
}

/* dW(N,K) += dC^T(N,rows) @ x(rows,K), the rows in the order staged, and
 * a bias row's db += dC's rows, in the order backward would have added them */
static void flush(struct sg_stage *s)
{
    int N = s->w->shape[0], K = s->w->shape[1];
    if (s->rows)
        gemm(s->w->dtype, true, false, N, K, s->rows, 1.0, s->dc, N, s->a, K, 1.0, s->w->grad, K);
    if (s->rows && s->bias && s->bias->grad)
        add_rows(s->w->dtype, s->bias->grad, s->dc, (size_t)s->rows, N);
    s->rows = 0;
}

/* A product's bias row whose gradient is staged with W's terms; NULL for
 * none, a full addend, or no gradient. */
static sg_tensor *bias_row(const sg_tensor *out)
{
    sg_tensor *b = out->nsrc > 2 ? out->src[2] : NULL;
    return b && b->size != out->size && b->requires_grad ? b : NULL;
}

/* Whether a product's weight-gradient terms may be staged: held (iarg[5]),
 * not in anomaly mode (which checks each op's gradients as it goes), and
 * no bias row of the tape's (its gradient must be whole before the walk
 * reaches it). A W of the tape's (a slice of a parameter, as the classic
 * GRU's) has its terms summed when the walk reaches it (sg_tape_flush_weight),
 * a parameter's when the walk ends. */
static bool stageable(const sg_tensor *out)
{
    const sg_tensor *bias = bias_row(out);
    return out->iarg[5] && !out->tape->anomaly && !(bias && bias->tape);
}

/* W's staging buffers, or NULL before its first staged term */
static struct sg_stage *stage_of(sg_tape *t, const sg_tensor *w)
{
    for (int i = 0; i < t->n_staged; i++)
        if (t->staged[i].w == w)
            return &t->staged[i];
    return NULL;
}

/* The staging buffers of W's gradient terms, with room for m more rows,
 * or NULL: then the term is added now (no slot or memory left, or an m
 * larger than W's buffers). */
static struct sg_stage *stage_for(sg_tape *t, sg_tensor *w, sg_tensor *bias, int m)
{
    int N = w->shape[0], K = w->shape[1];
    size_t es = sg_dtype_size(w->dtype);
    struct sg_stage *s = stage_of(t, w);
    if (!s) {
        if (t->n_staged == SG_MAX_HELD)
            return NULL;
        int cap = (int)(STAGE_BYTES / ((size_t)(N + K) * es));
        cap = cap > STAGE_ROWS ? STAGE_ROWS : cap < m ? m : cap;
        void *dc = sg_arena_alloc(t, (size_t)cap * N * es, false);
        void *a = dc ? sg_arena_alloc(t, (size_t)cap * K * es, false) : NULL;
        if (!a)
            return NULL;
        s = &t->staged[t->n_staged++];
        *s = (struct sg_stage){.w = w, .bias = bias, .cap = cap, .dc = dc, .a = a};
    }
    if (s->bias != bias)            /* another bias (or none): this product adds its own */
        return NULL;
    if (s->rows + m > s->cap)
        flush(s);
    if (m > s->cap)
        return NULL;
    if (w->tape) {          /* the flush adds into it: zeroed now, summed when the walk reaches W */
        sg_grad_ready(w);
        w->staged = true;
    }
    return s;
}

void sg_tape_flush_staged(sg_tape *t)
{
    for (int i = 0; i < t->n_staged; i++)
        if (t->staged[i].w->grad)      /* (a tape W the walk reached had its terms summed then) */
            flush(&t->staged[i]);
}

void sg_tape_flush_weight(sg_tape *t, sg_tensor *w)
{
    struct sg_stage *s = stage_of(t, w);
    if (s)
        flush(s);
    w->staged = false;
}

/* Stages the term dW += dC^T(N,M) x(M,K) of a held product; false when it
 * must be added now. A row run's part (out->part_row) copies its rows to
 * the places sg_matmul_rows reserved (out->aux2: the first staged row). */
static bool stage_weight_grad(sg_tensor *out, sg_tensor *w, const void *dC, const void *x)
{
    sg_tape *t = out->tape;
    int M = out->iarg[2], N = out->iarg[3], K = out->iarg[4];
    if (!stageable(out))
        return false;
    struct sg_stage *s;
    size_t at;
    if (out->part_row) {
        s = stage_of(t, w);
        at = (size_t)(uintptr_t)out->aux2 + (size_t)out->part_row - 1;
    } else {
        if (!(s = stage_for(t, w, bias_row(out), M)))
            return false;
        at = (size_t)s->rows;
        s->rows += M;
    }
    size_t es = sg_dtype_size(w->dtype);
    memcpy((char *)s->dc + at * N * es, dC, (size_t)M * N * es);
    memcpy((char *)s->a + at * K * es, x, (size_t)M * K * es);
    return true;
}

bool sg_matmul_rows(sg_tensor *x, bool run_pending)
{
    sg_tape *t = x->tape;
    sg_tensor *w = x->src[1], *bias = bias_row(x);
    int M = x->iarg[2];
    if (!w->requires_grad)
        return !bias;                     /* no weight gradient: nothing to sum, unless a bias row */
    if (!stageable(x))
        return false;                     /* dW (and db) by its own sums, over all rows */
    struct sg_stage *s = stage_of(t, w);
    if (s && s->bias != bias)
        return false;
    if (s && s->rows + M > s->cap && run_pending)
        return false;                     /* full: the pending run's rows go first */
    if (!(s = stage_for(t, w, bias, M)))
        return false;
    x->aux2 = (void *)(uintptr_t)s->rows;
    s->rows += M;
    return true;
}

/* Part k of n of C's rows set to the addend: all of it (of C's shape) or
 * a bias row on every row. */
static void addend_part(void *ctx, int k, int n)
{
    sg_tensor *out = ctx;
    const sg_tensor *bias = out->src[2];
    size_t es = sg_dtype_size(out->dtype), N = (size_t)out->iarg[3], lo, hi;
    sg_part_range(out->size / N, k, n, &lo, &hi);
    if (bias->size == out->size)
        memcpy((char *)out->data + lo * N * es, (const char *)bias->data + lo * N * es, (hi - lo) * N * es);
    else
        for (size_t r = lo; r < hi; r++)
            memcpy((char *)out->data + r * N * es, bias->data, N * es);
}

static void matmul_forward(sg_tensor *out)
{
    const sg_tensor *a = out->src[0], *b = out->src[1], *bias = out->nsrc > 2 ? out->src[2] : NULL;
    bool ta = out->iarg[0] & SG_TRANS_A, tb = out->iarg[0] & SG_TRANS_B;
    int batch = out->iarg[1], M = out->iarg[2], N = out->iarg[3], K = out->iarg[4];
    size_t es = sg_dtype_size(out->dtype);
    /* a plain matmul has batch 1, so B's stride never matters there */
    size_t sa = (size_t)M * K * es, sb = b->ndim == 2 ? 0 : (size_t)K * N * es, sc = (size_t)M * N * es;

    /* not held (iarg[5]): never split among row runs, so the primitive may
     * run it on any thread count, a bias row added in the same pass, a full
     * addend copied into C first */
    bool whole = !out->iarg[5] && batch == 1, full = bias && bias->size == out->size;
    if (whole && !full &&
        gemm_whole(out->dtype, ta, tb, M, N, K, out->farg[0], a->data, ta ? M : K, b->data, tb ? K : N, 0.0,
                   bias ? bias->data : NULL, out->data, N))
        return;
    if (bias)        /* C = the full addend or b on every row, then C += A' B' */
        sg_in_parts(out->size * es, addend_part, out);
    if (whole && full &&
        gemm_whole(out->dtype, ta, tb, M, N, K, out->farg[0], a->data, ta ? M : K, b->data, tb ? K : N, 1.0, NULL,
                   out->data, N))
        return;
    if (out->aux)   /* x W^T on a held copy of W^T (plain matmul or addmm) */
        gemm(out->dtype, ta, false, M, N, K, out->farg[0], a->data, ta ? M : K, out->aux, N,
             bias ? 1.0 : 0.0, out->data, N);
    else
        for (int i = 0; i < batch; i++)
            gemm(out->dtype, ta, tb, M, N, K, out->farg[0],
                 (const char *)a->data + i * sa, ta ? M : K,
                 (const char *)b->data + i * sb, tb ? K : N,
                 bias ? 1.0 : 0.0, (char *)out->data + i * sc, N);
}

static void matmul_backward(sg_tensor *out)
{
    sg_tensor *a = out->src[0], *b = out->src[1];
    bool ta = out->iarg[0] & SG_TRANS_A, tb = out->iarg[0] & SG_TRANS_B;
    int batch = out->iarg[1], M = out->iarg[2], N = out->iarg[3], K = out->iarg[4];
    int lda = ta ? M : K, ldb = tb ? K : N;
    double alpha = out->farg[0];
    size_t es = sg_dtype_size(out->dtype);
    size_t sa = (size_t)M * K * es, sb = b->ndim == 2 ? 0 : (size_t)K * N * es, sc = (size_t)M * N * es;

    sg_tensor *bias = out->nsrc > 2 ? out->src[2] : NULL;
    if (bias && bias->grad && bias->size == out->size) {     /* the full addend: db = dC */
        bool fresh = sg_grad_fresh(bias);
        SG_TYPED(out->dtype, {
            const T *dC = out->grad;
            T *db = bias->grad;
            for (size_t i = 0; i < out->size; i++)
                db[i] = (fresh ? 0 : db[i]) + dC[i];
        });
    }
    /* beta 0 writes an empty gradient (sg_grad_fresh), beta 1 adds; a 2-D B
     * shared by every batch gathers them all, from the first */
    bool fa = a->grad && sg_grad_fresh(a), fb = b->grad && sg_grad_fresh(b), staged = false;
    for (int i = 0; i < batch; i++) {
        const char *A = (const char *)a->data + i * sa, *B = (const char *)b->data + i * sb;
        const char *dC = (const char *)out->grad + i * sc;
        if (a->grad) {
            char *dA = (char *)a->grad + i * sa;
            double beta = fa ? 0.0 : 1.0;
            if (!ta)  /* dA(M,K) = alpha dC(M,N) @ B'^T */
                gemm(out->dtype, false, !tb, M, K, N, alpha, dC, N, B, ldb, beta, dA, K);
            else      /* dA(K,M) = alpha B'(K,N) @ dC^T */
                gemm(out->dtype, tb, true, K, M, N, alpha, B, ldb, dC, N, beta, dA, M);
        }
        if (b->grad && stage_weight_grad(out, b, dC, A))
            staged = true;
        else if (b->grad) {
            char *dB = (char *)b->grad + i * sb;
            double beta = fb && (sb || i == 0) ? 0.0 : 1.0;
            if (!tb)  /* dB(K,N) = alpha A'^T(K,M) @ dC(M,N) */
                gemm(out->dtype, !ta, false, K, N, M, alpha, A, lda, dC, N, beta, dB, N);
            else      /* dB(N,K) = alpha dC^T(N,M) @ A'(M,K) */
                gemm(out->dtype, true, ta, N, K, M, alpha, dC, N, A, lda, beta, dB, K);
        }
    }
    /* db += sum over rows of dC, unless staged with W's terms (flush) */
    if (bias && bias->grad && bias->size != out->size && !staged) {
        sg_grad_ready(bias);
        add_rows(out->dtype, bias->grad, out->grad, (size_t)batch * M, N);
    }
}

static const sg_op matmul_op = {"matmul", matmul_forward, matmul_backward, true, SG_UNREAD_OUT, SG_ROWS_MATMUL};
static const sg_op addmm_op = {"addmm", matmul_forward, matmul_backward, true, SG_UNREAD(2) | SG_UNREAD_OUT, SG_ROWS_MATMUL};
static const sg_op bmm_op = {"bmm", matmul_forward, matmul_backward, true, SG_UNREAD_OUT, 0};

static sg_tensor *make(sg_tape *t, const sg_op *op, sg_tensor *a, sg_tensor *b, sg_tensor *bias, int trans,
                       double alpha, int batch, int M, int N, int K, int ndim, const int *shape)
{
    sg_tensor *out = sg_tensor_alloc(t, a->dtype, ndim, shape);
    if (!out)
        return NULL;
    out->src[0] = a, out->src[1] = b, out->src[2] = bias, out->nsrc = bias ? 3 : 2;
    out->iarg[0] = trans, out->iarg[1] = batch, out->iarg[2] = M, out->iarg[3] = N, out->iarg[4] = K;
    out->farg[0] = alpha;
    /* W and a bias row are read whole, W also now (its held copy): one
     * computed inside a hold must have run before (a deferred row run) */
    if (sg_rows_pending(&t->defer, b) || (bias && bias->size != out->size && sg_rows_pending(&t->defer, bias)))
        sg_tape_sync(t);
    if (op != &bmm_op && trans == SG_TRANS_B) {
        out->aux = (void *)held_transpose(t, b);
        out->iarg[5] = t->hold_on;                 /* W's gradient term staged in backward */
    }
    return sg_record(t, op, out);
}

/* Shapes of op(A) op(B) for a (...,K) or 2-D transposed A and a 2-D B:
 * fills M, N, K and the output shape, or records the error naming op. */
static bool mm_shape(sg_tape *t, const char *op, const sg_tensor *a, const sg_tensor *b, int trans,
                     int *M, int *N, int *K, int *ndim, int *shape)
{
    char sa[48], sb[48];
    bool ta = trans & SG_TRANS_A, tb = trans & SG_TRANS_B;
    if (b->ndim != 2 || (ta && a->ndim != 2)) {
        sg_fail(t, SG_ERR_SHAPE, "%s: %s @ %s: %s must be 2-D (use bmm for batches)", op,
                sg_shape_str(a, sa), sg_shape_str(b, sb), b->ndim != 2 ? "B" : "a transposed A");
        return false;
    }
    int Ka = ta ? a->shape[0] : a->shape[a->ndim - 1], Kb = tb ? b->shape[1] : b->shape[0];
    if (Ka != Kb) {
        sg_fail(t, SG_ERR_SHAPE, "%s: %s%s @ %s%s: inner dimensions differ", op,
                sg_shape_str(a, sa), ta ? "^T" : "", sg_shape_str(b, sb), tb ? "^T" : "");
        return false;
    }
    *K = Ka, *M = ta ? a->shape[1] : (int)(a->size / (size_t)Ka), *N = tb ? b->shape[0] : b->shape[1];
    *ndim = ta ? 2 : a->ndim;
    memcpy(shape, a->shape, SG_MAX_DIMS * sizeof *shape);
    if (ta)
        shape[0] = *M;
    shape[*ndim - 1] = *N;
    return true;
}

sg_tensor *sg_matmul_ex(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans)
{
    int M, N, K, ndim, shape[SG_MAX_DIMS];
    if (!sg_check_args(t, "matmul", 2, a, b) || !mm_shape(t, "matmul", a, b, trans, &M, &N, &K, &ndim, shape))
        return NULL;
    return make(t, &matmul_op, a, b, NULL, trans, 1.0, 1, M, N, K, ndim, shape);
}

sg_tensor *sg_matmul(sg_tape *t, sg_tensor *a, sg_tensor *b) { return sg_matmul_ex(t, a, b, 0); }

sg_tensor *sg_addmm(sg_tape *t, sg_tensor *x, sg_tensor *w, sg_tensor *bias, int trans)
{
    int M, N, K, ndim, shape[SG_MAX_DIMS];
    char sb[48];
    if (!sg_check_args(t, "addmm", 3, x, w, bias) || !mm_shape(t, "addmm", x, w, trans, &M, &N, &K, &ndim, shape))
        return NULL;
    bool row = bias->ndim == 1 && bias->shape[0] == N, full = bias->ndim == ndim;
    for (int d = 0; full && d < ndim; d++)
        full = bias->shape[d] == shape[d];
    if (!row && !full) {
        char so[48];
        sg_tensor probe = {.ndim = ndim};
        memcpy(probe.shape, shape, sizeof probe.shape);
        return sg_fail(t, SG_ERR_SHAPE, "addmm: bias %s, expected (%d) or the product's %s", sg_shape_str(bias, sb), N,
                       sg_shape_str(&probe, so));
    }
    return make(t, &addmm_op, x, w, bias, trans, 1.0, 1, M, N, K, ndim, shape);
}

sg_tensor *sg_bmm(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans) { return sg_bmm_scaled(t, a, b, trans, 1.0); }

sg_tensor *sg_bmm_scaled(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans, double alpha)
{
    char sa[48], sb[48];
    if (!sg_check_args(t, "bmm", 2, a, b))
        return NULL;
    int n = a->ndim;
    if (n < 3 || b->ndim != n)
        return sg_fail(t, SG_ERR_SHAPE, "bmm: %s @ %s: both must be 3-D or both 4-D",
                       sg_shape_str(a, sa), sg_shape_str(b, sb));
    for (int d = 0; d < n - 2; d++)
        if (a->shape[d] != b->shape[d])
            return sg_fail(t, SG_ERR_SHAPE, "bmm: %s @ %s: batch dimensions differ",
                           sg_shape_str(a, sa), sg_shape_str(b, sb));
    bool ta = trans & SG_TRANS_A, tb = trans & SG_TRANS_B;
    int M = a->shape[n - (ta ? 1 : 2)], Ka = a->shape[n - (ta ? 2 : 1)];
    int Kb = b->shape[n - (tb ? 1 : 2)], N = b->shape[n - (tb ? 2 : 1)];
    if (Ka != Kb)
        return sg_fail(t, SG_ERR_SHAPE, "bmm: %s%s @ %s%s: inner dimensions differ",
                       sg_shape_str(a, sa), ta ? "^T" : "", sg_shape_str(b, sb), tb ? "^T" : "");
    int shape[SG_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[n - 2] = M, shape[n - 1] = N;
    int batch = (int)(a->size / ((size_t)M * Ka));
    return make(t, &bmm_op, a, b, NULL, trans, alpha, batch, M, N, Ka, n, shape);
}
