/*
 * seqgrad/attention.h - attention of every classic kind, transformer layers
 * and sequence-to-sequence models, composed from the ops of ops.h (no
 * derivative is written for any of them).
 *
 * Masks are tensors of the data's dtype with 1 = keep, 0 = leave out
 * (PyTorch's boolean key_padding_mask is the opposite: True = leave out).
 * A query whose keys are all masked gets zero attention weights and a zero
 * context, never NaN. Equations, shapes, diagrams: docs/attention.md.
 */
#ifndef SEQGRAD_ATTENTION_H
#define SEQGRAD_ATTENTION_H

#include "seqgrad/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attention over encoder states (nn/attention.c) -------------------- */

typedef enum {
    SG_ATTN_DOT = 0,     /* Luong dot:     e_j = s . h_j                       (Q = K) */
    SG_ATTN_GENERAL,     /* Luong general: e_j = s^T W h_j,  W (Q,K)                   */
    SG_ATTN_CONCAT,      /* Luong concat:  e_j = v^T tanh(W [s; h_j]),  W (A, Q+K)     */
    SG_ATTN_ADDITIVE,    /* Bahdanau:      e_j = v^T tanh(W s + U h_j),  W (A,Q), U (A,K) */
} sg_attn_kind;
extern const char *const sg_attn_kind_names[];   /* "dot", "general", "concat", "additive" */

typedef struct {
    sg_attn_kind kind;
    int query_size, key_size, attn_size;
    int window;                  /* > 0: local-monotonic, keys |j - pos| <= window only */
    sg_tensor *W, *U, *v;        /* as the kind needs; owned by the sg_params */
} sg_attention;

/* Creates the kind's parameters <prefix>W, <prefix>U, <prefix>v. attn_size
 * is used by concat and additive. */
sg_status sg_attention_init(sg_attention *a, sg_params *ps, const char *prefix, sg_attn_kind kind,
                            int query_size, int key_size, int attn_size, sg_dtype dt, sg_rng *rng);
/* U h_j for every key, (B,S,A): additive attention's key projection, which
 * does not depend on the query; compute it once per source sequence and
 * pass it to every step. NULL for the other kinds. */
sg_tensor *sg_attention_keys(sg_tape *t, const sg_attention *a, sg_tensor *keys);
/* One query against all keys.
 *   query (B,Q), keys (B,S,K), keys_proj from sg_attention_keys (or NULL: made here),
 *   mask (B,S) or NULL, pos: the query's position (local-monotonic only).
 * Returns the context sum_j a_j h_j (B,K); *weights (if not NULL) gets a (B,S). */
sg_tensor *sg_attention_forward(sg_tape *t, const sg_attention *a, sg_tensor *query, sg_tensor *keys,
                                sg_tensor *keys_proj, sg_tensor *mask, int pos, sg_tensor **weights);

/* ---- scaled dot-product and multi-head attention ------------------------ */

/* A (Tq,Tk) mask with 1 where key j <= query i + (Tk - Tq): no peeking ahead. */
sg_tensor *sg_causal_mask(sg_tape *t, sg_dtype dt, int Tq, int Tk);
/* softmax(Q K^T / sqrt(d) masked) V over the last two axes:
 *   Q (...,Tq,d), K (...,Tk,d), V (...,Tk,dv); 3-D or 4-D (B, heads, T, d)
 *   mask: NULL or broadcastable to (...,Tq,Tk), 1 = keep.
 * Returns (...,Tq,dv); *weights (if not NULL) gets the (...,Tq,Tk) weights. */
sg_tensor *sg_sdpa(sg_tape *t, sg_tensor *q, sg_tensor *k, sg_tensor *v, sg_tensor *mask, sg_tensor **weights);
/* The same with bias (NULL, or broadcastable to (...,Tq,Tk)) added to the
 * scaled scores before the masked softmax. */
sg_tensor *sg_sdpa_ex(sg_tape *t, sg_tensor *q, sg_tensor *k, sg_tensor *v, sg_tensor *keep, sg_tensor *bias,
                      sg_tensor **weights);

