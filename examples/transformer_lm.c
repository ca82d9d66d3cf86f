/*
 * transformer_lm.c - a small decoder-only transformer language model on the
 * same text as the char LSTM (default: data/genesis.txt).
 *
 *   x = Embed(c) + PE                     sinusoidal positions, (B,T,d)
 *   x = layer_k(x), k = 1..N               pre-norm, causal self-attention, GELU FF
 *   z = W LN(x) + b                        logits over the characters
 *   L = mean cross_entropy(z_t, c_{t+1})
 *
 * Random windows of T characters from the first 90% of the text; Adam with
 * warmup and cosine decay; the validation loss on the last 10% against the
 * unigram entropy; then a sample (each new character re-reads the window).
 *
 *   transformer_lm [FILE] [--steps N] [--layers L] [--d D]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "text.h"

enum { B = 32, T = 64, HEADS = 4 };

int main(int argc, char **argv)
{
    const char *path = SEQGRAD_DATA_DIR "/genesis.txt";
    int steps = 500, layers = 2, d = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--d") && i + 1 < argc) d = atoi(argv[++i]);
        else path = argv[i];
    }
    text tx;
    if (text_load(&tx, path) != 0)
        return 1;
    long n_train = tx.n * 9 / 10;

    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_params *ps = sg_params_new();
    sg_transformer_lm m;
    sg_transformer_opts o = sg_transformer_defaults(d, HEADS);
    o.norm_first = true, o.gelu = true;
    if (sg_transformer_lm_init(&m, ps, tx.V, T, layers, false, &o, SG_F32, &rng) != SG_OK) {
        fprintf(stderr, "transformer_lm: bad sizes\n");
        return 1;
    }
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 1e-3;
    sg_optim *opt = sg_optim_new(ps, &oo);
    sg_schedule sched = {.kind = SG_SCHED_COSINE, .lr = oo.lr, .warmup = 50, .total = steps, .min_lr = 1e-4};
    printf("transformer_lm: %s, %ld chars, vocabulary %d, unigram entropy %.3f nats/char\n", path, tx.n, tx.V,
           tx.unigram);
    printf("model: d %d, %d heads, %d layers (pre-norm, GELU), %zu parameters; batch %d x %d\n", d, HEADS, layers,
           sg_params_numel(ps), B, T);

    sg_tape *t = sg_tape_new();
    static int x[B * T], y[B * T];
    double t0 = seconds(), smooth = 0;
    for (int step = 0; step <= steps; step++) {
        bool eval = step == steps;           /* last batch: evenly spread over held-out text */
        for (int b = 0; b < B; b++) {
            long at = eval ? n_train + (long)b * ((tx.n - n_train - T - 1) / B)
                           : (long)sg_rng_int(&rng, (int)(n_train - T - 1));
            for (int k = 0; k < T; k++)
                x[b * T + k] = tx.ids[at + k], y[b * T + k] = tx.ids[at + k + 1];
        }
        sg_tape_reset(t);
        sg_tape_set_grad(t, !eval);
        sg_tensor *loss = sg_cross_entropy(t, sg_transformer_lm_forward(t, &m, x, B, T, NULL), y, NULL);
        if (!loss) {
            fprintf(stderr, "transformer_lm: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        double l = sg_tensor_get(loss, 0);
        if (eval) {
            printf("validation: %.3f nats/char (perplexity %.2f); unigram entropy %.3f; %.0f s\n", l, exp(l),
                   tx.unigram, seconds() - t0);
            break;
        }
        sg_backward(t, loss);
        sg_clip_grad_norm(ps, 1.0);
        sg_optim_step(opt, sg_schedule_lr(&sched, step));
        sg_params_zero_grad(ps);
        smooth = step ? 0.9 * smooth + 0.1 * l : l;
        if (step % 50 == 0)
            printf("step %4d  loss %.3f  ppl %6.2f  %6.0f chars/s\n", step, smooth, exp(smooth),
                   (double)(step + 1) * B * T / (seconds() - t0));
        fflush(stdout);
    }

    /* sample 300 characters at temperature 0.7 after a prompt */
    const char *prompt = "And God said";
    int ctx[T], len = 0;
    for (const char *c = prompt; *c; c++)
        ctx[len++] = tx.id_of[(unsigned char)*c];
    printf("sample (temperature 0.70):\n%s", prompt);
    for (int i = 0; i < 300; i++) {
        sg_tape_reset(t);
        sg_tape_set_grad(t, false);
        sg_tensor *z = sg_transformer_lm_forward(t, &m, ctx, 1, len, NULL);
        sg_tensor *p = sg_softmax(t, sg_scale(t, sg_select(t, sg_select(t, z, 0, 0), 0, len - 1), 1 / 0.7), 0, NULL);
        double u = sg_rng_uniform(&rng), acc = 0;
        int c = 0;
        for (; c < tx.V - 1; c++)
            if ((acc += sg_tensor_get(p, (size_t)c)) > u)
                break;
        putchar(tx.vocab[c]);
        if (len == T)                        /* slide the window */
            memmove(ctx, ctx + 1, (T - 1) * sizeof *ctx), len--;
        ctx[len++] = c;
    }
    putchar('\n');
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    free(tx.ids);
    return 0;
}
