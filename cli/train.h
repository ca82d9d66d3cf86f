/*
 * train.h - the training run behind `seqgrad train` and `seqgrad resume`:
 * a character-level recurrent language model trained with truncated BPTT,
 * with a run folder holding config.yaml, checkpoint.safetensors,
 * metrics.csv and loss.svg. A checkpoint holds everything the next step
 * depends on (parameters, optimizer state, carried hidden state, rng state,
 * data position), so a resumed run continues bit for bit.
 */
#ifndef SEQGRAD_CLI_TRAIN_H
#define SEQGRAD_CLI_TRAIN_H

#include <stdio.h>

#include "config.h"

typedef struct {
    bool quiet;            /* no progress output (tests) */
    long stop_after;       /* > 0: stop (with a checkpoint) after this step, as if interrupted */
    FILE *log;             /* progress output; NULL = stdout */
} train_opts;

/* Exit codes of the tool, documented in `seqgrad --help`. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3, EXIT_DATA = 4, EXIT_INTERRUPTED = 130 };

/* A new run from a validated config (run_dir is created). */
int train_run(const sg_config *c, const train_opts *o, char *err, size_t n);
/* Continues the run in run_dir from its checkpoint. */
int train_resume(const char *run_dir, const train_opts *o, char *err, size_t n);
/* Samples `length` characters after `prompt` from a checkpoint. */
int train_sample(const char *checkpoint, const char *prompt, int length, double temperature, unsigned long seed,
                 FILE *out, char *err, size_t n);

/* Builds the configured model at a tiny size (hidden 4, batch 2, 5 steps,
 * no dropout) in f64 and gradient-checks every parameter on the first
 * characters of the data; prints a table. EXIT_OK if all pass. */
int train_gradcheck(const sg_config *c, FILE *out, char *err, size_t n);
/* Loss and perplexity of the model in checkpoint on a whole text file. */
int train_eval(const char *checkpoint, const char *data, FILE *out, char *err, size_t n);

#endif