/* The masks of one attention call; NULL (or a zeroed struct) means none.
 *   key_keep   (B,S): 1 = attend to key j, 0 = padding. PyTorch's
 *              key_padding_mask is the opposite (True = ignore): pass 1 - it.
 *   attn_mask  (T,S), or (B,T,S) for one per sequence:
 *              attn_additive false: a keep-mask, 1 = query i may attend to
 *              key j. PyTorch's boolean attn_mask is the opposite (True =
 *              not allowed): pass 1 - it.
 *              attn_additive true: added to the scores before softmax, as
 *              PyTorch's float attn_mask (-inf, or a large negative value,
 *              forbids; a row that forbids every key gives NaN, as there).
 *   causal     query i attends to keys j <= i + (S - T): PyTorch's is_causal.
 * Masks combine: a key is attended only if every mask allows it. A query
 * with no key left (keep-masks) gets zero weights and output, never NaN. */
typedef struct {
    sg_tensor *key_keep;
    sg_tensor *attn_mask;
    bool attn_additive;
    bool causal;
} sg_attn_masks;

/* torch.nn.MultiheadAttention (batch_first), names and layout included:
 * <prefix>in_proj_weight (3E,E), in_proj_bias (3E), out_proj.weight (E,E), out_proj.bias (E). */
typedef struct {
    int embed_dim, heads;
    sg_tensor *in_w, *in_b;
    sg_linear out;
} sg_mha;

sg_status sg_mha_init(sg_mha *m, sg_params *ps, const char *prefix, int embed_dim, int heads, sg_dtype dt,
                      sg_rng *rng);
/* query (B,Tq,E), key and value (B,Tk,E) of the parameters' dtype; masks
 * NULL or as sg_attn_masks says, every shape checked. Returns (B,Tq,E);
 * *weights (if not NULL) gets the per-head weights (B,heads,Tq,Tk). A tape
 * already in error returns NULL at once. */
sg_tensor *sg_mha_forward(sg_tape *t, const sg_mha *m, sg_tensor *query, sg_tensor *key, sg_tensor *value,
                          const sg_attn_masks *masks, sg_tensor **weights);

/* ---- transformer layers (nn/transformer.c) ------------------------------ */

typedef struct {
    int d_model, heads, d_ff;
    bool norm_first;         /* pre-norm; false: post-norm (PyTorch's default) */
    bool gelu;               /* activation of the feed-forward; false: relu */
    double dropout;          /* applied where PyTorch applies it, if given an rng */
    double eps;              /* layer norm; default 1e-5 */
} sg_transformer_opts;

sg_transformer_opts sg_transformer_defaults(int d_model, int heads);   /* d_ff = 4 d_model */

/* torch.nn.TransformerEncoderLayer / DecoderLayer, same parameter names
 * (self_attn.*, multihead_attn.*, linear1/2.*, norm1/2/3.*) after prefix. */
typedef struct {
    sg_transformer_opts o;
    sg_mha self_attn, cross_attn;          /* cross only in decoder layers */
    sg_linear linear1, linear2;
    sg_tensor *norm_w[3], *norm_b[3];
    bool decoder;
} sg_tlayer;

sg_status sg_tlayer_init(sg_tlayer *l, sg_params *ps, const char *prefix, bool decoder,
                         const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng);
/* Encoder layer: x (B,T,d); masks of its self-attention (NULL: none;
 * .causal for a decoder-only LM).
 *   post-norm: x = LN1(x + SA(x));    x = LN2(x + FF(x))
 *   pre-norm:  x = x + SA(LN1(x));    x = x + FF(LN2(x))                  */
sg_tensor *sg_tlayer_encode(sg_tape *t, const sg_tlayer *l, sg_tensor *x, const sg_attn_masks *masks,
                            sg_rng *dropout);
/* Decoder layer: x (B,T,d) attends to itself (always causal; tgt_masks may
 * add a key mask or an attn_mask (T,T)) and to memory (B,S,d), the
 * encoder's output, which must be given (memory_masks: its key mask, or an
 * attn_mask (T,S)).
 *   post-norm: x = LN1(x + SA(x)); x = LN2(x + CA(x, m)); x = LN3(x + FF(x)) */
sg_tensor *sg_tlayer_decode(sg_tape *t, const sg_tlayer *l, sg_tensor *x, sg_tensor *memory,
                            const sg_attn_masks *tgt_masks, const sg_attn_masks *memory_masks, sg_rng *dropout);

