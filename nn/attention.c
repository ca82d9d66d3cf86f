/*
 * attention.c - attention composed from ops: Bahdanau (additive) and Luong
 * (dot, general, concat; global or local-monotonic) attention of one query
 * over encoder states, scaled dot-product attention and multi-head attention
 * (torch.nn.MultiheadAttention's layout).
 *   scores e_j -> weights a = softmax(e, mask) -> context c = sum_j a_j h_j
 * The mask leaves keys out (1 = keep); a query with no key left gets zero
 * weights and a zero context (the softmax op's rule), never NaN.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "seqgrad/attention.h"
#include "guard.h"

const char *const sg_attn_kind_names[] = {"dot", "general", "concat", "additive", NULL};

static sg_tensor *add_param(sg_params *ps, const char *prefix, const char *name, sg_tensor *p)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return sg_params_add(ps, full, p);
}

sg_status sg_attention_init(sg_attention *a, sg_params *ps, const char *prefix, sg_attn_kind kind,
                            int query_size, int key_size, int attn_size, sg_dtype dt, sg_rng *rng)
{
    if (!a)
        return sg_params_fail(ps, SG_ERR_NULL, "attention: the module is NULL");
    *a = (sg_attention){.kind = kind, .query_size = query_size, .key_size = key_size, .attn_size = attn_size};
    int Q = query_size, K = key_size, A = attn_size;
    if (!ps)
        return SG_ERR_NULL;
    if (Q < 1 || K < 1 || (A < 1 && (kind == SG_ATTN_ADDITIVE || kind == SG_ATTN_CONCAT)))
        return sg_params_fail(ps, SG_ERR_ARG, "attention: query size %d, key size %d, attention size %d (each at least 1)",
                              Q, K, A);
    switch (kind) {
    case SG_ATTN_DOT:
        return Q == K ? SG_OK : sg_params_fail(ps, SG_ERR_SHAPE, "attention: dot scores need query and key of one "
                                               "size (query %d, key %d)", Q, K);
    case SG_ATTN_GENERAL:
        a->W = add_param(ps, prefix, "W", sg_param_uniform(dt, 2, (int[]){Q, K}, -1 / sqrt(K), 1 / sqrt(K), rng));
        return a->W ? SG_OK : SG_ERR_ARG;
    case SG_ATTN_CONCAT:
        a->W = add_param(ps, prefix, "W", sg_param_uniform(dt, 2, (int[]){A, Q + K}, -1 / sqrt(Q + K), 1 / sqrt(Q + K), rng));
        break;
    case SG_ATTN_ADDITIVE:
        a->W = add_param(ps, prefix, "W", sg_param_uniform(dt, 2, (int[]){A, Q}, -1 / sqrt(Q), 1 / sqrt(Q), rng));
        a->U = add_param(ps, prefix, "U", sg_param_uniform(dt, 2, (int[]){A, K}, -1 / sqrt(K), 1 / sqrt(K), rng));
        if (!a->U)
            return SG_ERR_ARG;
        break;
    default:
        return sg_params_fail(ps, SG_ERR_ARG, "attention: unknown kind %d", (int)kind);
    }
    a->v = add_param(ps, prefix, "v", sg_param_uniform(dt, 1, (int[]){A}, -1 / sqrt(A), 1 / sqrt(A), rng));
    return a->W && a->v ? SG_OK : SG_ERR_ARG;
}

/* additive: U h_j; concat: W_h h_j with W = [W_s | W_h]  -> (B,S,A) */
sg_tensor *sg_attention_keys(sg_tape *t, const sg_attention *a, sg_tensor *keys)
{
    if (!sg_nn_ready(t, a, "attention: the module"))
        return NULL;
    if (a->kind == SG_ATTN_ADDITIVE)
        return sg_matmul_ex(t, keys, a->U, SG_TRANS_B);
    if (a->kind == SG_ATTN_CONCAT)
        return sg_matmul_ex(t, keys, sg_narrow(t, a->W, 1, a->query_size, a->key_size), SG_TRANS_B);
    return NULL;
}

