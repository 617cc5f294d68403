"""`aegis sysid BAG [CONFIG] -o OVERLAY.yaml`: identify a robot's physical parameters from a recorded run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aegis.cli_options import UsageError, output_file, resolve_config_path

DEFAULT_CONFIGS = {"/cmd_motors": "quadrotor_classical_sim", "/cmd_wheels": "husky_oracle_sim"}
"""Without a CONFIG, the shipped one of the robot whose commands the bag recorded."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    sysid = sub.add_parser(
        "sysid",
        help="identify a robot's parameters from a bag and write them as a hw_config overlay",
        description="Fit the simulator's physics (rotor lag, thrust and torque coefficients, rotor drag, sensing and "
        "actuation latency, accelerometer bias) to a recorded run by least squares; print each parameter with its 95 %% "
        "confidence interval and whether the bag identified it; write the identified ones as a hw_config fragment "
        "(`aegis sim|eval --overlay FILE`).",
    )
    sysid.add_argument("bag", type=Path, help="bag folder (an `aegis sim` recording, or a robot's with /cmd_motors, /imu, /odom)")
    sysid.add_argument(
        "config", nargs="?", default=None,
        help="the robot's hw_config: its nominal values (default: quadrotor_classical_sim for a bag with /cmd_motors, "
        "husky_oracle_sim for one with /cmd_wheels)",
    )
    sysid.add_argument("-o", "--out", type=output_file, required=True, metavar="OVERLAY.yaml", help="the overlay to write")
    sysid.add_argument("--json", type=output_file, default=None, metavar="FILE", help="also write every estimate and the fit's numbers")
    sysid.add_argument(
        "--max-relative-ci", type=float, default=0.05, metavar="R",
        help="a parameter counts as identified when its 95 %% interval's half-width is at most R x its value (default: 0.05)",
    )
    sysid.set_defaults(handler=_cmd_sysid)


def _cmd_sysid(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from aegis.config import load_config
    from aegis.sysid.identify import identify, write_overlay
    from aegis.sysid.series import SysidError

    if not (args.bag / "metadata.yaml").is_file():
        raise UsageError(f"{args.bag}: not a bag folder (no metadata.yaml)")
    config = load_config(resolve_config_path(args.config or _default_config(args.bag)))
    try:
        result = identify(args.bag, config, args.max_relative_ci)
    except SysidError as exc:
        raise UsageError(str(exc)) from None
    write_overlay(result, args.out)
    table = Table(title=f"aegis sysid: {args.bag} ({result.details['samples']} ticks of {result.details['dt_s'] * 1e3:.3g} ms)")
    for column in ("parameter", "value", "± 95 %", "relative", "identified"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for name, e in result.estimates.items():
        absolute = name.endswith("latency_s") or name.startswith("imu.")  # judged by a tick, or in m/s^2: no relative width
        relative = "-" if absolute or not np.isfinite(e.ci95) else f"{100 * e.relative_ci:.2f} %"
        table.add_row(name.removeprefix("robot."), f"{e.value:.5g}", f"{e.ci95:.2g}", relative, "yes" if e.identified else "NO")
    console = Console()
    console.print(table)
    details = result.details
    condition = f"; condition number {details['condition_number']:.3g}" if "condition_number" in details else ""
    if "torque_limited_ticks" in details:
        condition += f"; {details['torque_limited_ticks']} torque-limited ticks left out"
    console.print(f"delay {details['delay_ticks']} ticks{condition}; jointly identifiable: {details['jointly_identifiable']}")
    missing = [name for name, e in result.estimates.items() if not e.identified]
    console.print(f"not identified (left out of the overlay): {', '.join(missing) if missing else 'none'}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_json(), indent=2, sort_keys=True))
    console.print(f"wrote {args.out}")
    return 0


def _default_config(bag: Path) -> str:
    """The shipped config of the robot whose commands ``bag`` recorded; UsageError when it has neither robot's."""
    from aegis.runs.bag import BagError, bag_info

    try:
        topics = {t["topic"] for t in bag_info(bag)["topics"]}
    except BagError as exc:
        raise UsageError(str(exc)) from None
    for topic, config in DEFAULT_CONFIGS.items():
        if topic in topics:
            return config
    raise UsageError(f"{bag}: neither /cmd_motors nor /cmd_wheels in the bag: give the robot's CONFIG")
