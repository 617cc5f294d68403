"""What each float of an exported policy's input and output means: names, units and ranges from its contract, for policy.h.

:func:`interface_of` lays a :class:`~aegis.inference.contract.PolicyContract` out element by
element (``position_error[0]``, its unit, its normalisation or its limits; with history, the frame
as ``@t-1``), per field (offset and size, for ``#define``s), and says what the C applies. A model
without a contract exports the bare network: :func:`network_interface` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from aegis.inference.contract import PolicyContract


@dataclass(frozen=True)
class Element:
    """One float of the input or output: its name (field[k], frame), unit, and a note (normalisation, or limits)."""

    name: str
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Field:
    """A named run of elements: first index within a frame, size and unit (a ``#define`` each)."""

    name: str
    offset: int
    size: int
    unit: str


@dataclass(frozen=True)
class Interface:
    """The input and output of an exported policy, element by element, and what its C applies."""

    physical: bool
    applied: str
    inputs: tuple[Element, ...]
    outputs: tuple[Element, ...]
    input_fields: tuple[Field, ...] = ()
    output_fields: tuple[Field, ...] = ()
    output_low: tuple[float, ...] = ()
    output_high: tuple[float, ...] = ()
    context: str = ""
    frame_size: int = 0
    history: int = 1


def interface_of(contract: PolicyContract, applied: str) -> Interface:
    """The element-by-element interface of a physical export of ``contract`` (``applied``: what the graph does, in words)."""
    offset, gain = contract.observation_affine()
    history = contract.history_length
    inputs: list[Element] = []
    fields: list[Field] = []
    start = 0
    for field in contract.observation:
        fields.append(Field(field.name, start, field.size, field.unit))
        start += field.size
    for frame in range(history):
        suffix = "" if history == 1 else f"@t-{history - 1 - frame}"
        for field in contract.observation:
            for k in range(field.size):
                i = len(inputs)
                inputs.append(Element(_element(field.name, k, field.size) + suffix, field.unit, _normalisation(offset[i], gain[i])))
    scale, action_offset, low, high = contract.action_affine()
    outputs: list[Element] = []
    out_fields: list[Field] = []
    for field in contract.action:
        out_fields.append(Field(field.name, len(outputs), field.size, field.unit))
        for k in range(field.size):
            j = len(outputs)
            outputs.append(Element(_element(field.name, k, field.size), field.unit, _limits(low[j], high[j], scale[j], action_offset[j])))
    rate = f"{contract.control_rate_hz:g} Hz"
    frames = f"{history} frames, oldest first" if history > 1 else "1 frame"
    return Interface(
        physical=True, applied=applied, inputs=tuple(inputs), outputs=tuple(outputs),
        input_fields=tuple(fields), output_fields=tuple(out_fields),
        output_low=tuple(float(v) for v in low), output_high=tuple(float(v) for v in high),
        context=f"robot kind {contract.robot_kind}, control rate {rate}, history {frames}",
        frame_size=contract.frame_size, history=history,
    )  # fmt: skip


def network_interface(input_size: int, output_size: int) -> Interface:
    """The bare network's interface: no contract found, so no names, units or limits (the network's own units)."""
    return Interface(
        physical=False,
        applied="nothing: the model has no aegis policy contract (metadata or mapping file), so the C is the bare network",
        inputs=tuple(Element(f"input[{i}]", "network units") for i in range(input_size)),
        outputs=tuple(Element(f"output[{j}]", "network units") for j in range(output_size)),
    )


def macro_name(name: str) -> str:
    """A field name as a C macro suffix: letters, digits and _ only, upper case (``base.lin_vel`` -> ``BASE_LIN_VEL``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()


def _element(name: str, k: int, size: int) -> str:
    return name if size == 1 else f"{name}[{k}]"


def _normalisation(offset: float, gain: float) -> str:
    if offset == 0.0 and gain == 1.0:
        return "fed to the network as it is"
    centred = "x" if offset == 0.0 else (f"x - {offset:.6g}" if offset > 0 else f"x + {-offset:.6g}")
    return f"normalised as ({centred}) / {1.0 / gain:.6g}"


def _limits(low: float, high: float, scale: float, offset: float) -> str:
    formula = f"network output x {scale:g}" + (f" + {offset:g}" if offset else "")
    if np.isinf(low) and np.isinf(high):
        return f"{formula}, not limited"
    return f"{formula}, clipped to [{low:g}, {high:g}]"
