/*
 * test_cli_interchange.c - cli/interchange.c and tools/seqgrad_*.py: a run
 * of every model kind the tool trains goes to torch.nn (whose outputs on a
 * validation batch must be seqgrad's, to 1e-4 of their scale) and back
 * through `seqgrad import` (whose `seqgrad eval` must print what the
 * original's prints); the ONNX export of a bidirectional LSTM tagger over
 * sentences of different lengths, and of a language model, agrees with
 * seqgrad; what cannot be exported or imported is refused with a message.
 * Needs /usr/bin/python3 with python3-torch (and python3-onnx for ONNX):
 * without them those cases are left out, and the program says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seqgrad/checkpoint.h>

#include "../cli/config.h"
#include "../cli/interchange.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64] = "/tmp/seqgrad-interchange-XXXXXX", err[1024];

/* model kinds: (name, config body) */
static const char *kinds[][2] = {
    {"char_lstm", "model: {kind: lstm, hidden: 12, layers: 2}\ndata: {kind: text, seq_len: 16, batch_size: 4}\n"},
    {"char_gru", "model: {kind: gru, hidden: 12, layers: 2}\ndata: {kind: text, seq_len: 16, batch_size: 4}\n"},
    {"names_rnn", "model: {kind: rnn, hidden: 12, layers: 1}\ndata: {kind: words, path: NAMES, batch_size: 4}\n"},
    {"char_tf", "model: {kind: transformer, hidden: 8, heads: 2, layers: 2}\n"
                "data: {kind: text, seq_len: 16, batch_size: 4}\n"},
    {"s2s_additive", "model: {kind: seq2seq, cell: gru, hidden: 8, attention: additive, bidirectional: true}\n"
                     "data: {kind: reverse, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"s2s_dot", "model: {kind: seq2seq, cell: lstm, hidden: 8, attention: dot}\n"
                "data: {kind: copy, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"s2s_general", "model: {kind: seq2seq, cell: gru_reset_after, hidden: 8, attention: general, bidirectional: true}\n"
                    "data: {kind: sort, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"s2s_concat", "model: {kind: seq2seq, cell: rnn, hidden: 8, embedding: 5, attention: concat}\n"
                   "data: {kind: reverse, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"s2s_tf", "model: {kind: transformer, hidden: 8, heads: 2, layers: 1, norm_first: false}\n"
               "data: {kind: sort, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"cls_attention", "model: {kind: gru, hidden: 8, layers: 2, pooling: attention, bidirectional: true}\n"
                      "data: {kind: parity, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"cls_max", "model: {kind: rnn_relu, hidden: 8, layers: 1, pooling: max, bidirectional: true}\n"
                "data: {kind: order, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"cls_mean", "model: {kind: lstm, hidden: 8, layers: 1, pooling: mean}\n"
                 "data: {kind: labelled, path: LABELS, batch_size: 4}\n"},
    {"cls_last", "model: {kind: gru_reset_after, hidden: 8, layers: 2, pooling: last, bidirectional: true}\n"
                 "data: {kind: parity, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"tagger", "model: {kind: lstm, hidden: 8, layers: 1, bidirectional: true}\n"
               "data: {kind: tagged, path: CONLL, batch_size: 4}\n"},
    {"adding", "model: {kind: rnn_sigmoid, hidden: 8, layers: 1}\n"
               "data: {kind: adding, seq_len: 12, train_size: 60, valid_size: 10, batch_size: 4}\n"},
    {"wordgen", "model: {kind: lstm, hidden: 8, layers: 2, condition: input}\n"
                "data: {kind: wordgen, train_size: 30, valid_size: 6, batch_size: 4}\n"},
    /* cells of the config's own, their equations translated: slices of a
     * weight, layernorm, a second state, in a language model and as the
     * encoder and decoder of a seq2seq */
    {"own_gru_lm", "cell: {name: yaml_gru, states: [h], params: {weight_ih: {shape: [3H, E], init: input}, "
                   "weight_hh: [3H, H], bias_ih: [3H], bias_hh: [3H]}, equations: [\"gx = x @ weight_ih^T + bias_ih + "
                   "bias_hh\", \"r, z = split(sigmoid(gx[0:2H] + h @ weight_hh[0:2H]^T), 2)\", \"n = tanh(gx[2H:3H] + "
                   "(r * h) @ weight_hh[2H:3H]^T)\", \"h' = (1 - z) * h + z * n\"]}\n"
                   "model: {kind: yaml_gru, hidden: 8, layers: 2}\ndata: {kind: text, seq_len: 12, batch_size: 4}\n"},
    {"own_ln_s2s", "cell: {name: ln_peep, states: [h, c], params: {weight_ih: {shape: [4H, E], init: input}, "
                   "weight_hh: [4H, H], bias: [4H], gain: {shape: [4H], init: ones}, peep: [3, H]}, equations: "
                   "[\"z = layernorm(x @ weight_ih^T + h @ weight_hh^T, gain, bias)\", \"zi, zf, zg, zo = split(z, 4)\", "
                   "\"c' = sigmoid(zf + peep[1] * c) * c + sigmoid(zi + peep[0] * c) * tanh(zg)\", "
                   "\"h' = sigmoid(zo + peep[2] * c') * tanh(c')\"]}\n"
                   "model: {kind: seq2seq, cell: ln_peep, hidden: 8, attention: additive, bidirectional: true}\n"
                   "data: {kind: reverse, train_size: 60, valid_size: 10, batch_size: 4}\n"},
};

