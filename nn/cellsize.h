/*
 * cellsize.h - sizes written in terms of a cell's input size E and hidden
 * size H ("4H", "E+H", "3"): a linear form c + h*H + e*E. Shared by the
 * parameter declarations (cells.c) and the equations (cellexpr.c).
 */
#ifndef SEQGRAD_NN_CELLSIZE_H
#define SEQGRAD_NN_CELLSIZE_H

#include <stddef.h>

typedef struct {
    long c, h, e;
} sg_size_form;

/* Parses terms n, H, E, nH, nE, n*H, n*E joined by + or - from s[0..len)
 * (spaces allowed). Returns 0, or -1 with *bad at the offending offset. */
int sg_size_parse(const char *s, size_t len, sg_size_form *f, size_t *bad);

static inline long sg_size_eval(sg_size_form f, int E, int H) { return f.c + f.h * H + f.e * E; }

/* Parses a declared shape "4H, E" into 1 or 2 forms; returns the number of
 * dimensions, or -1 with *bad at the offending offset. */
int sg_shape_parse(const char *s, sg_size_form *dims, size_t *bad);

#endif
