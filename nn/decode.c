/*
 * decode.c - greedy and beam-search decoding of a seq2seq model, recorded
 * in no-grad mode. Each step runs the decoder on every live hypothesis at
 * once (batch = beam) and keeps the best `beam` continuations by total log
 * probability; a hypothesis that emits the end token is finished, and the
 * finished ones are ranked by logp / len^alpha (length normalisation).
 * The beams' states follow their parents with index_select.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "seqgrad/attention.h"

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

int sg_seq2seq_decode(sg_tape *t, const sg_seq2seq *m, const int *src, int S, const sg_decode_opts *o, int *out)
{
    int beam = o->beam < 1 ? 1 : o->beam > MAX_BEAM ? MAX_BEAM : o->beam, V = m->tgt_vocab, L = o->max_len;
    if (L < 1) {
        sg_fail(t, SG_ERR_ARG, "decode: max_len %d must be at least 1", L);
        return -1;
    }
    bool was = sg_tape_set_grad(t, false);
    sg_seq2seq_enc enc;
    int n = 1, result = -1;
    int *hyp = malloc((size_t)beam * L * sizeof *hyp), *next_hyp = malloc((size_t)beam * L * sizeof *next_hyp);
    int *best = malloc((size_t)L * sizeof *best);
    cand *cands = malloc((size_t)beam * V * sizeof *cands);
    double score[MAX_BEAM] = {0}, best_score = -INFINITY;
    int prev[MAX_BEAM], parents[MAX_BEAM], best_len = -1;
    if (!hyp || !next_hyp || !best || !cands || sg_seq2seq_encode(t, m, src, NULL, 1, S, &enc) != SG_OK)
        goto out;
    sg_tensor *keys = enc.keys, *keys_proj = enc.keys_proj;
    prev[0] = o->start;

    for (int step = 0; step < L && n > 0; step++) {
        sg_tensor *z = sg_seq2seq_step(t, m, &enc, prev, NULL);
        sg_tensor *logp = sg_log_softmax(t, z, 1, NULL);
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
            if (k->token == o->end || step == L - 1) {     /* finished (or out of room) */
                double s = normalised(k->logp, k->len, o->length_penalty);
                if (s > best_score) {
                    best_score = s;
                    best_len = k->token == o->end ? step : step + 1;
                    memcpy(best, hyp + k->parent * L, (size_t)step * sizeof *best);
                    if (k->token != o->end)
                        best[step] = k->token;
                }
                if (k->token == o->end)
                    continue;
                if (step == L - 1)
                    continue;
            }
            memcpy(next_hyp + kept * L, hyp + k->parent * L, (size_t)step * sizeof *hyp);
            next_hyp[kept * L + step] = k->token;
            score[kept] = k->logp, prev[kept] = k->token, parents[kept] = k->parent;
            kept++;
        }
        /* stop when no live hypothesis can beat the best finished one */
        if (kept == 0 || (best_len >= 0 && normalised(score[0], step + 2, o->length_penalty) < best_score &&
                          o->length_penalty <= 0))
            break;
        int *tmp = hyp;
        hyp = next_hyp, next_hyp = tmp;
        n = kept;
        /* every live hypothesis continues its parent's state; keys are shared */
        int zeros[MAX_BEAM] = {0};
        for (int j = 0; j < 2 && enc.state[j]; j++)
            enc.state[j] = sg_index_select(t, enc.state[j], 0, parents, n);
        enc.keys = sg_index_select(t, keys, 0, zeros, n);
        enc.keys_proj = keys_proj ? sg_index_select(t, keys_proj, 0, zeros, n) : NULL;
        enc.B = n;
        if (sg_tape_error(t))
            goto out;
    }
    if (best_len >= 0) {
        memcpy(out, best, (size_t)best_len * sizeof *out);
        result = best_len;
    }
out:
    sg_tape_set_grad(t, was);
    free(hyp), free(next_hyp), free(best), free(cands);
    return result;
}
