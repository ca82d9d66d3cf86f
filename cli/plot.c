/*
 * plot.c - loss curves as SVG: axes with ticks, the training loss as a thin
 * line, the validation loss as points joined by a thicker line, a legend.
 * Plain SVG 1.1, so any browser opens it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

enum { W = 720, H = 420, L = 70, R = 20, TOP = 40, BOT = 50 };

static double sx(double x, double x0, double x1) { return L + (x - x0) / (x1 - x0 > 0 ? x1 - x0 : 1) * (W - L - R); }
static double sy(double y, double y0, double y1) { return TOP + (1 - (y - y0) / (y1 - y0 > 0 ? y1 - y0 : 1)) * (H - TOP - BOT); }

int plot_losses(const char *run_dir, const char *ylabel)
{
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = 0, cap = 1024;
    double *step = malloc(cap * sizeof *step), *tr = malloc(cap * sizeof *tr), *va = malloc(cap * sizeof *va);
    if (!step || !tr || !va || !fgets(line, sizeof line, f)) {      /* header */
        fclose(f), free(step), free(tr), free(va);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap *= 2;
            double *a = realloc(step, cap * sizeof *a), *b = a ? realloc(tr, cap * sizeof *b) : NULL;
            double *c = b ? realloc(va, cap * sizeof *c) : NULL;
            step = a ? a : step, tr = b ? b : tr, va = c ? c : va;
            if (!c) {
                fclose(f), free(step), free(tr), free(va);
                return -1;
            }
        }
        char *p = line, *end;
        step[n] = strtod(p, &end);
        p = end + 1;
        tr[n] = strtod(p, &end);
        p = end + 1;
        va[n] = *p == ',' ? NAN : strtod(p, &end);
        n++;
    }
    fclose(f);
    double x0 = n ? step[0] : 0, x1 = n ? step[n - 1] : 1, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        y0 = fmin(y0, tr[i]), y1 = fmax(y1, tr[i]);
        if (!isnan(va[i]))
            y0 = fmin(y0, va[i]), y1 = fmax(y1, va[i]);
    }
    /* the validation points alone; a log axis when the losses span more than a decade (the adding problem's
     * mean squared error falls from 0.2 to 1e-4: on a linear axis it is a flat line after step 1000) */
    double *vx = malloc((n + 1) * sizeof *vx), *vy = malloc((n + 1) * sizeof *vy);
    int nv = 0;
    for (size_t i = 0; vx && vy && i < n; i++)
        if (!isnan(va[i]))
            vx[nv] = step[i], vy[nv++] = va[i];
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = tr[i] > 0 ? fmin(lo, tr[i]) : lo, hi = fmax(hi, tr[i]);
        lo = va[i] > 0 ? fmin(lo, va[i]) : lo, hi = fmax(hi, isnan(va[i]) ? hi : va[i]);
    }
    (void)x0, (void)x1, (void)y0, (void)y1;
    plot_series ser[2] = {{.label = "training", .x = step, .y = tr, .n = (int)n, .colour = 1},
                          {.label = "validation", .x = vx, .y = vy, .n = vx && vy ? nv : 0, .colour = 2, .points = true}};
    char title[700];
    snprintf(title, sizeof title, "loss per step: %s", run_dir);
    plot_axes ax = {title, "step", ylabel, hi > 10 * lo, 0, 0};
    snprintf(path, sizeof path, "%s/loss.svg", run_dir);
    int rc = plot_lines(path, ser, 2, &ax);
    free(step), free(tr), free(va), free(vx), free(vy);
    return rc;
}

