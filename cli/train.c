/*
 * train.c - the training loop of the seqgrad tool (see train.h): batches
 * from the run (cli/model.c), backward, clipping, the optimizer step,
 * evaluation at an interval, metrics.csv, the plots, checkpoints, Ctrl-C.
 */
#define _XOPEN_SOURCE 700     /* realpath */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "plot.h"
#include "run.h"
#include "compare.h"
#include "dist.h"
#include "train.h"

/* Ctrl-C, SIGTERM and SIGHUP stop after the current step, with a checkpoint */
static volatile sig_atomic_t interrupted;
static void on_stop_signal(int sig) { interrupted = sig; }
static const int stop_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static const char metrics_header[] = "step,train_loss,valid_loss,lr,grad_norm,tokens_per_s,valid_accuracy\n";

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ||dL/dh_t|| of the last layer's output for every t, L being the loss at
 * the last time step of a validation batch (the text LM) or the adding
 * problem's loss (which is at the last step anyway): the tape keeps each
 * intermediate gradient, so the picture is one backward. */
static int grad_norms(run *r, sg_tape *t)
{
    int B = r->B, T = r->d.task == TASK_REGRESS ? r->d.T : r->T;
    double *norms = calloc((size_t)T, sizeof *norms);
    sg_tensor **steps = calloc((size_t)T, sizeof *steps), *loss;
    int rc = 0;
    if (!norms || !steps) {
        free(norms), free(steps);
        return 0;                     /* a picture skipped for want of memory is no failure of training */
    }
    sg_tape_reset(t);
    r->rnn.trace = steps;             /* keep h_t of every step */
    if (r->d.task == TASK_REGRESS) {
        int *idx = sg_tape_alloc(t, (size_t)B, sizeof *idx);
        for (int b = 0; idx && b < B; b++)
            idx[b] = b % (int)r->d.len[1];
        loss = idx ? run_examples_loss(r, t, 1, idx, B, NULL, NULL) : NULL;
    } else {
        long per = r->d.len[1] / B;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++) {
                r->bx[b * T + k] = r->d.ids[1][b * per + k];
                r->by[b * T + k] = k == T - 1 ? r->d.ids[1][b * per + k + 1] : -100;   /* only the last step */
            }
        loss = sg_cross_entropy(t, run_lm_logits(r, t, r->bx, B, T, NULL, NULL, NULL), r->by, NULL);
    }
    r->rnn.trace = NULL;
    if (sg_backward(t, loss) == SG_OK) {
        for (int k = 0; k < T; k++) {
            double s = 0;
            for (size_t i = 0; steps[k] && i < sg_tensor_size(steps[k]); i++) {
                double g = sg_tensor_grad_get(steps[k], i);
                s += g * g;
            }
            norms[k] = sqrt(s);
        }
        char path[600], title[128];
        snprintf(path, sizeof path, "%s/grad_norms.svg", cfg_str(&r->cfg, "train.run_dir"));
        snprintf(title, sizeof title, "%s, %d layer%s, step %ld", cfg_str(&r->cfg, "model.kind"), r->L, r->L > 1 ? "s" : "",
                 r->step);
        rc = plot_grad_norms(path, norms, T, title);
        snprintf(path, sizeof path, "%s/grad_norms.csv", cfg_str(&r->cfg, "train.run_dir"));   /* for seqgrad compare */
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "t,grad_norm\n");
            for (int k = 0; k < T; k++)
                fprintf(f, "%d,%.9g\n", k + 1, norms[k]);
            rc |= fclose(f) == 0 ? 0 : -1;
        }
    }
    sg_params_zero_grad(r->ps);      /* this backward must not reach the optimizer */
    free(norms), free(steps);
    return rc;
}

/* confusion.svg: a classifier's validation examples by true class (rows)
 * and predicted class (columns), each row's shares */
