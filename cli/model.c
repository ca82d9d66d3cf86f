/*
 * model.c - the run behind the tool's commands (see run.h): the model the
 * config and the data call for, and the checkpoint that holds everything
 * the next step depends on (parameters, optimizer state, carried state,
 * rng, step). Its losses are in loss.c, its metrics in eval.c, decoding in
 * decode.c.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dist.h"
#include "plot.h"
#include "run.h"

void run_free(run *r)
{
    if (r->replica) {                         /* the original's: not this copy's to free */
        for (int j = 0; j < SG_CELL_MAX_STATES; j++)
            r->carry[j] = NULL;
        memset(&r->d, 0, sizeof r->d);
        r->perm = NULL, r->own_cell = NULL;
        if (r->shared_batch)
            r->bx = r->by = NULL;
    }
    sg_optim_free(r->opt);
    sg_params_free(r->ps);
    for (int j = 0; j < SG_CELL_MAX_STATES; j++) {
        sg_tensor_free(r->carry[j]), r->carry[j] = NULL;
        sg_tensor_free(r->shard_carry[j]), r->shard_carry[j] = NULL;
    }
    sg_cell_def_free(r->own_cell);
    r->own_cell = NULL;
    data_free(&r->d);
    free(r->perm), free(r->bx), free(r->by), free(r->bsrc), free(r->blen), free(r->fx), free(r->fy);
    r->opt = NULL, r->ps = NULL, r->perm = NULL;
    r->bx = r->by = r->bsrc = r->blen = NULL, r->fx = r->fy = NULL;
}

long run_steps_per_epoch(const run *r)
{
    long per = r->d.task == TASK_STREAM ? (r->d.len[0] / r->B - 1) / r->T : r->d.len[0] / r->B;
    return per > 0 ? per : 1;
}

long run_total_steps(const run *r)
{
    long epochs = cfg_int(&r->cfg, "train.epochs");
    return epochs > 0 ? epochs * run_steps_per_epoch(r) : cfg_int(&r->cfg, "train.steps");
}

const char *const pool_names[] = {"last", "mean", "max", "attention", NULL};

/* ---- building ------------------------------------------------------------------ */

static int config_error(const run *r, const char *key, char *err, size_t n, const char *what)
{
    char where[600];
    cfg_where(&r->cfg, key, where, sizeof where);
    snprintf(err, n, "%s: %s: %s", where, key, what);
    return EXIT_CONFIG;
}


int run_compile_cell(const sg_config *c, sg_cell_def **out, char *err, size_t n)
{
    const cfg_cell *cc = &c->cell;
    const char *file = c->file;
    sg_cell_spec spec = {.name = {cc->name.text, file, cc->name.line, cc->name.col},
                         .n_states = cc->n_states, .n_params = cc->n_params, .n_equations = cc->n_equations};
    sg_cell_text eqs[48];
    for (int i = 0; i < cc->n_states; i++)
        spec.states[i] = (sg_cell_text){cc->states[i].text, file, cc->states[i].line, cc->states[i].col};
    for (int i = 0; i < cc->n_params; i++) {
        const cfg_param *pm = &cc->params[i];
        int k = sg_enum_parse(sg_param_init_names, pm->init.text);
        if (k < 0)
            return cli_fail(err, n, EXIT_CONFIG, "%s:%d:%d: cell.params.%s.init: \"%s\" is not one of uniform|input|recurrent|bias|"
                                    "xavier|orthogonal|zeros|ones|constant", file, pm->init.line, pm->init.col,
                            pm->name.text, pm->init.text);
        spec.params[i].name = (sg_cell_text){pm->name.text, file, pm->name.line, pm->name.col};
        spec.params[i].shape = (sg_cell_text){pm->shape.text, file, pm->shape.line, pm->shape.col};
        spec.params[i].init = (sg_param_init)k, spec.params[i].value = pm->value;
    }
    for (int i = 0; i < cc->n_equations; i++)
        eqs[i] = (sg_cell_text){cc->equations[i].text, file, cc->equations[i].line, cc->equations[i].col};
    spec.equations = eqs;
    return (*out = sg_cell_compile(&spec, err, n)) ? EXIT_OK : EXIT_CONFIG;
}

/* the cell called name: the config's own cell or a registered one (NULL if neither) */
static const sg_cell_def *find_cell(const run *r, const char *name)
{
    if (r->own_cell && !strcmp(name, r->own_cell->name))
        return r->own_cell;
    return sg_cell_lookup(name);
}

