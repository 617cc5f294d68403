"""The cascade's gain signal: a head on a trained cheap depth-sector model that predicts, per sector, how much the large model helps.

Issue 13's cascade must find the few sectors where the large model's answer is much nearer the
truth than the cheap one's (on the validation frames an oracle needs it on 0.5 % of the sectors)
and the cheap model's sigma ranks them loosely (correlation 0.15 with that gain). This trains what
does rank them: a small head on the cheap network's own column features (both its hidden layers,
frozen: its range and sigma stay exactly as they were) -> conv 1x3 (16) -> 1x1 (1) per column, a
sector the max of its band, regressed (mean squared error, so its prediction is the expected gain)
on the target :func:`gain_target`, |cheap range - label| - |large range - label| per sector (m),
clipped to [:data:`GAIN_CLIP_M`]. The frames are a stream of their own (``seed`` +
:data:`GAIN_SEED_OFFSET`: neither the frames the two models were fitted on, where the gain is
not what it is on new frames, nor the validation frames the threshold is chosen on, nor the held-out
ones), with their mirror images; the targets are the ONNX files' own answers.

The threshold: on the VALIDATION frames, the largest predicted gain whose cascade (the large answer
on every sector above it) keeps the mean error within training's 2 mm of the large model's
(:func:`aegis.training.depth_train.choose_threshold`'s criterion on these scores), or with
``--criteria depth_eval`` the largest that meets depth_eval's own two (3 mm and 1 point). The output is a
cheap model file with three action fields (range, sigma, gain) and its :class:`SectorSpec` marked
``cascade_gain`` (the cascade's "gain" rule), next to copies of the large and window models:

    python -m aegis.training.depth_gain --out DIR [--models-dir DIR] [--robot husky] [--seed 0]

Same seed, same weights (one thread, deterministic algorithms, seeded shuffles). The shipped Husky cheap model is
such a file (models/husky_depth_cheap.md): a head is trained on a PLAIN cheap model, so ``--models-dir`` is then the
folder ``aegis train-depth`` wrote (a cheap model that already has a head is refused).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GAIN_SEED_OFFSET = 3000
"""The gain head's training frames: their own stream (the pipeline's train, validation and held-out ones are + 0, 1000, 2000)."""
GAIN_CLIP_M = (-1.0, 2.0)
"""The regression target's range (m): a few sectors' gains are metres (a missed obstacle), which would otherwise dominate the loss."""
HIDDEN = 16


def gain_target(cheap_ranges: np.ndarray, large_ranges: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The large model's gain per sector (m): how much nearer the truth its range is than the cheap one's (negative where it is worse)."""
    return np.abs(cheap_ranges - labels) - np.abs(large_ranges - labels)


def choose_gain_threshold(gains: np.ndarray, cheap_ranges: np.ndarray, large_ranges: np.ndarray, labels: np.ndarray, tolerance_m: float | None = None) -> float:
    """The largest predicted-gain threshold (to 4 decimals, fewest sectors refined) whose cascade error is within ``tolerance_m``
    (default: training's 2 mm) of the large model's: the large answer on every sector whose predicted gain is above it."""
    from aegis.training.depth_train import TOLERANCE_M, accuracy

    target = accuracy(large_ranges, labels)["mae_m"] + (TOLERANCE_M if tolerance_m is None else tolerance_m)
    for threshold in np.unique(np.round(gains, 4))[::-1]:
        if accuracy(np.where(gains > threshold, large_ranges, cheap_ranges), labels)["mae_m"] <= target:
            return float(threshold)
    return float(np.round(gains, 4).min()) - 1e-4  # nothing less than every sector: refine them all


