"""The ONNX policy contract: what a policy model reads and writes, stored in its metadata or in a mapping file beside it.

A :class:`PolicyContract` says how to feed a policy and how to read it: the observation layout
(ordered named fields, each with its size, unit and normalisation), the action layout (names,
units, scaling from the network's output to physical units, limits), the control rate, the robot
kind, the history length, the Lipschitz bound when known, and who produced the model.

Where it lives:

* in the model's ONNX ``metadata_props``: the contract as one JSON value under ``aegis.contract``
  and its schema version under ``aegis.schema_version`` (:func:`write_contract` puts them there);
* or, for models exported elsewhere without it (torch.onnx from Isaac Lab or Stable-Baselines3),
  in a YAML mapping file holding the same fields, ``<model stem>.aegis.yaml`` beside the model
  (``policy.onnx`` -> ``policy.aegis.yaml``) or given explicitly.

Semantics the runtime applies (:mod:`aegis.inference.runtime`):

* the model input is ``history_length`` frames of the observation layout, oldest first, each frame
  the fields in order; every element is normalised before it enters the network:
  ``(x - offset) * scale`` or ``(x - mean) / std`` (no normalisation: the value as is). A model
  whose graph already normalises (rsl_rl's exporter bakes its normaliser in) declares none here;
* the network's output is the action layout in order; each element is brought to physical units
  as ``raw * scale + offset`` and then clipped to ``[low, high]`` (physical units);
* unless ``physical_graph`` is true: then the graph itself does both (it was made by
  :func:`aegis.inference.physical_graph.physical_model`), is fed the physical observation and
  returns the physical, clipped action, and a loader applies nothing more
  (:meth:`PolicyContract.loader_observation_affine`, :meth:`PolicyContract.loader_action_affine`).
  The flag is written only when true, so an aegis that does not know it refuses such a contract
  (an unknown key) instead of normalising twice.

The file is long because the schema, its validators and the one loader that finds a contract in
metadata or a mapping file stay together: what a contract is and where it is read from, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aegis.config_files import ConfigError, format_errors, pydantic_errors, read_yaml_mapping

SCHEMA_VERSION = 1
"""The contract schema this aegis reads and writes."""
METADATA_PREFIX = "aegis."
CONTRACT_KEY = "aegis.contract"
VERSION_KEY = "aegis.schema_version"
MAPPING_SUFFIX = ".aegis.yaml"

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=64)]
MAX_ELEMENTS = 100_000
"""The most elements a field, and a model input, may have: a mapping file's size of 1e9 would allocate gigabytes."""
Size = Annotated[int, Field(ge=1, le=MAX_ELEMENTS)]

Values = float | tuple[float, ...]
"""One number for every element of a field, or one per element."""


class ContractError(ValueError):
    """A contract cannot be found, read or validated; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


def _arr(values: Values) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def _expand(values: Values, size: int) -> np.ndarray:
    """One value per element: a single number repeated, or the tuple as an array."""
    return np.broadcast_to(_arr(values), (size,)).copy()


def _length_problem(name: str, values: Values | None, size: int) -> str | None:
    if values is None or isinstance(values, float) or len(values) == size:
        return None
    return f"{name} has {len(values)} values, the field's size is {size} (give one number or {size})"


def _all(values: Values | None, test: Any) -> bool:
    return values is None or bool(np.all(test(_arr(values))))


class Normalization(_Strict):
    """How a field is normalised before the network: ``(x - offset) * scale`` or ``(x - mean) / std``; give one pair."""

    offset: Values | None = None
    scale: Values | None = None
    mean: Values | None = None
    std: Values | None = None

    @model_validator(mode="after")
    def _one_style(self) -> Normalization:
        affine = self.offset is not None or self.scale is not None
        standard = self.mean is not None or self.std is not None
        if affine and standard:
            raise ValueError("give offset/scale or mean/std, not both")
        if not affine and not standard:
            raise ValueError("give offset and/or scale, or mean and std (leave normalization out for none)")
        if standard and (self.mean is None or self.std is None):
            raise ValueError("mean/std normalisation needs both mean and std")
        for key in ("offset", "scale", "mean", "std"):
            if not _all(getattr(self, key), np.isfinite):
                raise ValueError(f"{key} must be finite")
        if not _all(self.std, lambda a: a > 0):
            raise ValueError("std must be > 0")
        if not _all(self.scale, lambda a: a != 0):
            raise ValueError("scale must not be 0")
        return self

    def affine(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(offset, gain) of ``size`` elements such that normalised = (x - offset) * gain."""
        if self.mean is not None and self.std is not None:
            return _expand(self.mean, size), 1.0 / _expand(self.std, size)
        offset = _expand(self.offset, size) if self.offset is not None else np.zeros(size)
        gain = _expand(self.scale, size) if self.scale is not None else np.ones(size)
        return offset, gain

    def describe(self) -> str:
        if self.mean is not None:
            return f"(x - mean {_short(self.mean)}) / std {_short(self.std)}"
        return f"(x - {_short(self.offset or 0.0)}) * {_short(self.scale if self.scale is not None else 1.0)}"