/* e_j for every key: (B,S) */
static sg_tensor *scores(sg_tape *t, const sg_attention *a, sg_tensor *query, sg_tensor *keys, sg_tensor *kp)
{
    int B = sg_tensor_dim(keys, 0), S = sg_tensor_dim(keys, 1), K = sg_tensor_dim(keys, 2);
    if (a->kind == SG_ATTN_DOT || a->kind == SG_ATTN_GENERAL) {
        /* e_j = s . h_j   or   (s^T W) . h_j */
        sg_tensor *q = a->kind == SG_ATTN_GENERAL ? sg_matmul(t, query, a->W) : query;
        sg_tensor *e = sg_bmm(t, keys, sg_reshape(t, q, 3, (int[]){B, K, 1}), 0);
        return sg_reshape(t, e, 2, (int[]){B, S});
    }
    /* e_j = v^T tanh(W_s s + U h_j)   (concat: W_s is W's first Q columns) */
    int A = a->attn_size;
    sg_tensor *Ws = a->kind == SG_ATTN_ADDITIVE ? a->W : sg_narrow(t, a->W, 1, 0, a->query_size);
    sg_tensor *ws = sg_reshape(t, sg_matmul_ex(t, query, Ws, SG_TRANS_B), 3, (int[]){B, 1, A});
    sg_tensor *h = sg_tanh(t, sg_add(t, kp ? kp : sg_attention_keys(t, a, keys), ws));
    sg_tensor *e = sg_matmul(t, h, sg_reshape(t, a->v, 2, (int[]){A, 1}));
    return sg_reshape(t, e, 2, (int[]){B, S});
}

sg_tensor *sg_attention_forward(sg_tape *t, const sg_attention *a, sg_tensor *query, sg_tensor *keys,
                                sg_tensor *keys_proj, sg_tensor *mask, int pos, sg_tensor **weights)
{
    char sq[48], sk[48];
    if (!sg_nn_ready(t, a, "attention: the module") || !sg_nn_ready(t, query && keys ? a : NULL, "attention: query or keys"))
        return NULL;
    if (sg_tensor_ndim(keys) != 3 || sg_tensor_ndim(query) != 2 || sg_tensor_dim(query, 0) != sg_tensor_dim(keys, 0) ||
        sg_tensor_dim(query, 1) != a->query_size || sg_tensor_dim(keys, 2) != a->key_size)
        return sg_fail(t, SG_ERR_SHAPE, "attention: query %s and keys %s, expected (B,%d) and (B,S,%d)",
                       sg_shape_str(query, sq), sg_shape_str(keys, sk), a->query_size, a->key_size);
    int B = sg_tensor_dim(keys, 0), S = sg_tensor_dim(keys, 1);
    if (a->window > 0) {                /* local-monotonic: only |j - pos| <= window */
        sg_tensor *w = sg_zeros(t, sg_tensor_dtype(keys), 2, (int[]){1, S});
        for (int j = 0; w && j < S; j++)
            sg_tensor_set(w, (size_t)j, abs(j - pos) <= a->window ? 1.0 : 0.0);
        mask = mask ? sg_mul(t, mask, w) : w;
    }
    sg_tensor *p = sg_softmax(t, scores(t, a, query, keys, keys_proj), 1, mask);
    if (weights)
        *weights = p;
    /* c = sum_j a_j h_j */
    sg_tensor *c = sg_bmm(t, sg_reshape(t, p, 3, (int[]){B, 1, S}), keys, 0);
    return sg_reshape(t, c, 2, (int[]){B, a->key_size});
}

/* ---- scaled dot-product attention ------------------------------------------ */

sg_tensor *sg_causal_mask(sg_tape *t, sg_dtype dt, int Tq, int Tk)
{
    if (!t || sg_tape_error(t))
        return NULL;
    if (Tq < 1 || Tk < 1)
        return sg_fail(t, SG_ERR_ARG, "causal_mask: %d queries and %d keys (each at least 1)", Tq, Tk);
    sg_tensor *m = sg_zeros(t, dt, 2, (int[]){Tq, Tk});
    for (int i = 0; m && i < Tq; i++)
        for (int j = 0; j < Tk; j++)
            sg_tensor_set(m, (size_t)(i * Tk + j), j <= i + (Tk - Tq) ? 1.0 : 0.0);
    return m;
}