/* "rnn|lstm|...|peephole (the config's cell)" */
static void cell_choices(const run *r, char *out, size_t n)
{
    sg_cell_names(out, n);
    if (r->own_cell && strlen(out) + strlen(r->own_cell->name) + 24 < n)
        snprintf(out + strlen(out), n - strlen(out), "|%s (the config's cell)", r->own_cell->name);
}

static const sg_cell_def *cell_named(const run *r, const char *key, char *err, size_t n)
{
    const sg_cell_def *cell = find_cell(r, cfg_str(&r->cfg, key));
    if (!cell) {
        char names[512], what[800];
        cell_choices(r, names, sizeof names);
        snprintf(what, sizeof what, "\"%s\" is not a registered cell (%s)", cfg_str(&r->cfg, key), names);
        config_error(r, key, err, n, what);
    }
    return cell;
}

/* which model the data and model.kind call for; EXIT_CONFIG if they don't fit */
static int choose_model(run *r, char *err, size_t n)
{
    const char *kind = cfg_str(&r->cfg, "model.kind"), *data = cfg_str(&r->cfg, "data.kind");
    bool tf = !strcmp(kind, "transformer"), s2s = !strcmp(kind, "seq2seq");
    char what[800];
    if (r->cfg.cell.present && !r->own_cell) {
        int rc = run_compile_cell(&r->cfg, &r->own_cell, err, n);
        if (rc != EXIT_OK)
            return rc;
    }
    if (!tf && !s2s && !find_cell(r, kind)) {
        char names[512];
        cell_choices(r, names, sizeof names);
        snprintf(what, sizeof what, "\"%s\" is neither transformer, seq2seq nor a registered cell (%s)", kind, names);
        return config_error(r, "model.kind", err, n, what);
    }
    switch (r->d.task) {
    case TASK_STREAM:
    case TASK_ITEMS:
        if (s2s) {
            snprintf(what, sizeof what, "seq2seq needs source-target data (data.kind pairs, copy, reverse or sort), "
                                        "not %s", data);
            return config_error(r, "model.kind", err, n, what);
        }
        r->model = tf ? MODEL_TLM : MODEL_RNN_LM;
        return EXIT_OK;
    case TASK_S2S:
        if (!tf && !s2s) {
            snprintf(what, sizeof what, "%s data needs seq2seq (an RNN encoder-decoder, with model.cell: %s) or transformer",
                     data, kind);
            return config_error(r, "model.kind", err, n, what);
        }
        r->model = tf ? MODEL_TS2S : MODEL_S2S;
        return EXIT_OK;
    case TASK_REGRESS:
        if (tf || s2s) {
            snprintf(what, sizeof what, "the adding problem takes a recurrent cell (rnn, lstm, gru, ...), not %s", kind);
            return config_error(r, "model.kind", err, n, what);
        }
        r->model = MODEL_REGRESS;
        return EXIT_OK;
    case TASK_TAG:
    case TASK_CLASSIFY:
        if (tf || s2s) {
            snprintf(what, sizeof what, "%s %s takes a recurrent cell (rnn, lstm, gru, ...), not %s", data,
                     r->d.task == TASK_TAG ? "tagging" : "classification", kind);
            return config_error(r, "model.kind", err, n, what);
        }
        r->model = r->d.task == TASK_TAG ? MODEL_TAG : MODEL_CLASSIFY;
        return EXIT_OK;
    }
    return EXIT_OK;
}

