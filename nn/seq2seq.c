/*
 * seq2seq.c - an RNN encoder-decoder with attention, composed from the
 * sequence layer, a cell, an attention module and linear layers:
 *
 *   h_1..h_S = Encoder(emb(x))                          (B,S,dirs*H), padded steps masked
 *   s_0      = tanh(W_b [h_fwd_last; h_bwd_first] + b_b)
 *   c_t      = attention(s_{t-1}, h_1..h_S)             Bahdanau's order
 *   s_t      = cell([emb(y_{t-1}); c_t], s_{t-1})
 *   z_t      = W_o [s_t; c_t] + b_o                       logits
 * Teacher forcing feeds the true y_{t-1}; scheduled sampling feeds the
 * model's own previous argmax with a given probability, per token.
 */
#include <stdio.h>
#include <string.h>

#include "seqgrad/attention.h"
#include "guard.h"

sg_seq2seq_opts sg_seq2seq_defaults(void)
{
    return (sg_seq2seq_opts){.cell = &sg_gru_cell, .attention = SG_ATTN_ADDITIVE};
}

sg_status sg_seq2seq_init(sg_seq2seq *m, sg_params *ps, int src_vocab, int tgt_vocab, int emb, int hidden,
                          const sg_seq2seq_opts *o, sg_dtype dt, sg_rng *rng)
{
    sg_seq2seq_opts opts = o ? *o : sg_seq2seq_defaults();
    if (!m)
        return sg_params_fail(ps, SG_ERR_NULL, "seq2seq: the module is NULL");
    if (!opts.cell)
        opts.cell = &sg_gru_cell;
    int H = hidden, dirs = opts.bidirectional ? 2 : 1, K = dirs * H, A = opts.attn_size > 0 ? opts.attn_size : H;
    *m = (sg_seq2seq){.src_vocab = src_vocab, .tgt_vocab = tgt_vocab, .emb = emb, .hidden = H};
    sg_rnn_opts ro = sg_rnn_defaults();
    ro.bidirectional = opts.bidirectional;
    if (opts.attention == SG_ATTN_DOT && K != H)        /* dot attention needs query and keys of one size */
        return sg_params_fail(ps, SG_ERR_SHAPE, "seq2seq: dot attention after a bidirectional encoder: keys of %d, "
                              "queries of %d", K, H);
    sg_status s;
    if ((s = sg_embedding_init(&m->src_emb, ps, "src_emb.", src_vocab, emb, dt, rng)) != SG_OK ||
        (s = sg_embedding_init(&m->tgt_emb, ps, "tgt_emb.", tgt_vocab, emb, dt, rng)) != SG_OK ||
        (s = sg_rnn_init(&m->encoder, opts.cell, ps, "encoder.", emb, H, &ro, dt, rng)) != SG_OK ||
        (s = sg_cell_init(&m->decoder, opts.cell, ps, "decoder.", "", emb + K, H, NULL, dt, rng)) != SG_OK ||
        (s = sg_attention_init(&m->attn, ps, "attention.", opts.attention, H, K, A, dt, rng)) != SG_OK ||
        (s = sg_linear_init(&m->bridge, ps, "bridge.", K, H, true, dt, rng)) != SG_OK ||
        (s = sg_linear_init(&m->out, ps, "out.", H + K, tgt_vocab, true, dt, rng)) != SG_OK)
        return s;
    return SG_OK;
}

static sg_status status_of(sg_tape *t, const void *p)
{
    sg_status s = sg_tape_error(t);
    return p ? SG_OK : s != SG_OK ? s : SG_ERR_NULL;
}

