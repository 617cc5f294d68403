"""torch is optional: aegis (training modules included) imports without it, and `aegis train` says how to get it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
import importlib.util
importlib.util.find_spec = lambda name, *a, _real=importlib.util.find_spec: None if name == "torch" else _real(name, *a)
import aegis.cli, aegis.training.pipeline, aegis.training.lipschitz, aegis.training.export
assert "torch" not in sys.modules
sys.exit(aegis.cli.main(["train", sys.argv[1], "--out", sys.argv[2]]))
"""


def test_aegis_imports_without_torch_and_train_names_the_extra(tmp_path: Path) -> None:
    config = REPO / "hw_configs" / "quadrotor_mpc_sim.yaml"
    run = subprocess.run([sys.executable, "-c", NO_TORCH, str(config), str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "aegis train needs torch (the [train] extra): pip install 'aegis[train]'" in run.stderr
    assert not (tmp_path / "m.onnx").exists()
