/*
 * test_cli_model.c - cli/model.c: which model the data and model.kind
 * make (and the exact message when they don't fit), batched greedy
 * decoding equal to the library's one-at-a-time decoder, attention rows
 * that are distributions, and a checkpoint that does not fit its config
 * refused with a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/run.h"
#include "../cli/train.h"
#include <seqgrad/checkpoint.h>

#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-model-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void config(sg_config *c, const char *yaml)
{
    char path[128];
    snprintf(path, sizeof path, "%s/cfg.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    ck_assert_msg(cfg_load(c, path, err, sizeof err) == 0 && cfg_check(c, err, sizeof err) == 0, "%s", err);
}

/* data and model that do not fit: the message names the key where it was set */
START_TEST(test_model_must_fit_the_data)
{
    static const char *cases[][2] = {
        {"model: {kind: seq2seq}\ndata: {kind: text}\n",
         "cfg.yaml:1:15: model.kind: seq2seq needs source-target data (data.kind pairs, copy, reverse or sort), not text"},
        {"model: {kind: lstm}\ndata: {kind: reverse}\n",
         "cfg.yaml:1:15: model.kind: reverse data needs seq2seq (an RNN encoder-decoder, with model.cell: lstm) or "
         "transformer"},
        {"model: {kind: transformer}\ndata: {kind: adding}\n",
         "cfg.yaml:1:15: model.kind: the adding problem takes a recurrent cell (rnn, lstm, gru, ...), not transformer"},
        {"model: {kind: seq2seq, attention: dot, bidirectional: true}\ndata: {kind: copy}\n",
         "cfg.yaml:1:35: model.attention: dot scores need keys of the query's size; a bidirectional encoder doubles "
         "them (take general, concat or additive)"},
        {"model: {kind: seq2seq, layers: 2}\ndata: {kind: copy}\n",
         "cfg.yaml:1:32: model.layers: seq2seq has one encoder and one decoder layer; set 1"},
        {"model: {kind: seq2seq, cell: mgu}\ndata: {kind: copy}\n",
         "cfg.yaml:1:30: model.cell: \"mgu\" is not a registered cell (rnn|rnn_relu|rnn_sigmoid|lstm|gru|gru_reset_after)"},
        {"model: {kind: transformer, hidden: 30, heads: 4}\ndata: {kind: sort}\n",
         "cfg.yaml:1:47: model.heads: 4 heads do not divide hidden 30"},
        {"model: {kind: lstm}\ndata: {kind: text, batch_size: 6}\ntrain: {shards: 4}\n",
         "cfg.yaml:3:17: train.shards: 4 shards do not split data.batch_size 6 into equal parts"},
    };
    sg_config c;
    config(&c, cases[_i][0]);
    run r = {.cfg = c};
    ck_assert_int_eq(run_build(&r, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_CONFIG);
    char expect[400];
    snprintf(expect, sizeof expect, "%s/%s", dir, cases[_i][1]);
    ck_assert_str_eq(err, expect);
    run_free(&r);
}
END_TEST

/* batched greedy decoding (padding masked) gives, for every source, what
 * the library's decoder gives one source at a time; RNN and transformer */
START_TEST(test_greedy_batched_equals_one_at_a_time)
{
    sg_config c;
    config(&c, _i ? "model: {kind: transformer, hidden: 16, heads: 2, layers: 1, dropout: 0}\n"
                    "data: {kind: reverse, symbols: 5, train_size: 50, valid_size: 12}\n"
                  : "model: {kind: seq2seq, hidden: 16, bidirectional: true, attention: concat}\n"
                    "data: {kind: reverse, symbols: 5, train_size: 50, valid_size: 12}\n");
    run r = {.cfg = c};
    ck_assert_msg(run_build(&r, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    sg_tape *t = sg_tape_new();
    int B = 12, idx[12], src[12 * 64], len[12], S, tin[12 * 64], tout[12 * 64];
    for (int b = 0; b < B; b++)
        idx[b] = b;
    data_s2s_batch(&r.d, 1, idx, B, src, len, &S, tin, tout);
    int *out = malloc((size_t)B * r.max_out * sizeof *out), *out_len = malloc((size_t)B * sizeof *out_len);
    run_greedy(&r, t, src, len, B, S, out, out_len);
    sg_decode_opts g = {.beam = 1, .max_len = r.max_out, .start = r.d.V, .end = r.d.V + 1};
    int one[64];
    for (int b = 0; b < B; b++) {
        sg_tape_reset(t);
        int k = _i ? sg_transformer_s2s_generate(t, &r.ts2s, src + b * S, len[b], &g, one)
                   : sg_seq2seq_decode(t, &r.s2s, src + b * S, len[b], &g, one);
        ck_assert_int_eq(k, out_len[b]);
        ck_assert(memcmp(one, out + b * r.max_out, (size_t)k * sizeof *one) == 0);
    }
    /* the RNN's attention: one distribution over the source per output step */
    if (!_i) {
        double *w = run_attention(&r, t, src, len[0], out, out_len[0]);
        ck_assert_ptr_nonnull(w);
        for (int k = 0; k <= out_len[0]; k++) {
            double sum = 0;
            for (int j = 0; j < len[0]; j++)
                sum += w[k * len[0] + j];
            ck_assert_double_eq_tol(sum, 1.0, 1e-5);
        }
        free(w);
    } else {
        ck_assert_ptr_null(run_attention(&r, t, src, len[0], out, out_len[0]));
    }
    free(out), free(out_len);
    sg_tape_free(t);
    run_free(&r);
}
END_TEST

/* a small trained seq2seq run of the copy task in dir/run: its folder and
 * checkpoint path */
static void train_copy_run(char run_dir[128], char path[200])
{
    char yaml[300];
    snprintf(run_dir, 128, "%s/run", dir);
    snprintf(yaml, sizeof yaml, "model: {kind: seq2seq, hidden: 8}\ndata: {kind: copy, train_size: 40, valid_size: 8, "
                                "batch_size: 8}\ntrain: {steps: 2, run_dir: %s}\n", run_dir);
    sg_config c;
    config(&c, yaml);
    train_opts quiet = {.quiet = true};
    ck_assert_msg(train_run(&c, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    snprintf(path, 200, "%s/checkpoint.safetensors", run_dir);
}

/* a checkpoint whose config (its metadata) no longer fits its tensors is
 * refused; the run folder's config.yaml is a copy for people, not read */
START_TEST(test_checkpoint_must_fit_the_config)
{
    char run_dir[128], path[200];
    train_copy_run(run_dir, path);
    sg_ckpt *ck = sg_ckpt_open(path);
    char config_text[8192];
    snprintf(config_text, sizeof config_text, "%s", sg_ckpt_meta(ck, "config"));
    sg_ckpt_close(ck);
    char *at = strstr(config_text, "  hidden: 8\n");
    ck_assert_ptr_nonnull(at);
    at[10] = '9';
    cu_patch_meta(path, "config", config_text);
    run r = {0};
    ck_assert_int_eq(run_open(&r, run_dir, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    char want[400];
    snprintf(want, sizeof want, "%s: checkpoint tensor model.src_emb.weight has shape (10,8), the model expects (10,9)",
             path);
    ck_assert_str_eq(err, want);
    run_free(&r);
}
END_TEST

/* Hostile metadata: each value that crashed or hung sample, eval,
 * translate or resume (a vocabulary entry "-1", a negative step or data
 * position, a huge max_len) and each malformed one is refused with a
 * message naming the file and the key. */
static const struct { const char *key, *value, *msg; } hostile[] = {
    {"vocab", "-1616263", "metadata vocab: \"-1\" at 0 is not two hex digits"},
    {"vocab", "616161", "metadata vocab lists byte 0x61 twice"},
    {"vocab", "616", "metadata vocab has 3 hex digits (an even number, at most 512)"},
    {"step", "-5", "metadata step is \"-5\", expected a whole number from 0 to 1000000000000000"},
    {"step", " 5", "metadata step is \" 5\", expected a whole number from 0 to 1000000000000000"},
    {"data_pos", "-1", "metadata data_pos is \"-1\", expected a whole number from 0 to 1000000000000000"},
    {"optim_steps", "12abc", "metadata optim_steps is \"12abc\", expected a whole number from 0 to 1000000000000000"},
    {"max_len", "400000000", "metadata max_len is \"400000000\", expected a whole number from 0 to 4096"},
    {"rng", "-000000000000000000000000000000000000000000000000000000000000000", "metadata rng is not 64 hex digits"},
    {"step", NULL, "metadata step is \"(missing)\", expected a whole number from 0 to 1000000000000000"},
    {"config", NULL, "no config in the metadata (not a checkpoint of a seqgrad run)"},
    {"classes", "one", "metadata classes: fewer than 2"},
    {"classes", "a\n\nb", "metadata classes: a name is empty or longer than 47 bytes"},
};

START_TEST(test_hostile_metadata_refused)
{
    char run_dir[128], path[200];
    train_copy_run(run_dir, path);
    cu_patch_meta(path, hostile[_i].key, hostile[_i].value);
    run r = {0};
    ck_assert_int_eq(run_open(&r, run_dir, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    char want[600];
    snprintf(want, sizeof want, "%s: %s", path, hostile[_i].msg);
    ck_assert_str_eq(err, want);
    run_free(&r);
    /* the command a user runs says the same and exits 4 */
    FILE *in = fmemopen((void *)"0123\n", 5, "r"), *out = fopen("/dev/null", "w");
    translate_opts to = {.beam = 1, .length_penalty = 0.6};
    ck_assert_int_eq(train_translate(path, &to, in, out, err, sizeof err), EXIT_DATA);
    ck_assert_str_eq(err, want);
    fclose(in), fclose(out);
}
END_TEST

/* a config in the metadata that is not valid YAML points into it */
START_TEST(test_hostile_config_refused)
{
    char run_dir[128], path[200];
    train_copy_run(run_dir, path);
    cu_patch_meta(path, "config", "model:\n  hidden: 8\n  hidden: 9\n");
    run r = {0};
    ck_assert_int_eq(run_open(&r, run_dir, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    char want[600];
    snprintf(want, sizeof want, "%s[config]:3:11: model.hidden: given twice (first at line 2, column 11)", path);
    ck_assert_str_eq(err, want);
    run_free(&r);
}
END_TEST

/* A run that cannot fit in memory is refused before its first step, with
 * the figures (OpenBLAS would crash when its own malloc fails). Under an
 * address-space limit of 3 GB, in a child; not under ASan, whose shadow
 * memory needs more address space than that. */
/* train under an address-space limit of 3 GB (in the child cu_in_child made) */
static int train_in_3gb(void *c, char *msg, size_t n)
{
    setrlimit(RLIMIT_AS, &(struct rlimit){3000000000UL, 3000000000UL});
    train_opts quiet = {.quiet = true};
    return train_run(c, &quiet, msg, n);
}

/* under AddressSanitizer (GCC says __SANITIZE_ADDRESS__, clang __has_feature) */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

START_TEST(test_refuses_a_run_that_cannot_fit)
{
#ifndef UNDER_ASAN
    char yaml[400], run_dir[128];
    snprintf(run_dir, sizeof run_dir, "%s/big", dir);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm, hidden: 1024, layers: 4}\ndata: {kind: text, seq_len: 256, "
                                "batch_size: 64}\ntrain: {steps: 2, run_dir: %s}\n", run_dir);
    sg_config c;
    config(&c, yaml);
    char text[1200];
    int status = cu_in_child(train_in_3gb, &c, text, sizeof text);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_FAIL, "status %d: %s", status, text);
    ck_assert_msg(strstr(text, "the run needs about ") == text, "%s", text);
    ck_assert_msg(strstr(text, " MiB are available: make model.hidden, data.batch_size or data.seq_len smaller"), "%s",
                  text);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/model");
    TCase *tc = tcase_create("model");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_model_must_fit_the_data, 0, 7);
    tcase_add_loop_test(tc, test_greedy_batched_equals_one_at_a_time, 0, 2);
    tcase_add_test(tc, test_checkpoint_must_fit_the_config);
    tcase_add_loop_test(tc, test_hostile_metadata_refused, 0, sizeof hostile / sizeof hostile[0]);
    tcase_add_test(tc, test_hostile_config_refused);
    tcase_add_test(tc, test_refuses_a_run_that_cannot_fit);
    tcase_set_timeout(tc, 60);     /* children building models: past check's 4 s when the 2 cores are shared */
    suite_add_tcase(s, tc);
    return tu_run(s);
}
