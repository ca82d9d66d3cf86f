/*
 * bench.h - what the benchmark programs share: the clock, and the one line
 * they print (tokens/s, ms per step, peak resident memory), which
 * compare.py reads.
 */
#ifndef SEQGRAD_BENCH_H
#define SEQGRAD_BENCH_H

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include <seqgrad/seqgrad.h>

static inline double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* steps timed steps of `tokens` tokens each took dt seconds */
static inline void report(int steps, long tokens, double dt)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("tokens_per_s %.1f step_ms %.3f peak_mb %.1f\n", (double)steps * (double)tokens / dt, 1e3 * dt / steps,
           ru.ru_maxrss / 1024.0);
}

/* Runs step(ctx) for steps/10 (at least 2) warm-up steps (the arena grows,
 * caches fill), then `steps` timed ones; prints the report line. Returns 0,
 * or 1 (after printing the tape's error) if a step failed. */
static inline int timed(int steps, long tokens, const char *name, bool (*step)(void *ctx, sg_tape *t), void *ctx)
{
    sg_tape *t = sg_tape_new();
    sg_tape_keep_grads(t, false);     /* as training does (cli/train.c) */
    int warm = steps / 10 > 2 ? steps / 10 : 2;
    double t0 = 0;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = seconds();
        sg_tape_reset(t);
        if (!step(ctx, t)) {
            fprintf(stderr, "%s: %s\n", name, sg_tape_errmsg(t));
            sg_tape_free(t);
            return 1;
        }
    }
    report(steps, tokens, seconds() - t0);
    sg_tape_free(t);
    return 0;
}

#endif
