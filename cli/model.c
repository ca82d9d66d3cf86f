/*
 * model.c - the run behind the tool's commands (see run.h): the model the
 * config and the data call for, its losses, its evaluation, greedy
 * decoding, and the checkpoint that holds everything the next step
 * depends on (parameters, optimizer state, carried state, rng, step).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "plot.h"
#include "run.h"

void run_free(run *r)
{
    sg_optim_free(r->opt);
    sg_params_free(r->ps);
    for (int j = 0; j < SG_CELL_MAX_STATES; j++)
        sg_tensor_free(r->carry[j]), r->carry[j] = NULL;
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
    r->max_out = data_max_len(&r->d) + 2;
    size_t per = (size_t)r->B * (size_t)(r->T > r->max_out ? r->T : r->max_out);
    r->bx = malloc(per * sizeof *r->bx), r->by = malloc(per * sizeof *r->by);
    r->bsrc = malloc(per * sizeof *r->bsrc), r->blen = malloc((size_t)r->B * sizeof *r->blen);
    size_t fx = r->d.kind == DATA_FASHION ? (size_t)r->B * 784 : per * 2;     /* images, or the adding problem's pairs */
    r->fx = malloc((fx > per * 2 ? fx : per * 2) * sizeof *r->fx), r->fy = malloc((size_t)r->B * sizeof *r->fy);
    r->perm = malloc(((size_t)r->d.len[0] + 1) * sizeof *r->perm), r->perm_epoch = -1;
    r->n_carry = r->d.task == TASK_STREAM && r->model == MODEL_RNN_LM ? sg_cell_n_states(r->rnn.def) : 0;
    for (int j = 0; j < r->n_carry; j++)
        if (!(r->carry[j] = sg_tensor_new(SG_F32, 3, (int[]){r->L, r->B, r->H})))
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
    if (!r->bx || !r->by || !r->bsrc || !r->blen || !r->fx || !r->fy || !r->perm)
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    double model, step, need = run_bytes(r, &model, &step), avail = available_bytes();
    if (need > avail)
        return cli_fail(err, n, EXIT_FAIL, "the run needs about %.0f MiB (parameters and optimizer %.0f, one step %.0f), but about "
                                "%.0f MiB are available: make model.hidden, data.batch_size or data.seq_len smaller",
                        need / 1048576, model / 1048576, step / 1048576, avail / 1048576);
    return EXIT_OK;
}

/* ---- losses -------------------------------------------------------------------- */

sg_tensor *run_lm_logits(run *r, sg_tape *t, const int *x, int B, int T, sg_tensor **state, sg_tensor **next,
                         sg_rng *rng)
{
    if (r->model == MODEL_TLM)
        return sg_transformer_lm_forward(t, &r->lm, x, B, T, rng);
    sg_tensor *in = sg_embedding_forward(t, &r->emb, x, B, T);
    if (r->cond_in) {        /* the condition joins every step's input: (B,T,H) beside the embedding */
        sg_tensor *every = sg_add(t, sg_zeros(t, sg_tensor_dtype(in), 3, (int[]){B, T, r->H}),
                                  sg_reshape(t, r->cond_in, 3, (int[]){B, 1, r->H}));
        in = sg_concat(t, (sg_tensor *[]){in, every}, 2, 2);
    }
    sg_tensor *h = sg_rnn_forward(t, &r->rnn, in, state, NULL, rng, next);
    return sg_linear_forward(t, &r->out, h);
}

static long count_targets(const int *y, long n)
{
    long k = 0;
    for (long i = 0; i < n; i++)
        k += y[i] != -100;
    return k;
}

/* floats as a tape leaf of the model's dtype (f64 in gradcheck) */
static sg_tensor *leaf(run *r, sg_tape *t, int ndim, const int *shape, const float *v, size_t n)
{
    if (sg_tensor_dtype(r->out.weight) == SG_F32)
        return sg_tensor_from(t, SG_F32, ndim, shape, v);
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; d && i < n; i++)
        d[i] = v[i];
    sg_tensor *x = d ? sg_tensor_from_f64(t, SG_F64, ndim, shape, d) : NULL;
    free(d);
    return x;
}

