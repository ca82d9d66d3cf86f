/*
 * eval.c - the metrics of a run on its validation split (see run.h): loss
 * and perplexity, accuracy, a classifier's confusion counts, a tagger's
 * token accuracy and span F1, exact captions and outputs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "run.h"

static int argmax_row(const sg_tensor *z, size_t row, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (sg_tensor_get(z, row * (size_t)V + (size_t)v) > sg_tensor_get(z, row * (size_t)V + (size_t)best))
            best = v;
    return best;
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
        sg_tensor *z = run_classify_batch(r, t, 1, idx, B, NULL);
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

/* ---- evaluation ------------------------------------------------------------------ */

/* the text's validation streams, state carried from chunk to chunk */
/* The text LM on the validation streams, each carrying its state. With
 * train.shards, each shard's streams go through on their own, on the rank
 * that trains the shard; the losses meet in (step, shard) slots, summed in
 * order, so every rank and any number of them get the same figure. */
static eval_result eval_stream(run *r, sg_tape *t)
{
    int B = r->B, T = r->T, K = (int)cfg_int(&r->cfg, "train.shards"), Bs = B / K;
    int mine = K / dist_size(), first = dist_rank() * mine;
    long per = r->d.len[1] / B, steps = (per - 1) / T;
    const int *ids = r->d.ids[1];
    sg_tensor *st[SG_CELL_MAX_STATES] = {NULL};
    double *slot = calloc((size_t)(steps * K + 1), sizeof *slot);
    bool failed = !slot;
    for (int j = 0; !failed && j < r->n_carry; j++)
        failed = !(st[j] = sg_tensor_new(SG_F32, 3, (int[]){r->L, Bs, r->H}));
    for (int s = first; !failed && s < first + mine; s++) {
        for (int j = 0; j < r->n_carry; j++)
            memset(sg_tensor_data(st[j]), 0, sg_tensor_size(st[j]) * sizeof(float));
        for (long k = 0; k < steps; k++) {
            for (int b = 0; b < Bs; b++)
                for (int i = 0; i < T; i++) {
                    long at = (long)(s * Bs + b) * per + k * T + i;
                    r->bx[b * T + i] = ids[at], r->by[b * T + i] = ids[at + 1];
                }
            sg_tape_reset(t);
            sg_tensor *next[SG_CELL_MAX_STATES] = {NULL};
            sg_tensor *loss = sg_cross_entropy(t, run_lm_logits(r, t, r->bx, Bs, T, r->n_carry ? st : NULL, next, NULL),
                                               r->by, NULL);
            if (!loss) {
                failed = true;
                break;
            }
            slot[k * K + s] = sg_tensor_get(loss, 0);
            for (int j = 0; j < r->n_carry; j++)
                if (next[j])
                    sg_tensor_copy(st[j], next[j]);
        }
    }
    if (slot) {
        slot[steps * K] = failed;
        failed = dist_sum(slot, (int)(steps * K + 1)) != 0 || slot[steps * K] > 0;
    }
    double total = 0;
    for (long k = 0; !failed && k < steps; k++) {
        double step = 0;
        for (int s = 0; s < K; s++)
            step += slot[k * K + s];
        total += step / K;
    }
    for (int j = 0; j < r->n_carry; j++)
        sg_tensor_free(st[j]);
    free(slot);
    return (eval_result){.loss = steps && !failed ? total / (double)steps : NAN, .accuracy = NAN, .f1 = NAN,
                         .examples = 0, .tokens = steps * B * T};
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
    /* under mpirun each rank takes every size-th batch; a batch's six sums
     * go to its own slots, and every rank adds the slots in batch order */
    enum { LOSS, TOKENS, RIGHT, PRED, TRUE, BOTH, SLOTS };
    long batches = (N + r->B - 1) / r->B;
    int *idx = malloc((size_t)r->B * sizeof *idx);
    double *slot = calloc((size_t)(batches * SLOTS + 1), sizeof *slot);
    bool failed = !idx || !slot;
    for (long i = 0; !failed && i < N; i += r->B) {
        long batch = i / r->B;
        if (batch % dist_size() != dist_rank())
            continue;
        tokens = right = spans_pred = spans_true = spans_right = 0;
        int B = (int)(N - i < r->B ? N - i : r->B);
        for (int b = 0; b < B; b++)
            idx[b] = (int)(i + b);
        long k = B;
        double l = 0;
        sg_tape_reset(t);
        if (r->d.task == TASK_REGRESS) {      /* MSE and hits are means over examples */
            data_add_batch(&r->d, 1, idx, B, r->fx, r->fy);
            sg_tensor *pred = run_regress(r, t, r->fx, B, NULL);
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
            k = run_count_targets(r->by, (long)B * T);
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
            sg_tensor *z = run_classify_batch(r, t, 1, idx, B, NULL);
            sg_tensor *loss = z ? sg_cross_entropy(t, z, r->by, NULL) : NULL;
            l = loss ? sg_tensor_get(loss, 0) : NAN;
            failed = failed || !loss;
            for (int b = 0; loss && b < B; b++)
                right += argmax_row(z, (size_t)b, r->d.C) == r->by[b];
        } else {
            sg_tensor *loss = run_examples_loss(r, t, 1, idx, B, NULL, &k);
            l = loss ? sg_tensor_get(loss, 0) : NAN;
            long c = r->d.task == TASK_S2S ? count_exact(r, t, idx, B)
                   : r->d.kind == DATA_CAPTION ? count_captions(r, t, idx, B) : 0;
            failed = failed || c < 0 || !loss;
            right += c > 0 ? c : 0;
        }
        double *v = slot + batch * SLOTS;
        v[LOSS] = l * (double)k, v[TOKENS] = (double)k, v[RIGHT] = (double)right;
        v[PRED] = (double)spans_pred, v[TRUE] = (double)spans_true, v[BOTH] = (double)spans_right;
    }
    if (slot) {
        slot[batches * SLOTS] = failed;
        failed = dist_sum(slot, (int)(batches * SLOTS + 1)) != 0 || slot[batches * SLOTS] > 0;
    }
    tokens = right = spans_pred = spans_true = spans_right = 0;
    for (long b = 0; !failed && b < batches; b++) {
        const double *v = slot + b * SLOTS;
        total += v[LOSS], tokens += (long)v[TOKENS], right += (long)v[RIGHT];
        spans_pred += (long)v[PRED], spans_true += (long)v[TRUE], spans_right += (long)v[BOTH];
    }
    free(idx), free(slot);
    sg_tape_set_grad(t, was);
    return (eval_result){.loss = failed ? NAN : total / (double)(tokens ? tokens : 1),
                         .accuracy = failed || (r->d.task == TASK_ITEMS && r->d.kind != DATA_CAPTION) ? NAN
                                   : (double)right / (double)(r->d.task == TASK_TAG ? (tokens ? tokens : 1) : N ? N : 1),
                         .examples = N, .tokens = tokens,
                         .f1 = r->d.task != TASK_TAG || failed || !spans_pred || !spans_true ? NAN
                             : 2.0 * spans_right / (double)(spans_pred + spans_true)};
}
