/*
 * cellexpr.c - cells written as equations, compiled once into a program of
 * op calls. The language (docs/cells.md):
 *
 *   z = x @ weight_ih^T + bias_ih + h @ weight_hh^T + bias_hh
 *   i, f, g, o = split(z, 4)
 *   c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
 *   h' = sigmoid(o) * tanh(c')
 *
 * Values are the input x (B,E), the states (B,H), the parameters (their
 * declared shapes) and numbers. Each equation becomes instructions in SSA
 * form, value i being what instruction i computes. Every instruction gets a
 * phase from its operands:
 *   P  parameters and numbers only: run once per sequence (begin)
 *   X  x but no state: run once for all time steps on (B,T,.) (project)
 *   S  a state: run every time step (step)
 * so x @ W^T + b is hoisted out of the time loop as in the built-in cells,
 * and a sum's terms are reordered P, X, S for that. The X values the steps
 * read travel as one projection, concatenated when there are several; a
 * slice of an X value is taken in the step, from that step's slice. In a
 * step, a + h @ U^T runs as one addmm (fold_products) and (1 - z) * a +
 * z * b as one lerp (find_blends).
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seqgrad/nn.h"
#include "cellsize.h"

enum { PH_P, PH_X, PH_S };

typedef enum {
    OP_INPUT, OP_STATE, OP_PARAM, OP_CONST,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_ADD_SCALAR, OP_SCALE, OP_ONE_MINUS, OP_NEG,
    OP_UNARY, OP_MATMUL, OP_TRANS, OP_SLICE, OP_INDEX, OP_CONCAT, OP_LAYERNORM, OP_LERP, OP_BLEND,
} opcode;

#define MAX_ARGS 8

typedef struct {
    opcode op;
    int arg[MAX_ARGS], nargs;   /* operand values */
    double num;                 /* CONST, ADD_SCALAR, SCALE; UNARY: the function's index */
    int index;                  /* STATE, PARAM: which; SLICE by split: part and parts */
    int parts;
    sg_size_form lo, len;       /* SLICE: start and length; INDEX: lo */
    bool trans;                 /* MATMUL: op(B) = B^T */
    bool swapped;               /* ADD, MUL: operands swapped from the order written */
    bool folded;                /* MATMUL: run by the one ADD that reads it, as one addmm */
    int fold;                   /* ADD: 1 + which operand is a folded MATMUL, or 0 */
    int phase;
    bool live;
    int line, col;              /* where it was written */
} insn;

typedef struct {
    char name[64];
    int value;
} symbol;

typedef struct {
    sg_cell_def def;            /* first: the definition handed out is this struct */
    char *strings;              /* the names and shapes the definition points to */
    const char *file;
    int n_insn, cap;
    insn *code;
    int n_states, n_params;
    int out[SG_CELL_MAX_STATES];    /* the value of each state' */
    int front[64], n_front;         /* X values read by steps, in projection order */
    int *run[3], n_run[3];          /* the live instructions of each phase, in order */
    int n_sym;
    symbol sym[256];
} program;

static const struct {
    const char *name;
    sg_tensor *(*f)(sg_tape *, sg_tensor *);
} unary_fns[] = {
    {"sigmoid", sg_sigmoid}, {"tanh", sg_tanh}, {"relu", sg_relu}, {"exp", sg_exp},   {"log", sg_log},
    {"sqrt", sg_sqrt},       {"square", sg_square}, {"abs", sg_abs}, {"gelu", sg_gelu},
};
enum { N_UNARY = sizeof unary_fns / sizeof unary_fns[0] };

/* ---- errors -------------------------------------------------------------------------- */

typedef struct {
    program *pg;
    const char *s;              /* the equation */
    size_t pos;                 /* the current token's offset */
    int line, col;              /* where s[0] is */
    char *err;
    size_t n;
    bool failed;
} parser;

static void fail_at(char *err, size_t n, const char *file, int line, int col, const char *fmt, va_list ap)
{
    int len = line > 0 ? snprintf(err, n, "%s:%d:%d: ", file, line, col) : snprintf(err, n, "%s: ", file);
    if (len >= 0 && (size_t)len < n)
        vsnprintf(err + len, n - (size_t)len, fmt, ap);
}

static int perr(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    fail_at(p->err, p->n, p->pg->file, p->line, p->line > 0 ? p->col + (int)at : 0, fmt, ap);
    va_end(ap);
    p->failed = true;
    return -1;
}

/* ---- instructions ---------------------------------------------------------------------- */

static int emit(parser *p, insn in, size_t at)
{
    program *pg = p->pg;
    if (p->failed)
        return -1;
    if (pg->n_insn == pg->cap) {
        int cap = pg->cap ? 2 * pg->cap : 64;
        insn *code = realloc(pg->code, (size_t)cap * sizeof *code);
        if (!code)
            return perr(p, at, "out of memory");
        pg->code = code, pg->cap = cap;
    }
    in.line = p->line, in.col = p->line > 0 ? p->col + (int)at : 0;
    if (in.op > OP_CONST) {
        in.phase = PH_P;
        for (int k = 0; k < in.nargs; k++)
            if (pg->code[in.arg[k]].phase > in.phase)
                in.phase = pg->code[in.arg[k]].phase;
    }
    pg->code[pg->n_insn] = in;
    return pg->n_insn++;
}

static bool is_const(parser *p, int v) { return p->pg->code[v].op == OP_CONST; }

static int constant(parser *p, double v, size_t at) { return emit(p, (insn){.op = OP_CONST, .num = v, .phase = PH_P}, at); }

static int op1(parser *p, opcode op, int a, double num, size_t at)
{
    return emit(p, (insn){.op = op, .arg = {a}, .nargs = 1, .num = num}, at);
}

