/*
 * train.c - the training run of the seqgrad tool (see train.h). The model
 * is embedding -> stacked recurrent layer -> linear, trained on B parallel
 * streams of the text with the hidden state carried from batch to batch.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <seqgrad/seqgrad.h>

#include "plot.h"
#include "train.h"

#ifndef SEQGRAD_DATA_DIR
#define SEQGRAD_DATA_DIR "data"
#endif

typedef struct {
    sg_config cfg;
    int *ids;                 /* the text as ids */
    long n, n_train;
    int V;
    unsigned char vocab[256];
    int id_of[256];
    sg_params *ps;
    bool tlm;                 /* a transformer LM, else a recurrent one */
    sg_transformer_lm lm;
    sg_embedding emb;
    sg_rnn rnn;
    sg_linear out;
    sg_optim *opt;
    sg_schedule sched;
    sg_tensor *carry[2];      /* hidden state carried across batches (L,B,H) */
    sg_rng rng;
    long step, pos;
    int B, T, H, L;
} run;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig, interrupted = 1; }

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* logits (B,T,V): the transformer reads the chunk alone; a recurrent model
 * starts from state (NULL: zeros) and leaves its final state in next */
static sg_tensor *logits(run *r, sg_tape *t, const int *x, int B, int T, sg_tensor **state, sg_tensor **next,
                         sg_rng *rng)
{
    if (r->tlm)
        return sg_transformer_lm_forward(t, &r->lm, x, B, T, rng);
    sg_tensor *h = sg_rnn_forward(t, &r->rnn, sg_embedding_forward(t, &r->emb, x, B, T), state, NULL, rng, next);
    return sg_linear_forward(t, &r->out, h);
}

static void run_free(run *r)
{
    sg_optim_free(r->opt);
    sg_params_free(r->ps);
    sg_tensor_free(r->carry[0]), sg_tensor_free(r->carry[1]);
    free(r->ids);
}

/* the text: ids over the bytes that occur (or over a given vocabulary);
 * whole: all of it is the validation split (eval) */
static int load_text(run *r, const char *vocab_hex, bool whole, char *err, size_t n)
{
    const char *path = cfg_str(&r->cfg, "data.path");
    if (!path[0])
        path = SEQGRAD_DATA_DIR "/genesis.txt";
    FILE *f = fopen(path, "rb");
    if (!f)
        return snprintf(err, n, "%s: cannot open: %s", path, strerror(errno)), EXIT_DATA;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *s = malloc((size_t)len + 1);
    r->ids = malloc(((size_t)len + 1) * sizeof *r->ids);
    if (!s || !r->ids || fread(s, 1, (size_t)len, f) != (size_t)len) {
        fclose(f), free(s);
        return snprintf(err, n, "%s: cannot read", path), EXIT_DATA;
    }
    fclose(f);
    memset(r->id_of, -1, sizeof r->id_of);
    r->V = 0;
    if (vocab_hex) {                  /* the checkpoint's vocabulary, in its order */
        for (const char *h = vocab_hex; h[0] && h[1]; h += 2) {
            unsigned c;
            sscanf(h, "%2x", &c);
            r->id_of[c] = r->V, r->vocab[r->V++] = (unsigned char)c;
        }
    } else {
        bool seen[256] = {false};
        for (long i = 0; i < len; i++)
            seen[s[i]] = true;
        for (int c = 0; c < 256; c++)
            if (seen[c])
                r->id_of[c] = r->V, r->vocab[r->V++] = (unsigned char)c;
    }
    for (long i = 0; i < len; i++) {
        if (r->id_of[s[i]] < 0) {
            snprintf(err, n, "%s: byte 0x%02x at offset %ld is not in the checkpoint's vocabulary", path, s[i], i);
            free(s);
            return EXIT_DATA;
        }
        r->ids[i] = r->id_of[s[i]];
    }
    free(s);
    r->n = len;
    r->n_train = whole ? 0 : (long)((double)len * (1 - cfg_real(&r->cfg, "data.valid_fraction")));
    if ((!whole && r->n_train / r->B < r->T + 2) || r->n - r->n_train < (long)r->B * (r->T + 1))
        return snprintf(err, n, "%s: %ld characters are too few for batch %d x %d", path, len, r->B, r->T), EXIT_DATA;
    return EXIT_OK;
}