/* the adding problem's prediction (B,1) for inputs x (B,T,2) */
static sg_tensor *regress(run *r, sg_tape *t, const float *x, int B, sg_rng *rng)
{
    int T = r->d.T;
    sg_tensor *in = leaf(r, t, 3, (int[]){B, T, 2}, x, (size_t)B * T * 2);
    sg_tensor *h = sg_rnn_forward(t, &r->rnn, in, NULL, NULL, rng, NULL);
    return sg_linear_forward(t, &r->out, sg_select(t, h, 1, T - 1));
}

/* ---- classification -------------------------------------------------------------- */

static int argmax_row(const sg_tensor *z, size_t row, int V);

sg_tensor *run_classify(run *r, sg_tape *t, const int *x, const float *xf, const int *len, int B, int T, sg_rng *rng,
                        sg_tensor **weights)
{
    const sg_rnn *rnn = &r->rnn;
    int dirs = rnn->dirs, D = dirs * r->H, L = rnn->layers;
    sg_tensor *in = xf ? leaf(r, t, 3, (int[]){B, T, r->d.F}, xf, (size_t)B * T * r->d.F)
                       : sg_embedding_forward(t, &r->emb, x, B, T);
    sg_tensor *fin[SG_CELL_MAX_STATES] = {NULL};
    sg_tensor *out = sg_rnn_forward(t, rnn, in, NULL, len, rng, fin);      /* (B,T,D), zeros past each length */
    if (!out)
        return NULL;
    sg_dtype dt = sg_tensor_dtype(out);
    sg_tensor *pooled = NULL, *mask = NULL;
    if (r->pool != POOL_LAST) {                /* (B,T): 1 at each sequence's real steps */
        mask = sg_zeros(t, dt, 2, (int[]){B, T});
        for (int b = 0; mask && b < B; b++)
            for (int k = 0; k < (len ? len[b] : T); k++)
                sg_tensor_set(mask, (size_t)b * T + (size_t)k, 1.0);
    }
    switch (r->pool) {
    case POOL_LAST: {      /* h of each direction at its own last step: the forward one at length-1, the reverse at 0 */
        sg_tensor *h[2] = {sg_select(t, fin[0], 0, (L - 1) * dirs), dirs == 2 ? sg_select(t, fin[0], 0, (L - 1) * dirs + 1)
                                                                              : NULL};
        pooled = dirs == 2 ? sg_concat(t, h, 2, 1) : h[0];
        break;
    }
    case POOL_MEAN: {      /* sum over the real steps / length */
        sg_tensor *inv = sg_zeros(t, dt, 2, (int[]){B, 1});
        for (int b = 0; inv && b < B; b++)
            sg_tensor_set(inv, (size_t)b, 1.0 / (len ? len[b] : T));
        pooled = sg_mul(t, sg_sum(t, out, 1, false), inv);
        break;
    }
    case POOL_MAX: {       /* padded steps can never be the max */
        sg_tensor *m3 = sg_reshape(t, mask, 3, (int[]){B, T, 1});
        pooled = sg_max(t, sg_masked_fill(t, out, sg_one_minus(t, m3), -1e30), 1, false);
        break;
    }
    case POOL_ATTENTION: { /* a_t = softmax_t(q . o_t) over the real steps; pooled = sum_t a_t o_t */
        sg_tensor *q = sg_reshape(t, r->query, 2, (int[]){D, 1});
        sg_tensor *scores = sg_reshape(t, sg_matmul(t, out, q), 2, (int[]){B, T});
        sg_tensor *a = sg_softmax(t, scores, 1, mask);
        if (weights)
            *weights = a;
        pooled = sg_reshape(t, sg_bmm(t, sg_reshape(t, a, 3, (int[]){B, 1, T}), out, 0), 2, (int[]){B, D});
        break;
    }
    }
    return sg_linear_forward(t, &r->out, pooled);
}

