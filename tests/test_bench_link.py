"""aegis bench link, briefly: every exchange between the two processes is answered, over each link and encoding, and the paced one's stages add up (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aegis.bench.link import exchange_row, targets
from aegis.bench.link_stages import STAGES, stage_times

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("kind", "encoding", "pace"), [("serial", "fixed", False), ("serial", "fixed", True), ("udp", "cdr", False)])
def test_every_sensor_frame_is_answered(kind: str, encoding: str, pace: bool) -> None:
    row = exchange_row(kind, encoding, pace, exchanges=20, rate_hz=200.0)
    assert row["exchanges"] == 20 and row["unanswered"] == 0
    assert (row["sensor_frame_bytes"], row["command_frame_bytes"]) == ((74, 38) if encoding == "fixed" else (746, 150))
    assert (row["wire_us"] is None) == (kind == "udp")


def test_the_command_line_writes_rows_and_the_target(tmp_path: Path) -> None:
    out = tmp_path / "link.json"
    done = subprocess.run([sys.executable, "-m", "aegis.cli", "bench", "link", "--link", "udp", "--exchanges", "10", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    assert "udp, fixed" in done.stdout
    document = json.loads(out.read_text())
    assert [row["name"] for row in document["rows"]] == ["udp, fixed", "udp, cdr"] and targets(document["rows"]) == []
    bad = subprocess.run([sys.executable, "-m", "aegis.cli", "bench", "link", "--exchanges", "0"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--exchanges: must be >= 1" in bad.stderr


def test_the_stages_add_up_to_the_round_trip_and_no_frame_is_written_early(tmp_path: Path) -> None:
    times = stage_times(20, rate_hz=200.0)
    assert list(times) == [*STAGES, "round trip"] and all(v.size == 20 for v in times.values())
    total = sum(times[name] for name in STAGES)
    assert np.allclose(total, times["round trip"], atol=0.01)  # µs: float rounding only
    assert np.allclose(times["sensor frame on the wire"], 74 * 10 / 921600 * 1e6) and np.allclose(times["command frame on the wire"], 38 * 10 / 921600 * 1e6)
    for name in ("transmitter late (sensor)", "transmitter late (command)", "pty hand-over (sensor)", "pty hand-over (command)"):
        assert (times[name] >= 0).all(), name  # written no earlier than its last byte left the UART, read after it was written
    out = tmp_path / "stages.json"
    done = subprocess.run([sys.executable, "-m", "aegis.cli", "bench", "link-stages", "--exchanges", "5", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    assert "pty hand-over (sensor)" in done.stdout and "load average" in done.stdout
    document = json.loads(out.read_text())
    assert [row["stage"] for row in document["stages"]] == [*STAGES, "round trip"] and len(document["load_average"]) == 2
