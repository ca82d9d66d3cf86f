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

static const char *kinds[] = {"text", "words", "lines", "pairs", "copy", "reverse", "sort", "adding"};
static const char symbols[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static data_kind kind_of(const char *kind)
{
    for (int k = 0; k < 8; k++)
        if (!strcmp(kind, kinds[k]))
            return (data_kind)k;
    return DATA_TEXT;
}

task_kind data_task(const char *kind)
{
    static const task_kind task[] = {TASK_STREAM, TASK_ITEMS, TASK_ITEMS, TASK_S2S,
                                     TASK_S2S,    TASK_S2S,   TASK_S2S,   TASK_REGRESS};
    return task[kind_of(kind)];
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
        free(d->ids[s]), free(d->ax[s]), free(d->ay[s]);
        for (long i = 0; d->ex[s] && i < d->len[s]; i++)
            free(d->ex[s][i].src), free(d->ex[s][i].tgt);
        free(d->ex[s]);
    }
    memset(d, 0, sizeof *d);
}

static unsigned char *read_all(const char *path, long *len, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return snprintf(err, n, "%s: cannot open: %s", path, strerror(errno)), NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    unsigned char *s = *len >= 0 ? malloc((size_t)*len + 1) : NULL;
    if (!s || fread(s, 1, (size_t)*len, f) != (size_t)*len) {
        fclose(f), free(s);
        return snprintf(err, n, "%s: cannot read", path), NULL;
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
            return snprintf(err, n, "out of memory"), EXIT_FAIL;
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
        return snprintf(err, n, "%s: %ld examples are too few", d->path, count), EXIT_DATA;
    }
    int *perm = malloc((size_t)count * sizeof *perm);
    d->ex[0] = malloc((size_t)(count - nv + 1) * sizeof(example));
    d->ex[1] = malloc((size_t)nv * sizeof(example));
    if (!perm || !d->ex[0] || !d->ex[1]) {
        free(perm), free_examples(all, count);
        return snprintf(err, n, "out of memory"), EXIT_FAIL;
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
            return snprintf(err, n, "%s:%ld: expected source<TAB>target, each not empty", d->path, line), EXIT_DATA;
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
        return snprintf(err, n, "%s: data.min_len: %d is more than data.max_len %d", where, lo, hi), EXIT_CONFIG;
    }
    double space = 0;
    for (int L = lo; L <= hi; L++)
        space += pow(K, L);
    if (space < 2.0 * (double)total) {
        cfg_where(c, "data.train_size", where, sizeof where);
        return snprintf(err, n, "%s: data.train_size: %ld + %ld distinct sources need at least twice as many possible "
                        "ones; %d symbols and lengths %d-%d give %.0f", where, ntrain, nvalid, K, lo, hi, space),
               EXIT_CONFIG;
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
    if (!seen || !d->ex[0] || !d->ex[1])
        return free(seen), snprintf(err, n, "out of memory"), EXIT_FAIL;
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
            return snprintf(err, n, "out of memory"), EXIT_FAIL;
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
            return snprintf(err, n, "out of memory"), EXIT_FAIL;
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

int data_load(dataset *d, const sg_config *c, const char *vocab_hex, const char *path, data_use use, char *err,
              size_t n)
{
    bool whole = use == USE_ALL_VALID;
    memset(d, 0, sizeof *d);
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
    if (d->kind >= DATA_COPY)
        return generate_task(d, c, err, n);
    if (!path)
        path = cfg_str(c, "data.path");
    if (!path[0]) {
        if (d->kind != DATA_TEXT) {
            char where[600];
            cfg_where(c, "data.kind", where, sizeof where);
            return snprintf(err, n, "%s: data.path: %s data needs a file", where, kinds[d->kind]), EXIT_CONFIG;
        }
        static char bundled[sizeof d->path];
        snprintf(bundled, sizeof bundled, "%s/genesis.txt", data_dir());
        path = bundled;
    }
    snprintf(d->path, sizeof d->path, "%s", path);
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
    if (d->kind != DATA_TEXT)
        seen['\n'] = d->kind != DATA_PAIRS;     /* items: '\n' marks their ends */
    make_vocab(d, vocab_hex, seen);
    d->boundary = d->id_of['\n'];
    int rc = d->kind == DATA_TEXT ? load_text(d, s, len, cfg_real(c, "data.valid_fraction"),
                                              (uint64_t)cfg_int(c, "data.seed"), whole, err, n)
                                  : load_items(d, s, len, c, whole, err, n);
    free(s);
    if (rc == EXIT_OK && d->kind != DATA_TEXT && d->kind != DATA_PAIRS && d->boundary < 0)
        return snprintf(err, n, "%s: the checkpoint's vocabulary lacks the item boundary '\\n'", path), EXIT_DATA;
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