/* a op b for + - * /, with numbers folded or turned into scalar ops */
static int binary(parser *p, char op, int a, int b, size_t at)
{
    if (a < 0 || b < 0)
        return -1;
    bool ca = is_const(p, a), cb = is_const(p, b);
    double x = p->pg->code[a].num, y = p->pg->code[b].num;
    if (ca && cb)
        return constant(p, op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y, at);
    bool swapped = (op == '+' || op == '*') && !ca && !cb && p->pg->code[a].phase < p->pg->code[b].phase;
    if (swapped) {              /* the larger operand first: broadcasting's fast path (a + b = b + a exactly) */
        int swap = a;
        a = b, b = swap;
    }
    switch (op) {
    case '+':
        return ca ? op1(p, OP_ADD_SCALAR, b, x, at) : cb ? op1(p, OP_ADD_SCALAR, a, y, at)
                                                         : emit(p, (insn){.op = OP_ADD, .arg = {a, b}, .nargs = 2,
                                                                          .swapped = swapped}, at);
    case '-':
        if (cb)
            return op1(p, OP_ADD_SCALAR, a, -y, at);
        if (ca)
            return x == 1 ? op1(p, OP_ONE_MINUS, b, 0, at) : op1(p, OP_ADD_SCALAR, op1(p, OP_NEG, b, 0, at), x, at);
        return emit(p, (insn){.op = OP_SUB, .arg = {a, b}, .nargs = 2}, at);
    case '*':
        return ca ? op1(p, OP_SCALE, b, x, at) : cb ? op1(p, OP_SCALE, a, y, at)
                                                    : emit(p, (insn){.op = OP_MUL, .arg = {a, b}, .nargs = 2,
                                                                     .swapped = swapped}, at);
    default:
        if (ca)
            return perr(p, at, "a number divided by a tensor is not supported (write n * exp(-log(y)))");
        return cb ? op1(p, OP_SCALE, a, 1 / y, at) : emit(p, (insn){.op = OP_DIV, .arg = {a, b}, .nargs = 2}, at);
    }
}

/* ---- the lexer ------------------------------------------------------------------------- */

static void skip_space(parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
        p->pos++;
}

static bool accept(parser *p, char c)
{
    skip_space(p);
    if (p->s[p->pos] != c)
        return false;
    p->pos++;
    return true;
}

static int expect(parser *p, char c, const char *what)
{
    if (accept(p, c))
        return 0;
    skip_space(p);
    return p->s[p->pos] ? perr(p, p->pos, "expected %s, found '%c'", what, p->s[p->pos])
                        : perr(p, p->pos, "expected %s at the end of the equation", what);
}

/* a name (letters, digits, _, one trailing '); its length, 0 if none */
static size_t name_at(const char *s)
{
    size_t n = 0;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    if (s[n] == '\'')
        n++;
    return n;
}

/* ---- symbols --------------------------------------------------------------------------- */

static int lookup(program *pg, const char *name, size_t len)
{
    for (int i = 0; i < pg->n_sym; i++)
        if (strlen(pg->sym[i].name) == len && !strncmp(pg->sym[i].name, name, len))
            return i;
    return -1;
}

static int define(parser *p, const char *name, size_t len, int value, size_t at)
{
    program *pg = p->pg;
    int i = lookup(pg, name, len);
    if (i >= 0) {
        const insn *was = &pg->code[pg->sym[i].value];
        const char *what = was->op == OP_INPUT ? "the input" : was->op == OP_STATE ? "a state"
                         : was->op == OP_PARAM ? "a parameter" : "already defined";
        if (was->line > 0 && was->op > OP_CONST)
            return perr(p, at, "%.*s is %s (at line %d, column %d); each name is defined once", (int)len, name, what,
                        was->line, was->col);
        return perr(p, at, "%.*s is %s; each name is defined once", (int)len, name, what);
    }
    if (len >= sizeof pg->sym[0].name || pg->n_sym == (int)(sizeof pg->sym / sizeof pg->sym[0]))
        return perr(p, at, "%s", len >= sizeof pg->sym[0].name ? "name too long" : "too many names");
    memcpy(pg->sym[pg->n_sym].name, name, len);
    pg->sym[pg->n_sym].name[len] = '\0';
    pg->sym[pg->n_sym++].value = value;
    return value;
}

/* ---- the parser: expressions -------------------------------------------------------------
 *   sum     := product (('+' | '-') product)*
 *   product := matmul (('*' | '/') matmul)*
 *   matmul  := unary ('@' unary)*
 *   unary   := '-' unary | postfix
 *   postfix := primary ('^T' | '[' index ']')*
 *   primary := number | name | name '(' args ')' | '(' sum ')'                          */

static int sum(parser *p);

/* an index size: terms in E and H, up to ] : or , */
static int size_expr(parser *p, sg_size_form *f)
{
    skip_space(p);
    size_t start = p->pos, end = start, bad;
    while (p->s[end] && p->s[end] != ']' && p->s[end] != ':' && p->s[end] != ',')
        end++;
    while (end > start && p->s[end - 1] == ' ')
        end--;
    if (sg_size_parse(p->s + start, end - start, f, &bad) != 0)
        return perr(p, start + bad, "an index is a sum of terms n, H, E, nH, nE");
    p->pos = end;
    return 0;
}

static int postfix(parser *p, int v)
{
    for (;;) {
        skip_space(p);
        size_t at = p->pos;
        if (p->s[at] == '^') {
            p->pos++;
            if (p->s[p->pos] != 'T' || name_at(p->s + p->pos) != 1)
                return perr(p, p->pos, "expected T after ^ (a transpose)");
            p->pos++;
            v = op1(p, OP_TRANS, v, 0, at);
        } else if (accept(p, '[')) {
            sg_size_form lo = {0, 0, 0}, hi;
            skip_space(p);
            bool from_start = p->s[p->pos] == ':';
            if (!from_start && size_expr(p, &lo) < 0)
                return -1;
            if (accept(p, ':')) {
                skip_space(p);
                if (p->s[p->pos] == ']')
                    return perr(p, p->pos, "a slice needs its end: [a:b]");
                if (size_expr(p, &hi) < 0)
                    return -1;
                sg_size_form len = {hi.c - lo.c, hi.h - lo.h, hi.e - lo.e};
                v = emit(p, (insn){.op = OP_SLICE, .arg = {v}, .nargs = 1, .lo = lo, .len = len}, at);
            } else {
                v = emit(p, (insn){.op = OP_INDEX, .arg = {v}, .nargs = 1, .lo = lo, .len = {1, 0, 0}}, at);
            }
            if (expect(p, ']', "]") < 0)
                return -1;
        } else {
            return v;
        }
        if (v < 0)
            return -1;
    }
}

