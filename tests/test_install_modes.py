"""The four ways people install a ROS 2 Python package all give a working aegis.

`pip install .`, `pip install -e .`, `colcon build` and `colcon build --symlink-install`, each on a
fresh copy of the package in a temporary directory. From each install, a child interpreter with
the environment that install gives (a venv; colcon's install/local_setup.sh) imports
aegis.controllers.pid and aegis.nodes.pid from where that mode puts them and finds the data files
through the ament index layout (share/ament_index, share/aegis).

Offline: pip runs with --no-deps, and with --no-build-isolation whenever the environment running
these tests can build a wheel itself (setuptools >= 70.1, or setuptools with `wheel`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aegis.registry import NODE_TYPES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What a source checkout of the package holds (no .venv, build/, install/, tests/).
PACKAGE_ITEMS = (
    "package.xml", "setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "requirements-ros2.txt",
    "resource", "aegis", "controllers", "nodes", "launch", "hw_configs", "models", "scenarios", "dynamics",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
TIMEOUT_S = 300
SOURCE_SUBPACKAGES = sorted(
    f"aegis.{folder}.{'.'.join(init.parent.relative_to(REPO / folder).parts)}"
    for folder in ("controllers", "nodes")
    for init in (REPO / folder).rglob("__init__.py")
    if init.parent != REPO / folder and "__pycache__" not in init.parts
)
"""aegis.controllers.cbf, aegis.controllers.mpc, ...: each must be importable from every install."""

# Printed as JSON by a child interpreter inside each install.
PROBE = r"""
import importlib, importlib.metadata, json, os, pkgutil, sys
import aegis, aegis.controllers, aegis.nodes, aegis.controllers.pid, aegis.nodes.pid, aegis.paths
from aegis._source_layout import _MappedSubpackageFinder

# every package of the source tree must be there (a subpackage of a mapped folder once was not)
packages = sorted(
    info.name for root in (aegis.controllers, aegis.nodes)
    for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".") if info.ispkg
)
for name in packages:
    importlib.import_module(name)

