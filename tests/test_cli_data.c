/*
 * test_cli_data.c - cli/data.c: the generated tasks hold what they claim
 * (targets, lengths, markers, sums), every split is disjoint and a
 * function of the seed, items and pairs are read as written, batches are
 * laid out as the models expect, and bad data gets an exact message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/config.h"
#include "../cli/data.h"
#include "cliutil.h"
#include "testutil.h"

static char err[1024], dir[64];

/* a config from YAML text (written to dir/cfg.yaml) */
static void config(sg_config *c, const char *yaml)
{
    char path[128];
    snprintf(path, sizeof path, "%s/cfg.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    ck_assert_msg(cfg_load(c, path, err, sizeof err) == 0 && cfg_check(c, err, sizeof err) == 0, "%s", err);
}

static void write_file(const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static bool same_seq(const int *a, int na, const int *b, int nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

/* copy, reverse and sort: the target is what the task says, lengths and
 * symbols in range, no source twice, and the seed decides everything */
START_TEST(test_generated_tasks)
{
    static const char *task[3] = {"copy", "reverse", "sort"};
    char yaml[300];
    snprintf(yaml, sizeof yaml, "model: {kind: seq2seq}\ndata: {kind: %s, symbols: 5, min_len: 2, max_len: 6, "
                                "train_size: 300, valid_size: 50, seed: 7}\n", task[_i]);
    sg_config c;
    config(&c, yaml);
    dataset d, e;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.task, TASK_S2S);
    ck_assert_int_eq(d.V, 5);
    ck_assert_int_eq(d.vocab[4], '4');
    ck_assert_int_eq(d.len[0], 300);
    ck_assert_int_eq(d.len[1], 50);
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < d.len[s]; i++) {
            const example *x = &d.ex[s][i];
            ck_assert(x->src_len >= 2 && x->src_len <= 6 && x->tgt_len == x->src_len);
            int count[5] = {0};
            for (int k = 0; k < x->src_len; k++) {
                ck_assert(x->src[k] >= 0 && x->src[k] < 5);
                count[x->src[k]]++;
                if (_i == 0)
                    ck_assert_int_eq(x->tgt[k], x->src[k]);
                if (_i == 1)
                    ck_assert_int_eq(x->tgt[k], x->src[x->src_len - 1 - k]);
                if (_i == 2 && k > 0)
                    ck_assert_int_le(x->tgt[k - 1], x->tgt[k]);
            }
            for (int k = 0; k < x->tgt_len; k++)        /* sorting keeps every symbol */
                count[x->tgt[k]]--;
            for (int v = 0; v < 5; v++)
                ck_assert_int_eq(count[v], 0);
        }
    for (long i = 0; i < d.len[1]; i++)              /* no validation source is a training source */
        for (long j = 0; j < d.len[0]; j++)
            ck_assert(!same_seq(d.ex[1][i].src, d.ex[1][i].src_len, d.ex[0][j].src, d.ex[0][j].src_len));
    ck_assert_int_eq(data_load(&e, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);   /* same seed, same data */
    for (long i = 0; i < d.len[0]; i++)
        ck_assert(same_seq(d.ex[0][i].src, d.ex[0][i].src_len, e.ex[0][i].src, e.ex[0][i].src_len));
    data_free(&e);
    ck_assert_int_eq(cfg_set(&c, "data.seed=8", err, sizeof err), 0);                  /* another seed, other data */
    ck_assert_int_eq(data_load(&e, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    int differ = 0;
    for (long i = 0; i < d.len[0]; i++)
        differ += !same_seq(d.ex[0][i].src, d.ex[0][i].src_len, e.ex[0][i].src, e.ex[0][i].src_len);
    ck_assert_int_gt(differ, 250);
    data_free(&e);
    data_free(&d);
}
END_TEST

START_TEST(test_generated_task_errors)
{
    sg_config c;
    dataset d;
    char expect[400];
    config(&c, "model: {kind: seq2seq}\ndata: {kind: copy, symbols: 2, min_len: 1, max_len: 3, train_size: 10,\n"
               "       valid_size: 5}\n");
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_CONFIG);
    snprintf(expect, sizeof expect, "%s/cfg.yaml:2:68: data.train_size: 10 + 5 distinct sources need at least twice "
             "as many possible ones; 2 symbols and lengths 1-3 give 14", dir);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    config(&c, "model: {kind: seq2seq}\ndata: {kind: sort, min_len: 5, max_len: 4}\n");
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_CONFIG);
    snprintf(expect, sizeof expect, "%s/cfg.yaml:2:29: data.min_len: 5 is more than data.max_len 4", dir);
    ck_assert_str_eq(err, expect);
    data_free(&d);
}
END_TEST

/* the adding problem: one marker in each half, the target is the sum of
 * the two marked numbers, every number in [0, 1) */
START_TEST(test_adding_problem)
{
    sg_config c;
    config(&c, "model: {kind: lstm}\ndata: {kind: adding, seq_len: 9, train_size: 200, valid_size: 30}\n");
    dataset d;
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.task, TASK_REGRESS);
    ck_assert_int_eq(d.T, 9);
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < d.len[s]; i++) {
            const float *x = d.ax[s] + i * 9 * 2;
            int first = 0, second = 0;
            double sum = 0;
            for (int t = 0; t < 9; t++) {
                ck_assert(x[2 * t] >= 0 && x[2 * t] < 1);
                ck_assert(x[2 * t + 1] == 0 || x[2 * t + 1] == 1);
                if (x[2 * t + 1] == 1) {
                    *(t < 4 ? &first : &second) += 1;
                    sum += x[2 * t];
                }
            }
            ck_assert_int_eq(first, 1);
            ck_assert_int_eq(second, 1);
            ck_assert_float_eq_tol(d.ay[s][i], sum, 1e-6);
        }
    int idx[3] = {2, 0, 1};
    float x[3 * 9 * 2], y[3];
    data_add_batch(&d, 1, idx, 3, x, y);
    ck_assert(memcmp(x, d.ax[1] + 2 * 18, 18 * sizeof(float)) == 0);
    ck_assert_float_eq(y[1], d.ay[1][0]);
    data_free(&d);
}
END_TEST

