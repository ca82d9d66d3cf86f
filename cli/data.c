/*
 * data.c - the tool's datasets (see data.h): read from a file or generated
 * from the seed, split into training and validation, and cut into batches.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seqgrad/seqgrad.h>

#include "data.h"

#ifndef SEQGRAD_DATA_DIR
#define SEQGRAD_DATA_DIR "data"
#endif
#ifndef SEQGRAD_INSTALLED_DATA_DIR
#define SEQGRAD_INSTALLED_DATA_DIR SEQGRAD_DATA_DIR
#endif

/* Where the bundled data is: $SEQGRAD_DATA_DIR if set; else the installed
 * data directory (under the install prefix) when it holds the data; else
 * the source tree's data/ (a build that was never installed). */
const char *data_dir(void)
{
    const char *env = getenv("SEQGRAD_DATA_DIR");
    if (env && *env)
        return env;
    return access(SEQGRAD_INSTALLED_DATA_DIR "/genesis.txt", R_OK) == 0 ? SEQGRAD_INSTALLED_DATA_DIR : SEQGRAD_DATA_DIR;
}

const char *const data_kind_names[] = {"text",     "words",   "lines",  "pairs", "copy",    "reverse",
                                       "sort",     "adding",  "labelled", "wordlang", "fashion", "parity",
                                       "order",    "segment", "wordgen", "caption", "tagged",  NULL};
static const char symbols[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static data_kind kind_of(const char *kind)
{
    int k = sg_enum_parse(data_kind_names, kind);
    return k < 0 ? DATA_TEXT : (data_kind)k;
}

task_kind data_task(const char *kind)
{
    static const task_kind task[] = {TASK_STREAM, TASK_ITEMS, TASK_ITEMS, TASK_S2S, TASK_S2S, TASK_S2S, TASK_S2S,
                                     TASK_REGRESS, TASK_CLASSIFY, TASK_CLASSIFY, TASK_CLASSIFY, TASK_CLASSIFY,
                                     TASK_CLASSIFY, TASK_TAG, TASK_ITEMS, TASK_ITEMS, TASK_TAG};
    return task[kind_of(kind)];
}

bool data_from_file(data_kind kind)
{
    return kind <= DATA_PAIRS || kind == DATA_LABELLED || kind == DATA_SEGMENT || kind == DATA_TAGGED;
}

void data_shuffle(int *perm, long n, uint64_t seed, long epoch)
{
    sg_rng r;
    sg_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 2)));
    for (long i = 0; i < n; i++)
        perm[i] = (int)i;
    for (long i = n - 1; i > 0; i--) {       /* Fisher-Yates */
        long j = (long)(sg_rng_u64(&r) % (uint64_t)(i + 1));
        int tmp = perm[i];
        perm[i] = perm[j], perm[j] = tmp;
    }
}

void data_free(dataset *d)
{
    for (int s = 0; s < 2; s++) {
        free(d->ids[s]), free(d->ax[s]), free(d->ay[s]), free(d->label[s]);
        for (long i = 0; d->ex[s] && i < d->len[s]; i++)
            free(d->ex[s][i].src), free(d->ex[s][i].tgt);
        free(d->ex[s]);
    }
    for (int i = 0; i < d->n_words; i++)
        free(d->words[i]);
    free(d->words);
    memset(d, 0, sizeof *d);
}

static unsigned char *read_all(const char *path, long *len, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    unsigned char *s = *len >= 0 ? malloc((size_t)*len + 1) : NULL;
    if (!s || fread(s, 1, (size_t)*len, f) != (size_t)*len) {
        fclose(f);
        free(s);
        snprintf(err, n, "%s: cannot read", path);
        return NULL;
    }
    fclose(f);
    s[*len] = '\0';
    return s;
}

/* the vocabulary: the checkpoint's (hex bytes, in order) or every byte seen */
static void make_vocab(dataset *d, const char *vocab_hex, const bool seen[256])
{
    memset(d->id_of, -1, sizeof d->id_of);
    d->V = 0;
    if (vocab_hex) {
        for (const char *h = vocab_hex; h[0] && h[1]; h += 2) {
            unsigned c;
            if (sscanf(h, "%2x", &c) == 1 && d->id_of[c] < 0)
                d->id_of[c] = d->V, d->vocab[d->V++] = (unsigned char)c;
        }
        return;
    }
    for (int c = 0; c < 256; c++)
        if (seen[c])
            d->id_of[c] = d->V, d->vocab[d->V++] = (unsigned char)c;
}

long data_encode(const dataset *d, const char *s, long len, int *ids)
{
    for (long i = 0; i < len; i++) {
        int id = d->id_of[(unsigned char)s[i]];
        if (id < 0)
            return -(1 + i);
        ids[i] = id;
    }
    return len;
}

static int *encode_or_fail(const dataset *d, const unsigned char *s, long len, long offset, char *err, size_t n)
{
    int *ids = malloc(((size_t)len + 1) * sizeof *ids);
    long k = ids ? data_encode(d, (const char *)s, len, ids) : -1;
    if (k < 0) {
        if (ids)
            snprintf(err, n, "%s: byte 0x%02x at offset %ld is not in %s", d->path, s[-k - 1], offset - k - 1,
                     d->vocab_from);
        else
            snprintf(err, n, "out of memory");
        free(ids);
        return NULL;
    }
    return ids;
}

/* ---- text: 20 blocks, some of them drawn for validation ----------------- */

static int load_text(dataset *d, const unsigned char *s, long len, double frac, uint64_t seed, bool whole,
                     char *err, size_t n)
{
    enum { BLOCKS = 20 };
    int perm[BLOCKS];
    bool valid[BLOCKS] = {false};
    data_shuffle(perm, BLOCKS, seed, -1);
    long nv = lround(BLOCKS * frac);
    for (long k = 0; k < (nv > 0 ? nv : 1); k++)
        valid[perm[k]] = true;
    for (int s2 = 0; s2 < 2; s2++)
        if (!(d->ids[s2] = malloc(((size_t)len + 1) * sizeof(int))))
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
    int *all = encode_or_fail(d, s, len, 0, err, n);
    if (!all)
        return EXIT_DATA;
    for (int b = 0; b < BLOCKS; b++) {
        long lo = len * b / BLOCKS, hi = len * (b + 1) / BLOCKS;
        int split = whole || valid[b];
        memcpy(d->ids[split] + d->len[split], all + lo, (size_t)(hi - lo) * sizeof(int));
        d->len[split] += hi - lo;
    }
    free(all);
    return EXIT_OK;
}

/* ---- items and pairs ---------------------------------------------------------- */

static int add_example(example **ex, long *count, long *cap, int *src, int src_len, int *tgt, int tgt_len)
{
    if (*count == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        example *e = realloc(*ex, (size_t)*cap * sizeof *e);
        if (!e)
            return -1;
        *ex = e;
    }
    (*ex)[(*count)++] = (example){.src = src, .tgt = tgt, .src_len = src_len, .tgt_len = tgt_len};
    return 0;
}

/* splits the examples read (in file order) into the two splits by a seeded
 * shuffle; whole: all of them are the validation split */
static void free_examples(example *all, long count)
{
    for (long k = 0; all && k < count; k++)
        free(all[k].src), free(all[k].tgt);
    free(all);
}

