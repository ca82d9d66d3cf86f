#!/usr/bin/python3
"""The PyTorch side of bench_attn.c (same workloads, same sizes).

    bench_attn.py tlm D STEPS THREADS | s2s H STEPS THREADS
"""
import sys

import torch
import torch.nn.functional as F

from benchlib import run


class TLM(torch.nn.Module):
    def __init__(self, V, d, T):
        super().__init__()
        self.emb = torch.nn.Embedding(V, d)
        layer = torch.nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(d, V)
        pos = torch.arange(T).unsqueeze(1) / torch.pow(10000.0, torch.arange(0, d, 2) / d)
        pe = torch.zeros(T, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos), torch.cos(pos)
        self.register_buffer("pe", pe)
        self.register_buffer("causal", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x):
        return self.head(self.enc(self.emb(x) + self.pe, mask=self.causal))


class S2S(torch.nn.Module):
    """GRU encoder, GRU decoder with additive attention, as seqgrad's sg_seq2seq."""

    def __init__(self, V, H):
        super().__init__()
        self.src_emb, self.tgt_emb = torch.nn.Embedding(V, H), torch.nn.Embedding(V, H)
        self.encoder = torch.nn.GRU(H, H, batch_first=True)
        self.decoder = torch.nn.GRUCell(2 * H, H)
        self.W, self.U = torch.nn.Linear(H, H, bias=False), torch.nn.Linear(H, H, bias=False)
        self.v = torch.nn.Linear(H, 1, bias=False)
        self.bridge, self.out = torch.nn.Linear(H, H), torch.nn.Linear(2 * H, V)

    def forward(self, src, tgt_in):
        h, hn = self.encoder(self.src_emb(src))
        s, Uh, zs = torch.tanh(self.bridge(hn[0])), self.U(h), []
        for t in range(tgt_in.shape[1]):
            a = torch.softmax(self.v(torch.tanh(Uh + self.W(s).unsqueeze(1))).squeeze(2), dim=1)
            c = (a.unsqueeze(1) @ h).squeeze(1)
            s = self.decoder(torch.cat([self.tgt_emb(tgt_in[:, t]), c], 1), s)
            zs.append(self.out(torch.cat([s, c], 1)))
        return torch.stack(zs, 1)


def main():
    kind, size, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    B, T, V = 32, (64 if kind == "tlm" else 20), (65 if kind == "tlm" else 32)
    model = TLM(V, size, T) if kind == "tlm" else S2S(V, size)
    x, y, src = torch.randint(0, V, (B, T)), torch.randint(0, V, (B * T,)), torch.randint(0, V, (B, 20))
    forward = (lambda: model(x)) if kind == "tlm" else (lambda: model(src, x))
    run(lambda: F.cross_entropy(forward().reshape(B * T, V), y), list(model.parameters()), steps, B * T)


if __name__ == "__main__":
    main()