int plot_grad_norms(const char *path, const double *norms, int n, const char *title)
{
    FILE *o = fopen(path, "w");
    if (!o || n < 1)
        return o ? fclose(o), -1 : -1;
    double lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < n; t++)
        if (norms[t] > 0)
            lo = fmin(lo, log10(norms[t])), hi = fmax(hi, log10(norms[t]));
    if (!isfinite(lo))
        lo = -1, hi = 0;
    lo = floor(lo), hi = ceil(hi);
    if (hi <= lo)
        hi = lo + 1;
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(o, "<text x=\"%d\" y=\"24\" font-size=\"15\">||dL/dh_t|| for a loss at the last step: %s</text>\n", L, title);
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, H - BOT, W - R, H - BOT);
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, TOP, L, H - BOT);
    int every = (int)ceil((hi - lo) / 12);      /* at most ~12 labelled decades */
    for (double e = lo; e <= hi + 1e-9; e += 1) {  /* a grid line per decade */
        double y = sy(e, lo, hi);
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
        if ((long)(hi - e) % every == 0)
            fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1e%+.0f</text>\n", L - 6, y + 4, e);
    }
    for (int k = 0; k <= 4; k++) {
        double t = (n - 1) * k / 4.0;
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", sx(t, 0, n - 1), H - BOT + 18, t + 1);
    }
    fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time step t (the loss is at t = %d)</text>\n",
            (L + W - R) / 2, H - 12, n);
    fprintf(o, "<polyline fill=\"none\" stroke=\"#2a8a4a\" stroke-width=\"2\" points=\"");
    for (int t = 0; t < n; t++)
        if (norms[t] > 0)
            fprintf(o, "%.1f,%.1f ", sx(t, 0, n - 1), sy(log10(norms[t]), lo, hi));
    fprintf(o, "\"/>\n</svg>\n");
    return fclose(o) == 0 ? 0 : -1;
}

/* a weight in [0, 1] as a colour from white (0) to dark blue (1) */
static void put_shade(FILE *o, double v)
{
    fprintf(o, "rgb(%d,%d,%d)", (int)lround(255 - v * 247), (int)lround(255 - v * 207), (int)lround(255 - v * 148));
}

/* text with <, > and & escaped */
void plot_put_text(FILE *o, const char *s)
{
    for (; *s; s++)
        fputs(*s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : (char[]){*s, 0}, o);
}

int plot_attention(const char *path, const double *w, int rows, int cols, const char *const *row_labels,
                   const char *const *col_labels, const char *title)
{
    return plot_heatmap(path, w, rows, cols, row_labels, col_labels, title, "output", "source");
}

