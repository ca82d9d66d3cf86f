/*
 * compare.h - `seqgrad compare RUN_DIR...`: runs side by side (docs/cells.md).
 */
#ifndef SEQGRAD_CLI_COMPARE_H
#define SEQGRAD_CLI_COMPARE_H

#include <stddef.h>
#include <stdio.h>

/* Reads the run folders dirs[0..n_dirs) and writes out_dir/compare.svg
 * (training loss, validation loss and, where measured, the gradient norm
 * per time step, each run a line: one colour per cell, later seeds dashed;
 * log axes where values span decades) and out_dir/compare.html (the SVG,
 * the table and each run's config, one file a browser opens from disk);
 * prints the table to out (unless NULL). Returns EXIT_OK, or an exit code with err. */
int compare_runs(const char *const *dirs, int n_dirs, const char *out_dir, FILE *out, char *err, size_t n);

#endif
