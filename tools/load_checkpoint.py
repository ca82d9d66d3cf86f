#!/usr/bin/python3
"""Loads a seqgrad checkpoint into the equivalent PyTorch module and checks
that both give the same output.

    /usr/bin/python3 tools/load_checkpoint.py CHECKPOINT TEXTFILE [--expect-loss X]

The checkpoint of a character-level LM (`seqgrad train`) holds
model.embedding.weight, model.rnn.* (torch.nn.LSTM/GRU/RNN names) and
model.decoder.*; its folder's config.yaml gives the sizes. The script
rebuilds nn.Embedding -> nn.LSTM/nn.GRU/nn.RNN -> nn.Linear, loads the
tensors with load_state_dict(strict=True), and computes the loss on
TEXTFILE exactly as `seqgrad eval` does (B streams, chunks of T with the
state carried). With --expect-loss (what `seqgrad eval` printed) it exits 1
unless the two agree to 1e-4. Needs Debian's python3-torch only (the
safetensors format is read with json + torch.frombuffer).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seqgrad_torch import read_config, read_safetensors  # noqa: E402


def main():
    args = sys.argv[1:]
    expect = None
    if "--expect-loss" in args:
        i = args.index("--expect-loss")
        expect = float(args[i + 1])
        del args[i:i + 2]
    ckpt, text_path = args
    tensors, meta = read_safetensors(ckpt)
    cfg = read_config(meta["config"])       # the run's config travels in the checkpoint
    kind, H, L = cfg["model.kind"], int(cfg["model.hidden"]), int(cfg["model.layers"])
    B, T = int(cfg["data.batch_size"]), int(cfg["data.seq_len"])
    vocab = bytes.fromhex(meta["vocab"])
    V = len(vocab)
    if cfg.get("data.kind", "text") != "text":
        sys.exit(f"data.kind {cfg['data.kind']}: this script checks character-level text models only")
    modules = {"lstm": torch.nn.LSTM, "gru_reset_after": torch.nn.GRU, "rnn": torch.nn.RNN}
    if kind not in modules:
        sys.exit(f"{kind}: no PyTorch module computes this cell (the classic GRU is seqgrad's own)")
    torch.set_default_dtype(torch.float64)
    emb, rnn, dec = torch.nn.Embedding(V, H), modules[kind](H, H, num_layers=L, batch_first=True), torch.nn.Linear(H, V)
    emb.load_state_dict({"weight": tensors["model.embedding.weight"].double()}, strict=True)
    rnn.load_state_dict({k[len("model.rnn."):]: v.double() for k, v in tensors.items() if k.startswith("model.rnn.")},
                        strict=True)
    dec.load_state_dict({"weight": tensors["model.decoder.weight"].double(),
                         "bias": tensors["model.decoder.bias"].double()}, strict=True)

    ids = torch.tensor([vocab.index(c) for c in open(text_path, "rb").read()])
    per = len(ids) // B
    steps = (per - 1) // T
    state, total = None, 0.0
    with torch.no_grad():
        for s in range(steps):
            rows = [ids[b * per + s * T: b * per + s * T + T + 1] for b in range(B)]
            x = torch.stack([r[:-1] for r in rows])
            y = torch.stack([r[1:] for r in rows])
            h, state = rnn(emb(x), state)
            total += F.cross_entropy(dec(h).reshape(B * T, V), y.reshape(-1)).item()
    loss = total / steps
    print(f"{text_path}: PyTorch {kind} loss {loss:.6f} nats/char over {steps} chunks")
    if expect is not None:
        ok = abs(loss - expect) < 1e-4
        print(f"seqgrad said {expect:.6f}: {'same' if ok else 'DIFFERENT'}")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
