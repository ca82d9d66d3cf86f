"""seqgrad's models as torch.nn modules (docs/interchange.md).

    import seqgrad_torch as sgt
    model, cfg, meta = sgt.load("runs/x/checkpoint.safetensors")   # weights in
    ... train in PyTorch, on a GPU if you have one ...
    sgt.save_safetensors(model.state_dict(), "weights.safetensors")  # then:
    #   seqgrad import weights.safetensors --config config.yaml runs/back

Each module's state_dict names are the names of seqgrad's parameters (the
checkpoint's, without its "model." prefix), so weights go both ways
unchanged. The recurrent layer is torch.nn.LSTM, GRU or RNN where PyTorch
has the cell (lstm, gru_reset_after = nn.GRU, rnn, rnn_relu) and a loop of
the same equations where it has not (gru: seqgrad's classic GRU, whose reset
gate acts before U_n and whose h' = (1 - z) h + z n; rnn_sigmoid).
Padded steps (lengths) behave as in seqgrad: outputs zero past a length, the
reverse direction starting at each sequence's own last step, final states
at it. Needs Debian's python3-torch only: safetensors files are read and
written here with json and struct.
"""
import json
import math
import re
import struct
import sys
import zlib

import torch
import torch.nn.functional as F
from torch import nn

# ---- files --------------------------------------------------------------------------


