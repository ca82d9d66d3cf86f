/*
 * cliutil.c - helpers of the tool's test programs: see cliutil.h.
 */
#include <stdio.h>
#include <stdlib.h>

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