sg_status run_cond_states(run *r, sg_tape *t, int split, const int *cond, int B, sg_tensor **h0)
{
    int L = r->L, H = r->H, K = r->cond.in;
    sg_tensor *c = sg_zeros(t, sg_tensor_dtype(r->cond.weight), 2, (int[]){B, K});   /* f64 in gradcheck */
    for (int b = 0; c && b < B; b++)
        if (r->d.kind == DATA_CAPTION)
            for (int k = 0; k < K; k++)
                sg_tensor_set(c, (size_t)b * K + (size_t)k, r->d.ax[split][(size_t)cond[b] * 784 + (size_t)k]);
        else
            sg_tensor_set(c, (size_t)b * K + (size_t)(cond[b] >= 0 && cond[b] < K ? cond[b] : 0), 1.0);
    sg_tensor *h = sg_tanh(t, sg_linear_forward(t, &r->cond, c));          /* (B, L*H), or (B, H) fed */
    if (r->cond_input)
        r->cond_in = h;
    else
        h0[0] = sg_transpose(t, sg_reshape(t, h, 3, (int[]){B, L, H}), 0, 1);    /* (L, B, H) */
    for (int k = r->cond_input ? 0 : 1; k < sg_cell_n_states(r->rnn.def); k++)
        h0[k] = sg_zeros(t, sg_tensor_dtype(r->cond.weight), 3, (int[]){L, B, H});
    return h0[0] ? SG_OK : sg_tape_error(t);
}

sg_tensor *run_tag(run *r, sg_tape *t, const int *x, const int *len, int B, int T, sg_rng *rng)
{
    sg_tensor *out = sg_rnn_forward(t, &r->rnn, sg_embedding_forward(t, &r->emb, x, B, T), NULL, len, rng, NULL);
    return sg_linear_forward(t, &r->out, out);
}

/* the batch of examples idx of a classifier: logits (B,C), classes in r->by */
static sg_tensor *classify_batch(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng)
{
    if (r->d.kind == DATA_FASHION) {
        data_fashion_batch(&r->d, split, idx, B, r->fx, r->by);      /* r->fx holds B images */
        return run_classify(r, t, NULL, r->fx, NULL, B, r->d.T, rng, NULL);
    }
    int T = data_class_batch(&r->d, split, idx, B, r->bx, r->blen, r->by);
    return run_classify(r, t, r->bx, NULL, r->blen, B, T, rng, NULL);
}

int run_confusion(run *r, sg_tape *t, long *confusion)
{
    int C = r->d.C, *idx = malloc((size_t)r->B * sizeof *idx);
    bool was = sg_tape_set_grad(t, false);
    memset(confusion, 0, (size_t)C * C * sizeof *confusion);
    int rc = idx ? 0 : -1;
    for (long i = 0; rc == 0 && i < r->d.len[1]; i += r->B) {
        int B = (int)(r->d.len[1] - i < r->B ? r->d.len[1] - i : r->B);
        for (int b = 0; b < B; b++)
            idx[b] = (int)(i + b);
        sg_tape_reset(t);
        sg_tensor *z = classify_batch(r, t, 1, idx, B, NULL);
        if (!z) {
            rc = -1;
            break;
        }
        for (int b = 0; b < B; b++)
            confusion[(size_t)r->by[b] * C + (size_t)argmax_row(z, (size_t)b, C)]++;
    }
    sg_tape_set_grad(t, was);
    free(idx);
    return rc;
}

