/*
 * unary.c - element-wise functions of one tensor: sigmoid, tanh, relu,
 * leaky_relu, gelu, exp, log, sqrt, square, abs, clamp.
 * Each banner gives y = f(x) and dy/dx; forward assigns y, backward adds
 * dy * f'(x) into dx when x has a gradient (assigns it, when dx holds
 * nothing yet: sg_grad_fresh). Kernels are written once for
 * float and double (SG_TYPED + <tgmath.h>).
 */
#include <tgmath.h>

#include "../core/internal.h"
#include "seqgrad/ops.h"

/* Loops shared by every kernel below: X is the input, Y the output,
 * DY / DX the gradients, n the element count. */
#define UNARY_FORWARD(out, EXPR)                                      \
    SG_TYPED((out)->dtype, {                                          \
        const T *X = (out)->src[0]->data;                             \
        T *Y = (out)->data;                                           \
        for (size_t i = 0; i < (out)->size; i++) {                    \
            T x = X[i];                                               \
            Y[i] = (EXPR);                                            \
        }                                                             \
    })

#define UNARY_BACKWARD(out, DERIV)                                    \
    SG_TYPED((out)->dtype, {                                          \
        /* data given back (sg_tape_recycle) by an op that reads only \
         * y: x is bound to y, never used */                          \
        const T *Y = (out)->data;                                     \
        const T *X = (out)->src[0]->data ? (out)->src[0]->data : Y;   \
        const T *DY = (out)->grad;                                    \
        T *DX = (out)->src[0]->grad;                                  \
        if (!DX)                                                      \
            break;                                                    \
        bool fresh = sg_grad_fresh((out)->src[0]);                    \
        for (size_t i = 0; i < (out)->size; i++) {                    \
            T x = X[i], y = Y[i];                                     \
            (void)x, (void)y;                                         \
            DX[i] = (fresh ? 0 : DX[i]) + DY[i] * (DERIV);            \
        }                                                             \
    })

/* ---- sigmoid: y = 1 / (1 + e^-x),  dy/dx = y (1 - y) ------------------------
 * With e = e^-|x|: y = 1/(1+e) for x >= 0, e/(1+e) for x < 0, so no exp
 * ever overflows. f32 uses sg_expf in two passes that both vectorise: the
 * clamp (NaN goes to -87 there), then e and the select, which gives NaN back
 * where x was NaN. */

/* f32 in a function of its own, as tanh_f32 below */
SG_HOT static void sigmoid_f32(const float *X, float *Y, size_t n)
{
    for (size_t i = 0; i < n; i++) {     /* two passes: both vectorise */
        float a = -fabsf(X[i]);
        Y[i] = a >= -87.0f ? a : -87.0f;
    }
    for (size_t i = 0; i < n; i++) {
        float e = sg_expf(Y[i]), s = 1 / (1 + e);
        Y[i] = X[i] >= 0 ? s : X[i] < 0 ? e * s : X[i];
    }
}

static void sigmoid_forward(sg_tensor *out)
{
    if (out->dtype == SG_F32)
        sigmoid_f32(out->src[0]->data, out->data, out->size);
    else
        UNARY_FORWARD(out, x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)));
}

SG_HOT static void sigmoid_backward(sg_tensor *out) { UNARY_BACKWARD(out, y * (1 - y)); }

/* ---- tanh: y = tanh x,  dy/dx = 1 - y^2 ---------------------------------------
 * f32: tanh|x| = (1 - e) / (1 + e) with e = e^(-2|x|) by sg_expf (absolute
 * error ~1e-7; the two passes vectorise, NaN kept as in sigmoid); f64: libm. */

/* f32 in a function of its own: no call in it, so no registers saved or
 * stack realigned around the f64 path's calls to libm (bench_tape) */
SG_HOT static void tanh_f32(const float *X, float *Y, size_t n)
{
    for (size_t i = 0; i < n; i++) {     /* two passes: both vectorise */
        float a = -2 * fabsf(X[i]);
        Y[i] = a >= -87.0f ? a : -87.0f;
    }
    for (size_t i = 0; i < n; i++) {
        float e = sg_expf(Y[i]), t = (1 - e) / (1 + e);
        Y[i] = X[i] < 0 ? -t : X[i] >= 0 ? t : X[i];
    }
}

