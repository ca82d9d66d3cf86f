/*
 * test_cli_train.c - cli/train.c: a run stopped at step 5 and resumed ends,
 * at step 12, with the same parameters, optimizer state and carried state,
 * bit for bit, as the same run never stopped, for every kind of data and
 * model; the run folder holds its files; a corrupt checkpoint stops the
 * resume with a message; `seqgrad gradcheck` passes every kind of model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024];

/* dir/run.yaml holding body plus the run folder dir/run, loaded into c */
static void config_text(sg_config *c, const char *run, const char *body)
{
    char path[200], text[1200];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, run);
    snprintf(text, sizeof text, "%strain: {steps: 12, eval_every: 4, checkpoint_every: 100, run_dir: %s/%s}\n", body,
             dir, run);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    ck_assert_msg(cfg_load(c, path, err, sizeof err) == 0 && cfg_check(c, err, sizeof err) == 0, "%s", err);
}

static void config_kind(sg_config *c, const char *run, const char *kind)
{
    char body[600];
    snprintf(body, sizeof body, "model: {kind: %s, hidden: 16, layers: 2, dropout: 0.2}\n"
                                "data: {kind: text, seq_len: 16, batch_size: 4, valid_fraction: 0.05}\n", kind);
    config_text(c, run, body);
}

static void config(sg_config *c, const char *run) { config_kind(c, run, "lstm"); }

/* every kind of data with a model for it; dropout and scheduled sampling
 * draw from the run's rng, so resume must restore it */