/* words and lines: items as written, split by the seed into disjoint parts */
START_TEST(test_items_split_by_seed)
{
    char path[200], yaml[400];
    write_file("names.txt", "Adam\nSeth Enos\r\n\n  Cainan \nMahalaleel\nJared\nEnoch\nMethuselah\nLamech\nNoah\n", path,
               sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: %s, path: %s, valid_fraction: 0.2, seed: 3}\n",
             _i ? "lines" : "words", path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.task, TASK_ITEMS);
    long n = _i ? 9 : 10;         /* lines: "Seth Enos" is one item and "  Cainan " keeps its spaces */
    ck_assert_int_eq(d.len[0] + d.len[1], n);
    ck_assert_int_eq(d.len[1], _i ? 2 : 2);
    ck_assert_int_ge(d.boundary, 0);
    ck_assert_int_eq(d.vocab[d.boundary], '\n');
    ck_assert_int_eq(d.id_of['\r'], -1);
    if (!_i)
        ck_assert_int_eq(d.id_of[' '], -1);
    /* every item once, in one split or the other */
    const char *want[] = {"Adam", "Seth", "Enos", "Cainan", "Mahalaleel", "Jared", "Enoch", "Methuselah", "Lamech", "Noah"};
    const char *want_lines[] = {"Adam", "Seth Enos", "  Cainan ", "Mahalaleel", "Jared", "Enoch", "Methuselah", "Lamech",
                                "Noah"};
    for (long w = 0; w < n; w++) {
        const char *item = _i ? want_lines[w] : want[w];
        int ids[32], found = 0;
        long len = data_encode(&d, item, (long)strlen(item), ids);
        ck_assert_int_eq(len, (long)strlen(item));
        for (int s = 0; s < 2; s++)
            for (long i = 0; i < d.len[s]; i++)
                found += same_seq(ids, (int)len, d.ex[s][i].src, d.ex[s][i].src_len);
        ck_assert_msg(found == 1, "%s found %d times", item, found);
    }
    /* x = '\n' item, y = item '\n', padding -100 */
    int idx[2] = {0, 1}, x[64], y[64];
    int T = data_lm_batch(&d, 0, idx, 2, 64, x, y);
    const example *a = &d.ex[0][0];
    ck_assert_int_eq(x[0], d.boundary);
    ck_assert_int_eq(x[1], a->src[0]);
    ck_assert_int_eq(y[a->src_len - 1], a->src[a->src_len - 1]);
    ck_assert_int_eq(y[a->src_len], d.boundary);
    for (int k = a->src_len + 1; k < T; k++)
        ck_assert_int_eq(y[k], -100);
    ck_assert_int_eq(T, 1 + (a->src_len > d.ex[0][1].src_len ? a->src_len : d.ex[0][1].src_len));
    data_free(&d);
}
END_TEST

