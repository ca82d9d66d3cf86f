/*
 * test_cli_compare.c - cli/compare.c and the compare.* keys: a config that
 * names two cells and two seeds trains four runs and compares them; the
 * table, the SVG's panels and the HTML page hold what they should; run
 * folders that are not runs are refused with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cli/compare.h"
#include "../cli/config.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count(const char *s, const char *what)
{
    int k = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        k++;
    return k;
}

/* "my cell against LSTM over 2 seeds" is one config */
START_TEST(test_config_trains_and_compares)
{
    strcpy(dir, "/tmp/seqgrad-compare-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[200], text[2000];
    snprintf(path, sizeof path, "%s/cmp.yaml", dir);
    snprintf(text, sizeof text,
             "cell: {name: ind, states: [h], params: {weight_ih: {shape: [H, E], init: input}, u: [H], bias: [H]},\n"
             "       equations: [\"h' = relu(x @ weight_ih^T + bias + u * h)\"]}\n"
             "model: {kind: ind, hidden: 8, layers: 1}\n"
             "data: {kind: text, seq_len: 12, batch_size: 4}\n"
             "train: {steps: 6, eval_every: 3, run_dir: %s/runs, seed: 5}\n"
             "compare: {cells: [ind, lstm], seeds: 2}\n", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    sg_config c;
    ck_assert_msg(cfg_load(&c, path, err, sizeof err) == 0 && cfg_check(&c, err, sizeof err) == 0, "%s", err);
    char *log = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&log, &len);
    train_opts o = {.log = out};
    int rc = train_compare(&c, &o, err, sizeof err);
    fclose(out);
    ck_assert_msg(rc == EXIT_OK, "%s\n%s", err, log);
    /* four runs, one per cell and seed, each with its own seed */
    static const char *runs[] = {"ind-seed5", "ind-seed6", "lstm-seed5", "lstm-seed6"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/runs/%s/config.yaml", dir, runs[i]);
        const char *cfg = slurp(path);
        ck_assert_ptr_nonnull(strstr(cfg, i % 2 ? "  seed: 6\n" : "  seed: 5\n"));
        ck_assert_ptr_nonnull(strstr(cfg, i < 2 ? "  kind: \"ind\"\n" : "  kind: \"lstm\"\n"));
        ck_assert_ptr_nonnull(strstr(cfg, "  cells: []\n"));
        ck_assert_ptr_nonnull(strstr(log, runs[i]));
    }
    ck_assert_ptr_nonnull(strstr(log, "== run 3 of 4: lstm, seed 5 =="));
    /* the table: H + H*E + 2H = 8 + 8*V + 8 ... read from the checkpoint */
    ck_assert_ptr_nonnull(strstr(log, "cell                  seed  parameters final valid  best valid  at step   tokens/s  run\n"));
    char *row = strstr(log, "\nind      ");
    ck_assert_ptr_nonnull(row);
    long params;
    ck_assert_int_eq(sscanf(row, " ind %*d %ld", &params), 1);
    snprintf(path, sizeof path, "%s/runs/compare.svg", dir);
    const char *svg = slurp(path);
    ck_assert_int_eq(count(svg, "<svg"), 4);           /* the page and three panels */
    ck_assert_int_eq(count(svg, "<polyline"), 12);     /* four runs in each */
    ck_assert_ptr_nonnull(strstr(svg, "gradient norm per time step"));
    ck_assert_ptr_nonnull(strstr(svg, "stroke-dasharray"));   /* the second seed */
    ck_assert_ptr_nonnull(strstr(svg, ">ind, seed 6<"));
    snprintf(path, sizeof path, "%s/runs/compare.html", dir);
    const char *html = slurp(path);
    ck_assert_ptr_nonnull(strstr(html, "<!DOCTYPE html>"));
    ck_assert_int_eq(count(html, "<details>"), 4);
    ck_assert_int_eq(count(html, "<tr><td>"), 4);
    ck_assert_ptr_nonnull(strstr(html, "- \"h' = relu(x @ weight_ih^T + bias + u * h)\""));
    char row_html[100];
    snprintf(row_html, sizeof row_html, "<tr><td>ind</td><td>5</td><td>%ld</td>", params);
    ck_assert_ptr_nonnull(strstr(html, row_html));
    /* seqgrad compare on two of the folders, with --out elsewhere */
    const char *two[] = {NULL, NULL};
    char a[200], b[200];
    snprintf(a, sizeof a, "%s/runs/ind-seed5", dir), snprintf(b, sizeof b, "%s/runs/lstm-seed6", dir);
    two[0] = a, two[1] = b;
    free(log);
    out = open_memstream(&log, &len);
    ck_assert_msg(compare_runs(two, 2, dir, out, err, sizeof err) == EXIT_OK, "%s", err);
    fclose(out);
    snprintf(path, sizeof path, "%s/compare.svg", dir);
    ck_assert_int_eq(count(slurp(path), "<polyline"), 6);
    free(log);
    /* --out makes its folder, parents too */
    char deep[150];
    snprintf(deep, sizeof deep, "%s/plots/new", dir);
    ck_assert_msg(compare_runs(two, 2, deep, NULL, err, sizeof err) == EXIT_OK, "%s", err);
    snprintf(path, sizeof path, "%s/compare.html", deep);
    ck_assert_int_eq(access(path, R_OK), 0);
    /* not a run: said so */
    const char *bad[] = {dir};
    ck_assert_int_eq(compare_runs(bad, 1, dir, NULL, err, sizeof err), EXIT_DATA);
    char want[300];
    snprintf(want, sizeof want, "%s/config.yaml: cannot read", dir);
    ck_assert_str_eq(err, want);
    snprintf(path, sizeof path, "%s/runs/lstm-seed5/metrics.csv", dir);
    f = fopen(path, "w");
    fputs("time,loss\n", f);
    fclose(f);
    const char *broken[] = {a, path};
    snprintf(b, sizeof b, "%s/runs/lstm-seed5", dir);
    broken[1] = b;
    ck_assert_int_eq(compare_runs(broken, 2, dir, NULL, err, sizeof err), EXIT_DATA);
    snprintf(want, sizeof want, "%s/metrics.csv: not a metrics file of seqgrad", b);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(compare_runs(bad, 0, dir, NULL, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "compare: no run folders given");
    snprintf(text, sizeof text, "rm -rf %s", dir);
    ck_assert_int_eq(system(text), 0);
}
END_TEST

/* a long run: 1000 rows of metrics and 300 time steps of gradient norms
 * (the tables grow past their first allocation; found on a fresh system) */
START_TEST(test_long_runs)
{
    strcpy(dir, "/tmp/seqgrad-compare-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/run", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/run/config.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("model: {kind: gru}\ndata: {kind: text}\ntrain: {seed: 3}\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    f = fopen(path, "w");
    fputs("step,train_loss,valid_loss,lr,grad_norm,tokens_per_s,valid_accuracy\n", f);
    for (int i = 1; i <= 1000; i++)
        fprintf(f, "%d,%g,%s,0.001,1,%d,\n", i, 4.0 / i, i % 100 ? "" : "2.5", 1000 + i);
    fclose(f);
    snprintf(path, sizeof path, "%s/run/grad_norms.csv", dir);
    f = fopen(path, "w");
    fputs("t,grad_norm\n", f);
    for (int t = 1; t <= 300; t++)
        fprintf(f, "%d,%g\n", t, 1e-8 * t * t);
    fclose(f);
    char run[300], *log = NULL;
    size_t len = 0;
    snprintf(run, sizeof run, "%s/run", dir);
    const char *runs[] = {run};
    FILE *out = open_memstream(&log, &len);
    ck_assert_msg(compare_runs(runs, 1, dir, out, err, sizeof err) == EXIT_OK, "%s", err);
    fclose(out);
    /* best validation 2.5 first reached at step 100; the median of 1001..2000 tokens/s */
    ck_assert_msg(strstr(log, "gru                      3          -1      2.5000      2.5000      100       1501"), "%s", log);
    free(log);
    snprintf(path, sizeof path, "%s/compare.svg", dir);
    const char *svg = slurp(path);
    ck_assert_ptr_nonnull(strstr(svg, ">1e-4<"));       /* the gradient norms span decades: a log axis */
    snprintf(path, sizeof path, "rm -rf %s", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/compare");
    TCase *tc = tcase_create("compare");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_config_trains_and_compares);
    tcase_add_test(tc, test_long_runs);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
