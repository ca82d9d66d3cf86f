/*
 * plot.h - SVG plots a person opens in a browser.
 */
#ifndef SEQGRAD_CLI_PLOT_H
#define SEQGRAD_CLI_PLOT_H

#include <stdbool.h>
#include <stdio.h>

/* Reads run_dir/metrics.csv and writes run_dir/loss.svg: training loss per
 * step and validation loss at each evaluation (dots), on a log axis when
 * they span more than a decade; ylabel names the loss. Returns 0 or -1. */
int plot_losses(const char *run_dir, const char *ylabel);

/* Writes path: ||dL/dh_t|| against t (log scale), n points, for a loss on
 * the last time step only: how far back the gradient reaches (vanishing or
 * exploding gradients, as in the lecture). title names the model. */
int plot_grad_norms(const char *path, const double *norms, int n, const char *title);

/* Writes path: a heatmap of attention weights w (rows, cols), row-major, in
 * [0, 1], white to dark blue; one row per output token (row_labels, down
 * the left side), one column per source token (col_labels, along the
 * top); each cell's weight shows on hover. Labels are escaped. */
int plot_attention(const char *path, const double *w, int rows, int cols, const char *const *row_labels,
                   const char *const *col_labels, const char *title);
/* The same for any matrix in [0, 1], with the axes named (row_axis down
 * the side, col_axis along the top); long column labels are slanted. */
int plot_heatmap(const char *path, const double *w, int rows, int cols, const char *const *row_labels,
                 const char *const *col_labels, const char *title, const char *row_axis, const char *col_axis);

/* One line of plot_lines: n points (x[i], y[i]); points with y <= 0 are
 * left out on a log axis, NaN ones always. */
typedef struct {
    const char *label;
    const double *x, *y;
    int n;
    int colour;                  /* 1..6: one of six fixed colours; 0: by the series' position */
    bool dashed;
    bool points;                 /* each point marked with a dot */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    bool log_y;                  /* decades of y, ticks at powers of ten */
    double y_min, y_max;         /* a fixed linear range when y_max > y_min; else from the data */
} plot_axes;

/* Writes path: the series as coloured lines on shared, labelled axes, with
 * ticks at round numbers and a legend. Labels are escaped. Returns 0 or -1. */
int plot_lines(const char *path, const plot_series *s, int ns, const plot_axes *ax);
/* The same plot as an <svg> element written to o, at (x, y) inside an
 * enclosing SVG (x < 0: a document of its own); PLOT_W x PLOT_H pixels. */
void plot_lines_to(FILE *o, int x, int y, const plot_series *s, int ns, const plot_axes *ax);
enum { PLOT_W = 720, PLOT_H = 420 };

/* s with < > & escaped, for SVG and HTML text. */
void plot_put_text(FILE *o, const char *s);

#endif
