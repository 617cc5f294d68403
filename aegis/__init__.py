"""aegis: a real-time robot control stack whose nodes run under lockstep, realtime and ROS 2 executors."""

from pathlib import Path as _Path

from aegis._source_layout import install_finder_if_in_place as _install_finder_if_in_place

__version__ = "0.1.0"

_install_finder_if_in_place(_Path(__file__).parent)