static int call(parser *p, const char *name, size_t len, size_t at)
{
    int args[MAX_ARGS], n = 0;
    if (!accept(p, ')'))
        do {
            if (n == MAX_ARGS)
                return perr(p, p->pos, "more than %d arguments", MAX_ARGS);
            if ((args[n++] = sum(p)) < 0)
                return -1;
        } while (accept(p, ','));
    if (n && expect(p, ')', ") or ,") < 0)
        return -1;
    for (int k = 0; k < n; k++)
        if (is_const(p, args[k]) && strncmp(name, "split", len))
            return perr(p, at, "%.*s: argument %d is a number, not a tensor", (int)len, name, k + 1);
    for (int f = 0; f < N_UNARY; f++)
        if (strlen(unary_fns[f].name) == len && !strncmp(unary_fns[f].name, name, len)) {
            if (n != 1)
                return perr(p, at, "%.*s takes 1 argument, not %d", (int)len, name, n);
            return op1(p, OP_UNARY, args[0], f, at);
        }
    insn in = {.nargs = n};
    memcpy(in.arg, args, sizeof args);
    if (len == 6 && !strncmp(name, "concat", 6)) {
        if (n < 2)
            return perr(p, at, "concat takes at least 2 arguments");
        in.op = OP_CONCAT;
    } else if (len == 9 && !strncmp(name, "layernorm", 9)) {
        if (n != 1 && n != 3)
            return perr(p, at, "layernorm takes 1 argument (no gain or bias) or 3 (x, gain, bias), not %d", n);
        in.op = OP_LAYERNORM;
    } else if (len == 4 && !strncmp(name, "lerp", 4)) {
        if (n != 3)
            return perr(p, at, "lerp takes 3 arguments (a, b, w), not %d", n);
        in.op = OP_LERP;
    } else if (len == 5 && !strncmp(name, "split", 5)) {
        return perr(p, at, "split(z, n) stands alone on the right of n names: a, b = split(z, 2)");
    } else {
        return perr(p, at, "unknown function %.*s (sigmoid, tanh, relu, exp, log, sqrt, square, abs, gelu, "
                           "concat, layernorm, lerp, split)", (int)len, name);
    }
    return emit(p, in, at);
}

static int primary(parser *p)
{
    skip_space(p);
    size_t at = p->pos;
    const char *s = p->s + at;
    if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double v = strtod(s, &end);
        p->pos += (size_t)(end - s);
        if (name_at(p->s + p->pos))
            return perr(p, p->pos, "a name right after a number: write 2 * h");
        return constant(p, v, at);
    }
    if (accept(p, '(')) {
        int v = sum(p);
        return v < 0 || expect(p, ')', ")") < 0 ? -1 : v;
    }
    size_t len = name_at(s);
    if (!len)
        return *s ? perr(p, at, "expected a name, a number or (, found '%c'", *s)
                  : perr(p, at, "expected a name, a number or ( at the end of the equation");
    p->pos += len;
    if (accept(p, '('))
        return call(p, s, len, at);
    int i = lookup(p->pg, s, len);
    if (i < 0) {
        if (s[len - 1] == '\'')
            return perr(p, at, "%.*s is not defined yet (a state's new value can be read after its equation)",
                        (int)len, s);
        return perr(p, at, "undefined name %.*s (not x, a state, a parameter or an earlier result)", (int)len, s);
    }
    return p->pg->sym[i].value;
}

static int unary(parser *p)
{
    skip_space(p);
    size_t at = p->pos;
    if (accept(p, '-')) {
        int v = unary(p);
        if (v < 0)
            return -1;
        return is_const(p, v) ? constant(p, -p->pg->code[v].num, at) : op1(p, OP_NEG, v, 0, at);
    }
    int v = primary(p);
    return v < 0 ? -1 : postfix(p, v);
}

static int matmul(parser *p)
{
    int v = unary(p);
    for (;;) {
        skip_space(p);
        size_t at = p->pos;
        if (v < 0 || !accept(p, '@'))
            return v;
        int b = unary(p);
        if (b < 0)
            return -1;
        if (is_const(p, v) || is_const(p, b))
            return perr(p, at, "@ between a number and a tensor: use *");
        const insn *bi = &p->pg->code[b];
        bool trans = bi->op == OP_TRANS;
        v = emit(p, (insn){.op = OP_MATMUL, .arg = {v, trans ? bi->arg[0] : b}, .nargs = 2, .trans = trans}, at);
    }
}

static int product(parser *p)
{
    int v = matmul(p);
    for (;;) {
        skip_space(p);
        size_t at = p->pos;
        char op = p->s[at];
        if (v < 0 || (op != '*' && op != '/'))
            return v;
        p->pos++;
        v = binary(p, op, v, matmul(p), at);
    }
}

/* a + b - c ...: the terms are added in phase order (P, X, S), each phase in
 * the order written, so everything that does not depend on a state is
 * summed once for all time steps */
static int sum(parser *p)
{
    int term[64], n = 0;
    bool neg[64];
    size_t at[64];
    skip_space(p);
    at[0] = p->pos, neg[0] = false;
    if ((term[n++] = product(p)) < 0)
        return -1;
    for (;;) {
        skip_space(p);
        char op = p->s[p->pos];
        if (op != '+' && op != '-')
            break;
        if (n == 64)
            return perr(p, p->pos, "more than 64 terms in a sum");
        at[n] = p->pos++;
        neg[n] = op == '-';
        if ((term[n++] = product(p)) < 0)
            return -1;
    }
    int v = -1;
    bool v_neg = false;
    for (int ph = PH_P; ph <= PH_S; ph++)
        for (int k = 0; k < n; k++) {
            if (p->pg->code[term[k]].phase != ph)
                continue;
            if (v < 0)
                v = term[k], v_neg = neg[k];
            else if (v_neg == neg[k])      /* both added, or both subtracted: (-a) - b = -(a + b) */
                v = binary(p, '+', v, term[k], at[k]);
            else
                v = binary(p, '-', v_neg ? term[k] : v, v_neg ? v : term[k], at[k]), v_neg = false;
            if (v < 0)
                return -1;
        }
    return v_neg ? (is_const(p, v) ? constant(p, -p->pg->code[v].num, at[0]) : op1(p, OP_NEG, v, 0, at[0])) : v;
}

/* ---- equations ---------------------------------------------------------------------------
 *   name = sum          a, b, c = split(sum, 3)                                             */

static int equation(parser *p)
{
    const char *s = p->s;
    size_t lhs[64], lhs_len[64];
    int n = 0;
    do {
        skip_space(p);
        size_t len = name_at(s + p->pos);
        if (!len)
            return perr(p, p->pos, "expected a name to define");
        if (n == 64)
            return perr(p, p->pos, "more than 64 names");
        lhs[n] = p->pos, lhs_len[n++] = len;
        p->pos += len;
    } while (accept(p, ','));
    if (expect(p, '=', n > 1 ? "= after the names" : "= after the name") < 0)
        return -1;
    skip_space(p);
    size_t rhs = p->pos;
    int values[64];
    if (n == 1) {
        if ((values[0] = sum(p)) < 0)
            return -1;
        if (is_const(p, values[0]))
            return perr(p, rhs, "%.*s is a number: a cell computes tensors", (int)lhs_len[0], s + lhs[0]);
    } else {
        if (strncmp(s + rhs, "split", 5) || name_at(s + rhs) != 5)
            return perr(p, rhs, "%d names on the left need split(z, %d) on the right", n, n);
        p->pos += 5;
        if (expect(p, '(', "(") < 0)
            return -1;
        int z = sum(p);
        if (z < 0 || expect(p, ',', ", and the number of parts") < 0)
            return -1;
        skip_space(p);
        size_t at = p->pos;
        int parts = sum(p);
        if (parts < 0 || expect(p, ')', ")") < 0)
            return -1;
        if (!is_const(p, parts) || p->pg->code[parts].num != n)
            return perr(p, at, "split into %s parts, but %d names on the left",
                        is_const(p, parts) ? "a different number of" : "a non-number of", n);
        if (is_const(p, z))
            return perr(p, rhs, "split of a number");
        for (int k = 0; k < n; k++)
            values[k] = emit(p, (insn){.op = OP_SLICE, .arg = {z}, .nargs = 1, .index = k, .parts = n}, rhs);
    }
    skip_space(p);
    if (s[p->pos])
        return perr(p, p->pos, "unexpected '%c' after the equation", s[p->pos]);
    for (int k = 0; k < n; k++) {
        const char *name = s + lhs[k];
        size_t len = lhs_len[k];
        if (name[len - 1] == '\'') {
            int st = lookup(p->pg, name, len - 1);
            if (st < 0 || p->pg->code[p->pg->sym[st].value].op != OP_STATE)
                return perr(p, lhs[k], "%.*s: only a state has a new value (name') ", (int)len, name);
        }
        if (define(p, name, len, values[k], lhs[k]) < 0)
            return -1;
    }
    return 0;
}

