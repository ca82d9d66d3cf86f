/*
 * dist.h - data-parallel training (docs/scale.md). A training batch is
 * computed as train.shards equal shards, each with its own dropout stream;
 * under `mpirun -np N` (N dividing the shards) each rank computes its own
 * shards, and within a rank its threads share them (train.c). The shards'
 * gradients are summed exactly, in fixed point, so the sum is the same
 * whatever the order and whatever the threads and ranks: every rank, and a
 * single process, reaches the same parameters bit for bit.
 *
 * Without MPI at build time, or outside mpirun, there is one rank and the
 * collective calls below do nothing.
 */
#ifndef SEQGRAD_CLI_DIST_H
#define SEQGRAD_CLI_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <seqgrad/seqgrad.h>

/* Starts MPI when mpirun started this process (MPI_Init); 0, or the exit
 * code with the reason in err (this seqgrad was built without MPI). */
int dist_start(char *err, size_t n);
/* MPI_Finalize if dist_start started it. */
void dist_stop(void);
int dist_rank(void);
int dist_size(void);
/* Whether this build can run under mpirun (MPI found at build time). */
bool dist_built_with_mpi(void);

/* One rank's part of a sharded step: shards [first, first + count) of
 * `shards`, the gradient of each kept until dist_sum_grads. */
typedef struct {
    int shards, first, count;
    int n_params;
    size_t numel;           /* elements of all parameters */
    float *kept;            /* count * numel: each local shard's gradients */
    int64_t *sum;           /* numel: the fixed-point sum */
    double *top;            /* n_params: largest |gradient| of each parameter over every shard */
    double *slots;          /* 2 * shards + 2: each shard's loss and tokens, a failure, a stop */
} dist_step;

/* For the parameters of ps (f32) and `shards` shards over dist_size()
 * ranks; EXIT_CONFIG if the ranks do not divide the shards. */
int dist_step_init(dist_step *d, const sg_params *ps, int shards, char *err, size_t n);
void dist_step_free(dist_step *d);
/* Copies the parameters' gradients (as the backward of local shard k left
 * them) into d, and zeroes them for the next shard. */
void dist_keep_grads(dist_step *d, sg_params *ps, int k);
/* The parameters' gradients become the mean over all shards: each shard's
 * gradient in fixed point (2^62 over the largest magnitude of each
 * parameter, over every shard), the integers summed, the sum scaled back.
 * Integer sums do not depend on their order, so neither does the result.
 * -1 if MPI failed. */
int dist_sum_grads(dist_step *d, sg_params *ps);

/* Sums v[0..n) over the ranks, in place (rank 0's value + 0 from the
 * others is exact: callers fill only their own slots). -1 if MPI failed. */
int dist_sum(double *v, int n);
/* The same for floats. */
int dist_sum_f(float *v, size_t n);
/* rank 0's value, on every rank. */
int dist_share(int v);

#endif
