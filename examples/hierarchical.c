/*
 * hierarchical.c - a hierarchical encoder (the lecture's "characters to
 * words to a sentence"): a GRU reads each word's characters into a word
 * vector, a bidirectional GRU reads the word vectors, and attention pooling
 * (a learned query q) sums the sentence up for a classifier:
 *
 *   w_j  = GRU_char(c_j1 .. c_jL)               the last state, one per word
 *   o_j  = BiGRU_word(w_1 .. w_n)_j             (n, 2H)
 *   a_j  = softmax_j(q . o_j),  s = sum_j a_j o_j
 *   p    = softmax(W s + b)                     2 classes
 *
 * The task shows why the hierarchy and the attention help: a sentence of 3
 * to 8 random words over a-e is positive when one of its words is a
 * palindrome of 3 letters or more ("abcba"). The character level finds the
 * palindrome, the word level points at it, and the attention weights say
 * which word decided. The program gradient-checks every parameter in f64,
 * trains, and prints a few sentences with their weights.
 *
 *   hierarchical [--check] [--steps N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

enum { W = 8, L = 6, A = 5 };            /* words per sentence, letters per word, alphabet a-e */

typedef struct {
    int n_words, len[W];
    int chars[W][L];
    int label;
} sentence;

static bool palindrome(const int *c, int n)
{
    for (int i = 0; i < n / 2; i++)
        if (c[i] != c[n - 1 - i])
            return false;
    return n >= 3;
}

/* a sentence whose class is drawn first: half of them hold a palindrome */
static void draw(sentence *s, sg_rng *rng)
{
    s->label = sg_rng_int(rng, 2);
    s->n_words = 3 + sg_rng_int(rng, W - 2);
    int where = s->label ? sg_rng_int(rng, s->n_words) : -1;
    for (int j = 0; j < s->n_words; j++)
        for (;;) {
            int n = 2 + sg_rng_int(rng, L - 1);
            for (int k = 0; k < n; k++)
                s->chars[j][k] = sg_rng_int(rng, A);
            if (j == where)
                for (int k = 0; k < n / 2; k++)
                    s->chars[j][n - 1 - k] = s->chars[j][k];
            s->len[j] = n;
            if (j == where ? n >= 3 : !palindrome(s->chars[j], n))
                break;
        }
}

typedef struct {
    sg_params *ps;
    sg_embedding emb;
    sg_rnn chars, words;
    sg_tensor *query;
    sg_linear out;
    int B, H;
    sentence *batch;
    int *ids, *char_len, *word_len, *labels;
} model;

static void init(model *m, int H, int B, sg_dtype dt, sg_rng *rng)
{
    *m = (model){.ps = sg_params_new(), .B = B, .H = H};
    sg_rnn_opts o = sg_rnn_defaults();
    sg_embedding_init(&m->emb, m->ps, "emb.", A, H, dt, rng);
    sg_rnn_init(&m->chars, &sg_gru_cell, m->ps, "chars.", H, H, &o, dt, rng);
    o.bidirectional = true;
    sg_rnn_init(&m->words, &sg_gru_cell, m->ps, "words.", H, H, &o, dt, rng);
    m->query = sg_params_add(m->ps, "query", sg_param_uniform(dt, 1, (int[]){2 * H}, -0.5, 0.5, rng));
    sg_linear_init(&m->out, m->ps, "out.", 2 * H, 2, true, dt, rng);
    m->batch = malloc((size_t)B * sizeof *m->batch);
    m->ids = malloc((size_t)B * W * L * sizeof *m->ids);
    m->char_len = malloc((size_t)B * W * sizeof *m->char_len);
    m->word_len = malloc((size_t)B * sizeof *m->word_len);
    m->labels = malloc((size_t)B * sizeof *m->labels);
}

static void fill(model *m, sg_rng *rng)
{
    for (int b = 0; b < m->B; b++) {
        sentence *s = &m->batch[b];
        draw(s, rng);
        m->word_len[b] = s->n_words, m->labels[b] = s->label;
        for (int j = 0; j < W; j++) {       /* words past the sentence: one letter, never read */
            m->char_len[b * W + j] = j < s->n_words ? s->len[j] : 1;
            for (int k = 0; k < L; k++)
                m->ids[(b * W + j) * L + k] = j < s->n_words && k < s->len[j] ? s->chars[j][k] : 0;
        }
    }
}

