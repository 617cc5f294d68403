"""The ONNX surgery behind :mod:`aegis.inference.physical_graph`: fold or prepend the normalisation, append the action's limits, scale and offset.

:class:`GraphEditor` edits one ModelProto in place: unique names for what it adds (nodes and
constants under :data:`NODE_PREFIX`), new constants, and the rewiring of a tensor's readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aegis.inference.action_limits import RawLimits, raw_limits
from aegis.inference.contract import ContractError

if TYPE_CHECKING:
    import onnx

NETWORK_SUFFIX = "/aegis_network"
"""The network's raw output keeps this name in a physical graph: ``action`` becomes ``action/aegis_network``."""
NODE_PREFIX = "aegis_contract/"
"""Names of the nodes and constants the contract adds (the quantizer leaves these in float)."""
_FOLDABLE_DTYPES = (np.float32, np.float64)


class PhysicalGraphError(ContractError):
    """A graph the contract cannot be moved into (the message says why)."""


class GraphEditor:
    """Edits one graph in place: unique names, new constants, rewiring of a tensor's readers."""

    def __init__(self, proto: onnx.ModelProto, where: str) -> None:
        self.proto = proto
        self.graph = proto.graph
        self.where = where
        self.initializers: list[Any] = []
        self.added: list[str] = []
        self.input_ops: list[str] = []
        self.output_ops: list[str] = []
        self.folded_into: str | None = None
        self.opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
        self._names = {t.name for t in self.graph.initializer} | {v.name for v in self.graph.input} | {v.name for v in self.graph.output}
        for node in self.graph.node:
            self._names.update(node.input)
            self._names.update(node.output)
            self._names.add(node.name)

    # --- names, constants, readers --------------------------------------------------------------

    def name(self, wanted: str) -> str:
        name, k = wanted, 1
        while name in self._names:
            k += 1
            name = f"{wanted}_{k}"
        self._names.add(name)
        return name

    def constant(self, stem: str, values: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(NODE_PREFIX + stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(values), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], output: str, **attributes: Any) -> Any:
        from onnx import helper

        name = self.name(NODE_PREFIX + op_type)
        self.added.append(name)
        return helper.make_node(op_type, list(inputs), [output], name=name, **attributes)

    def readers(self, tensor: str) -> list[Any]:
        return [node for node in self.graph.node if tensor in node.input]

    def rewire(self, old: str, new: str) -> None:
        """Every node reading ``old`` reads ``new`` instead."""
        for node in self.graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def _value(self, name: str) -> Any:
        for value in self.graph.input:
            if value.name == name:
                return value
        for value in self.graph.output:
            if value.name == name:
                return value
        raise PhysicalGraphError(f"{self.where}: no graph input or output {name!r}")

    def _dtype(self, name: str) -> np.dtype:
        from onnx import helper

        return np.dtype(helper.tensor_dtype_to_np_dtype(self._value(name).type.tensor_type.elem_type))

    def _initializer(self, name: str) -> Any | None:
        for tensor in self.graph.initializer:
            if tensor.name == name:
                return tensor
        return None

    def drop_unused_initializers(self) -> None:
        """Remove the constants no node reads any more (a folded layer's old weights), and their old-style graph inputs."""
        used = {name for node in self.graph.node for name in node.input} | {v.name for v in self.graph.output}
        dropped = {t.name for t in self.graph.initializer if t.name not in used}
        if not dropped:
            return
        kept = [t for t in self.graph.initializer if t.name not in dropped]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        inputs = [v for v in self.graph.input if v.name not in dropped]
        del self.graph.input[:]
        self.graph.input.extend(inputs)

    # --- the observation side -------------------------------------------------------------------

    def fold_input(self, x: str, offset: np.ndarray, gain: np.ndarray) -> str | None:
        """Fold the normalisation into the one Gemm/MatMul reading ``x``; its label, or None when the graph does not allow it."""
        from onnx import helper, numpy_helper

        dtype = self._dtype(x)
        readers = self.readers(x)
        if dtype.type not in _FOLDABLE_DTYPES or len(readers) != 1 or any(v.name == x for v in self.graph.output):
            return None
        node = readers[0]
        if node.op_type not in ("Gemm", "MatMul") or node.domain not in ("", "ai.onnx") or list(node.input).count(x) != 1 or node.input[0] != x:
            return None
        weight_tensor = self._initializer(node.input[1])
        if weight_tensor is None:
            return None
        weight = numpy_helper.to_array(weight_tensor)
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if weight.ndim != 2 or weight.dtype != dtype or attributes.get("transA", 0):
            return None
        trans_b = bool(attributes.get("transB", 0)) if node.op_type == "Gemm" else False
        w = (weight.T if trans_b else weight).astype(np.float64)  # [n_in, n_out]
        if w.shape[0] != gain.size:
            return None
        alpha = float(attributes.get("alpha", 1.0)) if node.op_type == "Gemm" else 1.0
        shift = -alpha * ((offset * gain) @ w)  # [n_out], added to the layer's output
        folded = gain[:, None] * w
        label = node.name or f"{node.op_type} reading {x!r}"
        if node.op_type == "Gemm":
            has_c = len(node.input) > 2 and bool(node.input[2])
            bias = np.zeros(w.shape[1])
            if has_c:
                c_tensor = self._initializer(node.input[2])
                if c_tensor is None:
                    return None
                c = numpy_helper.to_array(c_tensor).astype(np.float64)
                if c.size not in (1, w.shape[1]) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
                    return None
                bias = float(attributes.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1), (w.shape[1],))
            if has_c or np.any(shift):
                while len(node.input) < 3:
                    node.input.append("")
                node.input[2] = self.constant("folded_bias", (bias + shift).astype(dtype))
                _set_attribute(node, "beta", 1.0)
        elif np.any(shift):
            self._shift_matmul_bias(node, shift, dtype)
        node.input[1] = self.constant("folded_weight", (folded.T if trans_b else folded).astype(dtype))
        self.folded_into = label
        return label

    def _shift_matmul_bias(self, node: Any, shift: np.ndarray, dtype: np.dtype) -> None:
        """Add ``shift`` to the constant Add that follows a MatMul, or insert an Add after it."""
        from onnx import numpy_helper

        out = node.output[0]
        readers = self.readers(out)
        if len(readers) == 1 and readers[0].op_type == "Add" and not any(v.name == out for v in self.graph.output):
            add = readers[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            tensor = self._initializer(other) if other != out else None
            if tensor is not None:
                c = numpy_helper.to_array(tensor).astype(np.float64)
                if c.size in (1, shift.size) and c.dtype.kind == "f":
                    shape = (*c.shape[:-1], shift.size) if c.ndim else (shift.size,)
                    new = np.broadcast_to(c, shape) + shift
                    position = 1 if add.input[0] == out else 0
                    add.input[position] = self.constant("folded_bias", new.astype(dtype))
                    return
        renamed = self.name(out + "/aegis_unbiased")
        node.output[0] = renamed
        add = self.node("Add", [renamed, self.constant("folded_bias", shift.astype(dtype))], out)
        index = list(self.graph.node).index(node)
        self.graph.node.insert(index + 1, add)

    def prepend_normalisation(self, x: str, offset: np.ndarray, gain: np.ndarray) -> None:
        """``Sub`` offset and ``Mul`` gain before every reader of ``x`` (float32, or float64 for a float64 input), Cast back to half."""
        from onnx import TensorProto, helper

        value = self._value(x)
        dtype = self._dtype(x)
        work = np.float64 if dtype == np.float64 else np.float32
        nodes = []
        current = x  # the first new node reads the graph input, which keeps its name (callers feed it by name)
        if np.any(offset != 0.0):
            nxt = self.name(x + "/aegis_centred")
            nodes.append(self.node("Sub", [current, self.constant("observation_offset", offset.astype(work))], nxt))
            self.input_ops.append("Sub")
            current = nxt
        if np.any(gain != 1.0):
            nxt = self.name(x + "/aegis_normalised")
            nodes.append(self.node("Mul", [current, self.constant("observation_gain", gain.astype(work))], nxt))
            self.input_ops.append("Mul")
            current = nxt
        if dtype != work:
            nxt = self.name(x + "/aegis_cast")
            nodes.append(self.node("Cast", [current], nxt, to=helper.np_dtype_to_tensor_dtype(dtype)))
            self.input_ops.append("Cast")
            current = nxt
        if not nodes:
            return
        self.rewire(x, current)  # the old readers take the normalised tensor (the new nodes are not in the graph yet)
        if dtype != work:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE if work == np.float64 else TensorProto.FLOAT
        for k, node in enumerate(nodes):
            self.graph.node.insert(k, node)

    # --- the action side ------------------------------------------------------------------------

    def append_action(self, y: str, scale: np.ndarray, offset: np.ndarray, low: np.ndarray, high: np.ndarray) -> str | None:
        """Limits (on the raw output, see :mod:`~aegis.inference.action_limits`), scale and offset after the network's
        output ``y``, which keeps its name for the physical action; returns the raw tensor's new name (None: nothing added)."""
        from onnx import TensorProto, helper

        value = self._value(y)
        dtype = self._dtype(y)
        work = np.dtype(np.float64 if dtype == np.float64 else np.float32)
        steps: list[tuple[str, list[str], dict[str, Any]]] = []
        if dtype != work:
            steps.append(("Cast", [], {"to": helper.np_dtype_to_tensor_dtype(work)}))
        steps += self._limits(raw_limits(scale, offset, low, high, work, self._raw_range(y)))
        if np.any(scale != 1.0):
            steps.append(("Mul", [self.constant("action_scale", _compact(scale).astype(work))], {}))
        if np.any(offset != 0.0):
            steps.append(("Add", [self.constant("action_offset", _compact(offset).astype(work))], {}))
        if not steps:
            return None
        raw = self.name(y + NETWORK_SUFFIX)
        described = type(value)()
        described.CopyFrom(value)
        described.name = raw
        self.graph.value_info.append(described)  # its type and shape, so a loader can expose it as an output
        for node in self.graph.node:
            for i, name in enumerate(node.output):
                if name == y:
                    node.output[i] = raw
        self.rewire(y, raw)
        current = raw
        for k, (op_type, constants, attributes) in enumerate(steps):
            out = y if k == len(steps) - 1 else self.name(f"{y}/aegis_{op_type.lower()}")
            self.graph.node.append(self.node(op_type, [current, *constants], out, **attributes))
            self.output_ops.append(op_type)
            current = out
        if dtype != work:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE if work == np.float64 else TensorProto.FLOAT
        return raw

    def _raw_range(self, y: str) -> tuple[float, float]:
        """What the op producing ``y`` can output at all (through Identity): tanh [-1, 1], sigmoid [0, 1], relu [0, inf)."""
        from onnx import numpy_helper

        producers = {out: node for node in self.graph.node for out in node.output}
        node = producers.get(y)
        while node is not None and node.op_type == "Identity":
            node = producers.get(node.input[0])
        if node is None:
            return -np.inf, np.inf
        known = {"Tanh": (-1.0, 1.0), "Sigmoid": (0.0, 1.0), "Relu": (0.0, np.inf)}
        if node.op_type in known:
            return known[node.op_type]
        if node.op_type == "Clip" and len(node.input) == 3 and all(self._initializer(n) is not None for n in node.input[1:]):
            low, high = (float(numpy_helper.to_array(self._initializer(n))) for n in node.input[1:])
            return low, high
        return -np.inf, np.inf

    def _limits(self, limits: RawLimits) -> list[tuple[str, list[str], dict[str, Any]]]:
        if not limits.needed:
            return []
        if limits.uniform and self.opset >= 11:
            dtype = (limits.low if limits.low is not None else limits.high).dtype  # type: ignore[union-attr]
            inputs = [self.constant("raw_low", np.array(limits.scalar_low, dtype)) if limits.low is not None else "",
                      self.constant("raw_high", np.array(limits.scalar_high, dtype)) if limits.high is not None else ""]
            return [("Clip", inputs if inputs[1] else inputs[:1], {})]
        if limits.uniform and self.opset >= 6:
            attributes = {key: value for key, value in (("min", limits.scalar_low), ("max", limits.scalar_high)) if value is not None}
            return [("Clip", [], attributes)]
        if self.opset < 8:
            raise PhysicalGraphError(f"{self.where}: opset {self.opset} has no broadcasting Max/Min for per-element action limits (opset >= 8)")
        steps: list[tuple[str, list[str], dict[str, Any]]] = []
        if limits.low is not None:
            steps.append(("Max", [self.constant("raw_low", limits.low)], {}))
        if limits.high is not None:
            steps.append(("Min", [self.constant("raw_high", limits.high)], {}))
        return steps


def _set_attribute(node: Any, name: str, value: float) -> None:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            node.attribute.remove(attribute)
            break
    node.attribute.append(helper.make_attribute(name, value))


def _compact(values: np.ndarray) -> np.ndarray:
    """One value when every element shares it (it broadcasts), else the vector."""
    return values[:1] if np.all(values == values[0]) else values
