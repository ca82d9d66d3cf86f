/*
 * run.h - one run of the seqgrad tool, shared by its commands: the config,
 * the dataset, the model the two call for, the optimizer, and the
 * checkpoint that holds all of it (cli/model.c).
 *
 *   data (data.h)          model.kind            model
 *   text, words, lines     a cell                embedding -> recurrent stack -> linear (LM)
 *                          transformer           decoder-only transformer LM
 *   pairs, copy, reverse,  seq2seq               RNN encoder-decoder with attention
 *   sort                   transformer           transformer encoder-decoder
 *   adding                 a cell                recurrent stack -> linear on the last h_T
 */
#ifndef SEQGRAD_CLI_RUN_H
#define SEQGRAD_CLI_RUN_H

#include <seqgrad/seqgrad.h>

#include "config.h"
#include "data.h"

typedef enum { MODEL_RNN_LM, MODEL_TLM, MODEL_S2S, MODEL_TS2S, MODEL_REGRESS, MODEL_CLASSIFY, MODEL_TAG } model_kind;
typedef enum { POOL_LAST, POOL_MEAN, POOL_MAX, POOL_ATTENTION } pool_kind;
extern const char *const pool_names[];        /* "last", "mean", "max", "attention" */

typedef struct {
    sg_config cfg;
    dataset d;
    model_kind model;
    sg_params *ps;
    sg_transformer_lm lm;
    sg_embedding emb;
    sg_rnn rnn;
    sg_linear out;
    sg_linear cond;           /* generation from a vector: condition -> initial state of every layer, or input */
    bool conditioned, cond_input;   /* cond_input: fed at every step (model.condition: input) */
    sg_tensor *cond_in;       /* input mode: this forward's condition vectors (B,H), a tape tensor; else NULL */
    sg_tensor *cond_vec;      /* the conditions run_cond_states read last (B,K): one-hot classes or pixels, a tape tensor */
    pool_kind pool;           /* classifiers: how the sequence is summarised */
    sg_tensor *query;         /* classifiers, attention pooling: the learned query (dirs*H) */
    sg_seq2seq s2s;
    sg_transformer_s2s ts2s;
    sg_optim *opt;
    sg_schedule sched;
    sg_tensor *carry[SG_CELL_MAX_STATES];  /* text, recurrent model: each state carried across batches (L,B,H) */
    sg_tensor *shard_carry[SG_CELL_MAX_STATES];  /* train.shards > 1: one shard's rows of them (L,B/shards,H) */
    int n_carry;
    sg_cell_def *own_cell;    /* the config's cell: section, compiled (NULL if none) */
    bool replica;             /* a copy for another thread (run_replica): data, perm, carry, own_cell are the original's */
    bool shared_batch;        /* a replica of a text run: bx and by are the original's too */
    const char *classes;      /* a classifier's classes from its checkpoint, for run_build (or NULL) */
    const char *words;        /* a word tagger's vocabulary from its checkpoint, for run_build (or NULL) */
    sg_rng rng;
    long step, pos;           /* pos: text position of the streams */
    int B, T, H, L;
    int max_out;              /* seq2seq: longest output decoded */
    int *perm;                /* the order of this epoch's training examples */
    long perm_epoch;
    int *bx, *by, *bsrc, *blen;  /* batch buffers */
    float *fx, *fy;
} run;

/* What evaluation measured: loss (mean per target token, or MSE), and
 * accuracy (seq2seq: share of exactly right greedy outputs; adding: share
 * within 0.04 of the target); NAN where it does not apply. */
typedef struct {
    double loss, accuracy;
    long examples, tokens;
    double f1;                /* taggers: span (word) F1; NAN elsewhere */
} eval_result;

/* A classifier's logits (B,C) for a batch of byte sequences x (B,T) with
 * lengths, or (fashion) real-valued rows xf (B,T,F); weights (B,T) gets
 * the attention pooling's weights when not NULL. */
sg_tensor *run_classify(run *r, sg_tape *t, const int *x, const float *xf, const int *len, int B, int T, sg_rng *rng,
                        sg_tensor **weights);
/* A conditioned model's initial states for B conditions: h0 = tanh(W c + b)
 * reshaped to (L,B,H), other states zero; c = onehot(cond[b]) (wordgen, a
 * class) or the pixels of image cond[b] of split (caption). With
 * model.condition: input, the states are zero and tanh(W c + b) (B,H) goes
 * to r->cond_in, which run_lm_logits joins to every step's input (the
 * caller sets it back to NULL after the forward). */
sg_status run_cond_states(run *r, sg_tape *t, int split, const int *cond, int B, sg_tensor **h0);
/* A tagger's logits (B,T,C) for byte sequences x (B,T) with lengths. */
sg_tensor *run_tag(run *r, sg_tape *t, const int *x, const int *len, int B, int T, sg_rng *rng);
/* The batch of examples idx of a classifier's split: logits (B,C), the
 * classes in r->by (loss.c; eval.c reads it too). */
