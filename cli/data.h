/*
 * data.h - the datasets of the seqgrad tool, each split into a training
 * and a validation part by data.seed:
 *
 *   text     one character stream (language model, truncated BPTT). The
 *            text is cut into 20 equal blocks; round(20 x valid_fraction)
 *            of them, drawn by the seed, are the validation text.
 *   words    items: the whitespace-separated words of a file      (item
 *   lines    items: the non-empty lines of a file                  language
 *            a seeded shuffle puts valid_fraction of the items in  models)
 *            validation.
 *   pairs    source<TAB>target lines of a file (sequence to sequence);
 *            split as items.
 *   copy, reverse, sort
 *            generated sequence-to-sequence tasks over data.symbols
 *            symbols ("0123456789abc..."), lengths min_len..max_len; the
 *            target is the source, the source reversed, or sorted.
 *            train_size + valid_size distinct sources are drawn with the
 *            seed, so no validation source is seen in training.
 *   adding   the adding problem (Hochreiter & Schmidhuber 1997; Le et al.
 *            2015): seq_len steps of (u_t, m_t), u_t uniform in [0,1],
 *            m_t = 1 at one step of each half, else 0; the target is the
 *            sum of the two marked u_t. A regression.
 *
 * Sequence classification (many-to-one), each example a class:
 *   labelled label<TAB>text lines of a file, character level; classes are
 *            the labels of the training split (a validation label never
 *            seen in training is an error).
 *   wordlang which language a word is, from Debian's word lists in
 *            /usr/share/dict (wamerican, wngerman, wfrench, witalian,
 *            wspanish, ... whichever are installed, at least two):
 *            train_size and valid_size distinct words of each, lowercased.
 *   fashion  sequential Fashion-MNIST (dataset-fashion-mnist): each 28x28
 *            image read row by row as 28 steps of 28 pixels in [0,1], or
 *            pixel by pixel (data.by_pixel: 784 steps of 1); train_size
 *            images of the training set, valid_size of the test set.
 *   parity   strings of 0 and 1, lengths min_len..max_len: even or odd.
 *   order    the temporal order problem (Hochreiter and Schmidhuber 1997):
 *            seq_len symbols of a-d with X or Y at one step of the first
 *            and one of the second half; the class is the pair (XX, XY,
 *            YX, YY). Generated tasks draw distinct examples by data.seed.
 *
 * Generation from a vector (one-to-many):
 *   wordgen  the words of wordlang as items to generate, each with its
 *            language as the condition (a class; tgt[0]).
 *   caption  Fashion-MNIST images (as fashion) captioned with their class
 *            name; the condition is the image's 784 pixels (tgt[0]: its
 *            index in the split's images).
 *
 * Sequence labelling (many-to-many, synced), a tag per step:
 *   segment  word segmentation: each line of data.path (empty: the bundled
 *            text) with its spaces removed, every character tagged B
 *            (starts a word) or I; lines split as items, cut at seq_len.
 *   tagged   CoNLL-style files: a token and its tag per line (separated by
 *            a TAB or spaces; the tag is the last field), a blank line
 *            between sequences; word level: the tokens of the training
 *            split are the vocabulary (id 0 is any other token), its tags
 *            the classes.
 *
 * Everything but the adding problem is bytes: ids number the bytes that
 * occur (or the vocabulary a checkpoint names). Item models see '\n'
 * before and after each item, which must not occur in an item.
 */
#ifndef SEQGRAD_CLI_DATA_H
#define SEQGRAD_CLI_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef enum {
    DATA_TEXT, DATA_WORDS, DATA_LINES, DATA_PAIRS, DATA_COPY, DATA_REVERSE, DATA_SORT, DATA_ADDING,
    DATA_LABELLED, DATA_WORDLANG, DATA_FASHION, DATA_PARITY, DATA_ORDER, DATA_SEGMENT, DATA_WORDGEN, DATA_CAPTION, DATA_TAGGED,
} data_kind;
extern const char *const data_kind_names[];   /* "text", "words", ... indexed by data_kind */
typedef enum { TASK_STREAM, TASK_ITEMS, TASK_S2S, TASK_REGRESS, TASK_CLASSIFY, TASK_TAG } task_kind;

#define DATA_MAX_CLASSES 64

/* What is read: both splits (training), everything as the validation split
 * (evaluating a file), or only the vocabulary (sampling, translating: the
 * file need not be there any more; generated tasks are generated anyway). */
typedef enum { USE_SPLITS, USE_ALL_VALID, USE_VOCAB } data_use;

/* one example: src (an item, or a source), tgt (a target; NULL for items;
 * for classification the class, tgt_len 1) */
typedef struct {
    int *src, *tgt;
    int src_len, tgt_len;
} example;

