"""One ONNX graph in physical units: a policy's contract (input normalisation, action scale, offset and limits) moved into its graph.

:func:`physical_model` takes a model and its :class:`~aegis.inference.contract.PolicyContract` and
returns a copy whose graph reads the physical observation and writes the physical, clipped action,
so onnxruntime, the quantizer and the C export all run the same arithmetic and nobody has to
re-implement the contract beside them:

* the normalisation ``(x - offset) * gain`` is folded into the first layer when the graph input
  feeds one Gemm or MatMul with constant float weights (``W' = diag(gain) W``,
  ``b' = b - (offset * gain) W``: no extra op, computed in float64 and rounded once); otherwise
  (``fold=False``, or another first op) ``Sub`` and ``Mul`` nodes are prepended. Folding does not
  change the order of the float32 rounding error: a physical float32 input already carries a
  relative error of 2^-24 of ``|x|``, the same size as the folded product's;
* the limits, then ``Mul`` by the action scale and ``Add`` of its offset, are appended. The limits
  act on the network's raw output, moved there by :func:`~aegis.inference.action_limits.raw_limits`
  so that the float action provably never leaves ``[low, high]`` (even read back as float64):
  one ``Clip`` when every element can share the bounds, else ``Max`` and ``Min`` with one bound per
  element, and nothing for a side a ``tanh`` or ``sigmoid`` output cannot reach. NaN passes through
  the limits (onnxruntime's and the C export's), an infinite raw value is clipped;
* the network's own output tensor stays in the graph under ``<output>`` + :data:`NETWORK_SUFFIX`,
  so the runtime can refuse a non-finite network output that the limits would otherwise hide;
* the contract is stamped into the new model's metadata with ``physical_graph: true``: loaders
  (the runtime, the quantizer, the C export, the benchmark) apply nothing more in Python, and an
  aegis too old to know the flag refuses the contract instead of normalising twice. The
  contract's ``lipschitz_bound`` keeps its meaning (the network between normalised observation and
  raw action).

Applied to a model that is physical already, it returns a copy unchanged. Half-precision inputs and
outputs are fed and read in float32 (``Cast`` nodes), so a physical value is never rounded to
float16 before its normalisation. Needs ``onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aegis.inference.checks import check_graph, graph_specs
from aegis.inference.contract import PolicyContract
from aegis.inference.graph_edit import (
    NETWORK_SUFFIX,
    NODE_PREFIX,
    GraphEditor,
    PhysicalGraphError,
)

__all__ = [
    "NETWORK_SUFFIX", "NODE_PREFIX", "PhysicalGraph", "PhysicalGraphError", "normalisation_folded", "physical_file", "physical_model",
]  # fmt: skip

if TYPE_CHECKING:
    import onnx

@dataclass(frozen=True)
class PhysicalGraph:
    """The physical model and what was done to make it (for reports and the quantizer)."""

    model: onnx.ModelProto
    contract: PolicyContract
    folded_into: str | None = None
    """The first layer that took the normalisation into its weights and bias (None: prepended or none)."""
    added_nodes: tuple[str, ...] = ()
    """Names of the nodes added for the contract (normalisation and action), in graph order."""
    network_output: str | None = None
    """The tensor holding the network's raw action (None when the action needs no ops: it is the output)."""
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: where the normalisation went and what follows the network."""
        return "; ".join(self.notes) or "nothing to apply (identity contract)"


def physical_model(model: onnx.ModelProto, contract: PolicyContract, *, fold: bool = True, where: str = "model") -> PhysicalGraph:
    """A copy of ``model`` taking the physical observation and returning the physical, clipped action (see the module)."""
    import onnx

    from aegis.inference.stamping import write_contract

    proto = onnx.ModelProto()
    proto.CopyFrom(model)
    if contract.physical_graph:
        return PhysicalGraph(proto, contract, notes=("already physical: unchanged",))
    binding = check_graph(contract, *graph_specs(proto), where=where)
    builder = GraphEditor(proto, where)
    notes: list[str] = []
    offset, gain = contract.observation_affine()
    if not (np.all(offset == 0.0) and np.all(gain == 1.0)):
        folded = builder.fold_input(binding.input.name, offset, gain) if fold else None
        if folded is not None:
            notes.append(f"normalisation folded into {folded}")
        else:
            builder.prepend_normalisation(binding.input.name, offset, gain)
            notes.append("normalisation as " + "/".join(builder.input_ops) + " before the network")
    elif np.dtype(binding.input.dtype) == np.float16:
        builder.prepend_normalisation(binding.input.name, offset, gain)
    network_output = builder.append_action(binding.output.name, *contract.action_affine())
    if builder.output_ops:
        notes.append(" then ".join(builder.output_ops) + " after the network")
    physical = contract.model_copy(update={"physical_graph": True})
    proto.graph.initializer.extend(builder.initializers)
    builder.drop_unused_initializers()
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:  # a bug here, not the user's: say so plainly
        raise PhysicalGraphError(f"{where}: the physical graph does not validate: {exc}") from None
    write_contract(proto, physical, check=True)
    return PhysicalGraph(proto, physical, builder.folded_into, tuple(builder.added), network_output, tuple(notes))


def physical_file(
    model_path: Any, output: Any, mapping: Any = None, *, fold: bool = True
) -> PhysicalGraph:
    """:func:`physical_model` of a file (contract from its metadata or mapping), written to ``output``."""
    from pathlib import Path

    import onnx

    from aegis.inference.contract import load_contract

    loaded = load_contract(model_path, mapping)
    result = physical_model(onnx.load(str(model_path)), loaded.contract, fold=fold, where=str(model_path))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(result.model, str(output))
    return result


def normalisation_folded(model: onnx.ModelProto, contract: PolicyContract) -> bool:
    """True for a physical graph whose normalisation went into its first layer's weights (no Sub/Mul of the contract on its input).

    Such a graph is refused for int8 (quantizing the folded weights would crush the fields with a small scale).
    """
    offset, gain = contract.observation_affine()
    if not contract.physical_graph or (np.all(offset == 0.0) and np.all(gain == 1.0)):
        return False
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v.name for v in model.graph.input if v.name not in initializers]
    name = contract.input_name or (inputs[0] if len(inputs) == 1 else None)
    return not any(
        node.name.startswith(NODE_PREFIX) and node.op_type in ("Sub", "Mul") and node.input[0] == name for node in model.graph.node
    )