static int build_model(run *r, char *err, size_t n)
{
    sg_config *c = &r->cfg;
    int V = r->d.V;
    sg_rnn_opts ro = sg_rnn_defaults();
    ro.layers = r->L, ro.dropout = cfg_real(c, "model.dropout");
    ro.cell.init = (sg_init)sg_enum_parse(sg_init_names, cfg_str(c, "model.init"));    /* the config checked it */
    ro.cell.forget_bias = cfg_real(c, "model.forget_bias");
    sg_transformer_opts to = sg_transformer_defaults(r->H, (int)cfg_int(c, "model.heads"));
    to.norm_first = cfg_bool(c, "model.norm_first"), to.gelu = true, to.dropout = cfg_real(c, "model.dropout");
    if ((r->model == MODEL_TLM || r->model == MODEL_TS2S) && r->H % to.heads) {
        char what[128];
        snprintf(what, sizeof what, "%d heads do not divide hidden %d", to.heads, r->H);
        return config_error(r, "model.heads", err, n, what);
    }
    if ((r->model == MODEL_TLM || r->model == MODEL_TS2S) && r->L > SG_MAX_TLAYERS) {
        char what[128];
        snprintf(what, sizeof what, "a transformer takes at most %d layers", SG_MAX_TLAYERS);
        return config_error(r, "model.layers", err, n, what);
    }
    const sg_cell_def *cell = NULL;
    sg_status s = SG_OK;
    switch (r->model) {
    case MODEL_TLM:
        s = sg_transformer_lm_init(&r->lm, r->ps, V, r->T, r->L, false, &to, SG_F32, &r->rng);
        break;
    case MODEL_RNN_LM:
        /* the language (one-hot) or the image (784 pixels) sets the initial state, or joins every input */
        r->conditioned = r->d.kind == DATA_WORDGEN || r->d.kind == DATA_CAPTION;
        r->cond_input = r->conditioned && !strcmp(cfg_str(c, "model.condition"), "input");
        if ((s = sg_embedding_init(&r->emb, r->ps, "embedding.", V, r->H, SG_F32, &r->rng)) == SG_OK &&
            (s = sg_rnn_init(&r->rnn, find_cell(r, cfg_str(c, "model.kind")), r->ps, "rnn.", (r->cond_input ? 2 : 1) * r->H,
                             r->H, &ro, SG_F32, &r->rng)) == SG_OK)
            s = sg_linear_init(&r->out, r->ps, "decoder.", r->H, V, true, SG_F32, &r->rng);
        if (s == SG_OK && r->conditioned)
            s = sg_linear_init(&r->cond, r->ps, "cond.", r->d.kind == DATA_CAPTION ? 784 : r->d.C,
                               (r->cond_input ? 1 : r->L) * r->H, true, SG_F32, &r->rng);
        break;
    case MODEL_REGRESS:
        if ((s = sg_rnn_init(&r->rnn, find_cell(r, cfg_str(c, "model.kind")), r->ps, "rnn.", 2, r->H, &ro, SG_F32,
                             &r->rng)) == SG_OK)
            s = sg_linear_init(&r->out, r->ps, "head.", r->H, 1, true, SG_F32, &r->rng);
        break;
    case MODEL_TS2S:
        s = sg_transformer_s2s_init(&r->ts2s, r->ps, V, V + 2, r->L, &to, SG_F32, &r->rng);
        break;
    case MODEL_TAG: {      /* embedding -> layers -> a tag's logits at every step */
        ro.bidirectional = cfg_bool(c, "model.bidirectional");
        int D = (ro.bidirectional ? 2 : 1) * r->H;
        if ((s = sg_embedding_init(&r->emb, r->ps, "embedding.", V, r->H, SG_F32, &r->rng)) == SG_OK &&
            (s = sg_rnn_init(&r->rnn, find_cell(r, cfg_str(c, "model.kind")), r->ps, "rnn.", r->H, r->H, &ro, SG_F32,
                             &r->rng)) == SG_OK)
            s = sg_linear_init(&r->out, r->ps, "head.", D, r->d.C, true, SG_F32, &r->rng);
        break;
    }
    case MODEL_CLASSIFY: {
        /* byte sequences: embedding (V,H); fashion: the F pixels of a step go in as they are */
        r->pool = (pool_kind)sg_enum_parse(pool_names, cfg_str(c, "model.pooling"));
        ro.bidirectional = cfg_bool(c, "model.bidirectional");
        int D = (ro.bidirectional ? 2 : 1) * r->H, E = r->d.kind == DATA_FASHION ? r->d.F : r->H;
        if (r->d.kind != DATA_FASHION)
            s = sg_embedding_init(&r->emb, r->ps, "embedding.", V, r->H, SG_F32, &r->rng);
        if (s == SG_OK)
            s = sg_rnn_init(&r->rnn, find_cell(r, cfg_str(c, "model.kind")), r->ps, "rnn.", E, r->H, &ro, SG_F32,
                            &r->rng);
        if (s == SG_OK && r->pool == POOL_ATTENTION) {     /* q ~ U(-1/sqrt(D), 1/sqrt(D)) */
            r->query = sg_params_add(r->ps, "pool.query", sg_param_uniform(SG_F32, 1, (int[]){D}, -1 / sqrt(D),
                                                                            1 / sqrt(D), &r->rng));
            s = r->query ? SG_OK : SG_ERR_NOMEM;
        }
        if (s == SG_OK)
            s = sg_linear_init(&r->out, r->ps, "head.", D, r->d.C, true, SG_F32, &r->rng);
        break;
    }
    case MODEL_S2S: {
        if (!(cell = cell_named(r, "model.cell", err, n)))
            return EXIT_CONFIG;
        sg_seq2seq_opts so = sg_seq2seq_defaults();
        so.attention = (sg_attn_kind)sg_enum_parse(sg_attn_kind_names, cfg_str(c, "model.attention"));
        so.cell = cell, so.bidirectional = cfg_bool(c, "model.bidirectional");
        if (so.attention == SG_ATTN_DOT && so.bidirectional)
            return config_error(r, "model.attention", err, n,
                                "dot scores need keys of the query's size; a bidirectional encoder doubles them "
                                "(take general, concat or additive)");
        if (r->L != 1 && cfg_is_set(c, "model.layers"))
            return config_error(r, "model.layers", err, n, "seq2seq has one encoder and one decoder layer; set 1");
        cfg_set(&r->cfg, "model.layers=1", err, n), r->L = 1;    /* as the run folder's config will say */
        int E = (int)cfg_int(c, "model.embedding");
        s = sg_seq2seq_init(&r->s2s, r->ps, V, V + 2, E > 0 ? E : r->H, r->H, &so, SG_F32, &r->rng);
        break;
    }
    }
    if (s != SG_OK)                      /* the library said why, on the parameter collection */
        return cli_fail(err, n, sg_params_error(r->ps) == SG_ERR_NOMEM ? EXIT_FAIL : EXIT_CONFIG,
                        "cannot build the model: %s", sg_params_errmsg(r->ps));
    return EXIT_OK;
}