static const char *kinds[][2] = {
    {"words", "model: {kind: gru, hidden: 16, layers: 2, dropout: 0.3}\n"
              "data: {kind: words, path: WORDS, batch_size: 8}\n"},
    {"lines", "model: {kind: transformer, hidden: 16, heads: 2, layers: 1, dropout: 0.1}\n"
              "data: {kind: lines, path: WORDS, batch_size: 8, seq_len: 16}\n"},
    {"reverse", "model: {kind: seq2seq, hidden: 16, embedding: 8, cell: lstm, attention: general, bidirectional: true}\n"
                "data: {kind: reverse, batch_size: 8, train_size: 200, valid_size: 20}\ntrain: {sampling: 0.3}\n"},
    {"sort", "model: {kind: transformer, hidden: 16, heads: 2, layers: 1, dropout: 0.1}\n"
             "data: {kind: sort, batch_size: 8, train_size: 200, valid_size: 20}\n"},
    {"pairs", "model: {kind: seq2seq, hidden: 16, attention: concat}\n"
              "data: {kind: pairs, path: PAIRS, batch_size: 4}\n"},
    {"adding", "model: {kind: lstm, hidden: 8, layers: 2, dropout: 0.2}\n"
               "data: {kind: adding, seq_len: 10, batch_size: 8, train_size: 64, valid_size: 16}\n"},
    /* cells of the config's own: a peephole LSTM language model (its two
     * states carried across batches), an MGU encoder-decoder */
    {"cell", "cell: {name: peep, states: [h, c], equations: [\"zi, zf, zg, zo = split(x @ weight_ih^T + h @ weight_hh^T + "
             "bias, 4)\", \"c' = sigmoid(zf + peep[1] * c) * c + sigmoid(zi + peep[0] * c) * tanh(zg)\", "
             "\"h' = sigmoid(zo + peep[2] * c') * tanh(c')\"],\n"
             "  params: {weight_ih: {shape: [4H, E], init: input}, weight_hh: [4H, H], bias: [4H], peep: [3, H]}}\n"
             "model: {kind: peep, hidden: 16, layers: 2, dropout: 0.2}\n"
             "data: {kind: text, seq_len: 16, batch_size: 4, valid_fraction: 0.05}\n"},
    /* a batch in shards (dist.c): the text LM's carried state by rows, and
     * a classifier, each shard its own dropout stream */
    {"shards", "model: {kind: lstm, hidden: 16, layers: 2, dropout: 0.2}\n"
               "data: {kind: text, seq_len: 16, batch_size: 4, valid_fraction: 0.05}\n"
               "train: {shards: 2}\n"},
    {"shards_classify", "model: {kind: gru, hidden: 8, layers: 2, dropout: 0.2, pooling: mean}\n"
                        "data: {kind: parity, min_len: 3, max_len: 12, train_size: 200, valid_size: 20, batch_size: 8}\n"
                        "train: {shards: 4}\n"},
    /* classifiers: each pooling, uni- and bidirectional */
    {"parity", "model: {kind: gru, hidden: 8, layers: 2, dropout: 0.2, pooling: attention, bidirectional: true}\n"
               "data: {kind: parity, min_len: 3, max_len: 12, train_size: 200, valid_size: 20, batch_size: 8}\n"},
    {"order", "model: {kind: lstm, hidden: 8, layers: 1, pooling: mean}\n"
              "data: {kind: order, seq_len: 20, train_size: 100, valid_size: 20, batch_size: 8}\n"},
    {"labelled", "model: {kind: rnn, hidden: 8, layers: 1, pooling: max, bidirectional: true}\n"
                 "data: {kind: labelled, path: LABELS, batch_size: 4}\n"},
    {"labelled_words", "model: {kind: gru, hidden: 8, layers: 1, pooling: attention}\n"
                       "data: {kind: labelled, level: word, path: LABELS, batch_size: 4}\n"},
    {"labelled_last", "model: {kind: lstm, hidden: 8, layers: 2, pooling: last, bidirectional: true}\n"
                      "data: {kind: labelled, path: LABELS, batch_size: 4}\n"},
    /* a tagger: word segmentation, bidirectional */
    {"segment", "model: {kind: gru, hidden: 8, layers: 1, bidirectional: true}\n"
                "data: {kind: segment, path: WORDS, seq_len: 20, batch_size: 4}\n"},
    /* generation from a vector: words given their language (word lists of the test's own) */
    {"wordgen", "model: {kind: lstm, hidden: 8, layers: 2, dropout: 0.2}\n"
                "data: {kind: wordgen, train_size: 20, valid_size: 4, batch_size: 4}\n"},
    {"wordgen_input", "model: {kind: gru, hidden: 8, layers: 2, dropout: 0.2, condition: input}\n"
                      "data: {kind: wordgen, train_size: 20, valid_size: 4, batch_size: 4}\n"},
    /* Fashion-MNIST row by row, and captioned with class names (a fake
     * data set of the test's own: cu_fake_fashion) */
    {"fashion", "model: {kind: gru, hidden: 8, layers: 2, dropout: 0.2, pooling: mean}\n"
                "data: {kind: fashion, train_size: 40, valid_size: 10, batch_size: 8}\n"},
    {"caption", "model: {kind: lstm, hidden: 8, layers: 2, dropout: 0.2}\n"
                "data: {kind: caption, train_size: 40, valid_size: 10, batch_size: 8}\n"},
    {"tagged", "model: {kind: lstm, hidden: 8, layers: 2, bidirectional: true, dropout: 0.2}\n"
               "data: {kind: tagged, path: CONLL, batch_size: 4}\n"},
    {"cell_s2s", "cell: {name: mgu2, states: [h], params: {weight_ih: [2H, E], bias: [2H], weight_f: [H, H], "
                 "weight_n: [H, H]}, equations: [\"xf, xn = split(x @ weight_ih^T + bias, 2)\", "
                 "\"f = sigmoid(xf + h @ weight_f^T)\", \"h' = (1 - f) * h + f * tanh(xn + (f * h) @ weight_n^T)\"]}\n"
                 "model: {kind: seq2seq, hidden: 16, embedding: 8, cell: mgu2, attention: additive, bidirectional: true}\n"
                 "data: {kind: reverse, batch_size: 8, train_size: 200, valid_size: 20}\n"},
};

