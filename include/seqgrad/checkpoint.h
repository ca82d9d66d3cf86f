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
 * atomically, adding "crc32.NAME" metadata: the CRC-32 (zlib.crc32) of each
 * tensor's bytes. Refuses (before writing anything) what no reader reads
 * back: NULL arrays, a name that is empty, "__metadata__" or given twice, a
 * dtype other than SG_F32/SG_F64, 0 or more than 4 dimensions, a metadata
 * key given twice or starting with "crc32.". Returns SG_OK, or an error
 * with "<path>: <what is wrong>" in err. (It has no handle to leave a
 * message on: err is its handle.) */
sg_status sg_ckpt_write(const char *path, const sg_ckpt_entry *entries, int n, const char *const *meta, int n_meta,
                        char *err, size_t errlen);
/* Writes every parameter of ps under its name (prefix prepended), plus
 * meta; the message of a failure goes on ps (sg_params_errmsg). */
sg_status sg_ckpt_save_params(const char *path, sg_params *ps, const char *prefix, const char *const *meta,
                              int n_meta);

/* A checkpoint read into memory and validated. */
typedef struct sg_ckpt sg_ckpt;

/* Reads and validates path. Like sqlite3_open, it returns a handle even when
 * the file is refused: sg_ckpt_error() says whether it was, and
 * sg_ckpt_errmsg() why ("<path>: <what is wrong>"); a refused handle holds
 * no tensors. NULL only if memory for the handle itself ran out (the
 * accessors take NULL). Refused: an unreadable file, a header that is not
 * JSON of F32/F64 tensors of 1 to 4 dimensions, data that does not tile the
 * file, a "crc32.NAME" checksum that does not match NAME's bytes. Tensors
 * placed at unaligned offsets by other writers are read from aligned
 * copies. Close it with sg_ckpt_close() either way. */
sg_ckpt *sg_ckpt_open(const char *path);
/* The same for a file's bytes already in memory (copied); name stands for
 * the path in messages. */
sg_ckpt *sg_ckpt_open_buffer(const void *data, size_t size, const char *name);
sg_status sg_ckpt_error(const sg_ckpt *c);
const char *sg_ckpt_errmsg(const sg_ckpt *c);
void sg_ckpt_close(sg_ckpt *c);
int sg_ckpt_count(const sg_ckpt *c);
const sg_ckpt_entry *sg_ckpt_get(const sg_ckpt *c, int i);
const sg_ckpt_entry *sg_ckpt_find(const sg_ckpt *c, const char *name);
/* The metadata value of key, or NULL. */
const char *sg_ckpt_meta(const sg_ckpt *c, const char *key);
/* The metadata's keys, in file order (checksums "crc32.NAME" included). */
int sg_ckpt_meta_count(const sg_ckpt *c);
const char *sg_ckpt_meta_key(const sg_ckpt *c, int i);
/* Loads every parameter of ps from the tensor named prefix + its name,
 * converting f32/f64 as needed. Refused (SG_ERR_FORMAT, the message on ps)
 * if a parameter is missing, a shape differs, or the file holds a tensor
 * under prefix that ps does not know; ps is left unchanged then. A refused
 * handle is refused again here (SG_ERR_STATE, its message on ps). */
sg_status sg_ckpt_load_params(const sg_ckpt *c, sg_params *ps, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