static int build_optim(run *r, char *err, size_t n)
{
    const sg_config *c = &r->cfg;
    sg_optim_opts oo = sg_optim_defaults((sg_optim_kind)sg_enum_parse(sg_optim_kind_names, cfg_str(c, "optim.kind")));
    oo.lr = cfg_real(c, "optim.lr"), oo.momentum = cfg_real(c, "optim.momentum");
    oo.weight_decay = cfg_real(c, "optim.weight_decay");
    if (!(r->opt = sg_optim_new(r->ps, &oo)))
        return cli_fail(err, n, sg_params_error(r->ps) == SG_ERR_NOMEM ? EXIT_FAIL : EXIT_CONFIG, "%s", sg_params_errmsg(r->ps));
    r->sched = (sg_schedule){.kind = (sg_sched_kind)sg_enum_parse(sg_sched_kind_names, cfg_str(c, "schedule.kind")),
                             .lr = oo.lr, .warmup = cfg_int(c, "schedule.warmup"),
                             .step_size = cfg_int(c, "schedule.step_size"), .gamma = cfg_real(c, "schedule.gamma"),
                             .total = run_total_steps(r), .min_lr = cfg_real(c, "schedule.min_lr")};
    return EXIT_OK;
}

/* enough data for the batches this run takes */
static int check_sizes(run *r, data_use use, char *err, size_t n)
{
    bool whole = use == USE_ALL_VALID;
    if (use == USE_VOCAB)
        return EXIT_OK;
    const dataset *d = &r->d;
    const char *name = d->path[0] ? d->path : cfg_str(&r->cfg, "data.kind");
    long shards = cfg_int(&r->cfg, "train.shards");
    if (r->B % shards != 0) {
        char what[120];
        snprintf(what, sizeof what, "%ld shards do not split data.batch_size %d into equal parts", shards, r->B);
        return config_error(r, "train.shards", err, n, what);
    }
    if (shards % dist_size() != 0) {
        char what[120];
        snprintf(what, sizeof what, "%ld shards do not split over %d ranks (take a multiple of %d)", shards,
                 dist_size(), dist_size());
        return config_error(r, "train.shards", err, n, what);
    }
    if (d->task == TASK_STREAM) {
        if ((!whole && d->len[0] / r->B < r->T + 2) || d->len[1] < (long)r->B * (r->T + 1))
            return cli_fail(err, n, EXIT_DATA, "%s: %ld characters are too few for batch %d x %d", name, d->len[0] + d->len[1],
                            r->B, r->T);
    } else if (!whole && d->len[0] < r->B) {
        return cli_fail(err, n, EXIT_DATA, "%s: %ld training examples are fewer than a batch (%d)", name, d->len[0], r->B);
    }
    return EXIT_OK;
}

