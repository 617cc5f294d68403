"""Installs the aegis ROS 2 package (ament_python): the Python package, its data files and executables."""

from __future__ import annotations

import ast
import os
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "aegis"

# controllers/ and nodes/ live at the repository root (the ROS 2 package root) but install as
# aegis.controllers and aegis.nodes. Only the subpackages are mapped: mapping 'aegis' itself
# breaks `colcon build --symlink-install`. aegis/_source_layout.py mirrors this table for
# in-place layouts (colcon --symlink-install, legacy `setup.py develop`); a test keeps them equal.
MAPPED_SUBPACKAGES = {"aegis.controllers": "controllers", "aegis.nodes": "nodes"}

# One executable per registered node type, found by `ros2 run aegis <name>` (setup.cfg puts scripts
# in lib/aegis); aegis/registry.py is the one list (read here with ast: setup.py must not import aegis).
def registered_node_types() -> list[str]:
    """The node type names of aegis/registry.py's NODE_TYPES, read without importing aegis."""
    tree = ast.parse((Path(__file__).resolve().parent / "aegis" / "registry.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "NODE_TYPES":
            return [key.value for key in node.value.keys]
    raise RuntimeError("aegis/registry.py has no NODE_TYPES")


NODE_EXECUTABLES = registered_node_types()


def mapped_packages() -> list[str]:
    """The mapped subpackages and every package inside their folders (aegis.controllers.cbf, ...)."""
    here = Path(__file__).resolve().parent
    packages = []
    for package, folder in MAPPED_SUBPACKAGES.items():
        packages += [package, *(f"{package}.{inner}" for inner in find_packages(str(here / folder)))]
    return packages


def mapped_package_dirs() -> dict[str, str]:
    """MAPPED_SUBPACKAGES as paths from the current directory to the folders beside this file.

    pip and `colcon build` run setup.py from its own folder, where this is MAPPED_SUBPACKAGES
    itself. `colcon build --symlink-install` runs `setup.py develop` from its build folder, into
    which it symlinks only setup.py, setup.cfg, top-level packages and data files: there the
    relative folders would not exist ("error: package directory 'controllers' does not exist").
    """
    here = os.path.dirname(os.path.realpath(__file__))
    return {name: os.path.relpath(os.path.join(here, folder)) for name, folder in MAPPED_SUBPACKAGES.items()}


def data_files() -> list[tuple[str, list[str]]]:
    share = f"share/{PACKAGE}"
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (share, ["package.xml"]),
        (f"{share}/launch", sorted(glob("launch/*.launch.py"))),
        (f"{share}/hw_configs", sorted(glob("hw_configs/*.yaml"))),
        (f"{share}/scenarios", sorted(glob("scenarios/*.yaml"))),
        (f"{share}/dynamics", sorted(glob("dynamics/*.yaml"))),
    ]
    models = sorted(p for p in glob("models/**/*", recursive=True) if not p.endswith("/") and "." in p.rsplit("/", 1)[-1])
    if models:
        files.append((f"{share}/models", models))
    return files


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time robot control stack: MPC, CBF safety filters and ONNX policies as ROS 2 nodes, tested in PyBullet",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[*find_packages(include=[PACKAGE, f"{PACKAGE}.*"]), *mapped_packages()],
    package_dir=mapped_package_dirs(),
    data_files=data_files(),
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6.0",
        "pydantic>=2.5",
        "rosbags>=0.11",
        "rich>=13.0",
        "pybullet>=3.2.5",
        "matplotlib>=3.7",
        "pillow>=9.1",  # `aegis sim --video x.gif` (aegis.runs.video_files); matplotlib needs it anyway
        "osqp>=1.0,<2",
        "clarabel>=0.11",
        "cvxpy>=1.5",
        "onnx>=1.17",
        "cobs>=1.2",  # the serial / UDP wire frame (aegis.transport.framing): COBS in C, no dependencies
        "onnxruntime>=1.19",  # on a Jetson, install NVIDIA's onnxruntime-gpu wheel after aegis (same module name)
    ],
    extras_require={
        "test": [
            "pytest>=7.4",
            "pytest-xdist>=3.5",  # `make test` spreads the tests over every core (-n auto --dist loadgroup)
            "hypothesis>=6.80",
            "catkin_pkg>=1.0",
            "lxml>=4.9",
            "colcon-core>=0.15",
            "colcon-ros>=0.4",
            "mcap>=1.1",
            "mcap-ros2-support>=0.5",
            "cvxpygen>=1.0",
            "scikit-build-core>=0.3",
            "pybind11>=2.8",
            "cmake>=3.18",
            "cyclonedds>=11.0.1,<12",
            "ray>=2.9",  # the cluster backend's tests: local and Ray campaigns give the same JSON
            "cma>=3.3",  # the adversarial search's tests
        ],
        "bench": ["pytest-benchmark>=4.0"],
        # `aegis eval --backend ray` (aegis.runs.backends): episodes on a Ray cluster (tested with 2.60)
        "cluster": ["ray>=2.9"],
        # `aegis eval --disturbance adversarial` (aegis.runs.adversarial): CMA-ES (tested with 4.5)
        "adversarial": ["cma>=3.3"],
        # aegis.transport: ROS 2's wire (DDS with ROS 2 names and CDR) between processes and to a ROS 2 graph, no rclpy;
        # below 12 because it writes and takes raw samples through cyclonedds._clayer, which is not a public API
        "dds": ["cyclonedds>=11.0.1,<12"],
        # cvxpygen's generated C for the safety filter's QP (needs a C/C++ compiler)
        "codegen": ["cvxpygen>=1.0", "scikit-build-core>=0.3", "pybind11>=2.8", "cmake>=3.18"],
        # `aegis train` (aegis.training.bc): behaviour cloning on the CPU; `make train-deps` pins the CPU wheel
        "train": ["torch>=2.2"],
        # `aegis sim --video x.mp4` (aegis.runs.video_files): H.264 through the ffmpeg binary this wheel carries
        "video": ["imageio-ffmpeg>=0.5"],
    },
    package_data={"aegis.export": ["c_templates/*.c", "c_templates/*.h", "c_templates/*.ld"]},
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "aegis = aegis.cli:main",
            *(f"{name} = aegis.nodes.executables:{name}" for name in NODE_EXECUTABLES),
            # hosts a whole process group of the launch plan (several nodes composed in one process)
            "aegis_process = aegis.nodes.executables:aegis_process",
        ],
    },
)