print(json.dumps({
    "aegis": aegis.__file__,
    "controllers": aegis.controllers.__file__,
    "nodes": aegis.nodes.__file__,
    "controllers.pid": aegis.controllers.pid.__file__,
    "subpackages": packages,
    "nodes.pid": aegis.nodes.pid.__file__,
    "version": aegis.__version__,
    "prefix": sys.prefix,
    "in_place_finder": any(isinstance(f, _MappedSubpackageFinder) for f in sys.meta_path),
    "share_dir": str(aegis.paths.share_dir()),
    "point_mass_sim": str(aegis.paths.shipped_config("point_mass_sim")),
    "ament_prefix_path": os.environ.get("AMENT_PREFIX_PATH", ""),
    "console_scripts": sorted(
        ep.name for ep in importlib.metadata.distribution("aegis").entry_points if ep.group == "console_scripts"
    ),
    "sys_path": sys.path,
}))
"""


EXECUTABLES = ["aegis", *NODE_TYPES]  # setup.py makes one console script per registered node type


# --- helpers -----------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point a child at /work/main or a workspace."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV",
            "AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_HOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    return env


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env if env is not None else clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S,
    )


def ok(result: subprocess.CompletedProcess, what: str) -> str:
    assert result.returncode == 0, f"{what} failed (exit {result.returncode}): {result.args}\n{result.stdout}"
    return result.stdout


def copy_package(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for item in PACKAGE_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, dest / item, ignore=IGNORED)
        elif source.is_file():
            shutil.copy2(source, dest / item)
    return dest


def site_dirs() -> list[str]:
    """The site-packages folders of the interpreter running the tests (venv or not)."""
    seen: list[str] = []
    for entry in sys.path:
        if os.path.basename(entry) in ("site-packages", "dist-packages") and os.path.isdir(entry) and entry not in seen:
            seen.append(entry)
    return seen


def make_venv(path: Path) -> Path:
    """A fresh venv that sees this environment's packages (pip, setuptools, numpy, colcon) behind its own.

    `--system-site-packages` would expose the base interpreter, not the venv that CI runs the tests
    in, so the site folders go into a .pth file instead: plain paths, so this environment's own .pth
    files (an editable install of this repository among them) are not processed.
    """
    has_pip = any((Path(d) / "pip" / "__init__.py").is_file() for d in site_dirs())
    ok(run([sys.executable, "-m", "venv", *(["--without-pip"] if has_pip else []), path], cwd=path.parent),
       "python -m venv")
    python = path / "bin" / "python"
    purelib = ok(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=path.parent),
                 "venv purelib").strip()
    Path(purelib, "_aegis_test_outer_env.pth").write_text("\n".join(site_dirs()) + "\n")
    return python


def setuptools_version(python: Path | str) -> tuple[int, int]:
    out = ok(run([python, "-c", "import setuptools; print(setuptools.__version__)"], cwd=Path(tempfile.gettempdir())),
             "setuptools version")
    major, minor = re.match(r"(\d+)\.(\d+)", out.strip().splitlines()[-1]).groups()
    return int(major), int(minor)


def can_build_wheels_offline(python: Path | str) -> bool:
    """setuptools >= 70.1 builds wheels itself; older ones need the `wheel` package."""
    try:
        if setuptools_version(python) >= (70, 1):
            return True
    except AssertionError:
        return False
    return run([python, "-c", "import wheel"], cwd=Path(tempfile.gettempdir())).returncode == 0


def probe(argv_prefix: list[str], python: Path | str, cwd: Path) -> dict:
    """Run PROBE with `python`, behind argv_prefix (e.g. a shell that sources a setup file)."""
    script = cwd / "aegis_probe.py"
    script.write_text(PROBE)
    result = run([*argv_prefix, python, script], cwd=cwd)
    out = ok(result, "importing aegis from the install")
    found = json.loads(out.strip().splitlines()[-1])
    assert set(SOURCE_SUBPACKAGES) <= set(found["subpackages"]), f"install lacks {set(SOURCE_SUBPACKAGES) - set(found['subpackages'])}"
    return found


def resolved(path: str | Path) -> Path:
    return Path(path).resolve()


def assert_data_in_prefix(prefix: Path, source: Path) -> Path:
    """The ament index layout under prefix holds every shipped data file; returns share/aegis."""
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "aegis"
    share = prefix / "share" / "aegis"
    assert marker.is_file(), f"no ament index entry {marker}"
    assert (share / "package.xml").is_file()
    assert (share / "hw_configs" / "point_mass_sim.yaml").is_file()
    shipped = (
        ("hw_configs/*.yaml", "hw_configs"), ("launch/*.launch.py", "launch"), ("models/*.onnx", "models"),
        ("scenarios/*.yaml", "scenarios"), ("dynamics/*.yaml", "dynamics"),
    )
    for pattern, folder in shipped:
        for path in source.glob(pattern):
            assert (share / folder / path.name).is_file(), f"{path.name} not installed in {share / folder}"
    if any(source.glob("launch/*.launch.py")):
        assert (share / "launch").is_dir()
    return share


# --- pip -----------------------------------------------------------------------------------------


@dataclass
class PipInstall:
    venv: Path
    python: Path
    source: Path
    output: str = field(repr=False)
    returncode: int
    probe: dict = field(default_factory=dict, repr=False)


def pip_install(work: Path, name: str, *, editable: bool) -> PipInstall:
    base = work / name
    base.mkdir()
    source = copy_package(base / "aegis_src")
    python = make_venv(base / "venv")
    argv = [python, "-m", "pip", "install", "--no-deps"]
    if can_build_wheels_offline(python):
        argv.append("--no-build-isolation")
    argv += ["-e", source] if editable else [source]
    result = run(argv, cwd=base)
    install = PipInstall(base / "venv", python, source, result.stdout, result.returncode)
    if result.returncode == 0:
        (base / "probe").mkdir()
        install.probe = probe([], python, base / "probe")
    return install


def console_script_missing(venv: Path, name: str, pip_output: str) -> str:
    message = f"console script {name} not in {venv / 'bin'}"
    if (venv / "lib" / "aegis" / name).is_file():
        # pip < 25.3 with setuptools and wheel importable, and no pyproject.toml, installs editables
        # with legacy `setup.py develop`, which honours setup.cfg's [develop] script_dir (meant
        # for colcon --symlink-install). A pyproject.toml [build-system] table makes pip use PEP 660.
        message += f"; it is in {venv / 'lib' / 'aegis'}: pip ran legacy `setup.py develop`"
    return f"{message}\n{pip_output}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("install_modes")


@pytest.fixture(scope="module")
def pip_regular(work: Path) -> PipInstall:
    return pip_install(work, "pip", editable=False)


@pytest.fixture(scope="module")
def pip_editable(work: Path) -> PipInstall:
    return pip_install(work, "pip_editable", editable=True)


def test_pip_install(pip_regular: PipInstall) -> None:
    assert pip_regular.returncode == 0, f"pip install . failed:\n{pip_regular.output}"
    found, venv, source, output = pip_regular.probe, pip_regular.venv, pip_regular.source, pip_regular.output
    package = resolved(found["aegis"]).parent
    # The installed copy in the venv's site-packages, not the source tree nor /work/main.
    assert package.is_relative_to(venv.resolve()) and package.parent.name in ("site-packages", "dist-packages"), found
    assert resolved(found["controllers.pid"]) == package / "controllers" / "pid.py"
    assert resolved(found["nodes.pid"]) == package / "nodes" / "pid.py"
    assert not found["in_place_finder"]
    share = assert_data_in_prefix(venv, source)
    assert resolved(found["share_dir"]) == share.resolve()
    assert resolved(found["point_mass_sim"]) == (share / "hw_configs" / "point_mass_sim.yaml").resolve()
    assert set(EXECUTABLES) <= set(found["console_scripts"]), found["console_scripts"]
    for name in found["console_scripts"]:
        assert (venv / "bin" / name).is_file(), console_script_missing(venv, name, output)
    ok(run([venv / "bin" / "aegis", "--help"], cwd=venv), "aegis --help")


def test_pip_install_editable(pip_editable: PipInstall) -> None:
    assert pip_editable.returncode == 0, f"pip install -e . failed:\n{pip_editable.output}"
    found, venv, source, output = pip_editable.probe, pip_editable.venv, pip_editable.source.resolve(), pip_editable.output
    # The source files themselves, wherever setuptools' editable finder or the in-place finder
    # (legacy `setup.py develop`) found them.
    assert resolved(found["aegis"]) == source / "aegis" / "__init__.py", found
    assert resolved(found["controllers.pid"]) == source / "controllers" / "pid.py", found
    assert resolved(found["nodes.pid"]) == source / "nodes" / "pid.py", found
    # setuptools' editable wheels leave data_files out (editable_wheel asks the distribution for
    # has_data, which does not exist; has_data_files does), so share_dir() falls back to the
    # source tree; should a backend install them, they must be the ones found.
    if (venv / "share" / "aegis" / "package.xml").is_file():
        expected_share = assert_data_in_prefix(venv, source)
    else:
        expected_share = source
    assert resolved(found["share_dir"]) == expected_share.resolve()
    assert Path(found["point_mass_sim"]).is_file()
    assert set(EXECUTABLES) <= set(found["console_scripts"]), found["console_scripts"]
    for name in found["console_scripts"]:
        assert (venv / "bin" / name).is_file(), console_script_missing(venv, name, output)
    ok(run([venv / "bin" / "aegis", "--help"], cwd=venv), "aegis --help")


# --- colcon --------------------------------------------------------------------------------------


@dataclass
class ColconBuild:
    workspace: Path
    python: Path | str
    setuptools: tuple[int, int]
    output: str = field(repr=False)
    returncode: int
    probe: dict = field(default_factory=dict, repr=False)

    @property
    def source(self) -> Path:
        return self.workspace / "src" / "aegis"

    @property
    def prefix(self) -> Path:
        return self.workspace / "install" / "aegis"

    @property
    def in_place(self) -> bool:
        """Whether colcon could use `setup.py develop --editable` (setuptools < 80); newer ones make
        colcon fall back to a full install."""
        return self.setuptools < (80, 0)

    def sourced(self) -> list[str]:
        """argv prefix running a command in the environment of install/local_setup.sh."""
        setup = self.workspace / "install" / "local_setup.sh"
        return ["bash", "-c", f'. "{setup}" && exec "$@"', "in_workspace"]


def colcon_build(work: Path, name: str, *, symlink: bool, python: Path | str = sys.executable) -> ColconBuild:
    pytest.importorskip("colcon_core", reason="colcon-core is a test extra (pip install -e '.[test]')")
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to source colcon's install/local_setup.sh")
    workspace = work / name
    copy_package(workspace / "src" / "aegis")
    (workspace / "colcon_home").mkdir()  # no user defaults.yaml
    argv = [
        python, "-m", "colcon", "--log-base", workspace / "log", "build",
        "--base-paths", workspace / "src",
        "--build-base", workspace / "build",
        "--install-base", workspace / "install",
        "--event-handlers", "console_direct+",
    ]
    if symlink:
        argv.append("--symlink-install")
    result = run(argv, cwd=workspace, env=clean_env(COLCON_HOME=str(workspace / "colcon_home")))
    build = ColconBuild(workspace, python, setuptools_version(python), result.stdout, result.returncode)
    if result.returncode == 0:
        (workspace / "probe").mkdir()
        build.probe = probe(build.sourced(), python, workspace / "probe")
    return build


def check_colcon_build(build: ColconBuild, *, symlink: bool, probe_result: dict | None = None) -> None:
    assert build.returncode == 0, f"colcon build failed:\n{build.output}"
    found = probe_result if probe_result is not None else build.probe
    prefix, source = build.prefix, build.source.resolve()
    assert str(prefix) in found["ament_prefix_path"].split(os.pathsep), found["ament_prefix_path"]
    if symlink and build.in_place:
        # colcon put a symlink to src/aegis/aegis in build/aegis (first on PYTHONPATH); the mapped
        # subpackages come from beside it, through aegis/_source_layout.py's finder.
        assert Path(found["aegis"]) == build.workspace / "build" / "aegis" / "aegis" / "__init__.py", found
        assert resolved(found["aegis"]) == source / "aegis" / "__init__.py"
        assert resolved(found["controllers.pid"]) == source / "controllers" / "pid.py", found
        assert resolved(found["nodes.pid"]) == source / "nodes" / "pid.py", found
        assert found["in_place_finder"]
        installed = prefix / "share" / "aegis" / "hw_configs" / "point_mass_sim.yaml"
        assert installed.is_symlink() and installed.resolve() == source / "hw_configs" / "point_mass_sim.yaml"
    else:
        package = Path(found["aegis"]).parent
        assert package.is_relative_to(prefix) and not package.is_symlink(), found
        assert package.parent.name in ("site-packages", "dist-packages"), found
        assert Path(found["controllers.pid"]) == package / "controllers" / "pid.py", found
        assert Path(found["nodes.pid"]) == package / "nodes" / "pid.py", found
        assert not Path(found["controllers.pid"]).is_symlink()
        assert not found["in_place_finder"]
    share = assert_data_in_prefix(prefix, source)
    assert Path(found["share_dir"]) == share
    assert resolved(found["point_mass_sim"]) == (share / "hw_configs" / "point_mass_sim.yaml").resolve()
    # `ros2 run aegis <executable>` looks in lib/aegis.
    assert set(EXECUTABLES) <= set(found["console_scripts"]), found["console_scripts"]
    for name in found["console_scripts"]:
        script = prefix / "lib" / "aegis" / name
        assert script.is_file() and os.access(script, os.X_OK), f"{script} missing or not executable"
    ok(run([*build.sourced(), prefix / "lib" / "aegis" / "aegis", "--help"], cwd=build.workspace), "lib/aegis/aegis --help")


@pytest.fixture(scope="module")
def colcon_copy(work: Path) -> ColconBuild:
    return colcon_build(work, "colcon_ws", symlink=False)


@pytest.fixture(scope="module")
def colcon_symlink(work: Path) -> ColconBuild:
    return colcon_build(work, "colcon_symlink_ws", symlink=True)


def test_colcon_build(colcon_copy: ColconBuild) -> None:
    check_colcon_build(colcon_copy, symlink=False)


def test_colcon_build_symlink_install(colcon_symlink: ColconBuild) -> None:
    check_colcon_build(colcon_symlink, symlink=True)
    if colcon_symlink.in_place:
        assert "running develop" in colcon_symlink.output, colcon_symlink.output


def test_colcon_symlink_install_with_setuptools_older_than_80(colcon_symlink: ColconBuild, work: Path) -> None:
    """Legacy `setup.py develop` (setuptools < 80) does not install package_dir mappings: the
    in-place finder must supply aegis.controllers and aegis.nodes."""
    build = colcon_symlink
    if not build.in_place:
        venv = work / "old_setuptools_venv"
        python = make_venv(venv)
        installed = run([python, "-m", "pip", "install", "--no-deps", "setuptools<80"], cwd=work)
        if installed.returncode != 0:
            pytest.skip(f"setuptools<80 could not be installed (offline?):\n{installed.stdout}")
        build = colcon_build(work, "colcon_old_setuptools_ws", symlink=True, python=python)
    assert build.setuptools < (80, 0), build.setuptools
    assert build.in_place
    check_colcon_build(build, symlink=True)
    assert "running develop" in build.output, build.output


def test_colcon_symlink_install_beside_a_foreign_editable_install(
    colcon_symlink: ColconBuild, pip_editable: PipInstall
) -> None:
    """A developer's venv with `pip install -e` of another checkout runs a colcon workspace: that
    install's setuptools finder maps aegis.controllers and aegis.nodes to the other checkout, and
    must not win over the workspace's own subpackages."""
    assert pip_editable.returncode == 0, pip_editable.output
    assert colcon_symlink.returncode == 0, colcon_symlink.output
    found = probe(colcon_symlink.sourced(), pip_editable.python, colcon_symlink.workspace / "probe")
    other = pip_editable.source.resolve()
    for module in ("aegis", "controllers.pid", "nodes.pid"):
        assert not resolved(found[module]).is_relative_to(other), (module, found[module])
    check_colcon_build(colcon_symlink, symlink=True, probe_result=found)


