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

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* steps timed steps of `tokens` tokens each took dt seconds */
static void report(int steps, long tokens, double dt)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("tokens_per_s %.1f step_ms %.3f peak_mb %.1f\n", (double)steps * (double)tokens / dt, 1e3 * dt / steps,
           ru.ru_maxrss / 1024.0);
}

/* the first steps/10 (at least 2) warm up: the arena grows, caches fill */
static int warmup(int steps) { return steps / 10 > 2 ? steps / 10 : 2; }

#endif
