/*
 * config.c - the schema of experiment configs and its YAML reader (libyaml
 * events). The reader walks nested mappings keeping the key path; a scalar
 * in value position is checked against the schema right away, with the
 * mark (line, column) libyaml gives for it.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config.h"
#include "run.h"

#define INF 1e300

static const char *const condition_names[] = {"init", "input", NULL};
static const char *const level_names[] = {"char", "word", NULL};

const cfg_key cfg_schema[] = {
    {"model.kind", CFG_STR, NULL, 0, 0, NULL,
     "a registered cell (rnn, rnn_relu, rnn_sigmoid, lstm, gru (classic), gru_reset_after, or your own), "
     "transformer, or seq2seq (an RNN encoder-decoder with attention)"},
    {"model.hidden", CFG_INT, "128", 1, 4096, NULL, "hidden size H (and the embedding size unless model.embedding)"},
    {"model.embedding", CFG_INT, "0", 0, 4096, NULL, "seq2seq: embedding size (0: hidden)"},
    {"model.layers", CFG_INT, "2", 1, 8, NULL, "stacked recurrent layers"},
    {"model.dropout", CFG_REAL, "0.1", 0, 0.95, NULL, "dropout between layers while training"},
    {"model.init", CFG_STR, "pytorch", 0, 0, sg_init_names, "weight initialisation (recurrent)"},
    {"model.heads", CFG_INT, "4", 1, 64, NULL, "transformer: attention heads (hidden must divide by it)"},
    {"model.norm_first", CFG_BOOL, "true", 0, 0, NULL, "transformer: pre-norm layers (false: post-norm)"},
    {"model.forget_bias", CFG_REAL, "0", -10, 10, NULL, "LSTM forget-gate bias (0: as drawn)"},
    {"model.cell", CFG_STR, "gru", 0, 0, NULL, "seq2seq: the encoder's and decoder's cell (a registered name)"},
    {"model.attention", CFG_STR, "additive", 0, 0, sg_attn_kind_names,
     "seq2seq: attention score (Bahdanau additive; Luong dot, general, concat)"},
    {"model.bidirectional", CFG_BOOL, "false", 0, 0, NULL, "seq2seq: bidirectional encoder; classifiers: bidirectional layers"},
    {"model.condition", CFG_STR, "init", 0, 0, condition_names,
     "generation from a vector (wordgen, caption): the condition sets the initial state, or joins every step's input"},
    {"model.pooling", CFG_STR, "last", 0, 0, pool_names,
     "classifiers: the sequence's summary (the last state of each direction, the mean or max over steps, or "
     "attention with a learned query)"},
    {"data.kind", CFG_STR, NULL, 0, 0, data_kind_names,
     "dataset: character-level text; words or lines of a file as items; source<TAB>target pairs; "
     "generated copy, reverse, sort and adding tasks; classification: label<TAB>text lines, the language of a word "
     "(Debian's word lists), sequential Fashion-MNIST, generated parity and temporal order; tagging: word "
     "segmentation of a text, CoNLL-style token<TAB>tag files; generation from a vector: words given their language, Fashion-MNIST images "
     "captioned with their class name"},
    {"data.path", CFG_STR, "", 0, 0, NULL, "the file of text, words, lines or pairs; empty: the bundled data/genesis.txt (text)"},
    {"data.vocab", CFG_STR, "", 0, 0, NULL,
     "text, words, lines, pairs: the characters a model knows, in order (empty: every byte that occurs); "
     "other bytes are an error"},
    {"data.seq_len", CFG_INT, "64", 2, 4096, NULL,
     "text: truncated BPTT length T; items, segment: longest item or line read (longer ones are cut); adding, "
     "order: steps T"},
    {"data.batch_size", CFG_INT, "32", 1, 4096, NULL, "text: parallel streams B; otherwise examples per batch"},
    {"data.valid_fraction", CFG_REAL, "0.1", 0.01, 0.5, NULL,
     "text, words, lines, pairs: share held out for validation (text: of 20 blocks)"},
    {"data.seed", CFG_INT, "1", 0, 1e15, NULL, "seed of the train/validation split, the generated tasks and the batch order"},
    {"data.symbols", CFG_INT, "10", 2, 36, NULL, "copy, reverse, sort: alphabet size (0-9, then a-z)"},
    {"data.min_len", CFG_INT, "3", 1, 64, NULL, "copy, reverse, sort, parity: shortest source"},
    {"data.max_len", CFG_INT, "10", 1, 64, NULL, "copy, reverse, sort, parity: longest source"},
    {"data.level", CFG_STR, "char", 0, 0, level_names,
     "labelled: characters, or whitespace-separated words (the training split's words are the vocabulary)"},
    {"data.by_pixel", CFG_BOOL, "false", 0, 0, NULL, "fashion: 784 steps of one pixel instead of 28 rows of 28"},
    {"data.train_size", CFG_INT, "10000", 1, 1e7, NULL,
     "generated tasks: training examples; wordlang: words per language; fashion: images of the training set"},
    {"data.valid_size", CFG_INT, "1000", 1, 1e7, NULL,
     "generated tasks: validation examples (never seen in training); wordlang: per language; fashion: test images"},
    {"optim.kind", CFG_STR, "adam", 0, 0, sg_optim_kind_names, "optimizer"},
    {"optim.lr", CFG_REAL, "0.003", 1e-9, 10, NULL, "base learning rate"},
    {"optim.momentum", CFG_REAL, "0", 0, 0.999, NULL, "SGD and RMSProp momentum"},
    {"optim.weight_decay", CFG_REAL, "0", 0, 1, NULL, "L2 (decoupled for adamw)"},
    {"schedule.kind", CFG_STR, "cosine", 0, 0, sg_sched_kind_names, "learning-rate schedule"},
    {"schedule.warmup", CFG_INT, "20", 0, 1e9, NULL, "linear warmup steps"},
    {"schedule.step_size", CFG_INT, "1000", 1, 1e9, NULL, "step schedule: steps between decays"},
    {"schedule.gamma", CFG_REAL, "0.5", 0, 1, NULL, "step schedule: decay factor"},
    {"schedule.min_lr", CFG_REAL, "0.0003", 0, 10, NULL, "cosine schedule: final learning rate"},
    {"clip.norm", CFG_REAL, "1.0", 0, 1e9, NULL, "clip gradients to this global norm (0: off)"},
    {"train.steps", CFG_INT, "600", 1, 1e9, NULL, "optimizer steps (unless epochs is set)"},
    {"train.epochs", CFG_INT, "0", 0, 1e6, NULL, "if > 0: passes over the training data, instead of steps"},
    {"train.seed", CFG_INT, "1", 0, 1e15, NULL, "seed of initialisation, dropout and sampling"},
    {"train.shards", CFG_INT, "1", 1, 64, NULL,
     "the batch is computed as this many equal shards, each its own dropout stream, their gradients summed exactly; "
     "mpirun -np N (N dividing it) gives the same parameters as one process (docs/scale.md)"},
    {"train.threads", CFG_INT, "0", 0, 64, NULL,
     "with train.shards > 1: threads computing a process's shards at once, each product on one BLAS thread "
     "(0: one per core, at most the shards); the parameters do not depend on it"},
    {"train.sampling", CFG_REAL, "0", 0, 1, NULL, "seq2seq: scheduled sampling, the share of decoder inputs taken from the model's own guess"},
    {"train.eval_every", CFG_INT, "100", 1, 1e9, NULL, "validate every N steps (and at the end)"},
    {"train.checkpoint_every", CFG_INT, "200", 1, 1e9, NULL, "write the checkpoint every N steps (and at the end)"},
    {"train.run_dir", CFG_STR, "runs/default", 0, 0, NULL, "folder for config, checkpoint, metrics and plots"},
    {"compare.cells", CFG_LIST, "", 0, 0, NULL,
     "cells to train one after the other, each in run_dir/CELL-seedN, then compared (seqgrad compare): "
     "registered names or the config's cell: section"},
    {"compare.seeds", CFG_INT, "1", 1, 100, NULL, "compare: seeds per cell (train.seed, train.seed + 1, ...)"},
};
const int cfg_schema_len = sizeof cfg_schema / sizeof cfg_schema[0];

static int find(const char *key)
{
    for (int i = 0; i < cfg_schema_len; i++)
        if (strcmp(cfg_schema[i].key, key) == 0)
            return i;
    return -1;
}

int cli_fail(char *err, size_t n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return code;
}

int cli_make_dirs(const char *dir)
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

bool cli_parse_long(const char *opt, const char *text, long lo, long hi, long *v, char *err, size_t n)
{
    char *end;
    errno = 0;
    long x = strtol(text, &end, 10);
    if (end == text || *end || errno || x < lo || x > hi)
        return cli_fail(err, n, false, "%s: expected a whole number from %ld to %ld, got \"%s\"", opt, lo, hi, text);
    *v = x;
    return true;
}

bool cli_parse_double(const char *opt, const char *text, double lo, double hi, double *v, char *err, size_t n)
{
    char *end;
    errno = 0;
    double x = strtod(text, &end);
    if (end == text || *end || errno || !(x >= lo && x <= hi))
        return cli_fail(err, n, false, "%s: expected a number from %g to %g, got \"%s\"", opt, lo, hi, text);
    *v = x;
    return true;
}

/* The names key k allows, joined by sep: "a|b|c". */
static const char *choices_text(const cfg_key *k, const char *sep, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; k->choices && k->choices[i] && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? sep : "", k->choices[i]);
    return out;
}

