"""Processor in the loop: an exported policy (and the safety filter's QP) in a Cortex-M4F image under QEMU mps2-an386, fed and answered in wire frames on its UART.

:func:`build_pil_image` links the policy's C, optionally the filter QP's C (``aegis export filter-c``),
the wire frame's C (c_templates/aegis_wire.c) and a main (c_templates/mcu_wire_main.c) that reads frames
from UART0 and answers each observation with the policy's action and each QP problem with its
solution, and (with the float active-set QP) each one-frame tick (id 7: the observation and the rows) with the
action and the filtered command for it (id 8, aegis.inference.mcu_step_frame). :class:`~aegis.inference.mcu_session.PilSession`
(re-exported here) runs the image under QEMU and talks to it over its UART; :class:`~aegis.inference.mcu_session.McuQp`
is a filter solve path on it. :func:`config_pil_image` builds a config's image (`aegis export pil`, which
`aegis hil --mcu` runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aegis.export import templates
from aegis.export.exporter import ExportReport
from aegis.export.filter_check import solver_objects
from aegis.export.filter_dual import FilterDualExport
from aegis.export.filter_qp import FilterQpExport
from aegis.export.mcu import FOOTPRINT_FLAGS, McuImage, link_image, startup_source
from aegis.inference.mcu_step_frame import STEP_MAX_ROWS
from aegis.inference.mcu_session import McuQp, PilSession  # noqa: F401 - the session is the runtime's; re-exported for the PIL users
from aegis.export.wire_c import write_wire_sources


def build_pil_image(report: ExportReport, build_dir: str | Path, qp: FilterQpExport | FilterDualExport | None = None) -> McuImage:
    """The PIL image of ``report``'s policy (and of ``qp``, the filter's exported QP: cvxpygen's OSQP in double, or the
    float active-set solve of aegis.export.filter_dual): startup, policy, QP, wire frame, UART main."""
    directory = Path(build_dir)
    directory.mkdir(parents=True, exist_ok=True)
    wire_c, _ = write_wire_sources(directory)
    main = templates.write("mcu_wire_main.c", report.name, directory, qp=qp.name if qp is not None else "filter")
    dual = isinstance(qp, FilterDualExport)
    word = 4 if dual else 8
    max_payload = 64 if qp is None else word * (qp.spec.n_inputs * (1 + qp.spec.max_rows) + qp.spec.max_rows)
    if dual:  # the one-frame tick (id 7): a 4-byte head, the observation and the rows, as float32
        max_payload = max(max_payload, 4 + 4 * (report.input_size + STEP_MAX_ROWS * (qp.spec.n_inputs + 1)))
    flag = () if qp is None else ("-DAEGIS_PIL_DUAL",) if dual else ("-DAEGIS_PIL_QP",)
    extra = (*FOOTPRINT_FLAGS, f"-DAEGIS_WIRE_MAX_PAYLOAD={max(64, max_payload)}u", *flag)
    objects = solver_objects(qp, directory / "qp") if qp is not None and not dual else []
    includes = [report.source.parent, directory, *(qp.include_dirs if qp is not None else ())]
    sources = [startup_source(directory, io=False), main, wire_c, report.source, *(qp.sources if dual else ())]
    return link_image(directory / f"{report.name}_pil.elf", sources, includes, extra, objects)




def config_pil_image(config_path: Path, overrides: list[str], out_dir: str | Path) -> dict[str, Any]:
    """The PIL image of a config's policy node (``aegis export c``, contract applied) and its safety filter's QP (the float
    active-set solve, ``aegis export filter-c --solver active-set``), built into ``out_dir``; what `aegis export pil`
    prints and writes to ``out_dir``/image.json: the ELF, its sizes, the policy's input and output sizes.

    ExportError when the config has no policy node or no safety filter; ToolchainError when a tool fails.
    """
    from aegis.config import load_config
    from aegis.export.filter_config import config_filter
    from aegis.export.errors import ExportError
    from aegis.export.exporter import export_c
    from aegis.export.filter_dual import export_filter_dual
    from aegis.launch_plan import make_plan
    from aegis.nodes.policy import PolicyParams
    from aegis.registry import node_class

    plan = make_plan(load_config(config_path, overrides))
    policies = [(launch.name, node_class(launch.type_name).Params.model_validate(launch.params)) for launch in plan.nodes
                if issubclass(node_class(launch.type_name).Params, PolicyParams)]
    if not policies:
        raise ExportError(f"{config_path}: no policy node (the MCU runs a policy: use a config whose controller is one)")
    policy_node, params = policies[0]
    found = config_filter(config_path, overrides)
    out = Path(out_dir)
    report = export_c(params.model_path, out / "policy")
    qp = export_filter_dual(found["filter"].spec, out / "filter")
    image = build_pil_image(report, out / "build", qp)
    document = {
        "config": str(config_path),
        "policy_node": policy_node,
        "filter_node": found["node"],
        "model": str(params.model_path),
        "elf": str(image.elf.resolve()),
        "input_size": report.input_size,
        "output_size": report.output_size,
        "flash_bytes": image.sizes.flash,
        "ram_bytes": image.sizes.ram,
        "text_bytes": image.sizes.text,
        "data_bytes": image.sizes.data,
        "bss_bytes": image.sizes.bss,
    }
    (out / "image.json").write_text(json.dumps(document, indent=2) + "\n")
    return document
