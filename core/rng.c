/*
 * rng.c - the seeded generator: xoshiro256** (Blackman and Vigna), its state
 * filled from the seed by splitmix64. State lives in the caller's sg_rng, so
 * every object that draws numbers owns its sequence; nothing is global.
 */
#include <math.h>

#include "seqgrad/core.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sg_rng_seed(sg_rng *r, uint64_t seed)
{
    for (int i = 0; r && i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sg_rng_u64(sg_rng *r)
{
    if (!r)
        return 0;
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* 53 random bits scaled into [0, 1). */
double sg_rng_uniform(sg_rng *r) { return (double)(sg_rng_u64(r) >> 11) * 0x1.0p-53; }

/* Box-Muller; u1 is kept away from 0 so log() stays finite. */
double sg_rng_normal(sg_rng *r)
{
    double u1 = 1.0 - sg_rng_uniform(r), u2 = sg_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Rejection sampling: unbiased for any n > 0; 0 for n <= 0. */
int sg_rng_int(sg_rng *r, int n)
{
    if (n <= 0)
        return 0;
    uint64_t bound = (uint64_t)n, limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do
        x = sg_rng_u64(r);
    while (x >= limit);
    return (int)(x % bound);
}

void sg_rng_shuffle(sg_rng *r, int *a, int n)
{
    for (int i = n - 1; a && i > 0; i--) {
        int j = sg_rng_int(r, i + 1), tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
    }
}
