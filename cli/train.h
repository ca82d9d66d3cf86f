/*
 * train.h - the commands of the seqgrad tool on a run: train and resume
 * (cli/train.c), sample, translate and eval (cli/infer.c). A run folder
 * holds config.yaml, checkpoint.safetensors, metrics.csv and the plots. A
 * checkpoint holds everything the next step depends on (parameters,
 * optimizer state, carried hidden state, rng state, data position), so a
 * resumed run continues bit for bit.
 */
#ifndef SEQGRAD_CLI_TRAIN_H
#define SEQGRAD_CLI_TRAIN_H

#include <stdio.h>

#include "config.h"

typedef struct {
    bool quiet;            /* no progress output (tests) */
    long stop_after;       /* > 0: stop (with a checkpoint) after this step, as if interrupted */
    FILE *log;             /* progress output; NULL = stdout */
    bool overwrite;        /* train: start again in a run folder that holds a run */
} train_opts;

/* A new run from a validated config (run_dir is created). */
int train_run(const sg_config *c, const train_opts *o, char *err, size_t n);
/* Continues the run in run_dir from its checkpoint. */
/* compare.cells and compare.seeds: trains each cell with each seed, one
 * after the other, in train.run_dir/CELL-seedN (seq2seq: as model.cell),
 * then compares them there (compare.svg, compare.html, a table). */
int train_compare(const sg_config *c, const train_opts *o, char *err, size_t n);
int train_resume(const char *run_dir, const train_opts *o, char *err, size_t n);
/* Samples `length` characters after `prompt` from a checkpoint; a model
 * that generates from a vector (wordgen) starts each item from condition
 * (one of its classes; NULL for the others). */
int train_sample(const char *checkpoint, const char *prompt, const char *condition, int length, double temperature,
                 unsigned long seed, FILE *out, char *err, size_t n);

typedef struct {
    int beam;                  /* 1: greedy */
    double length_penalty;     /* beam: score / length^alpha */
    int max_len;               /* > 0: longest output (default: the data's longest + 2) */
    const char *input;         /* one source; NULL: each line of the input stream */
    const char *attention_svg; /* NULL, or where the first source's attention heatmap goes */
} translate_opts;

/* Decodes sources with the seq2seq model in checkpoint, one output line per
 * source line. */
int train_translate(const char *checkpoint, const translate_opts *o, FILE *in, FILE *out, char *err, size_t n);

/* Builds the configured model at a tiny size (hidden 4, batch 2, 5 steps,
 * no dropout) in f64 and gradient-checks every parameter on the first
 * characters of the data; prints a table. EXIT_OK if all pass. */
int train_gradcheck(const sg_config *c, FILE *out, char *err, size_t n);
/* The model in checkpoint on a whole file of its kind of data (text,
 * words, lines or pairs), or on its validation split (data NULL): loss and
 * perplexity, exact-match accuracy (seq2seq) or MSE and accuracy (adding). */
/* A classifier's label for each line of in (labelled: the text after a TAB
 * if there is one), one per line to out. */
int train_predict(const char *checkpoint, FILE *in, FILE *out, char *err, size_t n);
/* A classifier's per-class precision, recall, F1 and confusion matrix on
 * the validation split, printed. */
int train_eval(const char *checkpoint, const char *data, FILE *out, char *err, size_t n);

#endif
