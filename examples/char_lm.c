/*
 * char_lm.c - a character-level LSTM language model, trained with truncated
 * backpropagation through time on a text file (default: data/genesis.txt).
 *
 *   e_t  = Embed(c_t)                         (B,T,E)
 *   h_t  = LSTM_2(LSTM_1(e))_t                 stacked, dropout between
 *   z_t  = W h_t + b                           (B,T,V) logits
 *   L    = mean_t cross_entropy(z_t, c_{t+1})
 *
 * The text is cut into B parallel streams; each batch is the next T
 * characters of every stream, and the LSTM state at the end of one batch is
 * copied out (detached) and fed in as the initial state of the next. Gradients
 * are clipped by global norm, Adam updates. It prints the training loss and
 * perplexity as it goes, the validation loss on the last 10% of the text
 * against the unigram entropy (what a model without context can do), and then
 * samples text at a temperature.
 *
 *   char_lm [FILE] [--steps N] [--hidden H] [--layers L] [--temperature T] [--seed S]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#include "text.h"

enum { B = 32, T = 64 };

typedef struct {
    sg_params *ps;
    sg_embedding emb;
    sg_rnn lstm;
    sg_linear out;
    int V, H, L;
} model;

/* logits (B,T,V) for ids (B,T), from state[2] (heap, L*1,B,H); the final
 * state is left in next[2] (tape tensors). */
static sg_tensor *forward(sg_tape *t, const model *m, const int *ids, int b, int len, sg_tensor **state,
                          sg_tensor **next, sg_rng *dropout)
{
    sg_tensor *e = sg_embedding_forward(t, &m->emb, ids, b, len);
    sg_tensor *h = sg_rnn_forward(t, &m->lstm, e, state, NULL, dropout, next);
    return sg_linear_forward(t, &m->out, h);
}

/* mean cross-entropy (nats per char) over a span, in no-grad mode */
static double evaluate(sg_tape *t, const model *m, const int *ids, long n)
{
    long per = n / B, span = per - 1, steps = span / T;
    sg_tensor *state[2] = {sg_tensor_new(SG_F32, 3, (int[]){m->L, B, m->H}),
                           sg_tensor_new(SG_F32, 3, (int[]){m->L, B, m->H})};
    static int x[B * T], y[B * T];
    double total = 0;
    for (long s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++) {
                x[b * T + k] = ids[b * per + s * T + k];
                y[b * T + k] = ids[b * per + s * T + k + 1];
            }
        sg_tape_reset(t);
        bool was = sg_tape_set_grad(t, false);
        sg_tensor *next[2];
        sg_tensor *loss = sg_cross_entropy(t, forward(t, m, x, B, T, state, next, NULL), y, NULL);
        sg_tape_set_grad(t, was);
        total += sg_tensor_get(loss, 0);
        sg_tensor_copy(state[0], next[0]), sg_tensor_copy(state[1], next[1]);
    }
    sg_tensor_free(state[0]), sg_tensor_free(state[1]);
    return steps ? total / (double)steps : NAN;
}

/* Feeds prompt, then draws n characters from softmax(z / temperature). */
static void sample(sg_tape *t, const model *m, const unsigned char *vocab, const int *id_of, const char *prompt,
                   int n, double temperature, sg_rng *rng)
{
    sg_tensor *state[2] = {sg_tensor_new(SG_F32, 3, (int[]){m->L, 1, m->H}),
                           sg_tensor_new(SG_F32, 3, (int[]){m->L, 1, m->H})};
    int c = id_of[(unsigned char)prompt[0]];
    fputs(prompt, stdout);
    for (int i = 1; i < n + (int)strlen(prompt); i++) {
        sg_tape_reset(t);
        bool was = sg_tape_set_grad(t, false);
        sg_tensor *next[2];
        sg_tensor *z = forward(t, m, &c, 1, 1, state, next, NULL);
        sg_tensor *p = sg_softmax(t, sg_scale(t, z, 1.0 / temperature), -1, NULL);
        sg_tape_set_grad(t, was);
        sg_tensor_copy(state[0], next[0]), sg_tensor_copy(state[1], next[1]);
        if (i < (int)strlen(prompt)) {          /* still reading the prompt */
            c = id_of[(unsigned char)prompt[i]];
            continue;
        }
        double u = sg_rng_uniform(rng), acc = 0;
        for (c = 0; c < m->V - 1; c++)
            if ((acc += sg_tensor_get(p, (size_t)c)) > u)
                break;
        putchar(vocab[c]);
    }
    putchar('\n');
    sg_tensor_free(state[0]), sg_tensor_free(state[1]);
}

