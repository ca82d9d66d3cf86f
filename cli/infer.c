/*
 * infer.c - what the tool does with a trained run: sample from a language
 * model, translate with a seq2seq model (greedy or beam, with the
 * attention heatmap), and evaluate on the validation split or a file.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "train.h"

/* Sampling: feed() advances the model by one character and leaves the
 * distribution of the next one (softmax(z / temperature)) in probs. A
 * recurrent model carries its state; the transformer re-reads a window of
 * the last T characters. Item models start afresh at each '\n'. */
typedef struct {
    run *r;
    sg_tape *t;
    sg_tensor *st[SG_CELL_MAX_STATES];
    int n_states;
    int *ctx, len;
    double *probs, temperature;
    int condition;            /* a conditioned model's class, -1 for none */
} sampler;

static void feed(sampler *s, int c)
{
    run *r = s->r;
    sg_tape_reset(s->t);
    sg_tape_set_grad(s->t, false);
    if (r->d.task == TASK_ITEMS && c == r->d.boundary) {      /* a new item: from zeros, or from the condition */
        s->len = 0;
        for (int j = 0; j < s->n_states; j++)
            memset(sg_tensor_data(s->st[j]), 0, sg_tensor_size(s->st[j]) * sizeof(float));
        sg_tensor *h0[SG_CELL_MAX_STATES] = {NULL};
        if (s->condition >= 0 && !r->cond_input && run_cond_states(r, s->t, 1, &s->condition, 1, h0) == SG_OK)
            for (int j = 0; j < s->n_states; j++)
                sg_tensor_copy(s->st[j], h0[j]);
    }
    sg_tensor *unused[SG_CELL_MAX_STATES];
    if (s->condition >= 0 && r->cond_input)      /* fed at every step: this step's copy on this tape */
        run_cond_states(r, s->t, 1, &s->condition, 1, unused);
    if (s->len == r->T)
        memmove(s->ctx, s->ctx + 1, (size_t)(r->T - 1) * sizeof *s->ctx), s->len--;
    s->ctx[s->len++] = c;
    sg_tensor *z, *next[SG_CELL_MAX_STATES] = {NULL};
    if (r->model == MODEL_TLM) {
        z = sg_select(s->t, sg_select(s->t, run_lm_logits(r, s->t, s->ctx, 1, s->len, NULL, NULL, NULL), 0, 0), 0,
                      s->len - 1);
    } else {
        z = run_lm_logits(r, s->t, &c, 1, 1, s->st, next, NULL);
        r->cond_in = NULL;
        for (int j = 0; j < s->n_states && next[j]; j++)
            sg_tensor_copy(s->st[j], next[j]);
    }
    sg_tensor *p = sg_softmax(s->t, sg_scale(s->t, z, 1 / s->temperature), -1, NULL);
    for (int v = 0; v < r->d.V; v++)
        s->probs[v] = sg_tensor_get(p, (size_t)v);
}

