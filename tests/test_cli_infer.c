/*
 * test_cli_infer.c - cli/infer.c on trained runs: translate reverses
 * strings after the reversal task is learnt (greedy and beam), writes the
 * attention heatmap, eval reports the accuracy that translate shows,
 * sample draws whole items from an item model, and each command refuses a
 * model of the wrong kind with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/train.h"
#include "cliutil.h"
#include "testutil.h"

static char dir[64], err[1024];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-infer-XXXXXX");
    if (!mkdtemp(dir))
        exit(1);
    cu_train(dir, "reverse", "model: {kind: seq2seq, hidden: 32, embedding: 16, bidirectional: true}\n"
                     "data: {kind: reverse, symbols: 6, min_len: 2, max_len: 6, train_size: 3000, valid_size: 200,"
                     " batch_size: 32}\noptim: {lr: 0.005}\n", 400);
    char body[1000], words[200];
    snprintf(words, sizeof words, "%s/names.txt", dir);
    FILE *f = fopen(words, "w");
    for (int i = 0; i < 200; i++)
        fprintf(f, "%s\n", (const char *[]){"abel", "cain", "seth", "enos", "lamech", "noah", "shem", "ham"}[i % 8]);
    fclose(f);
    snprintf(body, sizeof body, "model: {kind: lstm, hidden: 32, layers: 1}\ndata: {kind: lines, path: %s, "
                                "batch_size: 16}\n", words);
    cu_train(dir, "names", body, 200);
    /* cells from cell: sections: an MGU encoder-decoder, a peephole LSTM on the names */
    cu_train(dir, "yreverse", "cell: {name: mgu, states: [h], params: {weight_ih: {shape: [2H, E], init: input}, "
                     "bias: [2H], weight_f: {shape: [H, H], init: recurrent}, weight_n: {shape: [H, H], init: recurrent}},"
                     " equations: [\"xf, xn = split(x @ weight_ih^T + bias, 2)\", \"f = sigmoid(xf + h @ weight_f^T)\","
                     " \"h' = (1 - f) * h + f * tanh(xn + (f * h) @ weight_n^T)\"]}\n"
                     "model: {kind: seq2seq, cell: mgu, hidden: 32, embedding: 16, bidirectional: true}\n"
                     "data: {kind: reverse, symbols: 6, min_len: 2, max_len: 6, train_size: 3000, valid_size: 200,"
                     " batch_size: 32}\noptim: {lr: 0.005}\n", 400);
    snprintf(body, sizeof body, "cell: {name: peep, states: [h, c], params: {w: {shape: [4H, E], init: input}, "
                                "u: {shape: [4H, H], init: recurrent}, b: [4H], p: [3, H]}, equations: ["
                                "\"i, f, g, o = split(x @ w^T + h @ u^T + b, 4)\", "
                                "\"c' = sigmoid(f + p[1] * c) * c + sigmoid(i + p[0] * c) * tanh(g)\", "
                                "\"h' = sigmoid(o + p[2] * c') * tanh(c')\"]}\n"
                                "model: {kind: peep, hidden: 32, layers: 1}\ndata: {kind: lines, path: %s, "
                                "batch_size: 16}\n", words);
    cu_train(dir, "ynames", body, 200);
    /* a classifier of labelled lines: fruit or tool, from the words */
    char labels[200];
    snprintf(labels, sizeof labels, "%s/labels.tsv", dir);
    f = fopen(labels, "w");
    static const char *fruit[] = {"apple", "pear", "plum", "fig"}, *tool[] = {"saw", "drill", "hammer", "axe"};
    for (int i = 0; i < 400; i++)
        fprintf(f, "%s\ta %s %s\n", i % 2 ? "fruit" : "tool", i % 2 ? fruit[i / 2 % 4] : tool[i / 2 % 4],
                i % 3 ? "here" : "there");
    fclose(f);
    snprintf(body, sizeof body, "model: {kind: gru, hidden: 16, layers: 1, pooling: attention}\n"
                                "data: {kind: labelled, path: %s, batch_size: 16}\noptim: {lr: 0.01}\n", labels);
    cu_train(dir, "fruit", body, 150);
    /* a segmenter of the names, written as lines of four names */
    char lines[200];
    snprintf(lines, sizeof lines, "%s/lines.txt", dir);
    f = fopen(lines, "w");
    for (int i = 0; i < 300; i++)
        fprintf(f, "%s %s %s\n", (const char *[]){"abel", "cain", "seth", "enos"}[i % 4],
                (const char *[]){"noah", "shem", "ham"}[i % 3], (const char *[]){"lamech", "enoch"}[i % 2]);
    fclose(f);
    snprintf(body, sizeof body, "model: {kind: gru, hidden: 16, layers: 1, bidirectional: true}\n"
                                "data: {kind: segment, path: %s, batch_size: 16}\noptim: {lr: 0.01}\n", lines);
    cu_train(dir, "segment", body, 150);
    /* a word tagger: people and places */
    char conll[200];
    snprintf(conll, sizeof conll, "%s/ner.conll", dir);
    f = fopen(conll, "w");
    for (int i = 0; i < 200; i++)
        fprintf(f, "%s\tB-PER\n%sdrove O\nto O\n%s\tB-LOC\n\n", (const char *[]){"anna", "bob", "eve"}[i % 3],
                i % 2 ? "smith\tI-PER\n" : "", (const char *[]){"rome", "oslo"}[i % 2]);
    fclose(f);
    snprintf(body, sizeof body, "model: {kind: lstm, hidden: 16, layers: 1, bidirectional: true}\n"
                                "data: {kind: tagged, path: %s, batch_size: 16}\noptim: {lr: 0.01}\n", conll);
    cu_train(dir, "ner", body, 150);
    /* words given their language: two word lists of our own */
    char dict[200];
    snprintf(dict, sizeof dict, "%s/american-english", dir);
    f = fopen(dict, "w");
    for (int i = 0; i < 60; i++)
        fprintf(f, "%s\n", (const char *[]){"cat", "dog", "tree"}[i % 3]);
    fclose(f);
    snprintf(dict, sizeof dict, "%s/ngerman", dir);
    f = fopen(dict, "w");
    for (int i = 0; i < 60; i++)
        fprintf(f, "%s\n", (const char *[]){"katze", "hund", "baum"}[i % 3]);
    fclose(f);
    setenv("SEQGRAD_DICT_DIR", dir, 1);
    cu_train(dir, "wordgen", "model: {kind: gru, hidden: 32, layers: 2, dropout: 0}\n"
                             "data: {kind: wordgen, train_size: 3, valid_size: 1, batch_size: 6}\noptim: {lr: 0.01}\n", 300);
    /* an untrained transformer seq2seq: it never emits </s> in time */
    cu_train(dir, "tsort", "model: {kind: transformer, hidden: 8, layers: 1, heads: 2}\n"
                           "data: {kind: sort, symbols: 4, min_len: 2, max_len: 4, train_size: 20, valid_size: 4,"
                           " batch_size: 4}\n", 1);
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_cli_infer: could not remove %s\n", dir);
}

