/*
 * interchange.c - `seqgrad export` and `seqgrad import` (docs/interchange.md):
 * a run's model to PyTorch or ONNX, and weights trained in PyTorch back to
 * a run folder.
 *
 * export computes the model's outputs on a batch of the run's own
 * validation data and writes them with the inputs to OUT/reference.safetensors;
 * tools/seqgrad_export.py (run with /usr/bin/python3) rebuilds the model in
 * torch.nn or as an ONNX graph, loads the weights, and checks its outputs
 * against that file. import builds the run a config describes, reads the
 * parameters from a safetensors file of state_dict names, and saves the
 * run's checkpoint at step 0.
 */
#define _XOPEN_SOURCE 700     /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interchange.h"
#include "run.h"

#ifndef SEQGRAD_TOOLS_DIR
#define SEQGRAD_TOOLS_DIR "tools"
#endif
#ifndef SEQGRAD_INSTALLED_TOOLS_DIR
#define SEQGRAD_INSTALLED_TOOLS_DIR SEQGRAD_TOOLS_DIR
#endif

/* $SEQGRAD_TOOLS_DIR, the installed tools, or the source tree's */
static const char *tools_dir(void)
{
    const char *env = getenv("SEQGRAD_TOOLS_DIR");
    if (env && *env)
        return env;
    return access(SEQGRAD_INSTALLED_TOOLS_DIR "/seqgrad_export.py", R_OK) == 0 ? SEQGRAD_INSTALLED_TOOLS_DIR
                                                                                : SEQGRAD_TOOLS_DIR;
}

enum { MAX_REF = 8 };

typedef struct {
    sg_ckpt_entry e[MAX_REF];
    double *data[MAX_REF];
    int n;
} reference;

/* a tensor of the reference file, as f64 (ids are exact in it); *size: its elements */
static double *ref_add(reference *ref, const char *name, int ndim, const int *shape, size_t *size)
{
    *size = 1;
    for (int i = 0; i < ndim; i++)
        *size *= (size_t)shape[i];
    double *v = calloc(*size ? *size : 1, sizeof *v);
    if (!v || ref->n == MAX_REF) {
        free(v);
        return NULL;
    }
    sg_ckpt_entry *e = &ref->e[ref->n];
    *e = (sg_ckpt_entry){.name = name, .dtype = SG_F64, .ndim = ndim, .data = v};
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    ref->data[ref->n++] = v;
    return v;
}

static bool ref_ints(reference *ref, const char *name, int ndim, const int *shape, const int *v)
{
    size_t size;
    double *to = ref_add(ref, name, ndim, shape, &size);
    for (size_t i = 0; to && i < size; i++)
        to[i] = v[i];
    return to != NULL;
}

static bool ref_floats(reference *ref, const char *name, int ndim, const int *shape, const float *v)
{
    size_t size;
    double *to = ref_add(ref, name, ndim, shape, &size);
    for (size_t i = 0; to && i < size; i++)
        to[i] = v[i];
    return to != NULL;
}

static bool ref_tensor(reference *ref, const char *name, const sg_tensor *x)
{
    if (!x)
        return false;
    size_t size;
    double *to = ref_add(ref, name, sg_tensor_ndim(x), sg_tensor_shape(x), &size);
    for (size_t i = 0; to && i < size; i++)
        to[i] = sg_tensor_get(x, i);
    return to != NULL;
}

/* The model's outputs on the first examples (or streams) of the validation
 * split, with the inputs that gave them. */
