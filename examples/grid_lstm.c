/*
 * grid_lstm.c - a two-dimensional LSTM (Graves, Fernandez and Schmidhuber
 * 2007, "multi-dimensional recurrent neural networks"): the recurrence runs
 * over a grid instead of a line. The cell at (i, j) reads its pixel and the
 * states of its upper and left neighbours, with a forget gate for each:
 *
 *   z = W x_ij + U_up h_(i-1,j) + U_left h_(i,j-1) + b      five blocks of H
 *   i, f_up, f_left, o, g = split(z)
 *   c_ij = sigma(f_up) c_(i-1,j) + sigma(f_left) c_(i,j-1) + sigma(i) tanh(g)
 *   h_ij = sigma(o) tanh(c_ij)
 *
 * so h at the last corner has seen the whole image. The task needs that
 * reach: an N x N grid of random cells (60 % filled) is positive when a
 * filled path runs from the top row to the bottom one (percolation), which
 * no pixel, row or column decides alone. The program gradient-checks every
 * parameter in f64 (the tape differentiates the 2-D recurrence as any
 * other), trains, and prints grids with the network's answer.
 *
 *   grid_lstm [--check] [--steps N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

enum { N = 6, MAXB = 64 };

/* ---- the task: does a filled path join the top row to the bottom one? ------------ */

static bool percolates(const int *g)
{
    int seen[N * N] = {0}, stack[N * N], top = 0;
    for (int j = 0; j < N; j++)
        if (g[j])
            seen[j] = 1, stack[top++] = j;
    while (top) {
        int k = stack[--top], i = k / N, j = k % N;
        if (i == N - 1)
            return true;
        int next[4][2] = {{i + 1, j}, {i - 1, j}, {i, j + 1}, {i, j - 1}};
        for (int d = 0; d < 4; d++) {
            int a = next[d][0], b = next[d][1];
            if (a >= 0 && a < N && b >= 0 && b < N && g[a * N + b] && !seen[a * N + b])
                seen[a * N + b] = 1, stack[top++] = a * N + b;
        }
    }
    return false;
}

/* a grid whose class is drawn first (half of them percolate) */
static int draw(int *g, sg_rng *rng)
{
    int want = sg_rng_int(rng, 2);
    for (;;) {
        for (int k = 0; k < N * N; k++)
            g[k] = sg_rng_uniform(rng) < 0.6;
        if (percolates(g) == want)
            return want;
    }
}

/* ---- the model ------------------------------------------------------------------------ */

typedef struct {
    sg_params *ps;
    sg_tensor *w, *u_up, *u_left, *b;     /* (5H,1), (5H,H), (5H,H), (5H) */
    sg_linear out;
    int H, B;
    int grid[MAXB][N * N], label[MAXB];
} model;

static sg_tensor *param(model *m, const char *name, int rows, int cols, sg_dtype dt, sg_rng *rng)
{
    double k = 1 / sqrt((double)m->H);
    return sg_params_add(m->ps, name, cols ? sg_param_uniform(dt, 2, (int[]){rows, cols}, -k, k, rng)
                                           : sg_param_uniform(dt, 1, (int[]){rows}, -k, k, rng));
}

static void init(model *m, int H, int B, sg_dtype dt, sg_rng *rng)
{
    *m = (model){.ps = sg_params_new(), .H = H, .B = B};
    m->w = param(m, "weight_x", 5 * H, 1, dt, rng);
    m->u_up = param(m, "weight_up", 5 * H, H, dt, rng);
    m->u_left = param(m, "weight_left", 5 * H, H, dt, rng);
    m->b = param(m, "bias", 5 * H, 0, dt, rng);
    sg_linear_init(&m->out, m->ps, "out.", H, 2, true, dt, rng);
}

