/*
 * test_tools_load_checkpoint.c - tools/load_checkpoint.py: a checkpoint of
 * a trained LSTM and of a tanh RNN, loaded into torch.nn modules, gives the
 * loss `seqgrad eval` gives (to 1e-4); the classic GRU, which PyTorch cannot
 * compute, is refused with a message. Needs /usr/bin/python3 with Debian's
 * python3-torch: without it the test says so and is skipped (exit 77).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/train.h"
#include "testutil.h"

static char dir[64], err[1024];

static void train(const char *kind)
{
    char path[200], text[600];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, kind);
    snprintf(text, sizeof text,
             "model: {kind: %s, hidden: 16, layers: 2}\n"
             "data: {kind: text, seq_len: 16, batch_size: 4, valid_fraction: 0.01}\n"
             "train: {steps: 6, eval_every: 100, run_dir: %s/%s}\n", kind, dir, kind);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    sg_config c;
    ck_assert_msg(cfg_load(&c, path, err, sizeof err) == 0 && cfg_check(&c, err, sizeof err) == 0, "%s", err);
    train_opts quiet = {.quiet = true};
    ck_assert_msg(train_run(&c, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
}

static int script(const char *kind, const char *expect)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../../tools/load_checkpoint.py %s/%s/checkpoint.safetensors "
             "%s/small.txt %s%s > %s/%s.out 2>&1", TEST_DATA_DIR, dir, kind, dir, expect ? "--expect-loss " : "",
             expect ? expect : "", dir, kind);
    return system(cmd);
}

START_TEST(test_pytorch_gives_the_same_loss)
{
    static const char *kinds[2] = {"lstm", "rnn"};
    const char *kind = kinds[_i];
    train(kind);
    char ck[200], out[200], line[512], loss[32];
    snprintf(ck, sizeof ck, "%s/%s/checkpoint.safetensors", dir, kind);
    snprintf(out, sizeof out, "%s/small.txt", dir);
    FILE *f = tmpfile();
    ck_assert_msg(train_eval(ck, out, f, err, sizeof err) == EXIT_OK, "%s", err);
    rewind(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_int_eq(sscanf(strstr(line, "loss "), "loss %31s", loss), 1);
    ck_assert_msg(script(kind, loss) == 0, "load_checkpoint.py disagrees with seqgrad eval (%s); see %s/%s.out",
                  loss, dir, kind);
}
END_TEST

START_TEST(test_classic_gru_is_refused)
{
    train("gru");
    ck_assert_int_ne(script("gru", NULL), 0);
    char path[200], line[512] = "";
    snprintf(path, sizeof path, "%s/gru.out", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "gru: no PyTorch module computes this cell (the classic GRU is seqgrad's own)\n");
}
END_TEST

/* the checkpoint alone (its config is in the metadata), and a byte flipped
 * inside it is refused by its CRC-32 */
START_TEST(test_checkpoint_alone_and_corrupt)
{
    train("lstm");
    char cmd[800], moved[200];
    snprintf(moved, sizeof moved, "%s/alone", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/lstm/checkpoint.safetensors %s/ && rm -rf %s/lstm", moved, dir, moved,
             dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../../tools/load_checkpoint.py %s/checkpoint.safetensors %s/small.txt "
             "> %s/alone.out 2>&1", TEST_DATA_DIR, moved, dir, dir);
    ck_assert_msg(system(cmd) == 0, "the checkpoint alone did not load; see %s/alone.out", dir);
    char path[300];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", moved);
    FILE *f = fopen(path, "r+b");
    ck_assert_int_eq(fseek(f, -3, SEEK_END), 0);
    int c = fgetc(f);
    fseek(f, -3, SEEK_END);
    fputc(c ^ 1, f);
    fclose(f);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(path, sizeof path, "%s/alone.out", dir);
    char line[512] = "";
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_msg(strstr(line, "checksum") && strstr(line, "the file is corrupt"), "%s", line);
}
END_TEST

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-tools-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "head -c 20000 %s/../../data/genesis.txt > %s/small.txt", TEST_DATA_DIR, dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

int main(void)
{
    if (system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
        printf("skipped: /usr/bin/python3 with python3-torch is not installed (apt-get install python3-torch)\n");
        return 77;
    }
    Suite *s = suite_create("tools/load_checkpoint");
    TCase *tc = tcase_create("pytorch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_pytorch_gives_the_same_loss, 0, 2);
    tcase_add_test(tc, test_classic_gru_is_refused);
    tcase_add_test(tc, test_checkpoint_alone_and_corrupt);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
