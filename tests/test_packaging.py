"""The ROS 2 package metadata agrees with itself: package.xml, setup.py, setup.cfg and the code.

Fast checks only; tests/test_install_modes.py (slow) installs the package in all four ways.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aegis
import aegis._source_layout
import aegis.registry

REPO = Path(__file__).resolve().parent.parent
PACKAGE_XML = REPO / "package.xml"
SETUP_PY = REPO / "setup.py"
# Debian's python3-ament-xmllint ships the ROS schemas in its XML catalog.
PACKAGE_FORMAT3_XSD = Path("/usr/share/ament_xmllint/xml-catalog/download.ros.org/schema/package_format3.xsd")


def setup_py_constant(name: str):
    """A module-level literal assignment of setup.py, read with ast (setup.py is not executed)."""
    tree = ast.parse(SETUP_PY.read_text(), filename=str(SETUP_PY))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no module-level literal {name}")


# setup.py is run in a child interpreter with setuptools.setup() replaced by a recorder: these are
# the keyword arguments setuptools would receive (the approach colcon-python-setup-py takes).
_SETUP_ARGS_SCRIPT = """
import json, runpy, sys
import setuptools

captured = {}
setuptools.setup = lambda **kwargs: captured.update(kwargs)
runpy.run_path(sys.argv[1], run_name="__main__")
keys = ("name", "version", "packages", "package_dir", "data_files", "entry_points")
print(json.dumps({key: captured.get(key) for key in keys}))
"""


def setup_arguments(cwd: Path, setup_py: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _SETUP_ARGS_SCRIPT, str(setup_py)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"running setup.py failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def setup_args() -> dict:
    return setup_arguments(REPO, SETUP_PY)


# --- package.xml -------------------------------------------------------------------------------


def catkin_parse(path: Path):
    from catkin_pkg.package import parse_package

    package = parse_package(str(path))
    package.validate()
    return package


def test_package_xml_is_a_valid_format3_ament_python_package() -> None:
    package = catkin_parse(PACKAGE_XML)
    assert package.name == "aegis"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_python"
    assert package.licenses and package.maintainers


@pytest.fixture(scope="module")
def package_format3_schema():
    etree = pytest.importorskip("lxml.etree")
    if not PACKAGE_FORMAT3_XSD.is_file():
        pytest.skip(f"{PACKAGE_FORMAT3_XSD} is absent: install Debian's python3-ament-xmllint (.ci/run does)")
    return etree.XMLSchema(etree.parse(str(PACKAGE_FORMAT3_XSD)))


def test_package_xml_validates_against_package_format3_xsd(package_format3_schema) -> None:
    from lxml import etree

    document = etree.parse(str(PACKAGE_XML))
    assert package_format3_schema.validate(document), str(package_format3_schema.error_log)


BROKEN_MANIFESTS = {
    "unknown tag": lambda xml: xml.replace("<license>", "<bogus_tag>x</bogus_tag>\n  <license>", 1),
    "missing license": lambda xml: re.sub(r"\s*<license>.*?</license>", "", xml),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_MANIFESTS))
def test_both_validators_reject_a_broken_package_xml(breakage: str, tmp_path: Path, package_format3_schema) -> None:
    from catkin_pkg.package import InvalidPackage
    from lxml import etree

    broken = BROKEN_MANIFESTS[breakage](PACKAGE_XML.read_text())
    assert broken != PACKAGE_XML.read_text(), f"the {breakage} edit did not apply to package.xml"
    (tmp_path / "package.xml").write_text(broken)
    with pytest.raises(InvalidPackage):
        catkin_parse(tmp_path / "package.xml")
    assert not package_format3_schema.validate(etree.parse(str(tmp_path / "package.xml")))


# --- setup.py, setup.cfg and the code agree ----------------------------------------------------


def test_mapped_subpackages_match_the_in_place_finder() -> None:
    assert setup_py_constant("MAPPED_SUBPACKAGES") == aegis._source_layout.MAPPED_SUBPACKAGES


def test_package_dir_maps_only_subpackages(setup_args: dict) -> None:
    # Mapping 'aegis' itself (or '') breaks `colcon build --symlink-install` (FACTS.md).
    assert setup_args["package_dir"] == aegis._source_layout.MAPPED_SUBPACKAGES
    for name, folder in setup_args["package_dir"].items():
        assert "." in name and (REPO / folder / "__init__.py").is_file(), (name, folder)


def test_package_dir_resolves_from_colcon_symlink_build_folder(tmp_path: Path) -> None:
    # `colcon build --symlink-install` runs a symlinked setup.py from its build folder, where
    # controllers/ and nodes/ are not linked: package_dir must still reach the real folders.
    (tmp_path / "setup.py").symlink_to(SETUP_PY)
    package_dir = setup_arguments(tmp_path, tmp_path / "setup.py")["package_dir"]
    assert set(package_dir) == set(aegis._source_layout.MAPPED_SUBPACKAGES)
    for name, folder in aegis._source_layout.MAPPED_SUBPACKAGES.items():
        assert (tmp_path / package_dir[name]).resolve() == (REPO / folder).resolve(), (name, package_dir[name])


def test_packages_cover_every_python_package(setup_args: dict) -> None:
    """aegis/ and every package inside the mapped folders (controllers/cbf -> aegis.controllers.cbf)."""
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "aegis").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    for package, folder in aegis._source_layout.MAPPED_SUBPACKAGES.items():
        on_disk |= {
            ".".join((package, *init.parent.relative_to(REPO / folder).parts))
            for init in (REPO / folder).rglob("__init__.py")
            if "__pycache__" not in init.parts
        }
    assert "aegis.controllers.cbf" in on_disk
    assert set(setup_args["packages"]) == on_disk


def console_scripts(setup_args: dict) -> dict[str, str]:
    """name -> "module:function" of every console script setup.py declares."""
    pairs = (line.split("=", 1) for line in setup_args["entry_points"]["console_scripts"])
    return {name.strip(): target.strip() for name, target in pairs}


def test_every_registered_node_type_is_an_executable(setup_args: dict) -> None:
    scripts = console_scripts(setup_args)
    for type_name in aegis.registry.NODE_TYPES:
        assert scripts.get(type_name) == f"aegis.nodes.executables:{type_name}", type_name
    assert scripts["aegis"] == "aegis.cli:main"


def test_console_scripts_point_at_functions(setup_args: dict) -> None:
    for name, target in console_scripts(setup_args).items():
        module_name, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module_name), function, None)), f"{name} = {target}"


def test_versions_agree(setup_args: dict) -> None:
    from catkin_pkg.package import parse_package

    assert parse_package(str(PACKAGE_XML)).version == setup_args["version"] == aegis.__version__
    assert setup_args["name"] == parse_package(str(PACKAGE_XML)).name == "aegis"


def test_setup_cfg_puts_executables_where_ros2_run_looks() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "setup.cfg")
    assert config["develop"]["script_dir"] == "$base/lib/aegis"
    assert config["install"]["install_scripts"] == "$base/lib/aegis"


def _installed_data_files(setup_args: dict) -> dict[str, str]:
    """source path (relative to the repository) -> install folder (relative to the prefix)."""
    return {source: folder for folder, sources in setup_args["data_files"] for source in sources}


def test_data_files_cover_shipped_files(setup_args: dict) -> None:
    installed = _installed_data_files(setup_args)
    expected = {
        "resource/aegis": "share/ament_index/resource_index/packages",
        "package.xml": "share/aegis",
    }
    for pattern, folder in (("hw_configs/*.yaml", "share/aegis/hw_configs"), ("launch/*.launch.py", "share/aegis/launch")):
        expected.update({path.relative_to(REPO).as_posix(): folder for path in REPO.glob(pattern)})
    for path in (REPO / "models").rglob("*"):
        if path.is_file() and not path.name.startswith(".") and "__pycache__" not in path.parts:
            expected[path.relative_to(REPO).as_posix()] = "share/aegis/models"
    assert (REPO / "resource" / "aegis").is_file()
    assert any(REPO.glob("hw_configs/*.yaml")), "no hw_configs shipped"
    missing = {source: folder for source, folder in expected.items() if installed.get(source) != folder}
    assert not missing, f"not installed where expected (source -> folder): {missing}"
    for source in installed:
        assert (REPO / source).is_file(), f"data_files lists {source}, which is not a file"