/* loss of examples idx (item LM, seq2seq or adding); *tokens: targets */
static sg_tensor *examples_loss(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng, double sampling,
                                long *tokens)
{
    const dataset *d = &r->d;
    int S, T;
    switch (r->d.task) {
    case TASK_ITEMS: {
        T = data_lm_batch(d, split, idx, B, r->T, r->bx, r->by);
        *tokens = count_targets(r->by, (long)B * T);
        sg_tensor *h0[SG_CELL_MAX_STATES] = {NULL};
        if (r->conditioned) {                  /* each item starts from its condition: a language, an image */
            for (int b = 0; b < B; b++)
                r->blen[b] = d->ex[split][idx[b]].tgt[0];
            if (run_cond_states(r, t, split, r->blen, B, h0) != SG_OK)
                return NULL;
        }
        sg_tensor *loss = sg_cross_entropy(t, run_lm_logits(r, t, r->bx, B, T, r->conditioned ? h0 : NULL, NULL, rng),
                                           r->by, NULL);
        r->cond_in = NULL;                     /* a tape tensor: gone at the tape's reset */
        return loss;
    }
    case TASK_S2S:
        T = data_s2s_batch(d, split, idx, B, r->bsrc, r->blen, &S, r->bx, r->by);
        *tokens = count_targets(r->by, (long)B * T);
        if (r->model == MODEL_TS2S)
            return sg_transformer_s2s_loss(t, &r->ts2s, r->bsrc, r->blen, B, S, r->bx, r->by, T, rng);
        return sg_seq2seq_loss(t, &r->s2s, r->bsrc, r->blen, B, S, r->bx, r->by, T, sampling, rng);
    case TASK_REGRESS:
        data_add_batch(d, split, idx, B, r->fx, r->fy);
        *tokens = (long)B * d->T;
        return sg_mse_loss(t, regress(r, t, r->fx, B, rng), leaf(r, t, 2, (int[]){B, 1}, r->fy, (size_t)B), SG_MEAN);
    case TASK_TAG:
        T = data_tag_batch(d, split, idx, B, r->bx, r->blen, r->by);
        *tokens = count_targets(r->by, (long)B * T);
        return sg_cross_entropy(t, run_tag(r, t, r->bx, r->blen, B, T, rng), r->by, NULL);
    case TASK_CLASSIFY: {      /* tokens: the steps read */
        sg_tensor *z = classify_batch(r, t, split, idx, B, rng);
        *tokens = 0;
        for (int b = 0; b < B; b++)
            *tokens += d->kind == DATA_FASHION ? d->T : d->ex[split][idx[b]].src_len;
        return sg_cross_entropy(t, z, r->by, NULL);
    }
    case TASK_STREAM:
        break;
    }
    return NULL;
}

sg_tensor *run_examples_loss(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng)
{
    long tokens;
    return examples_loss(r, t, split, idx, B, rng, 0, &tokens);
}

sg_tensor *run_batch_loss(run *r, sg_tape *t, long *tokens, sg_tensor **next)
{
    int B = r->B, T = r->T;
    if (r->d.task != TASK_STREAM) {
        long per = r->d.len[0] / B, epoch = r->step / per, k = r->step % per;
        if (epoch != r->perm_epoch)          /* each epoch its own order, drawn from the seed */
            data_shuffle(r->perm, r->d.len[0], (uint64_t)cfg_int(&r->cfg, "data.seed"), epoch), r->perm_epoch = epoch;
        return examples_loss(r, t, 0, r->perm + k * B, B, &r->rng, cfg_real(&r->cfg, "train.sampling"), tokens);
    }
    long per = r->d.len[0] / B;
    if (r->pos + T + 1 > per) {                /* an epoch ends: streams start again, state cleared */
        r->pos = 0;
        for (int j = 0; j < r->n_carry; j++)
            memset(sg_tensor_data(r->carry[j]), 0, sg_tensor_size(r->carry[j]) * sizeof(float));
    }
    const int *ids = r->d.ids[0];
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++) {
            r->bx[b * T + k] = ids[b * per + r->pos + k];
            r->by[b * T + k] = ids[b * per + r->pos + k + 1];
        }
    r->pos += T;
    *tokens = (long)B * T;
    return sg_cross_entropy(t, run_lm_logits(r, t, r->bx, B, T, r->carry, next, &r->rng), r->by, NULL);
}

/* ---- evaluation ------------------------------------------------------------------ */