/* Position encodings added to (B,T,d) embeddings:
 * sinusoidal PE[p,2i] = sin(p / 10000^(2i/d)), PE[p,2i+1] = cos(same). */
sg_tensor *sg_sinusoidal_positions(sg_tape *t, sg_dtype dt, int T, int d);   /* (T,d) */

#define SG_MAX_TLAYERS 12

/* A decoder-only (GPT-style) language model: token embedding (+ sinusoidal
 * or learned positions), N encoder layers with a causal mask, a final layer
 * norm when pre-norm, and a linear head to the vocabulary. */
typedef struct {
    int vocab, max_len, layers;
    bool learned_positions;
    sg_embedding tok;
    sg_tensor *pos;                 /* (max_len, d) when learned */
    sg_tlayer layer[SG_MAX_TLAYERS];
    sg_tensor *norm_w, *norm_b;     /* final norm (pre-norm only) */
    sg_linear head;
    sg_transformer_opts o;
} sg_transformer_lm;

sg_status sg_transformer_lm_init(sg_transformer_lm *m, sg_params *ps, int vocab, int max_len, int layers,
                                 bool learned_positions, const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng);
/* ids (B*T) -> logits (B,T,vocab); T <= max_len. */
sg_tensor *sg_transformer_lm_forward(sg_tape *t, const sg_transformer_lm *m, const int *ids, int B, int T,
                                     sg_rng *dropout);

/* ---- sequence to sequence (nn/seq2seq.c) ------------------------------- */

/* An RNN encoder (any cell, optionally bidirectional) and an RNN decoder
 * with attention (Bahdanau's order: attend with s_{t-1}, then step):
 *   c_t = attention(s_{t-1}, h_1..h_S)
 *   s_t = cell([emb(y_{t-1}); c_t], s_{t-1})
 *   z_t = W_o [s_t; c_t] + b_o                      logits over the target vocabulary
 * s_0 = tanh(W_b [h_fwd_last; h_bwd_first] + b_b). */
typedef struct {
    int src_vocab, tgt_vocab, emb, hidden;
    sg_embedding src_emb, tgt_emb;
    sg_rnn encoder;
    sg_cell decoder;
    sg_attention attn;
    sg_linear bridge, out;
} sg_seq2seq;

typedef struct {
    const sg_cell_def *cell;     /* encoder and decoder cell; default GRU (classic) */
    bool bidirectional;          /* encoder */
    sg_attn_kind attention;      /* default additive */
    int attn_size;               /* default hidden */
} sg_seq2seq_opts;

sg_seq2seq_opts sg_seq2seq_defaults(void);
sg_status sg_seq2seq_init(sg_seq2seq *m, sg_params *ps, int src_vocab, int tgt_vocab, int emb, int hidden,
                          const sg_seq2seq_opts *o, sg_dtype dt, sg_rng *rng);

/* The encoder's output, kept for the decoder's steps. */
typedef struct {
    sg_tensor *keys, *keys_proj, *mask;   /* (B,S,dirs*H), (B,S,A), (B,S) */
    sg_tensor *state[SG_CELL_MAX_STATES]; /* decoder states (B,H) (h, and c for LSTM, ...) */
    int B, S;
    int pos;                              /* decoder steps taken (local attention's position) */
    sg_cell_run run;                      /* the decoder cell, prepared once */
} sg_seq2seq_enc;

/* src (B*S) ids, src_len (B) lengths (NULL: all S). */
sg_status sg_seq2seq_encode(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                            sg_seq2seq_enc *enc);
/* One decoder step from previous tokens prev (B); updates enc->state;
 * returns logits (B,tgt_vocab); *weights gets the attention (B,S). */
sg_tensor *sg_seq2seq_step(sg_tape *t, const sg_seq2seq *m, sg_seq2seq_enc *enc, const int *prev, sg_tensor **weights);
/* Teacher-forced loss over a target batch: tgt_in (B*T) starts with the start
 * token, tgt_out (B*T) is the same shifted left with ignore_index (-100)
 * at padding. With sample_ratio > 0, each step feeds the model's own previous
 * prediction instead of the true token with that probability (scheduled
 * sampling; rng decides). Returns the mean cross-entropy. */
