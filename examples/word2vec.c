/*
 * word2vec.c - word vectors the lecture's way (Mikolov et al. 2013), on the
 * bundled text: skip-gram and CBOW, each with negative sampling.
 *
 *   skip-gram: for a centre word w and each word c within `window` of it,
 *     L = -log sigma(u_c . v_w) - sum_{k=1..K} log sigma(-u_{n_k} . v_w)
 *   CBOW: h = mean of the context's v; the centre word is the positive:
 *     L = -log sigma(u_w . h) - sum_k log sigma(-u_{n_k} . h)
 *
 * v (the input vectors) and u (the output vectors) are two embedding tables
 * of (V, D); the K negatives are drawn from the unigram distribution raised
 * to the 3/4. Both losses are a binary cross-entropy with logits (target 1
 * for the real pair, 0 for the negatives), so the tape differentiates them
 * like any other ops. The program gradient-checks both objectives in f64,
 * then trains each and prints the nearest neighbours (cosine) of a few words.
 *
 *   word2vec [--check] [--steps N]      --check: the gradient checks only (the suite runs it)
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqgrad/seqgrad.h>

#ifndef SEQGRAD_DATA_DIR
#define SEQGRAD_DATA_DIR "data"
#endif

enum { MAX_VOCAB = 3000, WINDOW = 2, K = 5 };

/* ---- the corpus: lowercased words of letters, the frequent ones -------------------- */

typedef struct {
    char (*word)[24];         /* id -> word, most frequent first */
    long *count;
    int V;
    int *ids;                 /* the text as ids (rare words left out) */
    long n;
    double *noise;            /* cumulative unigram^0.75 */
} corpus;

static int find_word(const corpus *c, const char *w)
{
    for (int i = 0; i < c->V; i++)
        if (!strcmp(c->word[i], w))
            return i;
    return -1;
}

static int load(corpus *c, const char *path, int min_count)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fprintf(stderr, "cannot open %s\n", path), -1;
    /* every word once, counted (a linear table: the vocabulary is small) */
    static char words[20000][24];
    static long counts[20000];
    int nw = 0;
    long total = 0, cap = 1 << 20;
    int *seq = malloc((size_t)cap * sizeof *seq);
    char w[24];
    int len = 0, ch;
    while (seq && (ch = fgetc(f)) != EOF) {
        if (isalpha(ch) && len < 23) {
            w[len++] = (char)tolower(ch);
            continue;
        }
        if (len == 0)
            continue;
        w[len] = '\0', len = 0;
        int id = -1;
        for (int i = 0; i < nw && id < 0; i++)
            if (!strcmp(words[i], w))
                id = i;
        if (id < 0 && nw < 20000)
            strcpy(words[id = nw++], w);
        if (id >= 0 && total < cap)
            counts[id]++, seq[total++] = id;
    }
    fclose(f);
    /* the frequent words, most frequent first */
    int order[20000];
    for (int i = 0; i < nw; i++)
        order[i] = i;
    for (int i = 1; i < nw; i++)          /* insertion sort by count: small and stable */
        for (int j = i; j > 0 && counts[order[j]] > counts[order[j - 1]]; j--) {
            int s = order[j];
            order[j] = order[j - 1], order[j - 1] = s;
        }
    c->word = malloc(MAX_VOCAB * sizeof *c->word);
    c->count = malloc(MAX_VOCAB * sizeof *c->count);
    c->noise = malloc(MAX_VOCAB * sizeof *c->noise);
    int *new_id = malloc((size_t)nw * sizeof *new_id);
    c->V = 0;
    for (int i = 0; i < nw; i++)
        new_id[order[i]] = -1;
    for (int i = 0; i < nw && c->V < MAX_VOCAB && counts[order[i]] >= min_count; i++) {
        strcpy(c->word[c->V], words[order[i]]);
        c->count[c->V] = counts[order[i]];
        new_id[order[i]] = c->V++;
    }
    c->ids = malloc((size_t)total * sizeof *c->ids), c->n = 0;
    for (long i = 0; i < total; i++)
        if (new_id[seq[i]] >= 0)
            c->ids[c->n++] = new_id[seq[i]];
    double z = 0;
    for (int i = 0; i < c->V; i++)
        z += pow((double)c->count[i], 0.75), c->noise[i] = z;
    for (int i = 0; i < c->V; i++)
        c->noise[i] /= z;
    free(seq), free(new_id);
    return 0;
}