int plot_heatmap(const char *path, const double *w, int rows, int cols, const char *const *row_labels,
                 const char *const *col_labels, const char *title, const char *row_axis, const char *col_axis)
{
    if (rows < 1 || cols < 1)
        return -1;
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    int cell = 560 / (cols > rows ? cols : rows);
    cell = cell > 40 ? 40 : cell < 8 ? 8 : cell;
    int font = cell < 14 ? cell - 2 : 12;
    size_t row_chars = 6, col_chars = 0;       /* margins from the longest labels (about 0.6 em a character) */
    for (int i = 0; i < rows; i++)
        row_chars = strlen(row_labels[i]) > row_chars ? strlen(row_labels[i]) : row_chars;
    for (int j = 0; j < cols; j++)
        col_chars = strlen(col_labels[j]) > col_chars ? strlen(col_labels[j]) : col_chars;
    bool slanted = col_chars * 0.6 * font > cell;        /* column labels that would overlap: at 45 degrees */
    int left = 16 + (int)(row_chars * 0.6 * font), top = 50 + (slanted ? (int)(col_chars * 0.45 * font) : 0) + 24;
    int width = left + cols * cell + 110, height = top + rows * cell + 40;
    int title_w = 20 + (int)(strlen(title) * 8.2);
    width = width > title_w ? width : title_w;
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"%d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", width, height, font);
    fprintf(o, "<text x=\"10\" y=\"22\" font-size=\"15\">");
    plot_put_text(o, title);
    fprintf(o, "</text>\n<text x=\"%d\" y=\"44\" font-size=\"12\">", left);
    plot_put_text(o, col_axis);
    fprintf(o, " &#8594;</text>\n<text x=\"%d\" y=\"44\" font-size=\"12\" text-anchor=\"end\">", left - 6);
    plot_put_text(o, row_axis);
    fprintf(o, " &#8595;</text>\n");
    for (int j = 0; j < cols; j++) {           /* column labels along the top */
        double x = left + (j + 0.5) * cell;
        if (slanted)
            fprintf(o, "<text x=\"%.1f\" y=\"%d\" transform=\"rotate(-45 %.1f %d)\">", x, top - 6, x, top - 6);
        else
            fprintf(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x, top - 6);
        plot_put_text(o, col_labels[j]);
        fprintf(o, "</text>\n");
    }
    for (int i = 0; i < rows; i++) {           /* output tokens down the side */
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", left - 6, top + (i + 0.5) * cell + font / 3.0);
        plot_put_text(o, row_labels[i]);
        fprintf(o, "</text>\n");
        for (int j = 0; j < cols; j++) {
            double v = fmin(1, fmax(0, w[(size_t)i * cols + j]));
            fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"", left + j * cell, top + i * cell,
                    cell, cell);
            put_shade(o, v);
            fprintf(o, "\"><title>%.3f</title></rect>\n", v);
        }
    }
    fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", left, top,
            cols * cell, rows * cell);
    int bx = left + cols * cell + 30, bh = rows * cell < 120 ? 120 : rows * cell;   /* the colour scale */
    for (int k = 0; k < 20; k++) {
        fprintf(o, "<rect x=\"%d\" y=\"%.1f\" width=\"16\" height=\"%.1f\" fill=\"", bx, top + k * bh / 20.0,
                bh / 20.0 + 0.5);
        put_shade(o, 1 - k / 19.0);
        fprintf(o, "\"/>\n");
    }
    fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"16\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", bx, top, bh);
    fprintf(o, "<text x=\"%d\" y=\"%d\" font-size=\"12\">1</text>\n<text x=\"%d\" y=\"%d\" font-size=\"12\">0</text>\n",
            bx + 22, top + 10, bx + 22, top + bh);
    fprintf(o, "</svg>\n");
    return fclose(o) == 0 ? 0 : -1;
}

/* Round tick spacing: 1, 2 or 5 times a power of ten, about n ticks over span. */
static double tick_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static const char *const colours[] = {"#4a7fd0", "#d0552a", "#2a8a4a", "#8a4ac0", "#c09a20", "#404040"};

/* series k's stroke: its colour (fixed, or by position) and dashes */
static void put_stroke(FILE *o, const plot_series *s, int k)
{
    fprintf(o, "stroke=\"%s\" stroke-width=\"2\"", colours[(s[k].colour > 0 ? s[k].colour - 1 : k) % 6]);
    if (s[k].dashed)
        fprintf(o, " stroke-dasharray=\"6 4\"");
}

int plot_lines(const char *path, const plot_series *s, int ns, const plot_axes *ax)
{
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    plot_lines_to(o, -1, -1, s, ns, ax);
    return fclose(o) == 0 ? 0 : -1;
}

