"""The C files shipped with the export (package data in c_templates/): host harness, Cortex-M4F startup and mains."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

TEMPLATES = ("aegis_wire.c", "aegis_wire.h", "filter_dual.c", "filter_dual_main.c", "filter_qp_main.c", "host_harness.c", "mcu_main.c", "mcu_startup.c", "mcu_wire_main.c", "mps2_an386.ld",
             "wire_host_main.c")


def render(template: str, name: str, **names: str) -> str:
    """A template's text with ${name} (the policy's or the QP's C prefix) and ${NAME} (its macro prefix) filled in,
    and each further ``key=prefix`` as ${key} and ${KEY} (a template naming two exported parts)."""
    if template not in TEMPLATES:
        raise KeyError(f"no C template {template!r}; have {', '.join(TEMPLATES)}")
    text = resources.files("aegis.export").joinpath("c_templates").joinpath(template).read_text(encoding="ascii")
    extra = {key: value for name_key, prefix in names.items() for key, value in ((name_key, prefix), (name_key.upper(), prefix.upper()))}
    return Template(text).substitute(name=name, NAME=name.upper(), **extra)


def write(template: str, name: str, directory: Path, **names: str) -> Path:
    path = directory / template
    path.write_text(render(template, name, **names), encoding="ascii", newline="\n")
    return path