/* Bytes a run will hold: parameters with their gradients and optimizer
 * state, and one step's tape (every op's output and gradient; the factors
 * count the tensors a cell, a layer and the loss record per token, a
 * generous estimate). OpenBLAS crashes when its own malloc fails, so a run
 * that cannot fit is refused before the first step, with the figures. */
static double run_bytes(const run *r, double *model, double *step)
{
    double P = (double)sg_params_numel(r->ps), H = r->H, L = r->L, V = r->d.V + 2;
    double tokens = (double)r->B * (r->d.task == TASK_STREAM || r->d.task == TASK_ITEMS ? r->T : 2.0 * r->max_out);
    bool attention = r->model == MODEL_TLM || r->model == MODEL_TS2S;
    double heads = (double)cfg_int(&r->cfg, "model.heads"), span = r->T > r->max_out ? r->T : r->max_out;
    /* per token and layer: an LSTM's gates and states (measured: H = 512, 2 layers, B = 32, T = 64 held
     * 766 MB against 778 estimated); a transformer's projections and its heads' rows of scores */
    double per_token = L * (attention ? 48 * H + 8 * heads * span : 40 * H) + 6 * V;
    *model = P * (4 + 4 + 16);                   /* f32 value and gradient, two f64 optimizer slots */
    *step = tokens * per_token * 4 * 2;          /* f32 outputs and their gradients */
    return *model + *step;
}

/* What this process may still allocate: the address-space limit less what
 * it maps now, and the memory the system has available; the smaller. */
static double available_bytes(void)
{
    double avail = INFINITY;
    struct rlimit lim;
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld", &pages) == 1 && getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
        avail = (double)lim.rlim_cur - (double)pages * (double)page;
    if (f)
        fclose(f);
    char line[128];
    long kb;
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
            avail = fmin(avail, (double)kb * 1024);
    if (f)
        fclose(f);
    return avail;
}

/* the batch buffers, sized for the longest batch of any task */
static int alloc_buffers(run *r, char *err, size_t n)
{
    r->max_out = data_max_len(&r->d) + 2;
    size_t per = (size_t)r->B * (size_t)(r->T > r->max_out ? r->T : r->max_out);
    if (!r->shared_batch)
        r->bx = malloc(per * sizeof *r->bx), r->by = malloc(per * sizeof *r->by);
    r->bsrc = malloc(per * sizeof *r->bsrc), r->blen = malloc((size_t)r->B * sizeof *r->blen);
    size_t fx = r->d.kind == DATA_FASHION ? (size_t)r->B * 784 : per * 2;     /* images, or the adding problem's pairs */
    r->fx = malloc((fx > per * 2 ? fx : per * 2) * sizeof *r->fx), r->fy = malloc((size_t)r->B * sizeof *r->fy);
    if (!r->bx || !r->by || !r->bsrc || !r->blen || !r->fx || !r->fy)
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    return EXIT_OK;
}

int run_replica(run *rep, const run *r, char *err, size_t n)
{
    memset(rep, 0, sizeof *rep);
    rep->cfg = r->cfg, rep->d = r->d, rep->own_cell = r->own_cell, rep->replica = true;
    sg_rng_seed(&rep->rng, 1);                /* for build_model's draws, which r's values then replace */
    rep->B = r->B, rep->T = r->T, rep->H = r->H, rep->L = r->L;
    rep->perm = r->perm, rep->perm_epoch = r->perm_epoch, rep->n_carry = r->n_carry;
    for (int j = 0; j < r->n_carry; j++)
        rep->carry[j] = r->carry[j];
    if (r->d.task == TASK_STREAM)             /* the streams' batch is filled once, for every shard */
        rep->shared_batch = true, rep->bx = r->bx, rep->by = r->by;
    int rc = choose_model(rep, err, n);
    if (rc == EXIT_OK && !(rep->ps = sg_params_new()))
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory for the parameters");
    if (rc == EXIT_OK)
        rc = build_model(rep, err, n);
    if (rc == EXIT_OK)
        rc = alloc_buffers(rep, err, n);
    if (rc == EXIT_OK)
        run_replica_sync(rep, r);
    return rc;
}

