#!/usr/bin/python3
"""Every speed target of seqgrad in one interleaved run, as ratios:

    /usr/bin/python3 bench/compare.py [--threads 1,2] [--repeat N] [--quick] [--build DIR]
                                      [--only layer,step,tape]

  layer  the recurrent layer alone, forward + backward (bench_layer.c), against
         oneDNN's fused RNN primitives (bench_dnnl.c, what PyTorch 2.x runs),
         and against the same matrix products alone (bench_layer --gemm-only:
         "of GEMM" is the share of the step that the products would take if
         everything else were free); peak memory of both
  step   whole training steps (bench_rnn.c, bench_attn.c) against PyTorch
         (bench_rnn.py, bench_attn.py); with 1 and 2 threads, also seqgrad's
         2-thread step against its own 1-thread one
  tape   the tape's cost per op (bench_tape.c)

Each side at its best thread setting (../shared/PERF.md): seqgrad with
OPENBLAS_NUM_THREADS and OMP_NUM_THREADS = n; oneDNN with OMP_NUM_THREADS = n
at its default wait policy; PyTorch with torch.set_num_threads(n),
OPENBLAS_NUM_THREADS = n and OMP_WAIT_POLICY=PASSIVE (without it PyTorch falls
into the two-pool thread trap here). Every side's 1-thread runs are pinned
to the same CPU (see PIN_CPU); bench_tape's ns/op on each CPU alone,
printed before and after, shows whether a vCPU ran slow meanwhile. Every
workload runs --repeat times, the sides alternating; the medians are
compared. The last lines say which of the issue's targets this run meets.

Needs a release build (default build-rel, made if missing), libdnnl-dev for
the oneDNN side and python3-torch for PyTorch's; a side that is missing is
left out with a message.
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cells import gemm_backend, machine, seqgrad_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the layer alone: (cell, H, L, B, T, steps)
LAYER = [
    ("lstm", 128, 1, 32, 64, 30),
    ("lstm", 256, 1, 32, 64, 15),
    ("lstm", 512, 1, 32, 64, 6),
    ("lstm", 512, 2, 32, 64, 4),
    ("gru", 256, 1, 32, 64, 15),
    ("gru_classic", 256, 1, 32, 64, 15),
    ("rnn", 256, 1, 32, 64, 30),
    ("lstm", 32, 1, 1, 100, 200),
]

# whole steps: (name, program, args): bench_rnn takes CELL H L B T STEPS, bench_attn KIND SIZE STEPS
STEPS = [
    ("lstm H=128 L=1", "bench_rnn", ("lstm", 128, 1, 32, 64, 30)),
    ("lstm H=256 L=1", "bench_rnn", ("lstm", 256, 1, 32, 64, 15)),
    ("lstm H=512 L=1", "bench_rnn", ("lstm", 512, 1, 32, 64, 6)),
    ("lstm H=512 L=2", "bench_rnn", ("lstm", 512, 2, 32, 64, 4)),
    ("gru  H=256 L=1", "bench_rnn", ("gru", 256, 1, 32, 64, 15)),
    ("rnn  H=256 L=1", "bench_rnn", ("rnn", 256, 1, 32, 64, 20)),
    ("lstm H=32 B=1 T=100 (course)", "bench_rnn", ("lstm", 32, 1, 1, 100, 100)),
    ("transformer LM d=128 (2 layers)", "bench_attn", ("tlm", 128, 20)),
    ("transformer LM d=256 (2 layers)", "bench_attn", ("tlm", 256, 8)),
    ("GRU seq2seq + additive attn H=128", "bench_attn", ("s2s", 128, 20)),
]
QUICK_LAYER = {("lstm", 128, 1, 32), ("lstm", 32, 1, 1)}
QUICK_STEP = {"lstm H=128 L=1", "lstm H=32 B=1 T=100 (course)", "transformer LM d=128 (2 layers)"}


# 1-thread runs of every side on one CPU, the last: this machine's two
# vCPUs are not alike from minute to minute (a chain of tiny ops ran 1.5x
# slower on one than on the other, the slower one changing over time), so
# sides the scheduler put on different CPUs were not compared like for like
PIN_CPU = max(os.sched_getaffinity(0))


def launch(cmd, env, cpu=PIN_CPU):
    """cmd's output; on CPU cpu where env asks for one thread."""
    one = env.get("OMP_NUM_THREADS") == "1"
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                          preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if one else None).stdout


