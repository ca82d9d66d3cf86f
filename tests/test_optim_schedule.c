/*
 * test_optim_schedule.c - optim/schedule.c: constant, step, cosine and
 * linear warmup, values worked by hand.
 */
#include <math.h>

#include "testutil.h"

START_TEST(test_schedules)
{
    sg_schedule c = {.kind = SG_SCHED_CONSTANT, .lr = 0.1};
    ck_assert_double_eq(sg_schedule_lr(&c, 0), 0.1);
    ck_assert_double_eq(sg_schedule_lr(&c, 1000), 0.1);

    sg_schedule st = {.kind = SG_SCHED_STEP, .lr = 1, .step_size = 10, .gamma = 0.5};
    ck_assert_double_eq(sg_schedule_lr(&st, 9), 1);
    ck_assert_double_eq(sg_schedule_lr(&st, 10), 0.5);
    ck_assert_double_eq(sg_schedule_lr(&st, 25), 0.25);

    /* cosine over 100 steps after 10 of warmup: half way (step 60) is the mean */
    sg_schedule cs = {.kind = SG_SCHED_COSINE, .lr = 1, .warmup = 10, .total = 110, .min_lr = 0.1};
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 0), 0.1, 1e-15);       /* warmup: 1 * 1/10 */
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 4), 0.5, 1e-15);
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 10), 1, 1e-15);
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 60), 0.55, 1e-12);
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 110), 0.1, 1e-15);
    ck_assert_double_eq_tol(sg_schedule_lr(&cs, 500), 0.1, 1e-15);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim/schedule");
    TCase *tc = tcase_create("schedule");
    tcase_add_test(tc, test_schedules);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