static int confusion_picture(run *r, sg_tape *t)
{
    int C = r->d.C;
    long *cm = calloc((size_t)C * C, sizeof *cm);
    double *share = calloc((size_t)C * C, sizeof *share);
    const char *names[DATA_MAX_CLASSES];
    int rc = 0;
    if (cm && share && run_confusion(r, t, cm) == 0) {
        for (int k = 0; k < C; k++) {
            long row = 0;
            for (int j = 0; j < C; j++)
                row += cm[k * C + j];
            for (int j = 0; j < C; j++)
                share[k * C + j] = row ? (double)cm[k * C + j] / row : 0;
            names[k] = r->d.classes[k];
        }
        char path[600], title[200];
        snprintf(path, sizeof path, "%s/confusion.svg", cfg_str(&r->cfg, "train.run_dir"));
        snprintf(title, sizeof title, "confusion on the validation split, %s data, step %ld (shade: share of the row)",
                 cfg_str(&r->cfg, "data.kind"), r->step);
        rc = plot_heatmap(path, share, C, C, names, names, title, "true class", "predicted");
    }
    free(cm), free(share);
    return rc;
}

/* attention.svg: the RNN seq2seq's attention on the first validation
 * example, over its own greedy output */
static int attention_picture(run *r, sg_tape *t)
{
    const example *e = &r->d.ex[1][0];
    int *out = malloc((size_t)r->max_out * sizeof *out), len = 0;
    if (!out || run_greedy(r, t, e->src, &e->src_len, 1, e->src_len, out, &len) != 0) {
        free(out);
        return 0;
    }
    char path[600], title[160];
    snprintf(path, sizeof path, "%s/attention.svg", cfg_str(&r->cfg, "train.run_dir"));
    snprintf(title, sizeof title, "%s attention, %s task, step %ld", cfg_str(&r->cfg, "model.attention"),
             cfg_str(&r->cfg, "data.kind"), r->step);
    int rc = run_attention_svg(r, t, path, e->src, e->src_len, out, len, title);
    free(out);
    return rc;
}

/* Temporary checkpoints left by a kill -9 in the middle of a write
 * ("checkpoint.safetensors.XXXXXX", the writer's mkstemp pattern). */
static void remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    static const char base[] = "checkpoint.safetensors.";
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, base, sizeof base - 1) == 0 && strlen(e->d_name) == sizeof base - 1 + 6) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
}

/* metrics.csv without the rows after step (written after the checkpoint a
 * run resumes from), opened for appending; NULL on failure (errno). */