def once(cmd, env):
    """tokens/s and peak MB from the line every benchmark program prints."""
    out = launch(cmd, env).split()
    return float(out[out.index("tokens_per_s") + 1]), float(out[out.index("peak_mb") + 1])


def medians(runs):
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def dnnl_env(n):
    return dict(os.environ, OMP_NUM_THREADS=str(n))


def torch_env(n):
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n), OMP_WAIT_POLICY="PASSIVE")


class Targets:
    """Each target's worst value over the run, and whether it holds."""

    def __init__(self):
        self.seen = {}

    def add(self, name, value, goal, higher=True):
        worst, _, _ = self.seen.get(name, (value, goal, higher))
        worst = min(worst, value) if higher else max(worst, value)
        self.seen[name] = (worst, goal, higher)

    def report(self):
        print("\ntargets (worst value in this run)")
        for name, (worst, goal, higher) in self.seen.items():
            ok = worst >= goal if higher else worst <= goal
            print(f"  {'met    ' if ok else 'NOT met'}  {name}: {worst:.2f} ({'>=' if higher else '<='} {goal})")


def layer_section(a, threads, targets):
    bdir = os.path.join(a.build, "bench")
    mine, dnnl = os.path.join(bdir, "bench_layer"), os.path.join(bdir, "bench_dnnl")
    have_dnnl = os.path.exists(dnnl)
    print("\n== the recurrent layer, forward + backward, f32 (B=32, T=64 unless named)")
    if not have_dnnl:
        print("   (no bench_dnnl: apt-get install libdnnl-dev, then meson setup --reconfigure " + a.build +
              "; the oneDNN columns are left out)")
    work = [w for w in LAYER if not a.quick or w[:4] in QUICK_LAYER]
    if have_dnnl:                              # the anchor first: oneDNN's gradients against central differences
        for w in work:
            subprocess.run([dnnl, w[0], "16", str(w[2]), "4", "10", "2", "--check"], check=True, capture_output=True)
    print(f"{'workload':22} {'thr':>3} {'seqgrad':>9} {'oneDNN':>9} {'ratio':>6} {'of GEMM':>8} "
          f"{'MB seqgrad/oneDNN':>18} {'mem ratio':>9}")
    for n in threads:
        for cell, H, L, B, T, steps in work:
            args = [cell, str(H), str(L), str(B), str(T), str(steps)]
            sg, dn, gm = [], [], []
            for _ in range(a.repeat):
                sg.append(once([mine] + args, seqgrad_env(n)))
                gm.append(once([mine] + args + ["--gemm-only"], seqgrad_env(n)))
                if have_dnnl:
                    dn.append(once([dnnl] + args, dnnl_env(n)))
            (s, smb), (g, _) = medians(sg), medians(gm)
            name = f"{cell} H={H}" + (f" L={L}" if L > 1 else "") + (f" B={B} T={T}" if B != 32 else "")
            line = f"{name:22} {n:3d} {s:9.0f} "
            if have_dnnl:
                d, dmb = medians(dn)
                course = B == 1
                line += f"{d:9.0f} {s / d:6.2f} {s / g:8.2f} {smb:9.0f}/{dmb:<8.0f} {smb / dmb:9.2f}"
                targets.add("course size vs oneDNN (>= 1.5x)" if course else "layer vs oneDNN (>= 1.0x)",
                            s / d, 1.5 if course else 1.0)
                if not course:
                    targets.add("layer memory vs oneDNN (<= 1.2x)", smb / dmb, 1.2, higher=False)
            else:
                line += f"{'-':>9} {'-':>6} {s / g:8.2f} {smb:9.0f}/{'-':<8}"
            print(line, flush=True)


