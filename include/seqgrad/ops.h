/*
 * seqgrad/ops.h - the differentiable ops. Each records one node on tape t and
 * returns a new tape tensor (owned by the tape), or NULL with the first error
 * recorded on t. Every op takes f32 or f64 and never mixes them. Shapes are
 * row-major; "..." means any leading dimensions (up to 4 in all).
 *
 * Broadcasting (add, sub, mul, div, where, masks) follows NumPy: shapes are
 * aligned on the right, and a dimension of 1 (or a missing one) stretches.
 * The gradient of a broadcast input is summed over the stretched dimensions.
 *
 * Full formulas, derivatives and shapes: docs/ops.md.
 */
#ifndef SEQGRAD_OPS_H
#define SEQGRAD_OPS_H

#include "seqgrad/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- matmul (ops/matmul.c) -------------------------------------------- */

#define SG_TRANS_A 1   /* use A^T */
#define SG_TRANS_B 2   /* use B^T */

sg_tensor *sg_matmul(sg_tape *t, sg_tensor *a, sg_tensor *b);                 /* C = A B: a (...,M,K) or (M,K), b (K,N) -> (...,M,N) */
sg_tensor *sg_matmul_ex(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans);  /* C = op(A) op(B), 2-D a (or (...,K) without SG_TRANS_A), 2-D b */
sg_tensor *sg_bmm(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans);        /* C[i] = op(A[i]) op(B[i]): 3-D or 4-D, same leading dims */
sg_tensor *sg_bmm_scaled(sg_tape *t, sg_tensor *a, sg_tensor *b, int trans, double alpha); /* alpha op(A[i]) op(B[i]): the scale costs nothing */
sg_tensor *sg_addmm(sg_tape *t, sg_tensor *x, sg_tensor *w, sg_tensor *bias, int trans); /* x op(W) + b, b (N) on every row (a linear layer) or b of the product's shape (a cell's gates), in one op */

/* ---- element-wise, broadcasting (ops/elementwise.c) -------------------- */

sg_tensor *sg_add(sg_tape *t, sg_tensor *a, sg_tensor *b);        /* a + b */
sg_tensor *sg_sub(sg_tape *t, sg_tensor *a, sg_tensor *b);        /* a - b */
sg_tensor *sg_mul(sg_tape *t, sg_tensor *a, sg_tensor *b);        /* a * b */
sg_tensor *sg_div(sg_tape *t, sg_tensor *a, sg_tensor *b);        /* a / b */
sg_tensor *sg_neg(sg_tape *t, sg_tensor *x);                      /* -x */
sg_tensor *sg_add_scalar(sg_tape *t, sg_tensor *x, double c);     /* x + c */
sg_tensor *sg_scale(sg_tape *t, sg_tensor *x, double c);          /* c x */
sg_tensor *sg_one_minus(sg_tape *t, sg_tensor *x);                /* 1 - x */
/* a + w (b - a), a, b, w of one shape (no broadcasting): a gated blend in
 * one op, (1 - w) a + w b up to rounding; da = dy (1 - w), db = dy w,
 * dw = dy (b - a). Keeps a, b and w for backward. */
sg_tensor *sg_lerp(sg_tape *t, sg_tensor *a, sg_tensor *b, sg_tensor *w);

/* ---- unary (ops/unary.c) ---------------------------------------------- */

sg_tensor *sg_sigmoid(sg_tape *t, sg_tensor *x);       /* 1/(1+e^-x); y' = y(1-y); no overflow for any x */
sg_tensor *sg_tanh(sg_tape *t, sg_tensor *x);          /* tanh x; y' = 1 - y^2 */
sg_tensor *sg_relu(sg_tape *t, sg_tensor *x);          /* max(x,0); y' = [x>0] */
sg_tensor *sg_leaky_relu(sg_tape *t, sg_tensor *x, double slope); /* x>0 ? x : slope x */
sg_tensor *sg_gelu(sg_tape *t, sg_tensor *x);          /* x Phi(x) (erf form); y' = Phi(x) + x phi(x) */
sg_tensor *sg_exp(sg_tape *t, sg_tensor *x);           /* e^x; y' = y */
sg_tensor *sg_log(sg_tape *t, sg_tensor *x);           /* ln x; y' = 1/x */
sg_tensor *sg_sqrt(sg_tape *t, sg_tensor *x);          /* sqrt x; y' = 1/(2y) */
sg_tensor *sg_square(sg_tape *t, sg_tensor *x);        /* x^2; y' = 2x */
sg_tensor *sg_abs(sg_tape *t, sg_tensor *x);           /* |x|; y' = sign x (0 at 0) */
sg_tensor *sg_clamp(sg_tape *t, sg_tensor *x, double lo, double hi); /* min(max(x,lo),hi); y' = [lo<=x<=hi] */

/* ---- reductions (ops/reduce.c) ----------------------------------------- */
/* Along one axis (negative counts from the end); keepdim leaves a 1 there.
 * Reducing a 1-D tensor without keepdim gives shape (1). */

sg_tensor *sg_sum(sg_tape *t, sg_tensor *x, int axis, bool keepdim);       /* sum_i x_i */
sg_tensor *sg_mean(sg_tape *t, sg_tensor *x, int axis, bool keepdim);      /* sum_i x_i / n */
sg_tensor *sg_max(sg_tape *t, sg_tensor *x, int axis, bool keepdim);       /* max_i x_i; grad to the first argmax */
sg_tensor *sg_logsumexp(sg_tape *t, sg_tensor *x, int axis, bool keepdim); /* log sum_i e^x_i; y' = softmax */
sg_tensor *sg_norm(sg_tape *t, sg_tensor *x, int axis, bool keepdim);      /* sqrt(sum_i x_i^2); y' = x/y (0 if y=0) */
sg_tensor *sg_sum_all(sg_tape *t, sg_tensor *x);                            /* shape (1) */
sg_tensor *sg_mean_all(sg_tape *t, sg_tensor *x);                           /* shape (1) */
sg_tensor *sg_norm_all(sg_tape *t, sg_tensor *x);                           /* Frobenius norm, shape (1) */
/* Indices of the max of sg_max's output along its axis (flat over the
 * output's elements), or NULL if y is not an sg_max output. */