def read_safetensors(path):
    """{name: tensor}, {metadata}; seqgrad's crc32.NAME checksums are checked."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        want = meta.get("crc32." + name)
        if want is not None and int(want, 16) != zlib.crc32(data[begin:end]):
            sys.exit(f"{path}: tensor {name}: checksum {want} in the metadata, "
                     f"{zlib.crc32(data[begin:end]):08x} in the data: the file is corrupt")
        dtype = {"F32": torch.float32, "F64": torch.float64}[t["dtype"]]
        tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(t["shape"]).clone()
    return tensors, meta


def save_safetensors(tensors, path, meta=None):
    """A state_dict (float32 or float64 tensors) as a safetensors file."""
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32" if t.dtype == torch.float32 else "F64", "shape": list(t.shape),
                        "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    if meta:
        header["__metadata__"] = dict(meta)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def read_config(text):
    """A config as seqgrad dumps it (sections of 'key: value' lines) -> {"section.key": "value"}."""
    cfg, section = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^\s+(\w+):\s*\"?(.*?)\"?\s*$", line)
        if m and section and section != "cell":
            cfg[f"{section}.{m.group(1)}"] = m.group(2)
    if re.search(r"^cell:", text, re.M):     # a cell of the config's own: its section as YAML
        cfg["cell"] = cell_spec(text)
    return cfg


# ---- the recurrent layer ----------------------------------------------------------------

NATIVE = {"lstm": (nn.LSTM, {}), "gru_reset_after": (nn.GRU, {}), "rnn": (nn.RNN, {"nonlinearity": "tanh"}),
          "rnn_relu": (nn.RNN, {"nonlinearity": "relu"})}
GATES = {"lstm": 4, "gru_reset_after": 3, "rnn": 1, "rnn_relu": 1, "gru": 3, "rnn_sigmoid": 1}


def _classic_gru(x, h, w_ih, w_hh, b_ih, b_hh):
    H = h.shape[1]
    a = x @ w_ih.T + b_ih + b_hh                    # both biases in the projection, as seqgrad
    rz = torch.sigmoid(a[:, :2 * H] + h @ w_hh[:2 * H].T)
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(a[:, 2 * H:] + (r * h) @ w_hh[2 * H:].T)
    return ((1 - z) * h + z * n,)


def _sigmoid_rnn(x, h, w_ih, w_hh, b_ih, b_hh):
    return (torch.sigmoid(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh),)


class LoopRNN(nn.Module):
    """Cells PyTorch lacks, with nn.GRU's parameter names and calling convention."""

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        self.step = {"gru": _classic_gru, "rnn_sigmoid": _sigmoid_rnn}[cell]
        self.hidden_size, self.num_layers, self.dirs = hidden_size, num_layers, 2 if bidirectional else 1
        g = GATES[cell] * hidden_size
        for k in range(num_layers):
            for d in range(self.dirs):
                s = f"_l{k}" + ("_reverse" if d else "")
                i = input_size if k == 0 else self.dirs * hidden_size
                self.register_parameter("weight_ih" + s, nn.Parameter(torch.empty(g, i)))
                self.register_parameter("weight_hh" + s, nn.Parameter(torch.empty(g, hidden_size)))
                self.register_parameter("bias_ih" + s, nn.Parameter(torch.empty(g)))
                self.register_parameter("bias_hh" + s, nn.Parameter(torch.empty(g)))

    def forward(self, x, h0=None, lengths=None):
        def step_for(k, d, E):
            s = f"_l{k}" + ("_reverse" if d else "")
            w = [getattr(self, p + s) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            return lambda xt, st: [self.step(xt, st[0], *w)[0]]
        x, fin = run_layers(x, None if h0 is None else (h0,), lengths, self.num_layers, self.dirs, self.hidden_size,
                            x.shape[2], 1, step_for)
        return x, fin[0]


def run_layers(x, state, lengths, num_layers, dirs, H, input_size, n_states, step_for):
    """Stacked layers of a cell stepped in Python: step_for(k, d, E) gives
    layer k's direction d as a function (x_t, states) -> next states. Padded
    steps keep the states and output 0; the reverse direction starts at each
    sequence's own last step. out (B,T,dirs*H) and a tuple of the final
    states, each (layers*dirs, B, H); state: initial states so stacked, or None."""
    B, T, _ = x.shape
    lengths = torch.full((B,), T) if lengths is None else lengths
    live = (torch.arange(T)[None, :] < lengths[:, None]).to(x.dtype)      # (B,T)
    finals = [[] for _ in range(n_states)]
    for k in range(num_layers):
        step = [step_for(k, d, input_size if k == 0 else dirs * H) for d in range(dirs)]
        outs = []
        for d in range(dirs):
            st = [x.new_zeros(B, H) if state is None or i >= len(state) else state[i][k * dirs + d]
                  for i in range(n_states)]
            out = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                m = live[:, t:t + 1]
                st = [m * a + (1 - m) * b for a, b in zip(step[d](x[:, t], st), st)]
                out[t] = m * st[0]
            outs.append(torch.stack(out, 1))
            for i in range(n_states):
                finals[i].append(st[i])
        x = torch.cat(outs, 2)
    return x, tuple(torch.stack(f) for f in finals)


# ---- cells of a config's own: the equation language in Python -------------------------

_FUNCS = {"sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "relu": "torch.relu", "exp": "torch.exp",
          "log": "torch.log", "sqrt": "torch.sqrt", "square": "torch.square", "abs": "torch.abs",
          "gelu": "F.gelu"}


class _Equations:
    """A `cell:` section's equations as Python over torch (docs/cells.md):
    the same operations in the same order. Slices, indices, split and
    concat work on the features of a batched value (its last axis) and on
    the first axis of a value made of parameters alone, as in seqgrad."""

    def __init__(self, spec):
        self.name, self.states = spec["name"], list(spec["states"])
        self.params = list(spec["params"])
        self.phase = {}                       # a local's name -> made of parameters alone
        lines = [self._statement(str(e)) for e in spec["equations"]]
        self.code = compile("\n".join(lines), f"<cell {self.name}>", "exec")

    # tokens: names (a trailing ' for the next state), numbers, sizes 2H, operators
    def _statement(self, text):
        import re
        self.toks = re.findall(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?[HE]?|[A-Za-z_]\w*'?|\^T|\S", text)
        self.at = 0
        names = [self._take()]
        while self._peek() == ",":
            self._take()
            names.append(self._take())
        if self._take() != "=":
            raise SystemExit(f"cell {self.name}: cannot read '{text}'")
        code, param = self._sum()
        for n in names:
            self.phase[n] = param
        return f"{', '.join(self._var(n) for n in names)} = {code}"

    def _peek(self):
        return self.toks[self.at] if self.at < len(self.toks) else None

    def _take(self):
        self.at += 1
        return self.toks[self.at - 1]

    def _var(self, n):
        return "v_" + n.replace("'", "__next")

    def _sum(self):
        code, param = self._term()
        while self._peek() in ("+", "-"):
            op = self._take()
            b, pb = self._term()
            code, param = f"({code} {op} {b})", param and pb
        return code, param

    def _term(self):
        code, param = self._unary()
        while self._peek() in ("*", "/", "@"):
            op = self._take()
            b, pb = self._unary()
            code, param = f"({code} {op} {b})", param and pb
        return code, param

    def _unary(self):
        if self._peek() == "-":
            self._take()
            code, param = self._unary()
            return f"(-{code})", param
        return self._postfix()

    def _size(self, stop):
        parts = []
        while self._peek() not in stop:
            t = self._take()
            parts.append(t[:-1] + "*" + t[-1] if t[-1] in "HE" and t[:-1] else t)
        return "(" + " ".join(parts) + ")" if parts else ""

    def _postfix(self):
        code, param = self._primary()
        while self._peek() in ("^T", "["):
            if self._take() == "^T":
                code = f"({code}).T"
                continue
            lo = self._size((":", "]"))
            if self._peek() == ":":
                self._take()
                hi = self._size(("]",))
                idx = f"{lo or 0}:{hi}" if hi else f"{lo or 0}:"
                code = f"{code}[{idx}]" if param else f"{code}[..., {idx}]"
            else:
                code = f"{code}[{lo}]" if param else f"{code}[..., {lo}:{lo} + 1]"
            self._take()                      # ]
        return code, param

    def _args(self):
        args = []
        self._take()                          # (
        while self._peek() != ")":
            args.append(self._sum())
            if self._peek() == ",":
                self._take()
        self._take()
        return args

    def _primary(self):
        t = self._take()
        if t == "(":
            code, param = self._sum()
            self._take()
            return f"({code})", param
        if t[0].isdigit():
            return t, True
        if self._peek() == "(":
            args = self._args()
            param = all(p for _, p in args)
            axis = 0 if param else -1
            if t in _FUNCS:
                return f"{_FUNCS[t]}({args[0][0]})", param
            if t == "split":
                return f"torch.chunk({args[0][0]}, {args[1][0]}, {axis})", param
            if t == "concat":
                return f"torch.cat([{', '.join(a for a, _ in args)}], {axis})", param
            if t == "layernorm":
                g, b = (args[1][0], args[2][0]) if len(args) == 3 else ("None", "None")
                return f"F.layer_norm({args[0][0]}, ({args[0][0]}.shape[-1],), {g}, {b}, 1e-5)", param
            raise SystemExit(f"cell {self.name}: no function {t}")
        if t in self.params:
            return f"P[{t!r}]", True
        if t == "x" or t in self.states:
            return self._var(t), False
        return self._var(t), self.phase.get(t, False)

    def step(self, x, states, params, E, H):
        env = {"torch": torch, "F": F, "P": params, "E": E, "H": H, "v_x": x}
        env.update({self._var(n): s for n, s in zip(self.states, states)})
        exec(self.code, env)
        return [env[self._var(n + "'")] for n in self.states]


def cell_spec(config_text):
    """The config's cell: section ({name, states, params, equations}), or None."""
    import yaml
    return (yaml.safe_load(config_text) or {}).get("cell")


class EquationRNN(nn.Module):
    """Layers of a config's own cell, named as seqgrad names them
    (<param>_l{k}[_reverse]); the calling convention of LoopRNN, every state
    carried (the first is the output)."""

    def __init__(self, spec, shapes, input_size, hidden_size, num_layers=1, bidirectional=False):
        super().__init__()
        self.eq, self.hidden_size, self.num_layers = _Equations(spec), hidden_size, num_layers
        self.dirs, self.input_size = 2 if bidirectional else 1, input_size
        for k in range(num_layers):
            for d in range(self.dirs):
                for p in self.eq.params:
                    name = f"{p}_l{k}" + ("_reverse" if d else "")
                    if name in shapes:           # an absent bias (bias: false) has no tensor
                        self.register_parameter(name, nn.Parameter(torch.empty(shapes[name])))

    def forward(self, x, state=None, lengths=None):
        def step_for(k, d, E):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            P = {p: getattr(self, p + sfx) for p in self.eq.params if hasattr(self, p + sfx)}
            return lambda xt, st: self.eq.step(xt, st, P, E, self.hidden_size)
        n_st = len(self.eq.states)
        x, fin = run_layers(x, state, lengths, self.num_layers, self.dirs, self.hidden_size, self.input_size, n_st,
                            step_for)
        return x, fin if n_st > 1 else fin[0]


class EquationCell(nn.Module):
    """One step of a config's own cell (a seq2seq decoder): parameters by
    their declared names; states in, states out (a list)."""

    def __init__(self, spec, shapes, prefix, input_size, hidden_size):
        super().__init__()
        self.eq, self.E, self.H = _Equations(spec), input_size, hidden_size
        for p in self.eq.params:
            if prefix + p in shapes:
                self.register_parameter(p, nn.Parameter(torch.empty(tuple(shapes[prefix + p].shape))))

    def forward(self, x, states):
        P = {p: getattr(self, p) for p in self.eq.params if hasattr(self, p)}
        return self.eq.step(x, states, P, self.E, self.H)


def _shapes(custom, prefix):
    return {k[len(prefix):]: tuple(v.shape) for k, v in custom[1].items() if k.startswith(prefix)}


def recurrent(cell, input_size, hidden_size, num_layers=1, bidirectional=False, custom=None, prefix="rnn."):
    """seqgrad's sequence layer for a cell: nn.LSTM, nn.GRU or nn.RNN (batch
    first) where PyTorch has the cell, else a LoopRNN of the same names, or
    the config's own cell (custom: (its cell: section, the weights), the
    weights' names under prefix)."""
    if custom and custom[0] and custom[0]["name"] == cell:
        return EquationRNN(custom[0], _shapes(custom, prefix), input_size, hidden_size, num_layers, bidirectional)
    if cell in NATIVE:
        cls, kw = NATIVE[cell]
        return cls(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                   **kw)
    if cell in GATES:
        return LoopRNN(cell, input_size, hidden_size, num_layers, bidirectional)
    raise SystemExit(f"model.kind {cell}: neither a built-in cell (lstm, gru, gru_reset_after, rnn, rnn_relu, "
                     "rnn_sigmoid) nor the config's cell: section (a cell registered in C of your own has no "
                     "equations to translate)")


def rnn_forward(rnn, x, state=None, lengths=None):
    """out (B,T,dirs*H), zero past each length; the final states (h, or (h, c)
    for an LSTM), each (layers*dirs, B, H), at each sequence's last step."""
    if isinstance(rnn, LoopRNN):
        return rnn(x, None if state is None else state[0], lengths)
    if isinstance(rnn, EquationRNN):
        return rnn(x, state, lengths)
    T = x.shape[1]
    hx = None if state is None else (tuple(state) if isinstance(rnn, nn.LSTM) else state[0])
    if lengths is None:
        return rnn(x, hx)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, fin = rnn(packed, hx)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    return out, fin


def first_state(h):
    """The hidden part of a final state (the LSTM's is (h, c))."""
    return h[0] if isinstance(h, tuple) else h


# ---- models ------------------------------------------------------------------------------


class LanguageModel(nn.Module):
    """embedding -> recurrent layers -> decoder: logits (B,T,V) of ids x (B,T)."""

    def __init__(self, cell, V, H, L, custom=None):
        super().__init__()
        self.embedding = nn.Embedding(V, H)
        self.rnn = recurrent(cell, H, H, L, custom=custom)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, state=None):
        out, state = rnn_forward(self.rnn, self.embedding(x), state)
        return self.decoder(out), state


class ConditionedLM(nn.Module):
    """generation from a vector: h = tanh(cond c) for conditions c (B,K) (a
    class one-hot, or an image's pixels); feed "init": h is every layer's
    first state ((B, L*H) split by layer); "input": h joins every step's
    input beside the embedding. logits (B,T,V) of ids x (B,T)."""

    def __init__(self, cell, V, H, L, K, feed, custom=None):
        super().__init__()
        self.feed, self.L, self.H = feed, L, H
        self.cond = nn.Linear(K, H if feed == "input" else L * H)
        self.embedding = nn.Embedding(V, H)
        self.rnn = recurrent(cell, 2 * H if feed == "input" else H, H, L, custom=custom)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, c):
        (B, T), h = x.shape, torch.tanh(self.cond(c))
        e, state = self.embedding(x), None
        if self.feed == "input":
            e = torch.cat([e, h[:, None, :].expand(B, T, self.H)], 2)
        else:
            h0 = h.reshape(B, self.L, self.H).transpose(0, 1).contiguous()
            state = (h0, torch.zeros_like(h0)) if isinstance(self.rnn, nn.LSTM) else (h0,)
        out, _ = rnn_forward(self.rnn, e, state)
        return self.decoder(out)


