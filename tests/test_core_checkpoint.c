/*
 * test_core_checkpoint.c - core/checkpoint.c: round trips in f32 and f64,
 * the exact bytes of a small file (safetensors layout), and refusals with
 * their messages: truncated files, corrupt headers (bad JSON, bad dtype,
 * offsets that do not match, gaps, overlaps, duplicates) and checkpoints
 * that do not match the model (missing, unknown, wrong shape), which must
 * leave the model unchanged. Files go to a fresh temporary folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"

static char dir[64], path[128];
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/seqgrad-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    err[0] = '\0';
}

static void teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static sg_params *model(sg_dtype dt, int rows, uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_params *ps = sg_params_new();
    sg_params_add(ps, "lstm.weight_ih_l0", sg_param_randn(dt, 2, (int[]){rows, 3}, 1, &rng));
    sg_params_add(ps, "lstm.bias_ih_l0", sg_param_randn(dt, 1, (int[]){rows}, 1, &rng));
    return ps;
}

START_TEST(test_round_trip)
{
    sg_dtype dt = (sg_dtype)_i;
    sg_params *a = model(dt, 8, 1), *b = model(dt, 8, 2);
    const char *meta[] = {"step", "42", "config", "model:\n  kind: \"lstm\"\n"};
    ck_assert_msg(sg_ckpt_save_params(path, a, "", meta, 2) == SG_OK, "%s", sg_params_errmsg(a));
    sg_ckpt *c = sg_ckpt_open(path);
    ck_assert_msg(sg_ckpt_error(c) == SG_OK, "%s", sg_ckpt_errmsg(c));
    ck_assert_int_eq(sg_ckpt_count(c), 2);
    ck_assert_str_eq(sg_ckpt_meta(c, "step"), "42");
    ck_assert_str_eq(sg_ckpt_meta(c, "config"), "model:\n  kind: \"lstm\"\n");   /* escapes survive */
    ck_assert_ptr_null(sg_ckpt_meta(c, "nope"));
    ck_assert_int_eq(sg_ckpt_load_params(c, b, ""), SG_OK);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sg_tensor_size(sg_params_get(a, k)); i++)
            ck_assert_double_eq(sg_tensor_get(sg_params_get(a, k), i), sg_tensor_get(sg_params_get(b, k), i));
    /* into f64 from an f32 file (a gradient check of a trained model) */
    sg_params_cast(b, SG_F64);
    ck_assert_int_eq(sg_ckpt_load_params(c, b, ""), SG_OK);
    sg_ckpt_close(c);
    /* no temporary file is left beside it */
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    sg_params_free(a), sg_params_free(b);
}
END_TEST

START_TEST(test_exact_bytes)
{
    float w[4] = {1, 2, 3, 4};
    sg_ckpt_entry e = {.name = "W", .dtype = SG_F32, .ndim = 2, .shape = {2, 2}, .data = w};
    const char *meta[] = {"step", "3"};
    ck_assert_int_eq(sg_ckpt_write(path, &e, 1, meta, 1, err, sizeof err), SG_OK);
    FILE *f = fopen(path, "rb");
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* the checksum is zlib.crc32 of the 16 bytes: python3 -c 'import struct, zlib;
     * print("%08x" % zlib.crc32(struct.pack("<4f", 1, 2, 3, 4)))' */
    const char *json = "{\"__metadata__\":{\"step\":\"3\",\"crc32.W\":\"8ba71454\"},"
                       "\"W\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    size_t hl = buf[0] | (size_t)buf[1] << 8;
    ck_assert_uint_eq(hl % 8, 0);                      /* padded with spaces to 8 */
    ck_assert_uint_eq(n, 8 + hl + 16);
    ck_assert(memcmp(buf + 8, json, strlen(json)) == 0);
    for (size_t i = 8 + strlen(json); i < 8 + hl; i++)
        ck_assert_int_eq(buf[i], ' ');
    ck_assert(memcmp(buf + 8 + hl, w, 16) == 0);     /* little-endian floats */
}
END_TEST

/* writes 8-byte length + header + data bytes as given */
static void write_raw(const char *header, const void *data, size_t dlen, long fake_len)
{
    FILE *f = fopen(path, "wb");
    unsigned long long n = fake_len >= 0 ? (unsigned long long)fake_len : strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)(n >> (8 * i)) & 0xff, f);
    fwrite(header, 1, strlen(header), f);
    if (dlen)
        fwrite(data, 1, dlen, f);
    fclose(f);
}

/* the handle of a refused file: its error, its message, no content */
static void refused(const char *expect)
{
    sg_ckpt *c = sg_ckpt_open(path);
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(sg_ckpt_error(c) != SG_OK, "accepted a bad file (expected: %s)", expect);
    char full[400];
    snprintf(full, sizeof full, "%s: %s", path, expect);
    ck_assert_str_eq(sg_ckpt_errmsg(c), full);
    ck_assert_int_eq(sg_ckpt_count(c), 0);
    ck_assert_ptr_null(sg_ckpt_meta(c, "step"));
    sg_ckpt_close(c);
}

