/*
 * test_nn_seq2seq.c - nn/seq2seq.c, nn/decode.c and the transformer
 * encoder-decoder of nn/transformer.c: f64 gradient checks of whole
 * teacher-forced losses (every parameter), padding kept out of the loss,
 * scheduled sampling, greedy decoding equal to a hand-rolled argmax loop,
 * batched greedy decoding equal to one source at a time,
 * beam search never worse than greedy by its own score, errors.
 */
#include <math.h>
#include <string.h>

#include "testutil.h"

enum { SV = 5, TV = 6, START = 4, END = 5 };
static const int src[6] = {1, 2, 3, 0, 2, 1}, src_len[2] = {3, 2};
static const int tin[6] = {START, 3, 2, START, 1, 2}, tout[6] = {3, 2, END, 1, END, -100};

struct sctx { sg_seq2seq m; double ratio; };

static sg_tensor *s2s_loss(sg_tape *t, sg_tensor **in, void *p)
{
    (void)in;
    struct sctx *k = p;
    sg_rng rng;
    sg_rng_seed(&rng, 3);     /* scheduled sampling draws: the same every call */
    return sg_seq2seq_loss(t, &k->m, src, src_len, 2, 3, tin, tout, 3, k->ratio, &rng);
}

static void s2s_init(struct sctx *k, sg_params *ps, int c, sg_dtype dt)
{
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    sg_seq2seq_opts o = sg_seq2seq_defaults();
    static const sg_attn_kind kinds[3] = {SG_ATTN_ADDITIVE, SG_ATTN_GENERAL, SG_ATTN_CONCAT};
    o.cell = c == 1 ? &sg_lstm_cell : c == 2 ? &sg_gru_reset_after_cell : &sg_gru_cell;
    o.bidirectional = c != 2, o.attention = kinds[c];
    ck_assert_int_eq(sg_seq2seq_init(&k->m, ps, SV, TV, 3, 4, &o, dt, &rng), SG_OK);
}

START_TEST(test_seq2seq_gradcheck)
{
    /* _i: GRU + additive (bi), LSTM + general (bi), GRU reset-after + concat */
    sg_params *ps = sg_params_new();
    struct sctx k = {.ratio = 0};
    s2s_init(&k, ps, _i, SG_F64);
    sg_tensor *in[SG_GRADCHECK_MAX];
    int n = 0;
    for (int j = 0; j < sg_params_count(ps); j++)
        in[n++] = sg_params_get(ps, j);
    ck_assert_int_le(n, SG_GRADCHECK_MAX);
    tu_gradcheck(s2s_loss, &k, in, n, 0);
    sg_params_free(ps);
}
END_TEST

