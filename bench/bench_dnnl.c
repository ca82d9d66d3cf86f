/*
 * bench_dnnl.c - the peer of bench_layer.c: oneDNN's fused RNN primitives
 * (Debian's libdnnl-dev, 2.6), which PyTorch 2.x runs for nn.LSTM, nn.GRU
 * and nn.RNN on a CPU. One training pass of a recurrent layer stack, timed:
 * forward_training, then backward from a fixed upstream gradient, weights
 * kept in the forward primitive's layout and reordered to the backward's
 * every step (as a training loop must, the weights changing), the weight
 * gradients zeroed every step (oneDNN's backward accumulates into them),
 * explicit zero initial states (with NULL ones oneDNN 2.6's LSTM and RNN
 * backward return a wrong recurrent-weight gradient).
 *
 *   bench_dnnl CELL H L B T STEPS [--check]   CELL: lstm | gru (linear before reset) | gru_classic
 *                                             (the reset gate before U_n h, vanilla GRU) | rnn (tanh)
 *
 * Prints the line bench.h prints: tokens/s, ms a step, peak resident MB.
 * --check first compares a few elements of each weight gradient with
 * central differences of sum(dst_layer * diff_dst_layer), and exits 1 if
 * one is off by more than 2 %.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#define OK(call)                                                                    \
    do {                                                                            \
        dnnl_status_t s_ = (call);                                                  \
        if (s_ != dnnl_success) {                                                   \
            fprintf(stderr, "bench_dnnl: %s failed (%d) at line %d\n", #call, (int)s_, __LINE__); \
            exit(2);                                                                \
        }                                                                           \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static dnnl_memory_t mem(const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    OK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

static float *data(dnnl_memory_t m)
{
    void *p;
    OK(dnnl_memory_get_data_handle(m, &p));
    return p;
}

static size_t floats(dnnl_memory_t m)
{
    const dnnl_memory_desc_t *md;
    OK(dnnl_memory_get_memory_desc(m, &md));
    return dnnl_memory_desc_get_size(md) / sizeof(float);
}

static dnnl_memory_desc_t plain(int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    OK(dnnl_memory_desc_init_by_tag(&md, nd, dims, dnnl_f32, tag));
    return md;
}

static void reorder(dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *a, *b;
    OK(dnnl_memory_get_memory_desc(from, &a));
    OK(dnnl_memory_get_memory_desc(to, &b));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t r;
    OK(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL));
    OK(dnnl_primitive_create(&r, pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    OK(dnnl_primitive_execute(r, strm, 2, args));
    OK(dnnl_stream_wait(strm));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(pd);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned long long seed = 88172645463325252ull;
static float uniform(float k)
{
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return k * (2.0f * (float)(seed >> 11) / (float)(1ull << 53) - 1.0f);
}

typedef struct {
    int cell, G, BG;                      /* 0 lstm, 1 gru, 2 rnn, 3 gru_classic; gates; bias gates */
    dnnl_memory_desc_t src, iter, wl, wi, bias, dst;
    dnnl_memory_desc_t wl_any, wi_any;
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t x, h0, c0, w_user[2], b, w_f[2], w_b[2], y, hn, cn, ws;
    dnnl_memory_t dy, dhn, dcn, dx, dh0, dc0, dw[2], dw_user[2], db;
} layer;

static void descs(layer *l, int H, int L, int B, int T)
{
    dnnl_dims_t src = {T, B, H}, iter = {L, 1, B, H}, w = {L, 1, H, l->G, H}, bias = {L, 1, l->BG, H};
    l->src = plain(3, src, dnnl_tnc), l->dst = plain(3, src, dnnl_tnc), l->iter = plain(4, iter, dnnl_ldnc);
    l->wl = plain(5, w, dnnl_ldigo), l->wi = plain(5, w, dnnl_ldigo), l->bias = plain(4, bias, dnnl_ldgo);
    l->wl_any = plain(5, w, dnnl_format_tag_any), l->wi_any = l->wl_any;
}

