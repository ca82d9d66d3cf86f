"""seqgrad's recurrent models as ONNX graphs (docs/interchange.md), and a
small numpy evaluator of the operators they use, to check them.

ONNX's recurrent operators order gates differently from PyTorch and seqgrad:
LSTM i,o,f,c (seqgrad i,f,g,o); GRU z,r,h (seqgrad's gru_reset_after, which
is nn.GRU, r,z,n, with linear_before_reset = 1). Bidirectional layers stack
the two directions' weights; sequence_lens carries the lengths, so the
reverse direction starts at each sequence's own last step, outputs past a
length are 0 and Y_h holds each sequence's last state, as in seqgrad.
Exported: language models (ids -> logits at every step), taggers (ids and
lengths -> logits at every step) and classifiers with last-state pooling
(ids and lengths -> logits), of the cells ONNX has: lstm, gru_reset_after,
rnn, rnn_relu. Needs Debian's python3-onnx and python3-numpy.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import seqgrad_torch as sgt

OPSET = 14
ONNX_CELL = {"lstm": ("LSTM", 4), "gru_reset_after": ("GRU", 3), "rnn": ("RNN", 1), "rnn_relu": ("RNN", 1)}


def _gates(w, cell, H):
    """PyTorch's gate blocks (rows) in ONNX's order."""
    b = [w[k * H:(k + 1) * H] for k in range(ONNX_CELL[cell][1])]
    if cell == "lstm":            # i f g o -> i o f c
        b = [b[0], b[3], b[1], b[2]]
    elif cell == "gru_reset_after":   # r z n -> z r h
        b = [b[1], b[0], b[2]]
    return np.concatenate(b, 0)


def _layer_weights(w, cell, H, k, dirs):
    sfx = [f"_l{k}", f"_l{k}_reverse"][:dirs]
    W = np.stack([_gates(w["rnn.weight_ih" + s], cell, H) for s in sfx])
    R = np.stack([_gates(w["rnn.weight_hh" + s], cell, H) for s in sfx])
    Bias = np.stack([np.concatenate([_gates(w["rnn.bias_ih" + s], cell, H), _gates(w["rnn.bias_hh" + s], cell, H)])
                     for s in sfx])
    return W.astype(np.float32), R.astype(np.float32), Bias.astype(np.float32)


def build_graph(cfg, w):
    """An onnx.ModelProto of the run's model; w: {name: numpy array} without "model."."""
    cell, data = cfg["model.kind"], cfg["data.kind"]
    task = sgt.TASKS.get(data)
    if cell not in ONNX_CELL:
        raise SystemExit(f"model.kind {cell}: ONNX has LSTM, GRU (linear_before_reset = 1: gru_reset_after) and RNN "
                         "(tanh, relu); seqgrad's classic gru, rnn_sigmoid and cells of your own have no ONNX operator")
    pooling = cfg.get("model.pooling", "last")
    if task not in ("lm", "tag", "classify") or (task == "classify" and pooling != "last") or \
            "embedding.weight" not in w:
        raise SystemExit(f"data.kind {data} (pooling {pooling}): ONNX export takes language models, taggers and "
                         "classifiers of ids with last-state pooling")
    op, _ = ONNX_CELL[cell]
    H, L = int(cfg["model.hidden"]), int(cfg["model.layers"])
    dirs = 2 if task != "lm" and cfg.get("model.bidirectional") == "true" else 1
    init, nodes = [], []

    def const(name, value):
        init.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    inputs = [helper.make_tensor_value_info("input", TensorProto.INT64, ["B", "T"])]
    lens = None
    if task != "lm":
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]))
        lens = "lengths"
    nodes.append(helper.make_node("Gather", [const("embedding.weight", w["embedding.weight"].astype(np.float32)),
                                             "input"], ["emb"]))
    nodes.append(helper.make_node("Transpose", ["emb"], ["x0"], perm=[1, 0, 2]))          # (T,B,H)
    x = "x0"
    for k in range(L):
        W, R, Bias = _layer_weights(w, cell, H, k, dirs)
        attrs = {"hidden_size": H, "direction": "bidirectional" if dirs == 2 else "forward"}
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        if op == "RNN":
            attrs["activations"] = ["Relu" if cell == "rnn_relu" else "Tanh"] * dirs
        ins = [x, const(f"W{k}", W), const(f"R{k}", R), const(f"B{k}", Bias), lens or ""]
        nodes.append(helper.make_node(op, ins, [f"Y{k}", f"Yh{k}"], **attrs))
        # (T, dirs, B, H) -> (T, B, dirs*H)
        nodes.append(helper.make_node("Transpose", [f"Y{k}"], [f"Yt{k}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Yt{k}", const(f"shape{k}", np.array([0, 0, -1], np.int64))],
                                      [f"x{k + 1}"]))
        x = f"x{k + 1}"
    head = "decoder" if task == "lm" else "head"
    wt = const(head + ".weight_t", np.ascontiguousarray(w[head + ".weight"].T.astype(np.float32)))
    bias = const(head + ".bias", w[head + ".bias"].astype(np.float32))
    if task == "classify":                   # the last layer's final states (dirs,B,H) -> (B, dirs*H)
        nodes.append(helper.make_node("Transpose", [f"Yh{L - 1}"], ["last_t"], perm=[1, 0, 2]))
        nodes.append(helper.make_node("Reshape", ["last_t", const("shape_last", np.array([0, -1], np.int64))],
                                      ["pooled"]))
        feat, out_shape = "pooled", ["B", "C"]
    else:
        nodes.append(helper.make_node("Transpose", [x], ["feat"], perm=[1, 0, 2]))           # (B,T,D)
        feat, out_shape = "feat", ["B", "T", "V"]
    nodes.append(helper.make_node("MatMul", [feat, wt], ["proj"]))
    nodes.append(helper.make_node("Add", ["proj", bias], ["output"]))
    graph = helper.make_graph(nodes, f"seqgrad_{task}_{cell}", inputs,
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="seqgrad")
    onnx.checker.check_model(model)
    return model


