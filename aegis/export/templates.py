"""The C files shipped with the export (package data in c_templates/): host harness, Cortex-M4F startup and mains."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

TEMPLATES = ("aegis_wire.c", "aegis_wire.h", "filter_qp_main.c", "host_harness.c", "mcu_main.c", "mcu_startup.c", "mcu_wire_main.c", "mps2_an386.ld",
             "wire_host_main.c")


def render(template: str, name: str) -> str:
    """A template's text with ${name} (the policy's or the QP's C prefix) and ${NAME} (its macro prefix) filled in."""
    if template not in TEMPLATES:
        raise KeyError(f"no C template {template!r}; have {', '.join(TEMPLATES)}")
    text = resources.files("aegis.export").joinpath("c_templates").joinpath(template).read_text(encoding="ascii")
    return Template(text).substitute(name=name, NAME=name.upper())


def write(template: str, name: str, directory: Path) -> Path:
    path = directory / template
    path.write_text(render(template, name), encoding="ascii", newline="\n")
    return path