static int split_examples(dataset *d, example *all, long count, double frac, uint64_t seed, bool whole, char *err,
                          size_t n)
{
    long nv = whole ? count : lround((double)count * frac);
    if (nv < 1)
        nv = 1;
    if (count < (whole ? 1 : 2)) {
        free_examples(all, count);
        return cli_fail(err, n, EXIT_DATA, "%s: %ld examples are too few", d->path, count);
    }
    int *perm = malloc((size_t)count * sizeof *perm);
    d->ex[0] = malloc((size_t)(count - nv + 1) * sizeof(example));
    d->ex[1] = malloc((size_t)nv * sizeof(example));
    if (!perm || !d->ex[0] || !d->ex[1]) {
        free(perm), free_examples(all, count);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    data_shuffle(perm, count, seed, -1);
    for (long i = 0; i < count; i++) {
        long k = whole ? i : perm[i];
        int split = i < nv;
        d->ex[split][d->len[split]++] = all[k];
    }
    free(perm), free(all);
    return EXIT_OK;
}

static int load_items(dataset *d, const unsigned char *s, long len, const sg_config *c, bool whole, char *err,
                      size_t n)
{
    example *all = NULL;
    long count = 0, cap = 0, line = 1;
    for (long i = 0; i < len;) {
        long start = i, end, next;
        if (d->kind == DATA_WORDS) {
            while (start < len && strchr(" \t\r\n\f\v", s[start]))
                line += s[start++] == '\n';
            for (end = start; end < len && !strchr(" \t\r\n\f\v", s[end]);)
                end++;
            next = end;
        } else {
            for (end = start; end < len && s[end] != '\n';)
                end++;
            next = end + 1;
        }
        i = next;
        if (end <= start) {
            line += d->kind != DATA_WORDS;
            continue;
        }
        const unsigned char *tab = d->kind == DATA_PAIRS ? memchr(s + start, '\t', (size_t)(end - start)) : NULL;
        if (d->kind == DATA_PAIRS && (!tab || tab == s + start || tab == s + end - 1 ||
                                      memchr(tab + 1, '\t', (size_t)(s + end - tab - 1)))) {
            free_examples(all, count);
            return cli_fail(err, n, EXIT_DATA, "%s:%ld: expected source<TAB>target, each not empty", d->path, line);
        }
        long src_end = tab ? tab - s : end;
        int *src = encode_or_fail(d, s + start, src_end - start, start, err, n), *tgt = NULL;
        if (src && tab)
            tgt = encode_or_fail(d, tab + 1, end - src_end - 1, src_end + 1, err, n);
        if (!src || (tab && !tgt) ||
            add_example(&all, &count, &cap, src, (int)(src_end - start), tgt, tab ? (int)(end - src_end - 1) : 0)) {
            free(src), free(tgt);
            free_examples(all, count);
            return err[0] ? EXIT_DATA : (snprintf(err, n, "out of memory"), EXIT_FAIL);
        }
        line += d->kind != DATA_WORDS;
    }
    return split_examples(d, all, count, cfg_real(c, "data.valid_fraction"), (uint64_t)cfg_int(c, "data.seed"), whole,
                          err, n);
}

/* ---- generated tasks ---------------------------------------------------------- */

static uint64_t hash_seq(const int *x, int len)
{
    uint64_t h = 1469598103934665603ull;              /* FNV-1a over the symbols */
    for (int i = 0; i < len; i++)
        h = (h ^ (uint64_t)(x[i] + 1)) * 1099511628211ull;
    return h | 1;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int generate_task(dataset *d, const sg_config *c, char *err, size_t n)
{
    int K = (int)cfg_int(c, "data.symbols"), lo = (int)cfg_int(c, "data.min_len"), hi = (int)cfg_int(c, "data.max_len");
    long ntrain = cfg_int(c, "data.train_size"), nvalid = cfg_int(c, "data.valid_size"), total = ntrain + nvalid;
    char where[600];
    if (lo > hi) {
        cfg_where(c, "data.min_len", where, sizeof where);
        return cli_fail(err, n, EXIT_CONFIG, "%s: data.min_len: %d is more than data.max_len %d", where, lo, hi);
    }
    double space = 0;
    for (int L = lo; L <= hi; L++)
        space += pow(K, L);
    if (space < 2.0 * (double)total) {
        cfg_where(c, "data.train_size", where, sizeof where);
        return cli_fail(err, n, EXIT_CONFIG, "%s: data.train_size: %ld + %ld distinct sources need at least twice as many possible "
                        "ones; %d symbols and lengths %d-%d give %.0f", where, ntrain, nvalid, K, lo, hi, space);
    }
    for (int i = 0; i < K; i++)
        d->id_of[(unsigned char)symbols[i]] = i, d->vocab[i] = (unsigned char)symbols[i];
    d->V = K;
    size_t cap = 1;
    while (cap < 4 * (size_t)total)
        cap *= 2;
    uint64_t *seen = calloc(cap, sizeof *seen);
    d->ex[0] = calloc((size_t)ntrain, sizeof(example));
    d->ex[1] = calloc((size_t)nvalid, sizeof(example));
    if (!seen || !d->ex[0] || !d->ex[1]) {
        free(seen);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    sg_rng r;
    sg_rng_seed(&r, (uint64_t)cfg_int(c, "data.seed"));
    int x[64];
    for (long i = 0; i < total;) {
        int L = lo + sg_rng_int(&r, hi - lo + 1);
        for (int k = 0; k < L; k++)
            x[k] = sg_rng_int(&r, K);
        uint64_t h = hash_seq(x, L);
        size_t slot = h & (cap - 1);
        while (seen[slot] && seen[slot] != h)
            slot = (slot + 1) & (cap - 1);
        if (seen[slot])
            continue;                               /* drawn before */
        seen[slot] = h;
        int split = i < nvalid, *src = malloc((size_t)L * sizeof *src), *tgt = malloc((size_t)L * sizeof *tgt);
        if (!src || !tgt) {
            free(src), free(tgt), free(seen);
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
        }
        memcpy(src, x, (size_t)L * sizeof *src);
        for (int k = 0; k < L; k++)
            tgt[k] = d->kind == DATA_REVERSE ? x[L - 1 - k] : x[k];
        if (d->kind == DATA_SORT)
            qsort(tgt, (size_t)L, sizeof *tgt, cmp_int);
        d->ex[split][d->len[split]++] = (example){.src = src, .tgt = tgt, .src_len = L, .tgt_len = L};
        i++;
    }
    free(seen);
    return EXIT_OK;
}

static int generate_adding(dataset *d, const sg_config *c, char *err, size_t n)
{
    int T = d->T = (int)cfg_int(c, "data.seq_len");
    long size[2] = {cfg_int(c, "data.train_size"), cfg_int(c, "data.valid_size")};
    sg_rng r;
    sg_rng_seed(&r, (uint64_t)cfg_int(c, "data.seed"));
    for (int s = 1; s >= 0; s--) {               /* validation first, as for the other tasks */
        d->ax[s] = calloc((size_t)size[s] * (size_t)T * 2, sizeof(float));
        d->ay[s] = calloc((size_t)size[s], sizeof(float));
        if (!d->ax[s] || !d->ay[s])
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
        for (long i = 0; i < size[s]; i++) {
            float *x = d->ax[s] + i * T * 2;
            for (int t = 0; t < T; t++)
                x[2 * t] = (float)sg_rng_uniform(&r);
            int a = sg_rng_int(&r, T / 2), b = T / 2 + sg_rng_int(&r, T - T / 2);
            x[2 * a + 1] = x[2 * b + 1] = 1;
            d->ay[s][i] = x[2 * a] + x[2 * b];
        }
        d->len[s] = size[s];
    }
    return EXIT_OK;
}

/* ---- classification --------------------------------------------------------------- */

int data_class_of(const dataset *d, const char *name)
{
    for (int k = 0; k < d->C; k++)
        if (!strcmp(d->classes[k], name))
            return k;
    return -1;
}

void data_classes_str(const dataset *d, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < d->C && len < n; k++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", k ? "\n" : "", d->classes[k]);
}

static int set_classes(dataset *d, const char *joined, char *err, size_t n)
{
    d->C = 0;
    for (const char *p = joined; p && *p && d->C < DATA_MAX_CLASSES;) {
        size_t l = strcspn(p, "\n");
        if (l == 0 || l >= sizeof d->classes[0])
            return cli_fail(err, n, -1, "metadata classes: a name is empty or longer than %zu bytes",
                            sizeof d->classes[0] - 1);
        memcpy(d->classes[d->C], p, l);
        d->classes[d->C++][l] = '\0';
        p += l + (p[l] == '\n');
    }
    return d->C >= 2 ? 0 : (snprintf(err, n, "metadata classes: fewer than 2"), -1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the class of name, added while classes are being made (training), else
 * looked up; -1 (with err) if unknown or too many */
static int class_id(dataset *d, const char *name, bool add, const char *where, char *err, size_t n)
{
    int k = data_class_of(d, name);
    if (k >= 0)
        return k;
    if (!add)
        return cli_fail(err, n, -1, "%s: label \"%s\" never occurs in training (classes: %d)", where, name, d->C);
    if (d->C == DATA_MAX_CLASSES || strlen(name) >= sizeof d->classes[0])
        return cli_fail(err, n, -1, "%s: label \"%s\": at most %d classes of up to %zu bytes", where, name,
                        DATA_MAX_CLASSES, sizeof d->classes[0] - 1);
    snprintf(d->classes[d->C], sizeof d->classes[0], "%s", name);
    return d->C++;
}

static int add_labelled(example **all, long *count, long *cap, const dataset *d, const unsigned char *text, long len,
                        long offset, int label, char *err, size_t n)
{
    int *src = encode_or_fail(d, text, len, offset, err, n), *tgt = malloc(sizeof *tgt);
    if (!src || !tgt || add_example(all, count, cap, src, (int)len, tgt, 1)) {
        free(src), free(tgt);
        return err[0] ? EXIT_DATA : (snprintf(err, n, "out of memory"), EXIT_FAIL);
    }
    *tgt = label;
    return EXIT_OK;
}

/* labelled: label<TAB>text lines. The labels are read as text first (the
 * split decides which are training's), then numbered: classes sorted by
 * name, from the training split (or the checkpoint's). */
/* labelled, word level: each text's whitespace-separated words become its
 * ids; the vocabulary is the training split's words, sorted (or the
 * checkpoint's), 0 for any other */
static int add_word(dataset *d, const char *w, size_t l, int *cap);
static void sort_unique_words(dataset *d);

static int labelled_words(dataset *d, bool words_preset, char *err, size_t n)
{
    int cap = 0;
    char word[256];
    for (int pass = words_preset ? 1 : 0; pass < 2; pass++) {     /* 0: the vocabulary; 1: the ids */
        for (int sp = 0; sp < (pass ? 2 : 1); sp++)
            for (long e = 0; e < d->len[sp]; e++) {
                example *x = &d->ex[sp][e];
                int k = 0, len = 0;
                for (int i = 0; i <= x->src_len; i++) {
                    unsigned char ch = i < x->src_len ? d->vocab[x->src[i]] : ' ';
                    if (!strchr(" \t\r\f\v", ch) && len < (int)sizeof word - 1) {
                        word[len++] = (char)ch;
                        continue;
                    }
                    if (!len)
                        continue;
                    if (pass == 0 && add_word(d, word, (size_t)len, &cap) != 0)
                        return cli_fail(err, n, EXIT_FAIL, "out of memory");
                    if (pass == 1)
                        x->src[k++] = data_word_id(d, word, (size_t)len);   /* k <= i: in place */
                    len = 0;
                }
                if (pass == 1 && (x->src_len = k) == 0)
                    x->src[x->src_len++] = 0;
            }
        if (pass == 0) {
            sort_unique_words(d);
        }
    }
    d->V = d->n_words + 1;
    return EXIT_OK;
}

static int load_labelled(dataset *d, const unsigned char *s, long len, const sg_config *c, bool whole, bool preset,
                         bool words_preset, char *err, size_t n)
{
    example *all = NULL;
    long count = 0, cap = 0, line = 0;
    char (*names)[48] = NULL;
    long *lines = NULL;
    for (long i = 0; i < len;) {
        long start = i, end = i;
        while (end < len && s[end] != '\n')
            end++;
        i = end + 1, line++;
        if (end == start)
            continue;
        const unsigned char *tab = memchr(s + start, '\t', (size_t)(end - start));
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", d->path, line);
        if (!tab || tab == s + start || tab == s + end - 1 || tab - (s + start) >= 48) {
            free_examples(all, count), free(names), free(lines);
            return cli_fail(err, n, EXIT_DATA, "%s: expected label<TAB>text, the label 1 to 47 bytes, the text not empty", where);
        }
        if (count % 1024 == 0) {
            void *a = realloc(names, (size_t)(count + 1024) * sizeof *names), *b = a ? realloc(lines, (size_t)(count + 1024) * sizeof *lines) : NULL;
            names = a ? a : names, lines = b ? b : lines;
            if (!a || !b) {
                free_examples(all, count), free(names), free(lines);
                return cli_fail(err, n, EXIT_FAIL, "out of memory");
            }
        }
        memcpy(names[count], s + start, (size_t)(tab - s - start));
        names[count][tab - s - start] = '\0';
        lines[count] = line;
        int rc = add_labelled(&all, &count, &cap, d, tab + 1, s + end - tab - 1, tab + 1 - s, -1, err, n);
        if (rc != EXIT_OK) {
            free_examples(all, count), free(names), free(lines);
            return rc;
        }
    }
    for (long k = 0; k < count; k++)       /* the label's row, carried through the split */
        all[k].tgt[0] = (int)k;
    int rc = split_examples(d, all, count, cfg_real(c, "data.valid_fraction"), (uint64_t)cfg_int(c, "data.seed"), whole,
                            err, n);
    if (rc != EXIT_OK) {
        free(names), free(lines);
        return rc;
    }
    if (!preset) {                          /* classes: the training split's labels, sorted */
        char **sorted = malloc((size_t)(d->len[0] + 1) * sizeof *sorted);
        for (long k = 0; sorted && k < d->len[0]; k++)
            sorted[k] = names[d->ex[0][k].tgt[0]];
        if (sorted)
            qsort(sorted, (size_t)d->len[0], sizeof *sorted, cmp_str);
        for (long k = 0; sorted && k < d->len[0] && rc == EXIT_OK; k++)
            if (class_id(d, sorted[k], true, d->path, err, n) < 0)
                rc = EXIT_DATA;
        free(sorted);
        if (rc == EXIT_OK && d->C < 2)
            rc = cli_fail(err, n, EXIT_DATA, "%s: %d label%s in the training split; classification needs two",
                                     d->path, d->C, d->C == 1 ? "" : "s");
    }
    for (int sp = 0; sp < 2 && rc == EXIT_OK; sp++)
        for (long k = 0; k < d->len[sp] && rc == EXIT_OK; k++) {
            int row = d->ex[sp][k].tgt[0];
            char where[600];
            snprintf(where, sizeof where, "%s:%ld", d->path, lines[row]);
            int id = class_id(d, names[row], false, where, err, n);
            if (id < 0)
                rc = EXIT_DATA;
            d->ex[sp][k].tgt[0] = id;
        }
    free(names), free(lines);
    if (rc == EXIT_OK && !strcmp(cfg_str(c, "data.level"), "word"))
        rc = labelled_words(d, words_preset, err, n);
    return rc;
}

/* the word lists Debian packages, by the package that installs them */
static const struct { const char *file, *language, *package; } word_lists[] = {
    {"american-english", "english", "wamerican"}, {"ngerman", "german", "wngerman"},
    {"french", "french", "wfrench"},              {"italian", "italian", "witalian"},
    {"spanish", "spanish", "wspanish"},           {"portuguese", "portuguese", "wportuguese"},
    {"dutch", "dutch", "wdutch"},                 {"swedish", "swedish", "wswedish"},
    {"danish", "danish", "wdanish"},              {"polish", "polish", "wpolish"},
};

static const char *dict_dir(void)
{
    const char *env = getenv("SEQGRAD_DICT_DIR");
    return env && *env ? env : "/usr/share/dict";
}

/* wordlang: each installed list gives train_size + valid_size distinct
 * lowercased words (no apostrophes), drawn by the seed; the language is the
 * class. Two lists at least. */
static int load_wordlang(dataset *d, const sg_config *c, bool preset, char *err, size_t n)
{
    long per[2] = {cfg_int(c, "data.train_size"), cfg_int(c, "data.valid_size")};
    uint64_t seed = (uint64_t)cfg_int(c, "data.seed");
    unsigned char *text[sizeof word_lists / sizeof word_lists[0]] = {NULL};
    long tlen[sizeof word_lists / sizeof word_lists[0]] = {0};
    int found = 0, rc = EXIT_OK;
    bool seen[256] = {false};
    for (size_t w = 0; w < sizeof word_lists / sizeof word_lists[0]; w++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dict_dir(), word_lists[w].file);
        if (access(path, R_OK) != 0)
            continue;
        if (!(text[w] = read_all(path, &tlen[w], err, n))) {
            rc = EXIT_DATA;
            break;
        }
        for (long i = 0; i < tlen[w]; i++) {     /* lowercase ASCII; UTF-8 bytes as they are */
            if (text[w][i] >= 'A' && text[w][i] <= 'Z')
                text[w][i] = (unsigned char)(text[w][i] - 'A' + 'a');
            seen[text[w][i]] = true;
        }
        found++;
    }
    if (rc == EXIT_OK && found < 2) {
        char where[600];
        cfg_where(c, "data.kind", where, sizeof where);
        rc = cli_fail(err, n, EXIT_DATA, "%s: data.kind: wordlang needs at least two word lists in %s, found %d: "
                                 "apt-get install wamerican wngerman wfrench witalian wspanish", where, dict_dir(), found);
    }
    seen['\r'] = seen['\''] = false;
    seen['\n'] = d->kind == DATA_WORDGEN;     /* generated words end with it */
    if (rc == EXIT_OK && !d->V)
        make_vocab(d, NULL, seen);
    for (int s = 0; s < 2 && rc == EXIT_OK; s++)
        d->ex[s] = calloc((size_t)found * (size_t)per[s] + 1, sizeof(example));
    for (size_t w = 0; w < sizeof word_lists / sizeof word_lists[0] && rc == EXIT_OK; w++) {
        if (!text[w])
            continue;
        if (!d->ex[0] || !d->ex[1]) {
            rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
            break;
        }
        int label = class_id(d, word_lists[w].language, !preset, d->path, err, n);
        if (label < 0) {
            rc = EXIT_DATA;
            break;
        }
        long words = 0, *at = NULL;          /* the start of each usable word */
        for (long i = 0; i < tlen[w]; i++)
            words += (i == 0 || text[w][i - 1] == '\n') && text[w][i] != '\n';
        at = malloc((size_t)(words + 1) * sizeof *at);
        int *perm = malloc((size_t)(words + 1) * sizeof *perm);
        long k = 0;
        for (long i = 0; at && i < tlen[w]; i++)
            if ((i == 0 || text[w][i - 1] == '\n') && text[w][i] != '\n') {
                long e = i;
                while (e < tlen[w] && text[w][e] != '\n')
                    e++;
                if (!memchr(text[w] + i, '\'', (size_t)(e - i)) && e - i <= 40)
                    at[k++] = i;
            }
        if (!at || !perm) {
            free(at), free(perm);
            rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
            break;
        }
        data_shuffle(perm, k, seed + w, -1);
        long got[2] = {0, 0};
        for (long j = 0; j < k && (got[0] < per[0] || got[1] < per[1]); j++) {
            long i = at[perm[j]], e = i;
            while (e < tlen[w] && text[w][e] != '\n' && text[w][e] != '\r')
                e++;
            int sp = got[1] < per[1] ? 1 : 0;     /* validation first */
            long cnt = d->len[sp];
            example *ex = d->ex[sp];
            int *src = malloc((size_t)(e - i + 1) * sizeof *src), *tgt = malloc(sizeof *tgt);
            if (!src || !tgt) {
                free(src), free(tgt);
                rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
                break;
            }
            for (long q = i; q < e; q++)
                src[q - i] = d->id_of[text[w][q]];
            *tgt = label;
            ex[cnt] = (example){.src = src, .tgt = tgt, .src_len = (int)(e - i), .tgt_len = 1};
            d->len[sp]++, got[sp]++;
        }
        free(at), free(perm);
    }
    for (size_t w = 0; w < sizeof word_lists / sizeof word_lists[0]; w++)
        free(text[w]);
    return rc;
}

/* fashion: the IDX files of dataset-fashion-mnist, through gzip -dc */
static const char *const fashion_classes[] = {"t-shirt/top", "trouser", "pullover", "dress", "coat",
                                              "sandal", "shirt", "sneaker", "bag", "ankle boot"};

/* The first *count items (at most the file's own count, which it sets
 * *count to) of the gzip'd IDX file path: its magic is 0, 0, 8 (bytes),
 * dims, then one 4-byte size per dimension; item bytes each. */
static unsigned char *read_idx(const char *path, int dims, long item, long *count, char *err, size_t n)
{
    if (access(path, R_OK) != 0) {
        snprintf(err, n, "%s: missing: apt-get install dataset-fashion-mnist (or set SEQGRAD_FASHION_DIR)", path);
        return NULL;
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *f = popen(cmd, "r");
    unsigned char head[16];
    long hl = 4 + 4L * dims, got = f ? (long)fread(head, 1, (size_t)hl, f) : 0, want = 0;
    unsigned char *buf = NULL;
    if (got == hl && head[0] == 0 && head[1] == 0 && head[2] == 8 && head[3] == dims) {
        long stored = (long)head[4] << 24 | head[5] << 16 | head[6] << 8 | head[7];
        *count = stored < *count ? stored : *count;
        want = *count * item;
        buf = malloc((size_t)want + 1);
        got = buf ? (long)fread(buf, 1, (size_t)want, f) : 0;
    }
    if (f)
        pclose(f);
    if (!buf && got == hl)
        snprintf(err, n, "%s: not an IDX file of %s", path, dims == 3 ? "images" : "labels");
    else if (!buf)
        snprintf(err, n, "%s: expected an IDX header of %ld bytes after gzip -dc, read %ld", path, hl, got);
    else if (got != want)
        snprintf(err, n, "%s: expected %ld bytes after gzip -dc and the header, read %ld", path, want, got);
    if (buf && got == want)
        return buf;
    free(buf);
    return NULL;
}

static int load_fashion(dataset *d, const sg_config *c, char *err, size_t n)
{
    const char *env = getenv("SEQGRAD_FASHION_DIR"), *dir = env && *env ? env : "/usr/share/datasets/fashion-mnist";
    static const char *files[2][2] = {{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
                                      {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}};
    bool pixel = cfg_bool(c, "data.by_pixel");
    d->T = pixel ? 784 : 28, d->F = pixel ? 1 : 28;
    d->C = 10;
    for (int k = 0; k < 10; k++)
        snprintf(d->classes[k], sizeof d->classes[k], "%s", fashion_classes[k]);
    long want[2] = {cfg_int(c, "data.train_size"), cfg_int(c, "data.valid_size")};
    snprintf(d->path, sizeof d->path, "%s", dir);
    for (int s = 0; s < 2; s++) {
        long count = want[s], labels = want[s];
        char ip[600], lp[600];
        snprintf(ip, sizeof ip, "%s/%s", dir, files[s][0]);
        snprintf(lp, sizeof lp, "%s/%s", dir, files[s][1]);
        unsigned char *img = read_idx(ip, 3, 784, &count, err, n), *lab = img ? read_idx(lp, 1, 1, &labels, err, n) : NULL;
        if (!img || !lab) {
            free(img), free(lab);
            return EXIT_DATA;
        }
        if (labels != count) {
            free(img), free(lab);
            return cli_fail(err, n, EXIT_DATA, "%s: %ld labels for %ld images", lp, labels, count);
        }
        d->ax[s] = malloc((size_t)count * 784 * sizeof(float));
        d->label[s] = malloc((size_t)count * sizeof(int));
        if (!d->ax[s] || !d->label[s]) {
            free(img), free(lab);
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
        }
        for (long i = 0; i < count * 784; i++)
            d->ax[s][i] = img[i] / 255.0f;
        for (long i = 0; i < count; i++)
            d->label[s][i] = lab[i] < 10 ? lab[i] : 0;
        d->len[s] = count;
        free(img), free(lab);
    }
    return EXIT_OK;
}

/* parity and order: distinct examples drawn by the seed, validation first */
static int generate_classes(dataset *d, const sg_config *c, char *err, size_t n)
{
    bool parity = d->kind == DATA_PARITY;
    const char *alphabet = parity ? "01" : "abcdXY";
    int lo = parity ? (int)cfg_int(c, "data.min_len") : (int)cfg_int(c, "data.seq_len");
    int hi = parity ? (int)cfg_int(c, "data.max_len") : lo;
    long size[2] = {cfg_int(c, "data.train_size"), cfg_int(c, "data.valid_size")}, total = size[0] + size[1];
    char where[600];
    if (lo > hi) {
        cfg_where(c, "data.min_len", where, sizeof where);
        return cli_fail(err, n, EXIT_CONFIG, "%s: data.min_len: %d is more than data.max_len %d", where, lo, hi);
    }
    double space = 0;
    for (int L = lo; L <= hi && parity; L++)
        space += pow(2, L);
    int w = lo / 10 > 0 ? lo / 10 : 1;      /* order: the width of each mark's window */
    if (!parity)
        space = 4.0 * pow(4, lo - 2) * w * w;
    if (lo < (parity ? 1 : 4) || space < 2.0 * (double)total) {
        cfg_where(c, parity ? "data.max_len" : "data.seq_len", where, sizeof where);
        return cli_fail(err, n, EXIT_CONFIG, "%s: %s: %ld + %ld distinct examples need more possible ones (%s)", where,
                        parity ? "data.max_len" : "data.seq_len", size[0], size[1],
                        parity ? "longer strings" : "seq_len at least 4, or fewer examples");
    }
    for (int i = 0; alphabet[i]; i++)
        d->id_of[(unsigned char)alphabet[i]] = i, d->vocab[i] = (unsigned char)alphabet[i];
    d->V = (int)strlen(alphabet);
    static const char *names[2][4] = {{"even", "odd"}, {"XX", "XY", "YX", "YY"}};
    d->C = parity ? 2 : 4;
    for (int k = 0; k < d->C; k++)
        snprintf(d->classes[k], sizeof d->classes[k], "%s", names[!parity][k]);
    size_t cap = 1;
    while (cap < 4 * (size_t)total)
        cap *= 2;
    uint64_t *seen = calloc(cap, sizeof *seen);
    int *x = malloc((size_t)hi * sizeof *x);
    for (int s = 0; s < 2; s++)
        d->ex[s] = calloc((size_t)size[s] + 1, sizeof(example));
    if (!seen || !x || !d->ex[0] || !d->ex[1]) {
        free(seen);
        free(x);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    sg_rng r;
    sg_rng_seed(&r, (uint64_t)cfg_int(c, "data.seed"));
    for (long i = 0; i < total;) {
        int L = lo + sg_rng_int(&r, hi - lo + 1), label = 0;
        if (parity) {
            for (int k = 0; k < L; k++)
                x[k] = sg_rng_int(&r, 2), label ^= x[k];
        } else {          /* X or Y at t1 in [T/10, 2T/10) and t2 in [5T/10, 6T/10) */
            for (int k = 0; k < L; k++)
                x[k] = sg_rng_int(&r, 4);
            int t1 = L / 10 + sg_rng_int(&r, w), t2 = L / 2 + sg_rng_int(&r, w);
            int a = sg_rng_int(&r, 2), b = sg_rng_int(&r, 2);
            x[t1] = 4 + a, x[t2] = 4 + b, label = 2 * a + b;
        }
        uint64_t h = hash_seq(x, L);
        size_t slot = h & (cap - 1);
        while (seen[slot] && seen[slot] != h)
            slot = (slot + 1) & (cap - 1);
        if (seen[slot])
            continue;
        seen[slot] = h;
        int split = i < size[1], *src = malloc((size_t)L * sizeof *src), *tgt = malloc(sizeof *tgt);
        if (!src || !tgt) {
            free(src), free(tgt), free(seen), free(x);
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
        }
        memcpy(src, x, (size_t)L * sizeof *src);
        *tgt = label;
        d->ex[split][d->len[split]++] = (example){.src = src, .tgt = tgt, .src_len = L, .tgt_len = 1};
        i++;
    }
    free(seen), free(x);
    return EXIT_OK;
}

/* segment: each line without its whitespace, tagged B where a word starts */
static int load_segment(dataset *d, const unsigned char *s, long len, const sg_config *c, bool whole, char *err,
                        size_t n)
{
    int max = (int)cfg_int(c, "data.seq_len");
    example *all = NULL;
    long count = 0, cap = 0;
    int *src = malloc((size_t)max * sizeof *src), *tag = malloc((size_t)max * sizeof *tag);
    if (!src || !tag) {
        free(src);
        free(tag);
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    }
    d->C = 2;
    snprintf(d->classes[0], sizeof d->classes[0], "B");
    snprintf(d->classes[1], sizeof d->classes[1], "I");
    for (long i = 0; i < len;) {
        int k = 0;
        bool start = true;
        for (; i < len && s[i] != '\n'; i++) {
            if (strchr(" \t\r\f\v", s[i])) {
                start = true;
                continue;
            }
            if (k < max && d->id_of[s[i]] >= 0)
                src[k] = d->id_of[s[i]], tag[k++] = start ? 0 : 1;
            start = false;
        }
        i++;
        if (k < 2)
            continue;
        int *a = malloc((size_t)k * sizeof *a), *b = malloc((size_t)k * sizeof *b);
        if (!a || !b || add_example(&all, &count, &cap, a, k, b, k)) {
            free(a), free(b), free(src), free(tag), free_examples(all, count);
            return cli_fail(err, n, EXIT_FAIL, "out of memory");
        }
        memcpy(a, src, (size_t)k * sizeof *a), memcpy(b, tag, (size_t)k * sizeof *b);
    }
    free(src), free(tag);
    return split_examples(d, all, count, cfg_real(c, "data.valid_fraction"), (uint64_t)cfg_int(c, "data.seed"), whole,
                          err, n);
}

/* ---- tagged: CoNLL files, word level -------------------------------------------------- */

static int cmp_word(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the word vocabulary sorted, each word once: ids are 1 + the place */
static void sort_unique_words(dataset *d)
{
    qsort(d->words, (size_t)d->n_words, sizeof *d->words, cmp_word);
    int u = 0;
    for (int j = 0; j < d->n_words; j++)
        if (u && !strcmp(d->words[u - 1], d->words[j]))
            free(d->words[j]);
        else
            d->words[u++] = d->words[j];
    d->n_words = u;
}

int data_word_id(const dataset *d, const char *word, size_t len)
{
    int lo = 0, hi = d->n_words - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strncmp(d->words[mid], word, len);
        if (c == 0 && d->words[mid][len])
            c = 1;
        if (c == 0)
            return mid + 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

size_t data_words_str(const dataset *d, char *out, size_t n)
{
    size_t len = 0;
    for (int i = 0; i < d->n_words; i++) {
        size_t l = strlen(d->words[i]);
        if (out && len + l + 2 <= n) {
            if (i)
                out[len] = '\n';
            memcpy(out + len + (i > 0), d->words[i], l);
            out[len + (i > 0) + l] = '\0';
        }
        len += l + (i > 0);
    }
    if (out && n && !d->n_words)
        out[0] = '\0';
    return len + 1;
}

static int add_word(dataset *d, const char *w, size_t l, int *cap)
{
    if (d->n_words == *cap) {
        int grown = *cap ? 2 * *cap : 1024;
        char **a = realloc(d->words, (size_t)grown * sizeof *a);
        if (!a)
            return -1;
        d->words = a, *cap = grown;
    }
    if (!(d->words[d->n_words] = malloc(l + 1)))
        return -1;
    memcpy(d->words[d->n_words], w, l);
    d->words[d->n_words++][l] = '\0';
    return 0;
}

/* the words of a checkpoint, in their order (sorted when written) */
static int set_words(dataset *d, const char *joined, char *err, size_t n)
{
    int cap = 0;
    for (const char *p = joined; *p;) {
        size_t l = strcspn(p, "\n");
        if (!l || add_word(d, p, l, &cap) != 0)
            return cli_fail(err, n, -1, "metadata words: %s", l ? "out of memory" : "an empty word");
        p += l + (p[l] == '\n');
    }
    for (int i = 1; i < d->n_words; i++)
        if (strcmp(d->words[i - 1], d->words[i]) >= 0)
            return cli_fail(err, n, -1, "metadata words: not sorted at %d", i);
    d->V = d->n_words + 1;
    return 0;
}

/* tagged: sequences of (token, tag) lines; tokens and tags are read as text
 * first (the split decides which are training's), then numbered */
static int load_tagged(dataset *d, const unsigned char *s, long len, const sg_config *c, bool whole, bool preset,
                       bool words_preset, char *err, size_t n)
{
    example *all = NULL;
    long count = 0, cap = 0, line = 0, seq_start = 1;
    /* per sequence: its tokens and tags as text, kept in one buffer */
    typedef struct { long first_line; int n; char **tok, **tag; } seq_text;
    seq_text *seqs = NULL;
    long n_seqs = 0, seqs_cap = 0;
    char *toks[4096], *tags[4096];
    int k = 0, rc = EXIT_OK;
    for (long i = 0; i <= len && rc == EXIT_OK;) {
        long start = i, end = i;
        while (end < len && s[end] != '\n')
            end++;
        i = end + 1, line++;
        bool blank = true;
        for (long j = start; j < end; j++)
            blank = blank && strchr(" \t\r", s[j]);
        if (blank || start >= len) {            /* a sequence ends */
            if (k > 0) {
                if (n_seqs == seqs_cap) {
                    seqs_cap = seqs_cap ? 2 * seqs_cap : 256;
                    seq_text *a = realloc(seqs, (size_t)seqs_cap * sizeof *a);
                    if (!a) {
                        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
                        break;
                    }
                    seqs = a;
                }
                seq_text *q = &seqs[n_seqs++];
                q->first_line = seq_start, q->n = k;
                q->tok = malloc((size_t)k * sizeof *q->tok), q->tag = malloc((size_t)k * sizeof *q->tag);
                if (!q->tok || !q->tag) {
                    rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
                    break;
                }
                memcpy(q->tok, toks, (size_t)k * sizeof *toks), memcpy(q->tag, tags, (size_t)k * sizeof *tags);
                k = 0;
            }
            seq_start = line + 1;
            if (start >= len)
                break;
            continue;
        }
        /* the token: the first field; the tag: the last */
        long a = start, b;
        while (a < end && strchr(" \t", s[a]))
            a++;
        for (b = a; b < end && !strchr(" \t\r", s[b]); b++)
            ;
        long e = end;
        while (e > b && strchr(" \t\r", s[e - 1]))
            e--;
        long t = e;
        while (t > b && !strchr(" \t", s[t - 1]))
            t--;
        if (t <= b || b - a >= 200 || e - t >= 48 || k == 4096) {
            rc = cli_fail(err, n, EXIT_DATA, "%s:%ld: expected a token and its tag (the tag at most 47 bytes, at "
                                     "most 4096 tokens a sequence)", d->path, line);
            break;
        }
        toks[k] = strndup((const char *)s + a, (size_t)(b - a)), tags[k] = strndup((const char *)s + t, (size_t)(e - t));
        if (!toks[k] || !tags[k]) {
            rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
            break;
        }
        k++;
    }
    /* examples whose tgt[0] is the sequence's number, then split */
    for (long q = 0; q < n_seqs && rc == EXIT_OK; q++) {
        int *src = calloc((size_t)seqs[q].n, sizeof *src), *tgt = calloc((size_t)seqs[q].n, sizeof *tgt);
        if (!src || !tgt || add_example(&all, &count, &cap, src, seqs[q].n, tgt, seqs[q].n)) {
            free(src), free(tgt);
            rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
            break;
        }
        tgt[0] = (int)q;
    }
    if (rc == EXIT_OK)
        rc = split_examples(d, all, count, cfg_real(c, "data.valid_fraction"), (uint64_t)cfg_int(c, "data.seed"), whole,
                            err, n);
    else
        free_examples(all, count);
    /* the vocabulary and the tags: the training split's, sorted */
    if (rc == EXIT_OK && !words_preset) {
        int wcap = 0;
        for (long e = 0; e < d->len[0] && rc == EXIT_OK; e++) {
            const seq_text *q = &seqs[d->ex[0][e].tgt[0]];
            for (int j = 0; j < q->n && rc == EXIT_OK; j++)
                if (add_word(d, q->tok[j], strlen(q->tok[j]), &wcap) != 0)
                    rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
        }
        sort_unique_words(d);
        d->V = d->n_words + 1;
    }
    if (rc == EXIT_OK && !preset) {
        long total = 0;
        for (long e = 0; e < d->len[0]; e++)
            total += seqs[d->ex[0][e].tgt[0]].n;
        char **sorted = malloc((size_t)(total + 1) * sizeof *sorted);
        long m = 0;
        for (long e = 0; sorted && e < d->len[0]; e++)
            for (int j = 0; j < seqs[d->ex[0][e].tgt[0]].n; j++)
                sorted[m++] = seqs[d->ex[0][e].tgt[0]].tag[j];
        if (sorted)
            qsort(sorted, (size_t)m, sizeof *sorted, cmp_str);
        for (long j = 0; sorted && j < m && rc == EXIT_OK; j++)
            if (class_id(d, sorted[j], true, d->path, err, n) < 0)
                rc = EXIT_DATA;
        free(sorted);
    }
    for (int sp = 0; sp < 2 && rc == EXIT_OK; sp++)
        for (long e = 0; e < d->len[sp] && rc == EXIT_OK; e++) {
            example *x = &d->ex[sp][e];
            const seq_text *q = &seqs[x->tgt[0]];
            for (int j = 0; j < q->n && rc == EXIT_OK; j++) {
                char where[600];
                snprintf(where, sizeof where, "%s:%ld", d->path, q->first_line + j);
                int id = class_id(d, q->tag[j], false, where, err, n);
                if (id < 0)
                    rc = EXIT_DATA;
                x->src[j] = data_word_id(d, q->tok[j], strlen(q->tok[j]));
                x->tgt[j] = id;
            }
        }
    for (long q = 0; q < n_seqs; q++) {
        for (int j = 0; j < seqs[q].n; j++)
            free(seqs[q].tok[j]), free(seqs[q].tag[j]);
        free(seqs[q].tok), free(seqs[q].tag);
    }
    for (int j = 0; rc != EXIT_OK && j < k; j++)
        free(toks[j]), free(tags[j]);
    free(seqs);
    return rc;
}

/* sources of examples idx as x (B,T) padded with 0, their lengths (at
 * least 1); returns T, the longest */
static int pad_sources(const dataset *d, int split, const int *idx, int B, int *x, int *len)
{
    int T = 1;
    for (int b = 0; b < B; b++)
        T = d->ex[split][idx[b]].src_len > T ? d->ex[split][idx[b]].src_len : T;
    for (int b = 0; b < B; b++) {
        const example *e = &d->ex[split][idx[b]];
        len[b] = e->src_len > 0 ? e->src_len : 1;
        for (int k = 0; k < T; k++)
            x[b * T + k] = k < e->src_len ? e->src[k] : 0;
    }
    return T;
}

int data_tag_batch(const dataset *d, int split, const int *idx, int B, int *x, int *len, int *y)
{
    int T = pad_sources(d, split, idx, B, x, len);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++)
            y[b * T + k] = k < d->ex[split][idx[b]].tgt_len ? d->ex[split][idx[b]].tgt[k] : -100;
    return T;
}

int data_class_batch(const dataset *d, int split, const int *idx, int B, int *x, int *len, int *y)
{
    int T = pad_sources(d, split, idx, B, x, len);
    for (int b = 0; b < B; b++)
        y[b] = d->ex[split][idx[b]].tgt[0];
    return T;
}

void data_fashion_batch(const dataset *d, int split, const int *idx, int B, float *x, int *y)
{
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * 784, d->ax[split] + (size_t)idx[b] * 784, 784 * sizeof *x);
        y[b] = d->label[split][idx[b]];
    }
}

int data_load(dataset *d, const sg_config *c, const char *vocab_hex, const char *path, data_use use, char *err,
              size_t n)
{
    return data_load_classes(d, c, vocab_hex, NULL, NULL, path, use, err, n);
}

int data_load_classes(dataset *d, const sg_config *c, const char *vocab_hex, const char *classes, const char *words,
                      const char *path, data_use use, char *err, size_t n)
{
    bool whole = use == USE_ALL_VALID;
    memset(d, 0, sizeof *d);
    if (classes && set_classes(d, classes, err, n) != 0)
        return EXIT_DATA;
    if (words && set_words(d, words, err, n) != 0)
        return EXIT_DATA;
    int preset_C = d->C;                  /* classes a checkpoint named: the labels map to them */
    memset(d->id_of, -1, sizeof d->id_of);
    d->vocab_from = vocab_hex ? "the checkpoint's vocabulary" : "data.vocab";
    d->kind = kind_of(cfg_str(c, "data.kind"));
    char hex[515];                        /* data.vocab, as the checkpoint would hold it */
    const char *given = cfg_str(c, "data.vocab");
    if (!vocab_hex && given[0]) {
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)given; *p && k < 512; p++, k += 2)
            snprintf(hex + k, 3, "%02x", *p);
        snprintf(hex + k, 3, "%s", d->kind == DATA_WORDS || d->kind == DATA_LINES ? "0a" : "");   /* items' boundary */
        vocab_hex = hex;
    }
    d->task = data_task(cfg_str(c, "data.kind"));
    err[0] = '\0';
    if (d->kind == DATA_ADDING)
        return generate_adding(d, c, err, n);
    if (d->kind == DATA_PARITY || d->kind == DATA_ORDER)
        return generate_classes(d, c, err, n);
    if (d->kind == DATA_FASHION)
        return load_fashion(d, c, err, n);
    if (d->kind == DATA_CAPTION) {       /* the images, each an item: its class name */
        int rc = load_fashion(d, c, err, n);
        bool seen[256] = {false};
        for (int k = 0; k < d->C; k++)
            for (const char *p = d->classes[k]; *p; p++)
                seen[(unsigned char)*p] = true;
        seen['\n'] = true;
        make_vocab(d, vocab_hex, seen);
        d->boundary = d->id_of['\n'];
        for (int sp = 0; sp < 2 && rc == EXIT_OK; sp++) {
            if (!(d->ex[sp] = calloc((size_t)d->len[sp] + 1, sizeof(example))))
                return cli_fail(err, n, EXIT_FAIL, "out of memory");
            for (long i = 0; i < d->len[sp]; i++) {
                const char *name = d->classes[d->label[sp][i]];
                int L = (int)strlen(name), *src = malloc((size_t)L * sizeof *src), *tgt = malloc(sizeof *tgt);
                if (!src || !tgt) {
                    free(src);
                    free(tgt);
                    return cli_fail(err, n, EXIT_FAIL, "out of memory");
                }
                for (int k = 0; k < L; k++)
                    src[k] = d->id_of[(unsigned char)name[k]];
                *tgt = (int)i;
                d->ex[sp][i] = (example){.src = src, .tgt = tgt, .src_len = L, .tgt_len = 1};
            }
        }
        return rc;
    }
    if (d->kind == DATA_WORDLANG || d->kind == DATA_WORDGEN) {
        if (vocab_hex)
            make_vocab(d, vocab_hex, NULL);
        snprintf(d->path, sizeof d->path, "%s", dict_dir());
        int rc = use == USE_VOCAB ? EXIT_OK : load_wordlang(d, c, preset_C > 0, err, n);
        d->boundary = d->kind == DATA_WORDGEN ? d->id_of['\n'] : -1;
        return rc;
    }
    if (d->kind == DATA_COPY || d->kind == DATA_REVERSE || d->kind == DATA_SORT)
        return generate_task(d, c, err, n);
    if (!path)
        path = cfg_str(c, "data.path");
    if (!path[0]) {
        if (d->kind != DATA_TEXT && d->kind != DATA_SEGMENT) {
            char where[600];
            cfg_where(c, "data.kind", where, sizeof where);
            return cli_fail(err, n, EXIT_CONFIG, "%s: data.path: %s data needs a file", where, data_kind_names[d->kind]);
        }
        static char bundled[sizeof d->path];
        snprintf(bundled, sizeof bundled, "%s/genesis.txt", data_dir());
        path = bundled;
    }
    snprintf(d->path, sizeof d->path, "%s", path);
    if (d->kind == DATA_TAGGED) {             /* words, not bytes: the vocabulary is the training split's */
        if (use == USE_VOCAB)
            return d->n_words ? EXIT_OK : (snprintf(err, n, "%s: no word vocabulary", path), EXIT_DATA);
        long tlen;
        unsigned char *text = read_all(path, &tlen, err, n);
        if (!text)
            return EXIT_DATA;
        int rc = load_tagged(d, text, tlen, c, whole, preset_C > 0, d->n_words > 0, err, n);
        free(text);
        return rc;
    }
    if (use == USE_VOCAB && vocab_hex && d->n_words) {       /* word level: the checkpoint's words are the vocabulary */
        d->V = d->n_words + 1;
        return EXIT_OK;
    }
    if (use == USE_VOCAB && vocab_hex) {
        make_vocab(d, vocab_hex, NULL);
        d->boundary = d->kind == DATA_PAIRS || d->kind == DATA_TEXT ? -1 : d->id_of['\n'];
        return EXIT_OK;
    }
    long len;
    unsigned char *s = read_all(path, &len, err, n);
    if (!s)
        return EXIT_DATA;
    if (d->kind != DATA_TEXT) {            /* items and pairs: CRLF line ends read as LF */
        long k = 0;
        for (long i = 0; i < len; i++)
            if (!(s[i] == '\r' && i + 1 < len && s[i + 1] == '\n'))
                s[k++] = s[i];
        len = k;
    }
    bool seen[256] = {false};
    for (long i = 0; i < len; i++)
        seen[s[i]] = true;
    if (d->kind == DATA_WORDS)
        seen[' '] = seen['\t'] = seen['\r'] = seen['\f'] = seen['\v'] = false;
    if (d->kind == DATA_PAIRS)
        seen['\t'] = false;
    if (d->kind == DATA_SEGMENT)           /* characters: the spaces are what is to be found */
        seen[' '] = seen['\t'] = seen['\r'] = seen['\f'] = seen['\v'] = false;
    if (d->kind == DATA_LABELLED) {        /* the texts' bytes only: labels are classes */
        memset(seen, 0, sizeof seen);
        for (long i = 0, tab = 0; i < len; i++) {
            tab = s[i] == '\n' ? 0 : tab || s[i] == '\t';
            seen[s[i]] |= tab && s[i] != '\t';
        }
        seen['\n'] = false;
    }
    if (d->kind != DATA_TEXT)
        seen['\n'] = d->kind != DATA_PAIRS && d->kind != DATA_LABELLED && d->kind != DATA_SEGMENT;   /* items' ends */
    bool word_level = d->kind == DATA_LABELLED && !strcmp(cfg_str(c, "data.level"), "word");
    int n_words = d->n_words;
    make_vocab(d, word_level ? NULL : vocab_hex, seen);     /* words: the bytes only carry the text to its words */
    if (n_words)
        d->V = n_words + 1;
    d->boundary = d->id_of['\n'];
    int rc = d->kind == DATA_TEXT ? load_text(d, s, len, cfg_real(c, "data.valid_fraction"),
                                              (uint64_t)cfg_int(c, "data.seed"), whole, err, n)
           : d->kind == DATA_LABELLED ? load_labelled(d, s, len, c, whole, preset_C > 0, d->n_words > 0, err, n)
           : d->kind == DATA_SEGMENT  ? load_segment(d, s, len, c, whole, err, n)
                                      : load_items(d, s, len, c, whole, err, n);
    free(s);
    if (rc == EXIT_OK && d->kind != DATA_TEXT && d->kind != DATA_PAIRS && d->kind != DATA_LABELLED &&
        d->kind != DATA_SEGMENT && d->boundary < 0)
        return cli_fail(err, n, EXIT_DATA, "%s: the checkpoint's vocabulary lacks the item boundary '\\n'", path);
    return rc;
}

int data_max_len(const dataset *d)
{
    int m = 0;
    for (int s = 0; s < 2; s++)
        for (long i = 0; d->ex[s] && i < d->len[s]; i++) {
            const example *e = &d->ex[s][i];
            m = e->src_len > m ? e->src_len : m;
            m = e->tgt_len > m ? e->tgt_len : m;
        }
    return m;
}

int data_lm_batch(const dataset *d, int split, const int *idx, int B, int max_T, int *x, int *y)
{
    int T = 1;
    for (int b = 0; b < B; b++) {
        int L = d->ex[split][idx[b]].src_len + 1;
        T = L > T ? L : T;
    }
    T = T < max_T ? T : max_T;
    for (int b = 0; b < B; b++) {
        const example *e = &d->ex[split][idx[b]];
        for (int k = 0; k < T; k++) {
            x[b * T + k] = k == 0 ? d->boundary : k <= e->src_len ? e->src[k - 1] : d->boundary;
            y[b * T + k] = k < e->src_len ? e->src[k] : k == e->src_len ? d->boundary : -100;
        }
    }
    return T;
}

int data_s2s_batch(const dataset *d, int split, const int *idx, int B, int *src, int *src_len, int *S, int *tin,
                   int *tout)
{
    int s_max = 1, t_max = 1, SOS = d->V, EOS = d->V + 1;
    for (int b = 0; b < B; b++) {
        const example *e = &d->ex[split][idx[b]];
        s_max = e->src_len > s_max ? e->src_len : s_max;
        t_max = e->tgt_len + 1 > t_max ? e->tgt_len + 1 : t_max;
    }
    for (int b = 0; b < B; b++) {
        const example *e = &d->ex[split][idx[b]];
        src_len[b] = e->src_len;
        for (int k = 0; k < s_max; k++)
            src[b * s_max + k] = k < e->src_len ? e->src[k] : 0;
        for (int k = 0; k < t_max; k++) {
            tout[b * t_max + k] = k < e->tgt_len ? e->tgt[k] : k == e->tgt_len ? EOS : -100;
            tin[b * t_max + k] = k == 0 ? SOS : k <= e->tgt_len ? e->tgt[k - 1] : EOS;
        }
    }
    *S = s_max;
    return t_max;
}

void data_add_batch(const dataset *d, int split, const int *idx, int B, float *x, float *y)
{
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * d->T * 2, d->ax[split] + (size_t)idx[b] * d->T * 2, (size_t)d->T * 2 * sizeof *x);
        y[b] = d->ay[split][idx[b]];
    }
}
