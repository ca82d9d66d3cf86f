/*
 * init.c - weight initialisation, all drawn from the caller's rng:
 * PyTorch's uniform, Glorot/Xavier, orthogonal (modified Gram-Schmidt on a
 * Gaussian matrix) and identity. Recurrent weights are (G*H, H): each of the
 * G gate blocks of H rows gets its own draw.
 */
#include <math.h>

#include "../core/internal.h"
#include "seqgrad/nn.h"

const char *const sg_init_names[] = {"pytorch", "xavier", "orthogonal", "identity", NULL};
const char *const sg_param_init_names[] = {"uniform", "input", "recurrent", "bias", "xavier",
                                           "orthogonal", "zeros", "ones", "constant", NULL};

void sg_init_uniform(sg_tensor *p, double k, sg_rng *rng)
{
    for (size_t i = 0; i < p->size; i++)
        sg_tensor_set(p, i, k * (2 * sg_rng_uniform(rng) - 1));
}

/* Rows [r0, r0+n) of p (n x cols) become orthonormal rows (n <= cols) or,
 * if n > cols, orthonormal columns; Gaussian first, then Gram-Schmidt. */
static void orthogonal_block(sg_tensor *p, int r0, int n, int cols, sg_rng *rng)
{
    int rows = n <= cols ? n : cols, len = n <= cols ? cols : n;   /* vectors to orthonormalise */
    double *v = sg_malloc((size_t)rows * len * sizeof *v);
    if (!v)
        return;
    for (int i = 0; i < rows * len; i++)
        v[i] = sg_rng_normal(rng);
    for (int i = 0; i < rows; i++) {
        double *a = v + (size_t)i * len;
        for (int j = 0; j < i; j++) {
            const double *b = v + (size_t)j * len;
            double dot = 0;
            for (int k = 0; k < len; k++)
                dot += a[k] * b[k];
            for (int k = 0; k < len; k++)
                a[k] -= dot * b[k];
        }
        double norm = 0;
        for (int k = 0; k < len; k++)
            norm += a[k] * a[k];
        norm = sqrt(norm);
        for (int k = 0; k < len; k++)
            a[k] /= norm;
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++)
            sg_tensor_set(p, (size_t)(r0 + i) * cols + c, n <= cols ? v[(size_t)i * len + c] : v[(size_t)c * len + i]);
    sg_free(v);
}

sg_status sg_init_weight(sg_tensor *p, sg_init how, int block, bool recurrent, sg_rng *rng)
{
    if (!p || p->ndim != 2 || block < 1 || p->shape[0] % block)
        return SG_ERR_SHAPE;
    int rows = p->shape[0], cols = p->shape[1];
    for (int r0 = 0; r0 < rows; r0 += block) {
        double k = 1 / sqrt((double)block);     /* PyTorch: 1/sqrt(hidden) */
        switch (how) {
        case SG_INIT_XAVIER:
            k = sqrt(6.0 / (block + cols));
            break;
        case SG_INIT_ORTHOGONAL:
            if (recurrent) {
                orthogonal_block(p, r0, block, cols, rng);
                continue;
            }
            k = sqrt(6.0 / (block + cols));
            break;
        case SG_INIT_IDENTITY:
            if (recurrent) {
                for (int i = 0; i < block; i++)
                    for (int c = 0; c < cols; c++)
                        sg_tensor_set(p, (size_t)(r0 + i) * cols + c, i == c ? 1.0 : 0.0);
                continue;
            }
            break;
        case SG_INIT_PYTORCH:
            break;
        }
        for (int i = 0; i < block * cols; i++)
            sg_tensor_set(p, (size_t)r0 * cols + i, k * (2 * sg_rng_uniform(rng) - 1));
    }
    return SG_OK;
}