static void build(layer *l)
{
    dnnl_rnn_desc_t f, b;
    const dnnl_memory_desc_t *c = l->cell == 0 ? &l->iter : NULL;
    dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    if (l->cell == 0) {
        OK(dnnl_lstm_forward_desc_init(&f, dnnl_forward_training, dir, &l->src, &l->iter, c, &l->wl_any, &l->wi_any,
                                       &l->bias, &l->dst, &l->iter, c, 0));
        OK(dnnl_lstm_backward_desc_init(&b, dnnl_backward, dir, &l->src, &l->iter, c, &l->wl_any, &l->wi_any, &l->bias,
                                        &l->dst, &l->iter, c, &l->src, &l->iter, c, &l->wl_any, &l->wi_any, &l->bias,
                                        &l->dst, &l->iter, c, 0));
    } else if (l->cell == 1) {
        OK(dnnl_lbr_gru_forward_desc_init(&f, dnnl_forward_training, dir, &l->src, &l->iter, &l->wl_any, &l->wi_any,
                                          &l->bias, &l->dst, &l->iter, 0));
        OK(dnnl_lbr_gru_backward_desc_init(&b, dnnl_backward, dir, &l->src, &l->iter, &l->wl_any, &l->wi_any, &l->bias,
                                           &l->dst, &l->iter, &l->src, &l->iter, &l->wl_any, &l->wi_any, &l->bias,
                                           &l->dst, &l->iter, 0));
    } else if (l->cell == 3) {
        OK(dnnl_gru_forward_desc_init(&f, dnnl_forward_training, dir, &l->src, &l->iter, &l->wl_any, &l->wi_any,
                                      &l->bias, &l->dst, &l->iter, 0));
        OK(dnnl_gru_backward_desc_init(&b, dnnl_backward, dir, &l->src, &l->iter, &l->wl_any, &l->wi_any, &l->bias,
                                       &l->dst, &l->iter, &l->src, &l->iter, &l->wl_any, &l->wi_any, &l->bias,
                                       &l->dst, &l->iter, 0));
    } else {
        OK(dnnl_vanilla_rnn_forward_desc_init(&f, dnnl_forward_training, dnnl_eltwise_tanh, dir, &l->src, &l->iter,
                                              &l->wl_any, &l->wi_any, &l->bias, &l->dst, &l->iter, 0, 0, 0));
        OK(dnnl_vanilla_rnn_backward_desc_init(&b, dnnl_backward, dnnl_eltwise_tanh, dir, &l->src, &l->iter,
                                               &l->wl_any, &l->wi_any, &l->bias, &l->dst, &l->iter, &l->src, &l->iter,
                                               &l->wl_any, &l->wi_any, &l->bias, &l->dst, &l->iter, 0, 0, 0));
    }
    OK(dnnl_primitive_desc_create(&l->fpd, &f, NULL, eng, NULL));
    OK(dnnl_primitive_desc_create(&l->bpd, &b, NULL, eng, l->fpd));
    OK(dnnl_primitive_create(&l->fwd, l->fpd));
    OK(dnnl_primitive_create(&l->bwd, l->bpd));
    l->x = mem(&l->src), l->h0 = mem(&l->iter), l->c0 = mem(&l->iter), l->b = mem(&l->bias);
    l->y = mem(&l->dst), l->hn = mem(&l->iter), l->cn = mem(&l->iter);
    l->dy = mem(&l->dst), l->dhn = mem(&l->iter), l->dcn = mem(&l->iter), l->dx = mem(&l->src);
    l->dh0 = mem(&l->iter), l->dc0 = mem(&l->iter), l->db = mem(&l->bias);
    l->ws = mem(dnnl_primitive_desc_query_md(l->fpd, dnnl_query_workspace_md, 0));
    for (int k = 0; k < 2; k++) {
        l->w_user[k] = mem(k ? &l->wi : &l->wl), l->dw_user[k] = mem(k ? &l->wi : &l->wl);
        l->w_f[k] = mem(dnnl_primitive_desc_query_md(l->fpd, dnnl_query_weights_md, k));
        l->w_b[k] = mem(dnnl_primitive_desc_query_md(l->bpd, dnnl_query_weights_md, k));
        l->dw[k] = mem(dnnl_primitive_desc_query_md(l->bpd, dnnl_query_diff_weights_md, k));
    }
}

