/*
 * cliutil.c - helpers of the tool's test programs: see cliutil.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seqgrad/checkpoint.h>

#include "../cli/config.h"
#include "../cli/train.h"
#include "cliutil.h"

void cu_train(const char *dir, const char *name, const char *body, int steps)
{
    char path[300], text[1200], err[1024];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    snprintf(text, sizeof text, "%strain: {steps: %d, eval_every: 1000, run_dir: %s/%s}\n", body, steps, dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    sg_config c;
    train_opts quiet = {.quiet = true};
    if (cfg_load(&c, path, err, sizeof err) != 0 || cfg_check(&c, err, sizeof err) != 0 ||
        train_run(&c, &quiet, err, sizeof err) != EXIT_OK) {
        fprintf(stderr, "training %s: %s\n", name, err);
        exit(1);
    }
}

void cu_patch_meta(const char *path, const char *key, const char *value)
{
    char err[512];
    sg_ckpt *c = sg_ckpt_open(path);
    if (sg_ckpt_error(c)) {
        fprintf(stderr, "cu_patch_meta: %s\n", sg_ckpt_errmsg(c));
        exit(1);
    }
    int n = sg_ckpt_count(c), m = sg_ckpt_meta_count(c), k = 0;
    sg_ckpt_entry *e = calloc((size_t)n + 1, sizeof *e);
    const char **meta = calloc(2 * (size_t)m + 2, sizeof *meta);
    for (int i = 0; i < n; i++)
        e[i] = *sg_ckpt_get(c, i);
    bool done = false;
    for (int i = 0; i < m; i++) {
        const char *name = sg_ckpt_meta_key(c, i);
        if (strncmp(name, "crc32.", 6) == 0)
            continue;
        if (strcmp(name, key) == 0) {
            done = true;
            if (!value)
                continue;
        }
        meta[2 * k] = name, meta[2 * k + 1] = strcmp(name, key) == 0 ? value : sg_ckpt_meta(c, name);
        k++;
    }
    if (!done && value)
        meta[2 * k] = key, meta[2 * k + 1] = value, k++;
    if (sg_ckpt_write(path, e, n, meta, k, err, sizeof err) != SG_OK) {
        fprintf(stderr, "cu_patch_meta: %s\n", err);
        exit(1);
    }
    free(e), free(meta);
    sg_ckpt_close(c);
}

int cu_in_child(int (*fn)(void *arg, char *err, size_t n), void *arg, char *msg, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char err[2048] = "";
        int rc = fn(arg, err, sizeof err);
        if (write(fds[1], err, strlen(err)) < 0)
            _exit(98);
        _exit(rc);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while (pid > 0 && len + 1 < n && (got = read(fds[0], msg + len, n - 1 - len)) > 0)
        len += (size_t)got;
    msg[len] = '\0';
    close(fds[0]);
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return status;
}

static void put_be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

void cu_fake_fashion(const char *dir, int n_train, int n_test)
{
    static const char *names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                      {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int s = 0; s < 2; s++) {
        int count = s ? n_test : n_train;
        char path[600], cmd[700];
        snprintf(path, sizeof path, "%s/%s", dir, names[s][0]);
        FILE *f = fopen(path, "wb");
        put_be32(f, 0x803), put_be32(f, (unsigned)count), put_be32(f, 28), put_be32(f, 28);
        for (int i = 0; i < count; i++)        /* class i % 10 lights rows 2c and 2c+1 */
            for (int p = 0; p < 784; p++)
                fputc(p / 28 / 2 == i % 10 ? 200 + i % 50 : (i * 7 + p) % 23, f);
        fclose(f);
        snprintf(path, sizeof path, "%s/%s", dir, names[s][1]);
        f = fopen(path, "wb");
        put_be32(f, 0x801), put_be32(f, (unsigned)count);
        for (int i = 0; i < count; i++)
            fputc(i % 10, f);
        fclose(f);
        for (int k = 0; k < 2; k++) {
            snprintf(cmd, sizeof cmd, "gzip -f '%s/%s'", dir, names[s][k]);
            if (system(cmd) != 0) {
                fprintf(stderr, "cu_fake_fashion: %s failed\n", cmd);
                exit(1);
            }
        }
    }
}

bool cu_same_tensors(const char *a, const char *b, char *why, size_t n)
{
    sg_ckpt *x = sg_ckpt_open(a), *y = sg_ckpt_open(b);
    bool same = sg_ckpt_error(x) == SG_OK && sg_ckpt_error(y) == SG_OK && sg_ckpt_count(x) == sg_ckpt_count(y);
    snprintf(why, n, "%s", same ? "" : "a file is refused, or the tensors differ in number");
    for (int i = 0; same && i < sg_ckpt_count(x); i++) {
        const sg_ckpt_entry *ex = sg_ckpt_get(x, i), *ey = sg_ckpt_find(y, ex->name);
        size_t bytes = sg_dtype_size(ex->dtype);
        for (int d = 0; d < ex->ndim; d++)
            bytes *= (size_t)ex->shape[d];
        same = ey && ey->dtype == ex->dtype && memcmp(ex->data, ey->data, bytes) == 0;
        if (!same)
            snprintf(why, n, "%s differs", ex->name);
    }
    const char *rx = sg_ckpt_meta(x, "rng"), *ry = sg_ckpt_meta(y, "rng");
    if (same && (!rx || !ry || strcmp(rx, ry))) {
        same = false;
        snprintf(why, n, "the rng differs");
    }
    sg_ckpt_close(x), sg_ckpt_close(y);
    return same;
}
