/*
 * dist.c - data-parallel training: shards of a batch, MPI ranks, and an
 * exact sum of gradients (see dist.h and docs/scale.md).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dist.h"

#ifdef SEQGRAD_MPI
#include <mpi.h>
#endif

static int rank = 0, size = 1;
static bool started = false;

/* the ranks mpirun (Open MPI, or a PMI launcher) says this process is one of */
static long launched_size(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    return 0;
}

bool dist_built_with_mpi(void)
{
#ifdef SEQGRAD_MPI
    return true;
#else
    return false;
#endif
}

int dist_start(char *err, size_t n)
{
    long ranks = launched_size();
    if (ranks <= 1 || started)
        return EXIT_OK;
#ifdef SEQGRAD_MPI
    /* with oneDNN's sgemm, SIGTERM mid-run under mpirun corrupted the heap
     * (3 runs in 8 here, not yet understood); with OpenBLAS 0 in 16 */
    sg_gemm_openblas_only(true);
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
        return cli_fail(err, n, EXIT_FAIL, "MPI_Init failed (started by mpirun with %ld ranks)", ranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    started = true;
    return EXIT_OK;
#else
    return cli_fail(err, n, EXIT_USAGE,
                    "mpirun started %ld copies of seqgrad, but this seqgrad was built without MPI: "
                    "apt-get install libopenmpi-dev openmpi-bin, then meson setup --reconfigure build and "
                    "ninja -C build; or run one process",
                    ranks);
#endif
}

void dist_stop(void)
{
#ifdef SEQGRAD_MPI
    if (started)
        MPI_Finalize();
#endif
    started = false, rank = 0, size = 1;
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }

/* ---- collectives: nothing to do with one rank -------------------------------- */

#ifdef SEQGRAD_MPI
/* MPI counts are ints: large buffers go in pieces */
static int allreduce(void *v, size_t count, MPI_Datatype type, size_t width, MPI_Op op)
{
    for (size_t at = 0; at < count;) {
        int k = count - at > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)(count - at);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)v + at * width, k, type, op, MPI_COMM_WORLD) != MPI_SUCCESS)
            return -1;
        at += (size_t)k;
    }
    return 0;
}
#endif

int dist_sum(double *v, int n)
{
#ifdef SEQGRAD_MPI
    if (size > 1)
        return allreduce(v, (size_t)n, MPI_DOUBLE, sizeof *v, MPI_SUM);
#endif
    (void)v, (void)n;
    return 0;
}

int dist_sum_f(float *v, size_t n)
{
#ifdef SEQGRAD_MPI
    if (size > 1)
        return allreduce(v, n, MPI_FLOAT, sizeof *v, MPI_SUM);
#endif
    (void)v, (void)n;
    return 0;
}

int dist_share(int v)
{
#ifdef SEQGRAD_MPI
    if (size > 1)
        MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
#endif
    return v;
}

/* ---- the sharded step ------------------------------------------------------------ */

int dist_step_init(dist_step *d, const sg_params *ps, int shards, char *err, size_t n)
{
    memset(d, 0, sizeof *d);
    if (shards % size != 0)
        return cli_fail(err, n, EXIT_CONFIG,
                        "train.shards: %d shards do not split over %d ranks (take a multiple of %d)", shards, size,
                        size);
    d->shards = shards, d->count = shards / size, d->first = rank * d->count;
    d->n_params = sg_params_count(ps), d->numel = sg_params_numel(ps);
    d->kept = malloc((size_t)d->count * d->numel * sizeof *d->kept);
    d->sum = malloc(d->numel * sizeof *d->sum);
    d->top = malloc((size_t)(d->n_params ? d->n_params : 1) * sizeof *d->top);
    d->slots = malloc((size_t)(2 * shards + 2) * sizeof *d->slots);
    if (!d->kept || !d->sum || !d->top || !d->slots) {
        dist_step_free(d);
        return cli_fail(err, n, EXIT_FAIL, "out of memory for %d shards' gradients", d->count);
    }
    return EXIT_OK;
}

void dist_step_free(dist_step *d)
{
    free(d->kept), free(d->sum), free(d->top), free(d->slots);
    memset(d, 0, sizeof *d);
}

void dist_keep_grads(dist_step *d, sg_params *ps, int k)
{
    float *to = d->kept + (size_t)k * d->numel;
    for (int i = 0; i < d->n_params; i++) {
        sg_tensor *p = sg_params_get(ps, i);
        size_t m = sg_tensor_size(p);
        const float *g = sg_tensor_grad(p);
        if (g)
            memcpy(to, g, m * sizeof *to);
        else
            memset(to, 0, m * sizeof *to);
        sg_param_zero_grad(p);
        to += m;
    }
}

int dist_sum_grads(dist_step *d, sg_params *ps)
{
    /* the largest magnitude of each parameter's gradient, over every shard */
    size_t at = 0;
    for (int i = 0; i < d->n_params; i++) {
        size_t m = sg_tensor_size(sg_params_get(ps, i));
        double top = 0;
        for (int k = 0; k < d->count; k++) {
            const float *g = d->kept + (size_t)k * d->numel + at;
            for (size_t j = 0; j < m; j++)
                top = isnan(g[j]) || isnan(top) ? NAN : fmax(top, fabs((double)g[j]));
        }
        d->top[i] = isnan(top) ? INFINITY : top;
        at += m;
    }
#ifdef SEQGRAD_MPI
    if (size > 1 && allreduce(d->top, (size_t)d->n_params, MPI_DOUBLE, sizeof *d->top, MPI_MAX) != 0)
        return -1;
#endif
    /* each shard in fixed point: |q| < 2^62 / 2^bits, so the sum of the
     * 2^bits >= shards of them stays below 2^62 */
    int bits = 0;
    while ((1 << bits) < d->shards)
        bits++;
    at = 0;
    for (int i = 0; i < d->n_params; i++) {
        size_t m = sg_tensor_size(sg_params_get(ps, i));
        int ex = 0;
        frexp(d->top[i], &ex);                       /* top < 2^ex */
        double scale = isfinite(d->top[i]) && d->top[i] > 0 ? ldexp(1, 62 - bits - ex) : 0;
        for (size_t j = 0; j < m; j++) {
            int64_t s = 0;
            for (int k = 0; k < d->count; k++)
                s += (int64_t)llrint((double)d->kept[(size_t)k * d->numel + at + j] * scale);
            d->sum[at + j] = s;
        }
        at += m;
    }
#ifdef SEQGRAD_MPI
    if (size > 1 && allreduce(d->sum, d->numel, MPI_INT64_T, sizeof *d->sum, MPI_SUM) != 0)
        return -1;
#endif
    /* back to floats: the mean over the shards */
    at = 0;
    for (int i = 0; i < d->n_params; i++) {
        sg_tensor *p = sg_params_get(ps, i);
        size_t m = sg_tensor_size(p);
        float *g = sg_tensor_grad(p);
        int ex = 0;
        frexp(d->top[i], &ex);
        for (size_t j = 0; g && j < m; j++)
            g[j] = !isfinite(d->top[i]) ? NAN
                 : d->top[i] > 0        ? (float)(ldexp((double)d->sum[at + j], ex + bits - 62) / d->shards)
                                        : 0.0f;
        at += m;
    }
    return 0;
}
