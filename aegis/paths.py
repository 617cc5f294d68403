"""Where aegis's installed data lives (share/aegis: hw_configs, launch, models), in every install mode."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "aegis"


def share_dir() -> Path:
    """share/aegis of the install in use, or the source checkout when running from it.

    Order: the ament index (a sourced ROS 2 workspace: through ament_index_python, or read
    directly from AMENT_PREFIX_PATH when a colcon workspace was built without ROS installed), the
    prefix of this Python environment (pip install), then the source tree (editable installs and tests).
    """
    try:
        from ament_index_python.packages import get_package_share_directory  # type: ignore[import-not-found]

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - ament_index_python absent, or package not in the index
        pass
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        # The same lookup as ament_index_python's get_package_share_directory.
        if (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file():
            return Path(prefix) / "share" / PACKAGE
    prefix_share = Path(sys.prefix) / "share" / PACKAGE
    if (prefix_share / "package.xml").is_file():
        return prefix_share
    source_root = Path(__file__).resolve().parent.parent
    if (source_root / "package.xml").is_file():
        return source_root
    raise FileNotFoundError(f"cannot find share/{PACKAGE}: not in the ament index, {prefix_share}, nor a source checkout")


def shipped_config(name: str) -> Path:
    """A shipped hw_config by file name (``point_mass_sim.yaml``) or stem (``point_mass_sim``)."""
    file_name = name if name.endswith(".yaml") else f"{name}.yaml"
    return share_dir() / "hw_configs" / file_name
