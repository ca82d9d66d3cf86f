/*
 * cliutil.h - helpers of the tool's test programs (tests/test_cli_*.c),
 * which link the tool's code: training a small run to test on.
 */
#ifndef SEQGRAD_CLIUTIL_H
#define SEQGRAD_CLIUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Writes dir/name.yaml from body plus "train: {steps, eval_every: 1000,
 * run_dir: dir/name}" and trains it quietly; exits the test program with a
 * message if that fails (call it from an unchecked fixture, so every test
 * reads the same runs). */
void cu_train(const char *dir, const char *name, const char *body, int steps);

/* Rewrites checkpoint path with metadata key set to value (added if absent;
 * value NULL removes it), the tensors and other metadata as they were and
 * the checksums made anew: a hostile or damaged file, as a user might hold. */
void cu_patch_meta(const char *path, const char *key, const char *value);

/* Runs fn(arg, err, n) in a child process and returns its wait status; the
 * message fn left in err comes back in msg (n bytes), through a pipe, so
 * a child that limits its own files or memory can still report. */
int cu_in_child(int (*fn)(void *arg, char *err, size_t n), void *arg, char *msg, size_t n);

/* Whether checkpoints a and b hold the same tensors, byte for byte, and the
 * same rng; if not, why (the first tensor that differs). */
bool cu_same_tensors(const char *a, const char *b, char *why, size_t n);

/* Writes dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz: n_train and
 * n_test 28x28 images in Fashion-MNIST's IDX format (gzip'd as Debian
 * ships them), pixels and labels a fixed function of the index, so tests
 * of data.kind fashion and caption run without dataset-fashion-mnist. */
void cu_fake_fashion(const char *dir, int n_train, int n_test);

#endif
