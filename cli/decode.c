/*
 * decode.c - a seq2seq run's outputs and what they attended to: batched
 * greedy decoding (the library's sg_seq2seq_greedy), the attention weights
 * of a decoded output and their heatmap, and a token as text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "run.h"

int run_greedy(run *r, sg_tape *t, const int *src, const int *src_len, int B, int S, int *out, int *out_len)
{
    sg_tape_reset(t);
    sg_decode_opts o = {.beam = 1, .max_len = r->max_out, .start = r->d.V, .end = r->d.V + 1};
    return r->model == MODEL_S2S ? sg_seq2seq_greedy(t, &r->s2s, src, src_len, B, S, &o, out, out_len)
                                 : sg_transformer_s2s_greedy(t, &r->ts2s, src, src_len, B, S, &o, out, out_len);
}

double *run_attention(run *r, sg_tape *t, const int *src, int S, const int *out, int out_len)
{
    if (r->model != MODEL_S2S)
        return NULL;
    bool was = sg_tape_set_grad(t, false);
    sg_tape_reset(t);
    double *w = calloc((size_t)(out_len + 1) * (size_t)S, sizeof *w);
    sg_seq2seq_enc enc;
    int prev = r->d.V;                       /* SOS */
    if (w && sg_seq2seq_encode(t, &r->s2s, src, NULL, 1, S, &enc) == SG_OK)
        for (int k = 0; k <= out_len; k++) {
            sg_tensor *a = NULL;
            if (!sg_seq2seq_step(t, &r->s2s, &enc, &prev, &a) || !a)
                break;
            for (int j = 0; j < S; j++)
                w[k * S + j] = sg_tensor_get(a, (size_t)j);
            prev = k < out_len ? out[k] : prev;
        }
    sg_tape_set_grad(t, was);
    return w;
}

const char *run_token_text(const run *r, int id, char buf[8])
{
    if (id == r->d.V)
        return "<s>";
    if (id == r->d.V + 1)
        return "</s>";
    unsigned char c = id >= 0 && id < r->d.V ? r->d.vocab[id] : '?';
    if (c == '\n')
        return "\\n";
    if (c == ' ')
        return "\u2423";                   /* open box */
    if (c < 32 || c == 127) {
        snprintf(buf, 8, "\\x%02x", c);
        return buf;
    }
    snprintf(buf, 8, "%c", c);
    return buf;
}

int run_attention_svg(run *r, sg_tape *t, const char *path, const int *src, int S, const int *out, int out_len,
                      const char *title)
{
    double *w = run_attention(r, t, src, S, out, out_len);
    const char **rows = malloc((size_t)(out_len + 1) * sizeof *rows), **cols = malloc((size_t)S * sizeof *cols);
    char (*buf)[8] = malloc((size_t)(out_len + 1 + S) * sizeof *buf);
    int rc = -1;
    if (w && rows && cols && buf) {
        for (int j = 0; j < S; j++)
            cols[j] = run_token_text(r, src[j], buf[j]);
        for (int k = 0; k <= out_len; k++)
            rows[k] = run_token_text(r, k < out_len ? out[k] : r->d.V + 1, buf[S + k]);
        rc = plot_attention(path, w, out_len + 1, S, rows, cols, title);
    }
    free(w), free(rows), free(cols), free(buf);
    return rc;
}
