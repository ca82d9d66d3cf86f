/*
 * test_cli_figure.c - cli/figure.c: the gradient picture shows what the
 * lecture says (a tanh RNN with W_hh = 0.5 Q vanishes, with 3 Q explodes,
 * an LSTM with a large forget bias keeps its gradient), with one line per
 * model in the SVG; the gates picture reads the sigmoid gates of the first
 * layer in PyTorch's block order (checked on weights set by hand so that
 * each gate's value is known), for LSTM and GRU runs; errors are named.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/figure.h"
#include "../cli/run.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024], out[16384];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-figure-XXXXXX");
    if (!mkdtemp(dir))
        exit(1);
    cu_train(dir, "lstm", "model: {kind: lstm, hidden: 16, layers: 2}\ndata: {kind: text, seq_len: 16, batch_size: 4}\n", 5);
    cu_train(dir, "gru", "model: {kind: gru, hidden: 8, layers: 1}\ndata: {kind: text, seq_len: 16, batch_size: 4}\n", 5);
    cu_train(dir, "tlm", "model: {kind: transformer, hidden: 8, layers: 1, heads: 2}\n"
                 "data: {kind: text, seq_len: 16, batch_size: 4}\n", 2);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_cli_figure: could not remove %s\n", dir);
}

static figure_opts defaults(const char *svg)
{
    static char path[200];
    snprintf(path, sizeof path, "%s/%s", dir, svg);
    return (figure_opts){.out = path, .steps = 40, .hidden = 16, .batch = 8, .seed = 1, .gain_small = 0.5,
                         .gain_large = 3, .forget_bias = 3, .text = "In the beginning God created the heaven"};
}

typedef int figure_fn(const char *checkpoint, const figure_opts *o, FILE *fp, char *err, size_t n);

static int run_gates(const char *checkpoint, const figure_opts *o)
{
    FILE *fp = tmpfile();
    err[0] = '\0';
    int rc = figure_gates(checkpoint, o, fp, err, sizeof err);
    rewind(fp);
    out[fread(out, 1, sizeof out - 1, fp)] = '\0';
    fclose(fp);
    return rc;
}

static int count(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s was not written", path);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    return buf;
}

/* the value in the table row `label` at column c (0 = t - k of 0) */
static double table(const char *label, int c)
{
    const char *row = strstr(out, label);
    ck_assert_msg(row != NULL, "no row %s in:\n%s", label, out);
    row += strlen(label);
    double v = NAN;
    for (int k = 0; k <= c; k++)
        v = strtod(row, (char **)&row);
    return v;
}

START_TEST(test_figure_gradients)
{
    figure_opts o = defaults("gradients.svg");
    FILE *fp = tmpfile();
    ck_assert_int_eq(figure_gradients(&o, fp, err, sizeof err), EXIT_OK);
    rewind(fp);
    out[fread(out, 1, sizeof out - 1, fp)] = '\0';
    fclose(fp);
    /* columns: t - k = 0, 10, 25, 39 */
    ck_assert_msg(strstr(out, "model                             0         10         25         39\n"), "%s", out);
    double small0 = table("tanh RNN, W_hh = 0.5 Q", 0), small39 = table("tanh RNN, W_hh = 0.5 Q", 3);
    double large39 = table("tanh RNN, W_hh = 3 Q", 3), kept39 = table("LSTM, forget bias 3", 3);
    ck_assert_double_gt(small0, 0);
    ck_assert_msg(small39 < 1e-6 * small0, "vanishing: %g -> %g", small0, small39);
    ck_assert_msg(large39 > 1e3 * small0, "exploding: %g -> %g", small0, large39);
    ck_assert_msg(kept39 > 1e-2 * small0 && kept39 < 10 * small0, "kept: %g -> %g", small0, kept39);
    ck_assert_msg(table("LSTM (PyTorch init)", 3) < 1e-4 * small0, "an LSTM at PyTorch's init vanishes too");
    /* every model's loss sits on the same h_t: the same gradient at t - k = 0 */
    ck_assert_double_eq_tol(table("GRU (PyTorch init)", 0), small0, 1e-12);
    const char *svg = slurp(o.out);
    ck_assert_int_eq(count(svg, "<polyline"), 5);
    ck_assert_ptr_nonnull(strstr(svg, ">tanh RNN, W_hh = 3 Q</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">||dL/dh_k|| (log scale)</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">1</text>"));               /* decade ticks: 1, 1e-5, 1e5 */
}
END_TEST

