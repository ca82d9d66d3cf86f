/*
 * test_cli_course.c - cli/course.c: every solution in docs/course/solutions
 * scores full marks and prints the pinned reference values; every starter
 * file compiles and scores 0 with "not written"; a planted bug in each
 * solution is caught and named (the failing quantity, the failing steps);
 * a crash, a compile error and an unknown exercise are reported.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/course.h"
#include "testutil.h"

#define COURSE_DIR TEST_DATA_DIR "/../../docs/course"

static char out[65536], err[1024];

/* Runs the checker on file; its report goes to out. */
static int check_file(const char *exercise, const char *file)
{
    FILE *fp = tmpfile();
    ck_assert_ptr_nonnull(fp);
    err[0] = '\0';
    int rc = course_check(exercise, file, fp, err, sizeof err);
    rewind(fp);
    size_t n = fread(out, 1, sizeof out - 1, fp);
    out[n] = '\0';
    fclose(fp);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strdup(buf);
}

/* The solution of exercise with `from` replaced by `to` (once; it must be
 * there exactly once), written to a temporary .c file whose path is returned. */
static const char *planted(const char *exercise, const char *from, const char *to)
{
    char path[512];
    snprintf(path, sizeof path, COURSE_DIR "/solutions/%s.c", exercise);
    char *src = slurp(path), *at = strstr(src, from);
    ck_assert_msg(at != NULL, "the planted bug's text is not in %s: %s", path, from);
    ck_assert_msg(strstr(at + 1, from) == NULL, "the planted bug's text is in %s twice", path);
    static char tmp[64];
    strcpy(tmp, "/tmp/seqgrad-planted-XXXXXX.c");
    int fd = mkstemps(tmp, 2);
    ck_assert_int_ge(fd, 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
    fclose(fp);
    free(src);
    return tmp;
}

static void assert_has(const char *needle)
{
    ck_assert_msg(strstr(out, needle) != NULL, "expected \"%s\" in:\n%s", needle, out);
}

/* the verdict of one line of the report, by its first column */
static void assert_line(const char *what, const char *verdict)
{
    char key[32];
    snprintf(key, sizeof key, "\n%-12s ", what);
    const char *at = strstr(out, key);
    ck_assert_msg(at != NULL, "no line for %s in:\n%s", what, out);
    const char *end = strchr(at + 1, '\n');
    ck_assert_msg(end - strlen(verdict) > at && !strncmp(end - strlen(verdict), verdict, strlen(verdict)),
                  "%s: expected %s in:\n%.*s", what, verdict, (int)(end - at), at + 1);
}

static const struct { const char *name, *score, *reference; } solutions[] = {
    {"rnn", "score: 12/12",
     "reference values: sum h_next = -0.91554, sum h = -1.31898, sum dWh = 3.95721, sum dx = 0.308438\n"},
    {"lstm", "score: 14/14",
     "reference values: sum h_next = -0.24459, sum c_next = -0.171485, sum h = 3.27447, sum dWh = 1.84109\n"},
    {"gru", "score: 6/6", "reference values: sum h_next = 0.575847, sum dWh = 0.0913978, sum dh_prev = 0.892415\n"},
    {"attention", "score: 7/7", "reference values: sum context = 0.763538, weights[0,0] = 0.1607, sum dWk = 1.89512\n"},
    {"softmax_loss", "score: 2/2", "reference values: loss = 6.63774, sum dx^2 = 1.61978\n"},
};

START_TEST(test_course_solution_full_marks)
{
    char path[512];
    snprintf(path, sizeof path, COURSE_DIR "/solutions/%s.c", solutions[_i].name);
    ck_assert_msg(check_file(solutions[_i].name, path) == EXIT_OK, "%s\n%s", err, out);
    assert_has(solutions[_i].score);
    assert_has(solutions[_i].reference);
    ck_assert_msg(strstr(out, "FAIL") == NULL, "%s", out);
}
END_TEST

START_TEST(test_course_starter_scores_zero)
{
    char path[512], score[32];
    snprintf(path, sizeof path, COURSE_DIR "/%s.c", solutions[_i].name);
    ck_assert_int_eq(check_file(solutions[_i].name, path), EXIT_FAIL);
    snprintf(score, sizeof score, "score: 0/%s", strchr(solutions[_i].score, '/') + 1);
    assert_has(score);
    assert_has("not written (it still holds NaN)");
    /* the starter's reference values are the tape's: the same as with a solution */
    assert_has(solutions[_i].reference);
}
END_TEST

/* BPTT that drops the gradient carried back from step t+1: the step
 * functions and the forward pass still pass; every step but the last fails */
START_TEST(test_course_planted_rnn)
{
    const char *f = planted("rnn", "g[n * H + j] += dh[", "g[n * H + j] = dh[");
    ck_assert_int_eq(check_file("rnn", f), EXIT_FAIL);
    assert_line("h_next", "ok"), assert_line("dWh", "ok");     /* the step's own (first) dWh line */
    assert_line("h[t=4]", "ok");
    assert_line("dx[t=3]", "FAIL"), assert_line("dx[t=4]", "ok");
    assert_has("dx: 4 of 5 steps fail (t = 0, 1, 2, 3)");
    assert_line("dh0", "FAIL");
    assert_has("score: 7/12");
    unlink(f);
}
END_TEST

/* LSTM step backward without tanh' on the path from h to c */
START_TEST(test_course_planted_lstm)
{
    const char *f = planted("lstm", "dh * o * (1 - tc * tc)", "dh * o");
    ck_assert_int_eq(check_file("lstm", f), EXIT_FAIL);
    assert_line("h_next", "ok"), assert_line("c_next", "ok");
    assert_line("dc_prev", "FAIL"), assert_line("dh_prev", "FAIL");
    assert_has("h: all 5 steps agree");
    assert_has("score: 3/14");
    unlink(f);
}
END_TEST

/* GRU: the candidate's recurrent weight gradient taken against h_prev
 * instead of r * h_prev: only dWh fails, in its n block (columns 8..11) */
START_TEST(test_course_planted_gru)
{
    const char *f = planted("gru", "(j < 2 * H ? h_prev[s * H + i] : rh[s * H + i])", "h_prev[s * H + i]");
    ck_assert_int_eq(check_file("gru", f), EXIT_FAIL);
    assert_line("dx", "ok"), assert_line("dh_prev", "ok"), assert_line("dWx", "ok"), assert_line("db", "ok");
    assert_line("dWh", "FAIL");
    assert_has("dWh          (4,12)            48   16 (33%)  [i=");
    const char *at = strstr(out, "dWh          (4,12)");
    ck_assert(at != NULL);
    int i, j;
    ck_assert_int_eq(sscanf(strstr(at, "[i="), "[i=%d, j=%d]", &i, &j), 2);
    ck_assert_int_ge(j, 8);
    assert_has("score: 5/6");
    unlink(f);
}
END_TEST

/* softmax's backward without the subtraction of sum_l a_l da_l */
START_TEST(test_course_planted_attention)
{
    const char *f = planted("attention", "a[j] * (da[j] - dot)", "a[j] * da[j]");
    ck_assert_int_eq(check_file("attention", f), EXIT_FAIL);
    assert_line("context", "ok"), assert_line("weights", "ok");
    assert_line("dq", "FAIL"), assert_line("dWq", "FAIL"), assert_line("dv", "FAIL");
    assert_has("score: 2/7");
    unlink(f);
}
END_TEST

/* the gradient not divided by B: the loss passes, the gradient fails at
 * every step with an unmasked row (the last step is padding everywhere) */
START_TEST(test_course_planted_softmax_loss)
{
    const char *f = planted("softmax_loss", "(c == y[r])) / B : 0", "(c == y[r])) : 0");
    ck_assert_int_eq(check_file("softmax_loss", f), EXIT_FAIL);
    assert_line("loss", "ok");
    assert_has("dx: 4 of 5 steps fail (t = 0, 1, 2, 3)");
    assert_line("dx[t=4]", "ok");
    assert_has("score: 1/2");
    unlink(f);
}
END_TEST

START_TEST(test_course_crash_and_errors)
{
    /* a crash in the third function keeps the points scored before it */
    const char *f = planted("rnn", "    memcpy(hp, h0, sizeof *hp * B * H);\n    for (int t = 0; t < T; t++) {",
                            "    memcpy(hp, h0, sizeof *hp * B * H);\n    *(volatile int *)0 = 1;\n"
                            "    for (int t = 0; t < T; t++) {");
    ck_assert_int_eq(check_file("rnn", f), EXIT_FAIL);
    assert_has("your rnn_forward crashed (Segmentation fault)\nscore: 6/12\n");
    ck_assert_str_eq(err, "course: your rnn_forward crashed");
    unlink(f);

    f = planted("gru", "void gru_step_forward(int B,", "void gru_step_forward(long B,");
    ck_assert_int_eq(check_file("gru", f), EXIT_DATA);
    ck_assert_msg(strstr(err, "did not compile (the compiler's messages are above)") != NULL, "%s", err);
    unlink(f);

    ck_assert_int_eq(check_file("lstm2", COURSE_DIR "/lstm.c"), EXIT_USAGE);
    ck_assert_str_eq(err, "course: no exercise lstm2 (seqgrad course list)");
    ck_assert_int_eq(check_file("lstm", "/nonexistent/lstm.c"), EXIT_DATA);
    ck_assert_str_eq(err, "course: cannot read /nonexistent/lstm.c: No such file or directory");
}
END_TEST

/* a missing function scores 0 for its quantities and says so */
START_TEST(test_course_missing_function)
{
    const char *f = planted("gru", "void gru_step_backward(", "void gru_step_backward_renamed(");
    ck_assert_int_eq(check_file("gru", f), EXIT_FAIL);
    assert_has("gru_step_backward: not defined in your file\n");
    assert_has("score: 1/6");
    unlink(f);
}
END_TEST

START_TEST(test_course_list)
{
    ck_assert_ptr_nonnull(course_prototypes("attention"));
    ck_assert_ptr_null(course_prototypes("attn"));
    FILE *fp = tmpfile();
    course_list(fp);
    rewind(fp);
    size_t n = fread(out, 1, sizeof out - 1, fp);
    out[n] = '\0';
    fclose(fp);
    assert_has("  rnn           vanilla RNN step, forward over time, and BPTT\n");
    assert_has("  softmax_loss  temporal softmax loss with a mask, and its gradient\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/course");
    TCase *tc = tcase_create("solutions and starters");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_course_solution_full_marks, 0, 5);
    tcase_add_loop_test(tc, test_course_starter_scores_zero, 0, 5);
    suite_add_tcase(s, tc);
    tc = tcase_create("planted bugs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_course_planted_rnn);
    tcase_add_test(tc, test_course_planted_lstm);
    tcase_add_test(tc, test_course_planted_gru);
    tcase_add_test(tc, test_course_planted_attention);
    tcase_add_test(tc, test_course_planted_softmax_loss);
    tcase_add_test(tc, test_course_crash_and_errors);
    tcase_add_test(tc, test_course_missing_function);
    tcase_add_test(tc, test_course_list);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
