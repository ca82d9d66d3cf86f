#!/usr/bin/python3
"""The PyTorch side of bench_rnn.c: the same char-LM training workload.

    bench_rnn.py CELL H L B T STEPS THREADS      CELL: lstm | gru | rnn

embedding (V, H) -> nn.LSTM / nn.GRU / nn.RNN(tanh) (L layers, batch_first)
-> nn.Linear(H, V) -> cross-entropy at every step -> backward -> Adam, on
random token ids. Prints the same line as the C program.
"""
import sys

import torch

from benchlib import run

V = 65


def main():
    cell, H, L, B, T, steps, threads = sys.argv[1], *map(int, sys.argv[2:8])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](H, H, num_layers=L, batch_first=True)
    emb, out = torch.nn.Embedding(V, H), torch.nn.Linear(H, V)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(out.parameters())
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B * T,))
    run(lambda: torch.nn.functional.cross_entropy(out(rnn(emb(x))[0]).reshape(B * T, V), y), params, steps, B * T)


if __name__ == "__main__":
    main()
