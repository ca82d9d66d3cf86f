/*
 * compare.c - runs side by side: their training and validation losses and
 * their gradient norm per time step on shared axes in one SVG, a table
 * (cell, seed, parameters, final and best validation loss, tokens/s), and
 * one HTML page holding both and each run's config, which a browser opens
 * from disk. Each run is read from its folder: metrics.csv, config.yaml,
 * checkpoint.safetensors and (recurrent text or adding runs) grad_norms.csv.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "compare.h"
#include "config.h"
#include "plot.h"

typedef struct {
    const char *dir;
    char label[160], cell[128];
    long seed, params;
    int n, cap, n_norms;
    double *step, *train, *valid, *tokens_s, *norm_t, *norm;
    double final_valid, best_valid;
    long best_step;
    double median_tokens_s;
    char *config;           /* config.yaml as written */
} run_view;

static void view_free(run_view *v)
{
    free(v->step), free(v->train), free(v->valid), free(v->tokens_s), free(v->norm_t), free(v->norm), free(v->config);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int push(double **a, int n, int *cap, double v)
{
    if (n == *cap) {
        int grown = *cap ? *cap * 2 : 256;
        double *b = realloc(*a, (size_t)grown * sizeof *b);
        if (!b)
            return -1;
        *a = b, *cap = grown;
    }
    (*a)[n] = v;
    return 0;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* metrics.csv: step, train_loss, valid_loss, lr, grad_norm, tokens_per_s[, valid_accuracy] */
static int read_metrics(run_view *v, char *err, size_t n)
{
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", v->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_fail(err, n, -1, "%s: no metrics.csv (is it a run folder?)", v->dir);
    if (!fgets(line, sizeof line, f) || strncmp(line, "step,train_loss,valid_loss,", 27)) {
        fclose(f);
        return cli_fail(err, n, -1, "%s: not a metrics file of seqgrad", path);
    }
    int cap[4] = {0};
    v->best_valid = v->final_valid = NAN;
    while (fgets(line, sizeof line, f)) {
        double col[6];
        char *p = line;
        for (int k = 0; k < 6; k++) {
            char *end;
            col[k] = *p == ',' || *p == '\n' ? NAN : strtod(p, &end);
            p = *p == ',' || *p == '\n' ? p : end;
            p += *p == ',';
        }
        int i = v->n;
        if (push(&v->step, i, &cap[0], col[0]) || push(&v->train, i, &cap[1], col[1]) ||
            push(&v->valid, i, &cap[2], col[2]) || push(&v->tokens_s, i, &cap[3], col[5])) {
            fclose(f);
            return cli_fail(err, n, -1, "out of memory");
        }
        v->n++;
        if (!isnan(col[2])) {
            v->final_valid = col[2];
            if (isnan(v->best_valid) || col[2] < v->best_valid)
                v->best_valid = col[2], v->best_step = (long)col[0];
        }
    }
    fclose(f);
    if (v->n == 0)
        return cli_fail(err, n, -1, "%s: no steps yet", path);
    double *t = malloc((size_t)v->n * sizeof *t);
    int k = 0;
    for (int i = 0; t && i < v->n; i++)
        if (isfinite(v->tokens_s[i]))
            t[k++] = v->tokens_s[i];
    if (t && k)
        qsort(t, (size_t)k, sizeof *t, by_value);
    v->median_tokens_s = t && k ? t[k / 2] : NAN;
    free(t);
    return 0;
}

static void read_norms(run_view *v)
{
    char path[600], line[128];
    snprintf(path, sizeof path, "%s/grad_norms.csv", v->dir);
    FILE *f = fopen(path, "r");
    int cap[2] = {0};
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return;
    }
    double t, g;
    while (fgets(line, sizeof line, f) && sscanf(line, "%lf,%lf", &t, &g) == 2)
        if (push(&v->norm_t, v->n_norms, &cap[0], t) || push(&v->norm, v->n_norms, &cap[1], g) || !++v->n_norms)
            break;
    fclose(f);
}

/* the cell (model.kind, or model.cell of seq2seq), the seed and the
 * parameter count, from the run's config and checkpoint */
static int read_run(run_view *v, char *err, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.yaml", v->dir);
    sg_config c;
    if (!(v->config = read_all(path)) || cfg_load_text(&c, path, v->config, strlen(v->config), err, n) != 0)
        return v->config ? -1 : (snprintf(err, n, "%s: cannot read", path), -1);
    const char *kind = cfg_str(&c, "model.kind");
    snprintf(v->cell, sizeof v->cell, "%s", strcmp(kind, "seq2seq") ? kind : cfg_str(&c, "model.cell"));
    v->seed = cfg_int(&c, "train.seed");
    snprintf(v->label, sizeof v->label, "%s, seed %ld", v->cell, v->seed);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", v->dir);
    sg_ckpt *ck = sg_ckpt_open(path);
    v->params = -1;
    if (sg_ckpt_error(ck) == SG_OK) {
        v->params = 0;
        for (int i = 0; i < sg_ckpt_count(ck); i++) {
            const sg_ckpt_entry *e = sg_ckpt_get(ck, i);
            long size = 1;
            for (int d = 0; d < e->ndim; d++)
                size *= e->shape[d];
            if (!strncmp(e->name, "model.", 6))
                v->params += size;
        }
    }
    sg_ckpt_close(ck);
    if (read_metrics(v, err, n) != 0)
        return -1;
    read_norms(v);
    return 0;
}

/* ---- the SVG: three panels side by side ------------------------------------------- */

/* whether positive values span more than a decade */
static bool spans_decades(const run_view *v, int nv, int which)
{
    double lo = INFINITY, hi = 0;
    for (int r = 0; r < nv; r++) {
        const double *y = which == 0 ? v[r].train : which == 1 ? v[r].valid : v[r].norm;
        int len = which == 2 ? v[r].n_norms : v[r].n;
        for (int i = 0; i < len; i++)
            if (y[i] > 0)
                lo = fmin(lo, y[i]), hi = fmax(hi, y[i]);
    }
    return hi > 10 * lo;
}

static void write_svg(FILE *o, const run_view *v, int nv, const int *colour)
{
    plot_series *s = calloc((size_t)nv, sizeof *s);
    double **vx = calloc((size_t)nv, sizeof *vx), **vy = calloc((size_t)nv, sizeof *vy);
    if (!s || !vx || !vy) {
        free(s), free(vx), free(vy);
        return;
    }
    bool norms = false;
    for (int r = 0; r < nv; r++)
        norms |= v[r].n_norms > 0;
    int panels = norms ? 3 : 2;
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", PLOT_W * panels, PLOT_H);
    for (int r = 0; r < nv; r++)
        s[r] = (plot_series){.label = v[r].label, .x = v[r].step, .y = v[r].train, .n = v[r].n, .colour = colour[r],
                             .dashed = r > 0 && colour[r] == colour[r - 1]};
    plot_axes ax = {"training loss (each step)", "step", "loss", spans_decades(v, nv, 0), 0, 0};
    plot_lines_to(o, 0, 0, s, nv, &ax);
    for (int r = 0; r < nv; r++) {         /* the evaluations only, joined */
        vx[r] = malloc((size_t)v[r].n * sizeof **vx), vy[r] = malloc((size_t)v[r].n * sizeof **vy);
        int k = 0;
        for (int i = 0; vx[r] && vy[r] && i < v[r].n; i++)
            if (!isnan(v[r].valid[i]))
                vx[r][k] = v[r].step[i], vy[r][k++] = v[r].valid[i];
        s[r].x = vx[r], s[r].y = vy[r], s[r].n = vx[r] && vy[r] ? k : 0;
    }
    ax = (plot_axes){"validation loss", "step", "loss", spans_decades(v, nv, 1), 0, 0};
    plot_lines_to(o, PLOT_W, 0, s, nv, &ax);
    if (norms) {
        for (int r = 0; r < nv; r++)
            s[r].x = v[r].norm_t, s[r].y = v[r].norm, s[r].n = v[r].n_norms;
        ax = (plot_axes){"gradient norm per time step, loss on the last step", "time step t",
                         "||dL/dh_t||", spans_decades(v, nv, 2), 0, 0};
        plot_lines_to(o, 2 * PLOT_W, 0, s, nv, &ax);
    }
    fprintf(o, "</svg>\n");
    for (int r = 0; r < nv; r++)
        free(vx[r]), free(vy[r]);
    free(s), free(vx), free(vy);
}

/* ---- the table and the page ------------------------------------------------------------ */

static void num(char *out, size_t n, double v, const char *fmt)
{
    if (isnan(v))
        snprintf(out, n, "-");
    else
        snprintf(out, n, fmt, v);
}

static void write_table(FILE *o, const run_view *v, int nv, bool html)
{
    if (html)
        fprintf(o, "<table>\n<tr><th>cell</th><th>seed</th><th>parameters</th><th>final validation loss</th>"
                   "<th>best validation loss</th><th>at step</th><th>tokens/s</th><th>run</th></tr>\n");
    else
        fprintf(o, "%-20s %5s %11s %11s %11s %8s %10s  %s\n", "cell", "seed", "parameters", "final valid", "best valid",
                "at step", "tokens/s", "run");
    for (int r = 0; r < nv; r++) {
        char fin[32], best[32], tok[32];
        num(fin, sizeof fin, v[r].final_valid, "%.4f");
        num(best, sizeof best, v[r].best_valid, "%.4f");
        num(tok, sizeof tok, v[r].median_tokens_s, "%.0f");
        if (html) {
            fprintf(o, "<tr><td>");
            plot_put_text(o, v[r].cell);
            fprintf(o, "</td><td>%ld</td><td>%ld</td><td>%s</td><td>%s</td><td>%ld</td><td>%s</td><td>", v[r].seed,
                    v[r].params, fin, best, v[r].best_step, tok);
            plot_put_text(o, v[r].dir);
            fprintf(o, "</td></tr>\n");
        } else {
            fprintf(o, "%-20s %5ld %11ld %11s %11s %8ld %10s  %s\n", v[r].cell, v[r].seed, v[r].params, fin, best,
                    v[r].best_step, tok, v[r].dir);
        }
    }
    if (html)
        fprintf(o, "</table>\n");
}

static int write_html(const char *path, const char *svg_text, const run_view *v, int nv)
{
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>seqgrad compare</title>\n"
               "<style>body{font-family:sans-serif;margin:24px} table{border-collapse:collapse;margin:16px 0}"
               "td,th{border:1px solid #bbb;padding:4px 10px;text-align:right} th{background:#f0f0f0}"
               "pre{background:#f7f7f7;padding:8px;overflow:auto} .plots{overflow-x:auto}</style></head>\n<body>\n"
               "<h1>%d runs compared</h1>\n<div class=\"plots\">\n%s</div>\n", nv, svg_text);
    fprintf(o, "<p>Tokens/s is the median over the run's steps. The gradient norm is measured at the last evaluation "
               "of a loss on the last time step only: how far back the gradient reaches.</p>\n");
    write_table(o, v, nv, true);
    for (int r = 0; r < nv; r++) {
        fprintf(o, "<details><summary>");
        plot_put_text(o, v[r].label);
        fprintf(o, ": config.yaml</summary><pre>");
        plot_put_text(o, v[r].config);
        fprintf(o, "</pre></details>\n");
    }
    fprintf(o, "</body></html>\n");
    return fclose(o) == 0 ? 0 : -1;
}