int main(int argc, char **argv)
{
    const char *path = SEQGRAD_DATA_DIR "/genesis.txt";
    int steps = 600, H = 128, L = 2;
    double temperature = 0.7;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--temperature") && i + 1 < argc) temperature = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoul(argv[++i], NULL, 10);
        else if (argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: char_lm [FILE] [--steps N] [--hidden H] [--layers L] [--temperature T] [--seed S]\n");
            return 2;
        }
    }
    text tx;
    if (text_load(&tx, path) != 0 || tx.n < 20L * B * (T + 1)) {
        fprintf(stderr, "char_lm: not enough text in %s\n", path);
        return 1;
    }
    long n = tx.n;
    int V = tx.V, *ids = tx.ids;
    double unigram = tx.unigram;
    long n_train = n * 9 / 10, per = n_train / B;

    sg_rng rng;
    sg_rng_seed(&rng, seed);
    model m = {.ps = sg_params_new(), .V = V, .H = H, .L = L};
    sg_rnn_opts ro = sg_rnn_defaults();
    ro.layers = L, ro.dropout = L > 1 ? 0.1 : 0;
    if (sg_embedding_init(&m.emb, m.ps, "embedding.", V, H, SG_F32, &rng) != SG_OK ||
        sg_rnn_init(&m.lstm, &sg_lstm_cell, m.ps, "lstm.", H, H, &ro, SG_F32, &rng) != SG_OK ||
        sg_linear_init(&m.out, m.ps, "decoder.", H, V, true, SG_F32, &rng) != SG_OK) {
        fprintf(stderr, "char_lm: bad model size\n");
        return 1;
    }
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 3e-3;
    sg_optim *opt = sg_optim_new(m.ps, &oo);
    sg_schedule sched = {.kind = SG_SCHED_COSINE, .lr = oo.lr, .warmup = 20, .total = steps, .min_lr = 3e-4};

    printf("char_lm: %s, %ld chars, vocabulary %d, unigram entropy %.3f nats/char\n", path, n, V, unigram);
    printf("model: embedding %d, LSTM %d x %d, %zu parameters; batch %d x %d, Adam, clip 1.0\n", H, L, H,
           sg_params_numel(m.ps), B, T);

    sg_tape *t = sg_tape_new();
    sg_tape_keep_grads(t, false);     /* training reads no intermediate's gradient */
    sg_tensor *state[2] = {sg_tensor_new(SG_F32, 3, (int[]){L, B, H}), sg_tensor_new(SG_F32, 3, (int[]){L, B, H})};
    static int x[B * T], y[B * T];
    long pos = 0;
    double t0 = seconds(), smooth = 0;
    for (int step = 0; step < steps; step++) {
        if (pos + T + 1 > per) {            /* wrap around: start the streams again */
            pos = 0;
            memset(sg_tensor_data(state[0]), 0, (size_t)L * B * H * sizeof(float));
            memset(sg_tensor_data(state[1]), 0, (size_t)L * B * H * sizeof(float));
        }
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++) {
                x[b * T + k] = ids[b * per + pos + k];
                y[b * T + k] = ids[b * per + pos + k + 1];
            }
        pos += T;
        sg_tape_reset(t);
        sg_tensor *next[2];
        sg_tensor *loss = sg_cross_entropy(t, forward(t, &m, x, B, T, state, next, &rng), y, NULL);
        if (sg_backward(t, loss) != SG_OK) {
            fprintf(stderr, "char_lm: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        /* truncated BPTT: the state goes on, its history does not */
        sg_tensor_copy(state[0], next[0]), sg_tensor_copy(state[1], next[1]);
        double norm = sg_clip_grad_norm(m.ps, 1.0);
        sg_optim_step(opt, sg_schedule_lr(&sched, step));
        sg_params_zero_grad(m.ps);
        double l = sg_tensor_get(loss, 0);
        smooth = step ? 0.9 * smooth + 0.1 * l : l;
        if (step % 50 == 0 || step == steps - 1)
            printf("step %4d  loss %.3f  ppl %6.2f  grad norm %5.2f  %6.0f chars/s\n", step, smooth, exp(smooth),
                   norm, (double)(step + 1) * B * T / (seconds() - t0));
        fflush(stdout);
    }
    double val = evaluate(t, &m, ids + n_train, n - n_train);
    printf("validation: %.3f nats/char (perplexity %.2f); unigram entropy %.3f; %.0f s\n", val, exp(val), unigram,
           seconds() - t0);
    printf("sample (temperature %.2f):\n", temperature);
    sample(t, &m, tx.vocab, tx.id_of, "And God said", 400, temperature, &rng);

    sg_tensor_free(state[0]), sg_tensor_free(state[1]);
    sg_optim_free(opt), sg_params_free(m.ps), sg_tape_free(t);
    free(ids);
    return 0;
}