/* softmax(Q K^T / sqrt(d) + bias, keep) V */
sg_tensor *sg_sdpa_ex(sg_tape *t, sg_tensor *q, sg_tensor *k, sg_tensor *v, sg_tensor *keep, sg_tensor *bias,
                      sg_tensor **weights)
{
    if (!q)
        return t && !sg_tape_error(t) ? sg_fail(t, SG_ERR_NULL, "sdpa: q is NULL") : NULL;
    int n = sg_tensor_ndim(q), d = sg_tensor_dim(q, -1);
    sg_tensor *s = sg_bmm_scaled(t, q, k, SG_TRANS_B, 1 / sqrt((double)d));
    if (bias)
        s = sg_add(t, s, bias);
    sg_tensor *p = sg_softmax(t, s, n - 1, keep);
    if (weights)
        *weights = p;
    return sg_bmm(t, p, v, 0);
}

sg_tensor *sg_sdpa(sg_tape *t, sg_tensor *q, sg_tensor *k, sg_tensor *v, sg_tensor *mask, sg_tensor **weights)
{
    return sg_sdpa_ex(t, q, k, v, mask, NULL, weights);
}

/* ---- multi-head attention -------------------------------------------------- */

sg_status sg_mha_init(sg_mha *m, sg_params *ps, const char *prefix, int embed_dim, int heads, sg_dtype dt, sg_rng *rng)
{
    char name[256];
    int E = embed_dim;
    if (!m)
        return sg_params_fail(ps, SG_ERR_NULL, "mha: the module is NULL");
    if (!ps)
        return SG_ERR_NULL;
    if (E < 1 || heads < 1 || E % heads)
        return sg_params_fail(ps, SG_ERR_ARG, "mha: embed_dim %d is not a positive multiple of %d heads", E, heads);
    *m = (sg_mha){.embed_dim = E, .heads = heads};
    /* as PyTorch: Xavier-uniform in_proj, zero biases */
    double k = sqrt(6.0 / (E + 3 * E));
    m->in_w = add_param(ps, prefix, "in_proj_weight", sg_param_uniform(dt, 2, (int[]){3 * E, E}, -k, k, rng));
    m->in_b = add_param(ps, prefix, "in_proj_bias", sg_param_new(dt, 1, (int[]){3 * E}));
    snprintf(name, sizeof name, "%sout_proj.", prefix ? prefix : "");
    if (!m->in_w || !m->in_b || sg_linear_init(&m->out, ps, name, E, E, true, dt, rng) != SG_OK)
        return SG_ERR_ARG;
    for (int i = 0; i < E; i++)
        sg_tensor_set(m->out.bias, (size_t)i, 0.0);
    return SG_OK;
}

/* (B,T,E) -> (B,h,T,d) */
static sg_tensor *heads(sg_tape *t, const sg_mha *m, sg_tensor *y)
{
    int E = m->embed_dim, h = m->heads, B = sg_tensor_dim(y, 0), T = sg_tensor_dim(y, 1);
    return sg_permute(t, sg_reshape(t, y, 4, (int[]){B, T, h, E / h}), (int[]){0, 2, 1, 3});
}

/* x W_i^T + b_i for block i of in_proj, split into heads */
static sg_tensor *project(sg_tape *t, const sg_mha *m, sg_tensor *x, int i)
{
    int E = m->embed_dim;
    sg_tensor *W = sg_narrow(t, m->in_w, 0, i * E, E), *b = sg_narrow(t, m->in_b, 0, i * E, E);
    return heads(t, m, sg_addmm(t, x, W, b, SG_TRANS_B));
}

/* "(B,T,E)"-style check of a 3-D tensor: dims that must match are given, -1 for any */
static bool is3(const sg_tensor *x, int d0, int d1, int d2)
{
    return sg_tensor_ndim(x) == 3 && (d0 < 0 || sg_tensor_dim(x, 0) == d0) && (d1 < 0 || sg_tensor_dim(x, 1) == d1) &&
           (d2 < 0 || sg_tensor_dim(x, 2) == d2);
}