def sinusoidal(T, d, dtype):
    pe = torch.zeros(T, d, dtype=torch.float64)
    for p in range(T):
        for i in range(0, d, 2):
            a = p / math.pow(10000.0, i / d)
            pe[p, i] = math.sin(a)
            if i + 1 < d:
                pe[p, i + 1] = math.cos(a)
    return pe.to(dtype)


class TransformerLM(nn.Module):
    """token embedding + sinusoidal positions -> causal encoder layers
    (torch.nn.TransformerEncoderLayer, GELU) -> final norm if pre-norm -> head."""

    def __init__(self, V, d, heads, layers, d_ff, norm_first):
        super().__init__()
        self.tok_emb = nn.Embedding(V, d)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, activation="gelu",
                                                               batch_first=True, norm_first=norm_first)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(d) if norm_first else None
        self.head = nn.Linear(d, V)

    def forward(self, x):
        T = x.shape[1]
        h = self.tok_emb(x) + sinusoidal(T, self.tok_emb.embedding_dim, self.tok_emb.weight.dtype)
        causal = torch.triu(torch.full((T, T), float("-inf"), dtype=h.dtype), 1)
        for layer in self.layers:
            h = layer(h, src_mask=causal)
        return self.head(self.norm(h) if self.norm is not None else h)


