/*
 * plot.h - SVG plots a person opens in a browser.
 */
#ifndef SEQGRAD_CLI_PLOT_H
#define SEQGRAD_CLI_PLOT_H

/* Reads run_dir/metrics.csv and writes run_dir/loss.svg: training loss per
 * step and validation loss at each evaluation. Returns 0 or -1. */
int plot_losses(const char *run_dir);

/* Writes path: ||dL/dh_t|| against t (log scale), n points, for a loss on
 * the last time step only: how far back the gradient reaches (vanishing or
 * exploding gradients, as in the lecture). title names the model. */
int plot_grad_norms(const char *path, const double *norms, int n, const char *title);

#endif