/* train.steps, or train.epochs passes over the training streams */
static long total_steps(const run *r)
{
    long epochs = cfg_int(&r->cfg, "train.epochs");
    if (epochs <= 0)
        return cfg_int(&r->cfg, "train.steps");
    long per_epoch = (r->n_train / r->B - 1) / r->T;
    return epochs * (per_epoch > 0 ? per_epoch : 1);
}

static int build(run *r, char *err, size_t n)
{
    const sg_config *c = &r->cfg;
    r->B = (int)cfg_int(c, "data.batch_size"), r->T = (int)cfg_int(c, "data.seq_len");
    r->H = (int)cfg_int(c, "model.hidden"), r->L = (int)cfg_int(c, "model.layers");
    sg_rng_seed(&r->rng, (uint64_t)cfg_int(c, "train.seed"));
    r->ps = sg_params_new();
    sg_rnn_opts ro = sg_rnn_defaults();
    ro.layers = r->L, ro.dropout = cfg_real(c, "model.dropout");
    const char *init = cfg_str(c, "model.init");
    ro.cell.init = !strcmp(init, "xavier") ? SG_INIT_XAVIER : !strcmp(init, "orthogonal") ? SG_INIT_ORTHOGONAL
                 : !strcmp(init, "identity") ? SG_INIT_IDENTITY : SG_INIT_PYTORCH;
    ro.cell.forget_bias = cfg_real(c, "model.forget_bias");
    const char *kind = cfg_str(c, "model.kind");
    const sg_cell_def *cell = sg_cell_lookup(kind);
    char where[600], names[512];
    cfg_where(c, "model.kind", where, sizeof where);
    r->tlm = !strcmp(kind, "transformer");
    if (!r->tlm && !cell) {
        sg_cell_names(names, sizeof names);
        return snprintf(err, n, "%s: model.kind: \"%s\" is neither transformer nor a registered cell (%s)", where, kind,
                        names), EXIT_CONFIG;
    }
    if (r->tlm) {
        sg_transformer_opts to = sg_transformer_defaults(r->H, (int)cfg_int(c, "model.heads"));
        to.norm_first = cfg_bool(c, "model.norm_first"), to.gelu = true, to.dropout = cfg_real(c, "model.dropout");
        cfg_where(c, "model.heads", where, sizeof where);
        if (r->H % to.heads)
            return snprintf(err, n, "%s: model.heads: %d heads do not divide hidden %d", where, to.heads, r->H),
                   EXIT_CONFIG;
        if (sg_transformer_lm_init(&r->lm, r->ps, r->V, r->T, r->L, false, &to, SG_F32, &r->rng) != SG_OK)
            return snprintf(err, n, "cannot build the transformer"), EXIT_CONFIG;
    } else if (sg_embedding_init(&r->emb, r->ps, "embedding.", r->V, r->H, SG_F32, &r->rng) != SG_OK ||
               sg_rnn_init(&r->rnn, cell, r->ps, "rnn.", r->H, r->H, &ro, SG_F32, &r->rng) != SG_OK ||
               sg_linear_init(&r->out, r->ps, "decoder.", r->H, r->V, true, SG_F32, &r->rng) != SG_OK) {
        return snprintf(err, n, "cannot build the model"), EXIT_CONFIG;
    }
    static const char *kinds[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    sg_optim_kind ok = SG_ADAM;
    for (int k = 0; k < 5; k++)
        if (!strcmp(cfg_str(c, "optim.kind"), kinds[k]))
            ok = (sg_optim_kind)k;
    sg_optim_opts oo = sg_optim_defaults(ok);
    oo.lr = cfg_real(c, "optim.lr"), oo.momentum = cfg_real(c, "optim.momentum");
    oo.weight_decay = cfg_real(c, "optim.weight_decay");
    if (!(r->opt = sg_optim_new(r->ps, &oo)))
        return snprintf(err, n, "optim: these settings are not valid together"), EXIT_CONFIG;
    const char *sk = cfg_str(c, "schedule.kind");
    r->sched = (sg_schedule){.kind = !strcmp(sk, "step") ? SG_SCHED_STEP : !strcmp(sk, "cosine") ? SG_SCHED_COSINE
                                                                                                 : SG_SCHED_CONSTANT,
                             .lr = oo.lr, .warmup = cfg_int(c, "schedule.warmup"),
                             .step_size = cfg_int(c, "schedule.step_size"), .gamma = cfg_real(c, "schedule.gamma"),
                             .total = total_steps(r), .min_lr = cfg_real(c, "schedule.min_lr")};
    r->carry[0] = sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H});
    r->carry[1] = sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H});
    return EXIT_OK;
}

