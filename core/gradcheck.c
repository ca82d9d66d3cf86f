/*
 * gradcheck.c - the tape's gradient against central differences, in f64, and
 * a hand-written gradient against the tape's; the reports of both.
 *
 * L = sum_i v_i y_i with v a fixed, seeded N(0,1) vector (an all-ones v would
 * hide a backward that mixes up elements). The tape gives dL/dx; the numeric
 * derivative is the fourth-order central difference
 *   (-L(x + 2h e_k) + 8 L(x + h e_k) - 8 L(x - h e_k) + L(x - 2h e_k)) / 12h
 * whose error is O(h^4). One step policy for the library and the tool:
 * h = 1e-4 (truncation ~1e-16 f^(5), roundoff ~1e-12 |L|), and an element
 * that fails is measured again at h/10 and counts as failing only if it
 * fails there too: a step that crossed a kink (relu, abs, max, clamp) shows
 * as a numeric value that changes with h, which the report says.
 * An element passes if |a - n| / max(|a|, |n|) <= rtol or |a - n| <= atol;
 * the element reported per tensor is the one closest to failing (or failing
 * worst): the largest min(rel / rtol, abs / atol).
 */
#include <string.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

sg_gradcheck_opts sg_gradcheck_defaults(void)
{
    return (sg_gradcheck_opts){.eps = 1e-4, .rtol = 1e-7, .atol = 1e-9, .max_elems = 4096, .seed = 1};
}

/* NULL options, and a 0 in any field, mean the defaults; a negative or NaN
 * tolerance or step is refused (false), never replaced in silence. */
static bool fill_defaults(sg_gradcheck_opts *o, const sg_gradcheck_opts *given)
{
    sg_gradcheck_opts d = sg_gradcheck_defaults();
    *o = given ? *given : d;
    if (!(o->eps >= 0) || !(o->rtol >= 0) || !(o->atol >= 0))
        return false;
    if (o->eps == 0) o->eps = d.eps;
    if (o->rtol == 0) o->rtol = d.rtol;
    if (!o->max_elems) o->max_elems = d.max_elems;
    return true;
}

/* How far an element is from failing: <= 1 passes (NaN counts as failing). */
static double badness(const sg_gradcheck_opts *o, double rel, double abserr)
{
    if (isnan(abserr))
        return INFINITY;
    return fmin(rel / o->rtol, o->atol > 0 ? abserr / o->atol : INFINITY);
}

typedef struct { double rel, abserr, bad; } verdict;

static verdict measure(const sg_gradcheck_opts *o, double a, double n)
{
    double abserr = fabs(a - n), scale = fmax(fabs(a), fabs(n));
    double rel = scale > 0 ? abserr / scale : 0;
    if (isnan(a) || isnan(n))
        rel = abserr = NAN;
    return (verdict){rel, abserr, badness(o, rel, abserr)};
}

/* Scores one comparison into e, keeping the worst element seen so far. */
static void judge(sg_gradcheck_entry *e, const sg_gradcheck_opts *o, size_t index, double a, double n)
{
    verdict v = measure(o, a, n);

    if (!e->checked || v.bad > badness(o, e->relerr, e->abserr)) {
        e->index = index, e->tape = a, e->other = n;
        e->relerr = v.rel, e->abserr = v.abserr;
        e->decided = v.bad > 1 ? SG_DECIDED_NEITHER : v.rel <= o->rtol ? SG_DECIDED_RTOL : SG_DECIDED_ATOL;
    }
    if (v.bad > 1)
        e->failed++, e->ok = false;
    e->checked++;
}

static bool entry_start(sg_gradcheck_entry *e, int ndim, const int *shape)
{
    *e = (sg_gradcheck_entry){.ok = true, .ndim = ndim};
    if (ndim < 1 || ndim > SG_MAX_DIMS || !shape)
        return false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1)
            return false;
        e->shape[d] = shape[d];
    }
    return true;
}