static void write_text(const char *name, const char *text)
{
    char path[200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* kinds[k]'s body with NAMES, LABELS and CONLL replaced by files of dir */
static void body_of(int k, char *out, size_t n)
{
    char names[200], labels[200], conll[200];
    snprintf(names, sizeof names, "%s/names.txt", dir);
    snprintf(labels, sizeof labels, "%s/labels.tsv", dir);
    snprintf(conll, sizeof conll, "%s/tags.conll", dir);
    size_t len = 0;
    for (const char *p = kinds[k][1]; *p && len + 200 < n;) {
        const char *with = !strncmp(p, "NAMES", 5) ? names : !strncmp(p, "LABELS", 6) ? labels
                         : !strncmp(p, "CONLL", 5) ? conll : NULL;
        if (with) {
            len += (size_t)snprintf(out + len, n - len, "%s", with);
            p += strlen(with == labels ? "LABELS" : "NAMES");
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* to torch.nn and back: export checks the outputs, import gives back a run
 * whose eval prints what the original's prints */
START_TEST(test_pytorch_round_trip)
{
    const char *name = kinds[_i][0];
    char body[1200], cmd[2000], a[8192];
    body_of(_i, body, sizeof body);
    cu_train(dir, name, body, 12);
    snprintf(cmd, sizeof cmd, "%s export %s/%s --to pytorch %s/%s.torch > %s/%s.export 2>&1", SEQGRAD_BIN, dir, name,
             dir, name, dir, name);
    char log[300];
    snprintf(log, sizeof log, "%s/%s.export", dir, name);
    ck_assert_msg(sh(cmd) == 0, "%s: export failed:\n%s", name, slurp(log));
    ck_assert_msg(strstr(slurp(log), ": the same") != NULL, "%s", slurp(log));
    snprintf(cmd, sizeof cmd, "%s import %s/%s.torch/weights.safetensors --config %s/%s.torch/config.yaml %s/%s.back "
             "> %s/%s.import 2>&1", SEQGRAD_BIN, dir, name, dir, name, dir, name, dir, name);
    snprintf(log, sizeof log, "%s/%s.import", dir, name);
    ck_assert_msg(sh(cmd) == 0, "%s: import failed:\n%s", name, slurp(log));
    snprintf(cmd, sizeof cmd, "%s eval %s/%s/checkpoint.safetensors > %s/%s.eval1 2>&1", SEQGRAD_BIN, dir, name, dir,
             name);
    ck_assert_int_eq(sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s eval %s/%s.back/checkpoint.safetensors > %s/%s.eval2 2>&1", SEQGRAD_BIN, dir, name,
             dir, name);
    ck_assert_int_eq(sh(cmd), 0);
    snprintf(log, sizeof log, "%s/%s.eval1", dir, name);
    snprintf(a, sizeof a, "%s", slurp(log));
    snprintf(log, sizeof log, "%s/%s.eval2", dir, name);
    ck_assert_str_eq(slurp(log), a);
    ck_assert(strlen(a) > 20);
}
END_TEST

/* ONNX: a bidirectional LSTM tagger over sentences of 2 to 6 tokens (the
 * lengths go in sequence_lens), and a language model */
START_TEST(test_onnx_bilstm_with_lengths)
{
    const int k = _i ? 0 : 13;             /* tagger, char_lstm */
    const char *name = _i ? "lm_onnx" : "tagger_onnx";
    char body[1200], cmd[2000], log[300], ref[300];
    body_of(k, body, sizeof body);
    cu_train(dir, name, body, 12);
    snprintf(cmd, sizeof cmd, "%s export %s/%s --to onnx %s/%s.onnx > %s/%s.onnxlog 2>&1", SEQGRAD_BIN, dir, name, dir,
             name, dir, name);
    snprintf(log, sizeof log, "%s/%s.onnxlog", dir, name);
    ck_assert_msg(sh(cmd) == 0, "%s: ONNX export failed:\n%s", name, slurp(log));
    ck_assert_msg(strstr(slurp(log), ": the same") != NULL, "%s", slurp(log));
    snprintf(cmd, sizeof cmd, "%s/%s.onnx/model.onnx", dir, name);
    ck_assert_int_eq(access(cmd, R_OK), 0);
    if (k == 13) {                          /* the batch had sequences of different lengths */
        snprintf(ref, sizeof ref, "%s/%s.onnx/reference.safetensors", dir, name);
        sg_ckpt *c = sg_ckpt_open(ref);
        const sg_ckpt_entry *e = sg_ckpt_find(c, "lengths");
        ck_assert_ptr_nonnull(e);
        const double *len = e->data;
        bool differ = false;
        for (int b = 1; b < e->shape[0]; b++)
            differ = differ || len[b] != len[0];
        ck_assert_msg(differ, "the reference batch's sequences are all of one length");
        sg_ckpt_close(c);
    }
}
END_TEST

START_TEST(test_refusals)
{
    char body[1200], cmd[2000], log[300];
    /* a cell ONNX has no operator for */
    body_of(1, body, sizeof body);
    cu_train(dir, "gru_onnx", body, 2);
    bool onnx = system("/usr/bin/python3 -c 'import onnx, torch' > /dev/null 2>&1") == 0;
    snprintf(cmd, sizeof cmd, "%s export %s/gru_onnx --to onnx %s/gru_onnx.onnx > %s/refuse.log 2>&1", SEQGRAD_BIN, dir,
             dir, dir);
    snprintf(log, sizeof log, "%s/refuse.log", dir);
    ck_assert_int_ne(sh(cmd), 0);
    ck_assert_msg(!onnx || strstr(slurp(log), "model.kind gru: ONNX has LSTM, GRU (linear_before_reset = 1: gru_reset_after) "
                                     "and RNN (tanh, relu); seqgrad's classic gru, rnn_sigmoid and cells of your own "
                                     "have no ONNX operator") != NULL, "%s", slurp(log));
    /* options */
    char *argv[] = {"run", "--to", "keras", "out"};
    ck_assert_int_eq(export_command(4, argv, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "export: --to \"keras\" is not one of pytorch|onnx");
    char *argv2[] = {"w.safetensors", "run", "--weights"};
    ck_assert_int_eq(import_command(3, argv2, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "import: unknown option --weights (seqgrad import --help)");
    /* weights that are not the config's model: a tensor missing */
    char w[200], cfg[200], run[200];
    snprintf(w, sizeof w, "%s/gru_onnx/checkpoint.safetensors", dir);      /* names with "model.": none match */
    snprintf(cfg, sizeof cfg, "%s/gru_onnx/config.yaml", dir);
    snprintf(run, sizeof run, "%s/nothing", dir);
    char *argv3[] = {w, "--config", cfg, run};
    ck_assert_int_eq(import_command(4, argv3, err, sizeof err), EXIT_DATA);
    ck_assert_msg(strstr(err, "checkpoint.safetensors: ") && strstr(err, "embedding.weight"), "%s", err);
    ck_assert_int_ne(access(run, F_OK), 0);                                  /* nothing written */
}
END_TEST

static bool python_has(const char *module)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' > /dev/null 2>&1", module);
    return system(cmd) == 0;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    setenv("SEQGRAD_DICT_DIR", dir, 1);
    write_text("american-english", "cat\ndog\ntree\nhouse\nwater\nbook\nriver\nstone\nlight\nearth\n");
    write_text("ngerman", "katze\nhund\nbaum\nhaus\nwasser\nbuch\nfluss\nstein\nlicht\nerde\n");
    write_text("names.txt", "adam\nseth\nenos\ncainan\nmahalaleel\njared\nenoch\nmethuselah\nlamech\nnoah\nshem\nham\n"
                            "japheth\nabram\nsarai\nlot\nisaac\nrebekah\nesau\njacob\nleah\nrachel\njoseph\nbenjamin\n");
    FILE *f;
    char path[200];
    snprintf(path, sizeof path, "%s/labels.tsv", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "%s\t%s %d\n", i % 3 ? "plant" : "animal", i % 3 ? "a green tree" : "the cat", i);
    fclose(f);
    snprintf(path, sizeof path, "%s/tags.conll", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 40; i++) {           /* sentences of 2 to 6 tokens */
        for (int j = 0; j < 2 + i % 5; j++)
            fprintf(f, "%s\t%s\n", j % 2 ? "met" : i % 3 ? "anna" : "oslo", j % 2 ? "O" : i % 3 ? "B-PER" : "B-LOC");
        fputc('\n', f);
    }
    fclose(f);
    Suite *s = suite_create("cli/interchange");
    TCase *tc = tcase_create("interchange");
    tcase_add_test(tc, test_refusals);
    if (python_has("torch"))
        tcase_add_loop_test(tc, test_pytorch_round_trip, 0, sizeof kinds / sizeof kinds[0]);
    else
        printf("test_cli_interchange: the PyTorch cases are skipped: /usr/bin/python3 has no torch "
               "(apt-get install python3-torch)\n");
    if (python_has("onnx") && python_has("torch"))
        tcase_add_loop_test(tc, test_onnx_bilstm_with_lengths, 0, 2);
    else
        printf("test_cli_interchange: the ONNX cases are skipped: apt-get install python3-onnx python3-torch\n");
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    int rc = tu_run(s);
    char cmd[120];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
