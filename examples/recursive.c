/*
 * recursive.c - a recursive (tree-structured) network, the lecture's
 * "another generalization of recurrent neural networks": the same weights
 * applied at every node of a parse tree, bottom up, so a sequence of n
 * leaves is read in O(log n) depth. The define-by-run tape needs nothing
 * special: a recursive C function records each tree's ops, whatever its
 * shape, and sg_backward runs back through the tree.
 *
 *   leaf d:          h = E[d]                                 (D)
 *   node (l op r):   h = tanh(W_op [h_l; h_r] + b_op)         W_op (D, 2D), one per operation
 *   the value:       y = w . h_root + c
 *
 * The trees are arithmetic expressions over the digits 0-9 with + and -,
 * up to depth 3 ("(7 - (2 + 5)) + 4"); the network learns to compute their
 * value (scaled by 1/10) by mean squared error. The program gradient-checks
 * every parameter in f64, trains, and prints expressions with its answers.
 *
 *   recursive [--check] [--steps N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

enum { MAX_NODES = 15, BATCH = 16 };

typedef struct {
    int op[MAX_NODES];        /* -1: a leaf; 0: +; 1: - */
    int left[MAX_NODES], right[MAX_NODES], digit[MAX_NODES];
    int n, root;
} tree;

/* a random expression of depth up to `depth`; returns its node */
static int grow(tree *t, int depth, sg_rng *rng)
{
    int k = t->n++;
    if (depth == 0 || sg_rng_int(rng, 3) == 0) {
        t->op[k] = -1, t->digit[k] = sg_rng_int(rng, 10);
        return k;
    }
    t->op[k] = sg_rng_int(rng, 2);
    t->left[k] = grow(t, depth - 1, rng);
    t->right[k] = grow(t, depth - 1, rng);
    return k;
}

static double value(const tree *t, int k)
{
    if (t->op[k] < 0)
        return t->digit[k];
    double l = value(t, t->left[k]), r = value(t, t->right[k]);
    return t->op[k] == 0 ? l + r : l - r;
}

static void print_tree(const tree *t, int k, bool top)
{
    if (t->op[k] < 0) {
        printf("%d", t->digit[k]);
        return;
    }
    printf("%s", top ? "" : "(");
    print_tree(t, t->left[k], false);
    printf(" %c ", t->op[k] == 0 ? '+' : '-');
    print_tree(t, t->right[k], false);
    printf("%s", top ? "" : ")");
}

typedef struct {
    sg_params *ps;
    sg_embedding leaf;        /* E (10, D) */
    sg_linear op[2];          /* W_+ and W_-: (D, 2D) and their biases */
    sg_linear out;            /* w (1, D), c */
    int D;
    tree trees[BATCH];
    int n_trees;
} model;

/* h of node k: the recursion records the tree's ops on the tape */
static sg_tensor *encode(sg_tape *tp, const model *m, const tree *t, int k)
{
    if (t->op[k] < 0)
        return sg_embedding_forward(tp, &m->leaf, &t->digit[k], 1, 1);         /* (1,1,D) */
    sg_tensor *kids[2] = {encode(tp, m, t, t->left[k]), encode(tp, m, t, t->right[k])};
    return sg_tanh(tp, sg_linear_forward(tp, &m->op[t->op[k]], sg_concat(tp, kids, 2, 2)));
}

/* the mean squared error of the batch's values (scaled by 1/10) */
static sg_tensor *loss_fn(sg_tape *tp, sg_tensor **in, void *ctx)
{
    (void)in;
    model *m = ctx;
    sg_tensor *total = NULL;
    for (int i = 0; i < m->n_trees; i++) {
        const tree *t = &m->trees[i];
        sg_tensor *y = sg_linear_forward(tp, &m->out, encode(tp, m, t, t->root));
        sg_tensor *e = sg_square(tp, sg_add_scalar(tp, y, -value(t, t->root) / 10));
        total = total ? sg_add(tp, total, e) : e;
    }
    return sg_scale(tp, sg_sum_all(tp, total), 1.0 / m->n_trees);
}