int compare_runs(const char *const *dirs, int nv, const char *out_dir, FILE *out, char *err, size_t n)
{
    if (nv < 1)
        return cli_fail(err, n, EXIT_USAGE, "compare: no run folders given");
    run_view *v = calloc((size_t)nv, sizeof *v);
    int *colour = calloc((size_t)nv, sizeof *colour), rc = EXIT_OK;
    if (!v || !colour) {
        free(v);
        free(colour);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    int cells = 0;
    for (int r = 0; r < nv && rc == EXIT_OK; r++) {
        v[r].dir = dirs[r];
        if (read_run(&v[r], err, n) != 0)
            rc = EXIT_DATA;
        else {      /* one colour per cell, seeds dashed after the first */
            colour[r] = 0;
            for (int q = 0; q < r && !colour[r]; q++)
                if (!strcmp(v[q].cell, v[r].cell))
                    colour[r] = colour[q];
            if (!colour[r])
                colour[r] = 1 + cells++ % 6;
        }
    }
    char *svg = NULL;
    size_t svg_len = 0;
    if (rc == EXIT_OK && cli_make_dirs(out_dir) != 0)
        rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot make the folder: %s", out_dir, strerror(errno));
    FILE *mem = rc == EXIT_OK ? open_memstream(&svg, &svg_len) : NULL;
    if (rc == EXIT_OK && mem) {
        write_svg(mem, v, nv, colour);
        fclose(mem);
        char path[600];
        snprintf(path, sizeof path, "%s/compare.svg", out_dir);
        FILE *f = fopen(path, "w");
        if (!f || fwrite(svg, 1, svg_len, f) != svg_len || fclose(f) != 0)
            rc = cli_fail(err, n, EXIT_FAIL, "cannot write %s", path);
        snprintf(path, sizeof path, "%s/compare.html", out_dir);
        if (rc == EXIT_OK && write_html(path, svg, v, nv) != 0)
            rc = cli_fail(err, n, EXIT_FAIL, "cannot write %s", path);
        if (rc == EXIT_OK && out) {
            write_table(out, v, nv, false);
            fprintf(out, "wrote %s/compare.svg and %s/compare.html\n", out_dir, out_dir);
        }
    } else if (rc == EXIT_OK) {
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    free(svg);
    for (int r = 0; r < nv; r++)
        view_free(&v[r]);
    free(v), free(colour);
    return rc;
}