/* ---- checkpoints: params, optimizer moments, carried state; the rest as metadata ---- */

static int save(run *r, char *err, size_t n)
{
    int np = sg_params_count(r->ps), k = 0;
    sg_ckpt_entry *e = calloc((size_t)(3 * np + 2), sizeof *e);
    char (*names)[160] = calloc((size_t)(3 * np), sizeof *names);   /* model.X, optim.m.X, optim.v.X */
    if (!e || !names)
        return free(e), free(names), snprintf(err, n, "out of memory"), EXIT_FAIL;
    for (int i = 0; i < np; i++) {
        sg_tensor *p = sg_params_get(r->ps, i);
        snprintf(names[3 * i], sizeof names[0], "model.%s", sg_params_name(r->ps, i));
        sg_ckpt_entry pe = {.name = names[3 * i], .dtype = SG_F32, .ndim = sg_tensor_ndim(p), .data = sg_tensor_data(p)};
        memcpy(pe.shape, sg_tensor_shape(p), sizeof pe.shape);
        e[k++] = pe;
        for (int slot = 0; slot < 2; slot++) {
            double *st = sg_optim_state(r->opt, i, slot);
            if (!st)
                continue;
            snprintf(names[3 * i + 1 + slot], sizeof names[0], "optim.%s.%s", slot ? "v" : "m", sg_params_name(r->ps, i));
            e[k] = pe;
            e[k].name = names[3 * i + 1 + slot], e[k].dtype = SG_F64, e[k].data = st;
            k++;
        }
    }
    static const char *carry_names[2] = {"state.h", "state.c"};
    for (int j = 0; j < 2 && !r->tlm; j++)
        e[k++] = (sg_ckpt_entry){.name = carry_names[j], .dtype = SG_F32, .ndim = 3, .shape = {r->L, r->B, r->H},
                                 .data = sg_tensor_data(r->carry[j])};
    char step[32], pos[32], osteps[32], rng[80], vocab[513], config[8192];
    snprintf(step, sizeof step, "%ld", r->step);
    snprintf(pos, sizeof pos, "%ld", r->pos);
    snprintf(osteps, sizeof osteps, "%ld", sg_optim_steps(r->opt));
    snprintf(rng, sizeof rng, "%016llx%016llx%016llx%016llx", (unsigned long long)r->rng.s[0],
             (unsigned long long)r->rng.s[1], (unsigned long long)r->rng.s[2], (unsigned long long)r->rng.s[3]);
    for (int i = 0; i < r->V; i++)
        sprintf(vocab + 2 * i, "%02x", r->vocab[i]);
    vocab[2 * r->V] = '\0';
    cfg_dump(&r->cfg, config, sizeof config);
    const char *meta[] = {"format", "seqgrad-charlm-1", "step", step, "data_pos", pos, "optim_steps", osteps,
                          "rng", rng, "vocab", vocab, "config", config};
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", cfg_str(&r->cfg, "train.run_dir"));
    sg_status s = sg_ckpt_write(path, e, k, meta, 7, err, n);
    free(e), free(names);
    return s == SG_OK ? EXIT_OK : EXIT_FAIL;
}

