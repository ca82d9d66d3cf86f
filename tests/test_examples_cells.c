/*
 * test_examples_cells.c - the gallery examples/cells (every .yaml), read as a user
 * would give them to the tool: each passes `seqgrad gradcheck` (every
 * parameter, f64), and the LSTM and GRU written as equations give the
 * built-in cells' outputs and gradients to 1e-12 in f64 from the same seed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/config.h"
#include "../cli/run.h"
#include "../cli/train.h"
#include "testutil.h"

static const char *gallery[] = {"peephole_lstm", "cifg_lstm", "indrnn", "mi_rnn", "ln_lstm", "mgu", "lstm", "gru"};
enum { N_GALLERY = sizeof gallery / sizeof gallery[0] };
static char err[1024];

static void load(sg_config *c, const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/examples/cells/%s.yaml", SOURCE_DIR, name);
    ck_assert_msg(cfg_load(c, path, err, sizeof err) == 0 && cfg_check(c, err, sizeof err) == 0, "%s", err);
    ck_assert(c->cell.present);
}

START_TEST(test_gallery_gradcheck)
{
    sg_config c;
    load(&c, gallery[_i]);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = train_gradcheck(&c, out, err, sizeof err);
    fclose(out);
    ck_assert_msg(rc == EXIT_OK, "%s: %s\n%s", gallery[_i], err, text);
    ck_assert_ptr_nonnull(strstr(text, "all parameters pass"));
    free(text);
}
END_TEST

typedef struct { sg_rnn r; } stack;

static sg_tensor *stack_loss(sg_tape *t, sg_tensor **in, void *p)
{
    stack *k = p;
    sg_tensor *fin[SG_CELL_MAX_STATES];
    sg_tensor *l = sg_sum_all(t, sg_square(t, sg_rnn_forward(t, &k->r, in[0], NULL, (int[]){6, 4}, NULL, fin)));
    for (int s = 0; s < sg_cell_n_states(k->r.def); s++)
        l = sg_add(t, l, sg_sum_all(t, sg_tanh(t, fin[s])));
    return l;
}

/* loss and every gradient of a 2-layer bidirectional stack with lengths */
static double run_stack(const sg_cell_def *def, sg_params *ps, sg_tensor *x)
{
    stack st;
    sg_rng rng;
    sg_rng_seed(&rng, 21);
    sg_rnn_opts o = sg_rnn_defaults();
    o.layers = 2, o.bidirectional = true;
    ck_assert_msg(sg_rnn_init(&st.r, def, ps, "rnn.", 3, 5, &o, SG_F64, &rng) == SG_OK, "%s", sg_params_errmsg(ps));
    sg_tape *t = sg_tape_new();
    sg_param_zero_grad(x);
    sg_tensor *l = stack_loss(t, &x, &st);
    ck_assert_msg(l && sg_backward(t, l) == SG_OK, "%s", sg_tape_errmsg(t));
    double v = sg_tensor_get(l, 0);
    sg_tape_free(t);
    return v;
}

START_TEST(test_yaml_lstm_and_gru_equal_builtin)
{
    static const struct { const char *file; const sg_cell_def *def; } pair[] = {{"lstm", &sg_lstm_cell}, {"gru", &sg_gru_cell}};
    sg_config c;
    load(&c, pair[_i].file);
    sg_cell_def *def;
    ck_assert_msg(run_compile_cell(&c, &def, err, sizeof err) == EXIT_OK, "%s", err);
    sg_params *ps[2] = {sg_params_new(), sg_params_new()};
    sg_tensor *x = tu_param(3, (int[]){2, 6, 3}, 3);
    double l0 = run_stack(pair[_i].def, ps[0], x), gx[36];
    for (int j = 0; j < 36; j++)
        gx[j] = sg_tensor_grad_get(x, (size_t)j);
    double l1 = run_stack(def, ps[1], x);
    ck_assert_double_eq_tol(l0, l1, 1e-12 * fabs(l0));
    for (int j = 0; j < 36; j++)
        ck_assert_double_eq_tol(gx[j], sg_tensor_grad_get(x, (size_t)j), 1e-12);
    ck_assert_int_eq(sg_params_count(ps[0]), sg_params_count(ps[1]));
    for (int i = 0; i < sg_params_count(ps[0]); i++) {
        sg_tensor *a = sg_params_get(ps[0], i), *b = sg_params_get(ps[1], i);
        ck_assert_str_eq(sg_params_name(ps[0], i), sg_params_name(ps[1], i));     /* PyTorch's names */
        for (size_t j = 0; j < sg_tensor_size(a); j++) {
            ck_assert_double_eq(sg_tensor_get(a, j), sg_tensor_get(b, j));          /* the same draws */
            ck_assert_double_eq_tol(sg_tensor_grad_get(a, j), sg_tensor_grad_get(b, j), 1e-12);
        }
    }
    sg_tensor_free(x);
    sg_params_free(ps[0]), sg_params_free(ps[1]);
    sg_cell_def_free(def);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("examples/cells");
    TCase *tc = tcase_create("gallery");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gallery_gradcheck, 0, N_GALLERY);
    tcase_add_loop_test(tc, test_yaml_lstm_and_gru_equal_builtin, 0, 2);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
