#!/usr/bin/python3
"""Runs every benchmark workload in seqgrad and in PyTorch, interleaved, with
the same thread count, and prints tokens/s, peak memory and the ratio.

    /usr/bin/python3 bench/compare.py [--threads N] [--quick] [--build DIR]

Needs a release build (default: build-rel; made if missing) and Debian's
python3-torch. The machine is shared and noisy (PERF.md): each workload is
run `--repeat` times alternating the two sides, and the best of each is kept.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, program, args): bench_rnn takes CELL H L B T STEPS, bench_attn KIND SIZE STEPS
WORKLOADS = [
    ("lstm H=128 L=1", "lstm", 128, 1, 32, 64, 30),
    ("lstm H=128 L=2", "lstm", 128, 2, 32, 64, 20),
    ("lstm H=256 L=1", "lstm", 256, 1, 32, 64, 15),
    ("lstm H=256 L=2", "lstm", 256, 2, 32, 64, 10),
    ("lstm H=512 L=1", "lstm", 512, 1, 32, 64, 6),
    ("lstm H=512 L=2", "lstm", 512, 2, 32, 64, 4),
    ("gru  H=256 L=1", "gru", 256, 1, 32, 64, 15),
    ("gru  H=256 L=2", "gru", 256, 2, 32, 64, 10),
    ("rnn  H=256 L=1", "rnn", 256, 1, 32, 64, 20),
    ("rnn  H=256 L=2", "rnn", 256, 2, 32, 64, 15),
    ("lstm H=32 B=1 T=100 (course)", "lstm", 32, 1, 1, 100, 100),
    ("transformer LM d=128 (2 layers)", "tlm", 128, 20),
    ("transformer LM d=256 (2 layers)", "tlm", 256, 8),
    ("GRU seq2seq + additive attn H=128", "s2s", 128, 20),
]


def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[out.index("tokens_per_s") + 1]), float(out[out.index("peak_mb") + 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="H=128 and the course size only")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"))
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.run(["meson", "setup", a.build, "--buildtype=release", "-Dtests=false"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", a.build], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
    work = [w for w in WORKLOADS if not a.quick or (len(w) == 7 and w[2] in (32, 128) and w[3] == 1)]
    print(f"threads {a.threads}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"best of {a.repeat}, batch 32, Adam; tokens/s (higher is better)")
    print(f"{'workload':34} {'seqgrad':>10} {'pytorch':>10} {'ratio':>7} {'MB ours':>8} {'MB torch':>9}")
    for w in work:
        name, prog, args = w[0], "bench_rnn" if len(w) == 7 else "bench_attn", [str(v) for v in w[1:]]
        ours, theirs = (0.0, 0.0), (0.0, 0.0)
        for _ in range(a.repeat):
            o = run([os.path.join(a.build, "bench", prog)] + args, env)
            p = run(["/usr/bin/python3", os.path.join(ROOT, "bench", prog + ".py")] + args + [str(a.threads)], env)
            ours, theirs = max(ours, o), max(theirs, p)
        print(f"{name:34} {ours[0]:10.0f} {theirs[0]:10.0f} {ours[0] / theirs[0]:6.2f}x {ours[1]:8.0f} {theirs[1]:9.0f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
