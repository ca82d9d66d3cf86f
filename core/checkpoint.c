/*
 * checkpoint.c - safetensors writing (atomic) and reading (validated).
 * Layout: u64 little-endian header length N | N bytes of JSON | data.
 * Every tensor's data_offsets are relative to the data section; together
 * they must cover it exactly, without gaps or overlaps. The JSON header is
 * parsed with libyaml's event API (JSON is a subset of YAML 1.2's flow style).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "internal.h"
#include "seqgrad/checkpoint.h"

#define MAX_HEADER ((uint64_t)100 << 20)

struct sg_ckpt {
    unsigned char *buf;          /* the whole file */
    sg_ckpt_entry *e;
    char **names;
    void **copies;               /* per tensor: an aligned copy of its data, or NULL when in place */
    int n;
    char **meta;                 /* key, value, key, value ... */
    int n_meta;
    sg_status err;               /* why the file was refused, SG_OK if it was not */
    char msg[512];
};

/* ---- CRC-32 (IEEE 802.3, as zlib.crc32): one per tensor, in the metadata ---- */

static uint32_t crc32_of(const void *data, size_t n)
{
    static uint32_t table[256];
    static bool made;
    if (!made) {                         /* idempotent: a race writes the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        made = true;
    }
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

#define CRC_PREFIX "crc32."

static sg_status fail(char *err, size_t len, sg_status s, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static sg_status fail(char *err, size_t len, sg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len)
        vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return s;
}

static size_t numel(const sg_ckpt_entry *e)
{
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++)
        n *= (size_t)e->shape[d];
    return n;
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 64) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s, b->cap = cap;
    }
}

/* a JSON string: quotes, backslashes and control characters escaped; prefix
 * (not escaped) comes first inside the quotes */
static void put_key(sbuf *b, const char *prefix, const char *s)
{
    put(b, "\"%s", prefix);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static void put_string(sbuf *b, const char *s) { put_key(b, "", s); }

/* Refuses what the reader would refuse, before anything is written. */
static sg_status check_entries(const char *path, const sg_ckpt_entry *entries, int n, const char *const *meta,
                               int n_meta, char *err, size_t errlen)
{
    if (!path)
        return fail(err, errlen, SG_ERR_NULL, "checkpoint: the path is NULL");
    if (n < 0 || n_meta < 0 || (n && !entries) || (n_meta && !meta))
        return fail(err, errlen, SG_ERR_ARG, "%s: %d tensors and %d metadata pairs (NULL arrays or negative counts)",
                    path, n, n_meta);
    for (int i = 0; i < n; i++) {
        const sg_ckpt_entry *e = &entries[i];
        if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
            return fail(err, errlen, SG_ERR_ARG, "%s: tensor %d: the name \"%s\" cannot be written", path, i,
                        e->name ? e->name : "(NULL)");
        if (e->dtype != SG_F32 && e->dtype != SG_F64)
            return fail(err, errlen, SG_ERR_DTYPE, "%s: tensor %s: dtype %d is neither SG_F32 nor SG_F64", path,
                        e->name, (int)e->dtype);
        if (e->ndim < 1 || e->ndim > SG_MAX_DIMS)
            return fail(err, errlen, SG_ERR_SHAPE, "%s: tensor %s: %d dimensions (1 to 4 can be read back)", path,
                        e->name, e->ndim);
        unsigned long long elems = 1;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] < 1 || elems > (1ULL << 40) / (unsigned long long)e->shape[d])
                return fail(err, errlen, SG_ERR_SHAPE, "%s: tensor %s: dimension %d is %d", path, e->name, d,
                            e->shape[d]);
            elems *= (unsigned long long)e->shape[d];
        }
        if (!e->data)
            return fail(err, errlen, SG_ERR_NULL, "%s: tensor %s: data is NULL", path, e->name);
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0)
                return fail(err, errlen, SG_ERR_ARG, "%s: tensor %s appears twice", path, e->name);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[2 * i] || !meta[2 * i + 1])
            return fail(err, errlen, SG_ERR_NULL, "%s: metadata pair %d holds NULL", path, i);
        if (strncmp(meta[2 * i], CRC_PREFIX, strlen(CRC_PREFIX)) == 0)
            return fail(err, errlen, SG_ERR_ARG, "%s: metadata key %s is reserved for checksums", path, meta[2 * i]);
        for (int j = 0; j < i; j++)
            if (strcmp(meta[2 * j], meta[2 * i]) == 0)
                return fail(err, errlen, SG_ERR_ARG, "%s: metadata key %s appears twice", path, meta[2 * i]);
    }
    return SG_OK;
}

