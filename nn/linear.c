/*
 * linear.c - y = x W^T + b (torch.nn.Linear's layout, W is (out,in)) and the
 * embedding table lookup. Both are a few op calls; the GEMM takes W
 * transposed by flag, never by copy.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "seqgrad/nn.h"
#include "guard.h"

/* Adds p to ps as prefix+name; NULL (p freed) if the name is taken. */
static sg_tensor *add(sg_params *ps, const char *prefix, const char *name, sg_tensor *p)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return sg_params_add(ps, full, p);
}

sg_status sg_linear_init(sg_linear *l, sg_params *ps, const char *prefix, int in, int out, bool bias,
                         sg_dtype dt, sg_rng *rng)
{
    if (!l)
        return sg_params_fail(ps, SG_ERR_NULL, "linear: the module is NULL");
    *l = (sg_linear){.in = in, .out = out};
    if (!ps)
        return SG_ERR_NULL;
    if (in < 1 || out < 1)
        return sg_params_fail(ps, SG_ERR_ARG, "linear %s: %d inputs, %d outputs (each at least 1)", prefix ? prefix : "",
                              in, out);
    double k = 1 / sqrt((double)in);
    l->weight = add(ps, prefix, "weight", sg_param_uniform(dt, 2, (int[]){out, in}, -k, k, rng));
    if (!l->weight)
        return SG_ERR_ARG;
    if (bias && !(l->bias = add(ps, prefix, "bias", sg_param_uniform(dt, 1, (int[]){out}, -k, k, rng))))
        return SG_ERR_ARG;
    return SG_OK;
}

/* y = x W^T + b: one addmm (the bias is GEMM's C, beta = 1) */
sg_tensor *sg_linear_forward(sg_tape *t, const sg_linear *l, sg_tensor *x)
{
    if (!sg_nn_ready(t, l, "linear: the module"))
        return NULL;
    return l->bias ? sg_addmm(t, x, l->weight, l->bias, SG_TRANS_B) : sg_matmul_ex(t, x, l->weight, SG_TRANS_B);
}

sg_status sg_embedding_init(sg_embedding *e, sg_params *ps, const char *prefix, int n, int dim,
                            sg_dtype dt, sg_rng *rng)
{
    if (!e)
        return sg_params_fail(ps, SG_ERR_NULL, "embedding: the module is NULL");
    *e = (sg_embedding){.n = n, .dim = dim};
    if (!ps)
        return SG_ERR_NULL;
    if (n < 1 || dim < 1)
        return sg_params_fail(ps, SG_ERR_ARG, "embedding %s: %d rows of size %d (each at least 1)",
                              prefix ? prefix : "", n, dim);
    e->weight = add(ps, prefix, "weight", sg_param_randn(dt, 2, (int[]){n, dim}, 1.0, rng));
    return e->weight ? SG_OK : SG_ERR_ARG;
}

/* y[b,t,:] = W[idx[b*T + t], :] */
sg_tensor *sg_embedding_forward(sg_tape *t, const sg_embedding *e, const int *idx, int B, int T)
{
    if (!sg_nn_ready(t, e, "embedding: the module") || !sg_nn_ready(t, idx, "embedding: idx"))
        return NULL;
    if (B < 1 || T < 1 || B > INT_MAX / T)
        return sg_fail(t, SG_ERR_ARG, "embedding: %d x %d ids (each at least 1, the product an int)", B, T);
    sg_tensor *rows = sg_index_select(t, e->weight, 0, idx, B * T);
    return sg_reshape(t, rows, 3, (int[]){B, T, e->dim});
}
