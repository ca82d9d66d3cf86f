/*
 * seqgrad/optim.h - optimizers, gradient clipping and learning-rate
 * schedules over an sg_params collection. Update rules are PyTorch's
 * (torch.optim), so a run can be compared step for step:
 *
 *   SGD:     g = dp + wd p;  b = mu b + g (b = g at step 1);
 *            p -= lr (nesterov ? g + mu b : b)      (plain g when mu = 0)
 *   Adam:    g = dp + wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *            p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW:   p *= 1 - lr wd, then Adam with wd = 0
 *   RMSProp: g = dp + wd p;  v = a v + (1-a) g^2;  u = g / (sqrt(v) + eps)
 *            p -= lr u, or with momentum: b = mu b + u, p -= lr b
 *   Adagrad: g = dp + wd p;  s += g^2;  p -= lr g / (sqrt(s) + eps)
 *
 * Optimizer state is kept in double whatever the parameters' dtype.
 */
#ifndef SEQGRAD_OPTIM_H
#define SEQGRAD_OPTIM_H

#include "seqgrad/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SG_SGD = 0, SG_ADAM, SG_ADAMW, SG_RMSPROP, SG_ADAGRAD } sg_optim_kind;
extern const char *const sg_optim_kind_names[];  /* "sgd", "adam", "adamw", "rmsprop", "adagrad" */

typedef struct {
    sg_optim_kind kind;
    double lr;
    double momentum;        /* SGD, RMSProp */
    bool nesterov;          /* SGD, needs momentum > 0 */
    double weight_decay;    /* L2 into the gradient; decoupled for AdamW */
    double beta1, beta2;    /* Adam, AdamW */
    double alpha;           /* RMSProp smoothing */
    double eps;
} sg_optim_opts;

/* torch.optim's defaults for kind: SGD lr 0.01; Adam lr 1e-3, betas 0.9,
 * 0.999, eps 1e-8; AdamW the same with weight decay 0.01; RMSProp lr 0.01,
 * alpha 0.99, eps 1e-8; Adagrad lr 0.01, eps 1e-10. */
sg_optim_opts sg_optim_defaults(sg_optim_kind kind);
/* Name of a kind: "sgd", "adam", "adamw", "rmsprop", "adagrad". */
const char *sg_optim_name(sg_optim_kind kind);

typedef struct sg_optim sg_optim;

/* An optimizer over every parameter of ps (the collection must not grow
 * afterwards). NULL if opts are invalid (lr <= 0, nesterov without
 * momentum, ...) or memory ran out. Free with sg_optim_free. */
sg_optim *sg_optim_new(sg_params *ps, const sg_optim_opts *opts);
void sg_optim_free(sg_optim *o);
/* One update of every parameter from its gradient, with learning rate lr
 * (from a schedule), or opts.lr if lr < 0. Parameters without a gradient
 * yet are skipped. Gradients are left as they are: zero them yourself.
 * Many parameters' worth (4096 elements and up) update on the product
 * threads (sg_blas_threads), each element as on one thread. */
void sg_optim_step(sg_optim *o, double lr);
long sg_optim_steps(const sg_optim *o);           /* updates done so far */
/* The state buffers (for checkpoints): for parameter i, slot 0 and 1 are the
 * first and second moment buffers (NULL where the kind has none); each holds
 * as many doubles as the parameter has elements. */
double *sg_optim_state(sg_optim *o, int i, int slot);
void sg_optim_set_steps(sg_optim *o, long steps);

/* ---- clipping (optim/clip.c) ------------------------------------------- */

/* Scales every gradient by max_norm / (norm + 1e-6) when the global L2 norm
 * over all of them exceeds max_norm (as torch.nn.utils.clip_grad_norm_).
 * Returns the norm before clipping. */
double sg_clip_grad_norm(sg_params *ps, double max_norm);
/* Clamps every gradient element to [-v, v]. */
void sg_clip_grad_value(sg_params *ps, double v);

/* ---- learning-rate schedules (optim/schedule.c) ------------------------ */

typedef enum { SG_SCHED_CONSTANT = 0, SG_SCHED_STEP, SG_SCHED_COSINE } sg_sched_kind;
extern const char *const sg_sched_kind_names[];  /* "constant", "step", "cosine" */

typedef struct {
    sg_sched_kind kind;
    double lr;              /* base learning rate */
    long warmup;            /* linear warmup steps: lr (s+1)/warmup for s < warmup */
    long step_size;         /* STEP: multiply by gamma every step_size steps */
    double gamma;
    long total;             /* COSINE: steps (warmup included) to go from lr down to min_lr */
    double min_lr;
} sg_schedule;

/* The learning rate for update number `step` (0-based). */
double sg_schedule_lr(const sg_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