/* Checks text against key i: true if fine, else false with the problem in why. */
static bool validate(int i, const char *text, char *why, size_t n)
{
    const cfg_key *k = &cfg_schema[i];
    char *end;
    errno = 0;
    switch (k->type) {
    case CFG_INT: {
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || errno)
            return cli_fail(why, n, false, "expected an integer, got \"%s\"", text);
        if (v < k->lo || v > k->hi)
            return cli_fail(why, n, false, "%lld is out of range [%.15g, %.15g]", v, k->lo, k->hi);
        return true;
    }
    case CFG_REAL: {
        double v = strtod(text, &end);
        if (!*text || *end || errno || !isfinite(v))
            return cli_fail(why, n, false, "expected a number, got \"%s\"", text);
        if (v < k->lo || v > k->hi)
            return cli_fail(why, n, false, "%g is out of range [%g, %g]", v, k->lo, k->hi);
        return true;
    }
    case CFG_LIST:
        for (const char *q = text; *q; q++)
            if ((!isalnum((unsigned char)*q) && *q != '_' && *q != ',') ||
                (*q == ',' && (q == text || q[1] == ',' || q[1] == '\0')))      /* an empty name */
                return cli_fail(why, n, false, "expected names (letters, digits, _), got \"%s\"", text);
        return true;
    case CFG_BOOL:
        if (strcmp(text, "true") && strcmp(text, "false"))
            return cli_fail(why, n, false, "expected true or false, got \"%s\"", text);
        return true;
    case CFG_STR:
        if (k->choices && sg_enum_parse(k->choices, text) < 0) {
            char names[512];
            return cli_fail(why, n, false, "\"%s\" is not one of %s", text, choices_text(k, "|", names, sizeof names));
        }
        return true;
    }
    return true;
}