sg_status sg_seq2seq_encode(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                            sg_seq2seq_enc *enc)
{
    if (!sg_nn_ready(t, m && enc && src ? m : NULL, "seq2seq_encode: the model, src or enc"))
        return sg_nn_status(t);
    const sg_rnn *r = &m->encoder;
    sg_dtype dt = sg_tensor_dtype(m->bridge.weight);
    *enc = (sg_seq2seq_enc){.B = B, .S = S};
    sg_tensor *hn[2];
    enc->keys = sg_rnn_forward(t, r, sg_embedding_forward(t, &m->src_emb, src, B, S), NULL, src_len, NULL, hn);
    if (!enc->keys)
        return status_of(t, NULL);
    /* s_0 = tanh(W_b [h_fwd at its last step; h_bwd at the first] + b_b) */
    sg_tensor *last = r->dirs == 2 ? sg_concat(t, (sg_tensor *[]){sg_select(t, hn[0], 0, 0), sg_select(t, hn[0], 0, 1)}, 2, 1)
                                   : sg_select(t, hn[0], 0, 0);
    enc->state[0] = sg_tanh(t, sg_linear_forward(t, &m->bridge, last));
    for (int k = 1; k < sg_cell_n_states(m->decoder.def); k++)     /* c and the like start at 0 */
        enc->state[k] = sg_zeros(t, dt, 2, (int[]){B, m->hidden});
    enc->keys_proj = sg_attention_keys(t, &m->attn, enc->keys);
    if (sg_cell_begin(t, &m->decoder, &enc->run) != SG_OK)
        return status_of(t, NULL);
    if (src_len) {
        enc->mask = sg_zeros(t, dt, 2, (int[]){B, S});
        for (int b = 0; enc->mask && b < B; b++)
            for (int j = 0; j < src_len[b] && j < S; j++)
                sg_tensor_set(enc->mask, (size_t)(b * S + j), 1.0);
    }
    return status_of(t, enc->state[0]);
}

sg_tensor *sg_seq2seq_step(sg_tape *t, const sg_seq2seq *m, sg_seq2seq_enc *enc, const int *prev, sg_tensor **weights)
{
    if (!sg_nn_ready(t, m && enc && prev ? m : NULL, "seq2seq_step: the model, enc or prev"))
        return NULL;
    /* c_t = attention(s_{t-1}, h) */
    sg_tensor *c = sg_attention_forward(t, &m->attn, enc->state[0], enc->keys, enc->keys_proj, enc->mask, enc->pos, weights);
    /* s_t = cell([emb(y_{t-1}); c_t], s_{t-1}) */
    sg_tensor *e = sg_index_select(t, m->tgt_emb.weight, 0, prev, enc->B);
    sg_tensor *next[SG_CELL_MAX_STATES] = {NULL};
    if (sg_cell_step_run(t, &enc->run, sg_concat(t, (sg_tensor *[]){e, c}, 2, 1), enc->state, next) != SG_OK)
        return NULL;
    for (int k = 0; k < sg_cell_n_states(m->decoder.def); k++)
        enc->state[k] = next[k];
    enc->pos++;
    /* z_t = W_o [s_t; c_t] + b_o */
    return sg_linear_forward(t, &m->out, sg_concat(t, (sg_tensor *[]){next[0], c}, 2, 1));
}

sg_tensor *sg_seq2seq_loss(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                           const int *tgt_in, const int *tgt_out, int T, double sample_ratio, sg_rng *rng)
{
    sg_seq2seq_enc enc;
    if (!sg_nn_ready(t, m && tgt_in && tgt_out ? m : NULL, "seq2seq_loss: the model or a target"))
        return NULL;
    if (T < 1 || B < 1)
        return sg_fail(t, SG_ERR_ARG, "seq2seq_loss: %d targets of %d steps (each at least 1)", B, T);
    if (sg_seq2seq_encode(t, m, src, src_len, B, S, &enc) != SG_OK)
        return NULL;
    sg_tensor **z = sg_tape_alloc(t, (size_t)T, sizeof *z);
    int *prev = sg_tape_alloc(t, (size_t)B, sizeof *prev);
    if (!z || !prev)
        return NULL;
    for (int k = 0; k < T; k++) {
        for (int b = 0; b < B; b++) {
            prev[b] = tgt_in[b * T + k];
            if (k > 0 && sample_ratio > 0 && rng && sg_rng_uniform(rng) < sample_ratio) {
                int best = 0;          /* the model's own previous guess (no gradient through it) */
                for (int v = 1; v < m->tgt_vocab; v++)
                    if (sg_tensor_get(z[k - 1], (size_t)(b * m->tgt_vocab + v)) >
                        sg_tensor_get(z[k - 1], (size_t)(b * m->tgt_vocab + best)))
                        best = v;
                prev[b] = best;
            }
        }
        if (!(z[k] = sg_seq2seq_step(t, m, &enc, prev, NULL)))
            return NULL;
    }
    /* (B,T,V) against tgt_out; -100 marks padding */
    return sg_cross_entropy(t, sg_stack(t, z, T, 1), tgt_out, NULL);
}
