"""Run a small ONNX graph as a differentiable torch module (no ``onnx`` package needed).

The identity-protection step (:mod:`facedeid.protect.perturb`) needs *gradients* of
the attackers' embeddings with respect to the input pixels. SFace ships as ONNX and
FaceNet is converted to ONNX by :mod:`facedeid.evaluate.attackers.facenet_convert`;
neither runtime (OpenCV DNN, onnxruntime) gives gradients. This module reads the ONNX
``ModelProto`` with the project's protobuf wire-format reader (field numbers from
``onnx.proto``) and evaluates its nodes in topological order with torch functions, so
autograd works through it.

Only the operators these two networks use are implemented (:data:`OPS`); any other
raises :class:`UnsupportedOnnxError` instead of running wrongly. Parity with the
runtimes is tested (``tests/test_protect.py``: cosine > 0.9999 on LFW crops).

Torch is imported lazily (the ``torch`` extra).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import FaceDeidError
from ..evaluate.attackers.facenet_convert import _fields, _repeated_ints, _signed64


class UnsupportedOnnxError(FaceDeidError):
    """The ONNX graph uses an operator or attribute this interpreter does not handle."""


# ONNX TensorProto.DataType -> numpy
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
           9: np.bool_, 10: np.float16, 11: np.float64}


@dataclass
class OnnxNode:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OnnxGraph:
    nodes: list[OnnxNode]
    initializers: dict[str, np.ndarray]
    inputs: list[str]       # graph inputs that are not initializers
    outputs: list[str]


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw = 1, "", None
    floats: list[float] = []
    ints: list[int] = []
    doubles: list[float] = []
    for num, wt, val in _fields(buf):
        if num == 1:
            dims.extend(_repeated_ints(wt, val))
        elif num == 2:
            dtype = val
        elif num == 4:   # float_data: packed, or one fixed32 per field
            floats.extend(np.frombuffer(bytes(val), "<f4").tolist())
        elif num in (5, 7):   # int32_data, int64_data
            ints.extend(_repeated_ints(wt, val))
        elif num == 8:
            name = bytes(val).decode()
        elif num == 9:
            raw = bytes(val)
        elif num == 10:
            doubles.extend(np.frombuffer(bytes(val), "<f8").tolist())
        elif num == 14:  # data_location = EXTERNAL
            if val == 1:
                raise UnsupportedOnnxError(f"tensor {name!r}: external data is not supported")
    if dtype not in _DTYPES:
        raise UnsupportedOnnxError(f"tensor {name!r}: data type {dtype} is not supported")
    np_dtype = np.dtype(_DTYPES[dtype])
    if raw is not None:
        arr = np.frombuffer(raw, dtype=np_dtype.newbyteorder("<")).astype(np_dtype)
    else:
        vals = floats or doubles or ints
        arr = np.array(vals, dtype=np_dtype)
    return name, arr.reshape(dims) if dims else arr.reshape(())


def _attr(buf: memoryview) -> tuple[str, Any]:
    name, value = "", None
    floats: list[float] = []
    ints: list[int] = []
    for num, wt, val in _fields(buf):
        if num == 1:
            name = bytes(val).decode()
        elif num == 2:
            value = struct.unpack("<f", bytes(val))[0]
        elif num == 3:
            value = _signed64(val)
        elif num == 4:
            value = bytes(val).decode(errors="replace")
        elif num == 5:
            value = _tensor(val)[1]
        elif num == 7:
            floats.extend(np.frombuffer(bytes(val), "<f4").tolist())
        elif num == 8:
            ints.extend(_repeated_ints(wt, val))
        elif num == 6:
            raise UnsupportedOnnxError(f"attribute {name!r}: sub-graphs are not supported")
    if value is None:
        value = ints if ints else floats
    return name, value


def _value_name(buf: memoryview) -> str:
    for num, _, val in _fields(buf):
        if num == 1:
            return bytes(val).decode()
    return ""


def parse_model(data: bytes) -> OnnxGraph:
    """The graph of a serialised ONNX ``ModelProto``."""
    graph_buf = None
    for num, _, val in _fields(memoryview(data)):
        if num == 7:
            graph_buf = val
    if graph_buf is None:
        raise UnsupportedOnnxError("not an ONNX model (no graph)")
    nodes: list[OnnxNode] = []
    inits: dict[str, np.ndarray] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    for num, _, val in _fields(graph_buf):
        if num == 1:
            node = OnnxNode("", [], [])
            for n2, _, v2 in _fields(val):
                if n2 == 1:
                    node.inputs.append(bytes(v2).decode())
                elif n2 == 2:
                    node.outputs.append(bytes(v2).decode())
                elif n2 == 4:
                    node.op = bytes(v2).decode()
                elif n2 == 5:
                    k, v = _attr(v2)
                    node.attrs[k] = v
            nodes.append(node)
        elif num == 5:
            name, arr = _tensor(val)
            inits[name] = arr
        elif num == 11:
            inputs.append(_value_name(val))
        elif num == 12:
            outputs.append(_value_name(val))
    return OnnxGraph(nodes, inits, [i for i in inputs if i not in inits], outputs)


# --------------------------------------------------------------------------- operators
def _pads2d(pads: list[int]) -> tuple[int, int, int, int]:
    """ONNX ``[top, left, bottom, right]`` -> torch.nn.functional.pad's (l, r, t, b)."""
    if not pads:
        return (0, 0, 0, 0)
    t, l, b, r = pads
    return (l, r, t, b)