sg_tensor *run_classify_batch(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng);
/* How many of y[0..n) are targets (not -100). */
long run_count_targets(const int *y, long n);
/* Per-class counts of a classifier on the validation split: confusion[true * C + predicted]. */
int run_confusion(run *r, sg_tape *t, long *confusion);

/* Reads the data and builds the model, the optimizer and the schedule
 * from r->cfg (vocab_hex, path, use: as data_load). */
int run_build(run *r, const char *vocab_hex, const char *path, data_use use, char *err, size_t n);
void run_free(run *r);
/* The config's cell: section compiled (the caller frees it with
 * sg_cell_def_free); EXIT_CONFIG with file:line:col in err if it does not. */
int run_compile_cell(const sg_config *c, sg_cell_def **out, char *err, size_t n);
/* A finished build of the run of a checkpoint file: the config, the
 * vocabulary and the state all come from its metadata (checked: numbers in
 * range, the vocabulary's hex), so the file alone is enough; data from path
 * instead of data.path if not NULL. EXIT_DATA for a refused checkpoint. */
int run_open_checkpoint(run *r, const char *checkpoint, const char *path, data_use use, char *err, size_t n);
/* Same, for run_dir/checkpoint.safetensors. */
int run_open(run *r, const char *run_dir, const char *path, data_use use, char *err, size_t n);
int run_save(run *r, char *err, size_t n);
/* train.run_dir/config.yaml (every key, defaults included), the folder
 * made first; a folder that holds a checkpoint is refused unless
 * overwrite (EXIT_USAGE, naming seqgrad resume). */
int run_write_config(const run *r, bool overwrite, char *err, size_t n);

/* A copy of r's model for another thread computing shards: its own
 * parameters (r's values: run_replica_sync), tape-side buffers and shard
 * state; r's data, example order, carried state (each thread touches only
 * its shards' rows) and, for text, r's batch. run_free frees only its own. */
int run_replica(run *rep, const run *r, char *err, size_t n);
/* Before a step: r's parameter values, step and text position. */
void run_replica_sync(run *rep, const run *r);

/* Batches in one pass over the training split (at least 1). */
long run_steps_per_epoch(const run *r);
/* Training steps of the run (train.steps, or train.epochs passes). */
long run_total_steps(const run *r);
/* Sets up training batch r->step: the order of this epoch's examples, or
 * the streams' next window of text (advancing the position; the carried
 * state cleared when an epoch starts again). */
void run_batch_begin(run *r);
/* The loss of shard s of `shards` equal shards of that batch: examples (or
 * streams) [s B/shards, (s+1) B/shards), dropout drawn from rng. A
 * recurrent LM starts from those rows of the carried state and leaves its
 * final state in next; *tokens: the target tokens in the shard. */
sg_tensor *run_shard_loss(run *r, sg_tape *t, int s, int shards, sg_rng *rng, long *tokens, sg_tensor **next);
/* Keeps shard s's final state (next) in its rows of the carried state. */
void run_shard_keep_state(run *r, int s, int shards, sg_tensor **next);
/* The loss of examples idx[0..B) of split (no dropout when rng is NULL:
 * gradcheck, evaluation); *tokens (if not NULL): the targets in it. */
sg_tensor *run_examples_loss(run *r, sg_tape *t, int split, const int *idx, int B, sg_rng *rng, long *tokens);
/* The adding problem's predictions (B,1) for inputs x (B,T,2). */
sg_tensor *run_regress(run *r, sg_tape *t, const float *x, int B, sg_rng *rng);
/* Loss and accuracy on the validation split. */
eval_result run_evaluate(run *r, sg_tape *t);

/* LM logits (B,T,V) of ids x; a recurrent LM starts from state (NULL:
 * zeros) and leaves its final state in next (may be NULL). */
sg_tensor *run_lm_logits(run *r, sg_tape *t, const int *x, int B, int T, sg_tensor **state, sg_tensor **next,
                         sg_rng *rng);
/* Greedy decoding of B sources at once (src (B,S), src_len): out (B,max_out)
 * gets each output without its end token, out_len its length. Returns 0,
 * or -1 if memory ran out or the model failed (the tape says why). */
int run_greedy(run *r, sg_tape *t, const int *src, const int *src_len, int B, int S, int *out, int *out_len);
/* Attention weights (out_len+1, S) of the RNN seq2seq reading src and
 * teacher-forced on out (its end token last); NULL for other models.
 * The caller frees the result. */
double *run_attention(run *r, sg_tape *t, const int *src, int S, const int *out, int out_len);
/* The same drawn as a heatmap (plot_attention) at path; -1 if the model
 * has no such attention or the file cannot be written. */
int run_attention_svg(run *r, sg_tape *t, const char *path, const int *src, int S, const int *out, int out_len,
                      const char *title);
/* How token id shows in a picture or on a terminal: the byte, or a name
 * for '\n', ' ', the start and the end token. */
const char *run_token_text(const run *r, int id, char buf[8]);

#endif