# --- a fresh ROS 2 workspace with only what the docs say -----------------------------------------


def test_a_fresh_workspace_with_rosdep_versions_and_the_documented_pip_line_runs_aegis(work: Path) -> None:
    """What a ROS 2 user on Jazzy does: rosdep (emulated: pip pinned to the versions Ubuntu 24.04's keys in
    package.xml install), `pip install -r requirements-ros2.txt`, `colcon build --packages-select aegis`. In a
    venv that sees nothing of this environment: `aegis --help`, `aegis check`, a short `aegis sim` and a node
    executable (which, without a sourced ROS 2, says so in one line) all run from install/."""
    from test_ros2_dependencies import NOBLE_VERSIONS, ROSDEP_KEYS

    venv = work / "fresh_ros_venv"
    ok(run([sys.executable, "-m", "venv", venv], cwd=work), "python -m venv")
    python = venv / "bin" / "python"
    rosdep = [f"{name}=={NOBLE_VERSIONS[key]}" for name, key in ROSDEP_KEYS.items()]
    (work / "rosdep_noble.txt").write_text("\n".join(rosdep) + "\n")
    installed = run(
        [python, "-m", "pip", "install", "-q", *rosdep, "colcon-common-extensions",
         "-r", REPO / "requirements-ros2.txt", "-c", work / "rosdep_noble.txt"],
        cwd=work,
    )
    if installed.returncode != 0 and re.search(r"(?i)connection|network|resolve host|no matching distribution", installed.stdout):
        pytest.skip(f"the packages could not be downloaded (offline?):\n{installed.stdout[-2000:]}")
    ok(installed, "pip install (rosdep versions + requirements-ros2.txt + colcon)")
    workspace = work / "fresh_ros_ws"
    copy_package(workspace / "src" / "aegis")
    env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", COLCON_HOME=str(work / "fresh_colcon_home"))
    (work / "fresh_colcon_home").mkdir()
    ok(run(["colcon", "build", "--packages-select", "aegis"], cwd=workspace, env=env), "colcon build")
    sourced = ["bash", "-c", f'. "{workspace / "install" / "local_setup.sh"}" && exec "$@"', "in_workspace"]
    bin_dir = workspace / "install" / "aegis" / "lib" / "aegis"
    assert "COMMAND" in ok(run([*sourced, bin_dir / "aegis", "--help"], cwd=work, env=env), "aegis --help")
    assert "launch plan" in ok(run([*sourced, bin_dir / "aegis", "check", "point_mass_sim"], cwd=work, env=env), "aegis check")
    sim = ok(run([*sourced, bin_dir / "aegis", "sim", "quadrotor_sim", "--duration", "1", "--out", work / "fresh_sim"], cwd=work, env=env),
             "aegis sim")
    assert "Traceback" not in sim and json.loads((work / "fresh_sim" / "summary.json").read_text())["crashes"] == 0
    node = run([*sourced, bin_dir / "pid", "--hw-config", "point_mass_ros", "--node", "controller"], cwd=work, env=env)
    assert node.returncode == 2 and "Traceback" not in node.stdout
    assert node.stdout.startswith("pid: error: rclpy not found: source your ROS 2 installation"), node.stdout
