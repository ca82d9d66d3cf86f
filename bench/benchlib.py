"""What bench_rnn.py and bench_attn.py share: the timed training loop and
the line compare.py reads (the same as bench.h prints)."""
import resource
import time

import torch


def run(step, params, steps, tokens):
    """step() -> loss; Adam over params; warm-up steps as the C side."""
    opt = torch.optim.Adam(params)
    warm = max(steps // 10, 2)
    for s in range(warm + steps):
        if s == warm:
            t0 = time.perf_counter()
        loss = step()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tokens_per_s {steps * tokens / dt:.1f} step_ms {1e3 * dt / steps:.3f} peak_mb {peak:.1f}")