static void tanh_forward(sg_tensor *out)
{
    if (out->dtype == SG_F32)
        tanh_f32(out->src[0]->data, out->data, out->size);
    else
        UNARY_FORWARD(out, tanh(x));
}
SG_HOT static void tanh_backward(sg_tensor *out) { UNARY_BACKWARD(out, 1 - y * y); }

/* ---- relu: y = max(x, 0),  dy/dx = [x > 0] ------------------------------------ */

SG_HOT static void relu_forward(sg_tensor *out) { UNARY_FORWARD(out, x > 0 ? x : 0); }
SG_HOT static void relu_backward(sg_tensor *out) { UNARY_BACKWARD(out, x > 0 ? 1 : 0); }

/* ---- leaky_relu: y = x > 0 ? x : a x,  dy/dx = x > 0 ? 1 : a (a = farg[0]) ---- */

static void leaky_relu_forward(sg_tensor *out)
{
    double a = out->farg[0];
    UNARY_FORWARD(out, x > 0 ? x : (T)a * x);
}

static void leaky_relu_backward(sg_tensor *out)
{
    double a = out->farg[0];
    UNARY_BACKWARD(out, x > 0 ? 1 : (T)a);
}

/* ---- gelu: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2,
 *            dy/dx = Phi(x) + x phi(x),  phi(x) = e^(-x^2/2) / sqrt(2 pi) ------- */

#define SG_SQRT1_2   0.70710678118654752440
#define SG_INV_SQRT_2PI 0.39894228040143267794

static void gelu_forward(sg_tensor *out)
{
    UNARY_FORWARD(out, (T)0.5 * x * (1 + erf(x * (T)SG_SQRT1_2)));
}

static void gelu_backward(sg_tensor *out)
{
    UNARY_BACKWARD(out, (T)0.5 * (1 + erf(x * (T)SG_SQRT1_2)) + x * (T)SG_INV_SQRT_2PI * exp((T)-0.5 * x * x));
}

/* ---- exp: y = e^x,  dy/dx = y ------------------------------------------------- */

static void exp_forward(sg_tensor *out) { UNARY_FORWARD(out, exp(x)); }
static void exp_backward(sg_tensor *out) { UNARY_BACKWARD(out, y); }

/* ---- log: y = ln x,  dy/dx = 1 / x -------------------------------------------- */

static void log_forward(sg_tensor *out) { UNARY_FORWARD(out, log(x)); }
static void log_backward(sg_tensor *out) { UNARY_BACKWARD(out, 1 / x); }

/* ---- sqrt: y = sqrt x,  dy/dx = 1 / (2 y) ------------------------------------- */

static void sqrt_forward(sg_tensor *out) { UNARY_FORWARD(out, sqrt(x)); }
static void sqrt_backward(sg_tensor *out) { UNARY_BACKWARD(out, 1 / (2 * y)); }

/* ---- square: y = x^2,  dy/dx = 2 x -------------------------------------------- */

static void square_forward(sg_tensor *out) { UNARY_FORWARD(out, x * x); }
static void square_backward(sg_tensor *out) { UNARY_BACKWARD(out, 2 * x); }

/* ---- abs: y = |x|,  dy/dx = sign x (0 at 0, as PyTorch) ----------------------- */

static void abs_forward(sg_tensor *out) { UNARY_FORWARD(out, fabs(x)); }
static void abs_backward(sg_tensor *out) { UNARY_BACKWARD(out, x > 0 ? 1 : x < 0 ? -1 : 0); }

/* ---- clamp: y = min(max(x, lo), hi),  dy/dx = [lo <= x <= hi] (as PyTorch) ---- */

static void clamp_forward(sg_tensor *out)
{
    double lo = out->farg[0], hi = out->farg[1];
    UNARY_FORWARD(out, x < (T)lo ? (T)lo : x > (T)hi ? (T)hi : x);
}