static FILE *keep_metrics_until(const char *path, long step)
{
    char tmp[700], line[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    bool ok = out != NULL, header = true;
    if (ok && !in)                            /* a checkpoint without its metrics: start them */
        ok = fputs(metrics_header, out) >= 0;
    while (ok && in && fgets(line, sizeof line, in)) {
        if (!header && strtol(line, NULL, 10) > step)
            break;
        header = false;
        ok = fputs(line, out) >= 0;
    }
    if (in)
        fclose(in);
    if (!out || fclose(out) != 0 || !ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return NULL;
    }
    return fopen(path, "a");
}

/* Training in f32 flushes subnormal numbers to zero (MXCSR FTZ and DAZ, on
 * this thread, for the loop only): an operation on a subnormal costs about
 * a hundred cycles on x86, and gradients that fade through saturated gates
 * (a peephole LSTM after a hundred steps) made whole steps four times
 * slower. The library itself never touches the floating-point
 * environment; gradcheck and the f64 paths run without it. */
static unsigned flush_subnormals(void)
{
#if defined(__SSE2__)
    unsigned was = _mm_getcsr();
    _mm_setcsr(was | 0x8040);         /* FTZ (bit 15) and DAZ (bit 6) */
    return was;
#else
    return 0;
#endif
}

static void restore_fp(unsigned was)
{
#if defined(__SSE2__)
    _mm_setcsr(was);
#else
    (void)was;
#endif
}

static int loop_body(run *r, const train_opts *o, char *err, size_t n);

static int loop(run *r, const train_opts *o, char *err, size_t n)
{
    unsigned fp = flush_subnormals();
    int rc = loop_body(r, o, err, n);
    restore_fp(fp);
    return rc;
}

/* What one training step measured, the same on every rank. */
typedef struct {
    double loss;
    long tokens;
    bool stop;           /* a rank was asked to stop (Ctrl-C, SIGTERM, SIGHUP) */
} step_result;

/* One thread's share of a sharded step: local shards [k0, k1) on its own
 * run (the original, or a replica) and tape. */
typedef struct {
    run *r;
    sg_tape *t;
    dist_step *ds;
    int k0, k1;
    uint64_t base;
    pthread_t id;
    bool failed;
    char err[512];
} shard_job;

static void *shard_work(void *arg)
{
    shard_job *j = arg;
    unsigned fp = flush_subnormals();        /* per thread, as the main one */
    dist_step *ds = j->ds;
    int K = ds->shards;
    for (int k = j->k0; k < j->k1 && !j->failed; k++) {
        int s = ds->first + k;
        sg_rng rng;
        sg_rng_seed(&rng, j->base + (uint64_t)s);
        sg_tape_reset(j->t);
        sg_tensor *next[SG_CELL_MAX_STATES] = {NULL};
        long tokens = 0;
        sg_tensor *loss = run_shard_loss(j->r, j->t, s, K, &rng, &tokens, next);
        if (sg_backward(j->t, loss) != SG_OK) {
            snprintf(j->err, sizeof j->err, "%s", sg_tape_errmsg(j->t));
            j->failed = true;
            break;
        }
        run_shard_keep_state(j->r, s, K, next);
        dist_keep_grads(ds, j->r->ps, k);
        ds->slots[s] = sg_tensor_get(loss, 0), ds->slots[K + s] = (double)tokens;
    }
    restore_fp(fp);
    return NULL;
}

/* The threads of a sharded step: the main one and n_helpers others, each
 * with a replica of the run and a tape of its own. */
typedef struct {
    int n_helpers;
    run *rep;
    sg_tape **t;
} helpers;

static void helpers_free(helpers *h)
{
    for (int i = 0; i < h->n_helpers; i++) {
        if (h->rep)
            run_free(&h->rep[i]);
        if (h->t)
            sg_tape_free(h->t[i]);
    }
    free(h->rep), free(h->t);
    memset(h, 0, sizeof *h);
}

/* train.threads (0: the cores this rank has, at most its shards) less the main thread */
static int helpers_init(helpers *h, run *r, const dist_step *ds, char *err, size_t n)
{
    memset(h, 0, sizeof *h);
    long want = cfg_int(&r->cfg, "train.threads"), cores = sysconf(_SC_NPROCESSORS_ONLN) / dist_size();
    int threads = (int)(want > 0 ? want : cores > 0 ? cores : 1);
    threads = threads < ds->count ? threads : ds->count;
    if (threads <= 1)
        return EXIT_OK;
    h->rep = calloc((size_t)threads - 1, sizeof *h->rep), h->t = calloc((size_t)threads - 1, sizeof *h->t);
    if (!h->rep || !h->t) {
        free(h->rep);
        free(h->t);
        return cli_fail(err, n, EXIT_FAIL, "out of memory for %d threads", threads);
    }
    for (int i = 0; i < threads - 1; i++) {
        h->n_helpers = i + 1;
        int rc = run_replica(&h->rep[i], r, err, n);
        if (rc == EXIT_OK && !(h->t[i] = sg_tape_new()))
            rc = cli_fail(err, n, EXIT_FAIL, "out of memory for a tape");
        if (rc != EXIT_OK) {
            helpers_free(h);
            return rc;
        }
    }
    return EXIT_OK;
}

/* Forward and backward of training batch r->step, leaving its gradient in
 * the parameters. One shard: the batch at once, dropout from the run's
 * rng. More (train.shards, or mpirun's ranks): each local shard with its
 * own stream, seeded from one draw of the run's rng, its gradient kept,
 * the local shards split over the main thread and the helpers; then the
 * exact sum over every shard (dist_sum_grads). */
static int train_step(run *r, sg_tape *t, dist_step *ds, helpers *h, step_result *res, char *err, size_t n)
{
    run_batch_begin(r);
    if (!ds->kept) {
        sg_tape_reset(t);
        sg_tensor *next[SG_CELL_MAX_STATES] = {NULL};
        sg_tensor *loss = run_shard_loss(r, t, 0, 1, &r->rng, &res->tokens, next);
        if (sg_backward(t, loss) != SG_OK)
            return cli_fail(err, n, EXIT_FAIL, "%s", sg_tape_errmsg(t));
        run_shard_keep_state(r, 0, 1, next);
        res->loss = sg_tensor_get(loss, 0), res->stop = interrupted;
        return EXIT_OK;
    }
    int K = ds->shards, threads = h->n_helpers + 1;
    double *slot = ds->slots;                 /* loss and tokens of each shard; failures; stops */
    memset(slot, 0, (size_t)(2 * K + 2) * sizeof *slot);
    uint64_t base = sg_rng_u64(&r->rng);      /* every rank draws it: the run's rng stays the same everywhere */
    shard_job job[65];
    for (int w = 0; w < threads; w++) {       /* thread w: local shards [w count / threads, (w+1) count / threads) */
        job[w] = (shard_job){.r = w ? &h->rep[w - 1] : r, .t = w ? h->t[w - 1] : t, .ds = ds, .base = base,
                             .k0 = w * ds->count / threads, .k1 = (w + 1) * ds->count / threads};
        if (w)
            run_replica_sync(job[w].r, r);
    }
    int started = 1;
    for (int w = 1; w < threads; w++, started++)
        if (pthread_create(&job[w].id, NULL, shard_work, &job[w]) != 0)
            break;
    for (int w = started; w < threads; w++)   /* a thread that did not start: its shards here */
        shard_work(&job[w]);
    shard_work(&job[0]);
    for (int w = 1; w < started; w++)
        pthread_join(job[w].id, NULL);
    for (int w = 0; w < threads; w++)
        if (job[w].failed) {
            slot[2 * K] = 1;
            snprintf(err, n, "%s", job[w].err);
        }
    slot[2 * K + 1] = interrupted != 0;
    if (dist_sum(slot, 2 * K + 2) != 0)
        return cli_fail(err, n, EXIT_FAIL, "MPI_Allreduce failed");
    if (slot[2 * K] > 0) {
        if (!err[0])
            snprintf(err, n, "another rank failed (its message is above)");
        return EXIT_FAIL;
    }
    if (dist_sum_grads(ds, r->ps) != 0)
        return cli_fail(err, n, EXIT_FAIL, "MPI_Allreduce of the gradients failed");
    double loss = 0;
    res->tokens = 0;
    for (int s = 0; s < K; s++)                /* in shard order, whichever rank or thread computed it */
        loss += slot[s], res->tokens += (long)slot[K + s];
    res->loss = loss / K, res->stop = slot[2 * K + 1] > 0;
    return EXIT_OK;
}

/* Every rank's rows of the carried state, on every rank (before a
 * checkpoint): each rank keeps its own rows, zeroes the others', and the
 * sum over ranks is the whole (x + 0 is exact). */
static int gather_state(run *r, const dist_step *ds)
{
    if (dist_size() == 1 || !r->n_carry)
        return 0;
    int Bs = r->B / ds->shards;
    for (int j = 0; j < r->n_carry; j++) {
        float *all = sg_tensor_data(r->carry[j]);
        for (int l = 0; l < r->L; l++)
            for (int b = 0; b < r->B; b++)
                if (b / Bs < ds->first || b / Bs >= ds->first + ds->count)
                    memset(all + ((size_t)l * r->B + b) * r->H, 0, (size_t)r->H * sizeof *all);
        if (dist_sum_f(all, sg_tensor_size(r->carry[j])) != 0)
            return -1;
    }
    return 0;
}

static int loop_body(run *r, const train_opts *o, char *err, size_t n)
{
    const char *dir = cfg_str(&r->cfg, "train.run_dir");
    long steps = run_total_steps(r), eval_every = cfg_int(&r->cfg, "train.eval_every");
    long ckpt_every = cfg_int(&r->cfg, "train.checkpoint_every");
    long per_epoch = run_steps_per_epoch(r);
    double clip = cfg_real(&r->cfg, "clip.norm");
    bool regress = r->d.task == TASK_REGRESS, recurrent = (r->model == MODEL_RNN_LM && r->d.task == TASK_STREAM) || regress;
    bool lead = dist_rank() == 0;             /* rank 0 alone writes metrics, plots, checkpoints and the log */
    bool quiet = o->quiet || !lead;
    FILE *log = o->log ? o->log : stdout;
    bool tty = !quiet && isatty(fileno(log));
    dist_step ds = {0};
    helpers h = {0};
    int shards = (int)cfg_int(&r->cfg, "train.shards"), blas_was = 0;
    if (shards > 1 || dist_size() > 1) {     /* every shard's products on one BLAS thread, in any thread or rank */
        int rc = dist_step_init(&ds, r->ps, shards, err, n);
        if (rc == EXIT_OK && (rc = helpers_init(&h, r, &ds, err, n)) != EXIT_OK)
            dist_step_free(&ds);
        if (rc != EXIT_OK)
            return rc;
        blas_was = sg_blas_threads(1);
    }
    /* Ctrl-C, SIGTERM and SIGHUP are caught from here on (before
     * metrics.csv exists, so a caller that waits for that file knows the
     * handlers are in place) */
    struct sigaction sa = {.sa_handler = on_stop_signal}, old[3];
    for (int i = 0; i < 3; i++)
        sigaction(stop_signals[i], &sa, &old[i]);
    interrupted = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *metrics = NULL;
    if (lead) {
        remove_leftovers(dir);
        /* resuming: the rows after the checkpoint's step were never kept */
        metrics = r->step ? keep_metrics_until(path, r->step) : fopen(path, "w");
        if (metrics && !r->step)
            fputs(metrics_header, metrics);
    }
    if (!dist_share(lead ? metrics != NULL : 1)) {
        for (int i = 0; i < 3; i++)
            sigaction(stop_signals[i], &old[i], NULL);
        dist_step_free(&ds);
        helpers_free(&h);
        sg_blas_threads(blas_was);
        return cli_fail(err, n, EXIT_FAIL, "%s: cannot write: %s", path, lead ? strerror(errno) : "(on rank 0)");
    }

    sg_tape *t = sg_tape_new();
    double t0 = seconds(), smooth = NAN, tokens = 0;
    int rc = t ? EXIT_OK : EXIT_FAIL;
    if (!t)
        snprintf(err, n, "out of memory for the tape");
    while (rc == EXIT_OK && r->step < steps) {
        step_result sr = {0};
        if ((rc = train_step(r, t, &ds, &h, &sr, err, n)) != EXIT_OK)
            break;
        double norm = sg_clip_grad_norm(r->ps, clip > 0 ? clip : INFINITY);
        double lr = sg_schedule_lr(&r->sched, r->step);
        sg_optim_step(r->opt, lr);
        sg_params_zero_grad(r->ps);
        r->step++;
        tokens += (double)sr.tokens;
        double l = sr.loss, tps = tokens / (seconds() - t0);
        smooth = isnan(smooth) ? l : 0.95 * smooth + 0.05 * l;
        bool eval = r->step % eval_every == 0 || r->step == steps;
        eval_result v = {.loss = NAN, .accuracy = NAN, .f1 = NAN};
        if (eval) {
            v = run_evaluate(r, t);
            int pictures = lead && ((recurrent && grad_norms(r, t) != 0) ||
                                    (r->model == MODEL_S2S && attention_picture(r, t) != 0) ||
                                    (r->model == MODEL_CLASSIFY && confusion_picture(r, t) != 0));
            if (dist_share(pictures)) {
                rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot write a plot: %s", dir, lead ? strerror(errno) : "(on rank 0)");
                break;
            }
        }
        char vs[32] = "", va[32] = "";        /* the valid columns are empty between evaluations */
        if (eval)
            snprintf(vs, sizeof vs, "%.6f", v.loss);
        if (eval && !isnan(v.accuracy))
            snprintf(va, sizeof va, "%.6f", v.accuracy);
        int written = !lead || (fprintf(metrics, "%ld,%.6f,%s,%.6g,%.6g,%.0f,%s\n", r->step, l, vs, lr, norm, tps, va) >= 0 &&
                                fflush(metrics) == 0);
        if (!dist_share(written)) {
            rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot write: %s", path, lead ? strerror(errno) : "(on rank 0)");
            break;
        }
        double left = (double)(steps - r->step) * (tokens / (double)(r->step ? r->step : 1)) / (tps > 0 ? tps : 1);
        if (tty)
            fprintf(log, "\rstep %ld/%ld  epoch %.2f  loss %.3f  %.0f tok/s  %02d:%02d left%s", r->step, steps,
                    (double)r->step / (double)per_epoch, smooth, tps, (int)left / 60,
                    (int)left % 60, eval ? "\n" : "");
        if (!quiet && eval) {
            fprintf(log, "step %ld  train loss %.4f  valid loss %.4f", r->step, smooth, v.loss);
            if (!regress && r->d.task != TASK_S2S && r->d.task != TASK_CLASSIFY && r->d.task != TASK_TAG)
                fprintf(log, "  (ppl %.2f)", exp(v.loss));
            if (!isnan(v.accuracy))
                fprintf(log, "  accuracy %.1f%%", 100 * v.accuracy);
            if (!isnan(v.f1))
                fprintf(log, "  %s F1 %.3f", r->d.kind == DATA_SEGMENT ? "word" : "span", v.f1);
            fprintf(log, "  %.0f tok/s\n", tps);
        }
        fflush(log);
        bool stop = sr.stop || (o->stop_after > 0 && r->step >= o->stop_after);
        if (r->step % ckpt_every == 0 || r->step == steps || stop) {
            if (gather_state(r, &ds) != 0) {
                rc = cli_fail(err, n, EXIT_FAIL, "MPI_Allreduce of the carried state failed");
                break;
            }
            int saved = lead ? run_save(r, err, n) : EXIT_OK;
            if (lead && saved == EXIT_OK &&
                plot_losses(dir, regress ? "mean squared error" : "cross-entropy (nats/token)") != 0)
                saved = cli_fail(err, n, EXIT_FAIL, "%s/loss.svg: cannot write: %s", dir, strerror(errno));
            if ((rc = dist_share(saved)) != EXIT_OK) {
                if (!lead)
                    snprintf(err, n, "rank 0 could not write the checkpoint or its plot");
                break;
            }
        }
        if (stop) {
            int sig = interrupted ? interrupted : SIGTERM;    /* a rank that was not signalled stops with the others */
            rc = sr.stop ? 128 + sig : EXIT_OK;
            if (!quiet)
                fprintf(log, "\nstopped at step %ld%s; checkpoint written: seqgrad resume %s\n", r->step,
                        sig == SIGTERM && sr.stop ? " (SIGTERM)" : sig == SIGHUP ? " (SIGHUP)" : "", dir);
            break;
        }
    }
    for (int i = 0; i < 3; i++)
        sigaction(stop_signals[i], &old[i], NULL);
    if (metrics && fclose(metrics) != 0 && rc == EXIT_OK)
        rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot write: %s", path, strerror(errno));
    sg_tape_free(t);
    dist_step_free(&ds);
    helpers_free(&h);
    sg_blas_threads(blas_was);
    return rc;
}

/* one line on what is about to be trained */
static void describe(const run *r, FILE *f)
{
    const sg_config *c = &r->cfg;
    const dataset *d = &r->d;
    const char *kind = cfg_str(c, "data.kind");
    if (d->task == TASK_STREAM)
        fprintf(f, "%s: %ld characters (%ld held out), vocabulary %d", d->path, d->len[0] + d->len[1], d->len[1], d->V);
    else if (d->path[0])
        fprintf(f, "%s (%s): %ld training and %ld validation examples, vocabulary %d", d->path, kind, d->len[0],
                d->len[1], d->V);
    else
        fprintf(f, "%s task: %ld training and %ld validation examples", kind, d->len[0], d->len[1]);
    const char *model = cfg_str(c, "model.kind");
    if (r->model == MODEL_S2S)
        fprintf(f, "; seq2seq (%s%s, %s attention) hidden %d", cfg_bool(c, "model.bidirectional") ? "bidirectional " : "",
                cfg_str(c, "model.cell"), cfg_str(c, "model.attention"), r->H);
    else
        fprintf(f, "; %s%s %d x %d", model, r->model == MODEL_TS2S ? " encoder-decoder" : "", r->L, r->H);
    fprintf(f, ", %zu parameters -> %s\n", sg_params_numel(r->ps), cfg_str(c, "train.run_dir"));
}

int train_run(const sg_config *c, const train_opts *o, char *err, size_t n)
{
    run r = {.cfg = *c};
    int rc = run_build(&r, NULL, NULL, USE_SPLITS, err, n);
    char abs[PATH_MAX], set[PATH_MAX + 16];
    if (rc == EXIT_OK && cfg_str(c, "data.path")[0] && realpath(cfg_str(c, "data.path"), abs)) {
        snprintf(set, sizeof set, "data.path=%s", abs);   /* resume and eval from any folder */
        cfg_set(&r.cfg, set, err, n);
    }
    bool lead = dist_rank() == 0;           /* under mpirun, rank 0 alone writes */
    if (rc == EXIT_OK && lead)
        rc = run_write_config(&r, o->overwrite, err, n);
    if (dist_size() > 1) {                  /* every rank goes on, or none */
        int lead_rc = dist_share(rc);
        if (lead_rc != EXIT_OK && rc == EXIT_OK)
            snprintf(err, n, "rank 0 could not start the run folder");
        rc = rc != EXIT_OK ? rc : lead_rc;
    }
    if (rc == EXIT_OK && !o->quiet && lead)
        describe(&r, o->log ? o->log : stdout);
    if (rc == EXIT_OK)
        rc = loop(&r, o, err, n);
    run_free(&r);
    return rc;
}

int train_compare(const sg_config *c, const train_opts *o, char *err, size_t n)
{
    char cells[sizeof c->v[0].value], *save = NULL;
    snprintf(cells, sizeof cells, "%s", cfg_str(c, "compare.cells"));
    long seeds = cfg_int(c, "compare.seeds"), seed0 = cfg_int(c, "train.seed"), runs = 0;
    const char *base = cfg_str(c, "train.run_dir");
    for (const char *p = cells; *p; p++)
        runs += *p == ',';
    runs = (runs + 1) * seeds;
    char (*dirs)[600] = calloc((size_t)runs, sizeof *dirs);
    const char **names = calloc((size_t)runs, sizeof *names);
    sg_config *one = malloc(sizeof *one);
    int rc = dirs && names && one ? cli_make_dirs(base) : (snprintf(err, n, "out of memory"), EXIT_FAIL);
    if (rc != EXIT_OK && !err[0])
        snprintf(err, n, "cannot make %s", base);
    long k = 0;
    bool s2s = !strcmp(cfg_str(c, "model.kind"), "seq2seq");
    for (char *cell = strtok_r(cells, ",", &save); cell && rc == EXIT_OK; cell = strtok_r(NULL, ",", &save))
        for (long s = 0; s < seeds && rc == EXIT_OK; s++, k++) {
            char set[700];
            *one = *c;
            cfg_set(one, "compare.cells=", err, n);          /* the run's own config compares nothing */
            snprintf(set, sizeof set, "%s=%s", s2s ? "model.cell" : "model.kind", cell);
            cfg_set(one, set, err, n);
            snprintf(set, sizeof set, "train.seed=%ld", seed0 + s);
            cfg_set(one, set, err, n);
            snprintf(dirs[k], sizeof dirs[k], "%s/%s-seed%ld", base, cell, seed0 + s);
            snprintf(set, sizeof set, "train.run_dir=%s", dirs[k]);
            if (cfg_set(one, set, err, n) != 0) {
                rc = EXIT_CONFIG;
                break;
            }
            names[k] = dirs[k];
            if (!o->quiet)
                fprintf(o->log ? o->log : stdout, "== run %ld of %ld: %s, seed %ld ==\n", k + 1, runs, cell, seed0 + s);
            rc = train_run(one, o, err, n);
        }
    if (rc == EXIT_OK)
        rc = compare_runs(names, (int)k, base, o->quiet ? NULL : o->log ? o->log : stdout, err, n);
    free(dirs), free(names), free(one);
    return rc;
}

int train_resume(const char *run_dir, const train_opts *o, char *err, size_t n)
{
    run r = {0};
    int rc = run_open(&r, run_dir, NULL, USE_SPLITS, err, n);
    if (rc == EXIT_OK) {
        /* the run folder is where it is now, whatever the config said */
        char set[700];
        snprintf(set, sizeof set, "train.run_dir=%s", run_dir);
        cfg_set(&r.cfg, set, err, n);
        if (!o->quiet && dist_rank() == 0)
            fprintf(o->log ? o->log : stdout, "resuming %s at step %ld\n", run_dir, r.step);
        rc = loop(&r, o, err, n);
    }
    run_free(&r);
    return rc;
}

/* ---- gradcheck: the configured model, tiny, in f64 ---------------------------- */

static sg_tensor *gc_loss(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)in;
    run *r = ctx;
    int B = r->B, T = r->T;
    if (r->d.task != TASK_STREAM)
        return run_examples_loss(r, t, 0, (int[]){0, 1}, 2, NULL, NULL);
    for (int k = 0; k < B * T; k++)
        r->bx[k] = r->d.ids[0][k], r->by[k] = r->d.ids[0][k + 1];
    return sg_cross_entropy(t, run_lm_logits(r, t, r->bx, B, T, NULL, NULL, NULL), r->by, NULL);
}

