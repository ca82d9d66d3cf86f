/*
 * tensor.c - heap tensors, accessors, parameters and the named parameter
 * collection.
 *
 * Heap tensors (tape == NULL) own their data and gradient (malloc'd); a
 * parameter is a heap tensor with requires_grad set, whose gradient is made
 * at the first backward that reaches it and then accumulates until zeroed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

const char *sg_dtype_name(sg_dtype dt) { return dt == SG_F32 ? "f32" : dt == SG_F64 ? "f64" : "invalid dtype"; }

int sg_enum_parse(const char *const *names, const char *text)
{
    for (int k = 0; names && text && names[k]; k++)
        if (strcmp(names[k], text) == 0)
            return k;
    return -1;
}
size_t sg_dtype_size(sg_dtype dt) { return dt == SG_F32 ? sizeof(float) : dt == SG_F64 ? sizeof(double) : 0; }

/* ---- heap tensors ---------------------------------------------------------- */

sg_tensor *sg_tensor_new(sg_dtype dt, int ndim, const int *shape)
{
    if (!shape || ndim < 1 || ndim > SG_MAX_DIMS || (dt != SG_F32 && dt != SG_F64))
        return NULL;
    size_t size = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || size > SIZE_MAX / 8 / (size_t)shape[d])   /* no size whose bytes overflow */
            return NULL;
        size *= (size_t)shape[d];
    }
    sg_tensor *x = sg_calloc(sizeof *x);
    if (!x)
        return NULL;
    x->data = sg_calloc(size * sg_dtype_size(dt));
    if (!x->data) {
        sg_free(x);
        return NULL;
    }
    x->dtype = dt;
    x->ndim = ndim;
    for (int d = 0; d < SG_MAX_DIMS; d++)
        x->shape[d] = d < ndim ? shape[d] : 1;
    x->size = size;
    x->src = x->src_buf;
    return x;
}

void sg_tensor_free(sg_tensor *x)
{
    if (!x || x->tape)
        return;
    sg_free(x->data);
    sg_free(x->grad);
    sg_free(x->name);
    sg_free(x);
}

/* Every accessor is safe on NULL: it reads as an empty tensor. */
sg_dtype sg_tensor_dtype(const sg_tensor *x) { return x ? x->dtype : SG_F32; }
int sg_tensor_ndim(const sg_tensor *x) { return x ? x->ndim : 0; }
size_t sg_tensor_size(const sg_tensor *x) { return x ? x->size : 0; }
void *sg_tensor_data(sg_tensor *x)
{
    sg_synced(x);
    return x ? x->data : NULL;
}
void *sg_tensor_grad(sg_tensor *x) { return x ? x->grad : NULL; }
const char *sg_tensor_name(const sg_tensor *x) { return x && x->name ? x->name : ""; }
bool sg_tensor_requires_grad(const sg_tensor *x) { return x && x->requires_grad; }

const int *sg_tensor_shape(const sg_tensor *x)
{
    static const int none[SG_MAX_DIMS] = {0};
    return x ? x->shape : none;
}

void sg_tensor_set_requires_grad(sg_tensor *x, bool on)
{
    if (x)
        x->requires_grad = on;
}

int sg_tensor_dim(const sg_tensor *x, int axis)
{
    if (!x)
        return 0;
    int a = axis < 0 ? axis + x->ndim : axis;
    return a >= 0 && a < x->ndim ? x->shape[a] : 0;
}

