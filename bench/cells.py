#!/usr/bin/python3
"""A cell written as equations against the built-in cell it re-expresses, on
the char-LM training step of bench_rnn (embedding -> cell -> linear ->
cross-entropy -> backward -> Adam), interleaved, at 1 and 2 threads:

    /usr/bin/python3 bench/cells.py [--repeat N] [--build DIR] [--quick]

The YAML side is examples/cells/lstm.yaml, compiled as the tool compiles it.
Prints the CPU model and OpenBLAS core, then per workload each side's best
and median tokens/s over --repeat alternating runs and the ratios (YAML /
built-in; 1.00 = the same speed). The best is what the machine's noise
(other tenants, PERF.md) disturbs least. Needs no PyTorch.
"""
import argparse
import ctypes
import os
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, H, L, B, T, steps): bench_rnn's char-LM workloads
WORKLOADS = [
    ("lstm H=128 L=1", 128, 1, 32, 64, 30),
    ("lstm H=128 L=2", 128, 2, 32, 64, 20),
    ("lstm H=256 L=1", 256, 1, 32, 64, 15),
    ("lstm H=256 L=2", 256, 2, 32, 64, 10),
    ("lstm H=512 L=1", 512, 1, 32, 64, 6),
    ("lstm H=32 B=1 T=100 (course)", 32, 1, 1, 100, 100),
]


def seqgrad_env(threads):
    """seqgrad's products on `threads` threads, whichever GEMM backend it was
    built with (OpenBLAS reads the first, oneDNN's OpenMP the second; each at
    its default wait policy, its best here)."""
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))


def gemm_backend(build):
    """The GEMM backend the build's seqgrad runs (bench_layer --gemm)."""
    prog = os.path.join(build, "bench", "bench_layer")
    return subprocess.run([prog, "--gemm"], capture_output=True, text=True, check=True).stdout.strip()


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    core = "unknown"
    for lib in ("libopenblas.so.0", "libopenblas.so"):
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            core = fn().decode()
            break
        except OSError:
            continue
    return model, core


def tokens_per_s(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[out.index("tokens_per_s") + 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"))
    ap.add_argument("--quick", action="store_true", help="H=128 L=1 and the course size only")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.run(["meson", "setup", a.build, "--buildtype=release", "-Dtests=false"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", a.build], check=True, stdout=subprocess.DEVNULL)
    model, core = machine()
    print(f"CPU: {model}; OpenBLAS core: {core}; GEMM: {gemm_backend(a.build)}; {a.repeat} alternating runs; tokens/s")
    yaml = os.path.join(ROOT, "examples", "cells", "lstm.yaml")
    prog = os.path.join(a.build, "bench", "bench_rnn")
    work = [w for w in WORKLOADS if not a.quick or w[0] in ("lstm H=128 L=1", "lstm H=32 B=1 T=100 (course)")]
    for threads in (1, 2):
        env = seqgrad_env(threads)
        print(f"\nthreads {threads}")
        print(f"{'workload':32} {'best: built-in':>15} {'yaml':>8} {'ratio':>7}   {'median: built-in':>17} {'yaml':>8} {'ratio':>7}")
        for name, *args in work:
            args = [str(v) for v in args]
            ours, yours = [], []
            for _ in range(a.repeat):
                ours.append(tokens_per_s([prog, "lstm"] + args, env))
                yours.append(tokens_per_s([prog, yaml] + args, env))
            b, y = max(ours), max(yours)
            mb, my = statistics.median(ours), statistics.median(yours)
            print(f"{name:32} {b:15.0f} {y:8.0f} {y / b:6.3f}x   {mb:17.0f} {my:8.0f} {my / mb:6.3f}x", flush=True)


if __name__ == "__main__":
    main()