static void checkpoint(const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s/%s/checkpoint.safetensors", dir, name);
}

/* translate on the text in; returns what it printed (the caller frees) */
static char *translate(const char *name, const translate_opts *o, const char *in, int *rc)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint(name, ck, sizeof ck);
    FILE *src = fmemopen((void *)in, strlen(in), "r"), *out = open_memstream(&text, &len);
    *rc = train_translate(ck, o, src, out, err, sizeof err);
    fclose(src), fclose(out);
    return text;
}

/* predict on the text in; returns what it printed (the caller frees) */
static char *predict(const char *name, const char *in, int *rc)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint(name, ck, sizeof ck);
    FILE *src = fmemopen((void *)in, strlen(in), "r"), *out = open_memstream(&text, &len);
    *rc = train_predict(ck, src, out, err, sizeof err);
    fclose(src), fclose(out);
    return text;
}

static char *eval(const char *name, const char *data, int *rc)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint(name, ck, sizeof ck);
    FILE *out = open_memstream(&text, &len);
    *rc = train_eval(ck, data, out, err, sizeof err);
    fclose(out);
    return text;
}

/* samples, one a line: more than 20, and 8 in 10 of them the names trained on */
static void assert_known_names(char *text)
{
    static const char *names[] = {"abel", "cain", "seth", "enos", "lamech", "noah", "shem", "ham"};
    int lines = 0, known = 0;
    char *save = NULL;
    for (char *w = strtok_r(text, "\n", &save); w; w = strtok_r(NULL, "\n", &save), lines++)
        for (int k = 0; k < 8; k++)
            known += !strcmp(w, names[k]);
    ck_assert_int_gt(lines, 20);
    ck_assert_int_ge(known * 10, lines * 8);
}