/* weights zero and biases set by hand: each gate is sigmoid(b_ih + b_hh),
 * known in advance, so the shares name the blocks (i, f, g, o) right */
START_TEST(test_figure_gates_known_values)
{
    char run_dir[100], ckpt[200];
    snprintf(run_dir, sizeof run_dir, "%s/lstm", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
    run r = {0};
    ck_assert_int_eq(run_open(&r, run_dir, NULL, USE_VOCAB, err, sizeof err), EXIT_OK);
    int H = r.H;
    const sg_cell *c = &r.rnn.cell[0][0];
    for (size_t i = 0; i < sg_tensor_size(c->p[0]); i++)
        sg_tensor_set(c->p[0], i, 0);
    for (size_t i = 0; i < sg_tensor_size(c->p[1]); i++)
        sg_tensor_set(c->p[1], i, 0);
    static const double bias[4] = {0, 3, -5, -3};     /* i: 0.5, f: 0.95, g: -, o: 0.047 */
    for (int g = 0; g < 4; g++)
        for (int u = 0; u < H; u++) {
            sg_tensor_set(c->p[2], (size_t)g * H + u, bias[g] / 2);
            sg_tensor_set(c->p[3], (size_t)g * H + u, bias[g] / 2);
        }
    ck_assert_int_eq(run_save(&r, err, sizeof err), EXIT_OK);
    run_free(&r);
    figure_opts o = defaults("gates.svg");
    ck_assert_msg(run_gates(ckpt, &o) == EXIT_OK, "%s", err);
    ck_assert_msg(strstr(out, "gates of layer 1 of lstm (16 units) over 39 characters:\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "input gate i          0.500       0.0%       0.0%       0.0%\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "forget gate f         0.953     100.0%       0.0%     100.0%\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "output gate o         0.047       0.0%     100.0%     100.0%\n") != NULL, "%s", out);
    const char *svg = slurp(o.out);
    ck_assert_int_eq(count(svg, "<polyline"), 3);
    ck_assert_ptr_nonnull(strstr(svg, ">forget gate f</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">share of units saturated</text>"));
}
END_TEST

START_TEST(test_figure_gates_gru)
{
    char ckpt[200];
    snprintf(ckpt, sizeof ckpt, "%s/gru/checkpoint.safetensors", dir);
    figure_opts o = defaults("gates_gru.svg");
    ck_assert_msg(run_gates(ckpt, &o) == EXIT_OK, "%s", err);
    ck_assert_msg(strstr(out, "reset gate r ") && strstr(out, "update gate z "), "%s", out);
    ck_assert_int_eq(count(slurp(o.out), "<polyline"), 2);
}
END_TEST

START_TEST(test_figure_gates_errors)
{
    char ckpt[200];
    figure_opts o = defaults("never.svg");
    snprintf(ckpt, sizeof ckpt, "%s/tlm/checkpoint.safetensors", dir);
    ck_assert_int_eq(run_gates(ckpt, &o), EXIT_USAGE);
    char want[400];
    snprintf(want, sizeof want, "figure gates: %s is a transformer model; the gates need an LSTM or GRU language model",
             ckpt);
    ck_assert_str_eq(err, want);
    snprintf(ckpt, sizeof ckpt, "%s/gru/checkpoint.safetensors", dir);
    o.text = "abc\x01";
    ck_assert_int_eq(run_gates(ckpt, &o), EXIT_USAGE);
    ck_assert_str_eq(err, "figure gates: --text: byte 0x01 at offset 3 is not in the model's vocabulary");
    o.text = "";
    ck_assert_int_eq(run_gates(ckpt, &o), EXIT_USAGE);
    ck_assert_str_eq(err, "figure gates: --text is empty");
    ck_assert(access(o.out, F_OK) != 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/figure");
    TCase *tc = tcase_create("figures");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_figure_gradients);
    tcase_add_test(tc, test_figure_gates_known_values);
    tcase_add_test(tc, test_figure_gates_gru);
    tcase_add_test(tc, test_figure_gates_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