/* the logits (B,2); the attention weights (B,W) into *attn */
static sg_tensor *forward(sg_tape *t, model *m, sg_tensor **attn)
{
    int B = m->B, H = m->H;
    sg_tensor *fin[SG_CELL_MAX_STATES];
    /* characters -> word vectors: every word of the batch is one sequence */
    sg_rnn_forward(t, &m->chars, sg_embedding_forward(t, &m->emb, m->ids, B * W, L), NULL, m->char_len, NULL, fin);
    sg_tensor *words = sg_reshape(t, fin[0], 3, (int[]){B, W, H});            /* (B,W,H) */
    /* words -> a sentence: both directions, each sentence to its own length */
    sg_tensor *o = sg_rnn_forward(t, &m->words, words, NULL, m->word_len, NULL, NULL);   /* (B,W,2H) */
    sg_tensor *mask = sg_zeros(t, sg_tensor_dtype(o), 2, (int[]){B, W});
    for (int b = 0; mask && b < B; b++)
        for (int j = 0; j < m->word_len[b]; j++)
            sg_tensor_set(mask, (size_t)(b * W + j), 1.0);
    sg_tensor *scores = sg_reshape(t, sg_matmul(t, o, sg_reshape(t, m->query, 2, (int[]){2 * H, 1})), 2, (int[]){B, W});
    sg_tensor *a = sg_softmax(t, scores, 1, mask);
    if (attn)
        *attn = a;
    sg_tensor *pooled = sg_reshape(t, sg_bmm(t, sg_reshape(t, a, 3, (int[]){B, 1, W}), o, 0), 2, (int[]){B, 2 * H});
    return sg_linear_forward(t, &m->out, pooled);
}

static sg_tensor *loss_fn(sg_tape *t, sg_tensor **in, void *ctx)
{
    (void)in;
    model *m = ctx;
    return sg_cross_entropy(t, forward(t, m, NULL), m->labels, NULL);
}

static void release(model *m)
{
    sg_params_free(m->ps);
    free(m->batch), free(m->ids), free(m->char_len), free(m->word_len), free(m->labels);
}

/* ---- 1. every parameter, f64 ---------------------------------------------------------- */

static bool check(sg_rng *rng)
{
    model m;
    init(&m, 3, 2, SG_F64, rng);
    fill(&m, rng);
    int n = sg_params_count(m.ps);
    sg_tensor *in[SG_GRADCHECK_MAX];
    const char *names[SG_GRADCHECK_MAX];
    for (int i = 0; i < n && i < SG_GRADCHECK_MAX; i++)
        in[i] = sg_params_get(m.ps, i), names[i] = sg_params_name(m.ps, i);
    sg_gradcheck_report r;
    sg_gradcheck(loss_fn, &m, in, n < SG_GRADCHECK_MAX ? n : SG_GRADCHECK_MAX, NULL, &r);
    printf("gradient check of the hierarchical encoder (f64, H=3, B=2, every parameter):\n");
    sg_gradcheck_print(&r, names, stdout);
    release(&m);
    return r.ok;
}

/* ---- 2. training, then what it attends to ------------------------------------------------ */

static void show(const sentence *s, const sg_tensor *a, int b, int predicted)
{
    printf("  %s -> %s:", s->label ? "palindrome   " : "no palindrome", predicted ? "palindrome   " : "no palindrome");
    for (int j = 0; j < s->n_words; j++) {
        printf(" ");
        for (int k = 0; k < s->len[j]; k++)
            putchar('a' + s->chars[j][k]);
        printf("(%.2f)", sg_tensor_get(a, (size_t)(b * W + j)));
    }
    printf("\n");
}

static void train(int steps, sg_rng *rng)
{
    model m;
    init(&m, 32, 32, SG_F32, rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 0.005;
    sg_optim *opt = sg_optim_new(m.ps, &oo);
    sg_tape *t = sg_tape_new();
    for (int s = 1; s <= steps; s++) {
        sg_tape_reset(t);
        fill(&m, rng);
        if (sg_backward(t, loss_fn(t, NULL, &m)) != SG_OK)
            break;
        sg_clip_grad_norm(m.ps, 1.0);
        sg_optim_step(opt, -1);
        sg_params_zero_grad(m.ps);
    }
    /* 20 fresh batches: accuracy */
    int right = 0, total = 0;
    sg_tensor *a = NULL, *z = NULL;
    sg_tape_set_grad(t, false);
    for (int k = 0; k < 20; k++) {
        sg_tape_reset(t);
        fill(&m, rng);
        z = forward(t, &m, &a);
        for (int b = 0; b < m.B; b++, total++)
            right += (sg_tensor_get(z, (size_t)b * 2 + 1) > sg_tensor_get(z, (size_t)b * 2)) == m.labels[b];
    }
    printf("\n%d steps of 32 sentences (H = 32): accuracy %.1f%% on %d fresh sentences\n"
           "some sentences of the last batch, each word with its attention weight:\n", steps, 100.0 * right / total,
           total);
    for (int b = 0; b < 6; b++)
        show(&m.batch[b], a, b, sg_tensor_get(z, (size_t)b * 2 + 1) > sg_tensor_get(z, (size_t)b * 2));
    sg_tape_free(t);
    sg_optim_free(opt);
    release(&m);
}

int main(int argc, char **argv)
{
    bool only_check = false;
    int steps = 1500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check"))
            only_check = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
    }
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    bool ok = check(&rng);
    if (ok && !only_check)
        train(steps, &rng);
    return ok ? 0 : 1;
}