/* the text's validation streams, state carried from chunk to chunk */
static eval_result eval_stream(run *r, sg_tape *t)
{
    int B = r->B, T = r->T;
    long per = r->d.len[1] / B, steps = (per - 1) / T;
    const int *ids = r->d.ids[1];
    sg_tensor *st[SG_CELL_MAX_STATES] = {NULL};
    for (int j = 0; j < r->n_carry; j++)
        st[j] = sg_tensor_new(SG_F32, 3, (int[]){r->L, B, r->H});
    double total = 0;
    for (long s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++) {
                r->bx[b * T + k] = ids[b * per + s * T + k];
                r->by[b * T + k] = ids[b * per + s * T + k + 1];
            }
        sg_tape_reset(t);
        sg_tensor *next[SG_CELL_MAX_STATES] = {NULL};
        total += sg_tensor_get(sg_cross_entropy(t, run_lm_logits(r, t, r->bx, B, T, r->n_carry ? st : NULL, next, NULL),
                                                r->by, NULL), 0);
        for (int j = 0; j < r->n_carry; j++)
            if (next[j])
                sg_tensor_copy(st[j], next[j]);
    }
    for (int j = 0; j < r->n_carry; j++)
        sg_tensor_free(st[j]);
    return (eval_result){.loss = steps ? total / (double)steps : NAN, .accuracy = NAN, .f1 = NAN, .examples = 0,
                         .tokens = steps * B * T};
}

/* ---- spans of tag sequences ------------------------------------------------------
 * Segmentation (tags B and I): a word runs from a B (or the start) to the
 * next. BIO tags (O, B-X, I-X): an entity of type X runs from B-X over the
 * I-X that follow. Spans are (start, end, type); F1 counts exact matches. */

typedef enum { SPANS_NONE, SPANS_WORDS, SPANS_BIO } span_scheme;

static span_scheme scheme_of(const dataset *d)
{
    if (d->kind == DATA_SEGMENT)
        return SPANS_WORDS;
    for (int k = 0; k < d->C; k++)
        if (strcmp(d->classes[k], "O") && strncmp(d->classes[k], "B-", 2) && strncmp(d->classes[k], "I-", 2))
            return SPANS_NONE;
    return SPANS_BIO;
}

/* the spans of tags[0..L) into out[.][3]; their count */
static int spans_of(const dataset *d, span_scheme sc, const int *tags, int L, int (*out)[3])
{
    int n = 0;
    for (int j = 0; j < L;) {
        const char *tag = d->classes[tags[j]];
        if (sc == SPANS_WORDS || tag[0] == 'B' || (tag[0] == 'I' && sc == SPANS_BIO)) {
            int e = j + 1;      /* BIO: an I-X without its B-X starts a span too (as conlleval) */
            while (e < L && (sc == SPANS_WORDS ? tags[e] != 0
                                               : d->classes[tags[e]][0] == 'I' && !strcmp(d->classes[tags[e]] + 2, tag + 2)))
                e++;
            out[n][0] = j, out[n][1] = e, out[n][2] = 0;
            if (sc == SPANS_BIO) {     /* the type: the name after B- or I- */
                char name[48];
                snprintf(name, sizeof name, "B-%s", tag + 2);
                out[n][2] = data_class_of(d, name);
            }
            n++, j = e;
        } else {
            j++;
        }
    }
    return n;
}

/* predicted spans, true spans and exact matches of one sequence */
static void span_counts(const run *r, const int *pred, const int *truth, int L, long *counts)
{
    span_scheme sc = scheme_of(&r->d);
    counts[0] = counts[1] = counts[2] = 0;
    if (sc == SPANS_NONE || L < 1)
        return;
    int (*p)[3] = malloc((size_t)L * sizeof *p), (*t)[3] = malloc((size_t)L * sizeof *t);
    if (p && t) {
        int np = spans_of(&r->d, sc, pred, L, p), nt = spans_of(&r->d, sc, truth, L, t);
        counts[0] = np, counts[1] = nt;
        for (int i = 0, j = 0; i < np && j < nt;) {      /* both in order of their starts */
            if (p[i][0] == t[j][0] && p[i][1] == t[j][1] && p[i][2] == t[j][2])
                counts[2]++, i++, j++;
            else if (p[i][0] < t[j][0] || (p[i][0] == t[j][0] && p[i][1] < t[j][1]))
                i++;
            else
                j++;
        }
    }
    free(p), free(t);
}

