/*
 * broadcast.c - NumPy broadcasting for ops with two operands. Shapes align on
 * the right; each dimension pair must be equal or contain a 1. The strides
 * from sg_bcast_init() are 0 along stretched dimensions, so a gradient
 * accumulated through them (+=) is summed over the stretch, as it must be.
 */
#include "internal.h"

bool sg_broadcast_shape(sg_tape *t, const char *op, const sg_tensor *a, const sg_tensor *b,
                        int *ndim, int *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < n; k++) {
        int da = k < n - a->ndim ? 1 : a->shape[k - (n - a->ndim)];
        int db = k < n - b->ndim ? 1 : b->shape[k - (n - b->ndim)];
        if (da != db && da != 1 && db != 1) {
            char sa[48], sb[48];
            sg_fail(t, SG_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast",
                    op, sg_shape_str(a, sa), sg_shape_str(b, sb));
            return false;
        }
        shape[k] = da > db ? da : db;
    }
    *ndim = n;
    return true;
}

static void strides(const sg_tensor *x, const int *out4, size_t *s)
{
    int x4[SG_MAX_DIMS];
    for (int k = 0; k < SG_MAX_DIMS; k++)
        x4[k] = k < SG_MAX_DIMS - x->ndim ? 1 : x->shape[k - (SG_MAX_DIMS - x->ndim)];
    size_t step = 1;
    for (int k = SG_MAX_DIMS - 1; k >= 0; k--) {
        s[k] = (x4[k] == 1 && out4[k] != 1) ? 0 : step;
        step *= (size_t)x4[k];
    }
}

void sg_bcast_init(sg_bcast *g, const sg_tensor *out, const sg_tensor *a, const sg_tensor *b)
{
    for (int k = 0; k < SG_MAX_DIMS; k++)
        g->shape[k] = k < SG_MAX_DIMS - out->ndim ? 1 : out->shape[k - (SG_MAX_DIMS - out->ndim)];
    memset(g->sa, 0, sizeof g->sa);
    memset(g->sb, 0, sizeof g->sb);
    if (a)
        strides(a, g->shape, g->sa);
    if (b)
        strides(b, g->shape, g->sb);
}

unsigned char *sg_expand_mask(sg_tape *t, const char *op, const sg_tensor *x, const sg_tensor *mask)
{
    int ndim, shape[SG_MAX_DIMS];
    char sx[48], sm[48];
    sg_synced(mask);                   /* its values are read now, at recording */
    if (!sg_broadcast_shape(t, op, x, mask, &ndim, shape))
        return NULL;
    if (ndim != x->ndim || memcmp(shape, x->shape, (size_t)ndim * sizeof *shape) != 0) {
        sg_fail(t, SG_ERR_SHAPE, "%s: mask %s does not broadcast to input %s",
                op, sg_shape_str(mask, sm), sg_shape_str(x, sx));
        return NULL;
    }
    unsigned char *keep = sg_arena_alloc(t, x->size, false);
    if (!keep)
        return NULL;
    sg_bcast g;
    sg_bcast_init(&g, x, NULL, mask);
    SG_TYPED(mask->dtype, {
        const T *m = mask->data;
        SG_FOR_BCAST(g, keep[o] = m[ib] != 0;);
    });
    return keep;
}