void run_replica_sync(run *rep, const run *r)
{
    for (int i = 0; i < sg_params_count(r->ps); i++) {
        sg_tensor *to = sg_params_get(rep->ps, i), *from = sg_params_get(r->ps, i);
        memcpy(sg_tensor_data(to), sg_tensor_data(from), sg_tensor_size(from) * sizeof(float));
    }
    rep->step = r->step, rep->pos = r->pos, rep->perm_epoch = r->perm_epoch;
}

int run_build(run *r, const char *vocab_hex, const char *path, data_use use, char *err, size_t n)
{
    const sg_config *c = &r->cfg;
    r->B = (int)cfg_int(c, "data.batch_size"), r->T = (int)cfg_int(c, "data.seq_len");
    r->H = (int)cfg_int(c, "model.hidden"), r->L = (int)cfg_int(c, "model.layers");
    int rc = data_load_classes(&r->d, c, vocab_hex, r->classes, r->words, path, use, err, n);
    if (rc == EXIT_OK)
        rc = check_sizes(r, use, err, n);
    if (rc == EXIT_OK)
        rc = choose_model(r, err, n);
    if (rc != EXIT_OK)
        return rc;
    sg_rng_seed(&r->rng, (uint64_t)cfg_int(c, "train.seed"));
    if (!(r->ps = sg_params_new()))
        return cli_fail(err, n, EXIT_FAIL, "out of memory for the parameters");
    if ((rc = build_model(r, err, n)) != EXIT_OK || (rc = build_optim(r, err, n)) != EXIT_OK)
        return rc;
    if ((rc = alloc_buffers(r, err, n)) != EXIT_OK)
        return rc;
    r->perm = malloc(((size_t)r->d.len[0] + 1) * sizeof *r->perm), r->perm_epoch = -1;
    r->n_carry = r->d.task == TASK_STREAM && r->model == MODEL_RNN_LM ? sg_cell_n_states(r->rnn.def) : 0;
    for (int j = 0; j < r->n_carry; j++)
        if (!(r->carry[j] = sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H})))
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
    if (!r->perm)
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    double model, step, need = run_bytes(r, &model, &step), avail = available_bytes();
    if (need > avail)
        return cli_fail(err, n, EXIT_FAIL, "the run needs about %.0f MiB (parameters and optimizer %.0f, one step %.0f), but about "
                                "%.0f MiB are available: make model.hidden, data.batch_size or data.seq_len smaller",
                        need / 1048576, model / 1048576, step / 1048576, avail / 1048576);
    return EXIT_OK;
}

/* ---- checkpoints: params, optimizer moments, carried state; the rest as metadata ---- */

/* "state.h", "state.c", ...: the carried states by the cell's names */
static void carry_name(const run *r, int j, char *out, size_t n) { snprintf(out, n, "state.%s", r->rnn.def->states[j]); }