static int restore(run *r, const sg_ckpt *ck, char *err, size_t n)
{
    if (sg_ckpt_load_params(ck, r->ps, "model.", err, n) != SG_OK)
        return EXIT_DATA;
    for (int i = 0; i < sg_params_count(r->ps); i++)
        for (int slot = 0; slot < 2; slot++) {
            double *st = sg_optim_state(r->opt, i, slot);
            char name[160];
            snprintf(name, sizeof name, "optim.%s.%s", slot ? "v" : "m", sg_params_name(r->ps, i));
            const sg_ckpt_entry *e = sg_ckpt_find(ck, name);
            if (!st)
                continue;
            if (!e || e->dtype != SG_F64 || (size_t)e->shape[0] * (e->ndim > 1 ? (size_t)e->shape[1] : 1) !=
                                                  sg_tensor_size(sg_params_get(r->ps, i)))
                return snprintf(err, n, "checkpoint lacks a valid %s", name), EXIT_DATA;
            memcpy(st, e->data, sg_tensor_size(sg_params_get(r->ps, i)) * sizeof(double));
        }
    static const char *carry_names[2] = {"state.h", "state.c"};
    for (int j = 0; j < 2 && !r->tlm; j++) {
        const sg_ckpt_entry *e = sg_ckpt_find(ck, carry_names[j]);
        if (!e || e->dtype != SG_F32 || e->ndim != 3 || e->shape[0] != r->L || e->shape[1] != r->B || e->shape[2] != r->H)
            return snprintf(err, n, "checkpoint lacks a valid %s", carry_names[j]), EXIT_DATA;
        memcpy(sg_tensor_data(r->carry[j]), e->data, sg_tensor_size(r->carry[j]) * sizeof(float));
    }
    const char *rng = sg_ckpt_meta(ck, "rng"), *step = sg_ckpt_meta(ck, "step"), *pos = sg_ckpt_meta(ck, "data_pos");
    const char *os = sg_ckpt_meta(ck, "optim_steps");
    if (!rng || strlen(rng) != 64 || !step || !pos || !os)
        return snprintf(err, n, "checkpoint metadata is incomplete"), EXIT_DATA;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, rng + 16 * i, 16), part[16] = '\0';
        r->rng.s[i] = strtoull(part, NULL, 16);
    }
    r->step = atol(step), r->pos = atol(pos);
    sg_optim_set_steps(r->opt, atol(os));
    return EXIT_OK;
}

/* ---- the loop ---------------------------------------------------------------------- */

static double validate_loss(run *r, sg_tape *t)
{
    long per = (r->n - r->n_train) / r->B, steps = (per - 1) / r->T;
    sg_tensor *st[2] = {sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H}),
                        sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H})};
    int *x = malloc((size_t)r->B * r->T * sizeof *x), *y = malloc((size_t)r->B * r->T * sizeof *y);
    double total = 0;
    for (long s = 0; s < steps; s++) {
        for (int b = 0; b < r->B; b++)
            for (int k = 0; k < r->T; k++) {
                x[b * r->T + k] = r->ids[r->n_train + b * per + s * r->T + k];
                y[b * r->T + k] = r->ids[r->n_train + b * per + s * r->T + k + 1];
            }
        sg_tape_reset(t);
        bool was = sg_tape_set_grad(t, false);
        sg_tensor *next[2] = {NULL, NULL};
        sg_tensor *loss = sg_cross_entropy(t, logits(r, t, x, r->B, r->T, st, next, NULL), y, NULL);
        sg_tape_set_grad(t, was);
        total += sg_tensor_get(loss, 0);
        if (next[0])
            sg_tensor_copy(st[0], next[0]);
        if (next[1])
            sg_tensor_copy(st[1], next[1]);
    }
    sg_tensor_free(st[0]), sg_tensor_free(st[1]);
    free(x), free(y);
    return steps ? total / (double)steps : NAN;
}

/* ||dL/dh_t|| of the last layer's output for every t, L being the loss at
 * the last time step of a validation batch: the tape keeps each
 * intermediate gradient, so the picture is one backward. */
