/*
 * transformer.c - transformer layers as torch.nn.TransformerEncoderLayer and
 * TransformerDecoderLayer (batch_first, same parameter names), sinusoidal
 * and learned positions, and a decoder-only language model. All op calls:
 *
 *   encoder layer, post-norm          encoder layer, pre-norm
 *     x = LN1(x + SA(x))                x = x + SA(LN1(x))
 *     x = LN2(x + FF(x))                x = x + FF(LN2(x))
 *   decoder layer adds cross-attention to the memory between SA and FF:
 *     x = LN2(x + CA(x, m))             x = x + CA(LN2(x), m)      (FF uses LN3)
 *   FF(x) = W2 act(W1 x + b1) + b2, act = relu or gelu
 */
#include <math.h>
#include <stdio.h>

#include "../core/internal.h"
#include "seqgrad/attention.h"
#include "guard.h"

sg_transformer_opts sg_transformer_defaults(int d_model, int heads)
{
    return (sg_transformer_opts){.d_model = d_model, .heads = heads, .d_ff = 4 * d_model, .eps = 1e-5};
}

static sg_status named_linear(sg_linear *l, sg_params *ps, const char *prefix, const char *name, int in, int out,
                              sg_dtype dt, sg_rng *rng)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return sg_linear_init(l, ps, full, in, out, true, dt, rng);
}

/* LayerNorm weight 1, bias 0, named <prefix>norm<k>.weight / .bias */
static sg_status norm_init(sg_tensor **w, sg_tensor **b, sg_params *ps, const char *prefix, const char *name, int d,
                           sg_dtype dt)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s.weight", prefix ? prefix : "", name);
    *w = sg_params_add(ps, full, sg_param_new(dt, 1, &d));
    snprintf(full, sizeof full, "%s%s.bias", prefix ? prefix : "", name);
    *b = sg_params_add(ps, full, sg_param_new(dt, 1, &d));
    if (!*w || !*b)
        return SG_ERR_ARG;
    for (int i = 0; i < d; i++)
        sg_tensor_set(*w, (size_t)i, 1.0);
    return SG_OK;
}

sg_status sg_tlayer_init(sg_tlayer *l, sg_params *ps, const char *prefix, bool decoder,
                         const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng)
{
    char p[256];
    if (!l || !o)
        return sg_params_fail(ps, SG_ERR_NULL, "transformer layer: the %s NULL", l ? "options are" : "module is");
    if (o->d_ff < 1 || !(o->dropout >= 0 && o->dropout < 1))
        return sg_params_fail(ps, SG_ERR_ARG, "transformer layer: d_ff %d (at least 1), dropout %g (0 <= p < 1)",
                              o->d_ff, o->dropout);
    if (!(o->eps >= 0))
        return sg_params_fail(ps, SG_ERR_ARG, "transformer layer: layer norm eps %g (0: the default 1e-5)", o->eps);
    *l = (sg_tlayer){.o = *o, .decoder = decoder};
    if (l->o.eps == 0)
        l->o.eps = 1e-5;
    int d = o->d_model;
    snprintf(p, sizeof p, "%sself_attn.", prefix ? prefix : "");
    if (sg_mha_init(&l->self_attn, ps, p, d, o->heads, dt, rng) != SG_OK)
        return SG_ERR_ARG;
    if (decoder) {
        snprintf(p, sizeof p, "%smultihead_attn.", prefix ? prefix : "");
        if (sg_mha_init(&l->cross_attn, ps, p, d, o->heads, dt, rng) != SG_OK)
            return SG_ERR_ARG;
    }
    if (named_linear(&l->linear1, ps, prefix, "linear1.", d, o->d_ff, dt, rng) != SG_OK ||
        named_linear(&l->linear2, ps, prefix, "linear2.", o->d_ff, d, dt, rng) != SG_OK)
        return SG_ERR_ARG;
    static const char *norms[3] = {"norm1", "norm2", "norm3"};
    for (int k = 0; k < (decoder ? 3 : 2); k++)
        if (norm_init(&l->norm_w[k], &l->norm_b[k], ps, prefix, norms[k], d, dt) != SG_OK)
            return SG_ERR_ARG;
    return SG_OK;
}