/* after 400 steps the strings come back reversed, greedy and beam alike,
 * and eval's exact match says so too */
START_TEST(test_translate_reverses)
{
    static const char *src[] = {"01", "345", "5021", "12345", "543210", "0000", "4411"};
    char in[200] = "", want[200] = "";
    for (int i = 0; i < 7; i++) {
        strcat(in, src[i]), strcat(in, "\n");
        for (int k = (int)strlen(src[i]) - 1; k >= 0; k--)
            strncat(want, src[i] + k, 1);
        strcat(want, "\n");
    }
    int rc;
    translate_opts greedy = {.beam = 1}, beam = {.beam = 4, .length_penalty = 0.6};
    char *a = translate("reverse", &greedy, in, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(a, want);
    char *b = translate("reverse", &beam, in, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(b, want);
    free(a), free(b);
    char *e = eval("reverse", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    double loss, acc;
    ck_assert_msg(sscanf(e, "validation split: 200 pairs, loss %lf nats/token (teacher-forced), exact match %lf%%",
                         &loss, &acc) == 2, "%s", e);
    ck_assert(loss < 0.05 && acc >= 95);
    free(e);
}
END_TEST

/* the same with cells written as equations: sample, translate and eval take
 * them as any built-in cell */
START_TEST(test_cells_from_equations)
{
    int rc;
    translate_opts greedy = {.beam = 1};
    char *a = translate("yreverse", &greedy, "01\n345\n5021\n12345\n", &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(a, "10\n543\n1205\n54321\n");
    free(a);
    char *e = eval("yreverse", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    double loss, acc;
    ck_assert_msg(sscanf(e, "validation split: 200 pairs, loss %lf nats/token (teacher-forced), exact match %lf%%",
                         &loss, &acc) == 2, "%s", e);
    ck_assert_msg(acc >= 90, "%s", e);
    free(e);
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint("ynames", ck, sizeof ck);
    FILE *out = open_memstream(&text, &len);
    ck_assert_msg(train_sample(ck, "\n", NULL, 200, 0.5, 3, out, err, sizeof err) == EXIT_OK, "%s", err);
    fclose(out);
    assert_known_names(text);
    free(text);
}
END_TEST

/* predict prints a class per line; eval the accuracy, per-class figures and
 * the confusion matrix; training drew confusion.svg */
START_TEST(test_classifier_predict_and_eval)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint("fruit", ck, sizeof ck);
    const char *in = "a plum there\na axe here\ntool\ta fig\n";
    FILE *src = fmemopen((void *)in, strlen(in), "r"), *out = open_memstream(&text, &len);
    ck_assert_msg(train_predict(ck, src, out, err, sizeof err) == EXIT_OK, "%s", err);
    fclose(src), fclose(out);
    ck_assert_str_eq(text, "fruit\ntool\nfruit\n");        /* a TAB's label is ignored: the text decides */
    free(text);
    int rc;
    char *e = eval("fruit", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_msg(strstr(e, "validation split: 40 sequences, loss ") == e, "%s", e);
    ck_assert_msg(strstr(e, "accuracy 100.00%\n"), "%s", e);
    ck_assert_msg(strstr(e, "class            precision    recall        F1  support\n"), "%s", e);
    ck_assert_msg(strstr(e, "macro F1                                1.0000\n"), "%s", e);
    ck_assert_msg(strstr(e, "confusion (rows: true class, columns: predicted, in the order above):\n"), "%s", e);
    free(e);
    char path[200];
    snprintf(path, sizeof path, "%s/fruit/confusion.svg", dir);
    ck_assert_int_eq(access(path, R_OK), 0);
    /* bytes it never saw, a model that is not a classifier */
    src = fmemopen((void *)"a plum\nQ\n", 9, "r"), out = open_memstream(&text, &len);
    ck_assert_int_eq(train_predict(ck, src, out, err, sizeof err), EXIT_DATA);
    fclose(src), fclose(out), free(text);
    ck_assert_str_eq(err, "line 2: byte 0x51 at 1 is not in the model's vocabulary");
    checkpoint("names", ck, sizeof ck);
    src = fmemopen((void *)"x\n", 2, "r"), out = open_memstream(&text, &len);
    ck_assert_int_eq(train_predict(ck, src, out, err, sizeof err), EXIT_USAGE);
    fclose(src), fclose(out), free(text);
    char want[300];
    snprintf(want, sizeof want, "%s: a lines model is not a classifier or a tagger (use seqgrad sample or eval)", ck);
    ck_assert_str_eq(err, want);
}
END_TEST

/* generation from a vector: each language's words from its condition; the
 * condition is required, checked and refused where it has no place */
START_TEST(test_generate_given_a_language)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint("wordgen", ck, sizeof ck);
    static const char *words[2][3] = {{"cat", "dog", "tree"}, {"katze", "hund", "baum"}};
    static const char *lang[2] = {"english", "german"};
    for (int l = 0; l < 2; l++) {
        FILE *out = open_memstream(&text, &len);
        ck_assert_msg(train_sample(ck, "\n", lang[l], 120, 0.3, 5, out, err, sizeof err) == EXIT_OK, "%s", err);
        fclose(out);
        int lines = 0, known = 0;
        char *save = NULL;
        for (char *w = strtok_r(text, "\n", &save); w; w = strtok_r(NULL, "\n", &save), lines++)
            for (int k = 0; k < 3; k++)
                known += !strcmp(w, words[l][k]);
        ck_assert_int_gt(lines, 10);
        ck_assert_msg(known * 10 >= lines * 9, "%s: %d of %d lines are its words", lang[l], known, lines);
        free(text);
    }
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_int_eq(train_sample(ck, "\n", NULL, 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    char want[400];
    snprintf(want, sizeof want, "%s: this model generates given a condition: --condition english|german", ck);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(train_sample(ck, "\n", "klingon", 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "--condition: \"klingon\" is not one of english|german");
    checkpoint("names", ck, sizeof ck);
    ck_assert_int_eq(train_sample(ck, "\n", "english", 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    snprintf(want, sizeof want, "%s: --condition: this model generates without one", ck);
    ck_assert_str_eq(err, want);
    fclose(devnull);
    /* its gradients, the condition's projection included */
    sg_config c;
    char path[200];
    snprintf(path, sizeof path, "%s/wordgen.yaml", dir);
    ck_assert_msg(cfg_load(&c, path, err, sizeof err) == 0, "%s", err);
    FILE *out = open_memstream(&text, &len);
    int rc = train_gradcheck(&c, out, err, sizeof err);
    fclose(out);
    ck_assert_msg(rc == EXIT_OK && strstr(text, "cond.weight") && strstr(text, "all parameters pass"), "%s\n%s", err, text);
    free(text);
}
END_TEST

/* captions from pixels (Debian's dataset-fashion-mnist, when installed):
 * the first test images are an ankle boot, a pullover and a trouser */
START_TEST(test_caption_an_image)
{
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("skipped: captioning needs dataset-fashion-mnist (apt-get install dataset-fashion-mnist)\n");
        return;
    }
    cu_train(dir, "caption", "model: {kind: lstm, hidden: 32, layers: 1, dropout: 0}\n"
                             "data: {kind: caption, train_size: 4000, valid_size: 20, batch_size: 32}\n"
                             "optim: {lr: 0.005}\n", 400);
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint("caption", ck, sizeof ck);
    static const char *want[3] = {"\nankle boot\n", "\npullover\n", "\ntrouser\n"};
    for (int i = 0; i < 3; i++) {
        char image[8];
        snprintf(image, sizeof image, "%d", i);
        FILE *out = open_memstream(&text, &len);
        ck_assert_msg(train_sample(ck, "\n", image, 12, 0.1, 1, out, err, sizeof err) == EXIT_OK, "%s", err);
        fclose(out);
        ck_assert_msg(!strncmp(text, want[i], strlen(want[i])), "image %d: \"%s\"", i, text);
        free(text);
    }
    int rc;      /* eval spells each test image's caption greedily */
    char *e = eval("caption", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    double acc;
    ck_assert_msg(sscanf(strstr(e, "exact captions") ? strstr(e, "exact captions") : "", "exact captions %lf%%", &acc) == 1 &&
                  acc >= 80, "%s", e);
    free(e);
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_int_eq(train_sample(ck, "\n", "20", 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    ck_assert_str_eq(err, "--image: \"20\" is not an image from 0 to 19 (data.valid_size test images)");
    ck_assert_int_eq(train_sample(ck, "\n", NULL, 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    char msg[300];
    snprintf(msg, sizeof msg, "%s: this model captions an image: --image N", ck);
    ck_assert_str_eq(err, msg);
    fclose(devnull);
}
END_TEST

/* a word tagger: predict prints token/TAG (an unknown word too), eval the
 * tag accuracy and the entity F1 */
START_TEST(test_word_tagger)
{
    int rc;
    char *text = predict("ner", "eve smith drove to oslo\nbob drove to rome\n", &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(text, "eve/B-PER smith/I-PER drove/O to/O oslo/B-LOC\nbob/B-PER drove/O to/O rome/B-LOC\n");
    free(text);
    char *e = eval("ner", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_msg(strstr(e, "validation split: 20 sequences, ") == e && strstr(e, "tag accuracy 100.00%, span F1 1.0000\n"),
                  "%s", e);
    free(e);
}
END_TEST

/* a tagger: predict puts the spaces back, eval gives tag accuracy and word F1 */
START_TEST(test_segmenter)
{
    int rc;
    char *text = predict("segment", "sethhamenoch\nabel noah lamech\n", &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(text, "seth ham enoch\nabel noah lamech\n");
    free(text);
    char *e = eval("segment", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    double loss, acc, f1;
    ck_assert_msg(sscanf(e, "validation split: 30 lines, %*d characters, loss %lf nats/char, tag accuracy %lf%%, "
                            "word F1 %lf", &loss, &acc, &f1) == 3, "%s", e);
    ck_assert_msg(acc == 100 && f1 == 1, "%s", e);
    free(e);
}
END_TEST

/* --attention: a heatmap with one cell per (output + end, source) pair,
 * labelled with the tokens */
START_TEST(test_attention_heatmap)
{
    char svg[200];
    snprintf(svg, sizeof svg, "%s/att.svg", dir);
    translate_opts o = {.beam = 1, .input = "0123", .attention_svg = svg};
    int rc;
    char *out = translate("reverse", &o, "", &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_str_eq(out, "3210\n");
    free(out);
    FILE *f = fopen(svg, "r");
    ck_assert_ptr_nonnull(f);
    static char text[65536];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    int cells = 0;
    double first_row = 0;
    for (const char *p = text; (p = strstr(p, "<title>")); p++, cells++)
        if (cells < 4)
            first_row += atof(p + 7);
    ck_assert_int_eq(cells, 5 * 4);                   /* 3 2 1 0 </s>, by 0 1 2 3 */
    ck_assert_double_eq_tol(first_row, 1.0, 0.01);    /* a row is a distribution */
    ck_assert_ptr_nonnull(strstr(text, "&lt;/s&gt;"));
    ck_assert_ptr_nonnull(strstr(text, "additive attention: 0123"));
}
END_TEST

/* an item model samples whole items, one per line, from its vocabulary */
START_TEST(test_sample_items)
{
    char ck[200], *text = NULL;
    size_t len = 0;
    checkpoint("names", ck, sizeof ck);
    FILE *out = open_memstream(&text, &len);
    ck_assert_msg(train_sample(ck, "\n", NULL, 200, 0.5, 3, out, err, sizeof err) == EXIT_OK, "%s", err);
    fclose(out);
    assert_known_names(text);          /* the 8 names it saw, nearly always */
    free(text);
    int rc;
    char *e = eval("names", NULL, &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_msg(strstr(e, "validation split: 20 items, ") == e, "%s", e);
    free(e);
}
END_TEST

/* each command refuses a model of the wrong kind, and bad input, with a message */
START_TEST(test_wrong_kind_and_bad_input)
{
    char ck[200], expect[400];
    int rc;
    translate_opts o = {.beam = 1};
    char *out = translate("names", &o, "abc\n", &rc);
    ck_assert_int_eq(rc, EXIT_USAGE);
    snprintf(expect, sizeof expect, "%s/names/checkpoint.safetensors: a lines model is not a seq2seq model "
             "(use seqgrad sample)", dir);
    ck_assert_str_eq(err, expect);
    free(out);
    checkpoint("reverse", ck, sizeof ck);
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_int_eq(train_sample(ck, "\n", NULL, 10, 1, 1, devnull, err, sizeof err), EXIT_USAGE);
    snprintf(expect, sizeof expect, "%s: a reverse model is not a language model (use seqgrad translate)", ck);
    ck_assert_str_eq(err, expect);
    fclose(devnull);
    out = translate("reverse", &o, "0129\n", &rc);
    ck_assert_int_eq(rc, EXIT_DATA);
    ck_assert_str_eq(err, "\"0129\": '9' (byte 0x39) is not in the model's vocabulary");
    free(out);
    out = eval("reverse", "/etc/hostname", &rc);
    ck_assert_int_eq(rc, EXIT_USAGE);
    ck_assert_str_eq(err, "reverse data is generated: eval takes no file (it uses the validation split)");
    free(out);
}
END_TEST

/* greedy decoding longer than the model was built for (--max-len after the
 * build) wrote past the transformer's batch buffer (ASan: heap overflow) */
START_TEST(test_translate_max_len_beyond_build)
{
    translate_opts o = {.beam = 1, .length_penalty = 0.6, .max_len = 300};
    int rc;
    char *text = translate("tsort", &o, "0123\n3210\n", &rc);
    ck_assert_msg(rc == EXIT_OK, "%s", err);
    ck_assert_ptr_nonnull(strchr(text, '\n'));
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/infer");
    TCase *tc = tcase_create("infer");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_translate_reverses);
    tcase_add_test(tc, test_attention_heatmap);
    tcase_add_test(tc, test_sample_items);
    tcase_add_test(tc, test_wrong_kind_and_bad_input);
    tcase_add_test(tc, test_translate_max_len_beyond_build);
    tcase_add_test(tc, test_cells_from_equations);
    tcase_add_test(tc, test_classifier_predict_and_eval);
    tcase_add_test(tc, test_segmenter);
    tcase_add_test(tc, test_word_tagger);
    tcase_add_test(tc, test_generate_given_a_language);
    tcase_add_test(tc, test_caption_an_image);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
