/*
 * seq2seq_attention.c - learn to reverse digit strings with an RNN
 * encoder-decoder and additive (Bahdanau) attention, generated in the
 * program: "40219" -> "91204", lengths 5 to 12.
 *
 *   encoder: bidirectional GRU over the digits (padding masked)
 *   decoder: GRU, attends with s_{t-1}, teacher forcing while training
 *   loss:    cross-entropy over target tokens, padding ignored
 *
 * Strings whose digit sum is a multiple of 7 are held out: training never
 * sees one, the exact-match accuracy is measured on them (greedy and beam
 * search). Prints examples, and writes the attention weights of one
 * held-out example to attention.csv (rows: output steps, columns: source
 * positions), whose anti-diagonal is the reversal.
 *
 *   seq2seq_attention [--steps N] [--seed S] [--csv FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <seqgrad/seqgrad.h>

enum { MINLEN = 5, MAXLEN = 12, B = 64, SOS = 10, EOS = 11, SRC_V = 10, TGT_V = 12, PAD_SRC = 0 };

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a random digit string of the wanted split (held out: digit sum % 7 == 0) */
static int make(sg_rng *rng, bool held_out, int *digits)
{
    for (;;) {
        int n = MINLEN + sg_rng_int(rng, MAXLEN - MINLEN + 1), sum = 0;
        for (int i = 0; i < n; i++)
            sum += digits[i] = sg_rng_int(rng, 10);
        if ((sum % 7 == 0) == held_out)
            return n;
    }
}

static void print_digits(const int *d, int n)
{
    for (int i = 0; i < n; i++)
        putchar('0' + d[i]);
}

int main(int argc, char **argv)
{
    int steps = 1500;
    unsigned long seed = 1;
    const char *csv = "attention.csv";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--csv")) csv = argv[i + 1];
    }
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_params *ps = sg_params_new();
    sg_seq2seq m;
    sg_seq2seq_opts o = sg_seq2seq_defaults();
    o.bidirectional = true;
    if (sg_seq2seq_init(&m, ps, SRC_V, TGT_V, 32, 128, &o, SG_F32, &rng) != SG_OK)
        return 1;
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 3e-3;
    sg_optim *opt = sg_optim_new(ps, &oo);
    sg_tape *t = sg_tape_new();
    printf("reverse digit strings (length %d-%d): GRU encoder (bidirectional) + GRU decoder, additive attention, "
           "%zu parameters\n", MINLEN, MAXLEN, sg_params_numel(ps));

    static int src[B * MAXLEN], len[B], tin[B * (MAXLEN + 1)], tout[B * (MAXLEN + 1)], d[MAXLEN];
    double t0 = seconds(), smooth = 0;
    for (int step = 0; step < steps; step++) {
        int S = 0;
        for (int b = 0; b < B; b++) {
            len[b] = make(&rng, false, d);
            S = len[b] > S ? len[b] : S;
            for (int j = 0; j < MAXLEN; j++)
                src[b * MAXLEN + j] = j < len[b] ? d[j] : PAD_SRC;
        }
        int T = S + 1;     /* the digits reversed, then EOS */
        for (int b = 0; b < B; b++) {
            for (int k = 0; k < T; k++) {
                int tok = k < len[b] ? src[b * MAXLEN + len[b] - 1 - k] : k == len[b] ? EOS : -100;
                tout[b * T + k] = tok;
                tin[b * T + k] = k == 0 ? SOS : k <= len[b] ? tout[b * T + k - 1] : SOS;
            }
        }
        /* sources are read with row stride MAXLEN: pack them to stride S */
        static int packed[B * MAXLEN];
        for (int b = 0; b < B; b++)
            memcpy(packed + b * S, src + b * MAXLEN, (size_t)S * sizeof *packed);
        sg_tape_reset(t);
        sg_tensor *loss = sg_seq2seq_loss(t, &m, packed, len, B, S, tin, tout, T, 0.0, NULL);
        if (!loss || sg_backward(t, loss) != SG_OK) {
            fprintf(stderr, "seq2seq_attention: %s\n", sg_tape_errmsg(t));
            return 1;
        }
        sg_clip_grad_norm(ps, 1.0);
        sg_optim_step(opt, -1);
        sg_params_zero_grad(ps);
        smooth = step ? 0.95 * smooth + 0.05 * sg_tensor_get(loss, 0) : sg_tensor_get(loss, 0);
        if (step % 250 == 0 || step == steps - 1)
            printf("step %4d  loss %.4f  %5.1f s\n", step, smooth, seconds() - t0);
        fflush(stdout);
    }

    /* held-out exact match: greedy on 500 strings, beam 4 on the first 100 */
    sg_rng test;
    sg_rng_seed(&test, 999);
    int right_greedy = 0, right_beam = 0, out[MAXLEN + 2];
    for (int i = 0; i < 500; i++) {
        int n = make(&test, true, d);
        sg_tape_reset(t);
        sg_decode_opts g = {.beam = 1, .max_len = MAXLEN + 2, .start = SOS, .end = EOS};
        int k = sg_seq2seq_decode(t, &m, d, n, &g, out);
        bool ok = k == n;
        for (int j = 0; ok && j < n; j++)
            ok = out[j] == d[n - 1 - j];
        right_greedy += ok;
        if (i < 100) {
            sg_decode_opts bo = g;
            bo.beam = 4, bo.length_penalty = 0.6;
            sg_tape_reset(t);
            int kb = sg_seq2seq_decode(t, &m, d, n, &bo, out);
            bool okb = kb == n;
            for (int j = 0; okb && j < n; j++)
                okb = out[j] == d[n - 1 - j];
            right_beam += okb;
        }
        if (i < 5) {
            printf("  ");
            print_digits(d, n);
            printf(" -> ");
            print_digits(out, k > 0 ? k : 0);
            printf("%s\n", ok ? "" : "   (wrong)");
        }
    }
    printf("held-out exact match: greedy %.1f%% (500 strings), beam 4 %.1f%% (100 strings)\n", right_greedy / 5.0,
           (double)right_beam);

    /* attention weights of one held-out example, teacher-forced on its answer */
    int n = make(&test, true, d), prev = SOS;
    sg_tape_reset(t);
    sg_tape_set_grad(t, false);
    sg_seq2seq_enc enc;
    FILE *f = fopen(csv, "w");
    if (f && sg_seq2seq_encode(t, &m, d, NULL, 1, n, &enc) == SG_OK) {
        fprintf(f, "step");
        for (int j = 0; j < n; j++)
            fprintf(f, ",src%d_%d", j, d[j]);
        fprintf(f, "\n");
        for (int k = 0; k < n; k++) {
            sg_tensor *w;
            sg_seq2seq_step(t, &m, &enc, &prev, &w);
            fprintf(f, "out%d_%d", k, d[n - 1 - k]);
            for (int j = 0; j < n; j++)
                fprintf(f, ",%.4f", sg_tensor_get(w, (size_t)j));
            fprintf(f, "\n");
            prev = d[n - 1 - k];
        }
        printf("attention weights of ");
        print_digits(d, n);
        printf(" written to %s\n", csv);
    }
    if (f)
        fclose(f);
    sg_optim_free(opt), sg_tape_free(t), sg_params_free(ps);
    return 0;
}