static sg_tensor *ln(sg_tape *t, const sg_tlayer *l, int k, sg_tensor *x)
{
    return sg_layer_norm(t, x, l->norm_w[k], l->norm_b[k], l->o.eps);
}

static sg_tensor *drop(sg_tape *t, const sg_tlayer *l, sg_tensor *x, sg_rng *rng)
{
    return rng && l->o.dropout > 0 ? sg_dropout(t, x, l->o.dropout, rng) : x;
}

/* FF(x) = W2 drop(act(W1 x + b1)) + b2 */
static sg_tensor *feed_forward(sg_tape *t, const sg_tlayer *l, sg_tensor *x, sg_rng *rng)
{
    sg_tensor *h = sg_linear_forward(t, &l->linear1, x);
    h = l->o.gelu ? sg_gelu(t, h) : sg_relu(t, h);
    return drop(t, l, sg_linear_forward(t, &l->linear2, drop(t, l, h, rng)), rng);
}

/* one residual block: post-norm x = LN(x + f(x)), pre-norm x = x + f(LN(x));
 * f is self-attention (mem NULL), cross-attention (mem given) or FF (ff).
 * With gradients not kept, what the block made besides its result and no
 * backward reads (projections before their heads are split, residual
 * sums, ...) gives its data to the next block's tensors. */
static sg_tensor *block(sg_tape *t, const sg_tlayer *l, int k, sg_tensor *x, const sg_mha *attn, sg_tensor *mem,
                        const sg_attn_masks *masks, sg_rng *rng)
{
    sg_tensor *mark = sg_tape_last(t);
    sg_tensor *in = l->o.norm_first ? ln(t, l, k, x) : x, *f;
    if (attn)
        f = drop(t, l, sg_mha_forward(t, attn, in, mem ? mem : in, mem ? mem : in, masks, NULL), rng);
    else
        f = feed_forward(t, l, in, rng);
    sg_tensor *y = sg_add(t, x, f);
    y = l->o.norm_first ? y : ln(t, l, k, y);
    if (y)
        sg_tape_recycle(t, sg_tape_last(t), mark, &y, 1);
    return y;
}

sg_tensor *sg_tlayer_encode(sg_tape *t, const sg_tlayer *l, sg_tensor *x, const sg_attn_masks *masks,
                            sg_rng *dropout)
{
    if (!t || sg_tape_error(t))
        return NULL;
    if (!l || !l->self_attn.in_w)
        return sg_fail(t, SG_ERR_NULL, "transformer encoder layer: the layer is NULL or not initialised");
    x = block(t, l, 0, x, &l->self_attn, NULL, masks, dropout);
    return block(t, l, 1, x, NULL, NULL, NULL, dropout);
}

sg_tensor *sg_tlayer_decode(sg_tape *t, const sg_tlayer *l, sg_tensor *x, sg_tensor *memory,
                            const sg_attn_masks *tgt_masks, const sg_attn_masks *memory_masks, sg_rng *dropout)
{
    if (!t || sg_tape_error(t))
        return NULL;
    if (!l || !l->decoder || !l->cross_attn.in_w)
        return sg_fail(t, SG_ERR_ARG, "transformer decoder layer: %s", l ? "an encoder layer (decoder = false) given"
                                                                           : "the layer is NULL");
    if (!memory)
        return sg_fail(t, SG_ERR_NULL, "transformer decoder layer: memory is NULL (the encoder's output, (B,S,d))");
    sg_attn_masks self = tgt_masks ? *tgt_masks : (sg_attn_masks){0};
    self.causal = true;                    /* a decoder never sees its future */
    x = block(t, l, 0, x, &l->self_attn, NULL, &self, dropout);
    x = block(t, l, 1, x, &l->cross_attn, memory, memory_masks, dropout);
    return block(t, l, 2, x, NULL, NULL, NULL, dropout);
}

sg_tensor *sg_sinusoidal_positions(sg_tape *t, sg_dtype dt, int T, int d)
{
    if (!t || sg_tape_error(t))
        return NULL;
    if (T < 1 || d < 1)
        return sg_fail(t, SG_ERR_ARG, "sinusoidal_positions: %d positions of size %d (each at least 1)", T, d);
    sg_tensor *pe = sg_zeros(t, dt, 2, (int[]){T, d});
    for (int p = 0; pe && p < T; p++)
        for (int i = 0; i < d; i += 2) {
            double angle = p / pow(10000.0, (double)i / d);
            sg_tensor_set(pe, (size_t)(p * d + i), sin(angle));
            if (i + 1 < d)
                sg_tensor_set(pe, (size_t)(p * d + i + 1), cos(angle));
        }
    return pe;
}