static void refused_containing(const char *part)
{
    sg_ckpt *c = sg_ckpt_open(path);
    ck_assert_int_ne(sg_ckpt_error(c), SG_OK);
    ck_assert_msg(strstr(sg_ckpt_errmsg(c), part) != NULL, "%s", sg_ckpt_errmsg(c));
    sg_ckpt_close(c);
}

START_TEST(test_refuses_truncated_and_corrupt)
{
    static const unsigned char d16[16] = {0};
    write_raw("", NULL, 0, 0);
    FILE *f = fopen(path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    refused("truncated: 3 bytes, a checkpoint has at least 8");
    write_raw("{\"W\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d16, 16, 900);
    refused("truncated or corrupt: header length 900, but 73 bytes follow");
    write_raw("{\"W\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d16, 10, -1);
    refused("tensor W: data_offsets [0, 16] do not hold 16 bytes within the 10 of the file");
    write_raw("{\"W\": [1, 2", d16, 16, -1);
    refused_containing("header");
    write_raw("{\"W\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}", d16, 16, -1);
    refused("tensor W has dtype BF16 (F32 and F64 are supported)");
    write_raw("{\"W\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", d16, 16, -1);
    refused("tensor W: data_offsets [0, 16] do not hold 24 bytes within the 16 of the file");
    write_raw("{\"W\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d16, 16, -1);
    refused("tensor data leaves a gap at byte 0 of the data section");
    write_raw("{\"A\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"B\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d16, 16, -1);
    refused("tensor data overlaps at byte 16 of the data section");
    write_raw("{\"A\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"A\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d16, 16, -1);
    refused("tensor A appears twice");
    write_raw("{\"A\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"extra\":1}}", d16, 16, -1);
    refused_containing("tensor A: unknown field");
    write_raw("{\"A\":{\"dtype\":\"F32\",\"shape\":[4]}}", d16, 16, -1);
    refused("tensor A lacks data_offsets [begin, end]");
    sg_ckpt *c = sg_ckpt_open("/nonexistent/x.safetensors");
    ck_assert_int_eq(sg_ckpt_error(c), SG_ERR_IO);
    ck_assert_str_eq(sg_ckpt_errmsg(c), "/nonexistent/x.safetensors: cannot open: No such file or directory");
    sg_ckpt_close(c);
    c = sg_ckpt_open(NULL);
    ck_assert_int_eq(sg_ckpt_error(c), SG_ERR_NULL);
    ck_assert_str_eq(sg_ckpt_errmsg(c), "(NULL): cannot open: the path is NULL");
    sg_ckpt_close(c);
    /* every accessor takes NULL */
    ck_assert_int_eq(sg_ckpt_count(NULL), 0);
    ck_assert_ptr_null(sg_ckpt_get(NULL, 0));
    ck_assert_ptr_null(sg_ckpt_find(NULL, "W"));
    ck_assert_ptr_null(sg_ckpt_meta(NULL, "step"));
    sg_ckpt_close(NULL);
}
END_TEST

START_TEST(test_refuses_mismatched_model)
{
    sg_params *saved = model(SG_F32, 8, 1);
    ck_assert_int_eq(sg_ckpt_save_params(path, saved, "", NULL, 0), SG_OK);
    sg_ckpt *c = sg_ckpt_open(path);
    ck_assert_int_eq(sg_ckpt_error(c), SG_OK);
    sg_params *other = model(SG_F32, 4, 7);             /* other sizes */
    double before = sg_tensor_get(sg_params_get(other, 1), 0);
    ck_assert_int_eq(sg_ckpt_load_params(c, other, ""), SG_ERR_FORMAT);
    ck_assert_str_eq(sg_params_errmsg(other), "checkpoint tensor lstm.weight_ih_l0 has shape (8,3), the model expects (4,3)");
    ck_assert_double_eq(sg_tensor_get(sg_params_get(other, 1), 0), before);     /* unchanged */
    sg_params *more = model(SG_F32, 8, 1);
    sg_params_add(more, "decoder.weight", sg_param_new(SG_F32, 2, (int[]){2, 2}));
    ck_assert_int_eq(sg_ckpt_load_params(c, more, ""), SG_ERR_FORMAT);
    ck_assert_str_eq(sg_params_errmsg(more), "checkpoint has no tensor decoder.weight");
    sg_params *fewer = sg_params_new();
    sg_params_add(fewer, "lstm.weight_ih_l0", sg_param_new(SG_F32, 2, (int[]){8, 3}));
    ck_assert_int_eq(sg_ckpt_load_params(c, fewer, ""), SG_ERR_FORMAT);
    ck_assert_str_eq(sg_params_errmsg(fewer), "checkpoint tensor lstm.bias_ih_l0 is not a parameter of this model");
    sg_ckpt_close(c);
    sg_params_free(saved), sg_params_free(other), sg_params_free(more), sg_params_free(fewer);
}
END_TEST

START_TEST(test_write_errors)
{
    sg_params *a = model(SG_F32, 2, 1);
    ck_assert_int_eq(sg_ckpt_save_params("/nonexistent/dir/m.safetensors", a, "", NULL, 0), SG_ERR_IO);
    ck_assert_msg(strstr(sg_params_errmsg(a), "/nonexistent/dir/m.safetensors: cannot create a temporary file") ==
                  sg_params_errmsg(a), "%s", sg_params_errmsg(a));
    sg_params_free(a);
    /* what no reader reads back is refused before anything is written */
    float w[2] = {1, 2};
    sg_ckpt_entry e[2] = {{.name = "W", .dtype = SG_F32, .ndim = 1, .shape = {2}, .data = w},
                          {.name = "W", .dtype = SG_F32, .ndim = 1, .shape = {2}, .data = w}};
    ck_assert_int_eq(sg_ckpt_write(path, e, 2, NULL, 0, err, sizeof err), SG_ERR_ARG);
    ck_assert_str_eq(strchr(err, ' ') + 1, "tensor W appears twice");
    e[1].name = "__metadata__";
    ck_assert_int_eq(sg_ckpt_write(path, e, 2, NULL, 0, err, sizeof err), SG_ERR_ARG);
    ck_assert_str_eq(strchr(err, ' ') + 1, "tensor 1: the name \"__metadata__\" cannot be written");
    e[1].name = "V", e[1].ndim = 0;
    ck_assert_int_eq(sg_ckpt_write(path, e, 2, NULL, 0, err, sizeof err), SG_ERR_SHAPE);
    ck_assert_str_eq(strchr(err, ' ') + 1, "tensor V: 0 dimensions (1 to 4 can be read back)");
    e[1].ndim = 1, e[1].dtype = (sg_dtype)9;
    ck_assert_int_eq(sg_ckpt_write(path, e, 2, NULL, 0, err, sizeof err), SG_ERR_DTYPE);
    ck_assert_str_eq(strchr(err, ' ') + 1, "tensor V: dtype 9 is neither SG_F32 nor SG_F64");
    e[1].dtype = SG_F32;
    const char *meta[] = {"crc32.W", "0"};
    ck_assert_int_eq(sg_ckpt_write(path, e, 2, meta, 1, err, sizeof err), SG_ERR_ARG);
    ck_assert_str_eq(strchr(err, ' ') + 1, "metadata key crc32.W is reserved for checksums");
    ck_assert_int_eq(access(path, F_OK), -1);                  /* nothing was written */
}
END_TEST

/* a flipped byte inside a tensor's data is found by its checksum */
START_TEST(test_checksum_catches_flipped_bytes)
{
    sg_params *a = model(SG_F32, 8, 1);
    ck_assert_int_eq(sg_ckpt_save_params(path, a, "", NULL, 0), SG_OK);
    FILE *f = fopen(path, "r+b");
    ck_assert_int_eq(fseek(f, -5, SEEK_END), 0);                /* inside the last tensor's data */
    int c = fgetc(f);
    fseek(f, -5, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
    refused_containing("tensor lstm.bias_ih_l0: checksum ");
    refused_containing(": the file is corrupt");
    sg_params_free(a);
}
END_TEST

/* another writer's file: an F64 tensor at an offset that is not a multiple
 * of 8 (after an F32 tensor of 1 element) is read correctly (an unaligned
 * load, undefined behaviour, before) */
START_TEST(test_reads_unaligned_tensors)
{
    unsigned char data[12];
    float a = 1.5f;
    double b = -2.25;
    memcpy(data, &a, 4), memcpy(data + 4, &b, 8);
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}", data, 12, -1);
    sg_ckpt *c = sg_ckpt_open(path);
    ck_assert_msg(sg_ckpt_error(c) == SG_OK, "%s", sg_ckpt_errmsg(c));
    const sg_ckpt_entry *e = sg_ckpt_find(c, "b");
    ck_assert_uint_eq((uintptr_t)e->data % 8, 0);
    ck_assert_double_eq(*(const double *)e->data, -2.25);
    sg_params *ps = sg_params_new();
    sg_params_add(ps, "b", sg_param_new(SG_F64, 1, (int[]){1}));
    sg_params_add(ps, "a", sg_param_new(SG_F32, 1, (int[]){1}));
    ck_assert_msg(sg_ckpt_load_params(c, ps, "") == SG_OK, "%s", sg_params_errmsg(ps));
    ck_assert_double_eq(sg_tensor_get(sg_params_find(ps, "b"), 0), -2.25);
    sg_params_free(ps);
    sg_ckpt_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core/checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_round_trip, SG_F32, SG_F64 + 1);
    tcase_add_test(tc, test_exact_bytes);
    tcase_add_test(tc, test_refuses_truncated_and_corrupt);
    tcase_add_test(tc, test_refuses_mismatched_model);
    tcase_add_test(tc, test_write_errors);
    tcase_add_test(tc, test_checksum_catches_flipped_bytes);
    tcase_add_test(tc, test_reads_unaligned_tensors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
