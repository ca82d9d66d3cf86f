/*
 * test_core_arena.c - core/arena.c: blocks are kept and rewound, big
 * requests get their own block and leave the current block's tail to the
 * small ones, and (the point) a training step on the same
 * graph does no heap allocation after the first: this program is linked with
 * -Wl,--wrap=malloc,calloc,realloc, so every allocation the library makes
 * passes through the counters below.
 */
#include <stdlib.h>

#include "testutil.h"

static size_t n_alloc;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n) { n_alloc++; return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { n_alloc++; return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { n_alloc++; return __real_realloc(p, n); }

/* One step of a 2-layer MLP with everything issue-relevant on the tape:
 * matmul, broadcast add, tanh, layer norm, dropout, concat, narrow, softmax
 * cross-entropy, backward, and a plain SGD update. */
/* Returns false on failure; no ck_assert inside, since check's own
 * bookkeeping allocates and would be counted. */
static bool step(sg_tape *t, sg_tensor *W1, sg_tensor *b1, sg_tensor *W2, sg_rng *rng, int dt)
{
    static const double xv[8 * 4] = {
        0.1, -0.2, 0.3, 0.4, 1, 0.5, -0.5, 0, 0.2, 0.2, 0.1, -1, 0.3, -0.3, 0.9, 0.1,
        -0.1, 0.7, 0.2, 0.4, 1, -0.5, 0.5, 0, 0.2, -0.2, 0.8, -1, 0.3, 0.3, -0.9, 0.1};
    static const int y[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    sg_tape_reset(t);
    sg_tensor *x = sg_tensor_from_f64(t, (sg_dtype)dt, 2, (int[]){8, 4}, xv);
    sg_tensor *h = sg_tanh(t, sg_add(t, sg_matmul(t, x, W1), b1));
    h = sg_dropout(t, sg_layer_norm(t, h, NULL, NULL, 1e-5), 0.1, rng);
    h = sg_concat(t, (sg_tensor *[]){sg_narrow(t, h, 1, 0, 8), sg_narrow(t, h, 1, 8, 8)}, 2, 1);
    sg_tensor *loss = sg_cross_entropy(t, sg_matmul(t, h, W2), y, NULL);
    if (!loss || sg_backward(t, loss) != SG_OK)
        return false;
    sg_tensor *ps[3] = {W1, b1, W2};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < sg_tensor_size(ps[k]); i++)
            sg_tensor_set(ps[k], i, sg_tensor_get(ps[k], i) - 0.1 * sg_tensor_grad_get(ps[k], i));
        sg_param_zero_grad(ps[k]);
    }
    return true;
}

START_TEST(test_steady_state_step_allocates_nothing)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tensor *W1 = sg_param_randn(_i, 2, (int[]){4, 16}, 0.5, &rng);
    sg_tensor *b1 = sg_param_new(_i, 1, (int[]){16});
    sg_tensor *W2 = sg_param_randn(_i, 2, (int[]){16, 3}, 0.5, &rng);
    sg_tape *t = sg_tape_new();
    ck_assert_msg(step(t, W1, b1, W2, &rng, _i), "%s", sg_tape_errmsg(t));  /* arena and grads grow */
    size_t bytes = sg_tape_arena_bytes(t);
    size_t before = n_alloc;
    bool ok = true;
    for (int k = 0; k < 20; k++)
        ok = step(t, W1, b1, W2, &rng, _i) && ok;
    size_t used = n_alloc - before;       /* before any ck_assert allocates */
    ck_assert_msg(ok, "%s", sg_tape_errmsg(t));
    ck_assert_msg(used == 0, "%zu heap allocations in 20 steady-state steps", used);
    ck_assert_uint_eq(sg_tape_arena_bytes(t), bytes);
    sg_tensor_free(W1), sg_tensor_free(b1), sg_tensor_free(W2), sg_tape_free(t);
}
END_TEST

START_TEST(test_counter_sees_library_allocations)
{   /* the wrap is live: a new tape and its first block are counted */
    size_t before = n_alloc;
    sg_tape *t = sg_tape_new();
    sg_zeros(t, SG_F32, 1, (int[]){4});
    ck_assert_uint_ge(n_alloc - before, 2);
    sg_tape_free(t);
}
END_TEST

START_TEST(test_big_request_and_rewind)
{
    sg_tape *t = sg_tape_new();
    /* 3 MB tensor: larger than a default block; recorded twice after a reset */
    for (int k = 0; k < 2; k++) {
        sg_tensor *a = sg_zeros(t, SG_F64, 2, (int[]){512, 768});
        sg_tensor *b = sg_zeros(t, SG_F32, 1, (int[]){100});
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq((uintptr_t)sg_tensor_data(a) % 64, 0);
        ck_assert_uint_eq((uintptr_t)sg_tensor_data(b) % 64, 0);
        size_t bytes = sg_tape_arena_bytes(t);
        sg_tape_reset(t);
        if (k == 1)
            ck_assert_uint_eq(sg_tape_arena_bytes(t), bytes);
    }
    sg_tape_free(t);
}
END_TEST

/* A request of half a block or more has a block of its own and leaves the
 * current block's tail to the small ones after it; one that outgrows its
 * block after a reset replaces it; the same sizes again allocate nothing. */
START_TEST(test_big_requests_leave_the_tail)
{
    enum { MB = 1 << 20 };
    sg_tape *t = sg_tape_new();
    ck_assert_ptr_nonnull(sg_zeros(t, SG_F32, 1, (int[]){16}));
    ck_assert_ptr_nonnull(sg_zeros(t, SG_F32, 1, (int[]){MB / 2}));          /* 2 MB */
    for (int k = 0; k < 100; k++)                                              /* 100 x (192 + 4096) B */
        ck_assert_ptr_nonnull(sg_zeros(t, SG_F32, 1, (int[]){1024}));
    ck_assert_uint_eq(sg_tape_arena_bytes(t), 1 * MB + 2 * MB);                /* was 4: a block after the big one */
    for (int round = 0; round < 3; round++) {
        int n = MB / 8 * 5;                 /* 2.5 MB: outgrows the 2 MB block */
        size_t before = n_alloc;            /* no check macro in between: they allocate */
        sg_tape_reset(t);
        bool ok = sg_zeros(t, SG_F32, 1, (int[]){16}) && sg_zeros(t, SG_F32, 1, (int[]){n});
        size_t made = n_alloc - before;
        ck_assert(ok);
        ck_assert_uint_eq(sg_tape_arena_bytes(t), 1 * MB + (size_t)n * 4);     /* replaced, not added */
        ck_assert_uint_eq(made, round == 0 ? 1 : 0);                           /* once */
    }
    sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/arena");
    TCase *tc = tcase_create("allocation");
    tcase_add_loop_test(tc, test_steady_state_step_allocates_nothing, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_counter_sees_library_allocations);
    tcase_add_test(tc, test_big_request_and_rewind);
    tcase_add_test(tc, test_big_requests_leave_the_tail);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
