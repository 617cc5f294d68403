"""package.xml (rosdep), requirements-ros2.txt (pip) and setup.py's install_requires name the same runtime dependencies.

A ROS 2 workspace gets aegis's dependencies from rosdep (package.xml's exec_depend keys) and from
`pip install -r requirements-ros2.txt`; pip installs of aegis get setup.py's install_requires.
Every install_requires entry must come from exactly one of the two in a workspace, with the same
version bound on the pip side, and no rosdep key may resolve to a version aegis cannot use
(python3-pydantic is pydantic 1.x on the Ubuntu releases ROS 2 targets). The slow test in
tests/test_install_modes.py builds a fresh workspace from exactly these two lists.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent

ROSDEP_KEYS = {
    "numpy": "python3-numpy", "scipy": "python3-scipy", "pyyaml": "python3-yaml", "rich": "python3-rich", "pillow": "python3-pil",
}
"""install_requires name -> the rosdep key package.xml declares for it."""

NOBLE_VERSIONS = {
    "python3-numpy": "1.26.4", "python3-scipy": "1.11.4", "python3-yaml": "6.0.1", "python3-rich": "13.7.1", "python3-pil": "10.2.0",
}
"""What each key installs on Ubuntu 24.04 (ROS 2 Jazzy): the versions the fresh-workspace test pins pip to."""


def install_requires() -> dict[str, Requirement]:
    text = (REPO / "setup.py").read_text()
    block = re.search(r"install_requires=\[(.*?)\]", text, re.S).group(1)
    requirements = [Requirement(r) for r in re.findall(r'"([^"]+)"', block)]
    return {r.name.lower(): r for r in requirements}


def ros2_pip_requirements() -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements-ros2.txt").read_text().splitlines()]
    return {r.name.lower(): r for r in map(Requirement, filter(None, lines))}


def exec_depends() -> list[str]:
    return [e.text for e in ElementTree.parse(REPO / "package.xml").getroot().iter("exec_depend")]


def test_every_runtime_dependency_comes_from_rosdep_or_pip_in_a_workspace_and_not_both() -> None:
    required, pip = install_requires(), ros2_pip_requirements()
    from_rosdep = {name for name in required if ROSDEP_KEYS.get(name) in exec_depends()}
    assert from_rosdep == set(ROSDEP_KEYS)
    assert set(pip) == set(required) - from_rosdep, "requirements-ros2.txt must list exactly what rosdep does not give"
    for name, requirement in pip.items():
        assert requirement.specifier == required[name].specifier, f"{name}: {requirement} here, {required[name]} in setup.py"


def test_each_rosdep_key_gives_a_version_aegis_accepts() -> None:
    required = install_requires()
    for name, key in ROSDEP_KEYS.items():
        assert required[name].specifier.contains(NOBLE_VERSIONS[key]), f"{key} {NOBLE_VERSIONS[key]} does not meet {required[name]}"
    assert "python3-pydantic" not in exec_depends()  # pydantic 1.x from rosdep; aegis needs 2