class Pool(nn.Module):
    """attention pooling's learned query (its only parameter, "pool.query")."""

    def __init__(self, D):
        super().__init__()
        self.query = nn.Parameter(torch.empty(D))


class Classifier(nn.Module):
    """embedding (none for real-valued steps) -> recurrent layers -> pooling
    (last state of each direction, mean, max, or attention with a learned
    query, over the real steps) -> head: logits (B,C)."""

    def __init__(self, cell, V, F_in, H, L, bidirectional, pooling, C, custom=None):
        super().__init__()
        self.embedding = nn.Embedding(V, H) if V else None
        self.rnn = recurrent(cell, H if V else F_in, H, L, bidirectional, custom)
        self.dirs, self.pooling = 2 if bidirectional else 1, pooling
        D = self.dirs * H
        self.pool = Pool(D) if pooling == "attention" else None
        self.head = nn.Linear(D, C)

    def forward(self, x, lengths=None):
        B, T = x.shape[0], x.shape[1]
        inp = self.embedding(x) if self.embedding is not None else x
        out, fin = rnn_forward(self.rnn, inp, None, lengths)
        lengths = torch.full((B,), T) if lengths is None else lengths
        live = torch.arange(T)[None, :] < lengths[:, None]
        if self.pooling == "last":
            h = first_state(fin)
            pooled = torch.cat([h[-self.dirs + d] for d in range(self.dirs)], 1)
        elif self.pooling == "mean":
            pooled = out.sum(1) / lengths[:, None].to(out.dtype)
        elif self.pooling == "max":
            pooled = out.masked_fill(~live[:, :, None], -1e30).max(1).values
        else:
            scores = (out @ self.pool.query).masked_fill(~live, float("-inf"))
            pooled = (torch.softmax(scores, 1)[:, :, None] * out).sum(1)
        return self.head(pooled)


