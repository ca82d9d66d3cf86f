#!/usr/bin/python3
"""The recurrent layer alone, seqgrad against oneDNN's fused RNN primitives
(what PyTorch 2.x runs for nn.LSTM/GRU/RNN on a CPU), interleaved:

    /usr/bin/python3 bench/layer.py [--threads 1,2] [--repeat N] [--build DIR] [--quick]

Forward + backward of L stacked layers (B = 32, T = 64, f32) from a fixed
upstream gradient: bench/bench_layer.c and bench/bench_dnnl.c (which first
checks oneDNN's weight gradients against central differences). Each side
at its best thread setting: seqgrad with OPENBLAS_NUM_THREADS=n and
OMP_NUM_THREADS=n (whichever GEMM backend it was built with), oneDNN
with OMP_NUM_THREADS=n at its default wait policy (PASSIVE makes its 2-thread
run slower than 1 thread, ../shared/PERF.md). Prints the CPU model and
OpenBLAS core and seqgrad's GEMM backend, then per workload and thread count each side's median
tokens/s over --repeat alternating runs, the ratio seqgrad / oneDNN (1.00 =
as fast) and the peak memory of each. Needs libdnnl-dev at build time.
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cells import gemm_backend, machine, seqgrad_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (cell, H, L, B, T, steps): the workloads
WORKLOADS = [
    ("lstm", 128, 1, 32, 64, 30),
    ("lstm", 256, 1, 32, 64, 15),
    ("lstm", 512, 1, 32, 64, 6),
    ("lstm", 512, 2, 32, 64, 4),
    ("gru", 256, 1, 32, 64, 15),
    ("rnn", 256, 1, 32, 64, 30),
    ("lstm", 32, 1, 1, 100, 200),
]


def once(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[out.index("tokens_per_s") + 1]), float(out[out.index("peak_mb") + 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="LSTM H=128 and the course size only")
    a = ap.parse_args()
    dnnl = os.path.join(a.build, "bench", "bench_dnnl")
    mine = os.path.join(a.build, "bench", "bench_layer")
    if not os.path.exists(dnnl):
        sys.exit("layer.py: no bench_dnnl: apt-get install libdnnl-dev, then meson setup --reconfigure " + a.build)
    work = [w for w in WORKLOADS if not a.quick or (w[1], w[3]) in ((128, 32), (32, 1))]
    model, core = machine()
    print(f"CPU: {model}; OpenBLAS core: {core}; GEMM: {gemm_backend(a.build)}; forward + backward of the layer, f32, "
          f"median of {a.repeat} interleaved runs")
    for w in work:                             # the anchor first: oneDNN's gradients against central differences
        subprocess.run([dnnl, w[0], "16", str(w[2]), "4", "10", "2", "--check"], check=True, capture_output=True)
    print(f"{'workload':24} {'thr':>3} {'seqgrad tok/s':>14} {'oneDNN tok/s':>13} {'ratio':>6} {'peak MB':>13}")
    for n in [int(t) for t in a.threads.split(",")]:
        for cell, H, L, B, T, steps in work:
            args = [cell, str(H), str(L), str(B), str(T), str(steps)]
            sg, dn = [], []
            for _ in range(a.repeat):
                sg.append(once([mine] + args, seqgrad_env(n)))
                dn.append(once([dnnl] + args, dict(os.environ, OMP_NUM_THREADS=str(n))))
            s, d = statistics.median(x[0] for x in sg), statistics.median(x[0] for x in dn)
            name = f"{cell} H={H}" + (f" L={L}" if L > 1 else "") + (f" B={B} T={T}" if B != 32 else "")
            print(f"{name:24} {n:3d} {s:14.0f} {d:13.0f} {s / d:6.2f} "
                  f"{max(x[1] for x in sg):6.0f}/{max(x[1] for x in dn):<6.0f}")


if __name__ == "__main__":
    main()
