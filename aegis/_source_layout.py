"""Finds aegis.controllers and aegis.nodes when aegis runs in place from its source layout.

In an installed wheel (pip install ., colcon build) the two subpackages are copied inside aegis/.
In-place layouts keep them beside aegis/ at the ROS 2 package root: `colcon build
--symlink-install` (it symlinks only top-level packages into its build folder), legacy
`setup.py develop` on setuptools < 80, and a bare source checkout on PYTHONPATH. There a
meta-path finder maps exactly these names to their folders, as setuptools' own editable
finder does; nothing else of the repository root becomes importable.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

# Mirrors MAPPED_SUBPACKAGES in setup.py (tests/test_packaging.py keeps the two equal).
MAPPED_SUBPACKAGES = {"aegis.controllers": "controllers", "aegis.nodes": "nodes"}


class _MappedSubpackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, folders: dict[str, Path]) -> None:
        self._folders = folders

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 - importlib protocol
        folder = self._folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def install_finder_if_in_place(package_dir: Path) -> bool:
    """Register the finder when the mapped subpackages are not inside ``package_dir``.

    ``package_dir`` is resolved through symlinks, so a colcon symlink build finds the source
    tree it points into. Returns whether a finder was installed.
    """
    real_dir = package_dir.resolve()
    root = real_dir.parent
    missing = {
        name: root / folder
        for name, folder in MAPPED_SUBPACKAGES.items()
        if not (real_dir / name.rsplit(".", 1)[1] / "__init__.py").is_file()
        and (root / folder / "__init__.py").is_file()
    }
    if not missing:
        return False
    if not any(isinstance(f, _MappedSubpackageFinder) for f in sys.meta_path):
        # First, not last: the subpackages must come from beside the aegis in use. An editable pip
        # install of another checkout in the same environment (a developer's venv that also runs
        # colcon) leaves setuptools' finder on sys.meta_path, and that finder maps these very names
        # to the other checkout's folders.
        sys.meta_path.insert(0, _MappedSubpackageFinder(missing))
    return True
