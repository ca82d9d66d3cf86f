/*
 * gradcheck.c - the tape's gradient against central differences, in f64.
 *
 * L = sum_i v_i y_i with v a fixed, seeded N(0,1) vector (an all-ones v would
 * hide a backward that mixes up elements). The analytic gradient is the
 * tape's dL/dx; the numeric one is the fourth-order central difference
 *   (-L(x + 2h e_k) + 8 L(x + h e_k) - 8 L(x - h e_k) + L(x - 2h e_k)) / 12h
 * whose error is O(h^4): with h = 1e-3 both truncation (~1e-13) and
 * roundoff (~1e-12 |L|) sit far below the 1e-7 tolerance, where the plain
 * two-point formula at h = 1e-6 loses ~1e-9 to roundoff on a summed loss.
 * An element passes if |a - n| / max(|a|, |n|) <= rtol or |a - n| <= atol;
 * the element reported per input is the one closest to failing (or failing
 * worst): the largest min(rel / rtol, abs / atol).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

sg_gradcheck_opts sg_gradcheck_defaults(void)
{
    return (sg_gradcheck_opts){.eps = 1e-3, .rtol = 1e-7, .atol = 1e-9, .max_elems = 4096, .seed = 1};
}

static void fill_defaults(sg_gradcheck_opts *o, const sg_gradcheck_opts *given)
{
    sg_gradcheck_opts d = sg_gradcheck_defaults();
    *o = given ? *given : d;
    if (!(o->eps > 0)) o->eps = d.eps;
    if (!(o->rtol > 0)) o->rtol = d.rtol;
    if (!(o->atol >= 0)) o->atol = d.atol;
    if (!o->max_elems) o->max_elems = d.max_elems;
}

/* How far an element is from failing: <= 1 passes (NaN counts as failing). */
static double badness(const sg_gradcheck_opts *o, double rel, double abserr)
{
    if (isnan(abserr))
        return INFINITY;
    return fmin(rel / o->rtol, o->atol > 0 ? abserr / o->atol : INFINITY);
}

/* Scores one comparison into e, keeping the worst element seen so far. */
static void judge(sg_gradcheck_entry *e, const sg_gradcheck_opts *o, size_t index, double a, double n)
{
    double abserr = fabs(a - n), scale = fmax(fabs(a), fabs(n));
    double rel = scale > 0 ? abserr / scale : 0;
    double bad = badness(o, rel, abserr);

    if (!e->checked || bad > badness(o, e->relerr, e->abserr)) {
        e->index = index, e->analytic = a, e->numeric = n;
        e->relerr = rel, e->abserr = abserr;
    }
    if (bad > 1)
        e->ok = false;
    e->checked++;
}

bool sg_grad_compare(const double *manual, const double *tape, size_t n,
                     const sg_gradcheck_opts *opts, sg_gradcheck_entry *e)
{
    sg_gradcheck_opts o;
    fill_defaults(&o, opts);
    *e = (sg_gradcheck_entry){.ok = true};
    for (size_t i = 0; i < n; i++)
        judge(e, &o, i, tape[i], manual[i]);
    return e->ok;
}

bool sg_grad_compare_tensor(const double *manual, const sg_tensor *x,
                            const sg_gradcheck_opts *opts, sg_gradcheck_entry *e)
{
    sg_gradcheck_opts o;
    fill_defaults(&o, opts);
    *e = (sg_gradcheck_entry){.ok = true};
    for (size_t i = 0; i < x->size; i++)
        judge(e, &o, i, sg_tensor_grad_get(x, i), manual[i]);
    return e->ok;
}

/* One evaluation of L = sum v y on a reset tape, without recording. */
static bool projected(sg_tape *t, sg_gradcheck_fn f, void *ctx, sg_tensor **in, const double *v, double *L)
{
    sg_tape_reset(t);
    bool was = sg_tape_set_grad(t, false);
    sg_tensor *y = f(t, in, ctx);
    sg_tape_set_grad(t, was);
    if (!y)
        return false;
    double s = 0;
    for (size_t i = 0; i < y->size; i++)
        s += v[i] * sg_tensor_get(y, i);
    *L = s;
    return true;
}

/* Records f and runs backward with upstream v; gradients land in the inputs. */
static bool analytic(sg_tape *t, sg_gradcheck_fn f, void *ctx, sg_tensor **in, int n, const double *v)
{
    sg_tape_reset(t);
    for (int k = 0; k < n; k++)
        sg_param_zero_grad(in[k]);
    sg_tensor *y = f(t, in, ctx);
    if (!y)
        return false;
    sg_tensor *dy = sg_tensor_from_f64(t, y->dtype, y->ndim, y->shape, v);
    return dy && sg_backward_with(t, y, dy) == SG_OK;
}