static int reference_batch(run *r, sg_tape *t, reference *ref, char *err, size_t n)
{
    const dataset *d = &r->d;
    int B = r->B < 4 ? r->B : 4, idx[4], T = r->T;
    long have = d->task == TASK_STREAM ? r->B : d->len[1];
    B = have < B ? (int)have : B;
    for (int b = 0; b < B; b++)
        idx[b] = b;
    sg_tape_set_grad(t, false);
    sg_tensor *z = NULL;
    bool ok = true;
    switch (d->task) {
    case TASK_STREAM: {               /* B streams from the validation text's start, zero state */
        long per = d->len[1] / r->B;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++)
                r->bx[b * T + k] = d->ids[1][b * per + k];
        z = run_lm_logits(r, t, r->bx, B, T, NULL, NULL, NULL);
        ok = ref_ints(ref, "input", 2, (int[]){B, T}, r->bx);
        break;
    }
    case TASK_ITEMS: {                /* conditioned: each item from its class or image, as in training */
        sg_tensor *h0[SG_CELL_MAX_STATES] = {NULL};
        T = data_lm_batch(d, 1, idx, B, r->T, r->bx, r->by);
        for (int b = 0; r->conditioned && b < B; b++)
            r->blen[b] = d->ex[1][idx[b]].tgt[0];
        if (r->conditioned && run_cond_states(r, t, 1, r->blen, B, h0) != SG_OK)
            break;
        z = run_lm_logits(r, t, r->bx, B, T, r->conditioned ? h0 : NULL, NULL, NULL);
        r->cond_in = NULL;
        ok = ref_ints(ref, "input", 2, (int[]){B, T}, r->bx) && (!r->conditioned || ref_tensor(ref, "condition", r->cond_vec));
        break;
    }
    case TASK_CLASSIFY:
        z = run_classify_batch(r, t, 1, idx, B, NULL);
        T = d->kind == DATA_FASHION ? d->T : data_class_batch(d, 1, idx, B, r->bx, r->blen, r->by);
        ok = d->kind == DATA_FASHION ? ref_floats(ref, "input", 3, (int[]){B, d->T, d->F}, r->fx)
                                     : ref_ints(ref, "input", 2, (int[]){B, T}, r->bx) &&
                                           ref_ints(ref, "lengths", 1, (int[]){B}, r->blen);
        break;
    case TASK_TAG:
        T = data_tag_batch(d, 1, idx, B, r->bx, r->blen, r->by);
        z = run_tag(r, t, r->bx, r->blen, B, T, NULL);
        ok = ref_ints(ref, "input", 2, (int[]){B, T}, r->bx) && ref_ints(ref, "lengths", 1, (int[]){B}, r->blen);
        break;
    case TASK_REGRESS:
        data_add_batch(d, 1, idx, B, r->fx, r->fy);
        z = run_regress(r, t, r->fx, B, NULL);
        ok = ref_floats(ref, "input", 3, (int[]){B, d->T, 2}, r->fx);
        break;
    case TASK_S2S: {                  /* teacher-forced logits (B,T,V) of the targets' inputs */
        int S;
        T = data_s2s_batch(d, 1, idx, B, r->bsrc, r->blen, &S, r->bx, r->by);
        if (r->model == MODEL_TS2S) {
            sg_tensor *mask = NULL;
            sg_tensor *memory = sg_transformer_s2s_encode(t, &r->ts2s, r->bsrc, r->blen, B, S, &mask, NULL);
            z = sg_transformer_s2s_decode(t, &r->ts2s, memory, mask, r->bx, B, T, NULL);
        } else {
            sg_seq2seq_enc enc;
            sg_tensor *zs[512];
            int *prev = sg_tape_alloc(t, (size_t)B, sizeof *prev);
            bool fine = T <= 512 && prev && sg_seq2seq_encode(t, &r->s2s, r->bsrc, r->blen, B, S, &enc) == SG_OK;
            for (int k = 0; fine && k < T; k++) {
                for (int b = 0; b < B; b++)
                    prev[b] = r->bx[b * T + k];
                fine = (zs[k] = sg_seq2seq_step(t, &r->s2s, &enc, prev, NULL)) != NULL;
            }
            z = fine ? sg_stack(t, zs, T, 1) : NULL;
        }
        ok = ref_ints(ref, "source", 2, (int[]){B, S}, r->bsrc) && ref_ints(ref, "lengths", 1, (int[]){B}, r->blen) &&
             ref_ints(ref, "input", 2, (int[]){B, T}, r->bx);
        break;
    }
    }
    if (!z)
        return cli_fail(err, n, EXIT_FAIL, "export: the model's forward failed: %s", sg_tape_errmsg(t));
    if (!ok || !ref_tensor(ref, "output", z))
        return cli_fail(err, n, EXIT_FAIL, "out of memory");
    return EXIT_OK;
}

static int run_script(const char *const *args, char *err, size_t n)
{
    pid_t pid = fork();
    if (pid < 0)
        return cli_fail(err, n, EXIT_FAIL, "cannot start /usr/bin/python3: %s", strerror(errno));
    if (pid == 0) {
        execv("/usr/bin/python3", (char *const *)args);
        fprintf(stderr, "seqgrad: cannot run /usr/bin/python3: %s (apt-get install python3)\n", strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return EXIT_OK;
    return cli_fail(err, n, WIFEXITED(status) && WEXITSTATUS(status) == 2 ? EXIT_USAGE : EXIT_FAIL,
                    "%s failed (its message is above)", args[1]);
}

/* The arguments of export and import: two names and one option with a
 * value (opt), in any order; form is the usage, for "not more". */
static int two_and_option(const char *cmd, const char *opt, const char *form, int argc, char **argv,
                          const char **first, const char **value, const char **second, char *err, size_t n)
{
    *first = *value = *second = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], opt) && i + 1 < argc)
            *value = argv[++i];
        else if (argv[i][0] == '-')
            return cli_fail(err, n, EXIT_USAGE, "%s: unknown option %s (seqgrad %s --help)", cmd, argv[i], cmd);
        else if (!*first)
            *first = argv[i];
        else if (!*second)
            *second = argv[i];
        else
            return cli_fail(err, n, EXIT_USAGE, "%s: %s, not more", cmd, form);
    }
    return *first && *value && *second ? EXIT_OK : EXIT_USAGE;
}