/* pairs: source<TAB>target lines; a line without one is refused at its number */
START_TEST(test_pairs)
{
    char path[200], yaml[400], expect[400];
    write_file("p.tsv", "abc\tcba\nhello\tolleh\nxy\tyx\nq\tq\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: seq2seq}\ndata: {kind: pairs, path: %s, valid_fraction: 0.25}\n", path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.len[0], 3);
    ck_assert_int_eq(d.len[1], 1);
    ck_assert_int_eq(d.id_of['\t'], -1);
    /* SOS y / y EOS, sources padded with 0, lengths kept */
    int idx[2] = {0, 1}, src[16], len[2], S, tin[16], tout[16];
    int T = data_s2s_batch(&d, 0, idx, 2, src, len, &S, tin, tout);
    const example *a = &d.ex[0][0], *b = &d.ex[0][1];
    ck_assert_int_eq(len[0], a->src_len);
    ck_assert_int_eq(S, a->src_len > b->src_len ? a->src_len : b->src_len);
    ck_assert_int_eq(T, 1 + (a->tgt_len > b->tgt_len ? a->tgt_len : b->tgt_len));
    ck_assert_int_eq(tin[0], d.V);                 /* SOS */
    ck_assert_int_eq(tin[1], a->tgt[0]);
    ck_assert_int_eq(tout[0], a->tgt[0]);
    ck_assert_int_eq(tout[a->tgt_len], d.V + 1);   /* EOS */
    for (int k = a->tgt_len + 1; k < T; k++)
        ck_assert_int_eq(tout[k], -100);
    data_free(&d);

    write_file("bad.tsv", "abc\tcba\n\nno tab here\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: seq2seq}\ndata: {kind: pairs, path: %s}\n", path);
    config(&c, yaml);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s:3: expected source<TAB>target, each not empty", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
}
END_TEST

/* labelled: classes are the training split's labels, sorted; the split
 * follows the seed; malformed lines and labels never seen in training are
 * refused with file:line */
