"""The shipped policies (models/): each file is the one its model card and its hw_config name, by sha256, with a training contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aegis.config import load_config

from aegis.config_files import sha256_of
from aegis.inference.contract import read_contract

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    # model: (the hw_config flying it under the filter, the expert it imitates)
    "quadrotor_tracking": ("quadrotor_oracle_sim.yaml", "quadrotor_mpc"),
    "quadrotor_tracking_robust": ("quadrotor_robust_sim.yaml", "quadrotor_mpc"),
    "husky_goal": ("husky_policy_sim.yaml", "diff_drive_mpc"),
}


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_config_and_file_agree(name: str) -> None:
    model = REPO / "models" / f"{name}.onnx"
    card = (REPO / "models" / f"{name}.md").read_text()
    digest = sha256_of(model)
    quoted = set(re.findall(r"\b[0-9a-f]{64}\b", card))
    assert quoted == {digest}, f"{name}.md quotes {sorted(quoted)}, the file's sha256 is {digest}"
    config_name, expert = SHIPPED[name]
    config = load_config(REPO / "hw_configs" / config_name)  # refuses a sha256 that does not match the file
    assert config.resolve(config.inference.model) == model.resolve() and config.inference.sha256 == digest
    contract = read_contract(model)
    assert contract.producer is not None and contract.producer.name == "aegis train" and contract.producer.expert == expert
    assert contract.producer.command in card  # the card's command is the one that made the file
    assert contract.lipschitz_bound is not None and f"{contract.lipschitz_bound:.5f}" in card  # the certified bound it quotes