def step_section(a, threads, targets):
    print("\n== whole training steps against PyTorch (Adam; char-LM vocabulary 65)")
    try:
        subprocess.run(["/usr/bin/python3", "-c", "import torch"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        print("   (no python3-torch: apt-get install python3-torch; left out)")
        return
    work = [w for w in STEPS if not a.quick or w[0] in QUICK_STEP]
    print(f"{'workload':34} {'thr':>3} {'seqgrad':>9} {'pytorch':>9} {'ratio':>6} {'MB ours/torch':>14} {'mem ratio':>9}")
    own = {}
    for n in threads:
        for name, prog, args in work:
            args = [str(v) for v in args]
            ours, theirs = [], []
            for _ in range(a.repeat):
                ours.append(once([os.path.join(a.build, "bench", prog)] + args, seqgrad_env(n)))
                theirs.append(once(["/usr/bin/python3", os.path.join(ROOT, "bench", prog + ".py")] + args + [str(n)],
                                   torch_env(n)))
            (o, omb), (p, pmb) = medians(ours), medians(theirs)
            own[name, n] = o
            print(f"{name:34} {n:3d} {o:9.0f} {p:9.0f} {o / p:6.2f} {omb:7.0f}/{pmb:<6.0f} {omb / pmb:9.2f}", flush=True)
            if prog == "bench_rnn":
                targets.add("char-LM step vs PyTorch (>= 1.3x)", o / p, 1.3)
            elif args[0] == "tlm" and n == 1:
                targets.add("transformer LM vs PyTorch, 1 thread (>= 1.3x)", o / p, 1.3)
            targets.add("whole-step memory vs PyTorch (<= 0.5x)", omb / pmb, 0.5, higher=False)
    big = [w[0] for w in work if w[1] == "bench_rnn" and w[2][1] >= 256]
    if 1 in threads and 2 in threads and big:
        print(f"\n{'seqgrad 2 threads / 1 thread':34}")
        for name in big:
            r = own[name, 2] / own[name, 1]
            print(f"{name:34} {r:6.2f}")
            targets.add("char-LM 2-thread step vs own 1-thread, H >= 256 (>= 1.6x)", r, 1.6)


def cpu_speeds(a, when):
    """bench_tape's ns/op on each CPU alone: this machine's vCPUs change
    speed (one ran at half the other's for minutes), and a 1-thread figure
    is only as fast as CPU PIN_CPU was then."""
    prog = os.path.join(a.build, "bench", "bench_tape")
    speeds = []
    for cpu in sorted(os.sched_getaffinity(0)):
        out = launch([prog, "1000", "50"], seqgrad_env(1), cpu).split()
        speeds.append(f"CPU {cpu} {float(out[out.index('total_ns_per_op') + 1]):.1f}")
    print(f"vCPU speeds {when} (bench_tape ns/op, each CPU alone; lower is faster): {', '.join(speeds)}", flush=True)


def tape_section(a, targets):
    print("\n== the tape's cost per op (1001 tiny element-wise ops)")
    runs = []
    for _ in range(a.repeat):
        out = launch([os.path.join(a.build, "bench", "bench_tape")], seqgrad_env(1)).split()
        runs.append([float(out[out.index(k) + 1]) for k in ("forward_ns_per_op", "backward_ns_per_op",
                                                             "total_ns_per_op")])
    f, b, total = (statistics.median(r[i] for r in runs) for i in range(3))
    print(f"recording {f:.1f} ns/op, backward {b:.1f} ns/op, in all {total:.1f} ns/op")
    targets.add("tape ns/op, half of 2026-12-07's 52-54 (<= 26)", total, 26, higher=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a few workloads of each section")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"))
    ap.add_argument("--only", default="layer,step,tape")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.run(["meson", "setup", a.build, "--buildtype=release", "-Dtests=false"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", a.build], check=True, stdout=subprocess.DEVNULL)
    threads = [int(t) for t in a.threads.split(",")]
    model, core = machine()
    print(f"CPU: {model}; OpenBLAS core: {core}; seqgrad's GEMM: {gemm_backend(a.build)}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; threads {a.threads}; "
          f"medians of {a.repeat} interleaved runs; tokens/s; 1-thread runs on CPU {PIN_CPU}")
    cpu_speeds(a, "before")
    targets = Targets()
    sections = a.only.split(",")
    if "layer" in sections:
        layer_section(a, threads, targets)
    if "step" in sections:
        step_section(a, threads, targets)
    if "tape" in sections:
        tape_section(a, targets)
    print()
    cpu_speeds(a, "after")
    targets.report()


if __name__ == "__main__":
    main()
