/*
 * fuzz_tool.c - libFuzzer target: the tool's commands (sample, eval,
 * translate, resume's restore) on a checkpoint whose metadata is hostile.
 *
 * At start two tiny runs are trained (a character LSTM and a reversal
 * seq2seq) and their checkpoints kept in memory. An input is a model
 * selector byte and a list of metadata edits, each
 *   u8 key length, key, u16 (little-endian) value length, value;
 * the edits are applied to the chosen checkpoint's metadata (a new key is
 * added), the file is written with fresh checksums (a corrupt one is the
 * checkpoint fuzzer's business), and the commands run on it. The custom
 * mutator edits the values (and now and then a key) of that structure, so
 * the search stays among files that reach the code past the checksums.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seqgrad/checkpoint.h>

#include "../cli/config.h"
#include "../cli/train.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

enum { MAX_EDITS = 16, MAX_VALUE = 4096 };

typedef struct {
    char key[256];
    uint8_t value[MAX_VALUE];
    size_t klen, vlen;
} edit;

static char dir[64], paths[2][128], target[128];
static sg_ckpt *pristine[2];

static void train_tiny(const char *name, const char *body)
{
    char path[200], text[600], err[1024];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    snprintf(text, sizeof text, "%strain: {steps: 2, eval_every: 1000, run_dir: %s/%s}\n", body, dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    sg_config c;
    train_opts quiet = {.quiet = true};
    if (cfg_load(&c, path, err, sizeof err) || cfg_check(&c, err, sizeof err) ||
        train_run(&c, &quiet, err, sizeof err) != EXIT_OK) {
        fprintf(stderr, "fuzz_tool: %s\n", err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "/tmp/seqgrad-fuzz-tool-%d", (int)getpid());
    char text[300], cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0)
        abort();
    snprintf(text, sizeof text, "%s/text.txt", dir);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 40; i++)
        fputs("In the beginning God created the heaven and the earth.\n", f);
    fclose(f);
    char body[400];
    snprintf(body, sizeof body, "model: {kind: lstm, hidden: 4}\ndata: {kind: text, path: \"%s\", seq_len: 4, "
                                "batch_size: 2}\n", text);
    train_tiny("lm", body);
    train_tiny("s2s", "model: {kind: seq2seq, hidden: 4, embedding: 3}\ndata: {kind: reverse, symbols: 4, min_len: 2,"
                      " max_len: 4, train_size: 16, valid_size: 4, batch_size: 4}\n");
    for (int k = 0; k < 2; k++) {
        snprintf(paths[k], sizeof paths[k], "%s/%s/checkpoint.safetensors", dir, k ? "s2s" : "lm");
        pristine[k] = sg_ckpt_open(paths[k]);
        if (sg_ckpt_error(pristine[k]))
            abort();
    }
    snprintf(target, sizeof target, "%s/fuzzed.safetensors", dir);
    return 0;
}

/* ---- the input's structure ---------------------------------------------------- */

static int parse(const uint8_t *data, size_t size, int *model, edit *e)
{
    size_t at = 1;
    int n = 0;
    *model = size ? data[0] & 1 : 0;
    while (n < MAX_EDITS && at < size) {
        size_t kl = data[at++];
        if (at + kl + 2 > size)
            break;
        memcpy(e[n].key, data + at, kl), e[n].key[kl] = '\0', e[n].klen = kl;
        at += kl;
        size_t vl = (size_t)data[at] | (size_t)data[at + 1] << 8;
        at += 2;
        if (vl > MAX_VALUE - 1 || at + vl > size)
            break;
        memcpy(e[n].value, data + at, vl), e[n].vlen = vl;
        at += vl;
        n++;
    }
    return n;
}