static int draw_noise(const corpus *c, sg_rng *rng)
{
    double u = sg_rng_uniform(rng);
    int lo = 0, hi = c->V - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c->noise[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the model: two tables and one loss for both objectives ------------------------- */

typedef struct {
    sg_params *ps;
    sg_embedding in, out;     /* v and u */
    int B, C;                 /* examples, context words per example (CBOW; 1 for skip-gram) */
    int *context, *target;    /* (B, C) input words; (B, 1 + K): the positive, then the negatives */
    bool cbow;
} w2v;

/* h: the mean of the context's input vectors (B, D); logits: h . u for the
 * positive and the negatives (B, 1 + K); the loss: their BCE with targets
 * 1 then K zeros */
static sg_tensor *w2v_loss(sg_tape *t, sg_tensor **in, void *ctx)
{
    w2v *m = ctx;
    (void)in;                 /* the tables are the parameters checked */
    int D = m->in.dim;
    sg_tensor *h = sg_mean(t, sg_embedding_forward(t, &m->in, m->context, m->B, m->C), 1, false);    /* (B,D) */
    sg_tensor *u = sg_embedding_forward(t, &m->out, m->target, m->B, 1 + K);                         /* (B,1+K,D) */
    sg_tensor *logits = sg_reshape(t, sg_bmm(t, u, sg_reshape(t, h, 3, (int[]){m->B, D, 1}), 0), 2,
                                   (int[]){m->B, 1 + K});
    double *y = calloc((size_t)m->B * (1 + K), sizeof *y);
    for (int b = 0; y && b < m->B; b++)
        y[b * (1 + K)] = 1;
    sg_tensor *target = y ? sg_tensor_from_f64(t, sg_tensor_dtype(logits), 2, (int[]){m->B, 1 + K}, y) : NULL;
    free(y);
    return sg_bce_with_logits(t, logits, target, SG_MEAN);
}

static void w2v_init(w2v *m, int V, int D, int B, bool cbow, sg_dtype dt, sg_rng *rng)
{
    *m = (w2v){.ps = sg_params_new(), .B = B, .C = cbow ? 2 * WINDOW : 1, .cbow = cbow};
    sg_embedding_init(&m->in, m->ps, "in.", V, D, dt, rng);
    sg_embedding_init(&m->out, m->ps, "out.", V, D, dt, rng);
    for (int k = 0; k < 2; k++)              /* small starts, as word2vec: N(0,1) / D */
        for (size_t i = 0; i < sg_tensor_size(sg_params_get(m->ps, k)); i++)
            sg_tensor_set(sg_params_get(m->ps, k), i, sg_tensor_get(sg_params_get(m->ps, k), i) / D);
    m->context = malloc((size_t)B * m->C * sizeof *m->context);
    m->target = malloc((size_t)B * (1 + K) * sizeof *m->target);
}

static void w2v_free(w2v *m)
{
    sg_params_free(m->ps);
    free(m->context), free(m->target);
}

/* a batch of B centres drawn from the text. Skip-gram: the centre is the
 * input and one word within the window the positive; CBOW: the 2 x window
 * words around it are the input and the centre the positive. */
static void batch(w2v *m, const corpus *c, sg_rng *rng)
{
    for (int b = 0; b < m->B; b++) {
        long i = WINDOW + sg_rng_int(rng, (int)(c->n - 2 * WINDOW));
        if (m->cbow) {
            int k = 0;
            for (int o = -WINDOW; o <= WINDOW; o++)
                if (o)
                    m->context[b * m->C + k++] = c->ids[i + o];
            m->target[b * (1 + K)] = c->ids[i];
        } else {
            int o = 1 + sg_rng_int(rng, WINDOW);
            m->context[b] = c->ids[i];
            m->target[b * (1 + K)] = c->ids[sg_rng_int(rng, 2) ? i + o : i - o];
        }
        for (int k = 1; k <= K; k++)
            m->target[b * (1 + K) + k] = draw_noise(c, rng);
    }
}

/* ---- 1. gradient checks: both objectives, both tables, f64 ------------------------ */

static bool check(const corpus *c, sg_rng *rng)
{
    bool ok = true;
    for (int cbow = 0; cbow < 2; cbow++) {
        w2v m;
        w2v_init(&m, c->V < 30 ? c->V : 30, 4, 3, cbow, SG_F64, rng);
        corpus small = *c;
        small.V = m.in.n;                    /* words of the first 30 only */
        batch(&m, &small, rng);
        for (int i = 0; i < m.B * m.C; i++)
            m.context[i] %= small.V;
        for (int i = 0; i < m.B * (1 + K); i++)
            m.target[i] %= small.V;
        sg_tensor *in[2] = {m.in.weight, m.out.weight};
        const char *names[2] = {"in.weight (v)", "out.weight (u)"};
        sg_gradcheck_report r;
        sg_gradcheck(w2v_loss, &m, in, 2, NULL, &r);
        printf("gradient check of %s with negative sampling (f64, V=%d, D=4, B=3, K=%d):\n",
               cbow ? "CBOW" : "skip-gram", small.V, K);
        sg_gradcheck_print(&r, names, stdout);
        ok = ok && r.ok;
        w2v_free(&m);
    }
    return ok;
}

/* ---- 2. training, and the nearest neighbours -------------------------------------- */

static void neighbours(const w2v *m, const corpus *c, const char *w)
{
    int id = find_word(c, w), D = m->in.dim;
    if (id < 0)
        return;
    const sg_tensor *v = m->in.weight;
    double best[5] = {-2, -2, -2, -2, -2};
    int who[5] = {0};
    double nq = 0;
    for (int d = 0; d < D; d++)
        nq += sg_tensor_get(v, (size_t)id * D + d) * sg_tensor_get(v, (size_t)id * D + d);
    for (int j = 0; j < c->V; j++) {
        if (j == id)
            continue;
        double dot = 0, nj = 0;
        for (int d = 0; d < D; d++) {
            double a = sg_tensor_get(v, (size_t)j * D + d);
            dot += a * sg_tensor_get(v, (size_t)id * D + d), nj += a * a;
        }
        double cos = dot / sqrt(nq * nj + 1e-30);
        for (int k = 0; k < 5; k++)
            if (cos > best[k]) {
                memmove(best + k + 1, best + k, (size_t)(4 - k) * sizeof *best);
                memmove(who + k + 1, who + k, (size_t)(4 - k) * sizeof *who);
                best[k] = cos, who[k] = j;
                break;
            }
    }
    printf("  %-8s", w);
    for (int k = 0; k < 5; k++)
        printf(" %s (%.2f)%s", c->word[who[k]], best[k], k < 4 ? "," : "\n");
}

static void train(const corpus *c, bool cbow, int steps, sg_rng *rng)
{
    w2v m;
    w2v_init(&m, c->V, 50, 256, cbow, SG_F32, rng);
    sg_optim_opts oo = sg_optim_defaults(SG_ADAM);
    oo.lr = 0.005;
    sg_optim *opt = sg_optim_new(m.ps, &oo);
    sg_tape *t = sg_tape_new();
    double first = 0, last = 0;
    for (int s = 1; s <= steps; s++) {
        sg_tape_reset(t);
        batch(&m, c, rng);
        sg_tensor *loss = w2v_loss(t, NULL, &m);
        if (sg_backward(t, loss) != SG_OK)
            break;
        sg_optim_step(opt, -1);
        sg_params_zero_grad(m.ps);
        double l = sg_tensor_get(loss, 0);
        first = s == 1 ? l : first;
        last = s == 1 ? l : 0.98 * last + 0.02 * l;
    }
    printf("\n%s, D = 50, K = %d, window %d, %d steps of 256: loss %.3f -> %.3f\nnearest neighbours (cosine of v):\n",
           cbow ? "CBOW" : "skip-gram", K, WINDOW, steps, first, last);
    const char *probe[] = {"god", "son", "land", "day", "water", "brother"};
    for (int i = 0; i < 6; i++)
        neighbours(&m, c, probe[i]);
    sg_tape_free(t);
    sg_optim_free(opt);
    w2v_free(&m);
}

int main(int argc, char **argv)
{
    bool only_check = false;
    int steps = 3000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check"))
            only_check = true;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
    }
    corpus c;
    if (load(&c, SEQGRAD_DATA_DIR "/genesis.txt", 5) != 0)
        return 1;
    printf("corpus: %ld words of Genesis, a vocabulary of %d (words seen 5 times or more)\n\n", c.n, c.V);
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    bool ok = check(&c, &rng);
    if (ok && !only_check) {
        train(&c, false, steps, &rng);
        train(&c, true, steps, &rng);
    }
    free(c.word), free(c.count), free(c.ids), free(c.noise);
    return ok ? 0 : 1;
}
