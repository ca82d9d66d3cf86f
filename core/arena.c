/*
 * arena.c - the tape's memory: a chain of blocks handed out by bumping an
 * offset. sg_tape_reset() rewinds to the first block but keeps them all, so
 * the same sequence of requests (the same graph recorded again) walks the
 * same blocks and never calls malloc: after the first step, training is
 * heap-allocation free. All library heap use goes through sg_malloc/sg_free.
 */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

/* ---- heap ---------------------------------------------------------------- */

void *sg_malloc(size_t n) { return malloc(n ? n : 1); }
void *sg_calloc(size_t n) { return calloc(1, n ? n : 1); }
void  sg_free(void *p) { free(p); }

/* ---- arena --------------------------------------------------------------- */

#define SG_BLOCK_MIN ((size_t)1 << 20)

static size_t align_up(size_t n) { return (n + SG_ALIGN - 1) & ~(size_t)(SG_ALIGN - 1); }

void *sg_arena_grow(sg_tape *t, size_t n, bool zero)
{
    sg_arena *a = &t->arena;
    if (n > SIZE_MAX / 4) {                    /* align_up and the block header must not wrap */
        sg_fail(t, SG_ERR_NOMEM, "arena: %zu bytes cannot be had", n);
        return NULL;
    }
    n = align_up(n ? n : 1);

    /* Walk the kept blocks first: after a reset the same requests find the
     * same blocks, which is what makes steady-state steps malloc-free. */
    while (a->cur && a->used + n > a->cur->cap && a->cur->next) {
        a->cur = a->cur->next;
        a->used = 0;
    }
    if (!a->cur || a->used + n > a->cur->cap) {
        size_t cap = n > SG_BLOCK_MIN ? n : SG_BLOCK_MIN;
        /* malloc aligns to 16 only: over-allocate and align mem by hand */
        struct sg_arena_block *b = sg_malloc(sizeof *b + cap + SG_ALIGN);
        if (!b) {
            sg_fail(t, SG_ERR_NOMEM, "arena: out of memory asking for %zu bytes", n);
            return NULL;
        }
        b->cap = cap;
        b->next = NULL;
        b->mem = (unsigned char *)align_up((size_t)(uintptr_t)(b + 1));
        if (a->cur) {                   /* splice after cur, keep the rest */
            b->next = a->cur->next;
            a->cur->next = b;
        } else {
            a->first = b;
        }
        a->cur = b;
        a->used = 0;
        a->total += cap;
    }
    void *p = a->cur->mem + a->used;
    a->used += n;
    if (zero)
        memset(p, 0, n);
    return p;
}


void sg_arena_rewind(sg_arena *a)
{
    a->cur = a->first;
    a->used = 0;
}

void sg_arena_release(sg_arena *a)
{
    for (struct sg_arena_block *b = a->first, *next; b; b = next) {
        next = b->next;
        sg_free(b);
    }
    *a = (sg_arena){0};
}

size_t sg_tape_arena_bytes(const sg_tape *t) { return t->arena.total; }