# ---- a numpy evaluator of the operators above ----------------------------------------------


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _recurrent(op, X, W, R, Bias, lens, attrs):
    """ONNX's LSTM, GRU and RNN (default activations; RNN's from attrs):
    Y (T, dirs, B, H), zero past each length, and Y_h (dirs, B, H)."""
    T, Bn, _ = X.shape
    dirs, G, _ = W.shape
    H = attrs["hidden_size"]
    lens = np.full(Bn, T) if lens is None else lens
    Y = np.zeros((T, dirs, Bn, H), np.float32)
    Yh = np.zeros((dirs, Bn, H), np.float32)
    act = {"Tanh": np.tanh, "Relu": lambda v: np.maximum(v, 0)}
    for d in range(dirs):
        Wb, Rb = Bias[d, :G], Bias[d, G:]
        for b in range(Bn):
            h, c = np.zeros(H, np.float32), np.zeros(H, np.float32)
            steps = range(lens[b] - 1, -1, -1) if d == 1 else range(lens[b])
            for t in steps:
                xw = X[t, b] @ W[d].T + Wb
                if op == "LSTM":
                    g = xw + h @ R[d].T + Rb
                    i, o, f, cc = (g[k * H:(k + 1) * H] for k in range(4))
                    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
                    h = _sigmoid(o) * np.tanh(c)
                elif op == "GRU":             # linear_before_reset = 1
                    hr = h @ R[d].T + Rb
                    z = _sigmoid(xw[:H] + hr[:H])
                    r = _sigmoid(xw[H:2 * H] + hr[H:2 * H])
                    n = np.tanh(xw[2 * H:] + r * hr[2 * H:])
                    h = (1 - z) * n + z * h
                else:
                    h = act[attrs["activations"][d]](xw + h @ R[d].T + Rb)
                h = h.astype(np.float32)
                Y[t, d, b] = h
            Yh[d, b] = h
    return Y, Yh


def evaluate(model, feeds):
    """Runs an exported graph on numpy inputs: {"output": array}."""
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        a = {k: (v.decode() if isinstance(v, bytes) else [u.decode() if isinstance(u, bytes) else u for u in v]
                 if isinstance(v, list) else v) for k, v in a.items()}
        ins = [env[i] if i else None for i in node.input]
        if node.op_type == "Gather":
            out = [np.take(ins[0], ins[1], axis=0)]
        elif node.op_type == "Transpose":
            out = [np.transpose(ins[0], a["perm"])]
        elif node.op_type == "Reshape":
            shape = [ins[0].shape[k] if s == 0 else s for k, s in enumerate(ins[1])]
            out = [ins[0].reshape(shape)]
        elif node.op_type == "MatMul":
            out = [np.matmul(ins[0], ins[1])]
        elif node.op_type == "Add":
            out = [ins[0] + ins[1]]
        elif node.op_type in ("LSTM", "GRU", "RNN"):
            out = list(_recurrent(node.op_type, ins[0], ins[1], ins[2], ins[3], ins[4] if len(ins) > 4 else None, a))
        else:
            raise SystemExit(f"evaluate: no {node.op_type}")
        for name, v in zip(node.output, out):
            env[name] = v.astype(np.float32) if v.dtype == np.float64 else v
    return {"output": env["output"]}


def export(checkpoint, reference, path):
    """Writes the ONNX model of checkpoint to path; (its name, {"mine", "ref"}) on the reference batch."""
    tensors, meta = sgt.read_safetensors(checkpoint)
    cfg = sgt.read_config(meta["config"])
    w = {k[len("model."):]: v.numpy() for k, v in tensors.items() if k.startswith("model.")}
    model = build_graph(cfg, w)
    onnx.save(model, path)
    ref, _ = sgt.read_safetensors(reference)
    feeds = {"input": ref["input"].numpy().astype(np.int64)}
    if "lengths" in ref:
        feeds["lengths"] = ref["lengths"].numpy().astype(np.int32)
    mine = evaluate(onnx.load(path), feeds)["output"]
    return model.graph.name, {"mine": mine, "ref": ref["output"].numpy()}
