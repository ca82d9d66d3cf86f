/*
 * loss.c - batches and losses per task: the language models' logits, the
 * regression of the adding problem, the classifiers' pooled logits, the
 * taggers' per-token logits, the conditioned models' first states, and the
 * loss of a training batch or of chosen examples (see run.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

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

long run_count_targets(const int *y, long n)
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
sg_tensor *run_regress(run *r, sg_tape *t, const float *x, int B, sg_rng *rng)
{
    int T = r->d.T;
    sg_tensor *in = leaf(r, t, 3, (int[]){B, T, 2}, x, (size_t)B * T * 2);
    sg_tensor *h = sg_rnn_forward(t, &r->rnn, in, NULL, NULL, rng, NULL);
    return sg_linear_forward(t, &r->out, sg_select(t, h, 1, T - 1));
}

/* ---- classification -------------------------------------------------------------- */

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
    r->cond_vec = c;
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
sg_tensor *run_classify_batch(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng)
{
    if (r->d.kind == DATA_FASHION) {
        data_fashion_batch(&r->d, split, idx, B, r->fx, r->by);      /* r->fx holds B images */
        return run_classify(r, t, NULL, r->fx, NULL, B, r->d.T, rng, NULL);
    }
    int T = data_class_batch(&r->d, split, idx, B, r->bx, r->blen, r->by);
    return run_classify(r, t, r->bx, NULL, r->blen, B, T, rng, NULL);
}

static sg_tensor *examples_loss(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng, double sampling,
                                long *tokens)
{
    const dataset *d = &r->d;
    int S, T;
    switch (r->d.task) {
    case TASK_ITEMS: {
        T = data_lm_batch(d, split, idx, B, r->T, r->bx, r->by);
        *tokens = run_count_targets(r->by, (long)B * T);
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
        *tokens = run_count_targets(r->by, (long)B * T);
        if (r->model == MODEL_TS2S)
            return sg_transformer_s2s_loss(t, &r->ts2s, r->bsrc, r->blen, B, S, r->bx, r->by, T, rng);
        return sg_seq2seq_loss(t, &r->s2s, r->bsrc, r->blen, B, S, r->bx, r->by, T, sampling, rng);
    case TASK_REGRESS:
        data_add_batch(d, split, idx, B, r->fx, r->fy);
        *tokens = (long)B * d->T;
        return sg_mse_loss(t, run_regress(r, t, r->fx, B, rng), leaf(r, t, 2, (int[]){B, 1}, r->fy, (size_t)B), SG_MEAN);
    case TASK_TAG:
        T = data_tag_batch(d, split, idx, B, r->bx, r->blen, r->by);
        *tokens = run_count_targets(r->by, (long)B * T);
        return sg_cross_entropy(t, run_tag(r, t, r->bx, r->blen, B, T, rng), r->by, NULL);
    case TASK_CLASSIFY: {      /* tokens: the steps read */
        sg_tensor *z = run_classify_batch(r, t, split, idx, B, rng);
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

sg_tensor *run_examples_loss(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng, long *tokens)
{
    long count;
    return examples_loss(r, t, split, idx, B, rng, 0, tokens ? tokens : &count);
}

void run_batch_begin(run *r)
{
    int B = r->B, T = r->T;
    long per = r->d.len[0] / B;
    if (r->d.task != TASK_STREAM) {
        long epoch = r->step / per;
        if (epoch != r->perm_epoch)          /* each epoch its own order, drawn from the seed */
            data_shuffle(r->perm, r->d.len[0], (uint64_t)cfg_int(&r->cfg, "data.seed"), epoch), r->perm_epoch = epoch;
        return;
    }
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
}

/* rows [s Bs, (s+1) Bs) of each carried state (L,B,H) to or from the
 * shard's own (L,Bs,H) */
static void carry_rows(run *r, int s, int shards, sg_tensor **shard, bool out)
{
    int L = r->L, B = r->B, Bs = B / shards, H = r->H;
    for (int j = 0; j < r->n_carry; j++) {
        float *all = sg_tensor_data(r->carry[j]), *one = sg_tensor_data(shard[j]);
        for (int l = 0; l < L; l++) {
            float *rows = all + ((size_t)l * B + (size_t)s * Bs) * H, *mine = one + (size_t)l * Bs * H;
            memcpy(out ? rows : mine, out ? mine : rows, (size_t)Bs * H * sizeof(float));
        }
    }
}

sg_tensor *run_shard_loss(run *r, sg_tape *t, int s, int shards, sg_rng *rng, long *tokens, sg_tensor **next)
{
    int B = r->B / shards, T = r->T;
    if (r->d.task != TASK_STREAM) {
        long k = r->step % (r->d.len[0] / r->B);
        return examples_loss(r, t, 0, r->perm + k * r->B + (long)s * B, B, rng, cfg_real(&r->cfg, "train.sampling"),
                             tokens);
    }
    sg_tensor **state = r->carry;
    if (shards > 1 && r->n_carry) {            /* the shard's rows of the carried state */
        for (int j = 0; j < r->n_carry; j++)
            if (!r->shard_carry[j] && !(r->shard_carry[j] = sg_tensor_new(SG_F32, 3, (int[]){r->L, B, r->H})))
                return sg_fail(t, SG_ERR_NOMEM, "out of memory for a shard's state");
        carry_rows(r, s, shards, r->shard_carry, false);
        state = r->shard_carry;
    }
    *tokens = (long)B * T;
    return sg_cross_entropy(t, run_lm_logits(r, t, r->bx + (size_t)s * B * T, B, T, state, next, rng),
                            r->by + (size_t)s * B * T, NULL);
}

void run_shard_keep_state(run *r, int s, int shards, sg_tensor **next)
{
    if (shards == 1) {
        for (int j = 0; j < r->n_carry; j++)
            if (next[j])
                sg_tensor_copy(r->carry[j], next[j]);
        return;
    }
    for (int j = 0; j < r->n_carry; j++)
        if (next[j])
            sg_tensor_copy(r->shard_carry[j], next[j]);
    carry_rows(r, s, shards, r->shard_carry, true);
}