class Tagger(nn.Module):
    """embedding -> recurrent layers -> head at every step: logits (B,T,C)."""

    def __init__(self, cell, V, H, L, bidirectional, C, custom=None):
        super().__init__()
        self.embedding = nn.Embedding(V, H)
        self.rnn = recurrent(cell, H, H, L, bidirectional, custom)
        self.head = nn.Linear((2 if bidirectional else 1) * H, C)

    def forward(self, x, lengths=None):
        out, _ = rnn_forward(self.rnn, self.embedding(x), None, lengths)
        return self.head(out)


class Regressor(nn.Module):
    """the adding problem: recurrent layers over (B,T,2) -> head on the last step: (B,1)."""

    def __init__(self, cell, H, L, custom=None):
        super().__init__()
        self.rnn = recurrent(cell, 2, H, L, custom=custom)
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        out, _ = rnn_forward(self.rnn, x)
        return self.head(out[:, -1])


class StepCell(nn.Module):
    """one step of a cell PyTorch lacks (classic gru, rnn_sigmoid), with nn.GRUCell's names"""

    def __init__(self, cell, input_size, hidden_size):
        super().__init__()
        self.step = {"gru": _classic_gru, "rnn_sigmoid": _sigmoid_rnn}[cell]
        g = GATES[cell] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g))
        self.bias_hh = nn.Parameter(torch.empty(g))

    def forward(self, x, h):
        return self.step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)[0]