/* ---- compiling ------------------------------------------------------------------------------ */

static char *copy_str(char **at, const char *s)
{
    char *d = *at;
    size_t n = strlen(s) + 1;
    memcpy(d, s, n);
    *at += n;
    return d;
}

void sg_cell_def_free(sg_cell_def *def)
{
    program *pg = (program *)def;
    if (!pg)
        return;
    free(pg->strings);
    free(pg->code);
    for (int ph = 0; ph < 3; ph++)
        free(pg->run[ph]);
    free(pg);
}

static sg_status prog_begin(sg_tape *t, sg_cell_run *run);
static sg_tensor *prog_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x);
static sg_status prog_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *state, sg_tensor **next);
static sg_status prog_check(const sg_cell_def *def, int E, int H, char *err, size_t n);

/* A step's sum a + h @ W^T whose product nothing else reads runs as one
 * sg_addmm (GEMM adds the product to a copy of a), as the built-in cells'
 * gates do: one tensor and one pass fewer per step. */
static int *count_uses(const program *pg);

static void fold_products(program *pg)
{
    int *uses = count_uses(pg);
    if (!uses)
        return;                                /* nothing folded: the sums run as written */
    for (int i = 0; i < pg->n_insn; i++) {
        insn *in = &pg->code[i];
        for (int k = 0; in->live && in->op == OP_ADD && in->phase == PH_S && in->nargs == 2 && k < 2; k++) {
            insn *m = &pg->code[in->arg[k]];
            if (m->op == OP_MATMUL && m->phase == PH_S && uses[in->arg[k]] == 1 && !m->folded) {
                m->folded = true, in->fold = k + 1;
                break;
            }
        }
    }
    free(uses);
}

/* How many live instructions and outputs read each value (calloc'd;
 * NULL without memory) */
static int *count_uses(const program *pg)
{
    int *uses = calloc((size_t)pg->n_insn, sizeof *uses);
    for (int i = 0; uses && i < pg->n_insn; i++)
        for (int k = 0; pg->code[i].live && k < pg->code[i].nargs; k++)
            uses[pg->code[i].arg[k]]++;
    for (int k = 0; uses && k < pg->n_states; k++)
        uses[pg->out[k]]++;
    return uses;
}

/* v = (1 - z) * a: a, with z and the value 1 - z through *z and *mid, if so */
static int blend_side(const program *pg, const int *uses, int v, int *z, int *mid)
{
    const insn *m = &pg->code[v];
    for (int k = 0; m->op == OP_MUL && m->phase == PH_S && k < 2; k++) {
        const insn *om = &pg->code[m->arg[k]];
        if (om->op == OP_ONE_MINUS && om->phase == PH_S && uses[m->arg[k]] == 1) {
            *z = om->arg[0], *mid = m->arg[k];
            return m->arg[1 - k];
        }
    }
    return -1;
}

/* v = z * (b - a) for the given a: b, with z and the value b - a through
 * *z and *mid, if so */
static int step_side(const program *pg, const int *uses, int v, int a, int *z, int *mid)
{
    const insn *m = &pg->code[v];
    for (int k = 0; m->op == OP_MUL && m->phase == PH_S && k < 2; k++) {
        const insn *d = &pg->code[m->arg[k]];
        if (d->op == OP_SUB && d->phase == PH_S && uses[m->arg[k]] == 1 && d->arg[1] == a) {
            *z = m->arg[1 - k], *mid = m->arg[k];
            return d->arg[0];
        }
    }
    return -1;
}

/* The gated blend of GRU-like cells written out, (1 - z) * a + z * b or
 * a + z * (b - a) (in any order of terms and factors), becomes one
 * instruction: sg_lerp, a + z (b - a), when a, b and z have one shape when
 * it runs (the written ops otherwise), as if the cell had said lerp(a, b,
 * z): one op instead of four (or three), and 1 - z not kept for backward.
 * The products, 1 - z and b - a must feed nothing else. */
static void find_blends(program *pg)
{
    int *uses = count_uses(pg);
    for (int i = 0; uses && i < pg->n_insn; i++) {
        insn *in = &pg->code[i];
        for (int k = 0; in->live && in->op == OP_ADD && in->phase == PH_S && k < 2; k++) {
            int p = in->arg[k], q = in->arg[1 - k], z = -1, mid = -1, a, b, step = 0;
            const insn *mq = &pg->code[q];
            if (uses[q] == 1 && (b = step_side(pg, uses, q, p, &z, &mid)) >= 0) {      /* p + z * (b - p) */
                a = p, step = 1;
            } else if (uses[p] == 1 && uses[q] == 1 && mq->op == OP_MUL && mq->phase == PH_S &&
                       (a = blend_side(pg, uses, p, &z, &mid)) >= 0 && (mq->arg[0] == z || mq->arg[1] == z)) {
                b = mq->arg[0] == z ? mq->arg[1] : mq->arg[0];
                pg->code[p].live = false;
            } else
                continue;
            pg->code[q].live = pg->code[mid].live = false;      /* z's product, and 1 - z or b - a */
            /* index: the form written (1: a + z * (b - a)), for the ops it runs when the shapes differ */
            *in = (insn){.op = OP_BLEND, .arg = {a, b, z}, .nargs = 3, .index = step, .phase = PH_S, .live = true,
                         .line = in->line, .col = in->col};
            break;
        }
    }
    free(uses);
}

/* liveness from the states' new values; then the X values that S
 * instructions (or the outputs) read */