static void grad_norms(run *r, sg_tape *t)
{
    int B = r->B, T = r->T;
    int *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y);
    double *norms = calloc((size_t)T, sizeof *norms);
    long per = (r->n - r->n_train) / B;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++) {
            x[b * T + k] = r->ids[r->n_train + b * per + k];
            y[b * T + k] = k == T - 1 ? r->ids[r->n_train + b * per + k + 1] : -100;   /* only the last step */
        }
    sg_tensor **steps = calloc((size_t)T, sizeof *steps);
    sg_tape_reset(t);
    r->rnn.trace = steps;             /* keep h_t of every step */
    sg_tensor *h = sg_rnn_forward(t, &r->rnn, sg_embedding_forward(t, &r->emb, x, B, T), NULL, NULL, NULL, NULL);
    r->rnn.trace = NULL;
    sg_tensor *loss = sg_cross_entropy(t, sg_linear_forward(t, &r->out, h), y, NULL);
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
        snprintf(title, sizeof title, "%s, %d layers, step %ld", cfg_str(&r->cfg, "model.kind"), r->L, r->step);
        plot_grad_norms(path, norms, T, title);
    }
    sg_params_zero_grad(r->ps);      /* this backward must not reach the optimizer */
    free(x), free(y), free(norms), free(steps);
}

