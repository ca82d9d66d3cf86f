/*
 * seqgrad/checkpoint.h - safetensors files: an 8-byte little-endian header
 * length N, N bytes of JSON header ({"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value"}}),
 * then the raw little-endian data. PyTorch's safetensors (and a few lines of
 * Python) read them. The header is parsed with libyaml (JSON is YAML).
 *
 * Writing goes to a temporary file in the same folder, flushed, synced and
 * renamed into place: a crash never leaves half a checkpoint. Reading checks
 * everything before trusting anything: a truncated, corrupt or mismatched
 * file is refused with a message saying what is wrong, never a crash.
 */
#ifndef SEQGRAD_CHECKPOINT_H
#define SEQGRAD_CHECKPOINT_H

#include "seqgrad/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One tensor to write: name, dtype, shape and its data (size from shape). */
typedef struct {
    const char *name;
    sg_dtype dtype;
    int ndim;
    int shape[SG_MAX_DIMS];
    const void *data;
} sg_ckpt_entry;

/* Writes entries and metadata (n_meta pairs key, value, as strings) to path
 * atomically. Returns SG_OK, or SG_ERR_IO / SG_ERR_ARG with a message in err. */
sg_status sg_ckpt_write(const char *path, const sg_ckpt_entry *entries, int n, const char *const *meta, int n_meta,
                        char *err, size_t errlen);
/* Writes every parameter of ps under its name (prefix prepended), plus meta. */
sg_status sg_ckpt_save_params(const char *path, const sg_params *ps, const char *prefix, const char *const *meta,
                              int n_meta, char *err, size_t errlen);

/* A checkpoint read into memory and validated. */
typedef struct sg_ckpt sg_ckpt;

/* NULL (and a message in err: "<path>: <what is wrong>") if the file cannot
 * be read or is not a valid safetensors file of F32/F64 tensors. */
sg_ckpt *sg_ckpt_open(const char *path, char *err, size_t errlen);
void sg_ckpt_close(sg_ckpt *c);
int sg_ckpt_count(const sg_ckpt *c);
const sg_ckpt_entry *sg_ckpt_get(const sg_ckpt *c, int i);
const sg_ckpt_entry *sg_ckpt_find(const sg_ckpt *c, const char *name);
/* The metadata value of key, or NULL. */
const char *sg_ckpt_meta(const sg_ckpt *c, const char *key);
/* Loads every parameter of ps from the tensor named prefix + its name,
 * converting f32/f64 as needed. Refused (SG_ERR_FORMAT, message in err) if a
 * parameter is missing, a shape differs, or the file holds a tensor under
 * prefix that ps does not know; ps is left unchanged then. */
sg_status sg_ckpt_load_params(const sg_ckpt *c, sg_params *ps, const char *prefix, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