static void analyse(program *pg)
{
    for (int k = 0; k < pg->n_states; k++)
        pg->code[pg->out[k]].live = true;
    for (int i = pg->n_insn - 1; i >= 0; i--)
        if (pg->code[i].live)
            for (int k = 0; k < pg->code[i].nargs; k++)
                pg->code[pg->code[i].arg[k]].live = true;
    find_blends(pg);
    /* a slice of an x value read by a step is taken in the step, from the
     * step's slice of the whole: the projection stays one tensor */
    for (int i = pg->n_insn - 1; i >= 0; i--) {
        const insn *in = &pg->code[i];
        for (int k = 0; in->live && in->phase == PH_S && k < in->nargs; k++) {
            insn *a = &pg->code[in->arg[k]];
            if (a->phase == PH_X && (a->op == OP_SLICE || a->op == OP_INDEX))
                a->phase = PH_S;
        }
    }
    bool reads[4096] = {false};
    for (int i = 0; i < pg->n_insn && i < 4096; i++) {
        const insn *in = &pg->code[i];
        if (in->live && in->phase == PH_S)
            for (int k = 0; k < in->nargs; k++)
                if (pg->code[in->arg[k]].phase == PH_X)
                    reads[in->arg[k]] = true;
    }
    for (int k = 0; k < pg->n_states; k++)
        if (pg->code[pg->out[k]].phase == PH_X)
            reads[pg->out[k]] = true;
    for (int i = 0; i < pg->n_insn && i < 4096 && pg->n_front < 64; i++)
        if (reads[i])
            pg->front[pg->n_front++] = i;
    fold_products(pg);
    for (int i = 0; i < pg->n_insn; i++)      /* what each phase runs: no scan of the rest per step */
        if (pg->code[i].live && pg->code[i].op > OP_CONST && !pg->code[i].folded)
            pg->run[pg->code[i].phase][pg->n_run[pg->code[i].phase]++] = i;
}

sg_cell_def *sg_cell_compile(const sg_cell_spec *spec, char *err, size_t n)
{
    char scratch[8];
    if (!err || !n)
        err = scratch, n = sizeof scratch;
    if (!spec || !spec->name.text) {
        snprintf(err, n, "cell: %s is NULL", spec ? "the name" : "the spec");
        return NULL;
    }
    program *pg = calloc(1, sizeof *pg);
    size_t bytes = strlen(spec->name.text) + 1;
    for (int i = 0; i < spec->n_states && i < SG_CELL_MAX_STATES; i++)
        bytes += strlen(spec->states[i].text ? spec->states[i].text : "") + 1;
    for (int i = 0; i < spec->n_params && i < SG_CELL_MAX_PARAMS; i++)
        bytes += strlen(spec->params[i].name.text ? spec->params[i].name.text : "") +
                 strlen(spec->params[i].shape.text ? spec->params[i].shape.text : "") + 2;
    if (!pg || !(pg->strings = malloc(bytes))) {
        free(pg);
        snprintf(err, n, "cell %s: out of memory", spec->name.text);
        return NULL;
    }
    pg->file = spec->name.file ? spec->name.file : "cell";
    parser p = {.pg = pg, .s = "", .line = spec->name.line, .col = spec->name.col, .err = err, .n = n};
    char *at = pg->strings;
    sg_cell_def *d = &pg->def;
    d->name = copy_str(&at, spec->name.text);
    if (spec->n_states > SG_CELL_MAX_STATES || spec->n_params > SG_CELL_MAX_PARAMS) {
        perr(&p, 0, "cell %s: more than %d %s", d->name, spec->n_states > SG_CELL_MAX_STATES ? SG_CELL_MAX_STATES
                     : SG_CELL_MAX_PARAMS, spec->n_states > SG_CELL_MAX_STATES ? "states" : "parameters");
        goto fail;
    }
    pg->n_states = spec->n_states, pg->n_params = spec->n_params;
    for (int i = 0; i < spec->n_states; i++)
        d->states[i] = copy_str(&at, spec->states[i].text ? spec->states[i].text : "");
    for (int i = 0; i < spec->n_params; i++) {
        d->params[i] = (sg_param_decl){.name = copy_str(&at, spec->params[i].name.text ? spec->params[i].name.text : ""),
                                       .shape = copy_str(&at, spec->params[i].shape.text ? spec->params[i].shape.text : ""),
                                       .init = spec->params[i].init, .value = spec->params[i].value};
    }
    d->begin = prog_begin, d->project = prog_project, d->step = prog_step, d->check = prog_check, d->ctx = pg;
    for (int i = 0; i < pg->n_params; i++) {       /* shapes, placed where they are written */
        sg_size_form dims[2];
        size_t bad = 0;
        if (sg_shape_parse(d->params[i].shape, dims, &bad) < 0) {
            p.line = spec->params[i].shape.line, p.col = spec->params[i].shape.col;
            perr(&p, bad, "cell %s: params %s: shape \"%s\" is not 1 or 2 sizes in E and H (n, H, E, nH, nE, joined by + or -)",
                 d->name, d->params[i].name, d->params[i].shape);
            goto fail;
        }
    }
    if (sg_cell_check(d, err, n) != SG_OK)
        goto fail_where;
    /* the values there from the start: x, the states, the parameters */
    define(&p, "x", 1, emit(&p, (insn){.op = OP_INPUT, .phase = PH_X}, 0), 0);
    for (int i = 0; i < pg->n_states; i++) {
        p.line = spec->states[i].line, p.col = spec->states[i].col;
        if (!strcmp(d->states[i], "x"))
            perr(&p, 0, "cell %s: states[%d]: x is the input", d->name, i);
        define(&p, d->states[i], strlen(d->states[i]), emit(&p, (insn){.op = OP_STATE, .index = i, .phase = PH_S}, 0), 0);
    }
    for (int i = 0; i < pg->n_params; i++) {
        p.line = spec->params[i].name.line, p.col = spec->params[i].name.col;
        if (!strcmp(d->params[i].name, "x"))
            perr(&p, 0, "cell %s: params[%d]: x is the input", d->name, i);
        define(&p, d->params[i].name, strlen(d->params[i].name),
               emit(&p, (insn){.op = OP_PARAM, .index = i, .phase = PH_P}, 0), 0);
    }
    for (int e = 0; e < spec->n_equations && !p.failed; e++) {
        const sg_cell_text *eq = &spec->equations[e];
        p.s = eq->text ? eq->text : "", p.pos = 0, p.line = eq->line, p.col = eq->col;
        equation(&p);
    }
    if (p.failed)
        goto fail;
    p.s = "", p.line = spec->name.line, p.col = spec->name.col;
    if (spec->n_equations == 0) {
        perr(&p, 0, "cell %s: no equations", d->name);
        goto fail;
    }
    for (int k = 0; k < pg->n_states; k++) {
        char primed[80];
        snprintf(primed, sizeof primed, "%s'", d->states[k]);
        int i = lookup(pg, primed, strlen(primed));
        if (i < 0) {
            perr(&p, 0, "cell %s: no equation for %s (the new value of state %s)", d->name, primed, d->states[k]);
            goto fail;
        }
        pg->out[k] = pg->sym[i].value;
        if (pg->code[pg->out[k]].op <= OP_CONST) {
            const sg_cell_text *eq = &spec->equations[0];
            for (int e = 0; e < spec->n_equations; e++)     /* the equation that defines it */
                if (!strncmp(spec->equations[e].text + strspn(spec->equations[e].text, " "), primed, strlen(primed)))
                    eq = &spec->equations[e];
            p.line = eq->line, p.col = eq->col;
            perr(&p, strspn(eq->text, " "), "cell %s: %s only copies x, a state or a parameter: compute it", d->name, primed);
            goto fail;
        }
    }
    if (pg->n_insn > 4096) {
        perr(&p, 0, "cell %s: more than 4096 operations", d->name);
        goto fail;
    }
    for (int ph = 0; ph < 3; ph++)
        if (!(pg->run[ph] = malloc((size_t)pg->n_insn * sizeof *pg->run[ph]))) {
            perr(&p, 0, "cell %s: out of memory", d->name);
            goto fail;
        }
    analyse(pg);
    return d;
fail_where:
    if (spec->name.line > 0) {      /* sg_cell_check's message, placed at the cell */
        char msg[400];
        snprintf(msg, sizeof msg, "%s", err);
        snprintf(err, n, "%s:%d:%d: %s", pg->file, spec->name.line, spec->name.col, msg);
    }
fail:
    sg_cell_def_free(d);
    return NULL;
}