/* forward training and backward; the weight gradients zeroed first */
static void pass(layer *l)
{
    for (int k = 0; k < 2; k++) {
        reorder(l->w_f[k], l->w_b[k]);
        memset(data(l->dw[k]), 0, floats(l->dw[k]) * sizeof(float));
    }
    memset(data(l->db), 0, floats(l->db) * sizeof(float));
    dnnl_exec_arg_t f[] = {{DNNL_ARG_SRC_LAYER, l->x}, {DNNL_ARG_SRC_ITER, l->h0}, {DNNL_ARG_WEIGHTS_LAYER, l->w_f[0]},
                           {DNNL_ARG_WEIGHTS_ITER, l->w_f[1]}, {DNNL_ARG_BIAS, l->b}, {DNNL_ARG_DST_LAYER, l->y},
                           {DNNL_ARG_DST_ITER, l->hn}, {DNNL_ARG_WORKSPACE, l->ws}, {DNNL_ARG_SRC_ITER_C, l->c0},
                           {DNNL_ARG_DST_ITER_C, l->cn}};
    OK(dnnl_primitive_execute(l->fwd, strm, l->cell == 0 ? 10 : 8, f));
    dnnl_exec_arg_t b[] = {{DNNL_ARG_SRC_LAYER, l->x}, {DNNL_ARG_SRC_ITER, l->h0}, {DNNL_ARG_WEIGHTS_LAYER, l->w_b[0]},
                           {DNNL_ARG_WEIGHTS_ITER, l->w_b[1]}, {DNNL_ARG_BIAS, l->b}, {DNNL_ARG_DST_LAYER, l->y},
                           {DNNL_ARG_DST_ITER, l->hn}, {DNNL_ARG_WORKSPACE, l->ws},
                           {DNNL_ARG_DIFF_DST_LAYER, l->dy}, {DNNL_ARG_DIFF_DST_ITER, l->dhn},
                           {DNNL_ARG_DIFF_SRC_LAYER, l->dx}, {DNNL_ARG_DIFF_SRC_ITER, l->dh0},
                           {DNNL_ARG_DIFF_WEIGHTS_LAYER, l->dw[0]}, {DNNL_ARG_DIFF_WEIGHTS_ITER, l->dw[1]},
                           {DNNL_ARG_DIFF_BIAS, l->db}, {DNNL_ARG_SRC_ITER_C, l->c0}, {DNNL_ARG_DST_ITER_C, l->cn},
                           {DNNL_ARG_DIFF_DST_ITER_C, l->dcn}, {DNNL_ARG_DIFF_SRC_ITER_C, l->dc0}};
    OK(dnnl_primitive_execute(l->bwd, strm, l->cell == 0 ? 19 : 15, b));
    OK(dnnl_stream_wait(strm));
}

/* sum(dst_layer * diff_dst_layer) for the user weights as they are */
static double loss_of(layer *l)
{
    for (int k = 0; k < 2; k++)
        reorder(l->w_user[k], l->w_f[k]);
    dnnl_exec_arg_t f[] = {{DNNL_ARG_SRC_LAYER, l->x}, {DNNL_ARG_SRC_ITER, l->h0}, {DNNL_ARG_WEIGHTS_LAYER, l->w_f[0]},
                           {DNNL_ARG_WEIGHTS_ITER, l->w_f[1]}, {DNNL_ARG_BIAS, l->b}, {DNNL_ARG_DST_LAYER, l->y},
                           {DNNL_ARG_DST_ITER, l->hn}, {DNNL_ARG_WORKSPACE, l->ws}, {DNNL_ARG_SRC_ITER_C, l->c0},
                           {DNNL_ARG_DST_ITER_C, l->cn}};
    OK(dnnl_primitive_execute(l->fwd, strm, l->cell == 0 ? 10 : 8, f));
    OK(dnnl_stream_wait(strm));
    double s = 0;
    const float *y = data(l->y), *g = data(l->dy);
    for (size_t i = 0; i < floats(l->y); i++)
        s += (double)y[i] * g[i];
    return s;
}