sg_tensor *sg_seq2seq_loss(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                           const int *tgt_in, const int *tgt_out, int T, double sample_ratio, sg_rng *rng);

/* The transformer encoder-decoder (Vaswani et al.): token embeddings plus
 * sinusoidal positions, N encoder layers over the source (padding masked),
 * N decoder layers (causal self-attention, cross-attention to the encoder
 * output), final layer norms when pre-norm, a linear head. Parameter names:
 * encoder.layers.{k}.*, decoder.layers.{k}.* as torch.nn.Transformer. */
typedef struct {
    int src_vocab, tgt_vocab, layers;
    sg_embedding src_emb, tgt_emb;
    sg_tlayer enc[SG_MAX_TLAYERS], dec[SG_MAX_TLAYERS];
    sg_tensor *norm_w[2], *norm_b[2];     /* final encoder / decoder norms (pre-norm) */
    sg_linear head;
    sg_transformer_opts o;
} sg_transformer_s2s;

sg_status sg_transformer_s2s_init(sg_transformer_s2s *m, sg_params *ps, int src_vocab, int tgt_vocab, int layers,
                                  const sg_transformer_opts *o, sg_dtype dt, sg_rng *rng);
/* memory (B,S,d) from src (B*S) ids; *mask (if not NULL) gets the (B,S)
 * keep mask from src_len (NULL lengths: no mask). */
sg_tensor *sg_transformer_s2s_encode(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len,
                                     int B, int S, sg_tensor **mask, sg_rng *dropout);
/* logits (B,T,tgt_vocab) for target inputs tgt_in (B*T), attending to memory. */
sg_tensor *sg_transformer_s2s_decode(sg_tape *t, const sg_transformer_s2s *m, sg_tensor *memory, sg_tensor *mask,
                                     const int *tgt_in, int B, int T, sg_rng *dropout);
/* Mean cross-entropy of tgt_out (B*T; -100 = padding) given tgt_in. */
sg_tensor *sg_transformer_s2s_loss(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len,
                                   int B, int S, const int *tgt_in, const int *tgt_out, int T, sg_rng *dropout);

/* ---- decoding (nn/decode.c) --------------------------------------------- */

typedef struct {
    int beam;                    /* 1 = greedy */
    int max_len;
    int start, end;              /* start token fed first; end token stops a hypothesis (so does start) */
    double length_penalty;       /* score = logp / len^alpha (GNMT-style normalisation); 0 = none */
} sg_decode_opts;

/* Decodes one source sequence (src ids, length S) without recording
 * (no-grad); writes at most max_len tokens (the end token excluded) to out
 * and returns how many, or -1 on error (the tape says why). */
int sg_seq2seq_decode(sg_tape *t, const sg_seq2seq *m, const int *src, int S, const sg_decode_opts *o, int *out);
/* The same for the transformer encoder-decoder (the decoder re-reads each
 * hypothesis' prefix at every step). */
int sg_transformer_s2s_generate(sg_tape *t, const sg_transformer_s2s *m, const int *src, int S,
                                const sg_decode_opts *o, int *out);
/* Greedy decoding of a batch of B sources at once: src (B*S) ids, padded
 * past src_len[b] (NULL: every source is S long, no mask). Each step feeds
 * every sequence its own argmax; out (B * max_len) gets sequence b's tokens
 * at out + b*max_len, out_len[b] how many (the end token excluded). beam and
 * length_penalty of o are not used. The tokens are those of
 * sg_seq2seq_decode with beam 1, one source at a time. No-grad; 0, or -1
 * with the tape's message. */
int sg_seq2seq_greedy(sg_tape *t, const sg_seq2seq *m, const int *src, const int *src_len, int B, int S,
                      const sg_decode_opts *o, int *out, int *out_len);
/* The same for the transformer (the decoder re-reads the batch's prefixes). */
int sg_transformer_s2s_greedy(sg_tape *t, const sg_transformer_s2s *m, const int *src, const int *src_len, int B,
                              int S, const sg_decode_opts *o, int *out, int *out_len);

#ifdef __cplusplus
}
#endif
#endif
