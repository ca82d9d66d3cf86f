/*
 * test_cli_dist.c - cli/dist.c: the exact sum of shard gradients (known
 * values, the same bits in any order where a float sum is not, NaN kept),
 * a sharded run against itself; with MPI built and mpirun present, the
 * checkpoint of `mpirun -np 2 seqgrad train` byte for byte against one
 * process; without MPI, the message under mpirun.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/dist.h"
#include <seqgrad/checkpoint.h>
#include "cliutil.h"
#include "testutil.h"

static char err[1024];

/* the parameters' gradients become c[k] (one value per parameter, every
 * element) through a backward of sum(c[k] * p) */
static void backward_with(sg_params *ps, const double *c)
{
    sg_tape *t = sg_tape_new();
    sg_tensor *total = NULL;
    for (int i = 0; i < sg_params_count(ps); i++) {
        sg_tensor *p = sg_params_get(ps, i);
        int numel = (int)sg_tensor_size(p);
        sg_tensor *term = sg_sum(t, sg_reshape(t, sg_scale(t, p, c[i]), 1, &numel), 0, false);
        total = total ? sg_add(t, total, term) : term;
    }
    ck_assert_int_eq(sg_backward(t, total), SG_OK);
    sg_tape_free(t);
}

static sg_params *two_params(void)
{
    sg_params *ps = sg_params_new();
    sg_params_add(ps, "a", sg_tensor_new(SG_F32, 1, (int[]){3}));
    sg_params_add(ps, "b", sg_tensor_new(SG_F32, 2, (int[]){2, 2}));
    for (int i = 0; i < 2; i++)
        sg_tensor_set_requires_grad(sg_params_get(ps, i), true);
    return ps;
}

/* shards' gradients (per shard: a's value, b's value) in the order given */
static void sum_shards(sg_params *ps, const double (*c)[2], const int *order, int K)
{
    dist_step d;
    ck_assert_int_eq(dist_step_init(&d, ps, K, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.count, K);
    for (int k = 0; k < K; k++) {
        backward_with(ps, c[order[k]]);
        dist_keep_grads(&d, ps, k);
        ck_assert_double_eq(sg_tensor_grad_get(sg_params_get(ps, 0), 0), 0);   /* zeroed for the next shard */
    }
    ck_assert_int_eq(dist_sum_grads(&d, ps), 0);
    dist_step_free(&d);
}

START_TEST(test_sum_is_exact_and_order_free)
{
    /* a float sum of 1e8, 1, -1e8, 1 is 1 left to right and 2 in another
     * order; the fixed-point sum is 2 in every order, so the mean is 0.5 */
    const double c[4][2] = {{1e8, 0.25}, {1, -0.5}, {-1e8, 0.125}, {1, 3}};
    ck_assert_float_eq(((1e8f + 1.0f) + -1e8f) + 1.0f, 1.0f);
    ck_assert_float_eq(((1e8f + -1e8f) + 1.0f) + 1.0f, 2.0f);
    static const int orders[3][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}};
    float first[2] = {0};
    for (int o = 0; o < 3; o++) {
        sg_params *ps = two_params();
        sum_shards(ps, c, orders[o], 4);
        float a = (float)sg_tensor_grad_get(sg_params_get(ps, 0), 2), b = (float)sg_tensor_grad_get(sg_params_get(ps, 1), 3);
        ck_assert_float_eq(a, 0.5f);
        ck_assert_float_eq(b, (0.25f - 0.5f + 0.125f + 3) / 4);
        if (o == 0)
            first[0] = a, first[1] = b;
        ck_assert(memcmp(&a, &first[0], sizeof a) == 0 && memcmp(&b, &first[1], sizeof b) == 0);
        sg_params_free(ps);
    }
}
END_TEST

/* three shards: not a power of two, the mean divides by 3 */
START_TEST(test_sum_of_three_and_nan)
{
    const double c[3][2] = {{0.1, 0}, {0.2, 0}, {0.4, 0}};
    sg_params *ps = two_params();
    sum_shards(ps, c, (int[]){0, 1, 2}, 3);
    ck_assert_double_eq_tol(sg_tensor_grad_get(sg_params_get(ps, 0), 1), 0.7 / 3, 1e-7);
    ck_assert_double_eq(sg_tensor_grad_get(sg_params_get(ps, 1), 0), 0);         /* all zero stays zero */
    sg_params_free(ps);
    /* a NaN in one shard is a NaN of the sum (clipping and the optimizer see it) */
    const double bad[2][2] = {{1, NAN}, {2, 1}};
    ps = two_params();
    sum_shards(ps, bad, (int[]){0, 1}, 2);
    ck_assert_double_eq_tol(sg_tensor_grad_get(sg_params_get(ps, 0), 0), 1.5, 1e-7);
    ck_assert(isnan(sg_tensor_grad_get(sg_params_get(ps, 1), 0)));
    sg_params_free(ps);
}
END_TEST