static double get(sg_dtype dt, const void *buf, size_t i)
{
    return dt == SG_F32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

/* Out of range (or NULL, or data given back) reads NaN and writes nothing. */
double sg_tensor_get(const sg_tensor *x, size_t i)
{
    sg_synced(x);
    return x && x->data && i < x->size ? get(x->dtype, x->data, i) : NAN;
}

double sg_tensor_grad_get(const sg_tensor *x, size_t i)
{
    if (!x || i >= x->size)
        return NAN;
    return x->grad ? get(x->dtype, x->grad, i) : 0.0;
}

void sg_tensor_set(sg_tensor *x, size_t i, double v)
{
    sg_synced(x);
    if (!x || !x->data || i >= x->size)
        return;
    if (x->dtype == SG_F32)
        ((float *)x->data)[i] = (float)v;
    else
        ((double *)x->data)[i] = v;
}

void sg_tensor_load(sg_tensor *x, const double *v)
{
    for (size_t i = 0; x && v && i < x->size; i++)
        sg_tensor_set(x, i, v[i]);
}

void sg_tensor_store(const sg_tensor *x, double *v)
{
    for (size_t i = 0; x && v && i < x->size; i++)
        v[i] = sg_tensor_get(x, i);
}

sg_status sg_tensor_copy(sg_tensor *dst, const sg_tensor *src)
{
    if (!dst || !src)
        return SG_ERR_NULL;
    sg_synced(dst), sg_synced(src);
    if (!dst->data || !src->data)
        return SG_ERR_STATE;
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, sizeof dst->shape) != 0)
        return SG_ERR_SHAPE;
    if (dst->dtype == src->dtype)
        memcpy(dst->data, src->data, src->size * sg_dtype_size(src->dtype));
    else
        for (size_t i = 0; i < src->size; i++)
            sg_tensor_set(dst, i, sg_tensor_get(src, i));
    return SG_OK;
}

static void *convert(const void *buf, sg_dtype from, sg_dtype to, size_t n)
{
    void *out = sg_malloc(n * sg_dtype_size(to));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        double v = get(from, buf, i);
        if (to == SG_F32)
            ((float *)out)[i] = (float)v;
        else
            ((double *)out)[i] = v;
    }
    return out;
}

sg_status sg_tensor_cast(sg_tensor *x, sg_dtype dt)
{
    if (!x)
        return SG_ERR_NULL;
    if (x->tape)
        return SG_ERR_STATE;
    if (dt != SG_F32 && dt != SG_F64)
        return SG_ERR_DTYPE;
    if (x->dtype == dt)
        return SG_OK;
    void *d = convert(x->data, x->dtype, dt, x->size);
    void *g = x->grad ? convert(x->grad, x->dtype, dt, x->size) : NULL;
    if (!d || (x->grad && !g)) {
        sg_free(d);
        sg_free(g);
        return SG_ERR_NOMEM;
    }
    sg_free(x->data);
    sg_free(x->grad);
    x->data = d;
    x->grad = g;
    x->dtype = dt;
    return SG_OK;
}

char *sg_shape_str(const sg_tensor *x, char *buf)
{
    if (!buf)
        return NULL;
    if (!x)
        return strcpy(buf, "(NULL)");
    int n = sprintf(buf, "(");
    for (int d = 0; d < x->ndim; d++)
        n += sprintf(buf + n, d ? ",%d" : "%d", x->shape[d]);
    sprintf(buf + n, ")");
    return buf;
}

/* ---- parameters ------------------------------------------------------------ */

sg_tensor *sg_param_new(sg_dtype dt, int ndim, const int *shape)
{
    sg_tensor *p = sg_tensor_new(dt, ndim, shape);
    if (p)
        p->requires_grad = true;
    return p;
}

sg_tensor *sg_param_randn(sg_dtype dt, int ndim, const int *shape, double std, sg_rng *rng)
{
    sg_tensor *p = rng ? sg_param_new(dt, ndim, shape) : NULL;
    if (p)
        for (size_t i = 0; i < p->size; i++)
            sg_tensor_set(p, i, std * sg_rng_normal(rng));
    return p;
}

sg_tensor *sg_param_uniform(sg_dtype dt, int ndim, const int *shape, double lo, double hi, sg_rng *rng)
{
    sg_tensor *p = rng ? sg_param_new(dt, ndim, shape) : NULL;
    if (p)
        for (size_t i = 0; i < p->size; i++)
            sg_tensor_set(p, i, lo + (hi - lo) * sg_rng_uniform(rng));
    return p;
}

void sg_param_zero_grad(sg_tensor *p)
{
    if (p && p->grad)
        memset(p->grad, 0, p->size * sg_dtype_size(p->dtype));
}

struct sg_params {
    sg_tensor **items;
    int n, cap;
    sg_status err;            /* the first error since sg_params_clear_error() */
    char msg[256];
};