static void defaults(sg_config *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < cfg_schema_len; i++)
        if (cfg_schema[i].def)
            snprintf(c->v[i].value, sizeof c->v[i].value, "%s", cfg_schema[i].def);
}

/* ---- the cell: section ------------------------------------------------------------- */

typedef struct {
    yaml_parser_t *p;
    yaml_event_t ev;
    bool have;
    const char *file;
    char *err;
    size_t n;
} events;

/* the next event into e->ev; -1 with the parser's message */
static int next_event(events *e)
{
    if (e->have)
        yaml_event_delete(&e->ev);
    if (!(e->have = yaml_parser_parse(e->p, &e->ev))) {
        snprintf(e->err, e->n, "%s:%zu:%zu: %s", e->file, e->p->problem_mark.line + 1, e->p->problem_mark.column + 1,
                 e->p->problem ? e->p->problem : "not valid YAML");
        return -1;
    }
    return 0;
}

static int ev_line(const events *e) { return (int)e->ev.start_mark.line + 1; }
static int ev_col(const events *e) { return (int)e->ev.start_mark.column + 1; }

static int cell_fail(events *e, const char *key, const char *what)
{
    snprintf(e->err, e->n, "%s:%d:%d: %s: %s", e->file, ev_line(e), ev_col(e), key, what);
    return -1;
}

/* the next key of a mapping into *k ("" if it is not a scalar): 0, or 1
 * at the mapping's end, -1 on an error */
static int next_key(events *e, const char **k)
{
    if (next_event(e) < 0)
        return -1;
    if (e->ev.type == YAML_MAPPING_END_EVENT)
        return 1;
    *k = e->ev.type == YAML_SCALAR_EVENT ? (const char *)e->ev.data.scalar.value : "";
    return 0;
}

