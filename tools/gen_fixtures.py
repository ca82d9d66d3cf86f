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