int train_sample(const char *checkpoint, const char *prompt, const char *condition, int length, double temperature,
                 unsigned long seed, FILE *out, char *err, size_t n)
{
    run r = {0};
    int rc = run_open_checkpoint(&r, checkpoint, NULL, USE_VOCAB, err, n);
    if (rc == EXIT_OK && r.model != MODEL_RNN_LM && r.model != MODEL_TLM)
        rc = cli_fail(err, n, EXIT_USAGE, "%s: a %s model is not a language model (%s)", checkpoint,
                                  cfg_str(&r.cfg, "data.kind"),
                                  r.d.task == TASK_S2S ? "use seqgrad translate" : "use seqgrad eval");
    if (rc != EXIT_OK) {
        run_free(&r);
        return rc;
    }
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sampler sm = {.r = &r, .t = sg_tape_new(), .ctx = malloc((size_t)r.T * sizeof(int)),
                  .probs = malloc((size_t)r.d.V * sizeof(double)), .temperature = temperature};
    sm.n_states = r.model == MODEL_RNN_LM ? sg_cell_n_states(r.rnn.def) : 0;
    sm.condition = condition ? data_class_of(&r.d, condition) : -1;
    if (condition && r.d.kind == DATA_CAPTION) {      /* --image N: a test image */
        char *end;
        long k = strtol(condition, &end, 10);
        sm.condition = *condition && !*end && k >= 0 && k < r.d.len[1] ? (int)k : -1;
        if (rc == EXIT_OK && sm.condition < 0)
            rc = cli_fail(err, n, EXIT_USAGE, "--image: \"%s\" is not an image from 0 to %ld (data.valid_size test images)",
                                      condition, r.d.len[1] - 1);
    }
    if (rc == EXIT_OK && r.conditioned != (condition != NULL)) {
        char names[DATA_MAX_CLASSES * 48];
        data_classes_str(&r.d, names, sizeof names);
        for (char *p = names; *p; p++)
            *p = *p == '\n' ? '|' : *p;
        rc = EXIT_USAGE;
        if (condition)
            snprintf(err, n, "%s: --condition: this model generates without one", checkpoint);
        else if (r.d.kind == DATA_CAPTION)
            snprintf(err, n, "%s: this model captions an image: --image N", checkpoint);
        else
            snprintf(err, n, "%s: this model generates given a condition: --condition %s", checkpoint, names);
    } else if (rc == EXIT_OK && condition && sm.condition < 0 && r.d.kind != DATA_CAPTION) {
        char names[DATA_MAX_CLASSES * 48];
        data_classes_str(&r.d, names, sizeof names);
        for (char *p = names; *p; p++)
            *p = *p == '\n' ? '|' : *p;
        rc = cli_fail(err, n, EXIT_USAGE, "--condition: \"%s\" is not one of %s", condition, names);
    }
    bool states_ok = true;
    for (int j = 0; j < sm.n_states; j++)
        states_ok &= (sm.st[j] = sg_tensor_new(SG_F32, 3, (int[]){r.L, 1, r.H})) != NULL;
    const int *id_of = r.d.id_of;
    if (!strcmp(prompt, "\n") && id_of['\n'] < 0)   /* the default prompt, for a model that never saw a newline */
        prompt = "";
    for (const char *p = prompt; *p; p++)          /* the prompt must be made of characters the model knows */
        if (id_of[(unsigned char)*p] < 0) {
            snprintf(err, n, "--prompt: byte 0x%02x at offset %ld is not in the model's vocabulary",
                     (unsigned char)*p, (long)(p - prompt));
            rc = EXIT_DATA;
            goto out;
        }
    if (!sm.t || !sm.ctx || !sm.probs || !states_ok) {
        snprintf(err, n, "sample: out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    fputs(prompt, out);
    for (const char *p = prompt; *p; p++)
        feed(&sm, id_of[(unsigned char)*p]);
    if (sm.len == 0)
        feed(&sm, id_of['\n'] >= 0 ? id_of['\n'] : 0);
    for (int i = 0; i < length; i++) {             /* draw, print, read it back */
        double u = sg_rng_uniform(&rng), acc = 0;
        int c = 0;
        for (; c < r.d.V - 1; c++)
            if ((acc += sm.probs[c]) > u)
                break;
        fputc(r.d.vocab[c], out);
        feed(&sm, c);
    }
    fputc('\n', out);
out:
    for (int j = 0; j < sm.n_states; j++)
        sg_tensor_free(sm.st[j]);
    sg_tape_free(sm.t);
    free(sm.ctx), free(sm.probs);
    run_free(&r);
    return rc;
}

/* ---- translate ------------------------------------------------------------------ */

/* one source line: decode it, print the output */
static int translate_line(run *r, sg_tape *t, const char *line, const translate_opts *o, bool first, FILE *out,
                          char *err, size_t n)
{
    long S = (long)strlen(line);
    if (S == 0)
        return fputc('\n', out), EXIT_OK;
    int *src = malloc((size_t)S * sizeof *src), *res = malloc((size_t)r->max_out * sizeof *res), len = 0;
    int rc = EXIT_OK;
    long k = src && res ? data_encode(&r->d, line, S, src) : 0;
    if (!src || !res) {
        rc = cli_fail(err, n, EXIT_FAIL, "translate: out of memory for a source of %ld bytes", S);
    } else if (k < 0) {
        rc = cli_fail(err, n, EXIT_DATA, "\"%s\": '%c' (byte 0x%02x) is not in the model's vocabulary", line,
                                 line[-k - 1], (unsigned char)line[-k - 1]);
    } else if (o->beam <= 1) {
        int sl = (int)S;
        if (run_greedy(r, t, src, &sl, 1, (int)S, res, &len) != 0)
            rc = cli_fail(err, n, EXIT_FAIL, "decoding failed: %s", sg_tape_error(t) ? sg_tape_errmsg(t) : "out of memory");
    } else {
        sg_decode_opts d = {.beam = o->beam, .max_len = r->max_out, .start = r->d.V, .end = r->d.V + 1,
                            .length_penalty = o->length_penalty};
        sg_tape_reset(t);
        len = r->model == MODEL_S2S ? sg_seq2seq_decode(t, &r->s2s, src, (int)S, &d, res)
                                    : sg_transformer_s2s_generate(t, &r->ts2s, src, (int)S, &d, res);
        if (len < 0)
            rc = cli_fail(err, n, EXIT_FAIL, "decoding failed: %s", sg_tape_errmsg(t));
    }
    if (rc == EXIT_OK) {
        for (int i = 0; i < len; i++)
            fputc(r->d.vocab[res[i]], out);
        fputc('\n', out);
        if (first && o->attention_svg) {
            char title[600];
            snprintf(title, sizeof title, "%s attention: %s", cfg_str(&r->cfg, "model.attention"), line);
            if (run_attention_svg(r, t, o->attention_svg, src, (int)S, res, len, title) != 0)
                rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot write the heatmap%s", o->attention_svg,
                                         r->model != MODEL_S2S ? " (only the RNN seq2seq model has one)" : "");
        }
    }
    free(src), free(res);
    return rc;
}

int train_translate(const char *checkpoint, const translate_opts *o, FILE *in, FILE *out, char *err, size_t n)
{
    run r = {0};
    int rc = run_open_checkpoint(&r, checkpoint, NULL, USE_VOCAB, err, n);
    if (rc == EXIT_OK && r.d.task != TASK_S2S)
        rc = cli_fail(err, n, EXIT_USAGE, "%s: a %s model is not a seq2seq model (%s)", checkpoint,
                                  cfg_str(&r.cfg, "data.kind"),
                                  r.d.task == TASK_REGRESS ? "use seqgrad eval" : "use seqgrad sample");
    if (rc == EXIT_OK && o->max_len > 0)
        r.max_out = o->max_len;
    sg_tape *t = sg_tape_new();
    if (rc == EXIT_OK && o->input) {
        rc = translate_line(&r, t, o->input, o, true, out, err, n);
    } else if (rc == EXIT_OK) {
        char line[4096];
        for (bool first = true; rc == EXIT_OK && fgets(line, sizeof line, in); first = false) {
            line[strcspn(line, "\r\n")] = '\0';
            rc = translate_line(&r, t, line, o, first, out, err, n);
        }
    }
    sg_tape_free(t);
    run_free(&r);
    return rc;
}

/* ---- classifiers: per-class figures, predictions ------------------------------------ */

static int print_class_report(run *r, sg_tape *t, FILE *out, char *err, size_t n)
{
    int C = r->d.C;
    long *cm = calloc((size_t)C * C, sizeof *cm);
    if (!cm || run_confusion(r, t, cm) != 0) {
        int rc = cli_fail(err, n, EXIT_FAIL, "%s", cm ? sg_tape_errmsg(t) : "out of memory");
        free(cm);
        return rc;
    }
    fprintf(out, "%-16s %9s %9s %9s %8s\n", "class", "precision", "recall", "F1", "support");
    double f1_sum = 0;
    for (int k = 0; k < C; k++) {
        long tp = cm[k * C + k], support = 0, predicted = 0;
        for (int j = 0; j < C; j++)
            support += cm[k * C + j], predicted += cm[j * C + k];
        double p = predicted ? (double)tp / predicted : 0, rec = support ? (double)tp / support : 0;
        double f1 = p + rec > 0 ? 2 * p * rec / (p + rec) : 0;
        f1_sum += f1;
        fprintf(out, "%-16s %9.4f %9.4f %9.4f %8ld\n", r->d.classes[k], p, rec, f1, support);
    }
    fprintf(out, "%-16s %29.4f\n", "macro F1", f1_sum / C);
    fprintf(out, "confusion (rows: true class, columns: predicted, in the order above):\n");
    for (int k = 0; k < C; k++) {
        for (int j = 0; j < C; j++)
            fprintf(out, "%s%6ld", j ? " " : "", cm[k * C + j]);
        fprintf(out, "\n");
    }
    free(cm);
    return EXIT_OK;
}

int train_predict(const char *checkpoint, FILE *in, FILE *out, char *err, size_t n)
{
    run r = {0};
    int rc = run_open_checkpoint(&r, checkpoint, NULL, USE_VOCAB, err, n);
    if (rc == EXIT_OK && r.d.task != TASK_CLASSIFY && r.d.task != TASK_TAG)
        rc = cli_fail(err, n, EXIT_USAGE, "%s: a %s model is not a classifier or a tagger (use seqgrad %s)", checkpoint,
                                  cfg_str(&r.cfg, "data.kind"), r.d.task == TASK_S2S ? "translate" : "sample or eval");
    if (rc == EXIT_OK && r.d.kind == DATA_FASHION)
        rc = cli_fail(err, n, EXIT_USAGE, "%s: predict reads text; a Fashion-MNIST model is measured by seqgrad eval",
                                  checkpoint);
    sg_tape *t = sg_tape_new();
    sg_tape_set_grad(t, false);
    char line[4096];
    int *ids = malloc(sizeof line * sizeof *ids);
    if (!ids && rc == EXIT_OK)
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
    for (long no = 1; rc == EXIT_OK && fgets(line, sizeof line, in); no++) {
        line[strcspn(line, "\r\n")] = '\0';
        char *text = r.d.kind == DATA_LABELLED && strchr(line, '\t') ? strchr(line, '\t') + 1 : line;
        if (r.d.kind == DATA_TAGGED) {        /* tokens between spaces, each printed with its tag */
            int L = 0;
            char *tok[1024], *save = NULL;
            for (char *p = strtok_r(text, " \t", &save); p && L < 1024; p = strtok_r(NULL, " \t", &save))
                tok[L] = p, ids[L] = data_word_id(&r.d, p, strlen(p)), L++;
            if (L == 0) {
                rc = cli_fail(err, n, EXIT_DATA, "line %ld: empty", no);
                break;
            }
            sg_tape_reset(t);
            sg_tensor *z = run_tag(&r, t, ids, &L, 1, L, NULL);
            if (!z) {
                rc = cli_fail(err, n, EXIT_FAIL, "%s", sg_tape_errmsg(t));
                break;
            }
            for (int j = 0; j < L; j++) {
                int best = 0;
                for (int k = 1; k < r.d.C; k++)
                    best = sg_tensor_get(z, (size_t)(j * r.d.C + k)) > sg_tensor_get(z, (size_t)(j * r.d.C + best)) ? k
                                                                                                                : best;
                fprintf(out, "%s%s/%s", j ? " " : "", tok[j], r.d.classes[best]);
            }
            fputc('\n', out);
            continue;
        }
        if (r.d.task == TASK_TAG) {           /* segmentation reads the line without its spaces */
            char *w = text;
            for (char *p = text; *p; p++)
                if (!strchr(" \t\r\f\v", *p))
                    *w++ = *p;
            *w = '\0';
        }
        for (char *p = text; r.d.kind == DATA_WORDLANG && *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        long len = 0;
        if (r.d.kind == DATA_LABELLED && r.d.n_words) {     /* word level: the line's words */
            char *save = NULL;
            for (char *p = strtok_r(text, " \t", &save); p && len < (long)sizeof line; p = strtok_r(NULL, " \t", &save))
                ids[len++] = data_word_id(&r.d, p, strlen(p));
        } else {
            len = data_encode(&r.d, text, (long)strlen(text), ids);
        }
        if (len == 0) {
            rc = cli_fail(err, n, EXIT_DATA, "line %ld: empty", no);
            break;
        }
        if (len < 0) {
            rc = cli_fail(err, n, EXIT_DATA, "line %ld: byte 0x%02x at %ld is not in the model's vocabulary", no,
                                     (unsigned char)text[-len - 1], -len);
            break;
        }
        int L = (int)len;
        sg_tape_reset(t);
        if (r.d.task == TASK_TAG) {           /* the line again, a space before each word the model sees */
            sg_tensor *z = run_tag(&r, t, ids, &L, 1, L, NULL);
            if (!z) {
                rc = cli_fail(err, n, EXIT_FAIL, "%s", sg_tape_errmsg(t));
                break;
            }
            for (int j = 0; j < L; j++)
                fprintf(out, "%s%c", j && sg_tensor_get(z, (size_t)j * 2) > sg_tensor_get(z, (size_t)j * 2 + 1) ? " " : "",
                        text[j]);
            fputc('\n', out);
            continue;
        }
        sg_tensor *z = run_classify(&r, t, ids, NULL, &L, 1, L, NULL, NULL);
        if (!z) {
            rc = cli_fail(err, n, EXIT_FAIL, "%s", sg_tape_errmsg(t));
            break;
        }
        int best = 0;
        for (int k = 1; k < r.d.C; k++)
            best = sg_tensor_get(z, (size_t)k) > sg_tensor_get(z, (size_t)best) ? k : best;
        fprintf(out, "%s\n", r.d.classes[best]);
    }
    free(ids);
    sg_tape_free(t);
    run_free(&r);
    return rc;
}

/* ---- eval ----------------------------------------------------------------------- */

int train_eval(const char *checkpoint, const char *data, FILE *out, char *err, size_t n)
{
    run r = {0};
    int rc = run_open_checkpoint(&r, checkpoint, data, data ? USE_ALL_VALID : USE_SPLITS, err, n);
    if (rc == EXIT_OK && data && !data_from_file(r.d.kind))
        rc = cli_fail(err, n, EXIT_USAGE, "%s data is generated: eval takes no file (it uses the validation split)",
                                  cfg_str(&r.cfg, "data.kind"));
    if (rc == EXIT_OK) {
        sg_tape *t = sg_tape_new();
        eval_result v = run_evaluate(&r, t);
        const char *what = data ? data : "validation split";
        switch (r.d.task) {
        case TASK_STREAM:
            fprintf(out, "%s: %ld characters, loss %.6f nats/char, perplexity %.4f\n", what, r.d.len[1], v.loss,
                    exp(v.loss));
            break;
        case TASK_ITEMS:
            fprintf(out, "%s: %ld items, %ld characters with their ends, loss %.6f nats/char, perplexity %.4f", what,
                    v.examples, v.tokens, v.loss, exp(v.loss));
            if (!isnan(v.accuracy))                /* captions: spelt exactly from the image, greedily */
                fprintf(out, ", exact captions %.2f%% (greedy)", 100 * v.accuracy);
            fputc('\n', out);
            break;
        case TASK_S2S:
            fprintf(out, "%s: %ld pairs, loss %.6f nats/token (teacher-forced), exact match %.2f%% (greedy)\n", what,
                    v.examples, v.loss, 100 * v.accuracy);
            break;
        case TASK_REGRESS:
            fprintf(out, "%s: %ld sequences of %d steps, mean squared error %.6f, accuracy %.2f%% (|error| < 0.04)\n",
                    what, v.examples, r.d.T, v.loss, 100 * v.accuracy);
            break;
        case TASK_CLASSIFY:
            fprintf(out, "%s: %ld sequences, loss %.6f nats, accuracy %.2f%%\n", what, v.examples, v.loss,
                    100 * v.accuracy);
            rc = print_class_report(&r, t, out, err, n);
            break;
        case TASK_TAG:
            if (r.d.kind == DATA_SEGMENT)
                fprintf(out, "%s: %ld lines, %ld characters, loss %.6f nats/char, tag accuracy %.2f%%, word F1 %.4f\n",
                        what, v.examples, v.tokens, v.loss, 100 * v.accuracy, v.f1);
            else if (!isnan(v.f1))
                fprintf(out, "%s: %ld sequences, %ld tokens, loss %.6f nats/token, tag accuracy %.2f%%, span F1 %.4f\n",
                        what, v.examples, v.tokens, v.loss, 100 * v.accuracy, v.f1);
            else
                fprintf(out, "%s: %ld sequences, %ld tokens, loss %.6f nats/token, tag accuracy %.2f%%\n", what,
                        v.examples, v.tokens, v.loss, 100 * v.accuracy);
            break;
        }
        sg_tape_free(t);
    }
    run_free(&r);
    return rc;
}
