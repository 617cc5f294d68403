"""Smoke test of `aegis bench dds`: a tiny run prints every row and writes the JSON document (no timed asserts)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import pytest

from aegis.bench import dds
from aegis.bench.cli import BENCHMARKS

ROWS = ("two processes (DDS)", "two processes, round trip / 2", "two processes, transport only", "one process (DDS)", "in-memory handoff")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dds.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_without_cyclonedds_the_bench_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cyclonedds", None)
    for name in [m for m in sys.modules if m.startswith("cyclonedds.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit, match=r"aegis bench dds: .*pip install 'aegis\[dds\]'"):
        dds.run_from_args(parse("--duration", "0.1"))


def test_a_tiny_run_measures_every_row_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cyclonedds")
    assert "aegis.bench.dds" in {module for _, module, _, _ in BENCHMARKS}
    out = tmp_path / "dds.json"
    rows = dds.run_from_args(parse("--duration", "0.3", "--rate", "200", "--domain-id", str(100 + (os.getpid() + 25) % 100), "--json", str(out)))
    assert [row["name"] for row in rows] == list(ROWS)
    for row in rows:
        assert row["sent"] == 60 and 0 < row["delivered"] <= row["sent"], row
        assert math.isfinite(row["median_us"]) and row["p99_us"] >= row["median_us"] > 0, row
    document = json.loads(out.read_text())
    assert document["rate_hz"] == 200 and [r["name"] for r in document["rows"]] == list(ROWS)
    (target,) = document["targets"]
    assert target["goal"] == "<= 150 µs" and target["value"] == rows[0]["median_us"]
    assert "cyclonedds" in document["machine"]
    printed = capsys.readouterr().out
    assert "two processes (DDS)" in printed and "target one-way median" in printed