class ObservationField(_Strict):
    """One named part of the observation, in physical units before normalisation."""

    name: Name
    size: Size
    unit: Annotated[str, Field(min_length=1, description='SI unit, "1" for dimensionless')]
    normalization: Normalization | None = None
    description: str = ""

    @model_validator(mode="after")
    def _sizes(self) -> ObservationField:
        norm = self.normalization
        for key in ("offset", "scale", "mean", "std"):
            problem = _length_problem(f"normalization.{key}", getattr(norm, key) if norm else None, self.size)
            if problem:
                raise ValueError(problem)
        return self


class ActionField(_Strict):
    """One named part of the action: physical = raw * scale + offset, then clipped to [low, high] (physical units)."""

    name: Name
    size: Size
    unit: Annotated[str, Field(min_length=1, description='SI unit, "1" for dimensionless')]
    scale: Values = 1.0
    offset: Values = 0.0
    low: Values = Field(description="lower limit in physical units (-.inf for none)")
    high: Values = Field(description="upper limit in physical units (.inf for none)")
    description: str = ""

    @model_validator(mode="after")
    def _values(self) -> ActionField:
        for key in ("scale", "offset", "low", "high"):
            problem = _length_problem(key, getattr(self, key), self.size)
            if problem:
                raise ValueError(problem)
        for key in ("scale", "offset"):
            if not _all(getattr(self, key), np.isfinite):
                raise ValueError(f"{key} must be finite")
        if not _all(self.scale, lambda a: a != 0):
            raise ValueError("scale must not be 0")
        low, high = _expand(self.low, self.size), _expand(self.high, self.size)
        if np.isnan(low).any() or np.isnan(high).any():
            raise ValueError("low and high must be numbers (use .inf / -.inf for no limit)")
        if np.any(low > high):
            raise ValueError(f"low {_short(self.low)} must not be above high {_short(self.high)}")
        return self


class Producer(_Strict):
    """Who made the model and how to make it again."""

    name: str = Field(description='tool or project, e.g. "aegis train", "Isaac Lab rsl_rl", "stable-baselines3"')
    version: str = ""
    command: str = Field("", description="the command that reproduces the model")
    seed: int | None = None
    notes: str = ""
    expert: str = Field("", description='node type of the demonstrator it imitates, e.g. "quadrotor_mpc" (aegis sim --policy compares with it)')
    dynamics: dict[str, Any] | None = Field(
        None,
        description="the dynamics set its training episodes drew their plant from (aegis.sim.dynamics: `set` and each "
        "parameter's {low, high}); none: the config's own plant",
    )
    overlay: dict[str, Any] | None = Field(
        None, description="the hw_config overlay it was trained centred on (e.g. what `aegis sysid` identified): dotted key -> value"
    )
    privileged_expert: bool = Field(
        False,
        description="its expert was told each training episode's true plant (mass, thrust, latency: `aegis train --privileged-expert`); "
        "the policy itself observes only its contract's fields",
    )


