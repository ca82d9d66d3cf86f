#!/usr/bin/python3
"""The back half of `seqgrad export` (docs/interchange.md):

    /usr/bin/python3 tools/seqgrad_export.py --to pytorch|onnx CHECKPOINT REFERENCE OUT

REFERENCE is the batch `seqgrad export` wrote (inputs and seqgrad's outputs).
pytorch: rebuilds the model as torch.nn modules (seqgrad_torch.py), loads the
checkpoint's weights, checks its outputs on the batch, and writes
OUT/weights.pt (the state_dict), OUT/weights.safetensors, OUT/seqgrad_torch.py
and OUT/config.yaml. onnx: writes OUT/model.onnx (seqgrad_onnx.py) and checks
it the same way with a small numpy evaluator of the operators it uses.
Exit 0 when the largest difference is within 1e-4 (PyTorch) or 1e-5 (ONNX)
times the outputs' scale (at least 1), 1 when not, 2 when the model cannot
be exported.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def compare(name, mine, ref, tol):
    import numpy as np
    mine, ref = np.asarray(mine, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if mine.shape != ref.shape:
        print(f"{name}: outputs of shape {mine.shape}, seqgrad's are {ref.shape}")
        return False
    diff = float(np.max(np.abs(mine - ref))) if ref.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    ok = diff <= tol * scale
    print(f"{name}: {ref.size} outputs {tuple(ref.shape)}, largest |difference| from seqgrad {diff:.3g} "
          f"(outputs up to {scale:.3g}): {'the same' if ok else 'DIFFERENT'}")
    return ok


def main():
    args = sys.argv[1:]
    if len(args) != 5 or args[0] != "--to" or args[1] not in ("pytorch", "onnx"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    to, checkpoint, reference, out = args[1:]
    os.makedirs(out, exist_ok=True)
    if to == "pytorch":
        try:
            import torch
        except ImportError:
            print("seqgrad export --to pytorch needs PyTorch: apt-get install python3-torch", file=sys.stderr)
            sys.exit(2)
        import seqgrad_torch as sgt
        model, cfg, meta = sgt.load(checkpoint)
        ref, _ = sgt.read_safetensors(reference)
        ok = compare("torch.nn " + type(model).__name__, sgt.run(model, ref).numpy(), ref["output"].numpy(), 1e-4)
        torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
        sgt.save_safetensors(model.state_dict(), os.path.join(out, "weights.safetensors"))
        shutil.copy(os.path.join(HERE, "seqgrad_torch.py"), os.path.join(out, "seqgrad_torch.py"))
        with open(os.path.join(out, "config.yaml"), "w") as f:
            f.write(meta["config"])
        print(f"wrote {out}/weights.pt, weights.safetensors, seqgrad_torch.py, config.yaml; in Python:\n"
              f"  import sys; sys.path.insert(0, '{out}'); import seqgrad_torch as sgt, torch\n"
              f"  model = sgt.build(sgt.read_config(open('{out}/config.yaml').read()), "
              f"torch.load('{out}/weights.pt'))\n"
              f"  model.load_state_dict(torch.load('{out}/weights.pt'))")
    else:
        try:
            import onnx  # noqa: F401
        except ImportError:
            print("seqgrad export --to onnx needs ONNX: apt-get install python3-onnx", file=sys.stderr)
            sys.exit(2)
        import seqgrad_onnx as sgo
        model, outputs = sgo.export(checkpoint, reference, os.path.join(out, "model.onnx"))
        ok = compare("ONNX " + model, outputs["mine"], outputs["ref"], 1e-5)
        print(f"wrote {out}/model.onnx")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
