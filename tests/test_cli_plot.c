/*
 * test_cli_plot.c - cli/plot.c: the attention heatmap has a cell per
 * weight, shaded by it, with escaped labels and a colour scale; the loss
 * plot names its loss and draws every step; unwritable paths fail.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/plot.h"
#include "testutil.h"

static char text[65536];

static void read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
}

static int count(const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

START_TEST(test_attention_heatmap)
{
    char path[] = "/tmp/seqgrad-plot-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    double w[3 * 4] = {1, 0, 0, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.25, 0.25};
    const char *rows[] = {"a", "<b>", "</s>"}, *cols[] = {"x", "y", "&", "z"};
    ck_assert_int_eq(plot_attention(path, w, 3, 4, rows, cols, "title <3"), 0);
    read_text(path);
    ck_assert_int_eq(count("<title>"), 12);                       /* a cell per weight, its value on hover */
    ck_assert_int_eq(count("<rect"), 1 + 12 + 1 + 20 + 1);       /* background, cells, frame, scale, its frame */
    ck_assert_ptr_nonnull(strstr(text, "fill=\"rgb(8,48,107)\"><title>1.000</title>"));      /* 1: dark blue */
    ck_assert_ptr_nonnull(strstr(text, "fill=\"rgb(255,255,255)\"><title>0.000</title>"));   /* 0: white */
    ck_assert_ptr_nonnull(strstr(text, ">&lt;b&gt;</text>"));
    ck_assert_ptr_nonnull(strstr(text, ">&amp;</text>"));
    ck_assert_ptr_nonnull(strstr(text, ">title &lt;3</text>"));
    ck_assert_int_eq(plot_attention("/nonexistent/dir/a.svg", w, 3, 4, rows, cols, ""), -1);
    ck_assert_int_eq(plot_attention(path, w, 0, 4, rows, cols, ""), -1);
    unlink(path);
}
END_TEST

START_TEST(test_losses)
{
    char dir[] = "/tmp/seqgrad-plot-XXXXXX", path[100];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "step,train_loss,valid_loss,lr,grad_norm,tokens_per_s,valid_accuracy\n");
    for (int s = 1; s <= 10; s++)
        fprintf(f, "%d,%g,%s,0.01,1,100,%s\n", s, 1.0 / s, s % 5 ? "" : "0.3", s % 5 ? "" : "0.5");
    fclose(f);
    ck_assert_int_eq(plot_losses(dir, "mean squared error"), 0);
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    read_text(path);
    ck_assert_ptr_nonnull(strstr(text, ">mean squared error</text>"));
    ck_assert_int_eq(count("<circle"), 2);                       /* the two evaluations */
    const char *line = strstr(text, "<polyline");
    ck_assert_ptr_nonnull(line);
    int points = 0;
    for (const char *p = strstr(line, "points=\""); *p != '/'; p++)
        points += *p == ',';
    ck_assert_int_eq(points, 10);                                /* every step of the training loss */
    ck_assert_ptr_null(strstr(text, ">1e-1<"));                  /* 0.1 to 1: a linear axis */
    /* losses over four decades: a log axis */
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    f = fopen(path, "w");
    fprintf(f, "step,train_loss,valid_loss,lr,grad_norm,tokens_per_s,valid_accuracy\n");
    for (int s = 1; s <= 10; s++)
        fprintf(f, "%d,%g,%s,0.01,1,100,\n", s, 0.2 * pow(10, -0.4 * s), s % 5 ? "" : "0.001");
    fclose(f);
    ck_assert_int_eq(plot_losses(dir, "mean squared error"), 0);
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    read_text(path);
    ck_assert_ptr_nonnull(strstr(text, ">1e-3<"));
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(plot_losses("/nonexistent", "x"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/plot");
    TCase *tc = tcase_create("plot");
    tcase_add_test(tc, test_attention_heatmap);
    tcase_add_test(tc, test_losses);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