def gain_network(torch: Any, cheap: Any) -> Any:
    """The cheap network (frozen, the same modules) with a gain head: flat image (B, H*W) -> (B, 3K): ranges, sigmas (as the cheap
    network's), then each sector's predicted gain (m)."""
    from aegis.training.depth_dataset import MAX_RANGE_M, SECTORS
    from aegis.training.depth_train import MIN_SIGMA_M

    nn = torch.nn
    for parameter in cheap.parameters():
        parameter.requires_grad_(False)
    first, second = cheap.columns[0], cheap.columns[2]
    channels = first.out_channels + second.out_channels

    class GainNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.columns = cheap.columns
            self.register_buffer("bearing", cheap.bearing.clone())
            self.view = nn.Sequential(nn.Conv2d(2, HIDDEN, (self.height_of(first), 1)), nn.ReLU())  # the head's own look at each column
            self.gain = nn.Sequential(
                nn.Conv2d(channels + HIDDEN, HIDDEN, (1, 3), padding=(0, 1)), nn.ReLU(),
                nn.Conv2d(HIDDEN, HIDDEN, (1, 3), padding=(0, 1)), nn.ReLU(), nn.Conv2d(HIDDEN, 1, 1),
            )
            self.band, self.height, self.width = cheap.band, cheap.bearing.shape[2], cheap.bearing.shape[3]
            self.repeat = cheap.band * SECTORS // self.width  # each of the network's columns stands for this many of the camera's

        @staticmethod
        def height_of(conv: Any) -> int:
            return conv.kernel_size[0]

        def forward(self, x: Any) -> Any:
            height, width, band = self.height, self.width, self.band
            image = x.reshape(-1, 1, height, width)
            both = torch.cat([image, self.bearing.expand(image.shape[0], 1, height, width)], dim=1)
            h1 = self.columns[1](self.columns[0](both))
            h2 = self.columns[3](self.columns[2](h1))
            out = torch.cat([self.columns[4](h2), self.gain(torch.cat([h1, h2, self.view(both)], dim=1))], dim=1)[:, :, 0, :]  # (B, 3, W)
            repeat = self.repeat
            if repeat > 1:
                out = out.unsqueeze(-1).expand(-1, -1, -1, repeat).reshape(out.shape[0], 3, out.shape[2] * repeat)
            ranges = torch.sigmoid(out[:, 0, :]) * MAX_RANGE_M
            sigmas = torch.nn.functional.softplus(out[:, 1, :]) + MIN_SIGMA_M
            pool = torch.nn.functional.max_pool1d
            return torch.cat(
                [-pool(-ranges.unsqueeze(1), band)[:, 0, :], pool(sigmas.unsqueeze(1), band)[:, 0, :], pool(out[:, 2:3, :], band)[:, 0, :]], dim=1
            )

    return GainNet()


def train_gain(
    network: Any, inputs: np.ndarray, targets: np.ndarray, seed: int, epochs: int = 30, batch_size: int = 64, learning_rate: float = 3e-3,
    progress: Callable[[int, float], None] | None = None,
) -> Any:
    """Fit ``network``'s gain head (:func:`gain_network`) to ``targets`` (N, K) m on ``inputs`` (N, pixels, normalised) and their mirror
    images (the sectors reversed), mean squared error of the clipped target; the rest of the network is frozen."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        height, width = network.height, network.width
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        y = torch.from_numpy(np.clip(targets, *GAIN_CLIP_M).astype(np.float32))
        x = torch.cat([x, x.reshape(-1, height, width).flip(2).reshape(len(x), -1)])
        y = torch.cat([y, y.flip(1)])
        sectors = y.shape[1]
        head = [*network.view.parameters(), *network.gain.parameters()]
        optimiser = torch.optim.Adam(head, lr=learning_rate)
        steps = max(1, -(-len(x) // batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs * steps))
        shuffle = torch.Generator().manual_seed(seed)
        network.train()
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=shuffle)
            total = 0.0
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                predicted = network(x[batch])[:, 2 * sectors :]
                loss = ((predicted - y[batch]) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                total += float(loss.detach()) * len(batch)
            if progress is not None:
                progress(epoch + 1, total / len(x))
    finally:
        torch.set_num_threads(threads)
    return network.eval()


def export_gain_model(network: Any, cheap_path: Path, path: Path, threshold: float, command: str, seed: int, notes: str, lean: bool = True) -> Path:
    """Write the cheap network with its gain head as ONNX: the cheap file's contract with a third action field ``gain`` and its
    :class:`SectorSpec` with the gain rule's threshold (``cascade_gain``), the producer this command."""
    import dataclasses
    import math

    import aegis
    from aegis.inference.contract import ActionField, Producer, read_contract
    from aegis.inference.depth_model import read_sector_spec
    from aegis.training.depth_train import _save

    contract = read_contract(cheap_path)
    sectors = contract.action[0].size
    gain = ActionField(
        name="gain", size=sectors, unit="m", low=-math.inf, high=math.inf,
        description="predicted gain of the large model per sector: |this range's error| - |the large model's| (the cascade's gain rule)",
    )
    contract = contract.model_validate({
        **contract.model_dump(), "action": [*(f.model_dump() for f in contract.action), gain.model_dump()],
        "producer": Producer(name="aegis depth_gain", version=aegis.__version__, command=command, seed=seed, notes=notes).model_dump(),
        "description": contract.description + ", and the large model's predicted gain per sector (the cascade's escalation signal)",
    })
    spec = dataclasses.replace(read_sector_spec(cheap_path), cascade_sigma_threshold_m=threshold, cascade_relative=False, cascade_gain=True)
    _save(network, contract.input_size, path, contract, spec)
    if lean:  # the cascade's every-frame stage: its lean graph, as aegis train-depth writes its cheap model
        import onnx

        onnx.save(lean_gain_model(network, path), str(path))
    return path