/* ---- shapes, checked at sg_cell_init with E and H known ----------------------------------
 * A value is a number, batched (B,n) (X and S values: x, states and what
 * follows from them) or a parameter-like tensor of 1 or 2 dimensions. */

typedef struct {
    bool number, batched;
    int nd;
    long d[2];
} shape;

static void shape_str(shape s, char *out, size_t n)
{
    if (s.number)
        snprintf(out, n, "a number");
    else if (s.batched)
        snprintf(out, n, "(B,%ld)", s.d[0]);
    else if (s.nd == 1)
        snprintf(out, n, "(%ld)", s.d[0]);
    else
        snprintf(out, n, "(%ld,%ld)", s.d[0], s.d[1]);
}

static const char *op_name(const insn *in)
{
    static const char *names[] = {"x", "state", "parameter", "number", "+", "-", "*", "/", "+", "*", "1 -", "-",
                                  "", "@", "^T", "[:]", "[]", "concat", "layernorm", "lerp", "+"};
    return in->op == OP_UNARY ? unary_fns[(int)in->num].name : in->op == OP_SLICE && in->parts ? "split" : names[in->op];
}

static sg_status shape_fail(const program *pg, const insn *in, char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static sg_status shape_fail(const program *pg, const insn *in, char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[300];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in->line > 0)
        snprintf(err, n, "%s:%d:%d: cell %s: %s", pg->file, in->line, in->col, pg->def.name, msg);
    else
        snprintf(err, n, "%s: cell %s: %s", pg->file, pg->def.name, msg);
    return SG_ERR_SHAPE;
}

/* the shape of a and b combined element-wise, or false */
static bool same_shape(shape a, shape b)
{
    if (a.batched != b.batched || a.nd != b.nd)
        return false;
    for (int k = 0; k < a.nd; k++)
        if (a.d[k] != b.d[k])
            return false;
    return true;
}

static bool broadcast(shape a, shape b, shape *out)
{
    if (a.batched || b.batched) {
        shape bt = a.batched ? a : b, o = a.batched ? b : a;
        if (!o.batched && o.nd == 2 && o.d[0] != 1)
            return false;
        long w = o.batched || o.nd == 1 ? o.d[0] : o.d[1];
        if (w != bt.d[0] && w != 1 && bt.d[0] != 1)
            return false;
        *out = bt;
        out->d[0] = w > bt.d[0] ? w : bt.d[0];
        return true;
    }
    *out = a.nd >= b.nd ? a : b;
    for (int k = 0; k < out->nd; k++) {
        long da = k < out->nd - a.nd ? 1 : a.d[k - (out->nd - a.nd)];
        long db = k < out->nd - b.nd ? 1 : b.d[k - (out->nd - b.nd)];
        if (da != db && da != 1 && db != 1)
            return false;
        out->d[k] = da > db ? da : db;
    }
    return true;
}

