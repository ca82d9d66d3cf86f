/*
 * decode.c - greedy and beam-search decoding of a seq2seq model, recorded
 * in no-grad mode. Each step runs the decoder on every live hypothesis at
 * once (batch = beam) and keeps the best `beam` continuations by total log
 * probability; a hypothesis that emits the end token (or the start token,
 * which is no output) is finished, and the finished ones are ranked by
 * logp / len^alpha (length normalisation). The beams' states follow their
 * parents with index_select. Greedy decoding of a batch runs every source
 * at once, each fed its own argmax.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "seqgrad/attention.h"
#include "guard.h"

#define MAX_BEAM 64

typedef struct {
    int len;
    double logp;
    int parent, token;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const cand *)a)->logp, y = ((const cand *)b)->logp;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double normalised(double logp, int len, double alpha)
{
    return alpha > 0 ? logp / pow((double)len, alpha) : logp;
}

/* The model side of a search: logits (n,V) for the next token of n live
 * hypotheses. Row i continues hypothesis parents[i] of the previous step;
 * hyp holds the n hypotheses' tokens so far (len each, row stride L), last
 * their last tokens (the start token at first). */
typedef sg_tensor *(*step_fn)(sg_tape *t, void *ctx, const int *parents, int n, const int *last, const int *hyp,
                              int len, int L);

static int search(sg_tape *t, step_fn step_model, void *ctx, int V, const sg_decode_opts *o, int *out)
{
    int beam = o->beam < 1 ? 1 : o->beam > MAX_BEAM ? MAX_BEAM : o->beam, L = o->max_len;
    int n = 1, result = -1;
    int *hyp = malloc((size_t)beam * L * sizeof *hyp), *next_hyp = malloc((size_t)beam * L * sizeof *next_hyp);
    int *best = malloc((size_t)L * sizeof *best);
    cand *cands = malloc((size_t)beam * V * sizeof *cands);
    double score[MAX_BEAM] = {0}, best_score = -INFINITY;
    int prev[MAX_BEAM] = {o->start}, parents[MAX_BEAM] = {0}, best_len = -1;
    if (!hyp || !next_hyp || !best || !cands)
        goto out;
    for (int step = 0; step < L && n > 0; step++) {
        sg_tensor *logp = sg_log_softmax(t, step_model(t, ctx, parents, n, prev, hyp, step, L), 1, NULL);
        if (!logp)
            goto out;
        int nc = 0;
        for (int i = 0; i < n; i++)
            for (int v = 0; v < V; v++)
                cands[nc++] = (cand){step + 1, score[i] + sg_tensor_get(logp, (size_t)(i * V + v)), i, v};
        qsort(cands, (size_t)nc, sizeof *cands, cmp_cand);
        int kept = 0;
        for (int c = 0; c < nc && kept < beam; c++) {
            const cand *k = &cands[c];
            bool ended = k->token == o->end || k->token == o->start;     /* the start token is no output */
            if (ended || step == L - 1) {          /* finished, or out of room */
                double s = normalised(k->logp, k->len, o->length_penalty);
                if (s > best_score) {
                    best_score = s;
                    best_len = ended ? step : step + 1;
                    memcpy(best, hyp + k->parent * L, (size_t)step * sizeof *best);
                    if (!ended)
                        best[step] = k->token;
                }
                continue;
            }
            memcpy(next_hyp + kept * L, hyp + k->parent * L, (size_t)step * sizeof *hyp);
            next_hyp[kept * L + step] = k->token;
            score[kept] = k->logp, prev[kept] = k->token, parents[kept] = k->parent;
            kept++;
        }
        /* without length normalisation scores only fall: stop when no live
         * hypothesis can still beat the best finished one */
        if (kept == 0 || (best_len >= 0 && o->length_penalty <= 0 && score[0] < best_score))
            break;
        int *tmp = hyp;
        hyp = next_hyp, next_hyp = tmp;
        n = kept;
    }
    if (best_len >= 0) {
        memcpy(out, best, (size_t)best_len * sizeof *out);
        result = best_len;
    }
out:
    free(hyp), free(next_hyp), free(best), free(cands);
    return result;
}

/* ---- the RNN seq2seq: state follows the parents ----------------------------- */

typedef struct {
    const sg_seq2seq *m;
    sg_seq2seq_enc enc;
    sg_tensor *keys, *keys_proj;
} rnn_ctx;

