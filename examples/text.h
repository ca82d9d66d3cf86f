/*
 * text.h - what the character-level examples share: read a text file, map
 * its bytes to ids 0..V-1 (the bytes that occur, in byte order), its
 * unigram entropy, and a clock. Header-only, for examples.
 */
#ifndef SEQGRAD_EXAMPLES_TEXT_H
#define SEQGRAD_EXAMPLES_TEXT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef SEQGRAD_DATA_DIR
#define SEQGRAD_DATA_DIR "data"
#endif

typedef struct {
    int *ids;                 /* n ids */
    long n;
    int V;                    /* vocabulary size */
    unsigned char vocab[256]; /* id -> byte */
    int id_of[256];           /* byte -> id, -1 if absent */
    double unigram;           /* entropy of the byte frequencies, nats */
} text;

/* Reads path; returns 0, or -1 (with a message on stderr) if it cannot. */
static int text_load(text *tx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *s = malloc((size_t)n + 1);
    tx->ids = malloc(((size_t)n + 1) * sizeof *tx->ids);
    if (!s || !tx->ids || fread(s, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    fclose(f);
    long count[256] = {0};
    for (long i = 0; i < n; i++)
        count[s[i]]++;
    tx->V = 0, tx->unigram = 0, tx->n = n;
    for (int c = 0; c < 256; c++) {
        tx->id_of[c] = -1;
        if (count[c]) {
            tx->id_of[c] = tx->V, tx->vocab[tx->V++] = (unsigned char)c;
            double p = (double)count[c] / (double)n;
            tx->unigram -= p * log(p);
        }
    }
    for (long i = 0; i < n; i++)
        tx->ids[i] = tx->id_of[s[i]];
    free(s);
    return 0;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