def gain_from_onnx(path: Path, rig: Any = None) -> Any:
    """The torch network (:func:`gain_network`) with the weights of a gain model's EXPORTED (not lean) ONNX file, by initializer name."""
    import onnx
    import torch
    from onnx import numpy_helper

    from aegis.training.depth_dataset import MAX_RANGE_M, RIGS, SECTORS
    from aegis.training.depth_train import _network

    camera = (rig or RIGS["husky"]).camera
    network = gain_network(torch, _network(torch, "cheap", camera.height_px // 2, camera.width_px // 2, SECTORS, MAX_RANGE_M, camera))
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(str(path)).graph.initializer}
    network.load_state_dict(weights, strict=True)
    return network.eval()


def lean_gain_model(network: Any, path: Path) -> Any:
    """The lean graph (as aegis.training.depth_lean's, the same answers in fewer nodes) of a cheap model with its gain head, written by
    :func:`export_gain_model` at ``path``: one convolution over each column for both the cheap network's first layer and the head's own
    look (they read the same column), the bearing's share of it one row added, the sectors pooled before the activations; an onnx ModelProto."""
    import onnx
    from onnx import helper

    from aegis.inference.depth_model import read_sector_spec
    from aegis.training.depth_lean import _bearing_map, rebuilt
    from aegis.training.depth_train import MIN_SIGMA_M

    spec = read_sector_spec(path)
    exported = onnx.load(str(path))

    def array(t: Any) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)

    cols, view, head = network.columns, network.view[0], network.gain
    height, width, band = network.height, network.width, spec.width_px // spec.sectors
    first = [(s * band) // spec.factor for s in range(spec.sectors)]
    span = {((s + 1) * band - 1) // spec.factor - first[s] + 1 for s in range(spec.sectors)}
    if len(span) != 1:
        raise ValueError(f"{path}: the sectors cover unequal numbers of the model's columns ({sorted(span)}): no one pooling window")
    w0 = np.concatenate([array(cols[0].weight), array(view.weight)])  # (32 + HIDDEN, 2, H, 1): both read the column and its bearing
    b0 = np.concatenate([array(cols[0].bias), array(view.bias)])
    c1, cv = cols[0].out_channels, view.out_channels
    bearing = array(network.bearing).reshape(height, width)
    w2 = np.concatenate([array(cols[2].weight), np.zeros((cols[2].out_channels, cv, 1, 3), np.float32)], axis=1)  # the view's channels unread
    g1 = array(head[0].weight)  # reads (h1, h2, view); the graph's concat is (h1, view, h2)
    g1 = np.concatenate([g1[:, :c1], g1[:, c1 + cols[2].out_channels :], g1[:, c1 : c1 + cols[2].out_channels]], axis=1)
    w4, b4 = array(cols[4].weight).copy(), array(cols[4].bias).copy()
    w4[0], b4[0] = -w4[0], -b4[0]  # the range logits negated: one MaxPool takes each band's least range logit, largest sigma and gain
    inits = {
        "image_shape": np.array([1, 1, height, width], np.int64), "w0": np.ascontiguousarray(w0[:, :1]), "b0": b0,
        "bearing_share": _bearing_map(w0[:, 1:], bearing, [0, 0, 0, 0])[None], "w2": w2, "b2": array(cols[2].bias),
        "g1": g1, "gb1": array(head[0].bias), "g2": array(head[2].weight), "gb2": array(head[2].bias), "g3": array(head[4].weight),
        "gb3": array(head[4].bias), "w4": w4, "b4": b4, "sector_first": np.array(first, np.int64),
        "max_range": np.array(spec.max_range_m, np.float32), "min_sigma": np.array(MIN_SIGMA_M, np.float32),
        "pooled_shape": np.array([3, 1, width], np.int64), "out_shape": np.array([1, 3 * spec.sectors], np.int64),
    }
    node, row = helper.make_node, [0, 1, 0, 1]
    nodes = [
        node("Reshape", ["depth", "image_shape"], ["image"]), node("Conv", ["image", "w0", "b0"], ["conv0"]),
        node("Add", ["conv0", "bearing_share"], ["pre0"]), node("Relu", ["pre0"], ["a0"]),
        node("Conv", ["a0", "w2", "b2"], ["conv2"], pads=row), node("Relu", ["conv2"], ["h2"]),
        node("Concat", ["a0", "h2"], ["features"], axis=1),
        node("Conv", ["features", "g1", "gb1"], ["convg1"], pads=row), node("Relu", ["convg1"], ["ag1"]),
        node("Conv", ["ag1", "g2", "gb2"], ["convg2"], pads=row), node("Relu", ["convg2"], ["ag2"]),
        node("Conv", ["ag2", "g3", "gb3"], ["gain_columns"]), node("Conv", ["h2", "w4", "b4"], ["range_sigma_columns"]),
        node("Concat", ["range_sigma_columns", "gain_columns"], ["columns"], axis=1),
        node("Reshape", ["columns", "pooled_shape"], ["logits"]), node("MaxPool", ["logits"], ["pooled"], kernel_shape=[span.pop()]),
        node("Gather", ["pooled", "sector_first"], ["sector_logits"], axis=2),
        node("Split", ["sector_logits"], ["neg_range_logit", "sigma_logit", "gain"], axis=0),
        node("Neg", ["neg_range_logit"], ["range_logit"]), node("Sigmoid", ["range_logit"], ["range_unit"]),
        node("Mul", ["range_unit", "max_range"], ["range"]), node("Softplus", ["sigma_logit"], ["sigma_soft"]),
        node("Add", ["sigma_soft", "min_sigma"], ["sigma"]), node("Concat", ["range", "sigma", "gain"], ["all"], axis=2),
        node("Reshape", ["all", "out_shape"], [exported.graph.output[0].name]),
    ]
    return rebuilt(exported, nodes, inits, "depth_sectors_gain")


def run(models_dir: Path, out_dir: Path, seed: int = 0, frames: int = 3000, validation_frames: int = 400, epochs: int = 30, robot: str = "husky",
        command: str = "", say: Callable[[str], None] = lambda line: None, criteria: str = "training") -> dict[str, Any]:
    """Everything in the module docstring; the report (threshold, validation shares, correlations, files)."""
    import torch

    from aegis.inference.depth_model import DepthSectorModel
    from aegis.training.depth_dataset import MAX_RANGE_M, RIGS, generate
    from aegis.training.depth_pipeline import SEED_OFFSETS, model_paths
    from aegis.training.depth_train import ARCHITECTURES, inputs_of, network_from_onnx

    started = time.perf_counter()
    rig = RIGS[robot]
    paths, out = model_paths(models_dir, robot), model_paths(out_dir, robot)
    if out["cheap"].resolve() == paths["cheap"].resolve():  # the head's first export would overwrite the plain model it reads
        raise ValueError(f"--out {out_dir}: the folder of the plain cheap model the head is trained on; write into another folder")
    cheap, large = DepthSectorModel(paths["cheap"]), DepthSectorModel(paths["large"])
    if cheap.has_gain:
        raise ValueError(
            f"{paths['cheap']}: already has a gain head; the head is trained on "
            "a plain cheap model: give --models-dir the folder aegis train-depth wrote"
        )

    def answers(model: DepthSectorModel, data: Any, with_gain: bool = False) -> np.ndarray:
        call = model.predict_with_gain if with_gain else model.predict
        return np.array([np.concatenate(call(depth)) for depth in data.depth])

    data = generate(frames, seed + GAIN_SEED_OFFSET, rig=rig)
    say(f"rendered {frames} gain frames")
    k = data.ranges.shape[1]
    targets = gain_target(answers(cheap, data)[:, :k], answers(large, data)[:, :k], data.ranges)
    torch.manual_seed(seed)  # the head's initial weights
    network = gain_network(torch, network_from_onnx(paths["cheap"], "cheap", rig))
    inputs = inputs_of(data, ARCHITECTURES["cheap"]) / np.float32(MAX_RANGE_M)
    train_gain(network, inputs, targets, seed, epochs=epochs, progress=lambda e, loss: say(f"gain head: epoch {e}/{epochs}, loss {loss:.4f}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("large", "window"):
        if paths[name].resolve() != out[name].resolve():
            shutil.copyfile(paths[name], out[name])
    notes = f"gain head trained on {frames} frames of stream seed+{GAIN_SEED_OFFSET} (seed {seed}), threshold picked on {validation_frames} validation frames"
    export_gain_model(network, paths["cheap"], out["cheap"], 0.0, command, seed, notes)  # the threshold, from the file's own answers, next
    validation = generate(validation_frames, seed + SEED_OFFSETS["validation"], rig=rig)
    with_gain = DepthSectorModel(out["cheap"])
    val = answers(with_gain, validation, with_gain=True)
    val_large = answers(large, validation)[:, :k]
    if criteria == "depth_eval":  # the target's own two criteria (3 mm, 1 point) on the validation frames
        from aegis.training.depth_cascade_profile import eval_threshold

        threshold = eval_threshold(val[:, 2 * k :], val[:, :k], val_large, validation.ranges, None)
        if threshold is None:
            raise ValueError("no gain threshold meets depth_eval's criteria on the validation frames")
    else:
        threshold = choose_gain_threshold(val[:, 2 * k :], val[:, :k], val_large, validation.ranges)
    export_gain_model(network, paths["cheap"], out["cheap"], threshold, command, seed, notes)
    refined = val[:, 2 * k :] > threshold
    truth = gain_target(val[:, :k], val_large, validation.ranges)
    report = {
        "robot": robot, "seed": seed, "frames": {"gain": frames, "validation": validation_frames}, "threshold_m": threshold,
        "validation": {"sectors_refined": float(refined.mean()), "frames_refined": float(refined.any(axis=1).mean()),
                       "gain_correlation": float(np.corrcoef(val[:, 2 * k :].ravel(), truth.ravel())[0, 1]),
                       "frame_gain_correlation": float(np.corrcoef(val[:, 2 * k :].sum(axis=1), truth.sum(axis=1))[0, 1])},
        "files": {name: str(path) for name, path in out.items()}, "wall_time_s": time.perf_counter() - started,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    from aegis.training.depth_cli import ROBOTS

    parser = argparse.ArgumentParser(prog="python -m aegis.training.depth_gain", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="folder of ROBOT_depth_{cheap,large,window}.onnx (default: the shipped models)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the cheap model with its gain head and copies of the large and window models")
    parser.add_argument("--robot", choices=ROBOTS, default="husky")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=3000, help="the gain head's training frames (default: 3000)")
    parser.add_argument("--validation-frames", type=int, default=400, help="frames the threshold is picked on (default: 400, as aegis train-depth)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--criteria", choices=("training", "depth_eval"), default="training",
        help="the threshold on the validation frames: the largest keeping the error within 2 mm of the large model's (training, as aegis "
        "train-depth), or the largest meeting depth_eval's two criteria, 3 mm and 1 point (default: training)",
    )
    args = parser.parse_args(argv)
    from aegis.paths import share_dir

    given_models = [f"--models-dir={args.models_dir}"] if args.models_dir is not None else []
    command = "python -m aegis.training.depth_gain " + shlex.join(
        given_models + [f"--out={args.out}", f"--robot={args.robot}", f"--seed={args.seed}", f"--frames={args.frames}",
         f"--validation-frames={args.validation_frames}", f"--epochs={args.epochs}"] + ([f"--criteria={args.criteria}"] if args.criteria != "training" else [])
    )
    try:
        report = run(args.models_dir or share_dir() / "models", args.out, args.seed, args.frames, args.validation_frames, args.epochs, args.robot,
                     command, say=lambda line: print(line, file=sys.stderr, flush=True), criteria=args.criteria)
    except ValueError as exc:  # a cheap model that already has a head, no threshold meeting the criteria: said, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    v = report["validation"]
    print(f"gain threshold {report['threshold_m']:.4f} m (validation): {v['sectors_refined']:.1%} of the sectors on {v['frames_refined']:.1%} of the frames; "
          f"correlation with the true gain {v['gain_correlation']:.2f} per sector, {v['frame_gain_correlation']:.2f} per frame ({report['wall_time_s']:.0f} s)")
    for name, path in report["files"].items():
        print(f"wrote {path} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