/* ---- decoder-only language model -------------------------------------------- */

sg_status sg_transformer_lm_init(sg_transformer_lm *m, sg_params *ps, int vocab, int max_len, int layers,
                                 bool learned_positions, const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng)
{
    if (!m || !o)
        return sg_params_fail(ps, SG_ERR_NULL, "transformer lm: the %s NULL", m ? "options are" : "module is");
    if (layers < 1 || layers > SG_MAX_TLAYERS || max_len < 1)
        return sg_params_fail(ps, SG_ERR_ARG, "transformer lm: %d layers (1 to %d), max_len %d (at least 1)", layers,
                              SG_MAX_TLAYERS, max_len);
    *m = (sg_transformer_lm){.vocab = vocab, .max_len = max_len, .layers = layers,
                             .learned_positions = learned_positions, .o = *o};
    int d = o->d_model;
    if (sg_embedding_init(&m->tok, ps, "tok_emb.", vocab, d, dt, rng) != SG_OK)
        return SG_ERR_ARG;
    if (learned_positions &&
        !(m->pos = sg_params_add(ps, "pos_emb.weight", sg_param_randn(dt, 2, (int[]){max_len, d}, 0.02, rng))))
        return SG_ERR_ARG;
    for (int k = 0; k < layers; k++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "layers.%d.", k);
        if (sg_tlayer_init(&m->layer[k], ps, prefix, false, o, dt, rng) != SG_OK)
            return SG_ERR_ARG;
    }
    if (o->norm_first && norm_init(&m->norm_w, &m->norm_b, ps, "", "norm", d, dt) != SG_OK)
        return SG_ERR_ARG;
    return sg_linear_init(&m->head, ps, "head.", d, vocab, true, dt, rng);
}

sg_tensor *sg_transformer_lm_forward(sg_tape *t, const sg_transformer_lm *m, const int *ids, int B, int T,
                                     sg_rng *dropout)
{
    if (!sg_nn_ready(t, m && ids ? m : NULL, "transformer_lm: the model or ids"))
        return NULL;
    if (B < 1 || T < 1)
        return sg_fail(t, SG_ERR_ARG, "transformer_lm: %d sequences of %d (each at least 1)", B, T);
    if (T > m->max_len)
        return sg_fail(t, SG_ERR_ARG, "transformer_lm: sequence of %d is longer than max_len %d", T, m->max_len);
    int d = m->o.d_model;
    sg_tensor *x = sg_embedding_forward(t, &m->tok, ids, B, T);
    sg_tensor *pos = m->learned_positions ? sg_narrow(t, m->pos, 0, 0, T)
                                          : sg_sinusoidal_positions(t, sg_tensor_dtype(m->tok.weight), T, d);
    x = sg_add(t, x, pos);
    if (dropout && m->o.dropout > 0)
        x = sg_dropout(t, x, m->o.dropout, dropout);
    for (int k = 0; k < m->layers; k++)
        x = sg_tlayer_encode(t, &m->layer[k], x, &(sg_attn_masks){.causal = true}, dropout);
    if (m->o.norm_first)
        x = sg_layer_norm(t, x, m->norm_w, m->norm_b, m->o.eps);
    return sg_linear_forward(t, &m->head, x);
}

/* ---- encoder-decoder -------------------------------------------------------- */