static sg_tensor *rnn_step(sg_tape *t, void *p, const int *parents, int n, const int *last, const int *hyp, int len,
                           int L)
{
    rnn_ctx *c = p;
    (void)hyp, (void)L;
    if (len > 0) {        /* reorder: every live hypothesis continues its parent's state */
        int zeros[MAX_BEAM] = {0};
        for (int j = 0; j < 2 && c->enc.state[j]; j++)
            c->enc.state[j] = sg_index_select(t, c->enc.state[j], 0, parents, n);
        c->enc.keys = sg_index_select(t, c->keys, 0, zeros, n);
        c->enc.keys_proj = c->keys_proj ? sg_index_select(t, c->keys_proj, 0, zeros, n) : NULL;
        c->enc.B = n;
    }
    return sg_seq2seq_step(t, c->m, &c->enc, last, NULL);
}

static bool opts_ok(sg_tape *t, const sg_decode_opts *o)
{
    if (!o) {
        sg_fail(t, SG_ERR_NULL, "decode: opts is NULL (it names the start and end tokens)");
        return false;
    }
    if (o->max_len >= 1)
        return true;
    sg_fail(t, SG_ERR_ARG, "decode: max_len %d must be at least 1", o->max_len);
    return false;
}

int sg_seq2seq_decode(sg_tape *t, const sg_seq2seq *m, const int *src, int S, const sg_decode_opts *o, int *out)
{
    if (!sg_nn_ready(t, m && src && out ? m : NULL, "seq2seq_decode: the model, src or out"))
        return -1;
    if (!opts_ok(t, o))
        return -1;
    bool was = sg_tape_set_grad(t, false);
    rnn_ctx c = {.m = m};
    int k = -1;
    if (sg_seq2seq_encode(t, m, src, NULL, 1, S, &c.enc) == SG_OK) {
        c.keys = c.enc.keys, c.keys_proj = c.enc.keys_proj;
        k = search(t, rnn_step, &c, m->tgt_vocab, o, out);
    }
    sg_tape_set_grad(t, was);
    return k;
}

/* ---- the transformer: the decoder re-reads each prefix ----------------------- */

typedef struct {
    const sg_transformer_s2s *m;
    sg_tensor *memory;
    int start;
} tf_ctx;

static sg_tensor *tf_step(sg_tape *t, void *p, const int *parents, int n, const int *last, const int *hyp, int len,
                          int L)
{
    tf_ctx *c = p;
    (void)parents, (void)last;
    int T = len + 1, zeros[MAX_BEAM] = {0};
    int *in = malloc((size_t)n * T * sizeof *in);
    if (!in)
        return sg_fail(t, SG_ERR_NOMEM, "decode: out of memory");
    for (int i = 0; i < n; i++) {           /* start token, then the hypothesis */
        in[i * T] = c->start;
        memcpy(in + i * T + 1, hyp + i * L, (size_t)len * sizeof *in);
    }
    sg_tensor *mem = sg_index_select(t, c->memory, 0, zeros, n);
    sg_tensor *z = sg_transformer_s2s_decode(t, c->m, mem, NULL, in, n, T, NULL);
    free(in);
    return sg_select(t, z, 1, T - 1);       /* the last position's logits (n,V) */
}

int sg_transformer_s2s_generate(sg_tape *t, const sg_transformer_s2s *m, const int *src, int S,
                                const sg_decode_opts *o, int *out)
{
    if (!sg_nn_ready(t, m && src && out ? m : NULL, "transformer_s2s_generate: the model, src or out"))
        return -1;
    if (!opts_ok(t, o))
        return -1;
    bool was = sg_tape_set_grad(t, false);
    tf_ctx c = {.m = m, .memory = sg_transformer_s2s_encode(t, m, src, NULL, 1, S, NULL, NULL), .start = o->start};
    int k = c.memory ? search(t, tf_step, &c, m->tgt_vocab, o, out) : -1;
    sg_tape_set_grad(t, was);
    return k;
}

/* ---- greedy decoding of a batch ------------------------------------------------ */

/* The model side of batched greedy decoding: logits (B,V) for the next
 * token of every sequence, given prev (B, stride): the start token, then
 * the k tokens chosen so far. */
typedef sg_tensor *(*greedy_fn)(sg_tape *t, void *ctx, const int *prev, int B, int k, int stride);

/* Each step feeds every sequence its own argmax; a sequence is finished at
 * the end token, or the start token, which is no output (it keeps being fed, its outputs ignored, so the batch
 * keeps its shape). The same tokens as beam 1, one source at a time. */