def step_cell(cell, input_size, hidden_size, custom=None, prefix="decoder."):
    native = {"lstm": lambda: nn.LSTMCell(input_size, hidden_size),
              "gru_reset_after": lambda: nn.GRUCell(input_size, hidden_size),
              "rnn": lambda: nn.RNNCell(input_size, hidden_size, nonlinearity="tanh"),
              "rnn_relu": lambda: nn.RNNCell(input_size, hidden_size, nonlinearity="relu")}
    if custom and custom[0] and custom[0]["name"] == cell:
        return EquationCell(custom[0], custom[1], prefix, input_size, hidden_size)
    if cell in native:
        return native[cell]()
    if cell in GATES:
        return StepCell(cell, input_size, hidden_size)
    raise SystemExit(f"model.cell {cell}: neither a built-in cell nor the config's cell: section")


class Attention(nn.Module):
    """seqgrad's attention of one query s (B,Q) over keys h (B,S,K):
    dot s.h_j; general (s^T W).h_j, W (Q,K); concat v^T tanh(W [s; h_j]),
    W (A,Q+K); additive v^T tanh(W s + U h_j), W (A,Q), U (A,K); softmax over
    the kept keys, context sum_j a_j h_j."""

    def __init__(self, kind, Q, K, A):
        super().__init__()
        self.kind, self.Q = kind, Q
        if kind == "general":
            self.W = nn.Parameter(torch.empty(Q, K))
        elif kind == "concat":
            self.W = nn.Parameter(torch.empty(A, Q + K))
        elif kind == "additive":
            self.W = nn.Parameter(torch.empty(A, Q))
            self.U = nn.Parameter(torch.empty(A, K))
        if kind in ("concat", "additive"):
            self.v = nn.Parameter(torch.empty(A))

    def forward(self, s, h, keep):
        if self.kind == "dot":
            e = (h @ s[:, :, None])[:, :, 0]
        elif self.kind == "general":
            e = (h @ (s @ self.W)[:, :, None])[:, :, 0]
        elif self.kind == "concat":
            Ws, Wh = self.W[:, :self.Q], self.W[:, self.Q:]
            e = torch.tanh((s @ Ws.T)[:, None, :] + h @ Wh.T) @ self.v
        else:
            e = torch.tanh((s @ self.W.T)[:, None, :] + h @ self.U.T) @ self.v
        a = torch.softmax(e.masked_fill(~keep, float("-inf")), 1)
        return (a[:, :, None] * h).sum(1)


