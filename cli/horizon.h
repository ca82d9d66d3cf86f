/*
 * horizon.h - `seqgrad horizon`: how long a dependency each cell learns
 * (docs/horizon.md).
 */
#ifndef SEQGRAD_CLI_HORIZON_H
#define SEQGRAD_CLI_HORIZON_H

#include <stddef.h>

/* seqgrad horizon CONFIG [--lengths L,...] [--cells C,...] [--seeds N]
 * [--threshold A] [--out DIR]: argv from CONFIG on. Returns an exit code,
 * with err on failure. */
int horizon_command(int argc, char **argv, char *err, size_t n);

#endif
