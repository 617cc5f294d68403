"""Training (aegis train): the Lipschitz projection holds, BC imitates, DAgger aggregates the learner's states, same seed same bytes.

Real parts throughout: the MPC expert and the policy node in the filtered chain, in PyBullet,
on tiny budgets (a few seconds of flight) so the suite stays fast. Needs torch (the [train] extra).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aegis.config import load_config  # noqa: E402
from aegis.inference.checks import expectation_from_config  # noqa: E402
from aegis.inference.contract import read_contract  # noqa: E402
from aegis.inference.observations import DEFAULT_OBSERVATIONS  # noqa: E402
from aegis.inference.runtime import PolicyRuntime  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.runs.policy_swap import policy_overrides  # noqa: E402
from aegis.training.bc import BcSettings, train_bc  # noqa: E402
from aegis.training.dataset import Dataset, imitation_error  # noqa: E402
from aegis.training.expert import expert_setup  # noqa: E402
from aegis.training.lipschitz import certified_bound, empirical_bound, forward, spectral_norms  # noqa: E402
from aegis.training.pipeline import TrainSettings, train  # noqa: E402
from aegis.training.rollout import run_episode  # noqa: E402
from aegis.training.scenarios import training_episodes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUADROTOR_EXPERT = REPO / "hw_configs" / "quadrotor_mpc_sim.yaml"


def tiny(out: Path, seed: int = 0) -> TrainSettings:
    """A whole pipeline on a budget of seconds: 3 demonstrations, 1 DAgger iteration of 2 rollouts, 3 s each."""
    return TrainSettings(
        config=QUADROTOR_EXPERT, out=out, seed=seed, episodes=3, iterations=1, dagger_episodes=2, validation_episodes=1,
        max_duration_s=3.0, bc=BcSettings(epochs=4), command=f"aegis train (tiny test budget) --seed {seed}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("tiny") / "policy.onnx"
    return train(tiny(out)), out


def test_projection_keeps_every_layer_within_its_bound_and_certified_covers_empirical() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 6))
    steep = np.tanh(x @ rng.standard_normal((6, 2)) * 5.0)  # a teacher far steeper than the bound allows
    settings = BcSettings(hidden=(32, 32), lipschitz=2.0, epochs=5)
    weights = train_bc(x, steep, settings, seed=0).weights
    norms = spectral_norms(weights)
    assert all(n <= settings.layer_bound for n in norms)
    assert max(norms) > 0.99 * settings.layer_bound  # the bound was active: the teacher pulled the weights up to it
    certified = certified_bound(weights)
    empirical = empirical_bound(weights, x, np.random.default_rng(1))
    assert certified <= settings.lipschitz
    assert empirical.gradient <= certified and empirical.ratio <= certified
    # in physical units too (normalisation gain in, action scale out)
    gain, scale = np.full(6, 3.0), np.array([8.0, 2.0])
    physical = empirical_bound(weights, x, np.random.default_rng(1), input_gain=gain, output_scale=scale)
    assert physical.value <= certified_bound(weights, input_gain=gain, output_scale=scale)


def plain_bc(inputs: np.ndarray, targets: np.ndarray, settings: BcSettings, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Behaviour cloning written the plain way (the loop train_bc had before its per-step overhead was cut): the specification."""
    from aegis.training.bc import PROJECTION_MARGIN, _mlp, project

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        y = torch.from_numpy(np.ascontiguousarray(np.clip(targets, -1.0, 1.0), dtype=np.float32))
        model = _mlp(torch, x.shape[1], settings.hidden, y.shape[1])
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        bound = settings.layer_bound * (1.0 - PROJECTION_MARGIN)
        project(linears, bound)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        steps = max(1, -(-len(x) // settings.batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs * steps)
        shuffle = torch.Generator().manual_seed(seed)
        for _ in range(settings.epochs):
            order = torch.randperm(len(x), generator=shuffle)
            for start in range(0, len(x), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                with torch.no_grad():
                    for layer in linears:
                        norm = torch.linalg.matrix_norm(layer.weight, ord=2)
                        if norm > bound:
                            layer.weight.mul_(bound / norm)
        return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("hidden", "n_in", "n_out", "batch_size"),
    [((64, 64), 12, 3, 256), ((48, 40), 7, 2, 100), ((64, 64), 12, 3, 10)],
    ids=["policy widths, one flat buffer", "odd widths, several buffers", "batch 10, slices off 64-byte boundaries"],
)
def test_bc_writes_bit_for_bit_the_weights_of_the_plain_loop(hidden: tuple[int, ...], n_in: int, n_out: int, batch_size: int) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((700, n_in))
    steep = np.tanh(x @ rng.standard_normal((n_in, n_out)) * 3.0)  # the projection scales layers on most steps
    settings = BcSettings(hidden=hidden, lipschitz=2.0, epochs=3, batch_size=batch_size)
    fast, plain = train_bc(x, steep, settings, seed=1).weights, plain_bc(x, steep, settings, seed=1)
    assert [(w.tobytes(), b.tobytes()) for w, b in fast] == [(w.tobytes(), b.tobytes()) for w, b in plain]
    assert max(spectral_norms(fast)) > 0.99 * settings.layer_bound  # the bound was active


def test_jacobians_match_finite_differences_and_one_pass_bounds_both_maps_as_two_calls_do() -> None:
    from aegis.training.lipschitz import empirical_bounds, jacobians

    rng = np.random.default_rng(3)
    weights = [(rng.standard_normal((16, 5)), rng.standard_normal(16)), (rng.standard_normal((16, 16)) * 0.3, rng.standard_normal(16)),
               (rng.standard_normal((2, 16)) * 0.3, rng.standard_normal(2))]  # fmt: skip
    x, step = rng.standard_normal((50, 5)), 1e-6
    numeric = np.stack([(forward(weights, x + step * e) - forward(weights, x - step * e)) / (2 * step) for e in np.eye(5)], axis=2)
    assert np.allclose(jacobians(weights, x), numeric, atol=1e-6)
    gain, scale = np.linspace(0.5, 3.0, 5), np.array([8.0, 2.0])
    network, physical = empirical_bounds(weights, x, np.random.default_rng(1), [(None, None), (gain, scale)], pairs=500)
    assert network == empirical_bound(weights, x, np.random.default_rng(1), pairs=500)
    assert physical == empirical_bound(weights, x, np.random.default_rng(1), pairs=500, input_gain=gain, output_scale=scale)


def test_bc_reduces_the_imitation_error_on_heldout_expert_data(tmp_path: Path) -> None:
    setup = expert_setup(QUADROTOR_EXPERT)
    train_eps = training_episodes("quadrotor", setup.config.scenario, 4, seed=0, stream=0, folder=tmp_path, max_duration_s=4.0)
    held_eps = training_episodes("quadrotor", setup.config.scenario, 2, seed=0, stream=1000, folder=tmp_path, max_duration_s=4.0)
    data = Dataset.concat([Dataset(e.observations, e.actions) for e in map(lambda ep: run_episode(setup, ep), train_eps)])
    held = Dataset.concat([Dataset(e.observations, e.actions) for e in map(lambda ep: run_episode(setup, ep), held_eps)])
    mean, std = data.normalization()

    def heldout_error(epochs: int) -> float:
        weights = train_bc((data.observations - mean) / std, data.actions / setup.action_scale, BcSettings(epochs=epochs), seed=0).weights
        predicted = np.clip(forward(weights, (held.observations - mean) / std) * setup.action_scale, -setup.action_limit, setup.action_limit)
        return imitation_error(predicted, held.actions, setup.action_limit)

    untrained, trained = heldout_error(0), heldout_error(80)
    assert trained < 0.5 * untrained


def test_dagger_aggregates_the_states_the_policy_node_visits(tiny_model, tmp_path: Path) -> None:
    report, model = tiny_model
    expert_round, dagger_round = report.iterations
    assert (expert_round.source, dagger_round.source) == ("expert", "policy")
    assert dagger_round.samples_added > 0
    assert dagger_round.samples_total == expert_round.samples_total + dagger_round.samples_added == report.samples
    # the learner's states, not the expert's: the same episode flown by the policy node goes elsewhere, labelled by the expert
    setup = expert_setup(QUADROTOR_EXPERT)
    episode = training_episodes("quadrotor", setup.config.scenario, 2, seed=3, stream=0, folder=tmp_path, max_duration_s=3.0)[1]
    by_expert = run_episode(setup, episode)
    takeover = tuple(policy_overrides(setup.config, model))
    by_policy = run_episode(setup, episode, takeover)
    assert len(by_policy.observations) == len(by_expert.observations) > 0
    assert not np.allclose(by_policy.observations, by_expert.observations, atol=1e-3)
    assert np.all(np.abs(by_policy.actions) <= setup.action_limit + 1e-6)  # expert labels, within the MPC's box


def test_same_seed_gives_the_same_bytes_with_rollouts_in_parallel_too(tiny_model, tmp_path: Path) -> None:
    from aegis.runs.backends import Backend

    report, first = tiny_model
    again = tmp_path / "again.onnx"
    settings = tiny(first)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert report.sha256 == digest
    parallel = train(TrainSettings(**{**settings.__dict__, "out": again, "backend": Backend("local", 2)}))  # rollouts in 2 processes
    assert hashlib.sha256(again.read_bytes()).hexdigest() == digest
    # the held-out episodes ran there while round 0 trained: the same episodes, the same numbers of every round
    assert parallel.heldout_samples == report.heldout_samples and parallel.iterations == report.iterations
    # where the time went: in this process when it ran the episodes itself, in the workers when they did
    serial_stages = {s.stage: s for s in report.stages}
    assert list(serial_stages)[:3] == ["set-up", "expert demonstrations", "held-out expert episodes"]
    assert list(serial_stages)[-1] == "export and bounds" and len(report.stages) == 7  # and training 0, DAgger 1, training 1
    assert serial_stages["expert demonstrations"].main_cpu_s > serial_stages["expert demonstrations"].workers_cpu_s
    parallel_stages = {s.stage: s for s in parallel.stages}
    assert parallel_stages["expert demonstrations"].workers_cpu_s > 0 and parallel_stages["DAgger 1: policy rollouts"].workers_cpu_s > 0
    assert parallel_stages["expert demonstrations"].main_cpu_s < parallel_stages["expert demonstrations"].workers_cpu_s
    other = tmp_path / "other.onnx"
    train(tiny(other, seed=1))
    assert hashlib.sha256(other.read_bytes()).hexdigest() != digest


def test_exported_contract_loads_in_the_runtime_and_the_policy_node(tiny_model) -> None:
    report, model = tiny_model
    contract = read_contract(model)
    assert contract.robot_kind == "quadrotor" and contract.control_rate_hz == 48.0 and contract.history_length == 1
    assert contract.observation_names == DEFAULT_OBSERVATIONS["quadrotor"]
    assert contract.action_names == ("acceleration",)
    assert contract.lipschitz_bound == pytest.approx(report.certified_bound)
    assert contract.producer.name == "aegis train" and contract.producer.expert == "quadrotor_mpc" and contract.producer.seed == 0
    scale, _, low, high = contract.action_affine()
    assert np.all(high == 8.0) and np.all(low == -8.0)  # the hw_config's max_accel_mps2, the MPC's box
    assert np.all(scale == 10.0)  # tanh's full range: 1.25 x the box, so the box is reached
    config = load_config(QUADROTOR_EXPERT)
    expected = expectation_from_config(config, 48.0, DEFAULT_OBSERVATIONS["quadrotor"], ("acceleration",))
    runtime = PolicyRuntime(model, expected=expected, warmup_calls=1)
    # the runtime computes what training's own forward pass does, in physical units
    mean, std = (np.concatenate([np.atleast_1d(getattr(f.normalization, k)) for f in contract.observation]) for k in ("mean", "std"))
    observation = mean + std * np.random.default_rng(0).standard_normal(contract.input_size)
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    tensors = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    weights = [(tensors[f"W{i}"], tensors[f"b{i}"]) for i in range(3)]
    expected_action = np.clip(forward(weights, ((observation - mean) / std)[None, :])[0] * 10.0, -8.0, 8.0)
    np.testing.assert_allclose(runtime.act(observation), expected_action, atol=1e-4)
    # and the policy node takes the expert's place in the config with it
    plan = make_plan(load_config(QUADROTOR_EXPERT, policy_overrides(config, model)))
    node = next(n for n in plan.instantiate() if n.name == "controller")
    assert node.contract == contract


def test_a_config_without_an_expert_is_refused_by_name() -> None:
    from aegis.training.expert import TrainingConfigError

    with pytest.raises(TrainingConfigError, match="quadrotor_oracle_sim.yaml: a training config needs exactly one expert node"):
        expert_setup(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", ("nodes.controller.type=quadrotor_position_controller",))


def test_aegis_train_writes_the_model_its_report_and_the_command_that_reproduces_it(tmp_path: Path, capsys) -> None:
    from aegis.cli import main

    out, report = tmp_path / "m.onnx", tmp_path / "report.json"
    args = ["train", str(QUADROTOR_EXPERT), "--out", str(out), "--seed", "3", "--iterations", "0", "--episodes", "2",
            "--validation-episodes", "1", "--max-duration", "2", "--epochs", "2", "--json", str(report)]  # fmt: skip
    assert main(args) == 0
    import json

    written = json.loads(report.read_text())
    assert written["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and written["seed"] == 3
    assert written["certified_bound"] >= max(written["empirical_gradient"], written["empirical_ratio"])
    stages, cores = written["stages"], written["cores"]  # the CPU count here (at most 15, the DAgger episodes of a stage)
    assert written["critical_path_s"] == pytest.approx(sum(max(s["main_cpu_s"], (s["main_cpu_s"] + s["workers_cpu_s"]) / cores) for s in stages), abs=1e-2)
    command = read_contract(out).producer.command
    assert command.startswith(f"aegis train {QUADROTOR_EXPERT} --out {out} --seed 3 --iterations 0 --episodes 2 ")
    printed = capsys.readouterr().out
    assert "sha256" in printed and f"estimated wall time on {cores} free core" in printed
    assert main(["train", str(REPO / "hw_configs" / "husky_oracle_sim.yaml"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "husky_oracle_sim.yaml: a training config needs exactly one expert node" in capsys.readouterr().err


def test_training_under_a_dynamics_set_centred_on_an_overlay_is_recorded_and_same_seed_same_bytes(tiny_model, tmp_path: Path) -> None:
    from aegis.sim.dynamics import resolve_dynamics
    from aegis.training.pipeline import plant_overrides_of

    _, nominal = tiny_model
    overlay = tmp_path / "identified.yaml"
    overlay.write_text("robot:\n  mass_kg: 0.03\n")  # an identified robot 11 % heavier than the config's 27 g
    settings = TrainSettings(**{**tiny(tmp_path / "robust.onnx").__dict__, "dynamics": "random", "overlay": overlay})
    # the overlay comes first (--set after it wins), the plant's dynamics set last; the expert is built from the same config
    overrides = plant_overrides_of(settings)
    assert overrides == ("robot.mass_kg=0.03", f"nodes.sim.params.dynamics={resolve_dynamics('random').resolve()}")
    assert expert_setup(QUADROTOR_EXPERT, overrides).config.robot.mass_kg == 0.03
    report = train(settings)
    first = settings.out.read_bytes()
    assert hashlib.sha256(first).hexdigest() != hashlib.sha256(nominal.read_bytes()).hexdigest()  # other plants, other data
    again = tmp_path / "again.onnx"
    train(TrainSettings(**{**settings.__dict__, "out": again}))
    assert again.read_bytes() == first
    producer = read_contract(settings.out).producer
    assert producer.dynamics["set"] == "random" and producer.dynamics["mass_scale"] == {"low": 0.7, "high": 1.3}
    assert producer.dynamics["motor_time_constant_scale"] == {"low": 1.0, "high": 2.0}
    assert producer.overlay == {"robot.mass_kg": 0.03}
    assert report.plant == {"dynamics": producer.dynamics, "overlay": producer.overlay}
    assert read_contract(nominal).producer.dynamics is None and read_contract(nominal).producer.overlay is None
    import onnx

    stamped = {p.key: p.value for p in onnx.load(str(nominal)).metadata_props}["aegis.contract"]
    assert '"dynamics"' not in stamped and '"overlay"' not in stamped  # a nominal policy keeps the bytes it had before them
    from aegis.inference.inspection import format_inspection, inspect_model

    shown = format_inspection(inspect_model(settings.out))
    assert "trained under dynamics random: mass_scale 0.7..1.3, " in shown and "trained centred on overlay robot.mass_kg=0.03" in shown


def test_aegis_train_refuses_a_bad_dynamics_set_or_overlay_in_one_line(tmp_path: Path, capsys) -> None:
    from aegis.cli import main

    base = ["train", str(QUADROTOR_EXPERT), "--out", str(tmp_path / "m.onnx")]
    assert main([*base, "--dynamics", "randon"]) == 2
    assert "randon: no such dynamics file, nor a shipped set; did you mean random?" in capsys.readouterr().err
    assert main([*base, "--overlay", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot:\n  mass_kgg: 0.03\n")
    assert main([*base, "--overlay", str(bad)]) == 2
    assert "mass_kgg" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_an_expert_episode_is_labelled_by_what_the_expert_proposed_which_a_fresh_expert_agrees_with(tmp_path: Path, monkeypatch) -> None:
    import aegis.training.rollout as rollout

    setup = expert_setup(QUADROTOR_EXPERT)
    episode = training_episodes("quadrotor", setup.config.scenario, 2, seed=5, stream=0, folder=tmp_path, max_duration_s=3.0)[1]
    proposed = run_episode(setup, episode)
    monkeypatch.setattr(rollout, "EXPERTS_ILL_POSED_AT_REST", frozenset({setup.type_name}))  # now a fresh expert is asked each state
    asked = run_episode(setup, episode)
    assert len(proposed.actions) == len(asked.actions) > 100
    np.testing.assert_array_equal(proposed.observations, asked.observations)  # the same run, the same states
    # the same answers up to the QP solver's tolerance (the two copies are warm-started from different histories)
    assert np.max(np.abs(proposed.actions - asked.actions)) < 0.01 * setup.action_limit[0]
    assert not np.array_equal(proposed.actions, np.zeros_like(asked.actions))


def test_a_privileged_expert_is_recorded_changes_the_labels_and_is_refused_for_an_expert_without_plant_parameters(
    tiny_model, tmp_path: Path, capsys
) -> None:
    from aegis.cli import main
    from aegis.inference.inspection import format_inspection, inspect_model

    _, nominal = tiny_model
    settings = TrainSettings(**{**tiny(tmp_path / "told.onnx").__dict__, "dynamics": "light", "privileged_expert": True})
    report = train(settings)
    untold = TrainSettings(**{**settings.__dict__, "out": tmp_path / "untold.onnx", "privileged_expert": False})
    train(untold)
    assert settings.out.read_bytes() != untold.out.read_bytes()  # the same plants, other labels
    again = TrainSettings(**{**settings.__dict__, "out": tmp_path / "again.onnx"})
    train(again)
    assert again.out.read_bytes() == settings.out.read_bytes()  # told too: same seed, same bytes
    assert read_contract(settings.out).producer.privileged_expert and not read_contract(nominal).producer.privileged_expert
    assert report.plant["privileged_expert"] is True
    assert "labelled by a privileged expert" in format_inspection(inspect_model(settings.out))
    husky = REPO / "hw_configs" / "husky_mpc_sim.yaml"
    assert main(["train", str(husky), "--out", str(tmp_path / "h.onnx"), "--privileged-expert"]) == 2
    err = capsys.readouterr().err
    assert "--privileged-expert: controller (diff_drive_mpc) has no parameters for the true plant" in err and len(err.strip().splitlines()) == 1