START_TEST(test_labelled)
{
    char path[200], yaml[400], expect[400], text[4000] = "";
    for (int i = 0; i < 40; i++)      /* 20 "pos", 20 "neg" */
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\t%s %d\n", i % 2 ? "pos" : "neg",
                 i % 2 ? "good" : "bad", i);
    write_file("l.tsv", text, path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: labelled, path: %s, valid_fraction: 0.25}\n", path);
    sg_config c;
    config(&c, yaml);
    dataset d, again;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.task, TASK_CLASSIFY);
    ck_assert_int_eq(d.C, 2);
    ck_assert_str_eq(d.classes[0], "neg");
    ck_assert_str_eq(d.classes[1], "pos");
    ck_assert_int_eq(d.len[0], 30);
    ck_assert_int_eq(d.len[1], 10);
    ck_assert_int_eq(d.id_of['\t'], -1);
    ck_assert_int_eq(d.id_of['n'], -1);          /* label bytes are not text */
    for (int sp = 0; sp < 2; sp++)                /* "good ..." is pos, "bad ..." neg */
        for (long k = 0; k < d.len[sp]; k++)
            ck_assert_int_eq(d.ex[sp][k].tgt[0], d.ex[sp][k].src[0] == d.id_of['g']);
    ck_assert_int_eq(data_load(&again, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    for (long k = 0; k < d.len[1]; k++)          /* the same seed, the same split */
        ck_assert(same_seq(d.ex[1][k].src, d.ex[1][k].src_len, again.ex[1][k].src, again.ex[1][k].src_len));
    int idx[2] = {0, 1}, x[64], len[2], y[2];
    int T = data_class_batch(&d, 0, idx, 2, x, len, y);
    ck_assert_int_eq(T, d.ex[0][0].src_len > d.ex[0][1].src_len ? d.ex[0][0].src_len : d.ex[0][1].src_len);
    ck_assert_int_eq(len[1], d.ex[0][1].src_len);
    ck_assert_int_eq(y[0], d.ex[0][0].tgt[0]);
    char joined[200];
    data_classes_str(&d, joined, sizeof joined);
    ck_assert_str_eq(joined, "neg\npos");
    data_free(&d), data_free(&again);
    /* word level: "good 3" is two words, ids from the training split's sorted words */
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: labelled, level: word, path: %s, "
                                "valid_fraction: 0.25}\n", path);
    config(&c, yaml);
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.ex[0][0].src_len, 2);
    ck_assert_int_eq(d.V, d.n_words + 1);
    ck_assert_int_eq(d.ex[0][0].src[0], data_word_id(&d, d.ex[0][0].tgt[0] ? "good" : "bad", 4 - (d.ex[0][0].tgt[0] == 0)));
    ck_assert_str_eq(d.words[data_word_id(&d, "bad", 3) - 1], "bad");      /* id = 1 + its place among the sorted words */
    data_free(&d);

    write_file("bad.tsv", "neg\tbad\npos\tgood\n\n\tno label\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: labelled, path: %s}\n", path);
    config(&c, yaml);
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s:4: expected label<TAB>text, the label 1 to 47 bytes, the text not empty", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    /* a label only the validation split holds */
    strcpy(text, "");
    for (int i = 0; i < 20; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\tw%d\n", i % 2 ? "a" : "b", i);
    strcat(text, "rare\tw99\n");
    write_file("rare.tsv", text, path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: labelled, path: %s, seed: %d}\n", path, 1);
    bool refused = false;
    for (int seed = 1; seed < 40 && !refused; seed++) {      /* a seed that puts the rare line in validation */
        snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: labelled, path: %s, seed: %d, "
                                    "valid_fraction: 0.1}\n", path, seed);
        config(&c, yaml);
        memset(&d, 0, sizeof d);
        int rc = data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err);
        if (rc != EXIT_OK) {
            snprintf(expect, sizeof expect, "%s:21: label \"rare\" never occurs in training (classes: 2)", path);
            ck_assert_str_eq(err, expect);
            refused = true;
        }
        data_free(&d);
    }
    ck_assert(refused);
}
END_TEST

/* segment: each line without its spaces, B where a word starts, I inside */
START_TEST(test_segment)
{
    char path[200], yaml[400];
    write_file("s.txt", "in the  beginning\n\nx\ngod said\r\nlet there be light\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: gru}\ndata: {kind: segment, path: %s, valid_fraction: 0.34, seq_len: 12}\n",
             path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_ALL_VALID, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.task, TASK_TAG);
    ck_assert_int_eq(d.len[1], 3);            /* "x" is too short to tag */
    ck_assert_int_eq(d.id_of[' '], -1);
    ck_assert_int_eq(d.id_of['\r'], -1);
    const example *e = &d.ex[1][0];           /* "inthebeginni": cut at 12 */
    ck_assert_int_eq(e->src_len, 12);
    static const int tags[12] = {0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1};
    for (int k = 0; k < 12; k++)
        ck_assert_int_eq(e->tgt[k], tags[k]);
    ck_assert_int_eq(d.ex[1][1].src_len, 7);  /* "godsaid" */
    ck_assert_int_eq(d.ex[1][1].tgt[3], 0);
    int idx[2] = {1, 0}, x[64], len[2], y[64];
    int T = data_tag_batch(&d, 1, idx, 2, x, len, y);
    ck_assert_int_eq(T, 12);
    ck_assert_int_eq(y[7], -100);             /* past "godsaid" */
    ck_assert_int_eq(y[12 + 2], 0);
    ck_assert_str_eq(d.classes[0], "B");
    data_free(&d);
}
END_TEST