def _auto_pads(x, kernel, strides, dilations, mode: str) -> tuple[int, int, int, int]:
    """Padding of ONNX ``auto_pad`` SAME_UPPER / SAME_LOWER (output size ceil(in / stride))."""
    out = []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        out.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
    (t, b), (l, r) = out
    return (l, r, t, b)


def _padding(x, a, kernel, strides, dilations) -> tuple[int, int, int, int]:
    mode = a.get("auto_pad", "NOTSET") or "NOTSET"
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        return _auto_pads(x, kernel, strides, dilations, mode)
    if mode not in ("NOTSET", "VALID"):
        raise UnsupportedOnnxError(f"auto_pad {mode} is not supported")
    return (0, 0, 0, 0) if mode == "VALID" else _pads2d(list(a.get("pads", [])))


def _conv(torch, F, x, w, b=None, **a):
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    pads = _padding(x, a, list(w.shape[2:]), strides, dil)
    if pads[0] == pads[1] and pads[2] == pads[3]:
        padding = (pads[2], pads[0])
    else:
        x = F.pad(x, pads)
        padding = (0, 0)
    return F.conv2d(x, w, b, stride=tuple(a.get("strides", [1, 1])), padding=padding,
                    dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)))


def _pool(kind):
    def run(torch, F, x, **a):
        k = tuple(a["kernel_shape"])
        s = tuple(a.get("strides", [1, 1]))
        pads = _padding(x, a, k, s, (1, 1))
        if int(a.get("ceil_mode", 0)):
            raise UnsupportedOnnxError(f"{kind} ceil_mode is not supported")
        if any(pads):
            if kind == "avg" and not int(a.get("count_include_pad", 0)):
                # ONNX's default averages over the real pixels only; zero-padding would not
                raise UnsupportedOnnxError("AveragePool with padding (count_include_pad=0) "
                                           "is not supported")
            value = float("-inf") if kind == "max" else 0.0
            x = F.pad(x, pads, value=value)
        if kind == "max":
            return F.max_pool2d(x, k, s)
        return F.avg_pool2d(x, k, s)
    return run


def _gemm(torch, F, a_, b_, c_=None, **a):
    if int(a.get("transA", 0)):
        a_ = a_.transpose(0, 1)
    if int(a.get("transB", 0)):
        b_ = b_.transpose(0, 1)
    y = float(a.get("alpha", 1.0)) * (a_ @ b_)
    if c_ is not None:
        y = y + float(a.get("beta", 1.0)) * c_
    return y


def _batchnorm(torch, F, x, scale, bias, mean, var, **a):
    return F.batch_norm(x, mean, var, scale, bias, training=False,
                        eps=float(a.get("epsilon", 1e-5)))


def _prelu(torch, F, x, slope):
    return torch.where(x >= 0, x, x * slope)


def _reshape(torch, F, x, shape, **a):
    dims = [int(v) for v in shape.tolist()]
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _flatten(torch, F, x, **a):
    axis = int(a.get("axis", 1))
    return x.reshape(int(np.prod(x.shape[:axis])) if axis else 1, -1)


def _reduce(fn):
    def run(torch, F, x, axes_in=None, **a):
        axes = a.get("axes")
        if axes_in is not None:
            axes = [int(v) for v in axes_in.tolist()]
        keep = bool(int(a.get("keepdims", 1)))
        if not axes:
            axes = list(range(x.dim()))
        return fn(torch, x, [int(v) % x.dim() for v in axes], keep)
    return run


def _concat(torch, F, *xs, **a):
    return torch.cat(xs, dim=int(a["axis"]))


def _transpose(torch, F, x, **a):
    return x.permute(*[int(p) for p in a["perm"]])


def _lrelu(torch, F, x, **a):
    return F.leaky_relu(x, float(a.get("alpha", 0.01)))