static int loop(run *r, const train_opts *o, char *err, size_t n)
{
    const char *dir = cfg_str(&r->cfg, "train.run_dir");
    long steps = total_steps(r), eval_every = cfg_int(&r->cfg, "train.eval_every");
    long ckpt_every = cfg_int(&r->cfg, "train.checkpoint_every"), per = r->n_train / r->B;
    double clip = cfg_real(&r->cfg, "clip.norm");
    FILE *log = o->log ? o->log : stdout;
    bool tty = !o->quiet && isatty(fileno(log));
    /* Ctrl-C is caught from here on (before metrics.csv exists, so a
     * caller that waits for that file knows the handler is in place) */
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *metrics = fopen(path, r->step ? "a" : "w");
    if (!metrics) {
        sigaction(SIGINT, &old, NULL);
        return snprintf(err, n, "%s: cannot write: %s", path, strerror(errno)), EXIT_FAIL;
    }
    if (!r->step)
        fprintf(metrics, "step,train_loss,valid_loss,lr,grad_norm,tokens_per_s\n");

    sg_tape *t = sg_tape_new();
    int *x = malloc((size_t)r->B * r->T * sizeof *x), *y = malloc((size_t)r->B * r->T * sizeof *y);
    double t0 = seconds(), smooth = NAN;
    long first = r->step;
    int rc = EXIT_OK;
    while (r->step < steps) {
        if (r->pos + r->T + 1 > per) {            /* an epoch ends: streams start again, state cleared */
            r->pos = 0;
            memset(sg_tensor_data(r->carry[0]), 0, sg_tensor_size(r->carry[0]) * sizeof(float));
            memset(sg_tensor_data(r->carry[1]), 0, sg_tensor_size(r->carry[1]) * sizeof(float));
        }
        for (int b = 0; b < r->B; b++)
            for (int k = 0; k < r->T; k++) {
                x[b * r->T + k] = r->ids[b * per + r->pos + k];
                y[b * r->T + k] = r->ids[b * per + r->pos + k + 1];
            }
        r->pos += r->T;
        sg_tape_reset(t);
        sg_tensor *next[2] = {NULL, NULL};
        sg_tensor *loss = sg_cross_entropy(t, logits(r, t, x, r->B, r->T, r->carry, next, &r->rng), y, NULL);
        if (sg_backward(t, loss) != SG_OK) {
            rc = EXIT_FAIL, snprintf(err, n, "%s", sg_tape_errmsg(t));
            break;
        }
        if (next[0])
            sg_tensor_copy(r->carry[0], next[0]);
        if (next[1])
            sg_tensor_copy(r->carry[1], next[1]);
        double norm = clip > 0 ? sg_clip_grad_norm(r->ps, clip) : sg_clip_grad_norm(r->ps, INFINITY);
        double lr = sg_schedule_lr(&r->sched, r->step);
        sg_optim_step(r->opt, lr);
        sg_params_zero_grad(r->ps);
        r->step++;
        double l = sg_tensor_get(loss, 0), tps = (double)(r->step - first) * r->B * r->T / (seconds() - t0);
        smooth = isnan(smooth) ? l : 0.95 * smooth + 0.05 * l;
        bool eval = r->step % eval_every == 0 || r->step == steps;
        double vl = eval ? validate_loss(r, t) : NAN;
        if (eval && !r->tlm)
            grad_norms(r, t);
        char vs[32] = "";                /* the valid column is empty between evaluations */
        if (eval)
            snprintf(vs, sizeof vs, "%.6f", vl);
        fprintf(metrics, "%ld,%.6f,%s,%.6g,%.6g,%.0f\n", r->step, l, vs, lr, norm, tps);
        fflush(metrics);
        double left = (double)(steps - r->step) * r->B * r->T / (tps > 0 ? tps : 1);
        if (tty)
            fprintf(log, "\rstep %ld/%ld  epoch %.2f  loss %.3f  %.0f tok/s  %02d:%02d left%s", r->step, steps,
                    (double)r->step * r->T / per, smooth, tps, (int)left / 60, (int)left % 60, eval ? "\n" : "");
        if (!o->quiet && eval)
            fprintf(log, "step %ld  train loss %.4f  valid loss %.4f  (ppl %.2f)  %.0f tok/s\n", r->step, smooth, vl,
                    exp(vl), tps);
        fflush(log);
        bool stop = interrupted || (o->stop_after > 0 && r->step >= o->stop_after);
        if (r->step % ckpt_every == 0 || r->step == steps || stop) {
            if ((rc = save(r, err, n)) != EXIT_OK)
                break;
            plot_losses(dir);
        }
        if (stop) {
            rc = interrupted ? EXIT_INTERRUPTED : EXIT_OK;
            if (!o->quiet)
                fprintf(log, "\nstopped at step %ld; checkpoint written: seqgrad resume %s\n", r->step, dir);
            break;
        }
    }
    sigaction(SIGINT, &old, NULL);
    fclose(metrics);
    free(x), free(y);
    sg_tape_free(t);
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int write_config(const run *r, char *err, size_t n)
{
    const char *dir = cfg_str(&r->cfg, "train.run_dir");
    char path[600], text[8192];
    if (make_dirs(dir) != 0)
        return snprintf(err, n, "%s: cannot create: %s", dir, strerror(errno)), EXIT_FAIL;
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return snprintf(err, n, "%s: cannot write: %s", path, strerror(errno)), EXIT_FAIL;
    size_t len = cfg_dump(&r->cfg, text, sizeof text);
    fwrite(text, 1, len, f);
    fclose(f);
    return EXIT_OK;
}

int train_run(const sg_config *c, const train_opts *o, char *err, size_t n)
{
    run r = {.cfg = *c};
    r.B = (int)cfg_int(c, "data.batch_size"), r.T = (int)cfg_int(c, "data.seq_len");
    int rc = load_text(&r, NULL, false, err, n);
    if (rc == EXIT_OK)
        rc = build(&r, err, n);
    if (rc == EXIT_OK)
        rc = write_config(&r, err, n);
    if (rc == EXIT_OK && !o->quiet)
        fprintf(o->log ? o->log : stdout, "%s: %ld characters, vocabulary %d; %s %d x %d, %zu parameters -> %s\n",
                cfg_str(c, "data.path")[0] ? cfg_str(c, "data.path") : "genesis.txt (bundled)", r.n, r.V,
                cfg_str(c, "model.kind"), r.L, r.H, sg_params_numel(r.ps), cfg_str(c, "train.run_dir"));
    if (rc == EXIT_OK)
        rc = loop(&r, o, err, n);
    run_free(&r);
    return rc;
}

/* the config a run folder holds, plus the checkpoint beside it */
static int reopen(run *r, const char *run_dir, const char *data, bool whole, sg_ckpt **ck, char *err, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    if (cfg_load(&r->cfg, path, err, n) != 0 || cfg_check(&r->cfg, err, n) != 0)
        return EXIT_CONFIG;
    if (data) {
        char set[700];
        snprintf(set, sizeof set, "data.path=%s", data);
        cfg_set(&r->cfg, set, err, n);
    }
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run_dir);
    if (!(*ck = sg_ckpt_open(path, err, n)))
        return EXIT_DATA;
    const char *vocab = sg_ckpt_meta(*ck, "vocab");
    if (!vocab)
        return snprintf(err, n, "%s: no vocabulary in the metadata", path), EXIT_DATA;
    r->B = (int)cfg_int(&r->cfg, "data.batch_size"), r->T = (int)cfg_int(&r->cfg, "data.seq_len");
    int rc = load_text(r, vocab, whole, err, n);
    if (rc == EXIT_OK)
        rc = build(r, err, n);
    if (rc == EXIT_OK)
        rc = restore(r, *ck, err, n);
    return rc;
}