/* one process: no ranks to divide; shards must divide the batch */
START_TEST(test_one_rank)
{
    ck_assert_int_eq(dist_rank(), 0);
    ck_assert_int_eq(dist_size(), 1);
    ck_assert_int_eq(dist_share(7), 7);
    double v[2] = {1.5, -2};
    ck_assert_int_eq(dist_sum(v, 2), 0);
    ck_assert_double_eq(v[0], 1.5);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    ck_assert_int_eq(dist_start(err, sizeof err), EXIT_OK);     /* not under mpirun: nothing to start */
    dist_stop();
}
END_TEST

/* built without MPI: mpirun's copies are told so instead of each training alone */
START_TEST(test_without_mpi_says_so)
{
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    ck_assert_int_eq(dist_start(err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "mpirun started 2 copies of seqgrad, but this seqgrad was built without MPI: apt-get install "
                          "libopenmpi-dev openmpi-bin, then meson setup --reconfigure build and ninja -C build; or run one "
                          "process");
    unsetenv("OMPI_COMM_WORLD_SIZE");
}
END_TEST

static bool have_mpirun(void) { return system("command -v mpirun > /dev/null 2>&1") == 0; }

static void run_or_fail(const char *cmd)
{
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "%s: exit %d", cmd, rc);
}

static void assert_same_file(const char *a, const char *b)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    ck_assert_msg(system(cmd) == 0, "%s and %s differ", a, b);
}

/* the same bits from 1, 2 and 3 threads of one process (train.threads),
 * for a text LSTM (its carried state by rows) and a classifier */
