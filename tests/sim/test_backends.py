"""Campaign backends: the local pool and a Ray instance started by the test give the same eval JSON; bad backends are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis.cli import main
from aegis.runs.backends import Backend, BackendError, check_address, chunk_size, chunks, run_jobs

WALL_CLOCK = ("real_time_factor", "policy_latency_us")
"""Row keys measured on the wall clock: they differ between any two runs, on one backend too."""


def _document(path: Path) -> str:
    result = json.loads(path.read_text())
    result["episodes"] = [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in result["episodes"]]
    return json.dumps(result, indent=2)


def _square(x: int) -> int:
    return x * x


def test_chunks_cover_every_job_in_order() -> None:
    jobs = [(i,) for i in range(7)]
    assert chunk_size(7, 2) == 2 and chunk_size(3, 8) == 1 and chunk_size(100, 2) == 25
    assert [job for chunk in chunks(jobs, 3) for job in chunk] == jobs
    assert [len(chunk) for chunk in chunks(jobs, 3)] == [3, 3, 1]


def test_local_backend_returns_results_in_job_order_and_reports_each() -> None:
    seen: list[int] = []
    assert run_jobs(_square, [(i,) for i in range(5)], Backend("local", 2), seen.append) == [0, 1, 4, 9, 16]
    assert sorted(seen) == [0, 1, 4, 9, 16]


def test_an_address_nobody_answers_at_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BackendError, match="no Ray cluster answers there"):
        check_address("127.0.0.1:1")
    with pytest.raises(BackendError, match="expected HOST:PORT"):
        check_address("nowhere")
    code = main(["eval", "--episodes", "1", "--duration", "1", "--backend", "ray", "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no Ray cluster answers there" in err and len(err.splitlines()) == 1
    assert main(["eval", "--episodes", "1", "--duration", "1", "--address", "127.0.0.1:1"]) == 2  # --address without ray
    assert "--backend ray" in capsys.readouterr().err


def test_ray_and_local_backends_write_the_same_eval_json(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="pip install 'aegis[cluster]'")
    common = ["eval", "quadrotor_oracle_sim", "--episodes", "3", "--duration", "1.5", "--seed", "7", "--workers", "2"]
    assert main([*common, "--json", str(tmp_path / "local.json")]) == 0
    assert main([*common, "--backend", "ray", "--json", str(tmp_path / "ray.json")]) == 0  # a Ray instance of its own, 2 CPUs
    assert _document(tmp_path / "ray.json") == _document(tmp_path / "local.json")
    rows = json.loads((tmp_path / "ray.json").read_text())["episodes"]
    assert [row["seed"] for row in rows] == [7, 8, 9] and len({row["randomization"]["mass_scale"] for row in rows}) == 3


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` raises ImportError
    assert main(["eval", "--episodes", "1", "--duration", "1", "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'aegis[cluster]'" in err and len(err.splitlines()) == 1