int export_command(int argc, char **argv, char *err, size_t n)
{
    const char *run_dir, *to, *out;
    int rc = two_and_option("export", "--to", "RUN_DIR --to pytorch|onnx OUT", argc, argv, &run_dir, &to, &out, err, n);
    if (rc != EXIT_OK)
        return rc;
    if (strcmp(to, "pytorch") && strcmp(to, "onnx"))
        return cli_fail(err, n, EXIT_USAGE, "export: --to \"%s\" is not one of pytorch|onnx", to);
    run r = {0};
    rc = run_open(&r, run_dir, NULL, USE_SPLITS, err, n);
    sg_tape *t = rc == EXIT_OK ? sg_tape_new() : NULL;
    reference ref = {0};
    if (rc == EXIT_OK && !t)
        rc = cli_fail(err, n, EXIT_FAIL, "out of memory");
    if (rc == EXIT_OK)
        rc = reference_batch(&r, t, &ref, err, n);
    char path[PATH_MAX + 32], ckpt[PATH_MAX + 32], script[PATH_MAX + 32];
    if (rc == EXIT_OK && cli_make_dirs(out) != 0)
        rc = cli_fail(err, n, EXIT_FAIL, "%s: cannot make the folder: %s", out, strerror(errno));
    snprintf(path, sizeof path, "%s/reference.safetensors", out);
    const char *meta[] = {"seqgrad", "reference batch: the inputs and the model's outputs (f64)"};
    if (rc == EXIT_OK && sg_ckpt_write(path, ref.e, ref.n, meta, 1, err, n) != SG_OK)
        rc = EXIT_FAIL;
    for (int i = 0; i < ref.n; i++)
        free(ref.data[i]);
    sg_tape_free(t);
    run_free(&r);
    if (rc != EXIT_OK)
        return rc;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
    snprintf(script, sizeof script, "%s/seqgrad_export.py", tools_dir());
    const char *args[] = {"/usr/bin/python3", script, "--to", to, ckpt, path, out, NULL};
    return run_script(args, err, n);
}

int import_command(int argc, char **argv, char *err, size_t n)
{
    const char *weights, *config, *run_dir;
    int rc = two_and_option("import", "--config", "WEIGHTS.safetensors --config CONFIG.yaml RUN_DIR", argc, argv,
                            &weights, &config, &run_dir, err, n);
    if (rc != EXIT_OK)
        return rc;
    run r = {0};
    if (cfg_load(&r.cfg, config, err, n) != 0 || cfg_check(&r.cfg, err, n) != 0)
        return EXIT_CONFIG;
    char set[PATH_MAX + 32];
    snprintf(set, sizeof set, "train.run_dir=%s", run_dir);
    cfg_set(&r.cfg, set, err, n);
    rc = run_build(&r, NULL, NULL, USE_SPLITS, err, n);
    sg_ckpt *ck = rc == EXIT_OK ? sg_ckpt_open(weights) : NULL;
    if (rc == EXIT_OK && sg_ckpt_error(ck) != SG_OK)
        rc = cli_fail(err, n, EXIT_DATA, "%s", sg_ckpt_errmsg(ck));
    /* a state_dict's names are the parameters' own (the checkpoint adds "model.") */
    if (rc == EXIT_OK && sg_ckpt_load_params(ck, r.ps, "") != SG_OK) {
        const char *why = sg_params_errmsg(r.ps);
        rc = cli_fail(err, n, EXIT_DATA, "%s: %s", weights, why);
    }
    if (rc == EXIT_OK)                      /* a folder that holds a run is written over, as --overwrite */
        rc = run_write_config(&r, true, err, n);
    if (rc == EXIT_OK)
        rc = run_save(&r, err, n);
    if (rc == EXIT_OK)
        printf("%s: %d tensors of %s -> %s/checkpoint.safetensors (step 0)\n", run_dir, sg_params_count(r.ps), weights,
               run_dir);
    sg_ckpt_close(ck);
    run_free(&r);
    return rc;
}