int train_resume(const char *run_dir, const train_opts *o, char *err, size_t n)
{
    run r = {0};
    sg_ckpt *ck = NULL;
    int rc = reopen(&r, run_dir, NULL, false, &ck, err, n);
    sg_ckpt_close(ck);
    if (rc == EXIT_OK) {
        /* the run folder is where it is now, whatever the config said */
        char set[700];
        snprintf(set, sizeof set, "train.run_dir=%s", run_dir);
        cfg_set(&r.cfg, set, err, n);
        if (!o->quiet)
            fprintf(o->log ? o->log : stdout, "resuming %s at step %ld\n", run_dir, r.step);
        rc = loop(&r, o, err, n);
    }
    run_free(&r);
    return rc;
}

/* Sampling: feed() advances the model by one character and leaves the
 * distribution of the next one (softmax(z / temperature)) in probs. A
 * recurrent model carries its state; the transformer re-reads a window of
 * the last T characters. */
typedef struct {
    run *r;
    sg_tape *t;
    sg_tensor *st[2];
    int *ctx, len;
    double *probs, temperature;
} sampler;

static void feed(sampler *s, int c)
{
    run *r = s->r;
    sg_tape_reset(s->t);
    sg_tape_set_grad(s->t, false);
    if (s->len == r->T)
        memmove(s->ctx, s->ctx + 1, (size_t)(r->T - 1) * sizeof *s->ctx), s->len--;
    s->ctx[s->len++] = c;
    sg_tensor *z, *next[2] = {NULL, NULL};
    if (r->tlm) {
        z = sg_select(s->t, sg_select(s->t, logits(r, s->t, s->ctx, 1, s->len, NULL, NULL, NULL), 0, 0), 0, s->len - 1);
    } else {
        z = logits(r, s->t, &c, 1, 1, s->st, next, NULL);
        sg_tensor_copy(s->st[0], next[0]);
        if (next[1])
            sg_tensor_copy(s->st[1], next[1]);
    }
    sg_tensor *p = sg_softmax(s->t, sg_scale(s->t, z, 1 / s->temperature), -1, NULL);
    for (int v = 0; v < r->V; v++)
        s->probs[v] = sg_tensor_get(p, (size_t)v);
}

/* the folder of a checkpoint path */
static void folder_of(const char *checkpoint, char *dir, size_t n)
{
    snprintf(dir, n, "%s", checkpoint);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, n, ".");
}