static void clamp_backward(sg_tensor *out)
{
    double lo = out->farg[0], hi = out->farg[1];
    UNARY_BACKWARD(out, x >= (T)lo && x <= (T)hi ? 1 : 0);
}

/* ---- constructors -------------------------------------------------------------- */

enum { SIGMOID, TANH, RELU, LEAKY_RELU, GELU, EXP, LOG, SQRT, SQUARE, ABS, CLAMP, N_UNARY };

static const sg_op unary_ops[] = {
    [SIGMOID]    = {"sigmoid", sigmoid_forward, sigmoid_backward, true, SG_UNREAD(0), SG_ROWS_FLAT},
    [TANH]       = {"tanh", tanh_forward, tanh_backward, true, SG_UNREAD(0), SG_ROWS_FLAT},
    [RELU]       = {"relu", relu_forward, relu_backward, true, 0, SG_ROWS_FLAT},
    [LEAKY_RELU] = {"leaky_relu", leaky_relu_forward, leaky_relu_backward, true, 0, SG_ROWS_FLAT},
    [GELU]       = {"gelu", gelu_forward, gelu_backward, true, 0, SG_ROWS_FLAT},
    [EXP]        = {"exp", exp_forward, exp_backward, true, 0, SG_ROWS_FLAT},
    [LOG]        = {"log", log_forward, log_backward, true, 0, SG_ROWS_FLAT},
    [SQRT]       = {"sqrt", sqrt_forward, sqrt_backward, true, 0, SG_ROWS_FLAT},
    [SQUARE]     = {"square", square_forward, square_backward, true, 0, SG_ROWS_FLAT},
    [ABS]        = {"abs", abs_forward, abs_backward, true, 0, SG_ROWS_FLAT},
    [CLAMP]      = {"clamp", clamp_forward, clamp_backward, true, 0, SG_ROWS_FLAT},
};
_Static_assert(sizeof unary_ops / sizeof unary_ops[0] == N_UNARY, "one descriptor per unary op");

static sg_tensor *unary(sg_tape *t, int op, sg_tensor *x, double f0, double f1)
{
    if (!sg_check_args(t, unary_ops[op].name, 1, x))
        return NULL;
    sg_tensor *out = sg_tensor_alloc(t, x->dtype, x->ndim, x->shape);
    if (!out)
        return NULL;
    out->src[0] = x, out->nsrc = 1;
    out->farg[0] = f0, out->farg[1] = f1;
    return sg_record(t, &unary_ops[op], out);
}

sg_tensor *sg_sigmoid(sg_tape *t, sg_tensor *x) { return unary(t, SIGMOID, x, 0, 0); }
sg_tensor *sg_tanh(sg_tape *t, sg_tensor *x) { return unary(t, TANH, x, 0, 0); }
sg_tensor *sg_relu(sg_tape *t, sg_tensor *x) { return unary(t, RELU, x, 0, 0); }
sg_tensor *sg_leaky_relu(sg_tape *t, sg_tensor *x, double slope) { return unary(t, LEAKY_RELU, x, slope, 0); }
sg_tensor *sg_gelu(sg_tape *t, sg_tensor *x) { return unary(t, GELU, x, 0, 0); }
sg_tensor *sg_exp(sg_tape *t, sg_tensor *x) { return unary(t, EXP, x, 0, 0); }
sg_tensor *sg_log(sg_tape *t, sg_tensor *x) { return unary(t, LOG, x, 0, 0); }
sg_tensor *sg_sqrt(sg_tape *t, sg_tensor *x) { return unary(t, SQRT, x, 0, 0); }
sg_tensor *sg_square(sg_tape *t, sg_tensor *x) { return unary(t, SQUARE, x, 0, 0); }
sg_tensor *sg_abs(sg_tape *t, sg_tensor *x) { return unary(t, ABS, x, 0, 0); }

sg_tensor *sg_clamp(sg_tape *t, sg_tensor *x, double lo, double hi)
{
    if (t && x && lo > hi)
        return sg_fail(t, SG_ERR_ARG, "clamp: lo %g is greater than hi %g", lo, hi);
    return unary(t, CLAMP, x, lo, hi);
}