def _clip(torch, F, x, lo=None, hi=None, **a):
    lo = a.get("min", None) if lo is None else lo
    hi = a.get("max", None) if hi is None else hi
    return torch.clamp(x, min=None if lo is None else float(lo), max=None if hi is None else float(hi))


def _ident(torch, F, x, **a):
    return x


#: op name -> ``fn(torch, F, *inputs, **attrs)``; inputs that are initializers arrive
#: as tensors too (shape inputs of Reshape/ReduceX are converted back to numpy).
OPS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "Relu": lambda torch, F, x: F.relu(x),
    "PRelu": _prelu,
    "LeakyRelu": _lrelu,
    "Sigmoid": lambda torch, F, x: torch.sigmoid(x),
    "Tanh": lambda torch, F, x: torch.tanh(x),
    "Add": lambda torch, F, a, b: a + b,
    "Sub": lambda torch, F, a, b: a - b,
    "Mul": lambda torch, F, a, b: a * b,
    "Div": lambda torch, F, a, b: a / b,
    "Sqrt": lambda torch, F, x: torch.sqrt(x),
    "Reciprocal": lambda torch, F, x: 1.0 / x,
    "Max": lambda torch, F, *xs: torch.stack(torch.broadcast_tensors(*xs)).amax(0),
    "Min": lambda torch, F, *xs: torch.stack(torch.broadcast_tensors(*xs)).amin(0),
    "Clip": _clip,
    "MatMul": lambda torch, F, a, b: a @ b,
    "Gemm": _gemm,
    "BatchNormalization": _batchnorm,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda torch, F, x: x.mean(dim=(2, 3), keepdim=True),
    "Concat": _concat,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "ReduceSum": _reduce(lambda torch, x, ax, k: x.sum(dim=ax, keepdim=k)),
    "ReduceMean": _reduce(lambda torch, x, ax, k: x.mean(dim=ax, keepdim=k)),
    "ReduceL2": _reduce(lambda torch, x, ax, k: torch.sqrt((x * x).sum(dim=ax, keepdim=k))),
    "Identity": _ident,
    "Dropout": _ident,
}

# inputs (by position) that carry shapes/axes, given to the op as numpy
_STATIC_INPUTS = {"Reshape": {1}, "ReduceSum": {1}, "ReduceMean": {1}, "ReduceL2": {1}}


class OnnxFunction:
    """A parsed ONNX graph evaluated with torch (build with :func:`load_onnx`).

    Call with one input tensor (``N x C x H x W`` float32); returns the graph's first
    output. Parameters are float32 torch tensors, not trainable (``requires_grad``
    False): gradients flow to the input only.
    """

    def __init__(self, graph: OnnxGraph):
        import torch

        unknown = sorted({n.op for n in graph.nodes} - set(OPS))
        if unknown:
            raise UnsupportedOnnxError(f"unsupported ONNX operators: {', '.join(unknown)}")
        if len(graph.inputs) != 1:
            raise UnsupportedOnnxError(f"expected one graph input, found {graph.inputs}")
        self.graph = graph
        self.input = graph.inputs[0]
        self.output = graph.outputs[0]
        self.static = dict(graph.initializers)
        self.params = {k: torch.from_numpy(np.ascontiguousarray(
            v.astype(np.float32) if v.dtype.kind == "f" else v)) for k, v in graph.initializers.items()}

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        env: dict[str, Any] = {self.input: x}
        for node in self.graph.nodes:
            if node.op == "Constant":
                raise UnsupportedOnnxError("Constant nodes are not supported")
            static = _STATIC_INPUTS.get(node.op, set())
            args = []
            for pos, name in enumerate(node.inputs):
                if name == "":
                    args.append(None)
                elif pos in static:
                    v = self.static.get(name)
                    if v is None:
                        raise UnsupportedOnnxError(f"{node.op}: computed shapes are not supported")
                    args.append(np.asarray(v))
                elif name in env:
                    args.append(env[name])
                elif name in self.params:
                    args.append(self.params[name])
                else:
                    raise UnsupportedOnnxError(f"{node.op}: input {name!r} is not defined")
            while args and args[-1] is None:
                args.pop()
            out = OPS[node.op](torch, F, *args, **node.attrs)
            env[node.outputs[0]] = out
        return env[self.output]


def load_onnx(data: bytes) -> OnnxFunction:
    """A torch-evaluated function of a serialised ONNX model (see :class:`OnnxFunction`)."""
    return OnnxFunction(parse_model(data))


__all__ = ["OnnxFunction", "OnnxGraph", "OnnxNode", "OPS", "UnsupportedOnnxError",
           "load_onnx", "parse_model"]