/* a scalar into t, with where its text starts (after a quote) */
static int cell_scalar(events *e, cfg_text *t, const char *key)
{
    if (next_event(e) < 0)
        return -1;
    if (e->ev.type != YAML_SCALAR_EVENT)
        return cell_fail(e, key, "expected a value");
    if (e->ev.data.scalar.length >= sizeof t->text)
        return cell_fail(e, key, "longer than 255 bytes");
    snprintf(t->text, sizeof t->text, "%s", (const char *)e->ev.data.scalar.value);
    bool quoted = e->ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                  e->ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    t->line = ev_line(e), t->col = ev_col(e) + quoted;
    return 0;
}

/* a list of scalars (after its start event) into ts[max]; *count items */
static int cell_list(events *e, cfg_text *ts, int max, int *count, const char *key)
{
    *count = 0;
    for (;;) {
        if (next_event(e) < 0)
            return -1;
        if (e->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (e->ev.type != YAML_SCALAR_EVENT)
            return cell_fail(e, key, "expected a list of values");
        if (*count == max) {
            char what[64];
            snprintf(what, sizeof what, "more than %d items", max);
            return cell_fail(e, key, what);
        }
        cfg_text *t = &ts[(*count)++];
        if (e->ev.data.scalar.length >= sizeof t->text)
            return cell_fail(e, key, "longer than 255 bytes");
        snprintf(t->text, sizeof t->text, "%s", (const char *)e->ev.data.scalar.value);
        t->line = ev_line(e), t->col = ev_col(e) + (e->ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                                                    e->ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    }
}

/* a shape: [4H, E] or "4H, E" (the event is read) */
static int cell_shape(events *e, cfg_text *shape, const char *key)
{
    if (e->ev.type == YAML_SCALAR_EVENT) {
        if (!e->ev.data.scalar.length)
            return cell_fail(e, key, "expected a shape: [4H, E]");
        snprintf(shape->text, sizeof shape->text, "%s", (const char *)e->ev.data.scalar.value);
        shape->line = ev_line(e), shape->col = ev_col(e);
        return 0;
    }
    if (e->ev.type != YAML_SEQUENCE_START_EVENT)
        return cell_fail(e, key, "expected a shape: [4H, E]");
    cfg_text dims[3];
    int nd;
    int line = ev_line(e), col = ev_col(e);
    if (cell_list(e, dims, 3, &nd, key) < 0)
        return -1;
    if (nd == 0)
        return cell_fail(e, key, "an empty shape");
    size_t len = 0;
    for (int k = 0; k < nd; k++) {
        size_t l = strlen(dims[k].text);
        if (len + l + 3 > sizeof shape->text)
            return cell_fail(e, key, "a shape longer than 255 bytes");
        memcpy(shape->text + len, k ? ", " : "", k ? 2 : 0);
        len += k ? 2 : 0;
        memcpy(shape->text + len, dims[k].text, l + 1);
        len += l;
    }
    shape->line = line, shape->col = col + 1;
    return 0;
}

/* params: {NAME: [shape] | {shape: [..], init: NAME, value: X}} */
static int cell_params(events *e, cfg_cell *cell)
{
    if (next_event(e) < 0)
        return -1;
    if (e->ev.type != YAML_MAPPING_START_EVENT)
        return cell_fail(e, "cell.params", "expected a mapping of parameter: shape");
    for (;;) {
        if (next_event(e) < 0)
            return -1;
        if (e->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (cell->n_params == 16)
            return cell_fail(e, "cell.params", "more than 16 parameters");
        cfg_param *pm = &cell->params[cell->n_params++];
        if (e->ev.type != YAML_SCALAR_EVENT || e->ev.data.scalar.length >= sizeof pm->name.text)
            return cell_fail(e, "cell.params", "expected a parameter's name");
        snprintf(pm->name.text, sizeof pm->name.text, "%s", (const char *)e->ev.data.scalar.value);
        pm->name.line = ev_line(e), pm->name.col = ev_col(e);
        char key[300];
        snprintf(key, sizeof key, "cell.params.%s", pm->name.text);
        snprintf(pm->init.text, sizeof pm->init.text, "uniform");
        if (next_event(e) < 0)
            return -1;
        if (e->ev.type != YAML_MAPPING_START_EVENT) {
            if (cell_shape(e, &pm->shape, key) < 0)
                return -1;
            continue;
        }
        for (;;) {
            const char *k;
            int at = next_key(e, &k);
            if (at != 0) {
                if (at < 0)
                    return -1;
                break;
            }
            if (!strcmp(k, "shape")) {
                if (next_event(e) < 0 || cell_shape(e, &pm->shape, key) < 0)
                    return -1;
            } else if (!strcmp(k, "init")) {
                if (cell_scalar(e, &pm->init, key) < 0)
                    return -1;
            } else if (!strcmp(k, "value")) {
                cfg_text v;
                char *end;
                if (cell_scalar(e, &v, key) < 0)
                    return -1;
                pm->value = strtod(v.text, &end);
                if (!v.text[0] || *end || !isfinite(pm->value))
                    return cell_fail(e, key, "value: expected a number");
            } else {
                return cell_fail(e, key, "unknown key (shape, init, value)");
            }
        }
        if (!pm->shape.text[0])
            return cell_fail(e, key, "no shape");
    }
}

/* the section, from after its mapping's start */
static int parse_cell(events *e, cfg_cell *cell)
{
    cell->present = true;
    cell->line = ev_line(e), cell->col = ev_col(e);
    static const char *const keys[] = {"name", "states", "params", "equations"};
    bool seen[4] = {false};
    for (;;) {
        const char *k;
        int rc = next_key(e, &k);
        if (rc < 0)
            return -1;
        if (rc > 0)
            break;
        for (int i = 0; i < 4; i++)
            if (!strcmp(k, keys[i])) {
                if (seen[i]) {
                    char key[40];
                    snprintf(key, sizeof key, "cell.%s", keys[i]);
                    return cell_fail(e, key, "given twice");
                }
                seen[i] = true;
            }
        if (!strcmp(k, "name")) {
            rc = cell_scalar(e, &cell->name, "cell.name");
        } else if (!strcmp(k, "states") || !strcmp(k, "equations")) {
            bool states = k[0] == 's';
            const char *key = states ? "cell.states" : "cell.equations";
            if ((rc = next_event(e)) == 0 && e->ev.type != YAML_SEQUENCE_START_EVENT)
                return cell_fail(e, key, "expected a list");
            if (rc == 0)
                rc = states ? cell_list(e, cell->states, 4, &cell->n_states, key)
                            : cell_list(e, cell->equations, 48, &cell->n_equations, key);
        } else if (!strcmp(k, "params")) {
            rc = cell_params(e, cell);
        } else {
            char key[300];
            snprintf(key, sizeof key, "cell.%s", k);
            return cell_fail(e, key, "unknown key (name, states, params, equations)");
        }
        if (rc < 0)
            return -1;
    }
    if (!cell->name.text[0] || !cell->n_states || !cell->n_equations) {
        snprintf(e->err, e->n, "%s:%d:%d: cell: %s missing", e->file, cell->line, cell->col,
                 !cell->name.text[0] ? "name:" : !cell->n_states ? "states:" : "equations:");
        return -1;
    }
    return 0;
}

/* The values of a parser whose input is set; file names the source in
 * messages. The parser is deleted here. */
static int parse(sg_config *c, const char *file, yaml_parser_t *pp, char *err, size_t n)
{
    yaml_parser_t p = *pp;
    yaml_event_t ev;
    char path[8][128];             /* key path, one entry per mapping depth */
    bool at_key[8];
    int depth = -1, rc = -1;
    bool have = false, done = false;
    while (!done) {
        if (have)
            yaml_event_delete(&ev);
        if (!(have = yaml_parser_parse(&p, &ev))) {
            if (p.error == YAML_MEMORY_ERROR)
                snprintf(err, n, "%s: out of memory reading the config", file);
            else
                snprintf(err, n, "%s:%zu:%zu: %s", file, p.problem_mark.line + 1, p.problem_mark.column + 1,
                         p.problem ? p.problem : "not valid YAML");
            goto out;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        /* parent: the keys of the enclosing mappings; key: parent + the
         * current key (set once the current mapping has read its key) */
        char parent[512] = "", key[512] = "";
        for (int d = 0; d < depth; d++)
            snprintf(parent + strlen(parent), sizeof parent - strlen(parent), "%s%s", d ? "." : "", path[d]);
        if (depth >= 0 && !at_key[depth])
            snprintf(key, sizeof key, "%s%s%s", parent, parent[0] ? "." : "", path[depth]);
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_MAPPING_START_EVENT:
            if (depth == 0 && !at_key[0] && !strcmp(path[0], "cell")) {
                if (c->cell.present) {
                    snprintf(err, n, "%s:%d:%d: cell: given twice", file, line, col);
                    goto out;
                }
                events e = {.p = &p, .ev = ev, .have = true, .file = file, .err = err, .n = n};
                int cr = parse_cell(&e, &c->cell);
                ev = e.ev, have = e.have;
                if (cr < 0)
                    goto out;
                at_key[0] = true;
                break;
            }
            if (depth >= 0 && at_key[depth]) {
                snprintf(err, n, "%s:%d:%d: a key must be a plain name", file, line, col);
                goto out;
            }
            if (depth >= 0 && find(key) >= 0) {
                snprintf(err, n, "%s:%d:%d: %s: expected a value, got a mapping", file, line, col, key);
                goto out;
            }
            if (++depth == 8) {
                snprintf(err, n, "%s:%d:%d: nested too deep", file, line, col);
                goto out;
            }
            at_key[depth] = true;
            break;
        case YAML_MAPPING_END_EVENT:
            if (--depth >= 0)
                at_key[depth] = true;
            break;
        case YAML_SEQUENCE_START_EVENT: {
            int i = depth >= 0 && !at_key[depth] ? find(key) : -1;
            if (i < 0 || cfg_schema[i].type != CFG_LIST) {
                snprintf(err, n, "%s:%d:%d: %s: expected a value, got a list", file, line, col, key[0] ? key : "(top)");
                goto out;
            }
            events e = {.p = &p, .ev = ev, .have = true, .file = file, .err = err, .n = n};
            cfg_text items[16];
            int count;
            int lr = cell_list(&e, items, 16, &count, key);
            ev = e.ev, have = e.have;
            if (lr < 0)
                goto out;
            char joined[sizeof c->v[0].value] = "";
            for (int k = 0, len = 0; k < count; k++) {
                int l = (int)strlen(items[k].text);
                if (len + l + 2 > (int)sizeof joined) {
                    snprintf(err, n, "%s:%d:%d: %s: longer than %zu bytes", file, line, col, key, sizeof joined - 1);
                    goto out;
                }
                if (k)
                    joined[len++] = ',';
                memcpy(joined + len, items[k].text, (size_t)l + 1);
                len += l;
            }
            char why[256];
            bool ok = validate(i, joined, why, sizeof why);
            if (!ok) {
                snprintf(err, n, "%s:%d:%d: %s: %s", file, line, col, key, why);
                goto out;
            }
            snprintf(c->v[i].value, sizeof c->v[i].value, "%s", joined);
            c->v[i].line = line, c->v[i].col = col, c->v[i].from_file = true;
            at_key[depth] = true;
            break;
        }
        case YAML_ALIAS_EVENT:
            snprintf(err, n, "%s:%d:%d: aliases are not supported", file, line, col);
            goto out;
        case YAML_SCALAR_EVENT: {
            const char *text = (const char *)ev.data.scalar.value;
            if (depth < 0) {
                snprintf(err, n, "%s:%d:%d: expected a mapping of keys", file, line, col);
                goto out;
            }
            if (at_key[depth]) {          /* a key: is the path known, or a prefix of one? */
                snprintf(path[depth], sizeof path[depth], "%s", text);
                char full[512];
                snprintf(full, sizeof full, "%s%s%s", parent, parent[0] ? "." : "", text);
                size_t fl = strlen(full);
                bool known = depth == 0 && !strcmp(text, "cell");
                for (int i = 0; i < cfg_schema_len && !known; i++)
                    known = strcmp(cfg_schema[i].key, full) == 0 ||
                            (strncmp(cfg_schema[i].key, full, fl) == 0 && cfg_schema[i].key[fl] == '.');
                if (!known) {
                    snprintf(err, n, "%s:%d:%d: %s: unknown key", file, line, col, full);
                    goto out;
                }
                at_key[depth] = false;
                break;
            }
            int i = find(key);
            if (i < 0) {
                snprintf(err, n, "%s:%d:%d: %s: expected a mapping, got a value", file, line, col, key);
                goto out;
            }
            char why[256];
            bool ok = validate(i, text, why, sizeof why);
            if (!ok) {
                snprintf(err, n, "%s:%d:%d: %s: %s", file, line, col, key, why);
                goto out;
            }
            if (c->v[i].from_file) {
                snprintf(err, n, "%s:%d:%d: %s: given twice (first at line %d, column %d)", file, line, col, key,
                         c->v[i].line, c->v[i].col);
                goto out;
            }
            if (strlen(text) >= sizeof c->v[i].value) {
                snprintf(err, n, "%s:%d:%d: %s: longer than %zu bytes", file, line, col, key,
                         sizeof c->v[i].value - 1);
                goto out;
            }
            snprintf(c->v[i].value, sizeof c->v[i].value, "%s", text);
            c->v[i].line = line, c->v[i].col = col, c->v[i].from_file = true;
            at_key[depth] = true;
            break;
        }
        default:
            break;
        }
    }
    rc = 0;
out:
    if (have)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    return rc;
}

int cfg_load(sg_config *c, const char *file, char *err, size_t n)
{
    defaults(c);
    snprintf(c->file, sizeof c->file, "%s", file);
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, n, "%s: cannot open: %s", file, strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return cli_fail(err, n, -1, "%s: out of memory reading the config", file);
    }
    yaml_parser_set_input_file(&p, f);
    int rc = parse(c, file, &p, err, n);
    fclose(f);
    return rc;
}

int cfg_load_text(sg_config *c, const char *name, const char *text, size_t len, char *err, size_t n)
{
    defaults(c);
    snprintf(c->file, sizeof c->file, "%s", name);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return cli_fail(err, n, -1, "%s: out of memory reading the config", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    return parse(c, name, &p, err, n);
}

int cfg_set(sg_config *c, const char *assign, char *err, size_t n)
{
    const char *eq = strchr(assign, '=');
    char key[128];
    if (!eq || eq == assign || (size_t)(eq - assign) >= sizeof key) {
        snprintf(err, n, "--set %s: expected key.path=value", assign);
        return -1;
    }
    memcpy(key, assign, (size_t)(eq - assign));
    key[eq - assign] = '\0';
    int i = find(key);
    if (i < 0) {
        snprintf(err, n, "--set %s: unknown key", key);
        return -1;
    }
    char why[256];
    bool ok = validate(i, eq + 1, why, sizeof why);
    if (!ok) {
        snprintf(err, n, "--set %s: %s", key, why);
        return -1;
    }
    snprintf(c->v[i].value, sizeof c->v[i].value, "%s", eq + 1);
    c->v[i].line = c->v[i].col = 0, c->v[i].from_file = false;
    return 0;
}

int cfg_check(const sg_config *c, char *err, size_t n)
{
    for (int i = 0; i < cfg_schema_len; i++)
        if (!cfg_schema[i].def && !c->v[i].value[0]) {
            char names[512];
            snprintf(err, n, "%s: %s: missing (required: %s)", c->file, cfg_schema[i].key,
                     cfg_schema[i].choices ? choices_text(&cfg_schema[i], "|", names, sizeof names) : cfg_schema[i].doc);
            return -1;
        }
    return 0;
}

void cfg_where(const sg_config *c, const char *key, char *out, size_t n)
{
    int i = find(key);
    if (i >= 0 && c->v[i].from_file)
        snprintf(out, n, "%s:%d:%d", c->file, c->v[i].line, c->v[i].col);
    else
        snprintf(out, n, "%s", i >= 0 && c->v[i].value[0] && !c->v[i].from_file ? "--set" : c->file);
}

bool cfg_is_set(const sg_config *c, const char *key)
{
    int i = find(key);
    return i >= 0 && (c->v[i].from_file || (cfg_schema[i].def && strcmp(c->v[i].value, cfg_schema[i].def) != 0));
}

static const char *value(const sg_config *c, const char *key)
{
    int i = find(key);
    return i >= 0 ? c->v[i].value : "";
}

long cfg_int(const sg_config *c, const char *key) { return strtol(value(c, key), NULL, 10); }
double cfg_real(const sg_config *c, const char *key) { return strtod(value(c, key), NULL); }
const char *cfg_str(const sg_config *c, const char *key) { return value(c, key); }
bool cfg_bool(const sg_config *c, const char *key) { return strcmp(value(c, key), "true") == 0; }

/* text as a double-quoted YAML string at out + len: \ " and control bytes
 * escaped, so any value (a path holding " or \) reads back as it was.
 * Returns the new length (n or more: truncated). */
static size_t dump_str(char *out, size_t n, size_t len, const char *text)
{
    if (len < n)
        out[len++] = '"';
    for (const unsigned char *v = (const unsigned char *)text; *v && len < n; v++) {
        if (*v == '"' || *v == '\\')
            len += (size_t)snprintf(out + len, n - len, "\\%c", *v);
        else if (*v < 0x20 || *v == 0x7f)
            len += (size_t)snprintf(out + len, n - len, "\\x%02x", *v);
        else if (v[0] == 0xc2 && v[1] >= 0x80 && v[1] <= 0x9f)   /* U+0080..U+009F: C1 controls, NEL a break */
            len += (size_t)snprintf(out + len, n - len, "\\u%04x", v[1]), v++;
        else if (v[0] == 0xe2 && v[1] == 0x80 && (v[2] == 0xa8 || v[2] == 0xa9))   /* U+2028, U+2029: breaks */
            len += (size_t)snprintf(out + len, n - len, "\\u20%02x", v[2] - 0x80), v += 2;
        else if (v[0] == 0xef && ((v[1] == 0xbb && v[2] == 0xbf) || (v[1] == 0xbf && v[2] >= 0xbe)))
            len += (size_t)snprintf(out + len, n - len, "\\uf%03x", v[1] == 0xbb ? 0xeff : 0xfc0 + v[2] - 0x80),
            v += 2;                                      /* U+FEFF, U+FFFE, U+FFFF */
        else
            out[len++] = (char)*v;
    }
    if (len < n)
        out[len++] = '"';
    return len;
}

/* printf at out + len, for as long as there is room */
static size_t dump_fmt(char *out, size_t n, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t dump_fmt(char *out, size_t n, size_t len, const char *fmt, ...)
{
    if (len >= n)
        return len;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + len, n - len, fmt, ap);
    va_end(ap);
    return len + (w > 0 ? (size_t)w : 0);
}

/* the cell: section, every text quoted */
static size_t dump_cell(const cfg_cell *cell, char *out, size_t n, size_t len)
{
    len = dump_fmt(out, n, len, "cell:\n  name: ");
    len = dump_fmt(out, n, dump_str(out, n, len, cell->name.text), "\n  states: [");
    for (int i = 0; i < cell->n_states; i++)
        len = dump_str(out, n, dump_fmt(out, n, len, "%s", i ? ", " : ""), cell->states[i].text);
    len = dump_fmt(out, n, len, cell->n_params ? "]\n  params:\n" : "]\n  params: {}\n");
    for (int i = 0; i < cell->n_params; i++) {
        const cfg_param *pm = &cell->params[i];
        len = dump_fmt(out, n, dump_str(out, n, dump_fmt(out, n, len, "    "), pm->name.text), ": {shape: ");
        len = dump_fmt(out, n, dump_str(out, n, len, pm->shape.text), ", init: ");
        len = dump_fmt(out, n, dump_str(out, n, len, pm->init.text), ", value: %.17g}\n", pm->value);
    }
    len = dump_fmt(out, n, len, "  equations:\n");
    for (int i = 0; i < cell->n_equations; i++)
        len = dump_fmt(out, n, dump_str(out, n, dump_fmt(out, n, len, "    - "), cell->equations[i].text), "\n");
    return len;
}

size_t cfg_dump(const sg_config *c, char *out, size_t n)
{
    size_t len = 0;
    char section[64] = "";
    for (int i = 0; i < cfg_schema_len && len < n; i++) {
        const char *k = cfg_schema[i].key, *dot = strchr(k, '.');
        if (strncmp(section, k, (size_t)(dot - k)) != 0 || section[dot - k] != '\0') {
            snprintf(section, sizeof section, "%.*s", (int)(dot - k), k);
            len = dump_fmt(out, n, len, "%s:\n", section);
        }
        len = dump_fmt(out, n, len, "  %s: ", dot + 1);
        if (cfg_schema[i].type == CFG_LIST)     /* names: letters, digits and _ only */
            len = dump_fmt(out, n, len, "[%s]\n", c->v[i].value);
        else if (cfg_schema[i].type != CFG_STR)
            len = dump_fmt(out, n, len, "%s\n", c->v[i].value);
        else
            len = dump_fmt(out, n, dump_str(out, n, len, c->v[i].value), "\n");
    }
    if (c->cell.present)
        len = dump_cell(&c->cell, out, n, len);
    return len < n ? len : n;
}

size_t cfg_doc(char *out, size_t n)
{
    static const char *types[] = {"integer", "number", "string", "boolean", "list of names"};
    size_t len = (size_t)snprintf(out, n, "| key | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < cfg_schema_len && len < n; i++) {
        const cfg_key *k = &cfg_schema[i];
        char allowed[512] = "";
        if (k->type == CFG_INT || k->type == CFG_REAL)
            snprintf(allowed, sizeof allowed, "%.15g to %.15g", k->lo, k->hi);
        else
            choices_text(k, ", ", allowed, sizeof allowed);      /* not |, which would end a table cell */
        len += (size_t)snprintf(out + len, n - len, "| `%s` | %s | %s | %s | %s |\n", k->key, types[k->type],
                                k->def ? (k->def[0] ? k->def : "(empty)") : "**required**", allowed, k->doc);
    }
    return len < n ? len : n;
}