class PolicyContract(_Strict):
    """The interface of a policy model: observation and action layouts, rate, robot kind, history, Lipschitz bound, producer."""

    schema_version: Literal[1] = SCHEMA_VERSION
    robot_kind: Annotated[str, Field(min_length=1, description="the hw_config robot.kind it was trained for")]
    control_rate_hz: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    history_length: Annotated[int, Field(ge=1, le=1000, description="frames stacked in the input, oldest first")] = 1
    observation: Annotated[tuple[ObservationField, ...], Field(min_length=1)]
    action: Annotated[tuple[ActionField, ...], Field(min_length=1)]
    input_name: str | None = Field(None, description="graph input to feed (needed when the graph has several)")
    output_name: str | None = Field(None, description="graph output holding the action (needed when the graph has several)")
    lipschitz_bound: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="certified bound of the network map, normalised observation -> raw action, 2-norm"
    )
    producer: Producer | None = None
    description: str = ""
    physical_graph: bool = Field(
        False,
        description="the graph applies this contract itself (physical observation in, physical clipped action out): "
        "loaders apply nothing more; set by aegis.inference.physical_graph, not by hand",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyContract:
        for which in ("observation", "action"):
            names = [f.name for f in getattr(self, which)]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{which} field names must be unique, repeated: {', '.join(repeated)}")
        for which, size in (("model input (frame size x history_length)", self.input_size), ("action", self.action_size)):
            if size > MAX_ELEMENTS:
                raise ValueError(f"the {which} would have {size:,} elements: at most {MAX_ELEMENTS:,}")
        return self

    @property
    def frame_size(self) -> int:
        """Elements of one observation frame (the sum of the observation field sizes)."""
        return sum(f.size for f in self.observation)

    @property
    def input_size(self) -> int:
        """Elements of the model input: frame_size x history_length."""
        return self.frame_size * self.history_length

    @property
    def action_size(self) -> int:
        return sum(f.size for f in self.action)

    @property
    def observation_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.observation)

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.action)

    def observation_layout(self) -> str:
        """``position 3 + velocity 3 + ...``, for messages."""
        return " + ".join(f"{f.name} {f.size}" for f in self.observation)

    def action_layout(self) -> str:
        return " + ".join(f"{f.name} {f.size}" for f in self.action)

    def observation_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(offset, gain) over the whole model input (every frame alike): normalised = (x - offset) * gain."""
        parts = [f.normalization.affine(f.size) if f.normalization else (np.zeros(f.size), np.ones(f.size)) for f in self.observation]
        offset = np.tile(np.concatenate([p[0] for p in parts]), self.history_length)
        gain = np.tile(np.concatenate([p[1] for p in parts]), self.history_length)
        return offset, gain

    def action_affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(scale, offset, low, high) over the action vector: physical = clip(raw * scale + offset, low, high)."""
        return tuple(  # type: ignore[return-value]
            np.concatenate([_expand(getattr(f, key), f.size) for f in self.action]) for key in ("scale", "offset", "low", "high")
        )

    def loader_observation_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(offset, gain) a loader applies before feeding the graph: :meth:`observation_affine`, or identity when the graph applies it."""
        if self.physical_graph:
            return np.zeros(self.input_size), np.ones(self.input_size)
        return self.observation_affine()

    def loader_action_affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(scale, offset, low, high) a loader applies to the graph's output: :meth:`action_affine`, or identity when the graph applies it."""
        if self.physical_graph:
            m = self.action_size
            return np.ones(m), np.zeros(m), np.full(m, -np.inf), np.full(m, np.inf)
        return self.action_affine()

    def to_json(self) -> str:
        """The JSON stored under ``aegis.contract`` (infinite limits as the strings "Infinity"/"-Infinity").

        ``physical_graph`` is written only when true: a contract applied in Python reads in an aegis
        that predates the flag, a physical one is refused there (unknown key) rather than applied twice.
        So are the producer's ``dynamics`` and ``overlay`` (written when set) and ``privileged_expert``
        (written when true): a policy trained on the config's own plant by an untold expert has the bytes
        it had before they existed, and so has anything re-saving its contract (``aegis model quantize``).
        """
        exclude: dict[str, Any] = {} if self.physical_graph else {"physical_graph": True}
        if self.producer is not None:
            unset = {key: True for key in ("dynamics", "overlay") if getattr(self.producer, key) is None}
            if not self.producer.privileged_expert:
                unset["privileged_expert"] = True
            if unset:
                exclude["producer"] = unset
        return self.model_dump_json(exclude_defaults=False, exclude=exclude or None)


@dataclass(frozen=True)
class LoadedContract:
    """A contract and where it came from (``source``: words for messages, e.g. "policy.onnx metadata")."""

    contract: PolicyContract
    source: str
    origin: Literal["metadata", "mapping", "given"]
    path: Path | None = None


def mapping_path_for(model_path: str | Path) -> Path:
    """The default mapping file of a model: ``<stem>.aegis.yaml`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + MAPPING_SUFFIX)


def contract_from_metadata(metadata: Mapping[str, str], where: str) -> PolicyContract | None:
    """The contract in a model's metadata_props (as a mapping), None when it has no ``aegis.contract``."""
    text = metadata.get(CONTRACT_KEY)
    if text is None:
        return None
    version = metadata.get(VERSION_KEY)
    if version is not None and version != str(SCHEMA_VERSION):
        raise ContractError(
            f"{where}: metadata {VERSION_KEY} is {version!r}; this aegis reads schema version {SCHEMA_VERSION} (a newer aegis wrote it?)"
        )
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{where}: metadata {CONTRACT_KEY} is not valid JSON: {exc}") from None
    return _validate(raw, f"{where} metadata {CONTRACT_KEY}")