static size_t serialize(int model, const edit *e, int n, uint8_t *out, size_t max)
{
    size_t at = 0;
    if (max < 1)
        return 0;
    out[at++] = (uint8_t)model;
    for (int i = 0; i < n; i++) {
        if (at + 3 + e[i].klen + e[i].vlen > max)
            break;
        out[at++] = (uint8_t)e[i].klen;
        memcpy(out + at, e[i].key, e[i].klen), at += e[i].klen;
        out[at++] = (uint8_t)(e[i].vlen & 0xff), out[at++] = (uint8_t)(e[i].vlen >> 8);
        memcpy(out + at, e[i].value, e[i].vlen), at += e[i].vlen;
    }
    return at;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    static edit e[MAX_EDITS + 1];
    int model, n = parse(data, size, &model, e);
    srand(seed);
    const sg_ckpt *c = pristine[model];
    int choice = rand() % 8;
    if (n == 0 || (choice == 0 && n < MAX_EDITS)) {   /* a new edit of one of the file's keys */
        int m = sg_ckpt_meta_count(c), k = m ? rand() % m : 0;
        const char *key = m ? sg_ckpt_meta_key(c, k) : "step", *value = m ? sg_ckpt_meta(c, key) : "0";
        snprintf(e[n].key, sizeof e[n].key, "%s", key);
        e[n].klen = strlen(e[n].key);
        e[n].vlen = strlen(value) < MAX_VALUE - 1 ? strlen(value) : MAX_VALUE - 1;
        memcpy(e[n].value, value, e[n].vlen);
        n++;
    }
    edit *t = &e[rand() % n];
    if (choice == 1) {                            /* now and then the key itself */
        t->klen = LLVMFuzzerMutate((uint8_t *)t->key, t->klen, sizeof t->key - 1);
        t->key[t->klen] = '\0';
    } else if (choice == 2)
        model ^= 1;
    else
        t->vlen = LLVMFuzzerMutate(t->value, t->vlen, MAX_VALUE - 1);
    return serialize(model, e, n, data, max_size);
}

/* ---- one input ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static edit e[MAX_EDITS];
    static char values[MAX_EDITS][MAX_VALUE];
    static const char *meta[2 * 64 + 2 * MAX_EDITS];
    char err[1024];
    int model, n = parse(data, size, &model, e);
    const sg_ckpt *c = pristine[model];
    int k = 0;
    for (int i = 0; i < sg_ckpt_meta_count(c) && k < 64; i++) {
        const char *key = sg_ckpt_meta_key(c, i);
        if (strncmp(key, "crc32.", 6) == 0)
            continue;
        meta[2 * k] = key, meta[2 * k + 1] = sg_ckpt_meta(c, key), k++;
    }
    for (int j = 0; j < n; j++) {
        if (strlen(e[j].key) != e[j].klen || !e[j].klen || !strncmp(e[j].key, "crc32.", 6) ||
            memchr(e[j].value, '\0', e[j].vlen))
            continue;                             /* keys with NUL, reserved keys: not a file a writer makes */
        memcpy(values[j], e[j].value, e[j].vlen), values[j][e[j].vlen] = '\0';
        int at = -1;
        for (int i = 0; i < k; i++)
            if (!strcmp(meta[2 * i], e[j].key))
                at = i;
        if (at < 0)
            at = k++;
        meta[2 * at] = e[j].key, meta[2 * at + 1] = values[j];
    }
    sg_ckpt_entry *ent = calloc((size_t)sg_ckpt_count(c) + 1, sizeof *ent);
    for (int i = 0; i < sg_ckpt_count(c); i++)
        ent[i] = *sg_ckpt_get(c, i);
    sg_status s = sg_ckpt_write(target, ent, sg_ckpt_count(c), meta, k, err, sizeof err);
    free(ent);
    if (s != SG_OK)
        return 0;
    FILE *out = fopen("/dev/null", "w");
    if (model == 0) {
        train_sample(target, "In", NULL, 8, 0.8, 1, out, err, sizeof err);
        train_eval(target, NULL, out, err, sizeof err);
    } else {
        FILE *in = fmemopen((void *)"0123\n21\n", 8, "r");
        translate_opts o = {.beam = 1, .length_penalty = 0.6};
        train_translate(target, &o, in, out, err, sizeof err);
        o.beam = 2, o.max_len = 40;
        rewind(in);
        train_translate(target, &o, in, out, err, sizeof err);
        fclose(in);
    }
    fclose(out);
    return 0;
}