/* kinds[k]'s config with WORDS and PAIRS replaced by files written in dir */
static void config_of_kind(sg_config *c, int k, const char *run)
{
    char words[200], pairs[200], labels[200], conll[200], body[1000];
    snprintf(words, sizeof words, "%s/words.txt", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.tsv", dir);
    snprintf(labels, sizeof labels, "%s/labels.tsv", dir);
    static const char *lists[2][2] = {{"american-english", "cat\ndog\ntree\nhouse\nwater\nbook\nriver\nstone\n"},
                                      {"ngerman", "katze\nhund\nbaum\nhaus\nwasser\nbuch\nfluss\nstein\n"}};
    for (int l = 0; l < 2; l++) {        /* wordgen reads SEQGRAD_DICT_DIR */
        char list[200];
        snprintf(list, sizeof list, "%s/%s", dir, lists[l][0]);
        FILE *wf = fopen(list, "w");
        for (int i = 0; i < 4; i++)
            fputs(lists[l][1], wf);
        fclose(wf);
    }
    setenv("SEQGRAD_DICT_DIR", dir, 1);
    cu_fake_fashion(dir, 40, 10);          /* fashion and caption read SEQGRAD_FASHION_DIR */
    setenv("SEQGRAD_FASHION_DIR", dir, 1);
    snprintf(conll, sizeof conll, "%s/tags.conll", dir);
    FILE *cf = fopen(conll, "w");
    for (int i = 0; i < 40; i++)
        fprintf(cf, "%s\tB-PER\nmet O\n%s\tB-LOC\n\n", i % 2 ? "anna" : "bob", i % 3 ? "rome" : "oslo");
    fclose(cf);
    FILE *lf = fopen(labels, "w");
    for (int i = 0; i < 60; i++)
        fprintf(lf, "%s\t%s %d\n", i % 3 ? "plant" : "animal", i % 3 ? "a tree" : "the cat", i);
    fclose(lf);
    FILE *f = fopen(words, "w");
    for (int i = 0; i < 60; i++)
        fprintf(f, "%s%c", (const char *[]){"abel", "cain", "seth", "enos", "lamech", "noah"}[i % 6], i % 7 ? ' ' : '\n');
    fclose(f);
    f = fopen(pairs, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "%d\t%d\n", i * 37 % 1000, i * 37 % 1000 + 1);
    fclose(f);
    const char *src = kinds[k][1];
    size_t len = 0;
    for (const char *p = src; *p && len + 200 < sizeof body;) {
        const char *w = strstr(p, "WORDS") == p ? words : strstr(p, "PAIRS") == p ? pairs : NULL;
        if (strstr(p, "LABELS") == p)
            len += (size_t)snprintf(body + len, sizeof body - len, "%s", labels), p += 6;
        else if (strstr(p, "CONLL") == p)
            len += (size_t)snprintf(body + len, sizeof body - len, "%s", conll), p += 5;
        else if (w)
            len += (size_t)snprintf(body + len, sizeof body - len, "%s", w), p += 5;
        else
            body[len++] = *p++;
    }
    body[len] = '\0';
    /* two train keys would be two mappings: fold the test's own into it */
    char *tr = strstr(body, "train: {");
    if (tr) {
        char extra[200];
        snprintf(extra, sizeof extra, "%s", tr + 8);
        *tr = '\0';
        char path[200], text[1600];
        snprintf(path, sizeof path, "%s/%s.yaml", dir, run);
        snprintf(text, sizeof text, "%strain: {steps: 12, eval_every: 4, checkpoint_every: 100, run_dir: %s/%s, %s",
                 body, dir, run, extra);
        f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        ck_assert_msg(cfg_load(c, path, err, sizeof err) == 0 && cfg_check(c, err, sizeof err) == 0, "%s", err);
        return;
    }
    config_text(c, run, body);
}

/* the two checkpoints hold the same tensors, byte for byte, and the same rng */
static void assert_same_checkpoints(const char *a, const char *b)
{
    sg_ckpt *x = sg_ckpt_open(a), *y = sg_ckpt_open(b);
    ck_assert_str_eq(sg_ckpt_meta(x, "step"), "12");
    ck_assert_str_eq(sg_ckpt_meta(y, "step"), "12");
    sg_ckpt_close(x), sg_ckpt_close(y);
    ck_assert_msg(cu_same_tensors(a, b, err, sizeof err), "%s after resume", err);     /* every tensor, every byte */
}

START_TEST(test_resume_is_bit_exact)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sg_config a, b;
    config(&a, "straight");
    config(&b, "stopped");
    train_opts quiet = {.quiet = true}, stop = {.quiet = true, .stop_after = 5};
    ck_assert_msg(train_run(&a, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_msg(train_run(&b, &stop, err, sizeof err) == EXIT_OK, "%s", err);
    char run_b[100], ca[200], cb[200];
    snprintf(run_b, sizeof run_b, "%s/stopped", dir);
    snprintf(ca, sizeof ca, "%s/straight/checkpoint.safetensors", dir);
    snprintf(cb, sizeof cb, "%s/stopped/checkpoint.safetensors", dir);
    sg_ckpt *mid = sg_ckpt_open(cb);
    ck_assert_int_eq(sg_ckpt_error(mid), SG_OK);
    ck_assert_str_eq(sg_ckpt_meta(mid, "step"), "5");
    sg_ckpt_close(mid);
    ck_assert_msg(train_resume(run_b, &quiet, err, sizeof err) == EXIT_OK, "%s", err);

    assert_same_checkpoints(ca, cb);

    /* the run folder: config, metrics (a line per step, 12 + header), plot */
    char path[300], line[256];
    snprintf(path, sizeof path, "%s/metrics.csv", run_b);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int lines = 0;
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    ck_assert_int_eq(lines, 13);
    snprintf(path, sizeof path, "%s/loss.svg", run_b);
    ck_assert_int_eq(access(path, R_OK), 0);

    /* a checkpoint cut short is refused with a message */
    ck_assert_int_eq(truncate(cb, 100), 0);
    ck_assert_int_eq(train_resume(run_b, &quiet, err, sizeof err), EXIT_DATA);
    ck_assert_msg(strstr(err, "truncated or corrupt") != NULL, "%s", err);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* one-state cells (tanh RNN, GRU) carry one tensor, the transformer none:
 * train, stop, resume, sample */
START_TEST(test_other_models)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const char *kinds[3] = {"rnn", "gru", "transformer"};
    sg_config c;
    config_kind(&c, kinds[_i], kinds[_i]);
    train_opts stop = {.quiet = true, .stop_after = 4}, quiet = {.quiet = true};
    ck_assert_msg(train_run(&c, &stop, err, sizeof err) == EXIT_OK, "%s", err);
    char run[100], ck[200];
    snprintf(run, sizeof run, "%s/%s", dir, kinds[_i]);
    ck_assert_msg(train_resume(run, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    FILE *out = tmpfile();
    ck_assert_msg(train_sample(ck, "And", NULL, 20, 0.8, 1, out, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq((int)ftell(out), 3 + 20 + 1);     /* prompt, 20 characters, newline */
    fclose(out);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* each kind of data: 12 straight steps equal 5 steps, stop, resume */
START_TEST(test_resume_every_kind)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sg_config a, b;
    config_of_kind(&a, _i, "straight");
    config_of_kind(&b, _i, "stopped");
    train_opts quiet = {.quiet = true}, stop = {.quiet = true, .stop_after = 5};
    ck_assert_msg(train_run(&a, &quiet, err, sizeof err) == EXIT_OK, "%s: %s", kinds[_i][0], err);
    ck_assert_msg(train_run(&b, &stop, err, sizeof err) == EXIT_OK, "%s: %s", kinds[_i][0], err);
    char run_b[100], ca[200], cb[200];
    snprintf(run_b, sizeof run_b, "%s/stopped", dir);
    ck_assert_msg(train_resume(run_b, &quiet, err, sizeof err) == EXIT_OK, "%s: %s", kinds[_i][0], err);
    snprintf(ca, sizeof ca, "%s/straight/checkpoint.safetensors", dir);
    snprintf(cb, sizeof cb, "%s/stopped/checkpoint.safetensors", dir);
    assert_same_checkpoints(ca, cb);
    /* the last line of metrics.csv has the validation loss, and an accuracy
     * for seq2seq and the adding problem */
    char path[300], line[256], last[256] = "";
    snprintf(path, sizeof path, "%s/metrics.csv", run_b);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        strcpy(last, line);
    fclose(f);
    char *cols[8] = {0}, *save = NULL;
    int ncol = 0;
    for (char *p = strtok_r(last, ",\n", &save); p && ncol < 8; p = strtok_r(NULL, ",\n", &save))
        cols[ncol++] = p;
    bool accuracy = strcmp(kinds[_i][0], "words") && strcmp(kinds[_i][0], "lines") && strcmp(kinds[_i][0], "cell") && strcmp(kinds[_i][0], "shards") &&
                    strncmp(kinds[_i][0], "wordgen", 7);
    ck_assert_int_eq(ncol, accuracy ? 7 : 6);
    ck_assert_str_eq(cols[0], "12");
    ck_assert(atof(cols[2]) > 0);
    if (accuracy)
        ck_assert(atof(cols[6]) >= 0 && atof(cols[6]) <= 1);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* train_gradcheck passes every parameter of c's model */
static void assert_gradcheck_passes(sg_config *c, const char *label)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = train_gradcheck(c, out, err, sizeof err);
    fclose(out);
    ck_assert_msg(rc == EXIT_OK, "%s: %s\n%s", label, err, text);
    ck_assert_ptr_nonnull(strstr(text, "all parameters pass"));
    free(text);
}

/* seqgrad gradcheck: every parameter of every kind of model passes */
START_TEST(test_gradcheck_every_kind)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sg_config c;
    config_of_kind(&c, _i, "gc");
    assert_gradcheck_passes(&c, kinds[_i][0]);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* seqgrad gradcheck on the example configs themselves (their layers and heads) */
START_TEST(test_gradcheck_example_configs)
{
    static const char *configs[] = {"char_lstm", "char_transformer", "seq2seq_reverse", "sort_transformer", "adding_lstm"};
    char path[300];
    snprintf(path, sizeof path, "%s/../../examples/configs/%s.yaml", TEST_DATA_DIR, configs[_i]);
    sg_config c;
    ck_assert_msg(cfg_load(&c, path, err, sizeof err) == 0 && cfg_check(&c, err, sizeof err) == 0, "%s", err);
    assert_gradcheck_passes(&c, configs[_i]);
}
END_TEST

/* a cell registered by name trains like a built-in one; an unknown name is
 * a config error at its line and column */
static sg_status copy_step(sg_tape *t, const sg_cell_run *run, sg_tensor *xp, sg_tensor *const *s, sg_tensor **next)
{   /* h' = tanh(xp + h U^T): the simple RNN, under another name */
    next[0] = sg_tanh(t, sg_add(t, xp, sg_matmul_ex(t, s[0], sg_cell_param(run->cell, "weight_hh"), SG_TRANS_B)));
    return sg_tape_error(t);
}

static sg_tensor *copy_project(sg_tape *t, const sg_cell_run *run, sg_tensor *x)
{
    return sg_add(t, sg_matmul_ex(t, x, sg_cell_param(run->cell, "weight_ih"), SG_TRANS_B),
                  sg_cell_param(run->cell, "bias"));
}

static const sg_cell_def my_cell = {
    .name = "mine", .states = {"h"},
    .params = {{"weight_ih", "H, E", SG_PARAM_INPUT}, {"weight_hh", "H, H", SG_PARAM_RECURRENT}, {"bias", "H"}},
    .project = copy_project, .step = copy_step};

START_TEST(test_registered_cell_and_unknown_kind)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sg_config c;
    config_kind(&c, "nobody", "nobody");
    train_opts quiet = {.quiet = true};
    ck_assert_int_eq(train_run(&c, &quiet, err, sizeof err), EXIT_CONFIG);
    char expect[400];
    snprintf(expect, sizeof expect, "%s/nobody.yaml:1:15: model.kind: \"nobody\" is neither transformer, seq2seq nor a "
             "registered cell (rnn|rnn_relu|rnn_sigmoid|lstm|gru|gru_reset_after)", dir);
    ck_assert_str_eq(err, expect);
    ck_assert_int_eq(sg_cell_register(&my_cell, err, sizeof err), SG_OK);
    ck_assert_int_eq(sg_cell_register(&my_cell, err, sizeof err), SG_ERR_ARG);      /* taken */
    config_kind(&c, "mine", "mine");
    ck_assert_msg(train_run(&c, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Ctrl-C, SIGTERM, SIGHUP: the tool stops after the current step, writes a
 * checkpoint and exits with 128 + the signal; the checkpoint is whole and
 * says which step it holds. */
static const int stop_signal[3] = {SIGINT, SIGTERM, SIGHUP};

START_TEST(test_ctrl_c_writes_a_checkpoint)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cfg[200], text[400], run[100];
    snprintf(cfg, sizeof cfg, "%s/long.yaml", dir);
    snprintf(run, sizeof run, "%s/long", dir);
    snprintf(text, sizeof text, "model: {kind: lstm, hidden: 16}\ndata: {kind: text, seq_len: 16, batch_size: 4}\n"
                                "train: {steps: 1000000, eval_every: 1000000, checkpoint_every: 1000000, run_dir: %s}\n", run);
    FILE *f = fopen(cfg, "w");
    fputs(text, f);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(SEQGRAD_BIN, "seqgrad", "train", cfg, (char *)NULL);
        _exit(99);
    }
    /* the handler is in place once metrics.csv exists; then let a few steps run */
    char metrics[200];
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", run);
    for (int i = 0; i < 600 && access(metrics, F_OK) != 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
    ck_assert_int_eq(access(metrics, F_OK), 0);
    nanosleep(&(struct timespec){.tv_nsec = 500000000}, NULL);
    kill(pid, stop_signal[_i]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 128 + stop_signal[_i], "status %d", status);
    char ck[200];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    sg_ckpt *c = sg_ckpt_open(ck);
    ck_assert_msg(sg_ckpt_error(c) == SG_OK, "%s", sg_ckpt_errmsg(c));
    ck_assert_int_gt(atol(sg_ckpt_meta(c, "step")), 0);
    sg_ckpt_close(c);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long k = 0;
    for (int ch; f && (ch = fgetc(f)) != EOF;)
        k += ch == '\n';
    if (f)
        fclose(f);
    return k;
}

/* A run folder: train refuses one that holds a run (unless --overwrite);
 * a temporary checkpoint left by a kill -9 is removed at the next start;
 * resume drops metrics rows written after its checkpoint (no duplicates);
 * the checkpoint has the mode of the folder's other files. */
START_TEST(test_run_folder_durability)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    mode_t mask = umask(022);
    sg_config c;
    config(&c, "run");
    train_opts quiet = {.quiet = true}, stop = {.quiet = true, .stop_after = 5}, again = {.quiet = true, .overwrite = true};
    ck_assert_msg(train_run(&c, &stop, err, sizeof err) == EXIT_OK, "%s", err);
    char run[100], want[400], path[200];
    snprintf(run, sizeof run, "%s/run", dir);
    ck_assert_int_eq(train_run(&c, &quiet, err, sizeof err), EXIT_USAGE);
    snprintf(want, sizeof want, "train.run_dir %s already holds a run: seqgrad resume %s continues it, --overwrite "
                                "starts it again", run, run);
    ck_assert_str_eq(err, want);
    ck_assert_msg(train_run(&c, &again, err, sizeof err) == EXIT_OK, "%s", err);    /* 12 steps, from 0 */
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    ck_assert_int_eq(count_lines(path), 13);
    /* the checkpoint's mode: 0644 under umask 022, as config.yaml */
    struct stat st;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* stopped at 5; a later row 6 and 7 were written before a kill -9, with
     * a half-written temporary checkpoint */
    ck_assert_msg(train_run(&c, &(train_opts){.quiet = true, .overwrite = true, .stop_after = 5}, err, sizeof err) ==
                  EXIT_OK, "%s", err);
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    FILE *f = fopen(path, "a");
    fputs("6,1.0,,0.001,1,1,\n7,1.0,,0.001,1,1,\n", f);
    fclose(f);
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s/checkpoint.safetensors.Ab12Cd", run);
    f = fopen(tmp, "w");
    fputs("half", f);
    fclose(f);
    ck_assert_msg(train_resume(run, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    ck_assert_int_eq(count_lines(path), 13);                /* header + steps 1..12, each once */
    f = fopen(path, "r");
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    for (long k = 1; fgets(line, sizeof line, f); k++)
        ck_assert_int_eq(strtol(line, NULL, 10), k);
    fclose(f);
    umask(mask);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* train with a file-size limit (in the child cu_in_child made) */
typedef struct {
    const sg_config *c;
    rlim_t bytes;
} limited;

static int train_limited(void *arg, char *msg, size_t n)
{
    const limited *l = arg;
    signal(SIGXFSZ, SIG_IGN);                      /* a write past the limit fails with EFBIG */
    setrlimit(RLIMIT_FSIZE, &(struct rlimit){l->bytes, l->bytes});
    train_opts o = {.quiet = true, .overwrite = true};
    return train_run(l->c, &o, msg, n);
}

/* A disk that fills up (a file-size limit, in a child): the tool reports
 * which file could not be written and exits 1, and the checkpoint already
 * there survives whole. _i = 0: even config.yaml does not fit; 1: the
 * config fits, a checkpoint does not. */
START_TEST(test_disk_full)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sg_config c;
    config(&c, "full");
    char run[100];
    snprintf(run, sizeof run, "%s/full", dir);
    train_opts quiet = {.quiet = true};
    if (_i == 1)                                   /* a whole checkpoint first */
        ck_assert_msg(train_run(&c, &quiet, err, sizeof err) == EXIT_OK, "%s", err);
    char before[200];
    snprintf(before, sizeof before, "%s/checkpoint.safetensors", run);
    char text[600];
    int status = cu_in_child(train_limited, &(limited){&c, _i == 0 ? 64 : 4096}, text, sizeof text);
    ck_assert_msg(WIFEXITED(status), "the child died: %d", status);
    ck_assert_int_eq(WEXITSTATUS(status), EXIT_FAIL);
    char want[400];
    snprintf(want, sizeof want, _i == 0 ? "%s/config.yaml: cannot write: File too large"
                                        : "%s/checkpoint.safetensors: cannot write: File too large", run);
    ck_assert_str_eq(text, want);
    if (_i == 1) {                                 /* the earlier checkpoint is still whole */
        sg_ckpt *ck = sg_ckpt_open(before);
        ck_assert_msg(sg_ckpt_error(ck) == SG_OK, "%s", sg_ckpt_errmsg(ck));
        ck_assert_str_eq(sg_ckpt_meta(ck, "step"), "12");
        sg_ckpt_close(ck);
    }
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* metrics.csv outgrowing the disk in the middle of a run (a file-size
 * limit of 2000 bytes: config.yaml fits, 60 rows of metrics do not) is
 * reported, not written empty in silence */
START_TEST(test_disk_full_metrics)
{
    strcpy(dir, "/tmp/seqgrad-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[200], text[400], run[100];
    snprintf(run, sizeof run, "%s/metrics", dir);
    snprintf(path, sizeof path, "%s/metrics.yaml", dir);
    snprintf(text, sizeof text, "model: {kind: lstm, hidden: 4}\ndata: {kind: text, seq_len: 4, batch_size: 2}\n"
                                "train: {steps: 200, eval_every: 1000, checkpoint_every: 1000, run_dir: %s}\n", run);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    sg_config c;
    ck_assert_msg(cfg_load(&c, path, err, sizeof err) == 0 && cfg_check(&c, err, sizeof err) == 0, "%s", err);
    char msg[600];
    int status = cu_in_child(train_limited, &(limited){&c, 2000}, msg, sizeof msg);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_FAIL, "status %d: %s", status, msg);
    char want[300];
    snprintf(want, sizeof want, "%s/metrics.csv: cannot write: File too large", run);
    ck_assert_str_eq(msg, want);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/train");
    TCase *tc = tcase_create("resume");
    tcase_add_test(tc, test_resume_is_bit_exact);
    tcase_add_loop_test(tc, test_other_models, 0, 3);
    tcase_add_loop_test(tc, test_resume_every_kind, 0, sizeof kinds / sizeof kinds[0]);
    tcase_add_loop_test(tc, test_gradcheck_every_kind, 0, sizeof kinds / sizeof kinds[0]);
    tcase_add_loop_test(tc, test_gradcheck_example_configs, 0, 5);
    tcase_add_test(tc, test_registered_cell_and_unknown_kind);
    tcase_add_loop_test(tc, test_ctrl_c_writes_a_checkpoint, 0, 3);
    tcase_add_test(tc, test_run_folder_durability);
    tcase_add_loop_test(tc, test_disk_full, 0, 2);
    tcase_add_test(tc, test_disk_full_metrics);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