/* tagged: token and tag per line, blank lines between sequences; the
 * training split's words (sorted; 0 for others) and tags */
START_TEST(test_tagged)
{
    char path[200], yaml[400], expect[400], text[4000] = "";
    for (int i = 0; i < 20; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\tB-PER\nsaw  O\n%s\tB-LOC\n\n",
                 i % 2 ? "anna" : "bob", i % 3 ? "rome" : "oslo");
    strcat(text, "\n\n");                 /* extra blank lines change nothing */
    write_file("t.conll", text, path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: tagged, path: %s, valid_fraction: 0.25}\n", path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.task, TASK_TAG);
    ck_assert_int_eq(d.len[0] + d.len[1], 20);
    ck_assert_int_eq(d.C, 3);
    ck_assert_str_eq(d.classes[0], "B-LOC");
    ck_assert_str_eq(d.classes[2], "O");
    ck_assert_int_eq(d.n_words, 5);          /* anna bob oslo rome saw */
    ck_assert_str_eq(d.words[0], "anna");
    ck_assert_int_eq(d.V, 6);
    ck_assert_int_eq(data_word_id(&d, "saw", 3), 5);
    ck_assert_int_eq(data_word_id(&d, "zed", 3), 0);
    const example *e = &d.ex[0][0];
    ck_assert_int_eq(e->src_len, 3);
    ck_assert_int_eq(e->src[1], 5);
    ck_assert_int_eq(e->tgt[1], 2);
    char joined[100];
    ck_assert_int_eq(data_words_str(&d, joined, sizeof joined), 23);
    ck_assert_str_eq(joined, "anna\nbob\noslo\nrome\nsaw");
    data_free(&d);
    write_file("bad.conll", "anna B-PER\nlonely\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: tagged, path: %s}\n", path);
    config(&c, yaml);
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s:2: expected a token and its tag (the tag at most 47 bytes, at most 4096 tokens "
             "a sequence)", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
}
END_TEST

/* parity and order: the class is what the task says, examples distinct,
 * the seed decides; wordlang from word lists in a folder of our own */
START_TEST(test_generated_classes)
{
    sg_config c;
    dataset d;
    config(&c, "model: {kind: lstm}\ndata: {kind: parity, min_len: 4, max_len: 12, train_size: 500, valid_size: 100}\n");
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.C, 2);
    ck_assert_str_eq(d.classes[1], "odd");
    for (int sp = 0; sp < 2; sp++)
        for (long k = 0; k < d.len[sp]; k++) {
            const example *e = &d.ex[sp][k];
            int ones = 0;
            for (int i = 0; i < e->src_len; i++)
                ones += e->src[i] == d.id_of['1'];
            ck_assert_int_eq(e->tgt[0], ones % 2);
            ck_assert(e->src_len >= 4 && e->src_len <= 12);
        }
    for (long k = 0; k < d.len[1]; k++)      /* no validation string in training */
        for (long j = 0; j < d.len[0]; j++)
            ck_assert(!same_seq(d.ex[1][k].src, d.ex[1][k].src_len, d.ex[0][j].src, d.ex[0][j].src_len));
    data_free(&d);
    config(&c, "model: {kind: lstm}\ndata: {kind: order, seq_len: 30, train_size: 300, valid_size: 50}\n");
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.C, 4);
    for (long k = 0; k < d.len[0]; k++) {    /* X or Y in [3,6) and [15,18), the class their order */
        const example *e = &d.ex[0][k];
        int first = -1, second = -1, marks = 0;
        for (int i = 0; i < 30; i++)
            if (e->src[i] >= 4) {
                marks++;
                if (first < 0)
                    first = i;
                else
                    second = i;
            }
        ck_assert_int_eq(marks, 2);
        ck_assert(first >= 3 && first < 6 && second >= 15 && second < 18);
        ck_assert_int_eq(e->tgt[0], 2 * (e->src[first] - 4) + (e->src[second] - 4));
        static const char *pairs[] = {"XX", "XY", "YX", "YY"};
        ck_assert_str_eq(d.classes[e->tgt[0]], pairs[e->tgt[0]]);
    }
    data_free(&d);
    config(&c, "model: {kind: lstm}\ndata: {kind: parity, min_len: 2, max_len: 4, train_size: 500}\n");
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "data.max_len: 500 + 1000 distinct examples need more possible ones"));
    data_free(&d);
    /* wordlang: two lists in SEQGRAD_DICT_DIR, lowercased, apostrophes left out */
    char path[200];
    write_file("american-english", "House\ncat\ndog's\ntree\nwater\nbook\n", path, sizeof path);
    write_file("ngerman", "Haus\nKatze\nBaum\nWasser\nBuch\nhund\n", path, sizeof path);
    setenv("SEQGRAD_DICT_DIR", dir, 1);
    config(&c, "model: {kind: lstm}\ndata: {kind: wordlang, train_size: 3, valid_size: 2}\n");
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.C, 2);
    ck_assert_str_eq(d.classes[0], "english");
    ck_assert_str_eq(d.classes[1], "german");
    ck_assert_int_eq(d.len[0], 6);
    ck_assert_int_eq(d.len[1], 4);
    ck_assert_int_eq(d.id_of['H'], -1);      /* lowercased */
    ck_assert_int_eq(d.id_of['\''], -1);
    data_free(&d);
    write_file("ngerman", "", path, sizeof path);
    unlink(path);
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    ck_assert_ptr_nonnull(strstr(err, "data.kind: wordlang needs at least two word lists in"));
    ck_assert_ptr_nonnull(strstr(err, "found 1: apt-get install wamerican wngerman wfrench witalian wspanish"));
    data_free(&d);
    unsetenv("SEQGRAD_DICT_DIR");
    /* fashion: a missing folder says which package */
    setenv("SEQGRAD_FASHION_DIR", dir, 1);
    config(&c, "model: {kind: lstm}\ndata: {kind: fashion}\n");
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    char expect[400];
    snprintf(expect, sizeof expect, "%s/train-images-idx3-ubyte.gz: missing: apt-get install dataset-fashion-mnist "
             "(or set SEQGRAD_FASHION_DIR)", dir);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    /* rows of pixels / 255, labels as stored, counts capped by the files */
    cu_fake_fashion(dir, 12, 5);
    config(&c, "model: {kind: lstm}\ndata: {kind: fashion, train_size: 8, valid_size: 50}\n");
    memset(&d, 0, sizeof d);
    ck_assert_msg(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK, "%s", err);
    ck_assert_int_eq(d.len[0], 8);
    ck_assert_int_eq(d.len[1], 5);
    ck_assert_int_eq(d.T, 28);
    ck_assert_int_eq(d.F, 28);
    ck_assert_int_eq(d.C, 10);
    ck_assert_str_eq(d.classes[9], "ankle boot");
    ck_assert_int_eq(d.label[0][7], 7);
    ck_assert_float_eq(d.ax[0][7 * 784 + 14 * 28 + 3], (200 + 7) / 255.0f);    /* class 7 lights rows 14, 15 */
    ck_assert_float_eq(d.ax[1][3 * 784 + 1], (3 * 7 + 1) % 23 / 255.0f);
    data_free(&d);
    /* pixel by pixel: 784 steps of one value */
    config(&c, "model: {kind: lstm}\ndata: {kind: fashion, by_pixel: true, train_size: 8, valid_size: 5}\n");
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.T, 784);
    ck_assert_int_eq(d.F, 1);
    data_free(&d);
    /* a file of something else is refused */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "head -c 20000 /dev/zero | gzip > '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    config(&c, "model: {kind: lstm}\ndata: {kind: fashion, train_size: 8, valid_size: 5}\n");
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s: not an IDX file of images", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    /* a short file says how much it held */
    snprintf(cmd, sizeof cmd, "printf '' | gzip > '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s: expected an IDX header of 16 bytes after gzip -dc, read 0", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    unsetenv("SEQGRAD_FASHION_DIR");
}
END_TEST

