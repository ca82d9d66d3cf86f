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

static sg_tensor *add_param(sg_params *ps, const char *prefix, const char *name, sg_tensor *p)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return sg_params_add(ps, full, p);
}

sg_status sg_attention_init(sg_attention *a, sg_params *ps, const char *prefix, sg_attn_kind kind,
                            int query_size, int key_size, int attn_size, sg_dtype dt, sg_rng *rng)
{
    *a = (sg_attention){.kind = kind, .query_size = query_size, .key_size = key_size, .attn_size = attn_size};
    int Q = query_size, K = key_size, A = attn_size;
    switch (kind) {
    case SG_ATTN_DOT:
        return Q == K ? SG_OK : SG_ERR_SHAPE;
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
        return SG_ERR_ARG;
    }
    a->v = add_param(ps, prefix, "v", sg_param_uniform(dt, 1, (int[]){A}, -1 / sqrt(A), 1 / sqrt(A), rng));
    return a->W && a->v ? SG_OK : SG_ERR_ARG;
}

/* additive: U h_j; concat: W_h h_j with W = [W_s | W_h]  -> (B,S,A) */
sg_tensor *sg_attention_keys(sg_tape *t, const sg_attention *a, sg_tensor *keys)
{
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
    if (!t || !query || !keys)
        return t && !sg_tape_error(t) ? sg_fail(t, SG_ERR_NULL, "attention: query or keys is NULL") : NULL;
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
    sg_tensor *m = sg_zeros(t, dt, 2, (int[]){Tq, Tk});
    for (int i = 0; m && i < Tq; i++)
        for (int j = 0; j < Tk; j++)
            sg_tensor_set(m, (size_t)(i * Tk + j), j <= i + (Tk - Tq) ? 1.0 : 0.0);
    return m;
}

/* softmax(Q K^T / sqrt(d), mask) V */
sg_tensor *sg_sdpa(sg_tape *t, sg_tensor *q, sg_tensor *k, sg_tensor *v, sg_tensor *mask, sg_tensor **weights)
{
    if (!q)
        return NULL;
    int n = sg_tensor_ndim(q), d = sg_tensor_dim(q, -1);
    sg_tensor *s = sg_bmm_scaled(t, q, k, SG_TRANS_B, 1 / sqrt((double)d));
    sg_tensor *p = sg_softmax(t, s, n - 1, mask);
    if (weights)
        *weights = p;
    return sg_bmm(t, p, v, 0);
}

/* ---- multi-head attention -------------------------------------------------- */

sg_status sg_mha_init(sg_mha *m, sg_params *ps, const char *prefix, int embed_dim, int heads, sg_dtype dt, sg_rng *rng)
{
    char name[256];
    int E = embed_dim;
    if (heads < 1 || E % heads)
        return SG_ERR_ARG;
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

sg_tensor *sg_mha_forward(sg_tape *t, const sg_mha *m, sg_tensor *query, sg_tensor *key, sg_tensor *value,
                          sg_tensor *key_mask, bool causal, sg_tensor **weights)
{
    char s[48];
    if (!t || !query || !key || !value)
        return t && !sg_tape_error(t) ? sg_fail(t, SG_ERR_NULL, "mha: query, key or value is NULL") : NULL;
    if (sg_tensor_ndim(query) != 3 || sg_tensor_dim(query, 2) != m->embed_dim)
        return sg_fail(t, SG_ERR_SHAPE, "mha: query %s, expected (B,T,%d)", sg_shape_str(query, s), m->embed_dim);
    int B = sg_tensor_dim(query, 0), Tq = sg_tensor_dim(query, 1), Tk = sg_tensor_dim(key, 1);
    sg_tensor *mask = NULL;
    if (key_mask)                          /* (B,Tk) -> (B,1,1,Tk) */
        mask = sg_reshape(t, key_mask, 4, (int[]){B, 1, 1, Tk});
    if (causal) {
        sg_tensor *c = sg_causal_mask(t, sg_tensor_dtype(query), Tq, Tk);
        mask = mask ? sg_mul(t, mask, c) : c;
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
    sg_tensor *o = sg_sdpa(t, q, k, v, mask, weights);
    o = sg_reshape(t, sg_permute(t, o, (int[]){0, 2, 1, 3}), 3, (int[]){B, Tq, m->embed_dim});
    return sg_linear_forward(t, &m->out, o);
}