static sg_status prog_check(const sg_cell_def *def, int E, int H, char *err, size_t n)
{
    const program *pg = def->ctx;
    shape *sh = calloc((size_t)pg->n_insn, sizeof *sh);
    if (!sh)
        return snprintf(err, n, "cell %s: out of memory", def->name), SG_ERR_NOMEM;
    sg_status st = SG_OK;
    char sa[40], sb[40];
    for (int i = 0; i < pg->n_insn && st == SG_OK; i++) {
        const insn *in = &pg->code[i];
        shape a = in->nargs > 0 ? sh[in->arg[0]] : (shape){0}, b = in->nargs > 1 ? sh[in->arg[1]] : (shape){0}, *o = &sh[i];
        shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb);
        switch (in->op) {
        case OP_INPUT:
            *o = (shape){.batched = true, .nd = 1, .d = {E}};
            break;
        case OP_STATE:
            *o = (shape){.batched = true, .nd = 1, .d = {H}};
            break;
        case OP_PARAM: {
            sg_size_form f[2];
            size_t bad;
            o->nd = sg_shape_parse(def->params[in->index].shape, f, &bad);
            for (int k = 0; k < o->nd; k++)
                o->d[k] = sg_size_eval(f[k], E, H);
            break;
        }
        case OP_CONST:
            o->number = true;
            break;
        case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
            if (!broadcast(a, b, o))        /* named in the order written */
                st = shape_fail(pg, in, err, n, "'%s' of %s and %s (E=%d, H=%d)", op_name(in), in->swapped ? sb : sa,
                                in->swapped ? sa : sb, E, H);
            break;
        case OP_ADD_SCALAR: case OP_SCALE: case OP_ONE_MINUS: case OP_NEG: case OP_UNARY: case OP_TRANS:
            *o = a;
            if (in->op == OP_TRANS) {
                if (a.batched || a.nd != 2)
                    st = shape_fail(pg, in, err, n, "^T of %s: only a 2-D parameter has a transpose", sa);
                o->d[0] = a.d[1], o->d[1] = a.d[0];
            }
            break;
        case OP_MATMUL: {
            long k = in->trans ? b.d[1] : b.d[0], m = in->trans ? b.d[0] : b.d[1];
            if (b.batched)
                st = shape_fail(pg, in, err, n, "@ with %s on the right: the right side must be a parameter "
                                "(it cannot depend on x or a state)", sb);
            else if (b.nd != 2 || (!a.batched && a.nd != 2))
                st = shape_fail(pg, in, err, n, "@ of %s and %s%s: each side needs 2 dimensions", sa, sb,
                                in->trans ? "^T" : "");
            else if ((a.batched ? a.d[0] : a.d[1]) != k)
                st = shape_fail(pg, in, err, n, "@ of %s and %s%s: inner sizes %ld and %ld differ (E=%d, H=%d)", sa, sb,
                                in->trans ? "^T" : "", a.batched ? a.d[0] : a.d[1], k, E, H);
            *o = a, o->d[a.batched ? 0 : 1] = m;
            break;
        }
        case OP_SLICE: case OP_INDEX: {
            long size = a.d[0], lo, len;       /* the feature axis of (B,n), the first of a parameter */
            if (in->parts) {
                if (size % in->parts) {
                    st = shape_fail(pg, in, err, n, "split of %s into %d parts: %ld is not a multiple of %d", sa,
                                    in->parts, size, in->parts);
                    break;
                }
                len = size / in->parts, lo = in->index * len;
            } else {
                lo = sg_size_eval(in->lo, E, H), len = sg_size_eval(in->len, E, H);
            }
            if (lo < 0 || len < 1 || lo + len > size) {
                st = shape_fail(pg, in, err, n, "%s of %s: [%ld:%ld] is outside 0..%ld (E=%d, H=%d)",
                                in->op == OP_INDEX ? "index" : "slice", sa, lo, lo + len, size, E, H);
                break;
            }
            *o = a;
            if (in->op == OP_INDEX && !a.batched && a.nd == 2)
                o->nd = 1, o->d[0] = a.d[1];        /* a row */
            else
                o->d[0] = len;
            break;
        }
        case OP_CONCAT: {
            *o = a;
            for (int k = 1; k < in->nargs && st == SG_OK; k++) {
                shape c = sh[in->arg[k]];
                if (c.batched != a.batched || c.nd != a.nd || (a.nd == 2 && c.d[1] != a.d[1])) {
                    shape_str(c, sb, sizeof sb);
                    st = shape_fail(pg, in, err, n, "concat of %s and %s: both batched (from x or a state) or both "
                                    "not, with the same trailing sizes", sa, sb);
                }
                o->d[0] += c.d[0];
            }
            break;
        }
        case OP_LERP: {
            *o = a;
            shape w = sh[in->arg[2]];
            char sw[40];
            shape_str(w, sw, sizeof sw);
            if (!same_shape(a, b) || !same_shape(a, w))
                st = shape_fail(pg, in, err, n, "lerp of %s, %s and %s: three values of one shape (E=%d, H=%d)", sa, sb,
                                sw, E, H);
            break;
        }
        case OP_BLEND: {        /* the shapes of the terms, each checked where written, then their sum */
            shape p, q, d;
            if (in->index)      /* a + z * (b - a) */
                p = a, broadcast(b, a, &d), broadcast(sh[in->arg[2]], d, &q);
            else                /* (1 - z) * a + z * b */
                broadcast(sh[in->arg[2]], a, &p), broadcast(sh[in->arg[2]], b, &q);
            if (!broadcast(p, q, o)) {
                shape_str(p, sa, sizeof sa), shape_str(q, sb, sizeof sb);
                st = shape_fail(pg, in, err, n, "'+' of %s and %s (E=%d, H=%d)", sa, sb, E, H);
            }
            break;
        }
        case OP_LAYERNORM: {
            *o = a;
            long w = a.batched || a.nd == 1 ? a.d[0] : a.d[1];
            for (int k = 1; k < in->nargs && st == SG_OK; k++) {
                shape g = sh[in->arg[k]];
                if (g.batched || g.nd != 1 || g.d[0] != w) {
                    shape_str(g, sb, sizeof sb);
                    st = shape_fail(pg, in, err, n, "layernorm of %s: its %s is %s, expected (%ld)", sa,
                                    k == 1 ? "gain" : "bias", sb, w);
                }
            }
            break;
        }
        }
        if (st == SG_OK && in->op > OP_CONST && in->op != OP_TRANS && in->live && a.number)
            st = shape_fail(pg, in, err, n, "%s of a number", op_name(in));
    }
    for (int k = 0; k < pg->n_states && st == SG_OK; k++) {
        shape s = sh[pg->out[k]];
        if (!s.batched || s.d[0] != H) {
            shape_str(s, sa, sizeof sa);
            st = shape_fail(pg, &pg->code[pg->out[k]], err, n, "%s' is %s, the state is (B,%d)", def->states[k], sa, H);
        }
    }
    free(sh);
    return st;
}

/* ---- running ---------------------------------------------------------------------------------- */

/* an operand that is an absent bias (bias: false), outside a sum */
static sg_tensor *absent(sg_tape *t, const program *pg, const insn *in)
{
    return sg_fail(t, SG_ERR_ARG, "%s:%d:%d: cell %s: an absent bias (bias: false) can be added, not used in '%s'",
                   pg->file, in->line, in->col, pg->def.name, op_name(in));
}

/* the axis a slice, split, index or concat works on: the features of a
 * batched value (its last axis), the first axis of a parameter */
static int feature_axis(const insn *in, const sg_tensor *v) { return in->phase == PH_P ? 0 : sg_tensor_ndim(v) - 1; }

/* a + x @ W (or W^T) with the product folded into the sum (fold_products):
 * one sg_addmm where a has the product's shape or is a row of its width,
 * else the product and the sum as written (whose ops name any mistake) */
static sg_tensor *run_folded_sum(sg_tape *t, const program *pg, const insn *in, sg_tensor **v)
{
    int k = in->fold - 1;
    const insn *m = &pg->code[in->arg[k]];
    sg_tensor *x = v[m->arg[0]], *w = v[m->arg[1]], *a = v[in->arg[1 - k]];
    if (!x || !w)
        return absent(t, pg, m);
    int nx = sg_tensor_ndim(x), K = sg_tensor_dim(x, nx - 1);
    bool fits = a && sg_tensor_ndim(w) == 2 && sg_tensor_dim(w, m->trans ? 1 : 0) == K;
    int N = fits ? sg_tensor_dim(w, m->trans ? 0 : 1) : 0, na = a ? sg_tensor_ndim(a) : 0;
    bool row = fits && na == 1 && sg_tensor_dim(a, 0) == N, full = fits && na == nx;
    for (int d = 0; full && d < nx; d++)
        full = sg_tensor_dim(a, d) == (d == nx - 1 ? N : sg_tensor_dim(x, d));
    if (row || full)
        return sg_addmm(t, x, w, a, m->trans ? SG_TRANS_B : 0);
    sg_tensor *p = sg_matmul_ex(t, x, w, m->trans ? SG_TRANS_B : 0);
    return a ? sg_add(t, a, p) : p;
}