/* central differences of a few elements of each weight tensor against the gradient */
static int check(layer *l)
{
    int bad = 0;
    pass(l);
    for (int k = 0; k < 2; k++) {
        reorder(l->dw[k], l->dw_user[k]);
        float *w = data(l->w_user[k]);
        const float *g = data(l->dw_user[k]);
        size_t n = floats(l->w_user[k]);
        for (int e = 0; e < 6; e++) {
            size_t i = (size_t)((e * 2654435761u) % n);
            float keep = w[i], h = 1e-2f;
            w[i] = keep + h;
            double up = loss_of(l);
            w[i] = keep - h;
            double down = loss_of(l);
            w[i] = keep;
            double fd = (up - down) / (2 * h), err = fabs(fd - g[i]) / fmax(1e-3, fabs(fd) + fabs(g[i]));
            printf("check %s[%zu]: oneDNN %.6g, central difference %.6g, relative %.2g\n", k ? "weights_iter" : "weights_layer",
                   i, g[i], fd, err);
            bad += err > 0.02;
        }
    }
    for (int k = 0; k < 2; k++)
        reorder(l->w_user[k], l->w_f[k]);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: bench_dnnl lstm|gru|gru_classic|rnn H L B T STEPS [--check]\n");
        return 2;
    }
    layer l = {0};
    l.cell = !strcmp(argv[1], "lstm") ? 0 : !strcmp(argv[1], "gru") ? 1 : !strcmp(argv[1], "gru_classic") ? 3 : 2;
    l.G = l.cell == 0 ? 4 : l.cell == 1 || l.cell == 3 ? 3 : 1, l.BG = l.cell == 1 ? 4 : l.G;
    int H = atoi(argv[2]), L = atoi(argv[3]), B = atoi(argv[4]), T = atoi(argv[5]), steps = atoi(argv[6]);
    OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    OK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    descs(&l, H, L, B, T);
    build(&l);
    float k = 1.0f / sqrtf((float)H);          /* PyTorch's init; inputs and upstream gradient U(-1, 1) */
    dnnl_memory_t rnd[] = {l.w_user[0], l.w_user[1], l.b, l.x, l.dy};
    for (int m = 0; m < 5; m++) {
        float *p = data(rnd[m]);
        for (size_t i = 0; i < floats(rnd[m]); i++)
            p[i] = uniform(m < 3 ? k : 1.0f);
    }
    dnnl_memory_t zero[] = {l.h0, l.c0, l.dhn, l.dcn};
    for (int m = 0; m < 4; m++)
        memset(data(zero[m]), 0, floats(zero[m]) * sizeof(float));
    for (int j = 0; j < 2; j++)
        reorder(l.w_user[j], l.w_f[j]);
    if (argc > 7 && !strcmp(argv[7], "--check") && check(&l) != 0) {
        fprintf(stderr, "bench_dnnl: oneDNN's gradient disagrees with central differences\n");
        return 1;
    }
    int warm = steps / 10 > 2 ? steps / 10 : 2;
    double t0 = 0;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = now();
        pass(&l);
    }
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("tokens_per_s %.1f step_ms %.3f peak_mb %.1f\n", (double)steps * B * T / dt, 1e3 * dt / steps,
           ru.ru_maxrss / 1024.0);
    return 0;
}
