/*
 * fuzz_data.c - libFuzzer target: the dataset readers (text, words, lines,
 * pairs) on any file. The first byte picks the kind, the rest is the file;
 * a dataset that loads is batched as training would batch it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], yaml[256], err[1024];
    static const char *kinds[] = {"text", "words", "lines", "pairs"};
    if (size < 1)
        return 0;
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/seqgrad-fuzz-data-%d.txt", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f) != 0)
        abort();
    const char *kind = kinds[data[0] % 4];
    int n = snprintf(yaml, sizeof yaml, "model: {kind: %s}\ndata: {kind: %s, path: \"%s\", batch_size: 2, seq_len: 4}\n",
                     data[0] % 4 == 3 ? "seq2seq" : "lstm", kind, path);
    sg_config c;
    if (cfg_load_text(&c, "fuzz.yaml", yaml, (size_t)n, err, sizeof err) != 0 || cfg_check(&c, err, sizeof err) != 0)
        abort();                                 /* the config is ours: it must load */
    dataset d;
    memset(&d, 0, sizeof d);
    if (data_load(&d, &c, NULL, NULL, USE_SPLITS, err, sizeof err) == EXIT_OK) {
        int idx[2] = {0, 0}, x[64 * 2], y[64 * 2], src[512 * 2], len[2], S;
        if (d.task == TASK_ITEMS && d.len[0] > 0)
            data_lm_batch(&d, 0, idx, 1, 32, x, y);
        if (d.task == TASK_S2S && d.len[0] > 0 && data_max_len(&d) + 2 <= 64)
            data_s2s_batch(&d, 0, idx, 1, src, len, &S, x, y);
        for (long i = 0; d.task == TASK_STREAM && i < d.len[0]; i++)
            if (d.ids[0][i] < 0 || d.ids[0][i] >= d.V)
                abort();
    }
    data_free(&d);
    return 0;
}