static sg_tensor *run_insn(sg_tape *t, const program *pg, const sg_cell *c, const insn *in, sg_tensor **v)
{
    if (in->op == OP_ADD && in->fold)
        return run_folded_sum(t, pg, in, v);
    sg_tensor *a = in->nargs > 0 ? v[in->arg[0]] : NULL, *b = in->nargs > 1 ? v[in->arg[1]] : NULL;
    int E = c->input_size, H = c->hidden_size;
    if (in->op == OP_ADD && (!a || !b))         /* an absent bias is left out of a sum */
        return a ? a : b;
    for (int k = 0; k < in->nargs; k++)
        if (!v[in->arg[k]])
            return absent(t, pg, in);
    switch (in->op) {
    case OP_ADD:
        return sg_add(t, a, b);
    case OP_SUB:
        return sg_sub(t, a, b);
    case OP_MUL:
        return sg_mul(t, a, b);
    case OP_DIV:
        return sg_div(t, a, b);
    case OP_ADD_SCALAR:
        return sg_add_scalar(t, a, in->num);
    case OP_SCALE:
        return sg_scale(t, a, in->num);
    case OP_ONE_MINUS:
        return sg_one_minus(t, a);
    case OP_NEG:
        return sg_neg(t, a);
    case OP_UNARY:
        return unary_fns[(int)in->num].f(t, a);
    case OP_MATMUL:
        return sg_matmul_ex(t, a, b, in->trans ? SG_TRANS_B : 0);
    case OP_TRANS:
        return sg_transpose(t, a, 0, 1);
    case OP_SLICE: {
        int axis = feature_axis(in, a);
        int size = sg_tensor_dim(a, axis);
        if (in->parts)
            return sg_narrow(t, a, axis, in->index * (size / in->parts), size / in->parts);
        return sg_narrow(t, a, axis, (int)sg_size_eval(in->lo, E, H), (int)sg_size_eval(in->len, E, H));
    }
    case OP_INDEX: {
        int i = (int)sg_size_eval(in->lo, E, H);
        if (in->phase == PH_P && sg_tensor_ndim(a) == 2)
            return sg_select(t, a, 0, i);
        return sg_narrow(t, a, feature_axis(in, a), i, 1);
    }
    case OP_CONCAT: {
        sg_tensor *xs[MAX_ARGS];
        for (int k = 0; k < in->nargs; k++)
            xs[k] = v[in->arg[k]];
        return sg_concat(t, xs, in->nargs, feature_axis(in, a));
    }
    case OP_LERP:
        return sg_lerp(t, a, b, v[in->arg[2]]);
    case OP_BLEND: {
        sg_tensor *z = v[in->arg[2]];
        bool one = sg_tensor_ndim(a) == sg_tensor_ndim(b) && sg_tensor_ndim(a) == sg_tensor_ndim(z);
        for (int d = 0; one && d < sg_tensor_ndim(a); d++)
            one = sg_tensor_dim(a, d) == sg_tensor_dim(b, d) && sg_tensor_dim(a, d) == sg_tensor_dim(z, d);
        if (one)
            return sg_lerp(t, a, b, z);
        return in->index ? sg_add(t, a, sg_mul(t, z, sg_sub(t, b, a)))
                         : sg_add(t, sg_mul(t, sg_one_minus(t, z), a), sg_mul(t, z, b));
    }
    case OP_LAYERNORM:
        return sg_layer_norm(t, a, b, in->nargs > 2 ? v[in->arg[2]] : NULL, 1e-5);
    default:
        return NULL;
    }
}

/* runs the live instructions of one phase; a failure names the equation */
static sg_status run_phase(sg_tape *t, const program *pg, const sg_cell *c, int phase, sg_tensor **v)
{
    for (int k = 0; k < pg->n_run[phase]; k++) {
        int i = pg->run[phase][k];
        const insn *in = &pg->code[i];
        v[i] = run_insn(t, pg, c, in, v);       /* NULL without an error: a sum of absent biases */
        if (!v[i] && sg_tape_error(t))
            return sg_tape_error(t);
    }
    return SG_OK;
}

static sg_status prog_begin(sg_tape *t, sg_cell_run *run)
{
    const program *pg = run->ctx;
    run->scratch = sg_tape_alloc(t, (size_t)(pg->n_insn + pg->n_front), sizeof *run->scratch);
    if (!run->scratch)
        return sg_tape_error(t) ? sg_tape_error(t) : SG_ERR_NOMEM;
    for (int i = 0; i < pg->n_insn; i++)
        if (pg->code[i].op == OP_PARAM)
            run->scratch[i] = run->cell->p[pg->code[i].index];
    return run_phase(t, pg, run->cell, PH_P, run->scratch);
}

static sg_tensor *prog_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    const program *pg = run->ctx;
    sg_tensor **v = run->scratch;
    v[0] = x;
    if (run_phase(t, pg, run->cell, PH_X, v) != SG_OK)
        return NULL;
    if (pg->n_front == 0)
        return x;
    sg_tensor *parts[64];
    for (int j = 0; j < pg->n_front; j++)
        parts[j] = v[pg->n_insn + j] = v[pg->front[j]];
    return pg->n_front == 1 ? parts[0] : sg_concat(t, parts, pg->n_front, sg_tensor_ndim(x) - 1);
}

static sg_status prog_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *state, sg_tensor **next)
{
    const program *pg = run->ctx;
    sg_tensor **v = run->scratch;
    int off = 0;
    for (int j = 0; j < pg->n_front; j++) {      /* this step's slice of each X value */
        sg_tensor *whole = v[pg->n_insn + j];
        int w = sg_tensor_dim(whole, sg_tensor_ndim(whole) - 1);
        v[pg->front[j]] = pg->n_front == 1 ? xp : sg_narrow(t, xp, 1, off, w);
        off += w;
    }
    for (int k = 0; k < pg->n_states; k++)     /* the states are values 1 .. n_states */
        v[1 + k] = state[k];
    sg_status s = run_phase(t, pg, run->cell, PH_S, v);
    for (int k = 0; k < pg->n_states && s == SG_OK; k++)
        if (!(next[k] = v[pg->out[k]]))
            return sg_tape_error(t) ? sg_tape_error(t) : (absent(t, pg, &pg->code[pg->out[k]]), SG_ERR_ARG);
    return s;
}