/* captions: how many of examples idx a greedy reading spells exactly,
 * from the image's condition to the item's end */
static long count_captions(run *r, sg_tape *t, const int *idx, int B)
{
    long right = 0;
    for (int b = 0; b < B; b++) {
        const example *e = &r->d.ex[1][idx[b]];
        sg_tensor *state[SG_CELL_MAX_STATES] = {NULL}, *next[SG_CELL_MAX_STATES] = {NULL};
        int cond = e->tgt[0], c = r->d.boundary;
        sg_tape_reset(t);
        if (run_cond_states(r, t, 1, &cond, 1, state) != SG_OK)
            return r->cond_in = NULL, -1;
        bool ok = true;
        for (int k = 0; ok && k <= e->src_len; k++) {
            sg_tensor *z = run_lm_logits(r, t, &c, 1, 1, state, next, NULL);
            if (!z)
                return r->cond_in = NULL, -1;
            c = argmax_row(z, 0, r->d.V);
            ok = c == (k < e->src_len ? e->src[k] : r->d.boundary);
            memcpy(state, next, sizeof state);
        }
        r->cond_in = NULL;
        right += ok;
    }
    return right;
}

/* exact-match accuracy of greedy outputs on examples idx */
static long count_exact(run *r, sg_tape *t, const int *idx, int B)
{
    int S, right = 0;
    int *out = malloc((size_t)B * (size_t)r->max_out * sizeof *out), *len = malloc((size_t)B * sizeof *len);
    data_s2s_batch(&r->d, 1, idx, B, r->bsrc, r->blen, &S, r->bx, r->by);
    if (!out || !len || run_greedy(r, t, r->bsrc, r->blen, B, S, out, len) != 0) {
        free(out), free(len);
        return -1;
    }
    for (int b = 0; b < B; b++) {
        const example *e = &r->d.ex[1][idx[b]];
        bool ok = len[b] == e->tgt_len;
        for (int k = 0; ok && k < e->tgt_len; k++)
            ok = out[b * r->max_out + k] == e->tgt[k];
        right += ok;
    }
    free(out), free(len);
    return right;
}

