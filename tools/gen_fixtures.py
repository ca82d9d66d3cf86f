#!/usr/bin/python3
"""Writes the PyTorch reference values that tests/test_ops_reference.c checks.

    /usr/bin/python3 tools/gen_fixtures.py      # needs Debian's python3-torch

Each file in tests/data/ holds one composite expression: its inputs, its
output and the gradient of every input, all in float64, one tensor per line:
"name ndim d0 .. dk v0 v1 ...". The tests read these files and never need
Python. Re-running the script rewrites the same values (fixed seed).
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def write(name, tensors):
    with open(os.path.join(OUT, name), "w") as f:
        for key, t in tensors.items():
            t = t.detach().reshape(-1) if t.dim() == 0 else t.detach()
            shape = " ".join(str(d) for d in t.shape)
            vals = " ".join(repr(float(v)) for v in t.reshape(-1))
            f.write(f"{key} {t.dim()} {shape} {vals}\n")


def run(name, inputs, fn, consts=None):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves, **(consts or {}))
    out.backward()
    data = dict(inputs)
    data.update(consts or {})
    data["out"] = out
    data.update({"d" + k: v.grad for k, v in leaves.items()})
    write(name, data)


# 1. a two-layer perceptron with cross-entropy
run("ref_mlp.txt",
    {"x": torch.randn(4, 5), "W1": torch.randn(5, 6), "b1": torch.randn(6),
     "W2": torch.randn(6, 3), "b2": torch.randn(3)},
    lambda x, W1, b1, W2, b2, t: F.cross_entropy(torch.tanh(x @ W1 + b1) @ W2 + b2, t.long()),
    {"t": torch.tensor([0.0, 2, 1, 2])})

# 2. masked scaled dot-product attention (key padding: batch 1 keeps 3 of 5)
run("ref_attention.txt",
    {"Q": torch.randn(2, 3, 4), "K": torch.randn(2, 5, 4), "V": torch.randn(2, 5, 4)},
    lambda Q, K, V, mask, W: (torch.softmax((Q @ K.transpose(1, 2) / 2.0)
                                            .masked_fill(mask == 0, float("-inf")), dim=-1) @ V * W).sum(),
    {"mask": torch.tensor([[[1.0, 1, 1, 1, 1]], [[1.0, 1, 1, 0, 0]]]), "W": torch.randn(2, 3, 4)})

# 3. layer norm, gelu, sigmoid, mse
run("ref_layernorm.txt",
    {"x": torch.randn(3, 6), "g": torch.randn(6), "b": torch.randn(6)},
    lambda x, g, b, target: F.mse_loss(torch.sigmoid(F.gelu(F.layer_norm(x, (6,), g, b, 1e-5))), target),
    {"target": torch.rand(3, 6)})

# 4. log-softmax + nll with an ignored row, norm, logsumexp
run("ref_nll.txt",
    {"x": torch.randn(5, 4), "W": torch.randn(4, 7)},
    lambda x, W, t: (F.nll_loss(torch.log_softmax(x @ W, dim=1), t.long(), ignore_index=-100)
                     + 0.1 * torch.linalg.norm(x) + torch.logsumexp(x, dim=1).mean()),
    {"t": torch.tensor([1.0, -100, 6, 0, 3])})

# 5. clamp, exp, div, abs, bce with logits, max, sqrt, square
run("ref_misc.txt",
    {"a": torch.randn(3, 4), "b": torch.randn(4), "c": torch.randn(3, 4)},
    lambda a, b, c: (F.binary_cross_entropy_with_logits(torch.clamp(a, -1, 1) * torch.exp(b) / (torch.abs(c) + 1),
                                                        torch.sigmoid(c))
                     + 0.5 * a.max(dim=1).values.sum() + torch.sqrt(c.square() + 1).mean()))

# 6. shape ops: permute, reshape, narrow, concat, index_select, stack, leaky relu
run("ref_shape.txt",
    {"x": torch.randn(2, 3, 4)},
    lambda x, W: (torch.stack([
        torch.index_select(torch.cat([y := x.permute(2, 0, 1).reshape(4, 6).narrow(1, 1, 4), 2 * y], 0),
                           0, torch.tensor([0, 3, 3, 7])),
        F.leaky_relu(torch.index_select(torch.cat([y, 2 * y], 0), 0, torch.tensor([1, 2, 5, 6])), 0.1)],
        dim=0) * W).sum(),
    {"W": torch.randn(2, 4, 4)})
print("wrote", sorted(f for f in os.listdir(OUT) if f.startswith("ref_")))


# ---- recurrent layers: torch.nn.RNN (tanh, relu), LSTM, GRU (= seqgrad's
# gru_reset_after), and the classic GRU written out by hand ------------------
B, T, E, H = 3, 5, 4, 3
LENGTHS = torch.tensor([5, 2, 4])


def classic_gru(x, h0, params, layers):
    """The lecture's GRU: n = tanh(W_in x + b_in + W_hn (r h) + b_hn), h' = (1-z) h + z n."""
    inp, finals = x, []
    for l in range(layers):
        w_ih, w_hh = params[f"weight_ih_l{l}"], params[f"weight_hh_l{l}"]
        b_ih, b_hh = params[f"bias_ih_l{l}"], params[f"bias_hh_l{l}"]
        h, outs = h0[l], []
        for t in range(inp.shape[1]):
            xp = inp[:, t] @ w_ih.T + b_ih + b_hh
            rz = torch.sigmoid(xp[:, :2 * H] + h @ w_hh[:2 * H].T)
            r, z = rz[:, :H], rz[:, H:]
            n = torch.tanh(xp[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T)
            h = (1 - z) * h + z * n
            outs.append(h)
        inp = torch.stack(outs, 1)
        finals.append(h)
    return inp, torch.stack(finals, 0)


def gen_rnn(kind, layers, bidir, padded):
    dirs = 2 if bidir else 1
    if kind == "gru_classic":
        ref = torch.nn.GRU(E, H, num_layers=layers, batch_first=True)
    elif kind == "lstm":
        ref = torch.nn.LSTM(E, H, num_layers=layers, batch_first=True, bidirectional=bidir)
    elif kind == "gru":
        ref = torch.nn.GRU(E, H, num_layers=layers, batch_first=True, bidirectional=bidir)
    else:
        ref = torch.nn.RNN(E, H, num_layers=layers, batch_first=True, bidirectional=bidir,
                           nonlinearity=kind.split("_")[1])
    params = {k: v.detach().clone().requires_grad_(True) for k, v in ref.named_parameters()}
    x = torch.randn(B, T, E, requires_grad=True)
    h0 = torch.randn(layers * dirs, B, H, requires_grad=True)
    c0 = torch.randn(layers * dirs, B, H, requires_grad=True)
    with torch.no_grad():
        for k, v in ref.named_parameters():
            v.copy_(params[k])
    # the module's own parameters are the ones autograd sees; copy grads back after
    if kind == "gru_classic":
        out, hn = classic_gru(x, h0, params, layers)
        cn = None
    else:
        state = (h0, c0) if kind == "lstm" else h0
        if padded:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
            out, st = ref(packed, state)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        else:
            out, st = ref(x, state)
        hn, cn = (st[0], st[1]) if kind == "lstm" else (st, None)
    w_out, w_h, w_c = torch.randn(out.shape), torch.randn(hn.shape), torch.randn(hn.shape)
    loss = (out * w_out).sum() + (hn * w_h).sum() + ((cn * w_c).sum() if cn is not None else 0)
    loss.backward()
    grads = params if kind == "gru_classic" else dict(ref.named_parameters())
    data = {"x": x, "h0": h0}
    if kind == "lstm":
        data["c0"] = c0
    data.update({k: params[k] for k in params})
    data.update({"w_out": w_out, "w_h": w_h, "w_c": w_c, "out": out, "h_n": hn, "loss": loss})
    if cn is not None:
        data["c_n"] = cn
    data["lengths"] = LENGTHS.double() if padded else torch.full((B,), float(T))
    data["dx"], data["dh0"] = x.grad, h0.grad
    if kind == "lstm":
        data["dc0"] = c0.grad
    for k in params:
        data["d" + k] = grads[k].grad
    name = f"rnn_{kind}_l{layers}_{'bi' if bidir else 'uni'}_{'pad' if padded else 'full'}.txt"
    write(name, data)


for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
    for layers in (1, 2):
        for bidir in (False, True):
            for padded in (False, True):
                gen_rnn(kind, layers, bidir, padded)
for layers in (1, 2):
    gen_rnn("gru_classic", layers, False, False)
print("wrote", len([f for f in os.listdir(OUT) if f.startswith("rnn_")]), "recurrent fixtures")


# ---- attention and transformer layers ----------------------------------------
def loss_of(outs):
    """sum of every output times a fixed random weight (written as w<i>)."""
    ws = [torch.randn(o.shape) for o in outs]
    return sum((o * w).sum() for o, w in zip(outs, ws)), ws


def gen_module(name, module, inputs, call, extra=None):
    """inputs: dict of leaf tensors (requiring grad); call(module, **inputs) -> list of outputs."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    module.zero_grad()         # a module used for two files must not accumulate
    outs = call(module, **leaves)
    loss, ws = loss_of(outs)
    loss.backward()
    data = dict(inputs)
    data.update(extra or {})
    data.update({k: v for k, v in module.named_parameters()})
    for i, (o, w) in enumerate(zip(outs, ws)):
        data[f"out{i}"], data[f"w{i}"] = o, w
    data.update({"d" + k: v.grad for k, v in leaves.items()})
    data.update({"d" + k: v.grad for k, v in module.named_parameters()})
    write(name, data)


