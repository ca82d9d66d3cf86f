#!/usr/bin/python3
"""The recurrent layer alone, seqgrad against oneDNN's fused RNN primitives
(what PyTorch 2.x runs for nn.LSTM/GRU/RNN on a CPU) and against its own
matrix products alone: the layer section of compare.py, which needs no
PyTorch.

    /usr/bin/python3 bench/layer.py [--threads 1,2] [--repeat N] [--build DIR] [--quick]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

if __name__ == "__main__":
    sys.argv += ["--only", "layer"]
    compare.main()
