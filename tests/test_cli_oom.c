/*
 * test_cli_oom.c - the tool's commands when memory runs out: every
 * allocation of seqgrad's own code (the library and the tool; malloc,
 * calloc and realloc are wrapped at link time) is made to fail in turn,
 * over a whole small training run, a sample and a translate. Each run must
 * end with a clean error and a message (or succeed, where the allocation
 * was for a picture it can do without), never a crash or a hang. Each
 * failure point runs in a child process.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

/* ---- the allocation counter ------------------------------------------------- */

static long n_alloc, fail_at = -1;      /* fail_at: the index of the allocation that fails */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
static int fails(void) { return n_alloc++ == fail_at; }
void *__wrap_malloc(size_t n) { return fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return fails() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return fails() ? NULL : __real_realloc(p, n); }

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-oom-XXXXXX");
    if (!mkdtemp(dir))
        exit(1);
    cu_train(dir, "lm", "model: {kind: lstm, hidden: 4}\ndata: {kind: text, seq_len: 4, batch_size: 2}\n", 2);
    cu_train(dir, "s2s", "model: {kind: seq2seq, hidden: 4, embedding: 3}\n"
                         "data: {kind: reverse, symbols: 4, min_len: 2, max_len: 4, train_size: 16, valid_size: 4,"
                         " batch_size: 4}\n", 2);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_cli_oom: could not remove %s\n", dir);
}

typedef int command(char *err, size_t n);

static int do_train(char *err, size_t n)
{
    char path[200], text[400];
    snprintf(path, sizeof path, "%s/t.yaml", dir);
    snprintf(text, sizeof text, "model: {kind: lstm, hidden: 4}\ndata: {kind: text, seq_len: 4, batch_size: 2}\n"
                                "train: {steps: 3, eval_every: 2, checkpoint_every: 2, run_dir: %s/t}\n", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    sg_config c;
    if (cfg_load(&c, path, err, n) != 0 || cfg_check(&c, err, n) != 0)
        return EXIT_CONFIG;
    train_opts o = {.quiet = true, .overwrite = true};
    return train_run(&c, &o, err, n);
}

static int do_sample(char *err, size_t n)
{
    char ck[200];
    snprintf(ck, sizeof ck, "%s/lm/checkpoint.safetensors", dir);
    FILE *out = fopen("/dev/null", "w");
    int rc = train_sample(ck, "In", NULL, 20, 0.8, 1, out, err, n);
    fclose(out);
    return rc;
}

static int do_translate(char *err, size_t n)
{
    char ck[200];
    snprintf(ck, sizeof ck, "%s/s2s/checkpoint.safetensors", dir);
    FILE *out = fopen("/dev/null", "w"), *in = fmemopen((void *)"0123\n3210\n", 10, "r");
    translate_opts o = {.beam = 1, .length_penalty = 0.6};
    int rc = train_translate(ck, &o, in, out, err, n);
    o.beam = 3;
    rewind(in);
    if (rc == EXIT_OK)
        rc = train_translate(ck, &o, in, out, err, n);
    fclose(in), fclose(out);
    return rc;
}

/* Runs cmd in a child with allocation k failing (-1: none); returns the
 * child's wait status and, through a pipe, its message and its count. */
static int run_failing(command *cmd, long k, char *msg, size_t n, long *count)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(30);
        char err[1024] = "";
        n_alloc = 0, fail_at = k;
        int rc = cmd(err, sizeof err);
        long used = n_alloc;
        fail_at = -1;
        char line[1100];
        int len = snprintf(line, sizeof line, "%ld %s", used, err);
        if (write(fds[1], line, (size_t)len) < 0)
            _exit(98);
        _exit(rc);
    }
    close(fds[1]);
    char line[1100] = "";
    ssize_t got = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[got > 0 ? got : 0] = '\0';
    int status;
    waitpid(pid, &status, 0);
    char *sp = strchr(line, ' ');
    *count = strtol(line, NULL, 10);
    snprintf(msg, n, "%s", sp ? sp + 1 : "");
    return status;
}

static command *const commands[] = {do_train, do_sample, do_translate};
static const char *const names[] = {"train", "sample", "translate"};

START_TEST(test_every_allocation_fails_cleanly)
{
    char msg[1100];
    long total;
    int st = run_failing(commands[_i], -1, msg, sizeof msg, &total);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_OK, "%s without a failure: status %d: %s", names[_i], st, msg);
    ck_assert_int_gt(total, 10);
    /* every allocation; under valgrind (20x slower, each child too) a spread of 40 */
    long spread = getenv("SEQGRAD_UNDER_VALGRIND") ? 40 : 400;
    long stride = total > spread ? total / spread : 1, failed = 0;
    for (long k = 0; k < total; k += stride) {
        long used;
        st = run_failing(commands[_i], k, msg, sizeof msg, &used);
        ck_assert_msg(WIFEXITED(st), "%s, allocation %ld of %ld failing: killed by signal %d", names[_i], k, total,
                      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        int rc = WEXITSTATUS(st);
        ck_assert_msg(rc == EXIT_OK || rc == EXIT_FAIL || rc == EXIT_DATA,   /* never "a bad config" */
                      "%s, allocation %ld failing: exit %d: %s", names[_i], k, rc, msg);
        ck_assert_msg(rc == EXIT_OK || msg[0], "%s, allocation %ld failing: exit %d without a message", names[_i], k, rc);
        failed += rc != EXIT_OK;
    }
    ck_assert_int_gt(failed, 0);
    fprintf(stderr, "%s: %ld allocations, every %ld failed in turn: %ld runs ended in an error\n", names[_i], total, stride, failed);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/oom");
    TCase *tc = tcase_create("out of memory");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_every_allocation_fails_cleanly, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