typedef struct {
    data_kind kind;
    task_kind task;
    char path[512];                /* the file read, or "" */
    int V;                         /* vocabulary (0 for the adding problem) */
    unsigned char vocab[256];
    int id_of[256];                /* -1: not in the vocabulary */
    int boundary;                  /* id of '\n' for items */
    const char *vocab_from;        /* where a given vocabulary came from, for messages */
    /* split 0 = train, 1 = validation */
    int *ids[2];                   /* text: the two streams */
    long len[2];                   /* text: characters; others: examples */
    example *ex[2];                /* items and pairs */
    float *ax[2], *ay[2];          /* adding: inputs (N,T,2) and targets (N); fashion: (N,T,F) */
    int T, F;                      /* adding, fashion: steps and features per step */
    int *label[2];                 /* fashion: the class of each image */
    char **words;                  /* tagged: the word vocabulary, sorted; id = index + 1 (0: unknown) */
    int n_words;
    int C;                         /* classification: classes, named below */
    char classes[DATA_MAX_CLASSES][48];
} dataset;

/* Reads or generates the dataset the config names. vocab_hex: the
 * vocabulary a checkpoint holds (NULL: make it from the data; USE_VOCAB
 * needs it); path: a file to use instead of data.path. Returns EXIT_OK, or
 * EXIT_DATA / EXIT_CONFIG with the reason in err. */
int data_load(dataset *d, const sg_config *c, const char *vocab_hex, const char *path, data_use use, char *err,
              size_t n);
/* data_load for a model of a checkpoint: classes are the ones it names
 * ('\n'-joined, in the order of its outputs) and the labels of the data
 * map to them; words (tagged) its word vocabulary, '\n'-joined in order.
 * Either may be NULL. EXIT_DATA with the reason if a list is malformed. */
int data_load_classes(dataset *d, const sg_config *c, const char *vocab_hex, const char *classes, const char *words,
                      const char *path, data_use use, char *err, size_t n);
/* tagged: the word vocabulary '\n'-joined (for the checkpoint); the bytes
 * needed (n = 0 to measure). */
size_t data_words_str(const dataset *d, char *out, size_t n);
/* tagged: the id of a word (0 if not in the vocabulary). */
int data_word_id(const dataset *d, const char *word, size_t len);
void data_free(dataset *d);
/* The folder of the bundled data (genesis.txt, names.txt): $SEQGRAD_DATA_DIR,
 * else the installed data directory if it holds them, else the source tree's. */
const char *data_dir(void);

task_kind data_task(const char *kind);
/* Whether the kind reads data.path (text, words, lines, pairs, labelled). */
bool data_from_file(data_kind kind);

/* A permutation of 0..n-1 drawn from (seed, epoch): the order of the
 * training examples in that epoch. */
void data_shuffle(int *perm, long n, uint64_t seed, long epoch);

/* Item LM batch from examples idx[0..B): x = '\n' item, y = item '\n',
 * both (B,T) with T the longest + 1 (at most max_T; longer items are cut);
 * x is padded with '\n', y with -100. Returns T. */
int data_lm_batch(const dataset *d, int split, const int *idx, int B, int max_T, int *x, int *y);
/* Seq2seq batch: src (B,S) padded with 0 and src_len (B); tgt_in = SOS y,
 * tgt_out = y EOS, (B,T) with -100 padding; SOS = V, EOS = V + 1.
 * Returns T and sets *S. */
int data_s2s_batch(const dataset *d, int split, const int *idx, int B, int *src, int *src_len, int *S, int *tin,
                   int *tout);
/* Classification batch of byte sequences: x (B,T) padded with 0, len (B),
 * y (B) the classes. Returns T. Real-valued (fashion): x (B,T,F) floats. */
int data_class_batch(const dataset *d, int split, const int *idx, int B, int *x, int *len, int *y);
void data_fashion_batch(const dataset *d, int split, const int *idx, int B, float *x, int *y);
/* Tagging batch: x (B,T) padded with 0, len (B), y (B,T) the tags, -100
 * past each length. Returns T. */
int data_tag_batch(const dataset *d, int split, const int *idx, int B, int *x, int *len, int *y);
/* The class named name, or -1. */
int data_class_of(const dataset *d, const char *name);
/* Classes as one string, names joined by '\n' (a checkpoint's metadata). */
void data_classes_str(const dataset *d, char *out, size_t n);

/* Adding problem batch: x (B,T,2), y (B). */
void data_add_batch(const dataset *d, int split, const int *idx, int B, float *x, float *y);

/* The longest source and target (items: the longest item) of both splits. */
int data_max_len(const dataset *d);

/* Text to ids; returns the count, or -(1 + offset) of the first byte not
 * in the vocabulary. */
long data_encode(const dataset *d, const char *s, long len, int *ids);

#endif
