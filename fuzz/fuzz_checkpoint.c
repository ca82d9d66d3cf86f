/*
 * fuzz_checkpoint.c - libFuzzer target: the checkpoint reader on any bytes.
 * A file it accepts is read through every accessor and loaded into
 * parameters of the shapes it declares; ASan and UBSan watch every read.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <seqgrad/checkpoint.h>
#include <seqgrad/seqgrad.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_ckpt *c = sg_ckpt_open_buffer(data, size, "fuzz.safetensors");
    if (sg_ckpt_error(c) != SG_OK) {
        (void)sg_ckpt_errmsg(c);
        sg_ckpt_close(c);
        return 0;
    }
    sg_params *ps = sg_params_new();
    double sum = 0;
    for (int i = 0; i < sg_ckpt_count(c); i++) {
        const sg_ckpt_entry *e = sg_ckpt_get(c, i);
        size_t n = sg_dtype_size(e->dtype);
        for (int d = 0; d < e->ndim; d++)
            n *= (size_t)e->shape[d];
        for (size_t k = 0; k < n; k++)           /* every byte is readable */
            sum += ((const unsigned char *)e->data)[k];
        if (n <= ((size_t)1 << 20))
            sg_params_add(ps, e->name, sg_param_new(e->dtype, e->ndim, e->shape));
    }
    for (int i = 0; i < sg_ckpt_meta_count(c); i++)
        sum += (double)strlen(sg_ckpt_meta(c, sg_ckpt_meta_key(c, i)));
    sg_ckpt_load_params(c, ps, "");
    sg_params_free(ps);
    sg_ckpt_close(c);
    return sum < 0;
}