class Seq2Seq(nn.Module):
    """seqgrad's RNN encoder-decoder: h = Encoder(emb(x)) (bidirectional or
    not, padding masked); s_0 = tanh(bridge [h_fwd last; h_bwd first]);
    c_t = attention(s_{t-1}, h); s_t = cell([emb(y_{t-1}); c_t], s_{t-1});
    logits z_t = out [s_t; c_t]. forward: teacher-forced logits (B,T,V)."""

    def __init__(self, cell, src_vocab, tgt_vocab, E, H, bidirectional, attention, A, custom=None):
        super().__init__()
        K = (2 if bidirectional else 1) * H
        self.cell, self.H = cell, H
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, E), nn.Embedding(tgt_vocab, E)
        self.encoder = recurrent(cell, E, H, 1, bidirectional, custom, "encoder.")
        self.decoder = step_cell(cell, E + K, H, custom, "decoder.")
        self.attention = Attention(attention, H, K, A)
        self.bridge = nn.Linear(K, H)
        self.out = nn.Linear(H + K, tgt_vocab)

    def forward(self, src, src_len, tgt_in):
        B, S = src.shape
        keys, fin = rnn_forward(self.encoder, self.src_emb(src), None, src_len)
        h = first_state(fin)
        s = torch.tanh(self.bridge(torch.cat([h[d] for d in range(h.shape[0])], 1)))
        c_state = torch.zeros_like(s) if self.cell == "lstm" else None
        own = isinstance(self.decoder, EquationCell)
        states = [s] + [torch.zeros_like(s) for _ in self.decoder.eq.states[1:]] if own else None
        keep = torch.arange(S)[None, :] < src_len[:, None]
        zs = []
        for t in range(tgt_in.shape[1]):
            c = self.attention(s, keys, keep)
            x = torch.cat([self.tgt_emb(tgt_in[:, t]), c], 1)
            if own:
                states = self.decoder(x, states)
                s = states[0]
            elif self.cell == "lstm":
                s, c_state = self.decoder(x, (s, c_state))
            else:
                s = self.decoder(x, s)
            zs.append(self.out(torch.cat([s, c], 1)))
        return torch.stack(zs, 1)


class Stack(nn.Module):
    """transformer layers and the final norm (pre-norm), under one name"""

    def __init__(self, layers, norm):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm


class TransformerSeq2Seq(nn.Module):
    """embeddings + sinusoidal positions; encoder layers (padding masked),
    decoder layers (causal, cross-attention to the encoder), final norms when
    pre-norm, head: teacher-forced logits (B,T,V). torch.nn.Transformer's names."""

    def __init__(self, src_vocab, tgt_vocab, d, heads, layers, d_ff, norm_first):
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, d), nn.Embedding(tgt_vocab, d)
        kw = dict(dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first)
        self.encoder = Stack([nn.TransformerEncoderLayer(d, heads, d_ff, **kw) for _ in range(layers)],
                             nn.LayerNorm(d) if norm_first else None)
        self.decoder = Stack([nn.TransformerDecoderLayer(d, heads, d_ff, **kw) for _ in range(layers)],
                             nn.LayerNorm(d) if norm_first else None)
        self.head = nn.Linear(d, tgt_vocab)

    def forward(self, src, src_len, tgt_in):
        (B, S), T, d = src.shape, tgt_in.shape[1], self.src_emb.embedding_dim
        dt = self.src_emb.weight.dtype
        pad = torch.arange(S)[None, :] >= src_len[:, None]
        x = self.src_emb(src) + sinusoidal(S, d, dt)
        for layer in self.encoder.layers:
            x = layer(x, src_key_padding_mask=pad)
        memory = self.encoder.norm(x) if self.encoder.norm is not None else x
        y = self.tgt_emb(tgt_in) + sinusoidal(T, d, dt)
        causal = torch.triu(torch.full((T, T), float("-inf"), dtype=dt), 1)
        for layer in self.decoder.layers:
            y = layer(y, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        y = self.decoder.norm(y) if self.decoder.norm is not None else y
        return self.head(y)


# ---- a checkpoint's model ----------------------------------------------------------------

TASKS = {"text": "lm", "words": "lm", "lines": "lm", "labelled": "classify", "wordlang": "classify",
         "fashion": "classify", "parity": "classify", "order": "classify", "segment": "tag", "tagged": "tag",
         "adding": "regress", "pairs": "s2s", "copy": "s2s", "reverse": "s2s", "sort": "s2s",
         "wordgen": "conditioned", "caption": "conditioned"}


def build(cfg, tensors):
    """The module for a run's config, sized by its checkpoint's tensors (names without "model.")."""
    kind, data = cfg["model.kind"], cfg["data.kind"]
    task = TASKS.get(data)
    custom = (cfg.get("cell"), tensors) if cfg.get("cell") else None
    bi = cfg.get("model.bidirectional") == "true"
    L = int(cfg["model.layers"])
    if kind == "transformer" and task == "lm":
        V, d = tensors["tok_emb.weight"].shape
        return TransformerLM(V, d, int(cfg["model.heads"]), L, tensors["layers.0.linear1.weight"].shape[0],
                             cfg.get("model.norm_first", "true") == "true")
    if kind == "transformer" and task == "s2s":
        V_src, d = tensors["src_emb.weight"].shape
        return TransformerSeq2Seq(V_src, tensors["tgt_emb.weight"].shape[0], d, int(cfg["model.heads"]), L,
                                  tensors["encoder.layers.0.linear1.weight"].shape[0],
                                  cfg.get("model.norm_first", "true") == "true")
    if kind == "seq2seq":
        V_src, E = tensors["src_emb.weight"].shape
        attn = cfg.get("model.attention", "additive")
        A = tensors["attention.v"].shape[0] if "attention.v" in tensors else 0
        return Seq2Seq(cfg["model.cell"], V_src, tensors["tgt_emb.weight"].shape[0], E,
                       tensors["bridge.weight"].shape[0], bi, attn, A, custom)
    if task == "conditioned":
        return ConditionedLM(kind, tensors["embedding.weight"].shape[0], int(cfg["model.hidden"]), L,
                             tensors["cond.weight"].shape[1], cfg.get("model.condition", "init"), custom)
    H = int(cfg["model.hidden"])
    if task == "lm":
        return LanguageModel(kind, tensors["embedding.weight"].shape[0], H, L, custom)
    if task == "classify":
        V = tensors["embedding.weight"].shape[0] if "embedding.weight" in tensors else 0
        F_in = 0 if V else tensors["rnn.weight_ih_l0"].shape[1]
        return Classifier(kind, V, F_in, H, L, bi, cfg.get("model.pooling", "last"), tensors["head.weight"].shape[0],
                          custom)
    if task == "tag":
        return Tagger(kind, tensors["embedding.weight"].shape[0], H, L, bi, tensors["head.weight"].shape[0], custom)
    if task == "regress":
        return Regressor(kind, H, L, custom)
    raise SystemExit(f"data.kind {data}: unknown to seqgrad_torch.py")


def load(checkpoint, dtype=torch.float32):
    """(module with the checkpoint's weights, config dict, metadata)."""
    tensors, meta = read_safetensors(checkpoint)
    cfg = read_config(meta["config"])
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model = build(cfg, weights).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=True)
    return model.eval(), cfg, meta


def run(model, ref, dtype=torch.float32):
    """The module's outputs on a reference batch ({"input", "lengths"?} as seqgrad export writes it)."""
    x = ref["input"]
    x = x.long() if x.dim() == 2 else x.to(dtype)
    lengths = ref["lengths"].long() if "lengths" in ref else None
    with torch.no_grad():
        if isinstance(model, LanguageModel):
            return model(x)[0]
        if isinstance(model, ConditionedLM):
            return model(x, ref["condition"].to(dtype))
        if isinstance(model, (Classifier, Tagger)):
            return model(x, lengths)
        if isinstance(model, (Seq2Seq, TransformerSeq2Seq)):
            return model(ref["source"].long(), lengths, x)
        return model(x)