sg_tensor *sg_mha_forward(sg_tape *t, const sg_mha *m, sg_tensor *query, sg_tensor *key, sg_tensor *value,
                          const sg_attn_masks *masks, sg_tensor **weights)
{
    char s[48], s2[48], s3[48];
    if (!t || sg_tape_error(t))
        return NULL;
    if (!m || !m->in_w)
        return sg_fail(t, SG_ERR_NULL, "mha: the module is NULL or not initialised");
    if (!query || !key || !value)
        return sg_fail(t, SG_ERR_NULL, "mha: query, key or value is NULL");
    int E = m->embed_dim;
    if (!is3(query, -1, -1, E))
        return sg_fail(t, SG_ERR_SHAPE, "mha: query %s, expected (B,T,%d)", sg_shape_str(query, s), E);
    int B = sg_tensor_dim(query, 0), Tq = sg_tensor_dim(query, 1), Tk = sg_tensor_dim(key, 1);
    if (!is3(key, B, -1, E) || !is3(value, B, Tk, E))
        return sg_fail(t, SG_ERR_SHAPE, "mha: key %s and value %s, expected both (%d,S,%d) like the query %s",
                       sg_shape_str(key, s), sg_shape_str(value, s2), B, E, sg_shape_str(query, s3));
    sg_dtype dt = sg_tensor_dtype(m->in_w);
    sg_tensor *const in[3] = {query, key, value};
    for (int i = 0; i < 3; i++)
        if (sg_tensor_dtype(in[i]) != dt)
            return sg_fail(t, SG_ERR_DTYPE, "mha: %s is %s but the parameters are %s",
                           (const char *[]){"query", "key", "value"}[i], sg_dtype_name(sg_tensor_dtype(in[i])),
                           sg_dtype_name(dt));
    sg_attn_masks none = {0};
    const sg_attn_masks *mk = masks ? masks : &none;
    sg_tensor *keep = NULL, *bias = NULL, *am = mk->attn_mask;
    if (mk->key_keep) {                    /* (B,Tk) -> (B,1,1,Tk) */
        if (sg_tensor_ndim(mk->key_keep) != 2 || sg_tensor_dim(mk->key_keep, 0) != B ||
            sg_tensor_dim(mk->key_keep, 1) != Tk)
            return sg_fail(t, SG_ERR_SHAPE, "mha: key mask %s, expected (%d,%d): (B,S), 1 = attend",
                           sg_shape_str(mk->key_keep, s), B, Tk);
        keep = sg_reshape(t, mk->key_keep, 4, (int[]){B, 1, 1, Tk});
    }
    if (am) {                              /* (Tq,Tk), or (B,Tq,Tk) -> (B,1,Tq,Tk) */
        bool two = sg_tensor_ndim(am) == 2 && sg_tensor_dim(am, 0) == Tq && sg_tensor_dim(am, 1) == Tk;
        if (!two && !is3(am, B, Tq, Tk))
            return sg_fail(t, SG_ERR_SHAPE, "mha: attention mask %s, expected (%d,%d) or (%d,%d,%d): (T,S) or (B,T,S)",
                           sg_shape_str(am, s), Tq, Tk, B, Tq, Tk);
        if (!two)
            am = sg_reshape(t, am, 4, (int[]){B, 1, Tq, Tk});
        if (mk->attn_additive)
            bias = am;
        else
            keep = keep ? sg_mul(t, keep, am) : am;
    }
    if (mk->causal) {
        sg_tensor *c = sg_causal_mask(t, dt, Tq, Tk);
        keep = keep ? sg_mul(t, keep, c) : c;
    }
    sg_tensor *q, *k, *v;
    if (query == key && key == value) {    /* self-attention: one GEMM for Q, K and V */
        int E = m->embed_dim;
        sg_tensor *qkv = sg_addmm(t, query, m->in_w, m->in_b, SG_TRANS_B);   /* (B,T,3E) */
        q = heads(t, m, sg_narrow(t, qkv, 2, 0, E));
        k = heads(t, m, sg_narrow(t, qkv, 2, E, E));
        v = heads(t, m, sg_narrow(t, qkv, 2, 2 * E, E));
    } else {
        q = project(t, m, query, 0), k = project(t, m, key, 1), v = project(t, m, value, 2);
    }
    sg_tensor *o = sg_sdpa_ex(t, q, k, v, keep, bias, weights);
    o = sg_reshape(t, sg_permute(t, o, (int[]){0, 2, 1, 3}), 3, (int[]){B, Tq, m->embed_dim});
    return sg_linear_forward(t, &m->out, o);
}
