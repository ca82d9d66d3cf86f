/*
 * test_cli_commands.c - cli/commands.c, the tool's command line as a user
 * types it: numbers are parsed whole and in range ("--length abc" and
 * "--length 99999999999" are errors, not 0 and a wrapped value), a prompt
 * byte the model never saw is refused, a missing checkpoint is named as
 * such, and each error's exact text and exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/config.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], ckpt[200], out[8192], errtext[8192];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-commands-XXXXXX");
    if (!mkdtemp(dir))
        exit(1);
    cu_train(dir, "lm", "model: {kind: lstm, hidden: 8}\ndata: {kind: text, seq_len: 8, batch_size: 2}\n", 2);
    snprintf(ckpt, sizeof ckpt, "%s/lm/checkpoint.safetensors", dir);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_cli_commands: could not remove %s\n", dir);
}

static void slurp(int fd, char *buf, size_t n)
{
    size_t len = 0;
    ssize_t k;
    while (len + 1 < n && (k = read(fd, buf + len, n - 1 - len)) > 0)
        len += (size_t)k;
    buf[len] = '\0';
    close(fd);
}

/* runs the seqgrad program; its stdout and stderr go to out and errtext */
static int tool(const char *const *args)
{
    int o[2], e[2];
    ck_assert_int_eq(pipe(o), 0);
    ck_assert_int_eq(pipe(e), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(o[1], 1), dup2(e[1], 2);
        close(o[0]), close(e[0]);
        char *argv[16] = {"seqgrad"};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = (char *)args[i];
        execv(SEQGRAD_BIN, argv);
        _exit(99);
    }
    close(o[1]), close(e[1]);
    slurp(o[0], out, sizeof out);
    slurp(e[0], errtext, sizeof errtext);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const struct { const char *args[8]; int rc; const char *err; } cases[] = {
    {{"sample", "CK", "--length", "abc"}, EXIT_USAGE,
     "seqgrad: --length: expected a whole number from 0 to 10000000, got \"abc\"\n"},
    {{"sample", "CK", "--length", "99999999999"}, EXIT_USAGE,
     "seqgrad: --length: expected a whole number from 0 to 10000000, got \"99999999999\"\n"},
    {{"sample", "CK", "--temperature", "0"}, EXIT_USAGE,
     "seqgrad: --temperature: expected a number from 1e-06 to 1e+06, got \"0\"\n"},
    {{"sample", "CK", "--seed", "-1"}, EXIT_USAGE,
     "seqgrad: --seed: expected a whole number from 0 to 9223372036854775807, got \"-1\"\n"},
    {{"sample", "CK", "--prompt", "And \x01"}, EXIT_DATA,
     "seqgrad: --prompt: byte 0x01 at offset 4 is not in the model's vocabulary\n"},
    {{"translate", "CK", "--beam", "65"}, EXIT_USAGE, "seqgrad: --beam: expected a whole number from 1 to 64, got \"65\"\n"},
    {{"translate", "CK", "--max-len", "4e3"}, EXIT_USAGE,
     "seqgrad: --max-len: expected a whole number from 0 to 4096, got \"4e3\"\n"},
    {{"figure", "gradients", "--steps", "1"}, EXIT_USAGE,
     "seqgrad: --steps: expected a whole number from 2 to 10000, got \"1\"\n"},
    {{"figure", "gradients", "--gains", "0.5"}, EXIT_USAGE, "seqgrad: --gains: expected SMALL,LARGE, got \"0.5\"\n"},
    {{"sample", "/nonexistent/checkpoint.safetensors"}, EXIT_DATA,
     "seqgrad: /nonexistent/checkpoint.safetensors: cannot open: No such file or directory\n"},
    {{"course", "check", "nope", "x.c"}, EXIT_USAGE, "seqgrad: course: no exercise nope (seqgrad course list)\n"},
};

START_TEST(test_command_errors)
{
    const char *args[9] = {0};
    for (int i = 0; i < 8 && cases[_i].args[i]; i++)
        args[i] = strcmp(cases[_i].args[i], "CK") ? cases[_i].args[i] : ckpt;
    ck_assert_int_eq(tool(args), cases[_i].rc);
    ck_assert_str_eq(errtext, cases[_i].err);
}
END_TEST

/* a prompt made of known characters, the default prompt, a whole run */
START_TEST(test_sample_runs)
{
    ck_assert_int_eq(tool((const char *[]){"sample", ckpt, "--prompt", "And God", "--length", "20", NULL}), EXIT_OK);
    ck_assert_msg(strncmp(out, "And God", 7) == 0 && strlen(out) == 7 + 20 + 1, "%s", out);
    ck_assert_int_eq(tool((const char *[]){"sample", ckpt, "--length", "0", NULL}), EXIT_OK);
    ck_assert_str_eq(out, "\n\n");
}
END_TEST

/* the checkpoint is enough: a copy of it alone, away from its run folder */
START_TEST(test_checkpoint_alone)
{
    char alone[200], cmd[500];
    snprintf(alone, sizeof alone, "%s/alone.safetensors", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", ckpt, alone);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(tool((const char *[]){"sample", alone, "--prompt", "In", "--length", "5", NULL}), EXIT_OK);
    ck_assert_int_eq(tool((const char *[]){"eval", alone, NULL}), EXIT_OK);
    ck_assert_msg(strstr(out, "perplexity") != NULL, "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/commands");
    TCase *tc = tcase_create("commands");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_command_errors, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, test_sample_runs);
    tcase_add_test(tc, test_checkpoint_alone);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
