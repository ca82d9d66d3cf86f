/*
 * guard.h - the first lines of every nn function that records on a tape:
 * a tape already in error (or none) stops it without a new message, and a
 * NULL module is a message naming the function, never a crash.
 */
#ifndef SEQGRAD_NN_GUARD_H
#define SEQGRAD_NN_GUARD_H

#include "seqgrad/core.h"

/* true if a function may go on on tape t; m is NULL when one of its
 * pointer arguments is, and what says which ("linear: the module"). */
static inline bool sg_nn_ready(sg_tape *t, const void *m, const char *what)
{
    if (!t || sg_tape_error(t))
        return false;
    if (!m) {
        sg_fail(t, SG_ERR_NULL, "%s is NULL", what);
        return false;
    }
    return true;
}

/* the status of a guard that said no */
static inline sg_status sg_nn_status(sg_tape *t) { return t && sg_tape_error(t) ? sg_tape_error(t) : SG_ERR_NULL; }

#endif