def read_mapping(path: str | Path) -> PolicyContract:
    """A contract from a YAML mapping file (the same fields as the metadata JSON)."""
    path = Path(path)
    try:
        raw = read_yaml_mapping(path)
    except ConfigError as exc:
        raise ContractError(f"mapping file {exc}") from None
    return _validate(raw, str(path))


def write_mapping(contract: PolicyContract, path: str | Path) -> Path:
    """Write a contract as a YAML mapping file; returns the path."""
    import yaml

    path = Path(path)
    data = json.loads(contract.to_json())
    path.write_text(yaml.safe_dump(_inf_back(data), sort_keys=False))
    return path


def _inf_back(data: Any) -> Any:
    """JSON's "Infinity" strings back to floats (YAML writes .inf)."""
    if isinstance(data, dict):
        return {k: _inf_back(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_inf_back(v) for v in data]
    if data in ("Infinity", "-Infinity", "NaN"):
        return float(data.replace("Infinity", "inf"))
    return data


def _validate(raw: Any, where: str) -> PolicyContract:
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: a contract must be a mapping, got {type(raw).__name__}")
    try:
        return PolicyContract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(format_errors(Path(where), pydantic_errors(exc))) from None


def _read_metadata(model_path: Path) -> dict[str, str]:
    import onnx

    if not model_path.is_file():
        raise ContractError(f"{model_path}: no such file")
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
        raise ContractError(f"{model_path}: not a readable ONNX model: {exc}") from None
    return {p.key: p.value for p in model.metadata_props}


def load_contract(
    model_path: str | Path,
    mapping: str | Path | PolicyContract | None = None,
    metadata: Mapping[str, str] | None = None,
) -> LoadedContract:
    """Find a model's contract: its metadata, and a mapping (given, or ``<stem>.aegis.yaml`` beside the model).

    ``mapping`` may also be a PolicyContract given directly. ``metadata`` is the model's
    metadata_props when the caller already has them (the runtime reads them from its session, so
    it needs no ``onnx``). When both the metadata and a mapping hold a contract they must be
    equal; a model with neither is refused, naming both places looked at.
    """
    model_path = Path(model_path)
    if metadata is None:
        metadata = _read_metadata(model_path)
    embedded = contract_from_metadata(metadata, str(model_path))
    given: LoadedContract | None = None
    if isinstance(mapping, PolicyContract):
        given = LoadedContract(mapping, "the contract given to the runtime", "given")
    else:
        mapping_file = Path(mapping) if mapping is not None else mapping_path_for(model_path)
        if mapping is not None and not mapping_file.is_file():
            raise ContractError(f"mapping file {mapping_file}: no such file")
        if mapping_file.is_file():
            given = LoadedContract(read_mapping(mapping_file), f"mapping file {mapping_file}", "mapping", mapping_file)
    if embedded is not None:
        if given is not None and given.contract != embedded:
            raise ContractError(
                f"{model_path} carries a contract in its metadata ({CONTRACT_KEY}) and {given.source} gives a different one "
                f"(differing: {', '.join(_differences(embedded, given.contract))}); remove one or make them agree"
            )
        return LoadedContract(embedded, f"{model_path.name} metadata", "metadata", model_path)
    if given is not None:
        return given
    raise ContractError(
        f"{model_path}: no policy contract: its ONNX metadata has no {CONTRACT_KEY} key, and there is no mapping file "
        f"{mapping_path_for(model_path)}; add one (aegis.inference.stamping.write_contract or a YAML mapping file)"
    )


def read_contract(model_path: str | Path, mapping: str | Path | None = None) -> PolicyContract:
    """A model's contract, from its metadata or its mapping file (see :func:`load_contract`)."""
    return load_contract(model_path, mapping).contract


def _differences(a: PolicyContract, b: PolicyContract) -> list[str]:
    da, db = a.model_dump(), b.model_dump()
    return [key for key in da if da[key] != db[key]] or ["(equal fields, different types)"]


def _short(values: Values | None) -> str:
    if values is None:
        return "-"
    if isinstance(values, float):
        return f"{values:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