sg_status sg_params_fail(sg_params *ps, sg_status err, const char *fmt, ...)
{
    if (!ps)
        return err;
    if (ps->err == SG_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->msg, sizeof ps->msg, fmt, ap);
        va_end(ap);
        ps->err = err;
        if (sg_abort_on_error_wanted()) {
            fprintf(stderr, "seqgrad: %s\n", ps->msg);
            abort();
        }
    }
    return err;
}

sg_status sg_params_error(const sg_params *ps) { return ps ? ps->err : SG_ERR_NULL; }

const char *sg_params_errmsg(const sg_params *ps)
{
    return !ps ? "params: the collection is NULL (sg_params_new failed?)" : ps->msg;
}

void sg_params_clear_error(sg_params *ps)
{
    if (ps)
        ps->err = SG_OK, ps->msg[0] = '\0';
}

sg_params *sg_params_new(void) { return sg_calloc(sizeof(sg_params)); }

void sg_params_free(sg_params *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        sg_tensor_free(ps->items[i]);
    sg_free(ps->items);
    sg_free(ps);
}

sg_tensor *sg_params_add(sg_params *ps, const char *name, sg_tensor *p)
{
    sg_status s = SG_OK;
    if (!ps || !name)
        s = sg_params_fail(ps, SG_ERR_NULL, "params: the %s is NULL", ps ? "name" : "collection");
    else if (!p)                     /* the module checked the shape: a tensor that could not be made */
        s = sg_params_fail(ps, SG_ERR_NOMEM, "params: no tensor for %s (out of memory)", name);
    else if (p->tape)
        s = sg_params_fail(ps, SG_ERR_ARG, "params: %s is a tape tensor; parameters are heap tensors", name);
    else if (sg_params_find(ps, name))
        s = sg_params_fail(ps, SG_ERR_ARG, "params: the name %s is taken", name);
    if (s != SG_OK) {
        sg_tensor_free(p);
        return NULL;
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        sg_tensor **items = realloc(ps->items, (size_t)cap * sizeof *items);
        if (!items) {
            sg_params_fail(ps, SG_ERR_NOMEM, "params: out of memory adding %s", name);
            sg_tensor_free(p);
            return NULL;
        }
        ps->items = items;
        ps->cap = cap;
    }
    size_t len = strlen(name) + 1;
    sg_free(p->name);
    if (!(p->name = sg_malloc(len))) {
        sg_params_fail(ps, SG_ERR_NOMEM, "params: out of memory adding %s", name);
        sg_tensor_free(p);
        return NULL;
    }
    memcpy(p->name, name, len);
    ps->items[ps->n++] = p;
    return p;
}

int sg_params_count(const sg_params *ps) { return ps ? ps->n : 0; }

sg_tensor *sg_params_get(const sg_params *ps, int i)
{
    return ps && i >= 0 && i < ps->n ? ps->items[i] : NULL;
}

const char *sg_params_name(const sg_params *ps, int i)
{
    sg_tensor *p = sg_params_get(ps, i);
    return p ? p->name : NULL;
}

sg_tensor *sg_params_find(const sg_params *ps, const char *name)
{
    for (int i = 0; ps && name && i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0)
            return ps->items[i];
    return NULL;
}

size_t sg_params_numel(const sg_params *ps)
{
    size_t n = 0;
    for (int i = 0; ps && i < ps->n; i++)
        n += ps->items[i]->size;
    return n;
}

void sg_params_zero_grad(sg_params *ps)
{
    for (int i = 0; ps && i < ps->n; i++)
        sg_param_zero_grad(ps->items[i]);
}

sg_status sg_params_cast(sg_params *ps, sg_dtype dt)
{
    if (!ps)
        return SG_ERR_NULL;
    if (dt != SG_F32 && dt != SG_F64)
        return sg_params_fail(ps, SG_ERR_DTYPE, "params_cast: dtype %d is neither SG_F32 nor SG_F64", (int)dt);
    for (int i = 0; i < ps->n; i++) {
        sg_status s = sg_tensor_cast(ps->items[i], dt);
        if (s != SG_OK)
            return sg_params_fail(ps, s, "params_cast: %s: out of memory", ps->items[i]->name);
    }
    return SG_OK;
}