void plot_lines_to(FILE *o, int ox, int oy, const plot_series *s, int ns, const plot_axes *ax)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double y = s[k].y[i];
            if (isnan(y) || (ax->log_y && !(y > 0)))
                continue;
            y = ax->log_y ? log10(y) : y;
            x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!isfinite(x0))
        x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (ax->y_max > ax->y_min)
        y0 = ax->y_min, y1 = ax->y_max;
    double ys = ax->log_y ? ceil((y1 - y0) / 8 + 1e-9) : tick_step(y1 - y0 > 0 ? y1 - y0 : 1, 5);
    double xs = tick_step(x1 - x0 > 0 ? x1 - x0 : 1, 6);
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
    if (y1 <= y0)
        y1 = y0 + ys;
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    if (ox >= 0)
        fprintf(o, " x=\"%d\" y=\"%d\"", ox, oy);
    fprintf(o, " width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(o, "<text x=\"%d\" y=\"24\" font-size=\"15\">", L);
    plot_put_text(o, ax->title);
    fprintf(o, "</text>\n");
    for (double v = y0; v <= y1 + ys * 1e-6; v += ys) {        /* y grid and labels */
        double y = sy(v, y0, y1);
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
        if (ax->log_y && lround(v) == 0)
            fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1</text>\n", L - 6, y + 4);
        else if (ax->log_y)
            fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1e%ld</text>\n", L - 6, y + 4, lround(v));
        else
            fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, y + 4,
                    fabs(v) < ys * 1e-6 ? 0 : v);
    }
    for (double v = ceil(x0 / xs) * xs; v <= x1 + xs * 1e-6; v += xs)      /* x ticks */
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", sx(v, x0, x1), H - BOT + 18, v);
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, H - BOT, W - R, H - BOT);
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, TOP, L, H - BOT);
    fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (L + W - R) / 2, H - 12);
    plot_put_text(o, ax->xlabel);
    fprintf(o, "</text>\n<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">",
            (TOP + H - BOT) / 2, (TOP + H - BOT) / 2);
    plot_put_text(o, ax->ylabel);
    fprintf(o, "</text>\n");
    for (int k = 0; k < ns; k++) {
        fprintf(o, "<polyline fill=\"none\" ");
        put_stroke(o, s, k);
        fprintf(o, " points=\"");
        for (int i = 0; i < s[k].n; i++) {
            double y = s[k].y[i];
            if (isnan(y) || (ax->log_y && !(y > 0)))
                continue;
            y = ax->log_y ? log10(y) : y;
            fprintf(o, "%.1f,%.1f ", sx(s[k].x[i], x0, x1), sy(fmin(y1, fmax(y0, y)), y0, y1));
        }
        fprintf(o, "\"/>\n");
        for (int i = 0; s[k].points && i < s[k].n; i++) {      /* each point marked */
            double y = s[k].y[i];
            if (isnan(y) || (ax->log_y && !(y > 0)))
                continue;
            y = ax->log_y ? log10(y) : y;
            fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", sx(s[k].x[i], x0, x1),
                    sy(fmin(y1, fmax(y0, y)), y0, y1), colours[(s[k].colour > 0 ? s[k].colour - 1 : k) % 6]);
        }
    }
    /* the legend, in the corner where the fewest points of the lines fall */
    int lw = 230, lh = 8 + 18 * ns, best = -1, lx = 0, ly = 0;
    for (int corner = 0; corner < 4; corner++) {
        int cx = corner & 1 ? L + 8 : W - R - lw - 8, cy = corner & 2 ? H - BOT - lh - 6 : TOP + 6, hits = 0;
        for (int k = 0; k < ns; k++)
            for (int i = 0; i < s[k].n; i++) {
                double y = s[k].y[i];
                if (isnan(y) || (ax->log_y && !(y > 0)))
                    continue;
                double px = sx(s[k].x[i], x0, x1), py = sy(fmin(y1, fmax(y0, ax->log_y ? log10(y) : y)), y0, y1);
                hits += px >= cx && px <= cx + lw && py >= cy && py <= cy + lh;
            }
        if (best < 0 || hits < best)
            best = hits, lx = cx, ly = cy;
    }
    fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\" "
               "stroke=\"#aaa\"/>\n", lx, ly, lw, lh);
    for (int k = 0; k < ns; k++) {
        int y = ly + 16 + 18 * k;
        fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" ", lx + 8, y - 4, lx + 32, y - 4);
        put_stroke(o, s, k);
        fprintf(o, "/>\n");
        fprintf(o, "<text x=\"%d\" y=\"%d\">", lx + 38, y);
        plot_put_text(o, s[k].label);
        fprintf(o, "</text>\n");
    }
    fprintf(o, "</svg>\n");
}
