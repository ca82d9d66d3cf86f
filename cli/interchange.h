/*
 * interchange.h - `seqgrad export` and `seqgrad import`: a run's model to
 * PyTorch or ONNX and back (docs/interchange.md).
 */
#ifndef SEQGRAD_CLI_INTERCHANGE_H
#define SEQGRAD_CLI_INTERCHANGE_H

#include <stddef.h>

/* seqgrad export RUN_DIR --to pytorch|onnx OUT (argv from RUN_DIR on):
 * OUT/reference.safetensors (a validation batch's inputs and the model's
 * outputs), then tools/seqgrad_export.py writes and checks the model in
 * OUT. An exit code, with err on failure. */
int export_command(int argc, char **argv, char *err, size_t n);
/* seqgrad import WEIGHTS.safetensors --config CONFIG.yaml RUN_DIR: the run
 * CONFIG describes, its parameters read from WEIGHTS (state_dict names),
 * saved as RUN_DIR's checkpoint at step 0, with RUN_DIR/config.yaml. */
int import_command(int argc, char **argv, char *err, size_t n);

#endif