/* the logits (B,2): the cell swept over the grid row by row */
static sg_tensor *forward(sg_tape *t, model *m)
{
    int B = m->B, H = m->H;
    sg_dtype dt = sg_tensor_dtype(m->b);
    sg_tensor *h[N][N], *c[N][N], *zero = sg_zeros(t, dt, 2, (int[]){B, H});
    double x[MAXB];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            for (int b = 0; b < B; b++)
                x[b] = m->grid[b][i * N + j];
            sg_tensor *xij = sg_tensor_from_f64(t, dt, 2, (int[]){B, 1}, x);
            sg_tensor *hu = i ? h[i - 1][j] : zero, *hl = j ? h[i][j - 1] : zero;
            sg_tensor *cu = i ? c[i - 1][j] : zero, *cl = j ? c[i][j - 1] : zero;
            sg_tensor *z = sg_add(t, sg_add(t, sg_add(t, sg_matmul_ex(t, xij, m->w, SG_TRANS_B),
                                                      sg_matmul_ex(t, hu, m->u_up, SG_TRANS_B)),
                                            sg_matmul_ex(t, hl, m->u_left, SG_TRANS_B)), m->b);
            sg_tensor *in = sg_sigmoid(t, sg_narrow(t, z, 1, 0, H));
            sg_tensor *fu = sg_sigmoid(t, sg_narrow(t, z, 1, H, H)), *fl = sg_sigmoid(t, sg_narrow(t, z, 1, 2 * H, H));
            sg_tensor *o = sg_sigmoid(t, sg_narrow(t, z, 1, 3 * H, H)), *g = sg_tanh(t, sg_narrow(t, z, 1, 4 * H, H));
            c[i][j] = sg_add(t, sg_add(t, sg_mul(t, fu, cu), sg_mul(t, fl, cl)), sg_mul(t, in, g));
            h[i][j] = sg_mul(t, o, sg_tanh(t, c[i][j]));
        }
    return sg_linear_forward(t, &m->out, h[N - 1][N - 1]);
}

static sg_tensor *loss_fn(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)in;
    model *m = ctx;
    return sg_cross_entropy(t, forward(t, m), m->label, NULL);
}

static void fill(model *m, sg_rng *rng)
{
    for (int b = 0; b < m->B; b++)
        m->label[b] = draw(m->grid[b], rng);
}

static bool check(sg_rng *rng)
{
    model m;
    init(&m, 2, 2, SG_F64, rng);
    fill(&m, rng);
    int n = sg_params_count(m.ps);
    sg_tensor *in[SG_GRADCHECK_MAX];
    const char *names[SG_GRADCHECK_MAX];
    for (int i = 0; i < n; i++)
        in[i] = sg_params_get(m.ps, i), names[i] = sg_params_name(m.ps, i);
    sg_gradcheck_report r;
    sg_gradcheck(loss_fn, &m, in, n, NULL, &r);
    printf("gradient check of the 2-D LSTM (f64, %dx%d grid, H=2, B=2, every parameter):\n", N, N);
    sg_gradcheck_print(&r, names, stdout);
    sg_params_free(m.ps);
    return r.ok;
}

static void train(int steps, sg_rng *rng)
{
    model m;
    init(&m, 24, 32, SG_F32, rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 0.01;
    sg_optim *opt = sg_optim_new(m.ps, &oo);
    sg_tape *t = sg_tape_new();
    for (int s = 1; s <= steps; s++) {
        sg_tape_reset(t);
        fill(&m, rng);
        if (sg_backward(t, loss_fn(t, NULL, &m)) != SG_OK)
            break;
        sg_clip_grad_norm(m.ps, 1.0);
        sg_optim_step(opt, -1);
        sg_params_zero_grad(m.ps);
    }
    sg_tape_set_grad(t, false);
    int right = 0, total = 0;
    sg_tensor *z = NULL;
    for (int k = 0; k < 20; k++) {
        sg_tape_reset(t);
        fill(&m, rng);
        z = forward(t, &m);
        for (int b = 0; b < m.B; b++, total++)
            right += (sg_tensor_get(z, (size_t)b * 2 + 1) > sg_tensor_get(z, (size_t)b * 2)) == m.label[b];
    }
    printf("\n%d steps of %d grids (H = 24): accuracy %.1f%% on %d fresh %dx%d grids (chance 50%%)\n", steps, m.B,
           100.0 * right / total, total, N, N);
    for (int b = 0; b < 3; b++) {           /* three grids of the last batch, side by side */
        printf("\n");
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < 3; k++) {
                for (int j = 0; j < N; j++)
                    putchar(m.grid[3 * b + k][i * N + j] ? '#' : '.');
                printf("    ");
            }
            printf("\n");
        }
        for (int k = 0; k < 3; k++) {
            int idx = 3 * b + k, said = sg_tensor_get(z, (size_t)idx * 2 + 1) > sg_tensor_get(z, (size_t)idx * 2);
            printf("%-6s%s", m.label[idx] ? "joins" : "cut", said == m.label[idx] ? " ok " : " no ");
        }
        printf("\n");
    }
    sg_tape_free(t);
    sg_optim_free(opt);
    sg_params_free(m.ps);
}

int main(int argc, char **argv)
{
    bool only_check = false;
    int steps = 1500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check"))
            only_check = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
    }
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    bool ok = check(&rng);
    if (ok && !only_check)
        train(steps, &rng);
    return ok ? 0 : 1;
}