static int greedy(sg_tape *t, greedy_fn step, void *ctx, int B, int V, const sg_decode_opts *o, int *out,
                  int *out_len)
{
    int M = o->max_len, stride = M + 1, left = B, rc = 0;
    int *prev = malloc((size_t)B * (size_t)stride * sizeof *prev);
    bool *done = calloc((size_t)B, sizeof *done);
    if (!prev || !done) {
        free(prev), free(done);
        sg_fail(t, SG_ERR_NOMEM, "decode: out of memory for a batch of %d", B);
        return -1;
    }
    for (int b = 0; b < B; b++)
        prev[b * stride] = o->start, out_len[b] = 0;
    for (int k = 0; k < M && left > 0; k++) {
        sg_tensor *z = step(t, ctx, prev, B, k, stride);
        if (!z) {
            rc = -1;
            break;
        }
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)b * (size_t)V;
            int tok = 0;
            for (int v = 1; v < V; v++)
                if (sg_tensor_get(z, row + (size_t)v) > sg_tensor_get(z, row + (size_t)tok))
                    tok = v;
            prev[b * stride + k + 1] = tok;
            if (done[b])
                continue;
            if (tok == o->end || tok == o->start)
                done[b] = true, left--;
            else
                out[b * M + out_len[b]++] = tok;
        }
    }
    free(prev), free(done);
    return rc;
}

static sg_tensor *rnn_greedy_step(sg_tape *t, void *p, const int *prev, int B, int k, int stride)
{
    rnn_ctx *c = p;
    int *last = malloc((size_t)B * sizeof *last);
    if (!last)
        return sg_fail(t, SG_ERR_NOMEM, "decode: out of memory");
    for (int b = 0; b < B; b++)
        last[b] = prev[b * stride + k];
    sg_tensor *z = sg_seq2seq_step(t, c->m, &c->enc, last, NULL);
    free(last);
    return z;
}

/* the batch's arguments: a model, sources, outputs, and B, S >= 1 */
static bool batch_ok(sg_tape *t, const void *m, const int *src, const int *out, const int *out_len, int B, int S,
                     const char *op)
{
    char what[96];
    snprintf(what, sizeof what, "%s: the model, src, out or out_len", op);
    if (!sg_nn_ready(t, m && src && out && out_len ? m : NULL, what))
        return false;
    if (B >= 1 && S >= 1)
        return true;
    sg_fail(t, SG_ERR_ARG, "%s: B %d and S %d must be at least 1", op, B, S);
    return false;
}

int sg_seq2seq_greedy(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                      const sg_decode_opts *o, int *out, int *out_len)
{
    if (!batch_ok(t, m, src, out, out_len, B, S, "seq2seq_greedy") || !opts_ok(t, o))
        return -1;
    bool was = sg_tape_set_grad(t, false);
    rnn_ctx c = {.m = m};
    int rc = sg_seq2seq_encode(t, m, src, src_len, B, S, &c.enc) == SG_OK
                 ? greedy(t, rnn_greedy_step, &c, B, m->tgt_vocab, o, out, out_len)
                 : -1;
    sg_tape_set_grad(t, was);
    return rc;
}

typedef struct {
    const sg_transformer_s2s *m;
    sg_tensor *memory, *mask;
    int *in;                        /* (B, k+1): the prefixes, packed */
} tf_greedy_ctx;

static sg_tensor *tf_greedy_step(sg_tape *t, void *p, const int *prev, int B, int k, int stride)
{
    tf_greedy_ctx *c = p;
    for (int b = 0; b < B; b++)
        memcpy(c->in + b * (k + 1), prev + b * stride, (size_t)(k + 1) * sizeof *c->in);
    return sg_select(t, sg_transformer_s2s_decode(t, c->m, c->memory, c->mask, c->in, B, k + 1, NULL), 1, k);
}

int sg_transformer_s2s_greedy(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len, int B,
                              int S, const sg_decode_opts *o, int *out, int *out_len)
{
    if (!batch_ok(t, m, src, out, out_len, B, S, "transformer_s2s_greedy") || !opts_ok(t, o))
        return -1;
    bool was = sg_tape_set_grad(t, false);
    tf_greedy_ctx c = {.m = m, .in = malloc((size_t)B * (size_t)(o->max_len + 1) * sizeof *c.in)};
    int rc = -1;
    if (!c.in)
        sg_fail(t, SG_ERR_NOMEM, "transformer_s2s_greedy: out of memory for a batch of %d", B);
    else if ((c.memory = sg_transformer_s2s_encode(t, m, src, src_len, B, S, &c.mask, NULL)))
        rc = greedy(t, tf_greedy_step, &c, B, m->tgt_vocab, o, out, out_len);
    free(c.in);
    sg_tape_set_grad(t, was);
    return rc;
}
