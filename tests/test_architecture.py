"""The package's shape: imports run one way (tools -> core, never back), no import circles, no file grows past ~400 lines unexplained.

Every import in the source (module level or inside a function: both run) is read with ``ast``.
Each part of ``aegis`` sits in a layer (:data:`LAYERS`); a module may import its own part and
the parts of lower layers only. Two parts of one layer above the core are siblings and do not import
each other; the core's parts import one another (without circles).
A new top-level module or subpackage fails :func:`test_every_part_has_a_layer` until it is given one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"aegis": ROOT / "aegis", "aegis.controllers": ROOT / "controllers", "aegis.nodes": ROOT / "nodes"}

LAYERS: dict[str, int] = {
    # 0 the core contract: nodes and ports, messages, configuration and its files, scenarios,
    #   the launch plan, the registry, the executors (lockstep, the ROS 2 shell's pieces), paths,
    #   and the transport between processes that executors use (DDS with ROS 2's names and CDR)
    "aegis": 0,
    "aegis._source_layout": 0,
    "aegis.node": 0,
    "aegis.msgs": 0,
    "aegis.config": 0,
    "aegis.config_files": 0,
    "aegis.scenario": 0,
    "aegis.registry": 0,
    "aegis.launch_plan": 0,
    "aegis.executors": 0,
    "aegis.ros_shell": 0,
    "aegis.paths": 0,
    "aegis.rotations": 0,
    "aegis.transport": 0,
    # 1 the math: controllers, filters, models, perception and state estimation (numpy, solvers; no messages)
    "aegis.controllers": 1,
    "aegis.perception": 1,
    # 2 what nodes are built from: the simulator's worlds, the ONNX policy runtime
    "aegis.sim": 2,
    "aegis.inference": 2,
    # 3 options every command line shares (a node executable uses them too)
    "aegis.cli_options": 3,
    # 4 the nodes (and the one ROS 2 adapter)
    "aegis.nodes": 4,
    # 5 tools on plans and nodes: runs and campaigns, C export, the configuration reference
    "aegis.runs": 5,
    "aegis.export": 5,
    "aegis.config_reference": 5,
    # 6 tools on those tools: policy and model tools, training, benchmarks
    "aegis.policy_tools": 6,
    "aegis.training": 6,
    "aegis.sysid": 6,
    "aegis.bench": 6,
    # 7 the command line, which only assembles the subcommands the parts own
    "aegis.cli": 7,
}

LONG_FILE_LINES = 400
"""A source file longer than this says why in its opening docstring (the word "long" and a reason)."""


def _modules() -> dict[str, Path]:
    modules = {}
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = [prefix, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module of MODULES that ``name`` (a module, or a name inside one) is, or None outside aegis."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    """The aegis modules ``module`` imports anywhere in its source, itself excluded."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(owner for owner in map(_owner, names) if owner is not None and owner != module)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _part(module: str) -> str:
    """The part of aegis a module belongs to: its top-level module or subpackage."""
    return ".".join(module.split(".")[:2])


def test_every_part_has_a_layer() -> None:
    unknown = sorted({_part(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"give these parts a layer in tests/test_architecture.py LAYERS: {unknown}"


def test_imports_run_down_the_layers_only() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        for target in targets:
            source_part, target_part = _part(module), _part(target)
            if source_part == target_part:
                continue
            source_layer, target_layer = LAYERS[source_part], LAYERS[target_part]
            if not (target_layer < source_layer or source_layer == target_layer == 0):
                wrong.append(f"{module} (layer {LAYERS[source_part]}) imports {target} (layer {LAYERS[target_part]})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_the_core_imports_only_the_core() -> None:
    core = {part for part, layer in LAYERS.items() if layer == 0}
    outside = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() if _part(m) in core for t in ts if _part(t) not in core)
    assert not outside, "\n".join(outside)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circles_between_modules() -> None:
    assert _circles(GRAPH) == []


def test_no_import_circles_between_parts() -> None:
    parts: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        parts.setdefault(_part(module), set()).update(_part(t) for t in targets if _part(t) != _part(module))
    assert _circles(parts) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """The two tests above can fail: a circle of three and a self-contained pair are both found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(_circles(graph)) == [["a", "b", "c"], ["d", "e"]]


@pytest.mark.parametrize("path", sorted(p for p in MODULES.values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_file_says_why(path: Path) -> None:
    lines = path.read_text().count("\n")
    if lines <= LONG_FILE_LINES:
        return
    tree = ast.parse(path.read_text())
    doc = ast.get_docstring(tree) or ""
    assert re.search(r"\blong\b", doc, re.IGNORECASE), f"{path.relative_to(ROOT)}: {lines} lines; split it, or say in its docstring why it is long"


def test_node_executables_do_not_drag_the_command_line_in() -> None:
    """A colcon-installed node executable imports neither the CLI nor rich (it failed without rich)."""
    import subprocess
    import sys

    code = "import sys, aegis.nodes.executables; print(sorted(m for m in ('aegis.cli', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