static void init(model *m, int D, sg_dtype dt, sg_rng *rng)
{
    *m = (model){.ps = sg_params_new(), .D = D};
    sg_embedding_init(&m->leaf, m->ps, "leaf.", 10, D, dt, rng);
    sg_linear_init(&m->op[0], m->ps, "plus.", 2 * D, D, true, dt, rng);
    sg_linear_init(&m->op[1], m->ps, "minus.", 2 * D, D, true, dt, rng);
    sg_linear_init(&m->out, m->ps, "out.", D, 1, true, dt, rng);
}

static void draw(model *m, int n, sg_rng *rng)
{
    m->n_trees = n;
    for (int i = 0; i < n; i++) {
        m->trees[i].n = 0;
        m->trees[i].root = grow(&m->trees[i], 3, rng);
    }
}

static bool check(sg_rng *rng)
{
    model m;
    init(&m, 3, SG_F64, rng);
    draw(&m, 3, rng);
    int n = sg_params_count(m.ps);
    sg_tensor *in[SG_GRADCHECK_MAX];
    const char *names[SG_GRADCHECK_MAX];
    for (int i = 0; i < n; i++)
        in[i] = sg_params_get(m.ps, i), names[i] = sg_params_name(m.ps, i);
    sg_gradcheck_report r;
    sg_gradcheck(loss_fn, &m, in, n, NULL, &r);
    printf("gradient check of the recursive network (f64, D=3, 3 trees, every parameter):\n");
    sg_gradcheck_print(&r, names, stdout);
    sg_params_free(m.ps);
    return r.ok;
}

static void train(int steps, sg_rng *rng)
{
    model m;
    init(&m, 32, SG_F32, rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 0.003;
    sg_optim *opt = sg_optim_new(m.ps, &oo);
    sg_tape *t = sg_tape_new();
    for (int s = 1; s <= steps; s++) {
        sg_tape_reset(t);
        draw(&m, BATCH, rng);
        if (sg_backward(t, loss_fn(t, NULL, &m)) != SG_OK)
            break;
        sg_clip_grad_norm(m.ps, 1.0);
        sg_optim_step(opt, -1);
        sg_params_zero_grad(m.ps);
    }
    sg_tape_set_grad(t, false);
    double se = 0, var = 0, mean = 0;
    int n = 0, right = 0;
    for (int k = 0; k < 20; k++) {          /* fresh trees */
        draw(&m, BATCH, rng);
        for (int i = 0; i < BATCH; i++, n++) {
            sg_tape_reset(t);
            const tree *tr = &m.trees[i];
            double y = 10 * sg_tensor_get(sg_linear_forward(t, &m.out, encode(t, &m, tr, tr->root)), 0), v = value(tr, tr->root);
            se += (y - v) * (y - v), mean += v, var += v * v, right += lround(y) == lround(v);
            if (k == 0 && i < 6) {
                printf("%s", i == 0 ? "\n" : "");
                printf("  ");
                print_tree(tr, tr->root, true);
                printf(" = %g, the network says %.2f\n", v, y);
            }
        }
    }
    mean /= n;
    printf("%d steps of %d trees (D = 32): on %d fresh trees, RMSE %.3f (the values' spread %.3f); "
           "rounded right %.1f%%\n", steps, BATCH, n, sqrt(se / n), sqrt(var / n - mean * mean), 100.0 * right / n);
    sg_tape_free(t);
    sg_optim_free(opt);
    sg_params_free(m.ps);
}

int main(int argc, char **argv)
{
    bool only_check = false;
    int steps = 8000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check"))
            only_check = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
    }
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    bool ok = check(&rng);
    if (ok && !only_check)
        train(steps, &rng);
    return ok ? 0 : 1;
}