const int *sg_max_argmax(const sg_tensor *y);

/* ---- softmax (ops/softmax.c) ------------------------------------------- */
/* mask: NULL, or a tensor broadcastable to x (same dtype); 0 marks a position
 * to leave out. Masked positions get 0 (in both), and a row whose positions
 * are all masked is all zeros, not NaN. */

sg_tensor *sg_softmax(sg_tape *t, sg_tensor *x, int axis, sg_tensor *mask);     /* e^x_i / sum_j e^x_j */
sg_tensor *sg_log_softmax(sg_tape *t, sg_tensor *x, int axis, sg_tensor *mask); /* x_i - logsumexp_j x_j */

/* ---- losses (ops/loss.c) ------------------------------------------------ */

typedef enum { SG_MEAN = 0, SG_SUM, SG_NONE } sg_reduction;
extern const char *const sg_reduction_names[];   /* "mean", "sum", "none", as PyTorch's reduction= */

typedef struct {
    sg_reduction reduction;  /* default SG_MEAN (over the targets not ignored) */
    int ignore_index;        /* target value that contributes nothing; default -100 */
} sg_loss_opts;

/* Defaults as PyTorch: mean, ignore_index -100. NULL opts means these. */
sg_loss_opts sg_loss_defaults(void);

/* logits (...,C), targets: one int per row (n = size/C) in [0,C) or ignore.
 * loss_r = logsumexp(z_r) - z_r[y_r]; dz = softmax(z) - onehot(y).
 * SG_NONE gives shape (n), 0 for ignored rows. targets are copied. */
sg_tensor *sg_cross_entropy(sg_tape *t, sg_tensor *logits, const int *targets, const sg_loss_opts *o);
/* logp (...,C) of log-probabilities: loss_r = -logp_r[y_r]. */
sg_tensor *sg_nll_loss(sg_tape *t, sg_tensor *logp, const int *targets, const sg_loss_opts *o);
/* (a - b)^2, same shapes; mean over all elements by default. */
sg_tensor *sg_mse_loss(sg_tape *t, sg_tensor *a, sg_tensor *b, sg_reduction r);
/* max(z,0) - z y + log(1 + e^-|z|); same shapes; dz = sigmoid(z) - y. */
sg_tensor *sg_bce_with_logits(sg_tape *t, sg_tensor *logits, sg_tensor *target, sg_reduction r);

/* ---- shape (ops/shape.c) ----------------------------------------------- */

sg_tensor *sg_reshape(sg_tape *t, sg_tensor *x, int ndim, const int *shape);   /* same elements (shared, not copied); one -1 is inferred */
sg_tensor *sg_transpose(sg_tape *t, sg_tensor *x, int a0, int a1);           /* swap two axes (copies) */
sg_tensor *sg_permute(sg_tape *t, sg_tensor *x, const int *perm);            /* y.shape[i] = x.shape[perm[i]] */
sg_tensor *sg_concat(sg_tape *t, sg_tensor *const *xs, int n, int axis);     /* join along axis */
sg_tensor *sg_stack(sg_tape *t, sg_tensor *const *xs, int n, int axis);      /* join along a new axis */
sg_tensor *sg_narrow(sg_tape *t, sg_tensor *x, int axis, int start, int len);/* x[..., start:start+len, ...] */
sg_tensor *sg_select(sg_tape *t, sg_tensor *x, int axis, int index);         /* x[..., index, ...], axis removed */
/* Splits x along axis into n pieces of sizes[i] (summing to the dim); writes
 * the pieces to out[]. Returns SG_OK or the tape's error. Each piece's
 * backward adds into the one gradient of x. */
sg_status  sg_split(sg_tape *t, sg_tensor *x, int axis, const int *sizes, int n, sg_tensor **out);
/* Rows idx[0..n) of x along axis: y.shape[axis] = n. Backward adds into x's
 * gradient, so repeated indices accumulate (embedding lookup). idx copied. */
sg_tensor *sg_index_select(sg_tape *t, sg_tensor *x, int axis, const int *idx, int n);
/* cond ? a : b, element-wise; cond (broadcastable, same dtype) nonzero means a. */
sg_tensor *sg_where(sg_tape *t, sg_tensor *cond, sg_tensor *a, sg_tensor *b);
/* x where mask is 0, value where mask is nonzero (mask broadcastable to x). */
sg_tensor *sg_masked_fill(sg_tape *t, sg_tensor *x, sg_tensor *mask, double value);

/* ---- dropout and normalisation (ops/norm.c) --------------------------- */

/* Inverted dropout: y = x * m / (1-p), m ~ Bernoulli(1-p) drawn from rng when
 * recorded and kept for backward. p in [0,1). p = 0 returns a copy. */
sg_tensor *sg_dropout(sg_tape *t, sg_tensor *x, double p, sg_rng *rng);
/* Layer norm over the last axis: y = (x - mu)/sqrt(var + eps) * gamma + beta,
 * var biased (as PyTorch). gamma, beta: (D) or NULL. */
sg_tensor *sg_layer_norm(sg_tape *t, sg_tensor *x, sg_tensor *gamma, sg_tensor *beta, double eps);

#ifdef __cplusplus
}
#endif
#endif