START_TEST(test_threads_give_the_same_bits)
{
    static const char *bodies[2] = {
        "model: {kind: lstm, hidden: 16, layers: 2, dropout: 0.2}\n"
        "data: {kind: text, seq_len: 16, batch_size: 12, valid_fraction: 0.05}\n",
        "model: {kind: gru, hidden: 8, layers: 1, dropout: 0.3, pooling: attention, bidirectional: true}\n"
        "data: {kind: parity, min_len: 3, max_len: 12, train_size: 120, valid_size: 24, batch_size: 12}\n"};
    char dir[64] = "/tmp/seqgrad-threads-XXXXXX", first[200], path[200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int threads = 1; threads <= 3; threads++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", threads);
        char cfgp[200], text[1200], cmd[400];
        snprintf(cfgp, sizeof cfgp, "%s/%s.yaml", dir, name);
        snprintf(text, sizeof text, "%strain: {steps: 8, eval_every: 4, shards: 6, threads: %d, run_dir: %s/%s}\n",
                 bodies[_i], threads, dir, name);
        FILE *f = fopen(cfgp, "w");
        fputs(text, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s train %s > %s/%s.log 2>&1", SEQGRAD_BIN, cfgp, dir, name);
        run_or_fail(cmd);
        snprintf(path, sizeof path, "%s/%s/checkpoint.safetensors", dir, name);
        if (threads == 1)
            snprintf(first, sizeof first, "%s", path);
        else
            ck_assert_msg(cu_same_tensors(first, path, err, sizeof err), "%d threads: %s", threads, err);
    }
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_or_fail(cmd);
}
END_TEST

/* the char LSTM of the README (train.shards: 2), shortened: two ranks and
 * one process (its threads at their default) write the same checkpoint,
 * byte for byte; four shards on two ranks too */
START_TEST(test_two_ranks_match_one_process)
{
    char dir[64] = "/tmp/seqgrad-dist-XXXXXX", cmd[1600], one[200], two[200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *mpirun = "mpirun -np 2 --oversubscribe";
    const char *root = getuid() == 0 ? " --allow-run-as-root" : "";
    for (int shards = 2; shards <= 4; shards += 2) {
        const char *sets = "--set train.steps=40 --set train.eval_every=20 --set train.checkpoint_every=30";
        snprintf(cmd, sizeof cmd, "%s train %s/examples/configs/char_lstm.yaml --overwrite %s "
                 "--set train.shards=%d --set train.run_dir=%s/run > %s/one.log 2>&1", SEQGRAD_BIN, SOURCE_DIR, sets,
                 shards, dir, dir);
        run_or_fail(cmd);
        snprintf(one, sizeof one, "%s/one.safetensors", dir);
        snprintf(cmd, sizeof cmd, "cp %s/run/checkpoint.safetensors %s && cp %s/run/metrics.csv %s/one.csv", dir, one,
                 dir, dir);
        run_or_fail(cmd);
        snprintf(cmd, sizeof cmd, "%s%s %s train %s/examples/configs/char_lstm.yaml --overwrite %s --set train.shards=%d "
                 "--set train.run_dir=%s/run > %s/two.log 2>&1", mpirun, root, SEQGRAD_BIN, SOURCE_DIR, sets, shards,
                 dir, dir);
        run_or_fail(cmd);
        snprintf(two, sizeof two, "%s/run/checkpoint.safetensors", dir);
        assert_same_file(one, two);
        /* the losses logged are the same too (the timing column aside) */
        snprintf(cmd, sizeof cmd, "cmp -s <(cut -d, -f1-5 %s/one.csv) <(cut -d, -f1-5 %s/run/metrics.csv)", dir, dir);
        char bash[1700];
        snprintf(bash, sizeof bash, "bash -c '%s'", cmd);
        ck_assert_msg(system(bash) == 0, "metrics.csv differ (shards %d)", shards);
    }
    /* three ranks do not divide four shards: said before any step */
    snprintf(cmd, sizeof cmd, "mpirun -np 3 --oversubscribe%s %s train %s/examples/configs/char_lstm.yaml --overwrite "
             "--set train.shards=4 --set train.run_dir=%s/run3 > %s/three.log 2>&1", root, SEQGRAD_BIN, SOURCE_DIR, dir, dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'train.shards: 4 shards do not split over 3 ranks (take a multiple of 3)' %s/three.log",
             dir);
    ck_assert_msg(system(cmd) == 0, "no message about the ranks");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_or_fail(cmd);
}
END_TEST

/* stopped by SIGTERM under mpirun after some steps, resumed under mpirun:
 * the checkpoint of a run never stopped, byte for byte */
START_TEST(test_resume_under_mpirun)
{
    char dir[64] = "/tmp/seqgrad-dist-XXXXXX", cmd[1600], path[200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *root = getuid() == 0 ? " --allow-run-as-root" : "";
    const char *sets = "--set train.steps=150 --set train.eval_every=50 --set train.checkpoint_every=1000";
    snprintf(cmd, sizeof cmd, "%s train %s/examples/configs/char_lstm.yaml %s "
             "--set train.run_dir=%s/run > /dev/null 2>&1 && mv %s/run/checkpoint.safetensors %s/straight.safetensors && "
             "rm -r %s/run", SEQGRAD_BIN, SOURCE_DIR, sets, dir, dir, dir, dir);
    run_or_fail(cmd);
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(cmd, sizeof cmd, "exec mpirun -np 2%s %s train %s/examples/configs/char_lstm.yaml "
                 "%s --overwrite --set train.run_dir=%s/run > %s/stopped.log 2>&1", root, SEQGRAD_BIN, SOURCE_DIR, sets, dir, dir);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    long rows = 0;
    for (int i = 0; i < 600 && rows < 20; i++) {      /* some steps done, not all */
        nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
        FILE *f = fopen(path, "r");
        rows = 0;
        for (int c; f && (c = fgetc(f)) != EOF;)
            rows += c == '\n';
        if (f)
            fclose(f);
    }
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    rows = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        rows += c == '\n';
    fclose(f);
    ck_assert_msg(rows > 1 && rows < 151, "the run was not stopped midway (%ld rows)", rows);
    snprintf(cmd, sizeof cmd, "mpirun -np 2%s %s resume %s/run > %s/resumed.log 2>&1",
             root, SEQGRAD_BIN, dir, dir);
    run_or_fail(cmd);
    char a[200], b[200];
    snprintf(a, sizeof a, "%s/straight.safetensors", dir);
    snprintf(b, sizeof b, "%s/run/checkpoint.safetensors", dir);
    assert_same_file(a, b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_or_fail(cmd);
}
END_TEST

int main(void)
{
    /* under mpirun the tool runs f32 products on OpenBLAS (docs/scale.md):
     * the one-process runs compared with it byte for byte must too */
    setenv("SEQGRAD_GEMM", "openblas", 1);
    Suite *s = suite_create("cli/dist");
    TCase *tc = tcase_create("dist");
    tcase_add_test(tc, test_sum_is_exact_and_order_free);
    tcase_add_test(tc, test_sum_of_three_and_nan);
    tcase_add_test(tc, test_one_rank);
    tcase_add_loop_test(tc, test_threads_give_the_same_bits, 0, 2);
    if (!dist_built_with_mpi())
        tcase_add_test(tc, test_without_mpi_says_so);
#ifdef SANITIZED
    const bool sanitized = true;     /* Open MPI's own allocations would fail LeakSanitizer in every rank */
#else
    const bool sanitized = false;
#endif
    if (dist_built_with_mpi() && have_mpirun() && !sanitized)
        tcase_add_test(tc, test_two_ranks_match_one_process), tcase_add_test(tc, test_resume_under_mpirun);
    else
        printf("test_cli_dist: the mpirun comparisons are skipped: %s\n",
               sanitized                ? "a sanitizer build (the plain build runs them)"
               : dist_built_with_mpi() ? "no mpirun (apt-get install openmpi-bin)"
                                       : "seqgrad was built without MPI (apt-get install libopenmpi-dev openmpi-bin)");
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