E, NH = 8, 2
keep_k = torch.tensor([[1.0, 1, 1, 1, 1], [1.0, 1, 1, 0, 0]])      # (B=2, S=5), 1 = keep
mha = torch.nn.MultiheadAttention(E, NH, batch_first=True)
with torch.no_grad():
    mha.in_proj_bias.normal_()
    mha.out_proj.bias.normal_()
gen_module("attn_mha_pad.txt", mha,
           {"query": torch.randn(2, 3, E), "key": torch.randn(2, 5, E), "value": torch.randn(2, 5, E)},
           lambda m, query, key, value: [m(query, key, value, key_padding_mask=keep_k == 0, need_weights=False)[0]],
           {"keep": keep_k})
causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), 1)
keep4 = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 0]])
gen_module("attn_mha_causal.txt", mha, {"x": torch.randn(2, 4, E)},
           lambda m, x: [m(x, x, x, key_padding_mask=keep4 == 0, attn_mask=causal, need_weights=False)[0]],
           {"keep": keep4})

ln = torch.nn.LayerNorm(6)
with torch.no_grad():
    ln.weight.normal_()
    ln.bias.normal_()
gen_module("attn_layernorm.txt", ln, {"x": torch.randn(2, 3, 6)}, lambda m, x: [m(x)])

