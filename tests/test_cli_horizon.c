/*
 * test_cli_horizon.c - cli/horizon.c: every cell at every length with every
 * seed, the table with each cell's horizon, the CSV and the SVG; a cell
 * from the config's cell: section takes part; wrong options and a task
 * without a long range are refused with their messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/horizon.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024], cfg[200];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-horizon-XXXXXX");
    if (!mkdtemp(dir))
        exit(1);
    snprintf(cfg, sizeof cfg, "%s/h.yaml", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "cell: {name: ind, states: [h], params: {w: {shape: [H, E], init: input}, u: [H], b: [H]},\n"
               "       equations: [\"h' = tanh(x @ w^T + b + u * h)\"]}\n"
               "model: {kind: lstm, hidden: 4, layers: 1, dropout: 0}\n"
               "data: {kind: order, train_size: 40, valid_size: 10, batch_size: 8}\n"
               "train: {steps: 6, eval_every: 6, run_dir: %s/runs}\n", dir);
    fclose(f);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* runs horizon with the arguments (after CONFIG), stdout into *text */
static int horizon(const char *args, char **text)
{
    char line[600], *argv[16];
    snprintf(line, sizeof line, "%s %s", cfg, args);
    int argc = 0;
    for (char *save = NULL, *p = strtok_r(line, " ", &save); p && argc < 16; p = strtok_r(NULL, " ", &save))
        argv[argc++] = p;
    fflush(stdout);
    char out[300];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    FILE *keep = fdopen(dup(fileno(stdout)), "w"), *f = freopen(out, "w", stdout);
    ck_assert_ptr_nonnull(f);
    int rc = horizon_command(argc, argv, err, sizeof err);
    fflush(stdout);
    dup2(fileno(keep), fileno(stdout));
    fclose(keep);
    f = fopen(out, "r");
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    return rc;
}

START_TEST(test_every_cell_length_and_seed)
{
    char *text;
    int rc = horizon("--lengths 6,8 --cells rnn,lstm,ind --seeds 2", &text);
    ck_assert_msg(rc == EXIT_OK, "%s\n%s", err, text);
    ck_assert_ptr_nonnull(strstr(text, "ind          T=8     seed 2   accuracy "));
    ck_assert_ptr_nonnull(strstr(text, "final validation accuracy, order task, 6 steps each, mean of 2 seeds (min-max):\n"
                                       "cell                          6                  8  horizon (>= 0.90)\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nlstm   "));
    ck_assert_ptr_nonnull(strstr(text, "\nind    "));
    /* 6 steps are too few to learn it: every horizon is below the shortest length */
    ck_assert_ptr_nonnull(strstr(text, "  below 6\n"));
    char path[300];
    snprintf(path, sizeof path, "%s/runs/horizon/horizon.csv", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[200];
    int rows = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "cell,length,seed,accuracy\n");
    while (fgets(line, sizeof line, f)) {
        double a;
        char cell[32];
        long L, seed;
        ck_assert_int_eq(sscanf(line, "%31[^,],%ld,%ld,%lf", cell, &L, &seed, &a), 4);
        ck_assert(a >= 0 && a <= 1 && (L == 6 || L == 8) && (seed == 1 || seed == 2));
        rows++;
    }
    fclose(f);
    ck_assert_int_eq(rows, 12);
    snprintf(path, sizeof path, "%s/runs/horizon/horizon.svg", dir);
    ck_assert_int_eq(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/runs/horizon/ind-T8-seed2/checkpoint.safetensors", dir);
    ck_assert_int_eq(access(path, R_OK), 0);
}
END_TEST

START_TEST(test_refusals)
{
    char *text;
    ck_assert_int_eq(horizon("--lengths 4,x", &text), EXIT_USAGE);
    ck_assert_str_eq(err, "--lengths: expected a whole number from 4 to 4096, got \"x\"");
    ck_assert_int_eq(horizon("--seeds 0", &text), EXIT_USAGE);
    ck_assert_str_eq(err, "--seeds: expected a whole number from 1 to 20, got \"0\"");
    ck_assert_int_eq(horizon("--threshold 2", &text), EXIT_USAGE);
    ck_assert_str_eq(err, "--threshold: expected a number from 0.01 to 1, got \"2\"");
    ck_assert_int_eq(horizon("--fast", &text), EXIT_USAGE);
    ck_assert_str_eq(err, "horizon: unknown option --fast (seqgrad horizon --help)");
    ck_assert_int_eq(horizon("other.yaml", &text), EXIT_USAGE);
    ck_assert_str_eq(err, "horizon: one config only");
    ck_assert_int_eq(horizon("--cells nobody --lengths 8", &text), EXIT_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "model.kind: \"nobody\" is neither transformer, seq2seq nor a registered cell"));
    FILE *f = fopen(cfg, "w");
    fputs("model: {kind: lstm}\ndata: {kind: text}\n", f);
    fclose(f);
    ck_assert_int_eq(horizon("", &text), EXIT_CONFIG);
    char want[400];
    snprintf(want, sizeof want, "%s:2:14: data.kind: horizon measures a long-range task (adding or order), not text", cfg);
    ck_assert_str_eq(err, want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/horizon");
    TCase *tc = tcase_create("horizon");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_cell_length_and_seed);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