sg_status sg_transformer_s2s_init(sg_transformer_s2s *m, sg_params *ps, int src_vocab, int tgt_vocab, int layers,
                                  const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng)
{
    if (!m || !o)
        return sg_params_fail(ps, SG_ERR_NULL, "transformer s2s: the %s NULL", m ? "options are" : "module is");
    if (layers < 1 || layers > SG_MAX_TLAYERS)
        return sg_params_fail(ps, SG_ERR_ARG, "transformer s2s: %d layers (1 to %d)", layers, SG_MAX_TLAYERS);
    *m = (sg_transformer_s2s){.src_vocab = src_vocab, .tgt_vocab = tgt_vocab, .layers = layers, .o = *o};
    int d = o->d_model;
    if (sg_embedding_init(&m->src_emb, ps, "src_emb.", src_vocab, d, dt, rng) != SG_OK ||
        sg_embedding_init(&m->tgt_emb, ps, "tgt_emb.", tgt_vocab, d, dt, rng) != SG_OK)
        return SG_ERR_ARG;
    for (int k = 0; k < layers; k++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "encoder.layers.%d.", k);
        if (sg_tlayer_init(&m->enc[k], ps, prefix, false, o, dt, rng) != SG_OK)
            return SG_ERR_ARG;
        snprintf(prefix, sizeof prefix, "decoder.layers.%d.", k);
        if (sg_tlayer_init(&m->dec[k], ps, prefix, true, o, dt, rng) != SG_OK)
            return SG_ERR_ARG;
    }
    if (o->norm_first && (norm_init(&m->norm_w[0], &m->norm_b[0], ps, "encoder.", "norm", d, dt) != SG_OK ||
                          norm_init(&m->norm_w[1], &m->norm_b[1], ps, "decoder.", "norm", d, dt) != SG_OK))
        return SG_ERR_ARG;
    return sg_linear_init(&m->head, ps, "head.", d, tgt_vocab, true, dt, rng);
}

/* Embed(ids) + PE */
static sg_tensor *embed(sg_tape *t, const sg_embedding *e, const int *ids, int B, int T, int d)
{
    sg_tensor *x = sg_embedding_forward(t, e, ids, B, T);
    return sg_add(t, x, sg_sinusoidal_positions(t, sg_tensor_dtype(e->weight), T, d));
}

sg_tensor *sg_transformer_s2s_encode(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len,
                                     int B, int S, sg_tensor **mask, sg_rng *dropout)
{
    if (!sg_nn_ready(t, m && src ? m : NULL, "transformer_s2s_encode: the model or src"))
        return NULL;
    sg_tensor *keep = NULL;
    if (src_len) {
        keep = sg_zeros(t, sg_tensor_dtype(m->head.weight), 2, (int[]){B, S});
        for (int b = 0; keep && b < B; b++)
            for (int j = 0; j < src_len[b] && j < S; j++)
                sg_tensor_set(keep, (size_t)(b * S + j), 1.0);
    }
    if (mask)
        *mask = keep;
    sg_tensor *x = embed(t, &m->src_emb, src, B, S, m->o.d_model);
    for (int k = 0; k < m->layers; k++)
        x = sg_tlayer_encode(t, &m->enc[k], x, &(sg_attn_masks){.key_keep = keep}, dropout);
    return m->o.norm_first ? sg_layer_norm(t, x, m->norm_w[0], m->norm_b[0], m->o.eps) : x;
}

sg_tensor *sg_transformer_s2s_decode(sg_tape *t, const sg_transformer_s2s *m, sg_tensor *memory, sg_tensor *mask,
                                     const int *tgt_in, int B, int T, sg_rng *dropout)
{
    if (!sg_nn_ready(t, m && tgt_in ? m : NULL, "transformer_s2s_decode: the model or tgt_in"))
        return NULL;
    sg_tensor *x = embed(t, &m->tgt_emb, tgt_in, B, T, m->o.d_model);
    for (int k = 0; k < m->layers; k++)
        x = sg_tlayer_decode(t, &m->dec[k], x, memory, NULL, &(sg_attn_masks){.key_keep = mask}, dropout);
    if (m->o.norm_first)
        x = sg_layer_norm(t, x, m->norm_w[1], m->norm_b[1], m->o.eps);
    return sg_linear_forward(t, &m->head, x);
}

sg_tensor *sg_transformer_s2s_loss(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len,
                                   int B, int S, const int *tgt_in, const int *tgt_out, int T, sg_rng *dropout)
{
    if (!sg_nn_ready(t, m && tgt_out ? m : NULL, "transformer_s2s_loss: the model or tgt_out"))
        return NULL;
    sg_tensor *mask;
    sg_tensor *mem = sg_transformer_s2s_encode(t, m, src, src_len, B, S, &mask, dropout);
    return sg_cross_entropy(t, sg_transformer_s2s_decode(t, m, mem, mask, tgt_in, B, T, dropout), tgt_out, NULL);
}
