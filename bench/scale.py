#!/usr/bin/python3
"""Ranks against threads on this machine: the tool's training run of
examples/configs/char_lstm.yaml (shortened to --steps), interleaved,

    /usr/bin/python3 bench/scale.py [--repeat N] [--steps S] [--build DIR]

four ways: one process with OpenBLAS at 2 threads and the batch whole
(train.shards 1); the batch in 2 shards (each product on one BLAS thread)
computed by 1 thread and by 2 threads (train.threads); and `mpirun -np 2`,
a shard per rank. The last three give the same parameters. Prints the
CPU model and OpenBLAS core, each way's median and best tokens/s and wall
time over --repeat rounds, the ratios to the first way, and the bytes one
step's allreduce carries. Needs a build with MPI (libopenmpi-dev) and
mpirun (openmpi-bin).
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cells import machine  # noqa: E402  (the CPU model and OpenBLAS core)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "examples", "configs", "char_lstm.yaml")


def ways(tool, steps):
    sets = ["--set", f"train.steps={steps}", "--set", f"train.eval_every={steps}",
            "--set", f"train.checkpoint_every={steps}"]
    root = ["--allow-run-as-root"] if os.getuid() == 0 else []
    return [
        ("1 process, the batch whole, BLAS 2 threads", {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"},
         [tool, "train", CONFIG, "--overwrite", "--set", "train.shards=1"] + sets),
        ("1 process, 2 shards, 1 thread", {},
         [tool, "train", CONFIG, "--overwrite", "--set", "train.shards=2", "--set", "train.threads=1"] + sets),
        ("1 process, 2 shards, 2 threads", {},
         [tool, "train", CONFIG, "--overwrite", "--set", "train.shards=2", "--set", "train.threads=2"] + sets),
        ("mpirun -np 2, 2 shards", {},
         ["mpirun", "-np", "2"] + root + [tool, "train", CONFIG, "--overwrite", "--set", "train.shards=2"] + sets),
    ]


def one_run(cmd, env, run_dir):
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--set", f"train.run_dir={run_dir}"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        last = list(csv.DictReader(f))[-1]
    return float(last["tokens_per_s"]), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    tool = os.path.join(a.build, "seqgrad")
    if not shutil.which("mpirun"):
        sys.exit("scale.py: no mpirun (apt-get install openmpi-bin libopenmpi-dev, then build again)")
    model, core = machine()
    print(f"CPU: {model}; OpenBLAS core: {core}; {os.cpu_count()} cores")
    print(f"{CONFIG}, {a.steps} steps, {a.repeat} interleaved rounds")
    todo = ways(tool, a.steps)
    tps = {w[0]: [] for w in todo}
    walls = {w[0]: [] for w in todo}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeat):
            for name, extra, cmd in todo:
                env = dict(os.environ, **extra)
                if "mpirun" in cmd[0] and os.getuid() == 0:
                    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
                t, w = one_run(cmd, env, os.path.join(tmp, "run"))
                tps[name].append(t)
                walls[name].append(w)
    base = statistics.median(tps[todo[0][0]])
    print(f"{'way':44} {'median tok/s':>13} {'best':>9} {'wall s':>7} {'ratio':>6}")
    for name, _, _ in todo:
        med = statistics.median(tps[name])
        print(f"{name:44} {med:13.0f} {max(tps[name]):9.0f} {statistics.median(walls[name]):7.1f} {med / base:6.2f}")
    # one step's allreduce: one int64 per parameter element (and one double per tensor)
    out = subprocess.run([tool, "train", CONFIG, "--overwrite", "--set", "train.steps=1", "--set",
                          "train.run_dir=" + os.path.join(tempfile.gettempdir(), "seqgrad-scale-size")],
                         capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    for word in out.split(";"):
        if "parameters" in word:
            params = int(word.split(",")[-1].split()[0])
            print(f"allreduce per step: {params} parameters x 8 bytes = {params * 8 / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