static size_t shape_size(int ndim, const int *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

/* yours against the tape's values: the array tape, or else x's gradient */
static bool compare(const double *yours, const double *tape, const sg_tensor *x, int ndim, const int *shape,
                    const sg_gradcheck_opts *opts, sg_gradcheck_entry *e)
{
    sg_gradcheck_entry dummy;
    sg_gradcheck_opts o;
    if (!e)
        e = &dummy;
    bool valid = fill_defaults(&o, opts);
    if (!entry_start(e, ndim, shape) || !yours || (!tape && !x) || !valid)
        return e->ok = false;
    for (size_t i = 0, n = shape_size(ndim, shape); i < n; i++)
        judge(e, &o, i, tape ? tape[i] : sg_tensor_grad_get(x, i), yours[i]);
    return e->ok;
}

bool sg_grad_compare(const double *yours, const double *tape, int ndim, const int *shape,
                     const sg_gradcheck_opts *opts, sg_gradcheck_entry *e)
{
    return compare(yours, tape, NULL, ndim, shape, opts, e);
}

bool sg_grad_compare_tensor(const double *yours, const sg_tensor *x,
                            const sg_gradcheck_opts *opts, sg_gradcheck_entry *e)
{
    return compare(yours, NULL, x, x ? x->ndim : 0, x ? x->shape : NULL, opts, e);
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

/* The numeric derivative of element i of x at step h. */
static bool numeric_at(sg_tape *t, sg_gradcheck_fn f, void *ctx, sg_tensor **in, const double *v, sg_tensor *x,
                       size_t i, double h, double *num)
{
    static const double step[4] = {2, 1, -1, -2}, weight[4] = {-1, 8, -8, 1};
    double *xd = x->data, orig = xd[i], L = 0, sum = 0;
    bool ok = true;
    for (int s = 0; s < 4 && ok; s++) {
        xd[i] = orig + step[s] * h;
        ok = projected(t, f, ctx, in, v, &L);
        sum += weight[s] * L;
    }
    xd[i] = orig;
    *num = sum / (12 * h);
    return ok;
}

/* Names the ops with kinks (derivative jumps) that f recorded on t. */
static void find_kinks(const sg_tape *t, char *buf, size_t n)
{
    static const char *kinked[] = {"relu", "leaky_relu", "abs", "clamp", "max"};
    enum { NKINKED = sizeof kinked / sizeof kinked[0] };
    bool seen[NKINKED] = {false};
    buf[0] = '\0';
    for (const sg_tensor *x = t->last; x; x = x->prev)
        for (int k = 0; k < NKINKED; k++)
            if (x->op && !strcmp(x->op->name, kinked[k]))
                seen[k] = true;
    for (int k = 0; k < NKINKED; k++)
        if (seen[k]) {
            size_t len = strlen(buf);
            snprintf(buf + len, n - len, "%s%s", len ? ", " : "", kinked[k]);
        }
}

sg_status sg_gradcheck(sg_gradcheck_fn f, void *ctx, sg_tensor **inputs, int n,
                       const sg_gradcheck_opts *opts, sg_gradcheck_report *r)
{
    sg_gradcheck_opts o;
    sg_gradcheck_report dummy;
    if (!r)
        r = &dummy;
    bool valid = fill_defaults(&o, opts);
    *r = (sg_gradcheck_report){.n = n, .eps = o.eps, .rtol = o.rtol, .atol = o.atol};
    if (!valid)
        return refuse(r, SG_ERR_ARG, "gradcheck: eps %g, rtol %g, atol %g: each must be >= 0 (0: the default)", o.eps,
                      o.rtol, o.atol);
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
    find_kinks(t, r->kinks, sizeof r->kinks);
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

    /* the tape's gradient, twice: the two must agree exactly; the second
     * with gradients not kept, where loops give back their steps' data */
    for (int pass = 0; pass < 2; pass++) {
        sg_tape_keep_grads(t, pass == 0);
        if (!analytic(t, f, ctx, inputs, n, v)) {
            snprintf(r->msg, sizeof r->msg, "gradcheck: backward failed: %s", sg_tape_errmsg(t));
            status = sg_tape_error(t);
            goto out;
        }
        for (size_t k = 0, off = 0; k < (size_t)n; off += inputs[k++]->size)
            for (size_t i = 0; i < inputs[k]->size; i++) {
                double g = sg_tensor_grad_get(inputs[k], i);
                if (pass == 0)
                    g1[off + i] = g;
                else
                    r->repeat_diff = fmax(r->repeat_diff, fabs(g - g1[off + i]));
            }
    }
    r->repeat_checked = true;
    sg_tape_keep_grads(t, true);

    /* numeric gradient, element by element (or a seeded sample); a failure
     * at h is measured again at h/10 before it counts */
    r->ok = r->repeat_diff == 0;
    for (size_t k = 0, off = 0; k < (size_t)n; off += inputs[k++]->size) {
        sg_tensor *x = inputs[k];
        sg_gradcheck_entry *e = &r->in[k];
        size_t count = x->size <= o.max_elems ? x->size : o.max_elems;
        entry_start(e, x->ndim, x->shape);
        for (size_t c = 0; c < count; c++) {
            size_t i = x->size <= o.max_elems ? c : (size_t)sg_rng_int(&rng, (int)x->size);
            double num, small;
            bool ran = numeric_at(t, f, ctx, inputs, v, x, i, o.eps, &num);
            if (ran && measure(&o, g1[off + i], num).bad > 1) {
                ran = numeric_at(t, f, ctx, inputs, v, x, i, o.eps / 10, &small);
                if (ran && measure(&o, g1[off + i], small).bad <= 1)
                    num = small;                       /* the first step crossed something */
                else if (ran && measure(&o, num, small).bad > 1 && !e->kink)
                    e->kink = true, e->other_small = small;
            }
            if (!ran) {
                snprintf(r->msg, sizeof r->msg, "gradcheck: the function failed: %s", sg_tape_errmsg(t));
                status = sg_tape_error(t);
                goto out;
            }
            judge(e, &o, i, g1[off + i], num);
        }
        r->ok = r->ok && e->ok;
    }
    /* leave the tape's gradient in the inputs */
    for (size_t k = 0, off = 0; k < (size_t)n; off += inputs[k++]->size)
        if (inputs[k]->grad)
            memcpy(inputs[k]->grad, g1 + off, inputs[k]->size * sizeof *g1);
out:
    sg_free(v);
    sg_free(g1);
    sg_tape_free(t);
    return status;
}

/* ---- reports ---------------------------------------------------------------- */

char *sg_index_str(char *buf, size_t n, int ndim, const int *shape, size_t index, const char *axes)
{
    int idx[SG_MAX_DIMS] = {0};
    size_t len = 0;
    if (!buf || !n)
        return buf;
    buf[0] = '\0';
    if (!shape || ndim < 1 || ndim > SG_MAX_DIMS) {
        snprintf(buf, n, "[%zu]", index);
        return buf;
    }
    for (int d = ndim - 1; d >= 0; d--) {
        size_t dim = shape[d] > 0 ? (size_t)shape[d] : 1;
        idx[d] = (int)(index % dim);
        index /= dim;
    }
    const char *a = axes;
    for (int d = 0; d < ndim && len < n; d++) {
        char name[16] = "";
        if (a && *a) {                                  /* the next comma-separated name */
            size_t w = strcspn(a, ",");
            snprintf(name, sizeof name, "%.*s=", (int)(w < 14 ? w : 14), a);
            a += w + (a[w] == ',');
        }
        len += (size_t)snprintf(buf + len, n - len, "%s%s%d", d ? (axes ? ", " : ",") : "[", name, idx[d]);
    }
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

static const char *decided_str(sg_decided d)
{
    return d == SG_DECIDED_RTOL ? "rtol" : d == SG_DECIDED_ATOL ? "atol" : "neither";
}

static void shape_of(const sg_gradcheck_entry *e, char *buf, size_t n)
{
    size_t len = 0;
    for (int d = 0; d < e->ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%d", d ? "," : "(", e->shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, e->ndim ? ")" : "()");
}

static void entry_line(FILE *fp, int width, const char *name, const sg_gradcheck_entry *e, const char *axes)
{
    char shape[48], at[96], failed[32];
    shape_of(e, shape, sizeof shape);
    sg_index_str(at, sizeof at, e->ndim, e->shape, e->index, axes);
    snprintf(failed, sizeof failed, e->failed ? "%zu (%.0f%%)" : "0",
             e->failed, e->checked ? 100.0 * (double)e->failed / (double)e->checked : 0.0);
    fprintf(fp, "%-*s %-12s %7zu %10s  %-16s %14.6e %14.6e %9.2e  %-8s %s\n", width, name, shape, e->checked, failed,
            e->checked ? at : "-", e->tape, e->other, e->relerr, decided_str(e->decided), e->ok ? "ok" : "FAIL");
}

static void header_line(FILE *fp, int width, const char *first, const char *other)
{
    fprintf(fp, "%-*s %-12s %7s %10s  %-16s %14s %14s %9s  %-8s %s\n", width, first, "shape", "checked", "failed",
            "worst at", "tape", other, "relerr", "decided", "verdict");
}

void sg_gradcheck_print(const sg_gradcheck_report *r, const char *const *names, FILE *stream)
{
    FILE *fp = stream ? stream : stdout;
    if (!r)
        return;
    if (r->msg[0])
        fprintf(fp, "%s\n", r->msg);
    int n = r->n < 0 ? 0 : r->n > SG_GRADCHECK_MAX ? SG_GRADCHECK_MAX : r->n, width = 12;
    char label[SG_GRADCHECK_MAX][16];
    for (int k = 0; k < n; k++) {
        snprintf(label[k], sizeof label[k], "input %d", k + 1);
        const char *name = names && names[k] ? names[k] : label[k];
        width = (int)strlen(name) > width ? (int)strlen(name) : width;
    }
    fprintf(fp, "tape against 4th-order central differences at h = %.0e (a failure is measured again at h = %.0e); "
            "an element passes if relerr <= %.0e (rtol) or |tape - numeric| <= %.0e (atol)\n",
            r->eps, r->eps / 10, r->rtol, r->atol);
    header_line(fp, width, "input", "numeric");
    for (int k = 0; k < n; k++)
        entry_line(fp, width, names && names[k] ? names[k] : label[k], &r->in[k], NULL);
    for (int k = 0; k < n; k++) {
        const sg_gradcheck_entry *e = &r->in[k];
        if (e->ok || !e->kink)
            continue;
        fprintf(fp, "note: %s: the numeric derivative changes with the step (%.6e at h, %.6e at h/10): the function "
                "is not smooth near this point%s%s%s; a failure there may be the step crossing a kink, not a wrong "
                "gradient: move the inputs away from it\n",
                names && names[k] ? names[k] : label[k], e->other, e->other_small,
                r->kinks[0] ? " (it has " : "", r->kinks, r->kinks[0] ? ")" : "");
    }
    if (r->repeat_checked)
        fprintf(fp, "backward twice: max difference %.3g (%s)\n", r->repeat_diff,
                r->repeat_diff == 0 ? "ok" : "FAIL: backward is not deterministic");
}

void sg_grad_compare_header(FILE *stream)
{
    header_line(stream ? stream : stdout, 12, "what", "yours");
}

void sg_grad_compare_print(const char *name, const sg_gradcheck_entry *e, const char *axes, FILE *stream)
{
    if (e)
        entry_line(stream ? stream : stdout, 12, name ? name : "", e, axes);
}

int sg_grad_compare_steps_print(const char *name, const sg_gradcheck_entry *e, int T, int first,
                                const char *axes, FILE *stream)
{
    FILE *fp = stream ? stream : stdout;
    int bad = 0, worst = -1;
    char label[64], list[160] = "", at[96];
    size_t len = 0;
    if (!e || T < 1)
        return 0;
    sg_gradcheck_opts o = sg_gradcheck_defaults();
    for (int k = 0; k < T; k++) {
        snprintf(label, sizeof label, "%s[t=%d]", name ? name : "", first + k);
        entry_line(fp, 12, label, &e[k], axes);
        if (!e[k].ok) {
            if (len < sizeof list - 16)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", bad ? ", " : "", first + k);
            else if (len < sizeof list - 4)
                len += (size_t)snprintf(list + len, sizeof list - len, ", ...");
            bad++;
        }
        if (worst < 0 || badness(&o, e[k].relerr, e[k].abserr) > badness(&o, e[worst].relerr, e[worst].abserr))
            worst = k;
    }
    sg_index_str(at, sizeof at, e[worst].ndim, e[worst].shape, e[worst].index, axes);
    if (bad)
        fprintf(fp, "%s: %d of %d steps fail (t = %s); the worst is t = %d, %s: tape %.6e, yours %.6e\n",
                name ? name : "", bad, T, list, first + worst, at, e[worst].tape, e[worst].other);
    else
        fprintf(fp, "%s: all %d steps agree (worst relerr %.2e at t = %d)\n", name ? name : "", T, e[worst].relerr,
                first + worst);
    return bad;
}
