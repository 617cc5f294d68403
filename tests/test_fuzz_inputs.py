"""Property-based fuzzing of every way input reaches aegis: for any input, a valid object or the one refusal, quickly.

Each loader is fed inputs drawn by Hypothesis: hw_config YAML (random text and bytes, shipped configs
with a value replaced by something nasty, alias chains), scenarios, ``--set`` overrides, dynamics
sets, policy contract mapping files, bag folders with random or truncated bytes, the message
conversions from and to ROS, and the command line's numbers and output paths. The property is the
same everywhere: the result is a valid object, or the loader's own refusal (ConfigError, ContractError,
BagError, a message class's ValueError, argparse's exit 2), never another exception, and it comes
within the Hypothesis deadline (a hang would blow through it; no timed asserts).

The default run draws 50 examples per property, the same ones every run (``derandomize``), so a
plain ``pytest`` stays quick and repeatable; ``AEGIS_FUZZ=thorough`` draws 2000 fresh ones each:

    AEGIS_FUZZ=thorough python -m pytest -q tests/test_fuzz_inputs.py
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import shutil
import string
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis.cli_options import output_file, output_folder
from aegis.config import HwConfig, load_config
from aegis.config_files import MAX_VALUES, ConfigError, parse_yaml
from aegis.inference.contract import ContractError, PolicyContract, read_contract, read_mapping, write_mapping
from aegis.msgs import MESSAGE_TYPES, rosbags_types
from aegis.runs.bag import BagError, BagRecorder, bag_info, read_bag
from aegis.scenario import Scenario, load_scenario
from aegis.sim.dynamics import Dynamics, load_dynamics

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ("point_mass_sim", "quadrotor_sim", "husky_sim", "quadrotor_swarm_sim")
SCENARIOS = ("quadrotor_figure8", "quadrotor_clutter", "husky_gaps", "quadrotor_swarm_cross")
DYNAMICS = ("combined", "random", "latency_10ms")

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile(
    "aegis-fuzz-fast", max_examples=50, derandomize=True, deadline=timedelta(seconds=5), suppress_health_check=_SUPPRESS
)
settings.register_profile(
    "aegis-fuzz-thorough", max_examples=2000, deadline=timedelta(seconds=5), suppress_health_check=_SUPPRESS
)
PROFILE = settings.get_profile(f"aegis-fuzz-{os.environ.get('AEGIS_FUZZ', 'fast')}")
fuzz = settings(PROFILE)
"""The settings every property here runs under (see the module doc)."""

# -- what a nasty value is ---------------------------------------------------------------------

NASTY_FLOATS = st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0, -1.0, 1e-320, 1e308, -1e308, 1e9, 1e12])
NASTY_SCALARS = st.one_of(
    NASTY_FLOATS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "nan", ".inf", "1.0e9", "-1", "\x00", "é", "a" * 300, "../../etc/passwd", "/dev/zero"]),
)
NASTY_VALUES = st.recursive(
    NASTY_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
YAML_TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from([
        "[", "{", "&a [*a]", "*undefined", "!!python/object:os.system ['true']", "a: b: c", "- - - -", "'",
        "{[1, 2]: 3}", "[" * 200, ".nan", "1e999", "1.0e+999", "0x7fffffffffffffff", "~", "2001-12-14",
        "a: 1\na: 2", "%YAML 1.1\n---", "--- 1\n--- 2",
    ]),
)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists (the root's children and below)."""
    out = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _replace(data: Any, path: tuple, value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _mutated(data: dict, draw: Any) -> dict:
    """``data`` with one to three values (or whole sections) replaced by nasty ones, or a new key added."""
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths or draw(st.integers(0, 9)) == 0:
            data = {**data, draw(st.text(max_size=12)): draw(NASTY_VALUES)}
            continue
        data = _replace(data, draw(st.sampled_from(paths)), draw(NASTY_VALUES))
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _config_file(name: str) -> Path:
    return REPO / "hw_configs" / f"{name}.yaml"


@pytest.fixture(scope="module")
def workdir():
    """One scratch folder for the whole module (Hypothesis reuses a test's function-scoped fixtures across examples)."""
    with tempfile.TemporaryDirectory(prefix="aegis-fuzz-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import what loading a config imports (node classes, PyBullet, onnxruntime) before any deadline is timed."""
    for name in CONFIGS:
        load_config(_config_file(name))


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    """``text`` written beside the shipped configs' relative files would be; here in the scratch folder."""
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- the YAML loaders ---------------------------------------------------------------------------


def _load_config_or_refuse(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> None:
    try:
        result = load_config(path, overrides)
    except ConfigError as exc:
        assert str(exc).strip(), "a refusal says why"
        return
    assert isinstance(result, HwConfig)


@fuzz
@given(text=YAML_TEXT)
def test_any_text_as_a_hw_config_loads_or_is_refused(workdir: Path, text: str) -> None:
    _load_config_or_refuse(_write(workdir, "text.yaml", text))


@fuzz
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_hw_config_load_or_are_refused(workdir: Path, data: bytes) -> None:
    _load_config_or_refuse(_write(workdir, "bytes.yaml", data))


def _shipped(name: str) -> dict:
    raw = yaml.safe_load(_config_file(name).read_text())
    for key in ("scenario",):  # relative to the shipped config: made absolute so the copy in the scratch folder finds it
        if isinstance(raw.get(key), str) and (REPO / "hw_configs" / raw[key]).is_file():
            raw[key] = str(REPO / "hw_configs" / raw[key])
    model = raw.get("inference", {}).get("model")
    if model:
        raw["inference"]["model"] = str((REPO / "hw_configs" / model).resolve())
    return raw


@fuzz
@given(name=st.sampled_from(CONFIGS), data=st.data())
def test_a_shipped_config_with_nasty_values_loads_or_is_refused(workdir: Path, name: str, data: st.DataObject) -> None:
    raw = _mutated(_shipped(name), data.draw)
    _load_config_or_refuse(_write(workdir, f"{name}.yaml", _dump(raw)))


@st.composite
def alias_chains(draw: Any) -> tuple[str, int]:
    """YAML with an alias chain (each level a list of ``fan`` aliases of the one below), and how many values it expands to."""
    depth, fan = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lines = ["l0: &l0 [1.0]"]
    for level in range(1, depth + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fan) + "]")
    size = 2  # the innermost list and its number
    for _ in range(depth):
        size = 1 + fan * size
    return "\n".join(lines), size


@fuzz
@given(chain=alias_chains(), where=st.sampled_from(["robot.mass_kg", "nodes.controller.params.kp", "safety.geofence"]))
def test_alias_chains_are_refused_past_the_bound_and_never_expanded(workdir: Path, chain: tuple[str, int], where: str) -> None:
    text, size = chain
    raw = _shipped("point_mass_sim")
    keys = where.split(".")
    node = raw
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = "ALIAS"
    config = _dump(raw).replace("ALIAS", f"*l{text.count(chr(10))}")
    path = _write(workdir, "alias.yaml", "aliases:\n" + "\n".join(f"  {line}" for line in text.splitlines()) + "\n" + config)
    try:
        load_config(path)
    except ConfigError as exc:
        if size > MAX_VALUES:
            assert "alias" in str(exc)
        assert len(str(exc)) < 2000, "the error does not echo the expanded value"
        return
    raise AssertionError("aliases: is not a hw_config key")  # always refused; the property is how


@fuzz
@given(name=st.sampled_from(SCENARIOS), data=st.data())
def test_a_shipped_scenario_with_nasty_values_loads_or_is_refused(workdir: Path, name: str, data: st.DataObject) -> None:
    raw = _mutated(yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text()), data.draw)
    path = _write(workdir, f"{name}.yaml", _dump(raw))
    try:
        result = load_scenario(path)
    except ConfigError:
        return
    assert isinstance(result, Scenario)
    assert math.isfinite(result.duration_s) and result.duration_s <= 3600


KEY_PARTS = st.one_of(
    st.sampled_from(["robot", "nodes", "controller", "plant", "filtr", "params", "kp", "rate_hz", "safety", "geofence",
                     "min_m", "0", "5", "type", "topics", "scenario", "mass_kg", "quadrotor", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=8),
)


@fuzz
@given(keys=st.lists(KEY_PARTS, min_size=1, max_size=5), sep=st.sampled_from(["=", "", "=="]), value=YAML_TEXT,
       name=st.sampled_from(CONFIGS[:2]))
def test_any_set_override_applies_or_is_refused(keys: list[str], sep: str, value: str, name: str) -> None:
    _load_config_or_refuse(_config_file(name), [".".join(keys) + sep + value])


@fuzz
@given(name=st.sampled_from(DYNAMICS), data=st.data())
def test_a_dynamics_set_with_nasty_values_loads_or_is_refused(workdir: Path, name: str, data: st.DataObject) -> None:
    raw = _mutated(yaml.safe_load((REPO / "dynamics" / f"{name}.yaml").read_text()), data.draw)
    try:
        result = load_dynamics(_write(workdir, "dynamics.yaml", _dump(raw)))
    except ConfigError:
        return
    assert isinstance(result, Dynamics)


@pytest.fixture(scope="module")
def mapping_text(workdir: Path) -> str:
    """A valid contract mapping file (the shipped husky policy's contract, written as YAML)."""
    return write_mapping(read_contract(REPO / "models" / "husky_goal.onnx"), workdir / "contract.aegis.yaml").read_text()


@fuzz
@given(data=st.data())
def test_a_contract_mapping_with_nasty_values_loads_or_is_refused(workdir: Path, mapping_text: str, data: st.DataObject) -> None:
    text = _dump(_mutated(yaml.safe_load(mapping_text), data.draw)) if data.draw(st.booleans()) else data.draw(YAML_TEXT)
    try:
        result = read_mapping(_write(workdir, "mapping.aegis.yaml", text))
    except ContractError:
        return
    assert isinstance(result, PolicyContract)


# -- bags ---------------------------------------------------------------------------------------


def _sample_messages() -> dict[str, Any]:
    from test_msgs import examples  # one non-trivial instance of every message class

    return examples()


@pytest.fixture(scope="module")
def good_bag(workdir: Path) -> Path:
    """A small bag with one topic per message class, three messages each."""
    bag = workdir / "good_bag"
    with BagRecorder(bag) as recorder:
        for step in range(3):
            for name, msg in _sample_messages().items():
                recorder.write(f"/{name.lower()}", msg, step * 1_000_000 + 1)
    return bag


def _read_or_refuse(bag: Path) -> None:
    try:
        info = bag_info(bag)
        messages = list(read_bag(bag))
    except BagError as exc:
        assert str(bag) in str(exc) or "metadata.yaml" in str(exc)
        return
    assert info["messages"] >= 0 and all(type(m).__name__ in MESSAGE_TYPES for _, _, m in messages)


@fuzz
@given(how=st.sampled_from(["truncate", "flip", "random", "remove", "metadata"]), data=st.data())
def test_a_damaged_bag_reads_or_is_refused(workdir: Path, good_bag: Path, how: str, data: st.DataObject) -> None:
    bag = workdir / "damaged_bag"
    shutil.rmtree(bag, ignore_errors=True)
    shutil.copytree(good_bag, bag)
    mcap = bag / "good_bag.mcap" if (bag / "good_bag.mcap").exists() else next(bag.glob("*.mcap"))
    raw = mcap.read_bytes()
    if how == "truncate":
        mcap.write_bytes(raw[: data.draw(st.integers(0, len(raw)))])
    elif how == "flip":
        damaged = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            damaged[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        mcap.write_bytes(bytes(damaged))
    elif how == "random":
        mcap.write_bytes(data.draw(st.binary(max_size=2000)))
    elif how == "remove":
        mcap.unlink()
    else:
        meta = bag / "metadata.yaml"
        text = meta.read_bytes()
        cut = data.draw(st.integers(0, len(text)))
        meta.write_bytes(text[:cut] + data.draw(st.binary(max_size=20)) + text[cut + data.draw(st.integers(0, 40)) :])
    _read_or_refuse(bag)


# -- message conversions ------------------------------------------------------------------------


def _nasty_like(value: Any, draw: Any) -> Any:
    """A value of roughly the shape of ``value`` but drawn to break things: NaN, inf, wrong lengths, huge numbers, odd text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if field.name != "__msgtype__" and draw(st.integers(0, 2)) == 0:
                changes[field.name] = _nasty_like(getattr(value, field.name), draw)
        return dataclasses.replace(value, **changes)
    if isinstance(value, np.ndarray):
        n = draw(st.integers(0, 12))
        if value.dtype.kind == "f":
            width = 32 if value.dtype.itemsize == 4 else 64
            return np.array(draw(st.lists(st.floats(width=width), min_size=n, max_size=n)), dtype=value.dtype)
        info = np.iinfo(value.dtype) if value.dtype.kind in "iu" else np.iinfo(np.uint8)
        return np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)), dtype=value.dtype)
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, int):
        return draw(st.integers(0, 2**31 - 1))
    if isinstance(value, float):
        return draw(st.floats())
    if isinstance(value, str):
        return draw(st.one_of(st.text(max_size=20), st.sampled_from(["nan", "inf", "-1", "", "1e999", "True", "[1]"])))
    if isinstance(value, list):
        items = [_nasty_like(item, draw) for item in value]
        return items[: draw(st.integers(0, len(items)))] + items[: draw(st.integers(0, 2))]
    return value


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # a float64 beyond float32 in a float32 field: inf
@fuzz
@given(name=st.sampled_from(sorted(MESSAGE_TYPES)), distro=st.sampled_from(["humble", "jazzy"]), data=st.data())
def test_any_ros_message_converts_or_is_refused_by_the_message_class(name: str, distro: str, data: st.DataObject) -> None:
    types = rosbags_types(distro)
    cls = MESSAGE_TYPES[name]
    ros = _nasty_like(_sample_messages()[name].to_ros(types), data.draw)
    try:
        msg = cls.from_ros(ros)
    except ValueError:
        return
    assert isinstance(msg, cls)
    again = msg.to_ros(types)  # what aegis accepted, it can write back
    assert type(again).__msgtype__ == cls.ROS_TYPE


# -- the command line ---------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.sampled_from(["-1", "0", "1", "nan", "inf", "-inf", "1e9", "1e999", "4294967296", "1.5", "", " ", "0x10", "१"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(str),
    st.text(max_size=10),
)


@fuzz
@given(seed=NUMBER_TEXT, duration=NUMBER_TEXT)
def test_bad_numbers_on_the_command_line_exit_2_in_one_line(seed: str, duration: str, capsys) -> None:
    from aegis.cli import main

    # a config error ends a command whose numbers were all fine: nothing runs either way
    argv = ["sim", "point_mass_sim", "--seed", seed, "--duration", duration, "--set", "nodes.plant.rate_hz=0"]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a number: its usage and one error line
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(("aegis: error:", "aegis sim: error:"))


PATH_PARTS = st.one_of(
    st.sampled_from(["a", "b", "file.txt", "..", ".", "x" * 256, "é" * 130, "sub", "\x00"]),
    st.text(alphabet=string.ascii_letters + "._- ", min_size=1, max_size=10),
)


@fuzz
@given(parts=st.lists(PATH_PARTS, min_size=1, max_size=4), folder=st.booleans())
def test_an_output_path_is_refused_or_can_be_written(workdir: Path, parts: list[str], folder: bool) -> None:
    root = workdir / "outputs"
    root.mkdir(exist_ok=True)
    (root / "file.txt").write_text("a file in the way")
    text = str(root.joinpath(*parts))
    try:
        path = (output_folder if folder else output_file)(text)
    except argparse.ArgumentTypeError as exc:
        assert str(exc)
        return
    # accepted: it can be made (what the command does with it)
    if folder:
        path.mkdir(parents=True, exist_ok=True)
        assert path.is_dir()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("written")


def test_the_yaml_parser_refuses_an_alias_bomb_without_building_it() -> None:
    """The smallest case of the class, spelled out: nine levels of nine aliases (9^9 values from 300 bytes)."""
    text = "a0: &a0 [x]\n" + "\n".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10))
    with pytest.raises(ConfigError, match="alias bomb"):
        parse_yaml(text, "bomb.yaml")