/* text: 20 blocks, round(20 x fraction) of them for validation, drawn by the seed */
START_TEST(test_text_blocks)
{
    char path[200], yaml[400], text[2001];
    for (int i = 0; i < 2000; i++)
        text[i] = (char)('a' + i / 100);              /* block b is all one letter */
    text[2000] = '\0';
    write_file("t.txt", text, path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: text, path: %s, valid_fraction: 0.1, seed: 5}\n", path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.len[0], 1800);
    ck_assert_int_eq(d.len[1], 200);
    int first = d.vocab[d.ids[1][0]], second = d.vocab[d.ids[1][100]];
    ck_assert_int_ne(first, second);
    for (long i = 0; i < 1800; i++)                   /* those letters are not in training */
        ck_assert(d.vocab[d.ids[0][i]] != first && d.vocab[d.ids[0][i]] != second);
    data_free(&d);
    ck_assert_int_eq(cfg_set(&c, "data.seed=6", err, sizeof err), 0);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    ck_assert(d.vocab[d.ids[1][0]] != first || d.vocab[d.ids[1][100]] != second);
    data_free(&d);
    /* whole: every character is validation (eval on a file) */
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_ALL_VALID, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.len[1], 2000);
    data_free(&d);
    /* a checkpoint's vocabulary without 'z': refused at the byte's offset */
    char expect[300];
    ck_assert_int_eq(data_load(&d, &c, "616263", path, USE_ALL_VALID, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s: byte 0x64 at offset 300 is not in the checkpoint's vocabulary", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    /* data.vocab: the same refusal, naming the key */
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: text, path: %s, vocab: cba}\n", path);
    config(&c, yaml);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    snprintf(expect, sizeof expect, "%s: byte 0x64 at offset 300 is not in data.vocab", path);
    ck_assert_str_eq(err, expect);
    data_free(&d);
    ck_assert_int_eq(cfg_set(&c, "data.vocab=tsrqponmlkjihgfedcba", err, sizeof err), 0);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_OK);
    ck_assert_int_eq(d.V, 20);                     /* in the given order */
    ck_assert_int_eq(d.vocab[0], 't');
    data_free(&d);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: words}\n");
    config(&c, yaml);
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_CONFIG);
    snprintf(expect, sizeof expect, "%s/cfg.yaml:2:14: data.path: words data needs a file", dir);
    ck_assert_str_eq(err, expect);
    data_free(&d);
}
END_TEST