START_TEST(test_scheduled_sampling)
{
    sg_params *ps = sg_params_new();
    struct sctx k = {.ratio = 0};
    s2s_init(&k, ps, 0, SG_F64);
    sg_tape *t = sg_tape_new();
    double forced = sg_tensor_get(s2s_loss(t, NULL, &k), 0);
    k.ratio = 1;                /* always the model's own guess */
    double sampled = sg_tensor_get(s2s_loss(t, NULL, &k), 0);
    ck_assert_double_ne(forced, sampled);
    /* the loss ignores padding: the padded target's input can be anything */
    int tin2[6];
    memcpy(tin2, tin, sizeof tin2);
    tin2[5] = 3;
    double again = sg_tensor_get(sg_seq2seq_loss(t, &k.m, src, src_len, 2, 3, tin2, tout, 3, 0, NULL), 0);
    ck_assert_double_eq_tol(again, forced, 1e-15);
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

START_TEST(test_greedy_is_argmax_and_beam_not_worse)
{
    sg_params *ps = sg_params_new();
    struct sctx k;
    s2s_init(&k, ps, 0, SG_F64);
    sg_tape *t = sg_tape_new();
    int out[8], n = sg_seq2seq_decode(t, &k.m, src, 3, &(sg_decode_opts){.beam = 1, .max_len = 8, .start = START, .end = END}, out);
    ck_assert_int_ge(n, 0);
    /* the same by hand: argmax at every step until END, log-probability summed */
    sg_seq2seq_enc enc;
    ck_assert_int_eq(sg_seq2seq_encode(t, &k.m, src, NULL, 1, 3, &enc), SG_OK);
    int prev = START, steps = 0;
    double greedy_logp = 0;
    for (; steps < 8; steps++) {
        sg_tensor *lp = sg_log_softmax(t, sg_seq2seq_step(t, &k.m, &enc, &prev, NULL), 1, NULL);
        int best = 0;
        for (int v = 1; v < TV; v++)
            if (sg_tensor_get(lp, (size_t)v) > sg_tensor_get(lp, (size_t)best))
                best = v;
        greedy_logp += sg_tensor_get(lp, (size_t)best);
        if (best == END)
            break;
        ck_assert_int_lt(steps, n);
        ck_assert_int_eq(out[steps], best);
        prev = best;
    }
    ck_assert_int_eq(steps, n);
    /* beam 4 returns a sequence at least as likely (no length penalty) */
    int bout[8], bn = sg_seq2seq_decode(t, &k.m, src, 3, &(sg_decode_opts){.beam = 4, .max_len = 8, .start = START, .end = END}, bout);
    ck_assert_int_ge(bn, 0);
    ck_assert_int_eq(sg_seq2seq_encode(t, &k.m, src, NULL, 1, 3, &enc), SG_OK);
    double beam_logp = 0;
    prev = START;
    for (int s = 0; s <= bn && s < 8; s++) {
        sg_tensor *lp = sg_log_softmax(t, sg_seq2seq_step(t, &k.m, &enc, &prev, NULL), 1, NULL);
        int tok = s < bn ? bout[s] : END;
        beam_logp += sg_tensor_get(lp, (size_t)tok);
        prev = tok;
    }
    ck_assert_msg(beam_logp >= greedy_logp - 1e-12, "beam %g < greedy %g", beam_logp, greedy_logp);
    ck_assert_int_eq(sg_seq2seq_decode(t, &k.m, src, 3, &(sg_decode_opts){.beam = 2, .max_len = 0}, bout), -1);
    ck_assert_str_eq(sg_tape_errmsg(t), "decode: max_len 0 must be at least 1");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* ---- the transformer encoder-decoder ---------------------------------------- */

struct tctx { sg_transformer_s2s m; };

static sg_tensor *tf_loss(sg_tape *t, sg_tensor **in, void *p)
{
    (void)in;
    return sg_transformer_s2s_loss(t, &((struct tctx *)p)->m, src, src_len, 2, 3, tin, tout, 3, NULL);
}

START_TEST(test_transformer_s2s_gradcheck_and_generate)
{
    sg_params *ps = sg_params_new();
    sg_rng rng;
    sg_rng_seed(&rng, 2);
    struct tctx k;
    sg_transformer_opts o = sg_transformer_defaults(4, 2);
    o.d_ff = 6, o.norm_first = _i, o.gelu = true;
    ck_assert_int_eq(sg_transformer_s2s_init(&k.m, ps, SV, TV, 1, &o, SG_F64, &rng), SG_OK);
    ck_assert_ptr_nonnull(sg_params_find(ps, "decoder.layers.0.multihead_attn.in_proj_weight"));
    sg_tensor *in[SG_GRADCHECK_MAX];
    int n = 0;
    for (int j = 0; j < sg_params_count(ps) && n < SG_GRADCHECK_MAX; j++)
        in[n++] = sg_params_get(ps, j);
    ck_assert_int_eq(n, sg_params_count(ps));        /* every parameter is checked */
    tu_gradcheck(tf_loss, &k, in, n, 0);
    sg_tape *t = sg_tape_new();
    int out[6];
    int m = sg_transformer_s2s_generate(t, &k.m, src, 3, &(sg_decode_opts){.beam = 3, .max_len = 6, .start = START, .end = END}, out);
    ck_assert_msg(m >= 0 && m <= 6, "%d: %s", m, sg_tape_errmsg(t));
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* greedy decoding of a padded batch gives, for every source, the tokens of
 * beam 1 one source at a time: _i 0-2 the RNN seq2seq kinds, 3 the
 * transformer */
START_TEST(test_greedy_batch_equals_one_at_a_time)
{
    enum { B = 5, S = 4, M = 7 };
    static const int bsrc[B * S] = {1, 2, 3, 0, 2, 0, 0, 0, 3, 3, 1, 2, 0, 1, 0, 0, 2, 2, 2, 1};
    static const int blen[B] = {3, 1, 4, 2, 4};
    sg_params *ps = sg_params_new();
    struct sctx k;
    struct tctx tk;
    if (_i < 3) {
        s2s_init(&k, ps, _i, SG_F64);
    } else {
        sg_rng rng;
        sg_rng_seed(&rng, 5);
        sg_transformer_opts o = sg_transformer_defaults(4, 2);
        o.d_ff = 6;
        ck_assert_int_eq(sg_transformer_s2s_init(&tk.m, ps, SV, TV, 1, &o, SG_F64, &rng), SG_OK);
    }
    sg_tape *t = sg_tape_new();
    sg_decode_opts g = {.beam = 1, .max_len = M, .start = START, .end = END};
    int out[B * M], out_len[B], one[M];
    int rc = _i < 3 ? sg_seq2seq_greedy(t, &k.m, bsrc, blen, B, S, &g, out, out_len)
                    : sg_transformer_s2s_greedy(t, &tk.m, bsrc, blen, B, S, &g, out, out_len);
    ck_assert_msg(rc == 0, "%s", sg_tape_errmsg(t));
    for (int b = 0; b < B; b++) {
        sg_tape_reset(t);
        int n = _i < 3 ? sg_seq2seq_decode(t, &k.m, bsrc + b * S, blen[b], &g, one)
                       : sg_transformer_s2s_generate(t, &tk.m, bsrc + b * S, blen[b], &g, one);
        ck_assert_int_eq(n, out_len[b]);
        ck_assert(memcmp(one, out + b * M, (size_t)n * sizeof *one) == 0);
    }
    /* refused: no model, an empty batch, no room for a token */
    const char *op = _i < 3 ? "seq2seq_greedy" : "transformer_s2s_greedy";
    char want[120];
    rc = _i < 3 ? sg_seq2seq_greedy(t, NULL, bsrc, blen, B, S, &g, out, out_len)
                : sg_transformer_s2s_greedy(t, NULL, bsrc, blen, B, S, &g, out, out_len);
    snprintf(want, sizeof want, "%s: the model, src, out or out_len is NULL", op);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(sg_tape_errmsg(t), want);
    sg_tape_reset(t);
    rc = _i < 3 ? sg_seq2seq_greedy(t, &k.m, bsrc, blen, 0, S, &g, out, out_len)
                : sg_transformer_s2s_greedy(t, &tk.m, bsrc, blen, 0, S, &g, out, out_len);
    snprintf(want, sizeof want, "%s: B 0 and S 4 must be at least 1", op);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(sg_tape_errmsg(t), want);
    sg_tape_reset(t);
    g.max_len = 0;
    rc = _i < 3 ? sg_seq2seq_greedy(t, &k.m, bsrc, blen, B, S, &g, out, out_len)
                : sg_transformer_s2s_greedy(t, &tk.m, bsrc, blen, B, S, &g, out, out_len);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(sg_tape_errmsg(t), "decode: max_len 0 must be at least 1");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

/* a loss over 0 target steps (a zero-size array on the stack before) */
START_TEST(test_seq2seq_loss_without_steps)
{
    sg_params *ps = sg_params_new();
    struct sctx k = {.ratio = 0};
    s2s_init(&k, ps, 0, SG_F64);
    sg_tape *t = sg_tape_new();
    tu_assert_error(t, sg_seq2seq_loss(t, &k.m, src, src_len, 2, 3, tin, tout, 0, 0, NULL),
                    "seq2seq_loss: 2 targets of 0 steps (each at least 1)");
    sg_params_free(ps), sg_tape_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/seq2seq");
    TCase *tc = tcase_create("rnn seq2seq");
    tcase_add_loop_test(tc, test_seq2seq_gradcheck, 0, 3);
    tcase_add_test(tc, test_scheduled_sampling);
    tcase_add_test(tc, test_seq2seq_loss_without_steps);
    tcase_add_test(tc, test_greedy_is_argmax_and_beam_not_worse);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("transformer seq2seq");
    tcase_add_loop_test(tc, test_transformer_s2s_gradcheck_and_generate, 0, 2);
    tcase_add_loop_test(tc, test_greedy_batch_equals_one_at_a_time, 0, 4);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