int run_write_config(const run *r, bool overwrite, char *err, size_t n)
{
    const char *dir = cfg_str(&r->cfg, "train.run_dir");
    char path[600], text[32768];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    if (!overwrite && access(path, F_OK) == 0)
        return cli_fail(err, n, EXIT_USAGE, "train.run_dir %s already holds a run: seqgrad resume %s continues it, "
                                "--overwrite starts it again", dir, dir);
    if (cli_make_dirs(dir) != 0)
        return cli_fail(err, n, EXIT_FAIL, "%s: cannot create: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    size_t len = cfg_dump(&r->cfg, text, sizeof text);
    if (len >= sizeof text - 1)
        return cli_fail(err, n, EXIT_FAIL, "%s: the config is longer than %zu bytes", path, sizeof text);
    FILE *f = fopen(path, "w");
    bool ok = f && fwrite(text, 1, len, f) == len;
    if (!f || fclose(f) != 0 || !ok)
        return cli_fail(err, n, EXIT_FAIL, "%s: cannot write: %s", path, strerror(errno));
    return EXIT_OK;
}

int run_save(run *r, char *err, size_t n)
{
    int np = sg_params_count(r->ps), k = 0;
    sg_ckpt_entry *e = calloc((size_t)(3 * np + SG_CELL_MAX_STATES), sizeof *e);
    char (*names)[160] = calloc((size_t)(3 * np + SG_CELL_MAX_STATES), sizeof *names);   /* model.X, optim.m.X, optim.v.X */
    if (!e || !names) {
        free(e);
        free(names);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
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
    for (int j = 0; j < r->n_carry; j++) {
        carry_name(r, j, names[3 * np + j], sizeof names[0]);
        e[k++] = (sg_ckpt_entry){.name = names[3 * np + j], .dtype = SG_F32, .ndim = 3, .shape = {r->L, r->B, r->H},
                                 .data = sg_tensor_data(r->carry[j])};
    }
    char step[32], pos[32], osteps[32], rng[80], vocab[513], config[32768], max_len[32];
    snprintf(max_len, sizeof max_len, "%d", r->max_out - 2);
    snprintf(step, sizeof step, "%ld", r->step);
    snprintf(pos, sizeof pos, "%ld", r->pos);
    snprintf(osteps, sizeof osteps, "%ld", sg_optim_steps(r->opt));
    snprintf(rng, sizeof rng, "%016llx%016llx%016llx%016llx", (unsigned long long)r->rng.s[0],
             (unsigned long long)r->rng.s[1], (unsigned long long)r->rng.s[2], (unsigned long long)r->rng.s[3]);
    int bytes = r->d.n_words ? 0 : r->d.V;      /* a word tagger's vocabulary is its words, kept apart */
    for (int i = 0; i < bytes && i < 256; i++)
        sprintf(vocab + 2 * i, "%02x", r->d.vocab[i]);
    vocab[2 * (bytes < 256 ? bytes : 256)] = '\0';
    cfg_dump(&r->cfg, config, sizeof config);
    char classes[DATA_MAX_CLASSES * 48];
    data_classes_str(&r->d, classes, sizeof classes);
    size_t wlen = r->d.n_words ? data_words_str(&r->d, NULL, 0) : 1;
    char *words = malloc(wlen);
    if (!words) {
        free(e);
        free(names);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    data_words_str(&r->d, words, wlen);
    const char *meta[] = {"format", "seqgrad-run-1", "data", cfg_str(&r->cfg, "data.kind"), "step", step,
                          "data_pos", pos, "optim_steps", osteps, "rng", rng, "vocab", vocab, "max_len", max_len,
                          "config", config, "classes", classes, "words", words};
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", cfg_str(&r->cfg, "train.run_dir"));
    sg_status s = sg_ckpt_write(path, e, k, meta, r->d.n_words ? 11 : r->d.C ? 10 : 9, err, n);
    free(words);
    free(e), free(names);
    return s == SG_OK ? EXIT_OK : EXIT_FAIL;
}

/* A whole number of the checkpoint's metadata within [lo, hi]. */
static bool meta_long(const sg_ckpt *ck, const char *file, const char *key, long lo, long hi, long *v, char *err,
                      size_t n)
{
    const char *text = sg_ckpt_meta(ck, key);
    char *end;
    errno = 0;
    long x = text ? strtol(text, &end, 10) : 0;
    if (!text || !(*text >= '0' && *text <= '9') || *end || errno || x < lo || x > hi) {   /* digits only */
        snprintf(err, n, "%s: metadata %s is \"%s\", expected a whole number from %ld to %ld", file, key,
                 text ? text : "(missing)", lo, hi);
        return false;
    }
    *v = x;
    return true;
}

static int restore(run *r, const sg_ckpt *ck, const char *file, char *err, size_t n)
{
    if (sg_ckpt_load_params(ck, r->ps, "model.") != SG_OK)
        return cli_fail(err, n, EXIT_DATA, "%s: %s", file, sg_params_errmsg(r->ps));
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
                return cli_fail(err, n, EXIT_DATA, "checkpoint lacks a valid %s", name);
            memcpy(st, e->data, sg_tensor_size(sg_params_get(r->ps, i)) * sizeof(double));
        }
    for (int j = 0; j < r->n_carry; j++) {
        char name[80];
        carry_name(r, j, name, sizeof name);
        const sg_ckpt_entry *e = sg_ckpt_find(ck, name);
        if (!e || e->dtype != SG_F32 || e->ndim != 3 || e->shape[0] != r->L || e->shape[1] != r->B || e->shape[2] != r->H)
            return cli_fail(err, n, EXIT_DATA, "checkpoint lacks a valid %s", name);
        memcpy(sg_tensor_data(r->carry[j]), e->data, sg_tensor_size(r->carry[j]) * sizeof(float));
    }
    const char *rng = sg_ckpt_meta(ck, "rng");
    bool hex = rng && strlen(rng) == 64;
    for (int i = 0; hex && i < 64; i++)
        hex = isxdigit((unsigned char)rng[i]);
    if (!hex)
        return cli_fail(err, n, EXIT_DATA, "%s: metadata rng is not 64 hex digits", file);
    long step, pos, os;
    if (!meta_long(ck, file, "step", 0, 1000000000000000L, &step, err, n) ||
        !meta_long(ck, file, "data_pos", 0, 1000000000000000L, &pos, err, n) ||
        !meta_long(ck, file, "optim_steps", 0, 1000000000000000L, &os, err, n))
        return EXIT_DATA;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, rng + 16 * i, 16), part[16] = '\0';
        r->rng.s[i] = strtoull(part, NULL, 16);
    }
    r->step = step, r->pos = pos;
    sg_optim_set_steps(r->opt, os);
    return EXIT_OK;
}