for nf in (False, True):
    enc = torch.nn.TransformerEncoderLayer(E, NH, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=nf)
    with torch.no_grad():
        for k, p in enc.named_parameters():
            if "norm" in k or "bias" in k:
                p.normal_(0, 0.5)
    gen_module(f"attn_encoder_{'pre' if nf else 'post'}.txt", enc, {"x": torch.randn(2, 4, E)},
               lambda m, x: [m(x, src_key_padding_mask=keep4 == 0)], {"keep": keep4})
    dec = torch.nn.TransformerDecoderLayer(E, NH, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=nf)
    with torch.no_grad():
        for k, p in dec.named_parameters():
            if "norm" in k or "bias" in k:
                p.normal_(0, 0.5)
    gen_module(f"attn_decoder_{'pre' if nf else 'post'}.txt", dec, {"x": torch.randn(2, 4, E), "mem": torch.randn(2, 5, E)},
               lambda m, x, mem: [m(x, mem, tgt_mask=causal, memory_key_padding_mask=keep_k == 0)],
               {"keep": keep_k})


class Luong(torch.nn.Module):
    """Additive (Bahdanau) and Luong attention written out, seqgrad's layout."""

    def __init__(self, kind, Q, K, A):
        super().__init__()
        self.kind = kind
        if kind == "general":
            self.W = torch.nn.Parameter(torch.randn(Q, K) * 0.5)
        if kind == "concat":
            self.W = torch.nn.Parameter(torch.randn(A, Q + K) * 0.5)
        if kind == "additive":
            self.W = torch.nn.Parameter(torch.randn(A, Q) * 0.5)
            self.U = torch.nn.Parameter(torch.randn(A, K) * 0.5)
        if kind in ("concat", "additive"):
            self.v = torch.nn.Parameter(torch.randn(A) * 0.5)

    def forward(self, s, h, keep):
        if self.kind == "dot":
            e = (h @ s.unsqueeze(2)).squeeze(2)
        elif self.kind == "general":
            e = (h @ (s @ self.W).unsqueeze(2)).squeeze(2)
        else:
            Q = s.shape[1]
            Ws, Uh = (self.W, h @ self.U.T) if self.kind == "additive" else (self.W[:, :Q], h @ self.W[:, Q:].T)
            e = torch.tanh(Uh + (s @ Ws.T).unsqueeze(1)) @ self.v
        a = torch.softmax(e.masked_fill(keep == 0, float("-inf")), dim=1)
        return [(a.unsqueeze(1) @ h).squeeze(1), a]


for kind in ("dot", "general", "concat", "additive"):
    Q = 6 if kind == "dot" else 4
    gen_module(f"attn_{kind}.txt", Luong(kind, Q, 6, 5), {"s": torch.randn(2, Q), "h": torch.randn(2, 5, 6)},
               lambda m, s, h: m(s, h, keep_k), {"keep": keep_k})
print("wrote", len([f for f in os.listdir(OUT) if f.startswith("attn_")]), "attention fixtures")