eval_result run_evaluate(run *r, sg_tape *t)
{
    if (r->d.task == TASK_STREAM)
        return eval_stream(r, t);
    bool was = sg_tape_set_grad(t, false);
    long N = r->d.len[1], tokens = 0, right = 0, spans_pred = 0, spans_true = 0, spans_right = 0;
    double total = 0;
    int *idx = malloc((size_t)r->B * sizeof *idx);
    bool failed = !idx;
    for (long i = 0; !failed && i < N; i += r->B) {
        int B = (int)(N - i < r->B ? N - i : r->B);
        for (int b = 0; b < B; b++)
            idx[b] = (int)(i + b);
        long k = B;
        double l = 0;
        sg_tape_reset(t);
        if (r->d.task == TASK_REGRESS) {      /* MSE and hits are means over examples */
            data_add_batch(&r->d, 1, idx, B, r->fx, r->fy);
            sg_tensor *pred = regress(r, t, r->fx, B, NULL);
            for (int b = 0; b < B; b++) {
                double e = sg_tensor_get(pred, (size_t)b) - r->fy[b];
                l += e * e / B, right += fabs(e) < 0.04;
            }
        } else if (r->d.task == TASK_TAG) {        /* token accuracy, and words as spans B I* */
            int T = data_tag_batch(&r->d, 1, idx, B, r->bx, r->blen, r->by);
            sg_tensor *z = run_tag(r, t, r->bx, r->blen, B, T, NULL);
            sg_tensor *loss = z ? sg_cross_entropy(t, z, r->by, NULL) : NULL;
            l = loss ? sg_tensor_get(loss, 0) : NAN;
            failed = failed || !loss;
            k = count_targets(r->by, (long)B * T);
            int *pred = malloc((size_t)T * sizeof *pred);
            for (int b = 0; loss && pred && b < B; b++) {
                for (int j = 0; j < r->blen[b]; j++) {
                    pred[j] = argmax_row(z, (size_t)(b * T + j), r->d.C);
                    right += pred[j] == r->by[b * T + j];
                }
                long sp[3];
                span_counts(r, pred, r->by + (size_t)b * T, r->blen[b], sp);
                spans_pred += sp[0], spans_true += sp[1], spans_right += sp[2];
            }
            free(pred);
        } else if (r->d.task == TASK_CLASSIFY) {   /* the loss, and the argmax against the class */
            sg_tensor *z = classify_batch(r, t, 1, idx, B, NULL);
            sg_tensor *loss = z ? sg_cross_entropy(t, z, r->by, NULL) : NULL;
            l = loss ? sg_tensor_get(loss, 0) : NAN;
            failed = failed || !loss;
            for (int b = 0; loss && b < B; b++)
                right += argmax_row(z, (size_t)b, r->d.C) == r->by[b];
        } else {
            sg_tensor *loss = examples_loss(r, t, 1, idx, B, NULL, 0, &k);
            l = loss ? sg_tensor_get(loss, 0) : NAN;
            long c = r->d.task == TASK_S2S ? count_exact(r, t, idx, B)
                   : r->d.kind == DATA_CAPTION ? count_captions(r, t, idx, B) : 0;
            failed = failed || c < 0 || !loss;
            right += c > 0 ? c : 0;
        }
        total += l * (double)k, tokens += k;
    }
    free(idx);
    sg_tape_set_grad(t, was);
    return (eval_result){.loss = failed ? NAN : total / (double)(tokens ? tokens : 1),
                         .accuracy = failed || (r->d.task == TASK_ITEMS && r->d.kind != DATA_CAPTION) ? NAN
                                   : (double)right / (double)(r->d.task == TASK_TAG ? (tokens ? tokens : 1) : N ? N : 1),
                         .examples = N, .tokens = tokens,
                         .f1 = r->d.task != TASK_TAG || failed || !spans_pred || !spans_true ? NAN
                             : 2.0 * spans_right / (double)(spans_pred + spans_true)};
}

/* ---- decoding ------------------------------------------------------------------- */

static int argmax_row(const sg_tensor *z, size_t row, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (sg_tensor_get(z, row * (size_t)V + (size_t)v) > sg_tensor_get(z, row * (size_t)V + (size_t)best))
            best = v;
    return best;
}

int run_greedy(run *r, sg_tape *t, const int *src, const int *src_len, int B, int S, int *out, int *out_len)
{
    int V = r->d.V + 2, SOS = r->d.V, EOS = r->d.V + 1, M = r->max_out;
    for (int b = 0; b < B; b++)
        out_len[b] = 0;
    bool was = sg_tape_set_grad(t, false);
    sg_tape_reset(t);
    /* prev (B, M+1): SOS, then the outputs; tin: the transformer's prefix,
     * sized here by the decoding length (which --max-len may have raised
     * after the model was built) */
    int *prev = malloc((size_t)B * (size_t)(M + 1) * sizeof *prev);
    int *tin = malloc((size_t)B * (size_t)(M + 1) * sizeof *tin);
    bool *done = calloc((size_t)B, sizeof *done);
    int rc = prev && tin && done ? 0 : -1;
    sg_seq2seq_enc enc;
    sg_tensor *memory = NULL, *mask = NULL;
    if (rc == 0 && r->model == MODEL_S2S)
        rc = sg_seq2seq_encode(t, &r->s2s, src, src_len, B, S, &enc) == SG_OK ? 0 : -1;
    else if (rc == 0)
        rc = (memory = sg_transformer_s2s_encode(t, &r->ts2s, src, src_len, B, S, &mask, NULL)) ? 0 : -1;
    for (int b = 0; rc == 0 && b < B; b++)
        prev[b * (M + 1)] = SOS;
    int left = B;
    for (int k = 0; rc == 0 && k < M && left > 0; k++) {
        sg_tensor *z;
        if (r->model == MODEL_S2S) {
            for (int b = 0; b < B; b++)
                tin[b] = prev[b * (M + 1) + k];
            z = sg_seq2seq_step(t, &r->s2s, &enc, tin, NULL);
        } else {                       /* the decoder re-reads the prefix; the last position's logits */
            for (int b = 0; b < B; b++)
                memcpy(tin + b * (k + 1), prev + b * (M + 1), (size_t)(k + 1) * sizeof *tin);
            z = sg_select(t, sg_transformer_s2s_decode(t, &r->ts2s, memory, mask, tin, B, k + 1, NULL), 1, k);
        }
        if (!z) {
            rc = -1;
            break;
        }
        for (int b = 0; b < B; b++) {
            int tok = argmax_row(z, (size_t)b, V);
            prev[b * (M + 1) + k + 1] = tok == EOS ? SOS : tok;
            if (done[b])
                continue;
            if (tok == EOS || tok == SOS)
                done[b] = true, left--;
            else
                out[b * M + out_len[b]++] = tok;
        }
    }
    free(prev), free(tin), free(done);
    sg_tape_set_grad(t, was);
    return rc;
}

