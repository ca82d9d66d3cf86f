/*
 * arena.c - the tape's memory: a chain of blocks handed out by bumping an
 * offset, and a chain of blocks one per big request. sg_tape_reset()
 * rewinds to the first block of each but keeps them all, so
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

/* A block of cap bytes for a request of n. */
static struct sg_arena_block *new_block(sg_tape *t, size_t cap, size_t n)
{
    /* malloc aligns to 16 only: over-allocate and align mem by hand */
    struct sg_arena_block *b = sg_malloc(sizeof *b + cap + SG_ALIGN);
    if (!b) {
        sg_fail(t, SG_ERR_NOMEM, "arena: out of memory asking for %zu bytes", n);
        return NULL;
    }
    b->cap = cap;
    b->next = NULL;
    b->mem = (unsigned char *)align_up((size_t)(uintptr_t)(b + 1));
    t->arena.total += cap;
    return b;
}

/* A request of half a block or more gets a block of its own, from a chain
 * of its own, so that it leaves the current block's tail to the small
 * requests after it (it would have wasted up to a block each time). After
 * a reset the same requests come in the same order and find the same
 * blocks; a request its block is too small for replaces it (no tensor of
 * this recording holds it yet: the blocks from big_next on are unused). */
static void *big_alloc(sg_tape *t, size_t n)
{
    sg_arena *a = &t->arena;
    struct sg_arena_block *b = a->big_next;
    if (!b || b->cap < n) {
        struct sg_arena_block *fresh = new_block(t, n, n);
        if (!fresh)
            return NULL;
        fresh->next = b ? b->next : NULL;
        if (a->big_prev)
            a->big_prev->next = fresh;
        else
            a->big_first = fresh;
        if (b) {
            a->total -= b->cap;
            sg_free(b);
        }
        b = fresh;
    }
    a->big_prev = b;
    a->big_next = b->next;
    return b->mem;
}

void *sg_arena_grow(sg_tape *t, size_t n, bool zero)
{
    sg_arena *a = &t->arena;
    if (n > SIZE_MAX / 4) {                    /* align_up and the block header must not wrap */
        sg_fail(t, SG_ERR_NOMEM, "arena: %zu bytes cannot be had", n);
        return NULL;
    }
    n = align_up(n ? n : 1);
    if (n >= SG_BLOCK_MIN / 2) {
        void *p = big_alloc(t, n);
        if (p && zero)
            memset(p, 0, n);
        return p;
    }

    /* Walk the kept blocks first: after a reset the same requests find the
     * same blocks, which is what makes steady-state steps malloc-free. */
    while (a->cur && a->used + n > a->cur->cap && a->cur->next) {
        a->cur = a->cur->next;
        a->used = 0;
    }
    if (!a->cur || a->used + n > a->cur->cap) {
        struct sg_arena_block *b = new_block(t, SG_BLOCK_MIN, n);
        if (!b)
            return NULL;
        if (a->cur) {                   /* splice after cur, keep the rest */
            b->next = a->cur->next;
            a->cur->next = b;
        } else {
            a->first = b;
        }
        a->cur = b;
        a->used = 0;
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
    a->big_next = a->big_first;
    a->big_prev = NULL;
}

void sg_arena_release(sg_arena *a)
{
    for (struct sg_arena_block *b = a->first, *next; b; b = next) {
        next = b->next;
        sg_free(b);
    }
    for (struct sg_arena_block *b = a->big_first, *next; b; b = next) {
        next = b->next;
        sg_free(b);
    }
    *a = (sg_arena){0};
}

size_t sg_tape_arena_bytes(const sg_tape *t) { return t->arena.total; }