START_TEST(test_shuffle_is_a_permutation)
{
    int p[100], q[100], seen[100] = {0};
    data_shuffle(p, 100, 1, 0);
    data_shuffle(q, 100, 1, 0);
    ck_assert(memcmp(p, q, sizeof p) == 0);           /* a function of (seed, epoch) */
    for (int i = 0; i < 100; i++)
        seen[p[i]]++;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);
    data_shuffle(q, 100, 1, 1);                       /* the next epoch, another order */
    ck_assert(memcmp(p, q, sizeof p) != 0);
}
END_TEST

/* one item is too few to split; the item read must not leak (found by
 * fuzz/fuzz_data.c; ASan's leak check and valgrind see it in the suite) */
START_TEST(test_one_item_is_too_few)
{
    char path[200], yaml[400];
    write_file("one.txt", "abel\n", path, sizeof path);
    snprintf(yaml, sizeof yaml, "model: {kind: lstm}\ndata: {kind: lines, path: %s}\n", path);
    sg_config c;
    config(&c, yaml);
    dataset d;
    ck_assert_int_eq(data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err), EXIT_DATA);
    char want[300];
    snprintf(want, sizeof want, "%s: 1 examples are too few", path);
    ck_assert_str_eq(err, want);
    data_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli/data");
    TCase *tc = tcase_create("data");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_generated_tasks, 0, 3);
    tcase_add_test(tc, test_generated_task_errors);
    tcase_add_test(tc, test_adding_problem);
    tcase_add_loop_test(tc, test_items_split_by_seed, 0, 2);
    tcase_add_test(tc, test_pairs);
    tcase_add_test(tc, test_labelled);
    tcase_add_test(tc, test_segment);
    tcase_add_test(tc, test_tagged);
    tcase_add_test(tc, test_generated_classes);
    tcase_add_test(tc, test_text_blocks);
    tcase_add_test(tc, test_shuffle_is_a_permutation);
    tcase_add_test(tc, test_one_item_is_too_few);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