double *run_attention(run *r, sg_tape *t, const int *src, int S, const int *out, int out_len)
{
    if (r->model != MODEL_S2S)
        return NULL;
    bool was = sg_tape_set_grad(t, false);
    sg_tape_reset(t);
    double *w = calloc((size_t)(out_len + 1) * (size_t)S, sizeof *w);
    sg_seq2seq_enc enc;
    int prev = r->d.V;                       /* SOS */
    if (w && sg_seq2seq_encode(t, &r->s2s, src, NULL, 1, S, &enc) == SG_OK)
        for (int k = 0; k <= out_len; k++) {
            sg_tensor *a = NULL;
            if (!sg_seq2seq_step(t, &r->s2s, &enc, &prev, &a) || !a)
                break;
            for (int j = 0; j < S; j++)
                w[k * S + j] = sg_tensor_get(a, (size_t)j);
            prev = k < out_len ? out[k] : prev;
        }
    sg_tape_set_grad(t, was);
    return w;
}

const char *run_token_text(const run *r, int id, char buf[8])
{
    if (id == r->d.V)
        return "<s>";
    if (id == r->d.V + 1)
        return "</s>";
    unsigned char c = id >= 0 && id < r->d.V ? r->d.vocab[id] : '?';
    if (c == '\n')
        return "\\n";
    if (c == ' ')
        return "\u2423";                   /* open box */
    if (c < 32 || c == 127) {
        snprintf(buf, 8, "\\x%02x", c);
        return buf;
    }
    snprintf(buf, 8, "%c", c);
    return buf;
}

int run_attention_svg(run *r, sg_tape *t, const char *path, const int *src, int S, const int *out, int out_len,
                      const char *title)
{
    double *w = run_attention(r, t, src, S, out, out_len);
    const char **rows = malloc((size_t)(out_len + 1) * sizeof *rows), **cols = malloc((size_t)S * sizeof *cols);
    char (*buf)[8] = malloc((size_t)(out_len + 1 + S) * sizeof *buf);
    int rc = -1;
    if (w && rows && cols && buf) {
        for (int j = 0; j < S; j++)
            cols[j] = run_token_text(r, src[j], buf[j]);
        for (int k = 0; k <= out_len; k++)
            rows[k] = run_token_text(r, k < out_len ? out[k] : r->d.V + 1, buf[S + k]);
        rc = plot_attention(path, w, out_len + 1, S, rows, cols, title);
    }
    free(w), free(rows), free(cols), free(buf);
    return rc;
}

/* ---- checkpoints: params, optimizer moments, carried state; the rest as metadata ---- */

/* "state.h", "state.c", ...: the carried states by the cell's names */
static void carry_name(const run *r, int j, char *out, size_t n) { snprintf(out, n, "state.%s", r->rnn.def->states[j]); }

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