/* The vocabulary of the metadata: pairs of lowercase or uppercase hex
 * digits, each byte once, at most 256. */
static bool vocab_ok(const char *hex, const char *file, char *err, size_t n)
{
    size_t len = strlen(hex);
    bool seen[256] = {false};
    if (len % 2 || len > 512)                  /* empty: the adding problem has no vocabulary */
        return cli_fail(err, n, false, "%s: metadata vocab has %zu hex digits (an even number, at most 512)", file, len);
    for (size_t i = 0; i < len; i += 2) {
        if (!isxdigit((unsigned char)hex[i]) || !isxdigit((unsigned char)hex[i + 1]))
            return cli_fail(err, n, false, "%s: metadata vocab: \"%.2s\" at %zu is not two hex digits", file, hex + i, i);
        unsigned c = (unsigned)strtoul((char[]){hex[i], hex[i + 1], 0}, NULL, 16);
        if (seen[c])
            return cli_fail(err, n, false, "%s: metadata vocab lists byte 0x%02x twice", file, c);
        seen[c] = true;
    }
    return true;
}

int run_open_checkpoint(run *r, const char *file, const char *path, data_use use, char *err, size_t n)
{
    sg_ckpt *ck = sg_ckpt_open(file);
    int rc = EXIT_OK;
    if (sg_ckpt_error(ck)) {
        snprintf(err, n, "%s", sg_ckpt_errmsg(ck));
        sg_ckpt_close(ck);
        return EXIT_DATA;
    }
    /* the run's config travels in the checkpoint: no run folder is needed */
    const char *config = sg_ckpt_meta(ck, "config"), *vocab = sg_ckpt_meta(ck, "vocab");
    char name[700];
    snprintf(name, sizeof name, "%s[config]", file);
    if (!config || !vocab)
        rc = cli_fail(err, n, EXIT_DATA, "%s: no %s in the metadata (not a checkpoint of a seqgrad run)", file,
                                 !config ? "config" : "vocabulary");
    else if (cfg_load_text(&r->cfg, name, config, strlen(config), err, n) != 0 || cfg_check(&r->cfg, err, n) != 0)
        rc = EXIT_DATA;
    else if (!vocab_ok(vocab, file, err, n))
        rc = EXIT_DATA;
    long max_len = 0;
    if (rc == EXIT_OK && sg_ckpt_meta(ck, "max_len") && !meta_long(ck, file, "max_len", 0, 4096, &max_len, err, n))
        rc = EXIT_DATA;
    r->classes = sg_ckpt_meta(ck, "classes");      /* a classifier's, in the order of its outputs */
    r->words = sg_ckpt_meta(ck, "words");          /* a word tagger's vocabulary */
    if (rc == EXIT_OK && (rc = run_build(r, vocab, path, use, err, n)) != EXIT_OK &&
        (!strncmp(err, "metadata classes", 16) || !strncmp(err, "metadata words", 14))) {
        char why[600];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, n, "%s: %s", file, why);
    }
    r->classes = r->words = NULL;                    /* they live in the checkpoint, closed below */
    if (rc == EXIT_OK)
        rc = restore(r, ck, file, err, n);
    if (rc == EXIT_OK && max_len + 2 > r->max_out)    /* the longest sequence in training */
        r->max_out = (int)max_len + 2;
    sg_ckpt_close(ck);
    return rc;
}

int run_open(run *r, const char *run_dir, const char *path, data_use use, char *err, size_t n)
{
    char file[600];
    snprintf(file, sizeof file, "%s/checkpoint.safetensors", run_dir);
    return run_open_checkpoint(r, file, path, use, err, n);
}