static sg_status refuse(sg_gradcheck_report *r, sg_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static sg_status refuse(sg_gradcheck_report *r, sg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return s;
}

sg_status sg_gradcheck(sg_gradcheck_fn f, void *ctx, sg_tensor **inputs, int n,
                       const sg_gradcheck_opts *opts, sg_gradcheck_report *r)
{
    sg_gradcheck_opts o;
    fill_defaults(&o, opts);
    *r = (sg_gradcheck_report){.n = n};
    if (!f || !inputs || n < 1 || n > SG_GRADCHECK_MAX)
        return refuse(r, SG_ERR_ARG, "gradcheck: needs a function and 1 to 64 inputs (%d)", n);
    for (int k = 0; k < n; k++) {
        if (!inputs[k])
            return refuse(r, SG_ERR_NULL, "gradcheck: input %d is NULL", k + 1);
        if (inputs[k]->tape || !inputs[k]->requires_grad)
            return refuse(r, SG_ERR_ARG, "gradcheck: input %d must be a parameter (sg_param_new)", k + 1);
        if (inputs[k]->dtype != SG_F64)
            return refuse(r, SG_ERR_DTYPE, "gradcheck: input %d is f32; checks run in f64 (sg_params_cast)", k + 1);
    }

    sg_status status = SG_OK;
    sg_tape *t = sg_tape_new();
    double *v = NULL, *g1 = NULL;
    size_t total = 0, ysize;
    if (!t)
        return refuse(r, SG_ERR_NOMEM, "gradcheck: out of memory");

    /* the output's size fixes the projection vector */
    sg_tensor *y = f(t, inputs, ctx);
    if (!y) {
        snprintf(r->msg, sizeof r->msg, "gradcheck: the function failed: %s", sg_tape_errmsg(t));
        status = sg_tape_error(t) ? sg_tape_error(t) : SG_ERR_NULL;
        goto out;
    }
    ysize = y->size;
    for (int k = 0; k < n; k++)
        total += inputs[k]->size;
    v = sg_malloc(ysize * sizeof *v);
    g1 = sg_malloc(total * sizeof *g1);
    if (!v || !g1) {
        status = refuse(r, SG_ERR_NOMEM, "gradcheck: out of memory");
        goto out;
    }
    sg_rng rng;
    sg_rng_seed(&rng, o.seed);
    for (size_t i = 0; i < ysize; i++)
        v[i] = sg_rng_normal(&rng);

    /* analytic gradient, twice: the two must agree exactly */
    for (int pass = 0; pass < 2; pass++) {
        if (!analytic(t, f, ctx, inputs, n, v)) {
            snprintf(r->msg, sizeof r->msg, "gradcheck: backward failed: %s", sg_tape_errmsg(t));
            status = sg_tape_error(t);
            goto out;
        }
        for (int k = 0, off = 0; k < n; off += (int)inputs[k++]->size)
            for (size_t i = 0; i < inputs[k]->size; i++) {
                double g = sg_tensor_grad_get(inputs[k], i);
                if (pass == 0)
                    g1[off + i] = g;
                else
                    r->repeat_diff = fmax(r->repeat_diff, fabs(g - g1[off + i]));
            }
    }

    /* numeric gradient, element by element (or a seeded sample) */
    r->ok = r->repeat_diff == 0;
    for (int k = 0, off = 0; k < n; off += (int)inputs[k++]->size) {
        sg_tensor *x = inputs[k];
        double *xd = x->data;
        sg_gradcheck_entry *e = &r->in[k];
        size_t count = x->size <= o.max_elems ? x->size : o.max_elems;
        *e = (sg_gradcheck_entry){.ok = true};
        for (size_t c = 0; c < count; c++) {
            size_t i = x->size <= o.max_elems ? c : (size_t)sg_rng_int(&rng, (int)x->size);
            static const double step[4] = {2, 1, -1, -2}, weight[4] = {-1, 8, -8, 1};
            double orig = xd[i], L, num = 0;
            bool ok = true;
            for (int s = 0; s < 4 && ok; s++) {
                xd[i] = orig + step[s] * o.eps;
                ok = projected(t, f, ctx, inputs, v, &L);
                num += weight[s] * L;
            }
            xd[i] = orig;
            if (!ok) {
                snprintf(r->msg, sizeof r->msg, "gradcheck: the function failed: %s", sg_tape_errmsg(t));
                status = sg_tape_error(t);
                goto out;
            }
            judge(e, &o, i, g1[off + i], num / (12 * o.eps));
        }
        r->ok = r->ok && e->ok;
    }
    /* leave the analytic gradient in the inputs */
    for (int k = 0, off = 0; k < n; off += (int)inputs[k++]->size)
        if (inputs[k]->grad)
            memcpy(inputs[k]->grad, g1 + off, inputs[k]->size * sizeof *g1);
out:
    sg_free(v);
    sg_free(g1);
    sg_tape_free(t);
    return status;
}

void sg_gradcheck_print(const sg_gradcheck_report *r, const char *const *names, FILE *stream)
{
    FILE *fp = stream ? stream : stdout;
    if (r->msg[0])
        fprintf(fp, "%s\n", r->msg);
    fprintf(fp, "%-16s %8s %8s %14s %14s %10s  %s\n", "input", "checked", "index", "analytic", "numeric",
            "relerr", "verdict");
    for (int k = 0; k < r->n && k < SG_GRADCHECK_MAX; k++) {
        const sg_gradcheck_entry *e = &r->in[k];
        char name[32];
        snprintf(name, sizeof name, "%d", k + 1);
        fprintf(fp, "%-16s %8zu %8zu %14.6e %14.6e %10.2e  %s\n", names ? names[k] : name, e->checked,
                e->index, e->analytic, e->numeric, e->relerr, e->ok ? "ok" : "FAIL");
    }
    fprintf(fp, "backward twice: max difference %.3g (%s)\n", r->repeat_diff, r->repeat_diff == 0 ? "ok" : "FAIL");
}
