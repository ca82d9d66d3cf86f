/*
 * rows.c - a run of row-local ops on several threads, each on its own rows.
 *
 * A cell's step is a chain of small element-wise ops between two matrix
 * products: sigmoids, tanh, products and sums of (B, H) tensors, slices of
 * (B, 4H) gates. The products run threaded; run one by one, these ops would
 * run on one core, and a fork and join per op costs about what halving a
 * (32, 256) op saves. Here the whole chain is one parallel region: thread k
 * runs every op of the run, in the run's order, on rows [B k/n, B (k+1)/n),
 * reading and writing only those rows (sg_op.rows says which ops may). Each
 * op sees a copy of its tensors' headers whose data and gradient point at
 * the thread's first row, so the kernels are the ordinary ones.
 *
 * The split changes no result: every element is computed by the same code
 * from the same operands on any number of threads (no part is a single
 * row: oneDNN's sgemm computes one row by another path, with other bits).
 *
 * sg_in_parts splits big work outside the runs the same way: a kernel
 * given part k of n computes its share of the elements (rows, columns,
 * ranges) exactly as the whole would.
 */
#include "internal.h"
#include "seqgrad/ops.h"

#include <stdatomic.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* A run in parallel only from this many output elements: a fork and join
 * costs about a microsecond. */
enum { PARALLEL_WORK = 16384 };

static atomic_long parallel_runs;      /* for tests: runs and parts split among threads */

long sg_rows_parallel_runs(void) { return atomic_load(&parallel_runs); }

bool sg_rows_joins(const sg_rowrun *r, const sg_tensor *x)
{
    const sg_op *op = x->op;
    if (!op || !op->rows || r->n == SG_ROWRUN_MAX || x->ndim < 2 || x->nsrc > SG_MAX_SRC || x->src != x->src_buf)
        return false;
    int rows = r->n ? r->rows : x->shape[0];
    if (rows < 2 || x->shape[0] != rows || (op->rows == SG_ROWS_OUTER && x->iarg[0] != rows))
        return false;
    /* (rows, K) (N, K)^T, one batch, C of the output's shape or a bias row
     * (whose gradient sums over rows: backward asks sg_matmul_rows) */
    if (op->rows == SG_ROWS_MATMUL)
        return x->dtype == SG_F32 && x->ndim == 2 && x->iarg[0] == SG_TRANS_B && x->iarg[1] == 1 &&
               x->iarg[2] == rows && x->src[0]->ndim == 2 &&
               (x->nsrc < 3 || x->src[2]->size == x->size || x->src[2]->size == (size_t)x->shape[1]);
    for (int i = 0; i < x->nsrc; i++) {
        const sg_tensor *s = x->src[i];
        if (s && (s->ndim < 2 || s->shape[0] != rows || (op->rows == SG_ROWS_FLAT && s->ndim != x->ndim)))
            return false;
    }
    return true;
}

bool sg_rows_pending(const sg_rowrun *r, const sg_tensor *x)
{
    for (int k = 0; k < r->n; k++)
        if (r->op[k] == x)
            return true;
    return false;
}

void sg_rows_add(sg_rowrun *r, sg_tensor *x, unsigned fresh)
{
    if (!r->n)
        r->rows = x->shape[0], r->work = 0;
    r->op[r->n] = x;
    r->fresh[r->n++] = (unsigned char)fresh;
    r->work += x->size;
}

/* p: x's header for rows [r0, r1) of its `rows` */
static void part_of(sg_tensor *p, const sg_tensor *x, int rows, int r0, int r1)
{
    *p = *x;
    size_t cols = x->size / (size_t)rows, off = (size_t)r0 * cols * sg_dtype_size(x->dtype);
    if (p->data)
        p->data = (char *)p->data + off;
    if (p->grad)
        p->grad = (char *)p->grad + off;
    p->shape[0] = r1 - r0;
    p->size = (size_t)(r1 - r0) * cols;
    p->part_row = r0 + 1;
}

/* every op of r, in order, on rows [r0, r1) */
static void run_part(const sg_rowrun *r, bool backward, int r0, int r1)
{
    for (int k = 0; k < r->n; k++) {
        const sg_tensor *x = r->op[k];
        sg_tensor out, src[SG_MAX_SRC];
        part_of(&out, x, r->rows, r0, r1);
        out.src = out.src_buf;
        for (int i = 0; i < x->nsrc; i++) {
            int same = i;
            while (same > 0 && x->src[same - 1] != x->src[i])
                same--;
            if (!x->src[i] || (x->op->rows == SG_ROWS_MATMUL && (i == 1 || (i == 2 && x->src[i]->size != x->size))))
                out.src[i] = x->src[i];        /* none, or W or a bias row, read whole */
            else if (same > 0)                 /* the same tensor twice: one header */
                out.src[i] = out.src[same - 1];
            else {
                part_of(&src[i], x->src[i], r->rows, r0, r1);
                if (backward)
                    src[i].grad_pending = r->fresh[k] >> i & 1;
                out.src[i] = &src[i];
            }
        }
        if (x->op->rows == SG_ROWS_OUTER)
            out.iarg[0] = r1 - r0;
        else if (x->op->rows == SG_ROWS_MATMUL)
            out.iarg[2] = r1 - r0;
        if (backward)
            x->op->backward(&out);
        else
            x->op->forward(&out);
    }
}

void sg_rows_run(sg_rowrun *r, bool backward, int threads)
{
    /* at least 2 rows a part: oneDNN's sgemm runs a single row by another
     * path, whose bits differ from the same row among others */
    int n = threads < r->rows / 2 ? threads : r->rows / 2;
    if (n < 2 || r->work < PARALLEL_WORK)
        run_part(r, backward, 0, r->rows);
    else {
#ifdef _OPENMP
        atomic_fetch_add(&parallel_runs, 1);
#pragma omp parallel num_threads(n)
        {
            int k = omp_get_thread_num(), m = omp_get_num_threads();
            run_part(r, backward, (int)((long)r->rows * k / m), (int)((long)r->rows * (k + 1) / m));
        }
#else
        run_part(r, backward, 0, r->rows);
#endif
    }
    r->n = 0;
}

void sg_in_parts(size_t work, void (*part)(void *ctx, int k, int n), void *ctx)
{
#ifdef _OPENMP
    int n = work >= SG_PARTS_WORK && !omp_in_parallel() ? sg_gemm_threads() : 1;
    if (n > 1) {
        atomic_fetch_add(&parallel_runs, 1);
#pragma omp parallel num_threads(n)
        part(ctx, omp_get_thread_num(), omp_get_num_threads());
        return;
    }
#else
    (void)work;
#endif
    part(ctx, 0, 1);
}