int train_gradcheck(const sg_config *c, FILE *out, char *err, size_t n)
{
    run r = {.cfg = *c};
    static const char *tiny[] = {"model.hidden=4", "model.embedding=3", "model.dropout=0", "data.batch_size=2",
                                 "data.seq_len=5", "model.heads=2", "data.min_len=2", "data.max_len=4",
                                 "data.train_size=8", "data.valid_size=2", "data.symbols=4", "train.shards=1"};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++)
        cfg_set(&r.cfg, tiny[i], err, n);
    int rc = run_build(&r, NULL, NULL, USE_SPLITS, err, n);
    if (rc != EXIT_OK) {
        run_free(&r);
        return rc;
    }
    sg_params_cast(r.ps, SG_F64);
    int np = sg_params_count(r.ps);
    fprintf(out, "gradient check of %s on %s data, %d layers, hidden 4, batch 2, f64, h = 1e-4, every parameter:\n",
            cfg_str(c, "model.kind"), cfg_str(c, "data.kind"), r.L);
    bool ok = true;
    for (int first = 0; first < np && rc == EXIT_OK; first += SG_GRADCHECK_MAX) {   /* the others held fixed */
        int k = np - first < SG_GRADCHECK_MAX ? np - first : SG_GRADCHECK_MAX;
        sg_tensor *in[SG_GRADCHECK_MAX];
        const char *names[SG_GRADCHECK_MAX];
        for (int i = 0; i < k; i++)
            in[i] = sg_params_get(r.ps, first + i), names[i] = sg_params_name(r.ps, first + i);
        sg_gradcheck_report rep;
        /* the library's step policy (h = 1e-4, failures confirmed at h/10):
         * at hidden 4 layer norm's higher derivatives are large, and h = 1e-3
         * left truncation error 2e-6 on a 2-layer transformer encoder-decoder */
        sg_gradcheck_opts go = sg_gradcheck_defaults();
        sg_status s = sg_gradcheck(gc_loss, &r, in, k, &go, &rep);
        sg_gradcheck_print(&rep, names, out);
        if (s != SG_OK)
            rc = cli_fail(err, n, EXIT_FAIL, "%s", rep.msg);
        ok = ok && s == SG_OK && rep.ok;
    }
    if (rc == EXIT_OK && !ok)
        rc = cli_fail(err, n, EXIT_FAIL, "gradient check failed");
    fprintf(out, "%s\n", ok ? "all parameters pass" : "FAILED");
    run_free(&r);
    return rc;
}