int train_sample(const char *checkpoint, const char *prompt, int length, double temperature, unsigned long seed,
                 FILE *out, char *err, size_t n)
{
    char dir[600];
    folder_of(checkpoint, dir, sizeof dir);
    run r = {0};
    sg_ckpt *ck = NULL;
    int rc = reopen(&r, dir, NULL, false, &ck, err, n);
    sg_ckpt_close(ck);
    if (rc != EXIT_OK) {
        run_free(&r);
        return rc;
    }
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sampler sm = {.r = &r, .t = sg_tape_new(), .ctx = malloc((size_t)r.T * sizeof(int)),
                  .probs = malloc((size_t)r.V * sizeof(double)), .temperature = temperature};
    sm.st[0] = sg_tensor_new(SG_F32, 3, (int[]){r.L, 1, r.H});
    sm.st[1] = sg_tensor_new(SG_F32, 3, (int[]){r.L, 1, r.H});
    fputs(prompt, out);
    for (const char *p = prompt; *p; p++)          /* read the prompt (characters the model knows) */
        if (r.id_of[(unsigned char)*p] >= 0)
            feed(&sm, r.id_of[(unsigned char)*p]);
    if (sm.len == 0)
        feed(&sm, r.id_of['\n'] >= 0 ? r.id_of['\n'] : 0);
    for (int i = 0; i < length; i++) {             /* draw, print, read it back */
        double u = sg_rng_uniform(&rng), acc = 0;
        int c = 0;
        for (; c < r.V - 1; c++)
            if ((acc += sm.probs[c]) > u)
                break;
        fputc(r.vocab[c], out);
        feed(&sm, c);
    }
    sg_tensor_free(sm.st[0]), sg_tensor_free(sm.st[1]);
    sg_tape_free(sm.t);
    free(sm.ctx), free(sm.probs);
    fputc('\n', out);
    run_free(&r);
    return EXIT_OK;
}

int train_eval(const char *checkpoint, const char *data, FILE *out, char *err, size_t n)
{
    char dir[600];
    folder_of(checkpoint, dir, sizeof dir);
    run r = {0};
    sg_ckpt *ck = NULL;
    int rc = reopen(&r, dir, data, true, &ck, err, n);
    sg_ckpt_close(ck);
    if (rc == EXIT_OK) {
        sg_tape *t = sg_tape_new();
        double l = validate_loss(&r, t);
        fprintf(out, "%s: %ld characters, loss %.6f nats/char, perplexity %.4f\n", data, r.n, l, exp(l));
        sg_tape_free(t);
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
    int x[64], y[64];
    for (int k = 0; k < B * T; k++)
        x[k] = r->ids[k], y[k] = r->ids[k + 1];
    return sg_cross_entropy(t, logits(r, t, x, B, T, NULL, NULL, NULL), y, NULL);
}

int train_gradcheck(const sg_config *c, FILE *out, char *err, size_t n)
{
    run r = {.cfg = *c};
    static const char *tiny[] = {"model.hidden=4", "model.dropout=0", "data.batch_size=2", "data.seq_len=5",
                                 "model.heads=2"};
    for (int i = 0; i < 5; i++)
        cfg_set(&r.cfg, tiny[i], err, n);
    r.B = 2, r.T = 5;
    int rc = load_text(&r, NULL, false, err, n);
    if (rc == EXIT_OK)
        rc = build(&r, err, n);
    if (rc != EXIT_OK) {
        run_free(&r);
        return rc;
    }
    sg_params_cast(r.ps, SG_F64);
    int np = sg_params_count(r.ps);
    if (np > SG_GRADCHECK_MAX) {
        run_free(&r);
        return snprintf(err, n, "%d parameters: more than gradcheck takes (%d)", np, SG_GRADCHECK_MAX), EXIT_FAIL;
    }
    sg_tensor *in[SG_GRADCHECK_MAX];
    const char *names[SG_GRADCHECK_MAX];
    for (int i = 0; i < np; i++)
        in[i] = sg_params_get(r.ps, i), names[i] = sg_params_name(r.ps, i);
    sg_gradcheck_report rep;
    fprintf(out, "gradient check of %s, %d layers, hidden 4, batch 2 x 5 steps, f64, every parameter:\n",
            cfg_str(c, "model.kind"), r.L);
    sg_status s = sg_gradcheck(gc_loss, &r, in, np, NULL, &rep);
    sg_gradcheck_print(&rep, names, out);
    rc = s != SG_OK ? (snprintf(err, n, "%s", rep.msg), EXIT_FAIL) : rep.ok ? EXIT_OK : EXIT_FAIL;
    if (s == SG_OK && !rep.ok)
        snprintf(err, n, "gradient check failed");
    fprintf(out, "%s\n", rep.ok ? "all parameters pass" : "FAILED");
    run_free(&r);
    return rc;
}