sg_status sg_ckpt_write(const char *path, const sg_ckpt_entry *entries, int n, const char *const *meta, int n_meta,
                        char *err, size_t errlen)
{
    sg_status bad = check_entries(path, entries, n, meta, n_meta, err, errlen);
    if (bad != SG_OK)
        return bad;
    sbuf h = {0};
    uint64_t off = 0;
    put(&h, "{\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        put_string(&h, meta[2 * i]);
        put(&h, ":");
        put_string(&h, meta[2 * i + 1]);
        put(&h, i + 1 < n_meta || n ? "," : "");
    }
    for (int i = 0; i < n; i++) {        /* "crc32.NAME": the CRC-32 of the tensor's bytes, as zlib.crc32 */
        const sg_ckpt_entry *e = &entries[i];
        put_key(&h, CRC_PREFIX, e->name);
        put(&h, ":\"%08x\"%s", (unsigned)crc32_of(e->data, numel(e) * sg_dtype_size(e->dtype)), i + 1 < n ? "," : "");
    }
    put(&h, "}%s", n ? "," : "");
    for (int i = 0; i < n; i++) {
        const sg_ckpt_entry *e = &entries[i];
        uint64_t bytes = numel(e) * sg_dtype_size(e->dtype);
        put_string(&h, e->name);
        put(&h, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype == SG_F32 ? "F32" : "F64");
        for (int d = 0; d < e->ndim; d++)
            put(&h, d ? ",%d" : "%d", e->shape[d]);
        put(&h, "],\"data_offsets\":[%llu,%llu]}%s", (unsigned long long)off, (unsigned long long)(off + bytes),
            i + 1 < n ? "," : "");
        off += bytes;
    }
    put(&h, "}");
    while (!h.oom && h.len % 8)           /* the data section starts 8-aligned */
        put(&h, " ");
    if (h.oom) {
        free(h.s);
        return fail(err, errlen, SG_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    /* a temporary file beside the target, then rename: never half a file */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) {
        free(h.s);
        return fail(err, errlen, SG_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    if (fd >= 0) {                       /* mkstemp makes 0600: give the file the mode any other file gets */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    sg_status status = SG_OK;
    if (!f) {
        status = fail(err, errlen, SG_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
    for (int i = 0; ok && i < n; i++) {
        size_t bytes = numel(&entries[i]) * sg_dtype_size(entries[i].dtype);
        ok = fwrite(entries[i].data, 1, bytes, f) == bytes;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        status = fail(err, errlen, SG_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* make the rename itself durable */
    char *slash = strrchr(tmp, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(h.s);
    return status;
}

sg_status sg_ckpt_save_params(const char *path, sg_params *ps, const char *prefix, const char *const *meta,
                              int n_meta)
{
    char err[512] = "";
    size_t errlen = sizeof err;
    if (!ps)
        return SG_ERR_NULL;
    int n = sg_params_count(ps);
    sg_ckpt_entry *e = calloc((size_t)n + 1, sizeof *e);
    char **names = calloc((size_t)n + 1, sizeof *names);
    sg_status s = SG_OK;
    if (!e || !names) {
        s = fail(err, errlen, SG_ERR_NOMEM, "%s: out of memory", path ? path : "checkpoint");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        sg_tensor *p = sg_params_get(ps, i);
        const char *name = sg_params_name(ps, i);
        size_t len = strlen(prefix ? prefix : "") + strlen(name) + 1;
        if (!(names[i] = malloc(len))) {
            s = fail(err, errlen, SG_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        snprintf(names[i], len, "%s%s", prefix ? prefix : "", name);
        e[i] = (sg_ckpt_entry){.name = names[i], .dtype = p->dtype, .ndim = p->ndim, .data = p->data};
        memcpy(e[i].shape, p->shape, sizeof e[i].shape);
    }
    s = sg_ckpt_write(path, e, n, meta, n_meta, err, errlen);
out:
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    free(e);
    return s == SG_OK ? SG_OK : sg_params_fail(ps, s, "%s", err);
}

/* ---- reading -------------------------------------------------------------------- */

/* Frees what a handle read, keeping the handle (and its message). */
static void release(sg_ckpt *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->names[i]);
        free(c->copies ? c->copies[i] : NULL);
    }
    for (int i = 0; i < 2 * c->n_meta; i++)
        free(c->meta[i]);
    free(c->names), free(c->copies), free(c->meta), free(c->e), free(c->buf);
    c->names = NULL, c->copies = NULL, c->meta = NULL, c->e = NULL, c->buf = NULL;
    c->n = c->n_meta = 0;
}

void sg_ckpt_close(sg_ckpt *c)
{
    if (!c)
        return;
    release(c);
    free(c);
}

sg_status sg_ckpt_error(const sg_ckpt *c) { return c ? c->err : SG_ERR_NOMEM; }

const char *sg_ckpt_errmsg(const sg_ckpt *c)
{
    return c ? c->msg : "checkpoint: out of memory opening the file";
}

int sg_ckpt_count(const sg_ckpt *c) { return c ? c->n : 0; }

const sg_ckpt_entry *sg_ckpt_get(const sg_ckpt *c, int i) { return c && i >= 0 && i < c->n ? &c->e[i] : NULL; }

const sg_ckpt_entry *sg_ckpt_find(const sg_ckpt *c, const char *name)
{
    for (int i = 0; c && name && i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return &c->e[i];
    return NULL;
}

int sg_ckpt_meta_count(const sg_ckpt *c) { return c ? c->n_meta : 0; }

const char *sg_ckpt_meta_key(const sg_ckpt *c, int i) { return c && i >= 0 && i < c->n_meta ? c->meta[2 * i] : NULL; }

const char *sg_ckpt_meta(const sg_ckpt *c, const char *key)
{
    for (int i = 0; c && key && i < c->n_meta; i++)
        if (strcmp(c->meta[2 * i], key) == 0)
            return c->meta[2 * i + 1];
    return NULL;
}

/* the header parser: a small state machine over libyaml events */
typedef struct {
    yaml_parser_t p;
    yaml_event_t ev;
    bool have;
    char *err;
    size_t errlen;
    const char *path;
} reader;

static bool next(reader *r)
{
    if (r->have)
        yaml_event_delete(&r->ev);
    r->have = yaml_parser_parse(&r->p, &r->ev);
    if (!r->have)
        fail(r->err, r->errlen, SG_ERR_FORMAT, "%s: header is not valid JSON: %s at byte %zu", r->path,
             r->p.problem ? r->p.problem : "parse error", r->p.problem_offset);
    return r->have;
}

static bool expect(reader *r, yaml_event_type_t type, const char *what)
{
    if (!next(r))
        return false;
    if (r->ev.type != type) {
        fail(r->err, r->errlen, SG_ERR_FORMAT, "%s: header: expected %s at byte %zu", r->path, what,
             r->ev.start_mark.index);
        return false;
    }
    return true;
}

/* Inside an object: 1 when the next event is a key (a scalar), 0 at the
 * object's end, -1 on an error (the message is set). */
static int next_key(reader *r, const char *where)
{
    if (!next(r))
        return -1;
    if (r->ev.type == YAML_MAPPING_END_EVENT)
        return 0;
    if (r->ev.type != YAML_SCALAR_EVENT) {
        fail(r->err, r->errlen, SG_ERR_FORMAT, "%s: header: expected a key in %s at byte %zu", r->path, where,
             r->ev.start_mark.index);
        return -1;
    }
    return 1;
}

static char *scalar_copy(const reader *r)
{
    return strndup((const char *)r->ev.data.scalar.value, r->ev.data.scalar.length);
}

/* a sequence of non-negative integers, at most max of them */
static int read_ints(reader *r, long long *v, int max, const char *name, const char *field)
{
    if (!expect(r, YAML_SEQUENCE_START_EVENT, "a list"))
        return -1;
    int n = 0;
    for (;;) {
        if (!next(r))
            return -1;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT)
            return n;
        char *end;
        const char *s = (const char *)r->ev.data.scalar.value;
        if (r->ev.type != YAML_SCALAR_EVENT || n == max || (errno = 0, v[n] = strtoll(s, &end, 10), *end) ||
            errno || v[n] < 0 || *s == '\0') {
            fail(r->err, r->errlen, SG_ERR_FORMAT, "%s: tensor %s: bad %s", r->path, name, field);
            return -1;
        }
        n++;
    }
}

static int cmp_begin(const void *a, const void *b)
{
    const long long *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Verifies each "crc32.NAME" of the metadata against NAME's bytes. */
static bool checksums_ok(sg_ckpt *c, const char *path)
{
    for (int i = 0; i < c->n_meta; i++) {
        const char *key = c->meta[2 * i], *want = c->meta[2 * i + 1];
        if (strncmp(key, CRC_PREFIX, strlen(CRC_PREFIX)) != 0)
            continue;
        const sg_ckpt_entry *e = sg_ckpt_find(c, key + strlen(CRC_PREFIX));
        if (!e) {
            fail(c->msg, sizeof c->msg, SG_ERR_FORMAT, "%s: metadata %s names no tensor", path, key);
            return false;
        }
        bool hex = want && strlen(want) == 8;
        for (int k = 0; hex && k < 8; k++)
            hex = (want[k] >= '0' && want[k] <= '9') || (want[k] >= 'a' && want[k] <= 'f');
        unsigned got = (unsigned)crc32_of(e->data, numel(e) * sg_dtype_size(e->dtype));
        if (!hex || strtoul(want, NULL, 16) != got) {
            fail(c->msg, sizeof c->msg, SG_ERR_FORMAT,
                 "%s: tensor %s: checksum %s in the metadata, %08x in the data: the file is corrupt", path, e->name,
                 hex ? want : "(not 8 hex digits)", got);
            return false;
        }
    }
    return true;
}

/* Validates the file held in c->buf (size bytes); path names it. */
static void parse(sg_ckpt *c, const char *path, size_t size);

sg_ckpt *sg_ckpt_open(const char *path)
{
    sg_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    FILE *f = path ? fopen(path, "rb") : NULL;
    struct stat st;
    size_t size = 0;
    if (!f)
        c->err = path ? SG_ERR_IO : SG_ERR_NULL,
        fail(c->msg, sizeof c->msg, c->err, "%s: cannot open: %s", path ? path : "(NULL)",
             path ? strerror(errno) : "the path is NULL");
    else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        c->err = fail(c->msg, sizeof c->msg, SG_ERR_IO, "%s: not a regular file", path);
    else if (!(c->buf = malloc((size = (size_t)st.st_size) ? size : 1)) || fread(c->buf, 1, size, f) != size)
        c->err = fail(c->msg, sizeof c->msg, c->buf ? SG_ERR_IO : SG_ERR_NOMEM, "%s: cannot %s %zu bytes", path,
                      c->buf ? "read" : "hold", size);
    if (f)
        fclose(f);
    if (c->err)
        release(c);
    else
        parse(c, path, size);
    return c;
}

sg_ckpt *sg_ckpt_open_buffer(const void *data, size_t size, const char *name)
{
    sg_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (!data && size)
        c->err = fail(c->msg, sizeof c->msg, SG_ERR_NULL, "%s: the data is NULL", name ? name : "(buffer)");
    else if (!(c->buf = malloc(size ? size : 1)))
        c->err = fail(c->msg, sizeof c->msg, SG_ERR_NOMEM, "%s: cannot hold %zu bytes", name ? name : "(buffer)", size);
    if (c->err) {
        release(c);
        return c;
    }
    if (size)
        memcpy(c->buf, data, size);
    parse(c, name ? name : "(buffer)", size);
    return c;
}

static void parse(sg_ckpt *c, const char *path, size_t size)
{
    char *err = c->msg;
    size_t errlen = sizeof c->msg;
    sg_status why = SG_ERR_FORMAT;
    reader r = {.err = err, .errlen = errlen, .path = path};
    long long (*spans)[2] = NULL;
    bool ok = false, parser = false;
    if (size < 8) {
        fail(err, errlen, SG_ERR_FORMAT, "%s: truncated: %zu bytes, a checkpoint has at least 8", path, size);
        goto out;
    }
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--)
        N = N << 8 | c->buf[i];
    if (N > MAX_HEADER || N > size - 8) {
        fail(err, errlen, SG_ERR_FORMAT, "%s: truncated or corrupt: header length %llu, but %zu bytes follow", path,
             (unsigned long long)N, size - 8);
        goto out;
    }
    size_t data_size = size - 8 - (size_t)N;
    unsigned char *data = c->buf + 8 + N;

    if (!yaml_parser_initialize(&r.p)) {
        why = SG_ERR_NOMEM;
        fail(err, errlen, why, "%s: out of memory", path);
        goto out;
    }
    parser = true;
    yaml_parser_set_input_string(&r.p, c->buf + 8, (size_t)N);
    if (!expect(&r, YAML_STREAM_START_EVENT, "JSON") || !expect(&r, YAML_DOCUMENT_START_EVENT, "JSON") ||
        !expect(&r, YAML_MAPPING_START_EVENT, "a JSON object"))
        goto out;
    int cap = 0;
    for (;;) {
        if (!next(&r))
            goto out;
        if (r.ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (r.ev.type != YAML_SCALAR_EVENT) {
            fail(err, errlen, SG_ERR_FORMAT, "%s: header: expected a tensor name at byte %zu", path, r.ev.start_mark.index);
            goto out;
        }
        char *name = scalar_copy(&r);
        if (!name)
            goto out;
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (!expect(&r, YAML_MAPPING_START_EVENT, "the metadata object"))
                goto out;
            int more;
            while ((more = next_key(&r, "the metadata")) == 1) {
                char *k = scalar_copy(&r);
                if (!k || !expect(&r, YAML_SCALAR_EVENT, "a metadata string")) {
                    free(k);
                    goto out;
                }
                char **m = realloc(c->meta, (size_t)(2 * c->n_meta + 2) * sizeof *m);
                if (!m) {
                    free(k);
                    goto out;
                }
                c->meta = m;
                m[2 * c->n_meta] = k, m[2 * c->n_meta + 1] = scalar_copy(&r);
                c->n_meta++;
            }
            if (more < 0)
                goto out;
            continue;
        }
        if (sg_ckpt_find(c, name)) {
            fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s appears twice", path, name);
            free(name);
            goto out;
        }
        if (c->n == cap) {
            cap = cap ? 2 * cap : 16;
            sg_ckpt_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
            char **nm = e ? realloc(c->names, (size_t)cap * sizeof *nm) : NULL;
            long long (*sp)[2] = nm ? realloc(spans, (size_t)cap * sizeof *sp) : NULL;
            void **cp = sp ? realloc(c->copies, (size_t)cap * sizeof *cp) : NULL;
            if (e) c->e = e;
            if (nm) c->names = nm;
            if (sp) spans = sp;
            if (cp) c->copies = cp;
            if (!e || !nm || !sp || !cp) {
                free(name);
                goto out;
            }
        }
        sg_ckpt_entry *e = &c->e[c->n];
        c->copies[c->n] = NULL;
        c->names[c->n++] = name;
        *e = (sg_ckpt_entry){.name = name, .ndim = -1};
        long long shape[8], offs[2] = {-1, -1};
        int ndim = -1, noff = -1;
        bool dtype_seen = false;
        if (!expect(&r, YAML_MAPPING_START_EVENT, "a tensor object"))
            goto out;
        int more;
        while ((more = next_key(&r, name)) == 1) {
            const char *key = (const char *)r.ev.data.scalar.value;
            if (strcmp(key, "dtype") == 0) {
                if (!expect(&r, YAML_SCALAR_EVENT, "a dtype"))
                    goto out;
                const char *dt = (const char *)r.ev.data.scalar.value;
                if (strcmp(dt, "F32") && strcmp(dt, "F64")) {
                    fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s has dtype %s (F32 and F64 are supported)", path,
                         name, dt);
                    goto out;
                }
                e->dtype = dt[1] == '3' ? SG_F32 : SG_F64;
                dtype_seen = true;
            } else if (strcmp(key, "shape") == 0) {
                if ((ndim = read_ints(&r, shape, 8, name, "shape")) < 0)
                    goto out;
            } else if (strcmp(key, "data_offsets") == 0) {
                if ((noff = read_ints(&r, offs, 2, name, "data_offsets")) < 0)
                    goto out;
            } else {
                fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s: unknown field at byte %zu", path, name,
                     r.ev.start_mark.index);
                goto out;
            }
        }
        if (more < 0)
            goto out;
        if (!dtype_seen || ndim < 0 || noff != 2) {
            fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s lacks %s", path, name,
                 !dtype_seen ? "dtype" : ndim < 0 ? "shape" : "data_offsets [begin, end]");
            goto out;
        }
        if (ndim < 1 || ndim > SG_MAX_DIMS) {
            fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s has %d dimensions (1 to 4 supported)", path, name, ndim);
            goto out;
        }
        e->ndim = ndim;
        unsigned long long elems = 1;
        for (int d = 0; d < ndim; d++) {
            if (shape[d] < 1 || shape[d] > INT32_MAX || elems > (1ULL << 40) / (unsigned long long)shape[d]) {
                fail(err, errlen, SG_ERR_FORMAT, "%s: tensor %s: bad dimension %lld", path, name, shape[d]);
                goto out;
            }
            e->shape[d] = (int)shape[d];
            elems *= (unsigned long long)shape[d];
        }
        unsigned long long want = elems * sg_dtype_size(e->dtype);
        if (offs[1] < offs[0] || (unsigned long long)(offs[1] - offs[0]) != want || (size_t)offs[1] > data_size) {
            fail(err, errlen, SG_ERR_FORMAT,
                 "%s: tensor %s: data_offsets [%lld, %lld] do not hold %llu bytes within the %zu of the file", path,
                 name, offs[0], offs[1], want, data_size);
            goto out;
        }
        e->data = data + offs[0];
        if ((uintptr_t)e->data % sg_dtype_size(e->dtype)) {   /* another writer's layout: read from an aligned copy */
            if (!(c->copies[c->n - 1] = malloc((size_t)want ? (size_t)want : 1)))
                goto out;
            memcpy(c->copies[c->n - 1], e->data, (size_t)want);
            e->data = c->copies[c->n - 1];
        }
        spans[c->n - 1][0] = offs[0], spans[c->n - 1][1] = offs[1];
    }
    if (!expect(&r, YAML_DOCUMENT_END_EVENT, "the end of the header"))
        goto out;
    /* the tensors must tile the data section exactly */
    if (c->n)
        qsort(spans, (size_t)c->n, sizeof *spans, cmp_begin);
    long long at = 0;
    for (int i = 0; i < c->n; i++) {
        if (spans[i][0] != at) {
            fail(err, errlen, SG_ERR_FORMAT, "%s: tensor data %s at byte %lld of the data section", path,
                 spans[i][0] < at ? "overlaps" : "leaves a gap", at);
            goto out;
        }
        at = spans[i][1];
    }
    if ((size_t)at != data_size) {
        fail(err, errlen, SG_ERR_FORMAT, "%s: %zu bytes of data, the tensors account for %lld", path, data_size, at);
        goto out;
    }
    ok = checksums_ok(c, path);
out:
    if (r.have)
        yaml_event_delete(&r.ev);
    if (parser)
        yaml_parser_delete(&r.p);
    free(spans);
    if (!ok) {                  /* the handle stays, with the message; its content goes */
        if (!err[0])
            why = SG_ERR_NOMEM, snprintf(err, errlen, "%s: out of memory", r.path);
        c->err = why;
        release(c);
    }
}

sg_status sg_ckpt_load_params(const sg_ckpt *c, sg_params *ps, const char *prefix)
{
    size_t plen = strlen(prefix ? prefix : "");
    char name[512], err[600];
    size_t errlen = sizeof err;
    if (!ps)
        return SG_ERR_NULL;
    if (!c || c->err)
        return sg_params_fail(ps, c ? SG_ERR_STATE : SG_ERR_NULL, "load_params: %s",
                              c ? c->msg : "the checkpoint is NULL");
    /* check everything first, so that a refusal changes nothing */
    for (int i = 0; i < sg_params_count(ps); i++) {
        sg_tensor *p = sg_params_get(ps, i);
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", sg_params_name(ps, i));
        const sg_ckpt_entry *e = sg_ckpt_find(c, name);
        if (!e)
            return sg_params_fail(ps, fail(err, errlen, SG_ERR_FORMAT, "checkpoint has no tensor %s", name), "%s", err);
        if (e->ndim != p->ndim || memcmp(e->shape, p->shape, (size_t)p->ndim * sizeof(int)) != 0) {
            char a[48], b[48];
            sg_tensor tmp_a = {.ndim = e->ndim}, tmp_b = {.ndim = p->ndim};
            memcpy(tmp_a.shape, e->shape, sizeof tmp_a.shape);
            memcpy(tmp_b.shape, p->shape, sizeof tmp_b.shape);
            fail(err, errlen, SG_ERR_FORMAT, "checkpoint tensor %s has shape %s, the model expects %s", name,
                 sg_shape_str(&tmp_a, a), sg_shape_str(&tmp_b, b));
            return sg_params_fail(ps, SG_ERR_FORMAT, "%s", err);
        }
    }
    for (int i = 0; i < c->n; i++)
        if (strncmp(c->names[i], prefix ? prefix : "", plen) == 0 && !sg_params_find(ps, c->names[i] + plen))
            return sg_params_fail(ps, SG_ERR_FORMAT, "checkpoint tensor %s is not a parameter of this model", c->names[i]);
    for (int i = 0; i < sg_params_count(ps); i++) {
        sg_tensor *p = sg_params_get(ps, i);
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", sg_params_name(ps, i));
        const sg_ckpt_entry *e = sg_ckpt_find(c, name);
        for (size_t j = 0; j < p->size; j++) {
            double v = e->dtype == SG_F32 ? (double)((const float *)e->data)[j] : ((const double *)e->data)[j];
            sg_tensor_set(p, j, v);
        }
    }
    return SG_OK;
}
