"""Transfer learning on the bundled digits: reuse a feature extractor trained on digits 0-4 to learn 5-9.

Three real trainings of the digits-cnn architecture, all on the training split only:
  1. source: a 5-class network trained on every training sample of digits 0-4;
  2. transfer: its convolutional layers (the feature extractor; with reuse "conv+fc1" the hidden layer too) are
     copied and frozen, and new classifier layers are trained on `shots` samples per class of digits 5-9;
  3. scratch: the same architecture from random weights, trained on the same few samples for the same epochs.
Both target networks are evaluated on the test split's digits 5-9 (never trained on), with Wilson intervals
and a paired comparison (McNemar's exact test) on the same samples. Wall-clock times are reported for each
training; the transfer time does not include the source training, which is reported apart.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

SPLIT_FILE = "data/digits_split.npz"
PIXEL_MAX = 16.0
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
STAGE = "transfer"
PHASES = ("source", "transfer", "scratch")
# the layers trained anew (the rest is the reused, frozen feature extractor)
REUSE = {"conv": ("fc1.", "fc2."), "conv+fc1": ("fc2.",)}


class TransferError(AccelStudioError):
    """The transfer experiment cannot run with these settings or this data."""


@dataclass(frozen=True)
class TransferSettings:
    """How much to train: epochs of the source network and of both target networks, samples per target class,
    learning rate, batch size and the seed that picks the few samples and the initial weights."""

    source_epochs: int = 6
    target_epochs: int = 20
    shots: int = 5
    lr: float = 1e-2
    batch: int = 16
    seed: int = 0
    threads: int = 2
    reuse: str = "conv"  # "conv": conv1+conv2 reused, fc1+fc2 new; "conv+fc1": only the last layer is new

    def validate(self) -> None:
        if not 1 <= self.shots <= 100:
            raise TransferError(f"shots per class must be 1-100, not {self.shots}")
        if self.source_epochs < 1 or self.target_epochs < 1:
            raise TransferError("source and target epochs must be at least 1")
        if not 1e-6 <= self.lr <= 1.0:
            raise TransferError(f"the learning rate must be in [1e-6, 1], not {self.lr:g}")
        if self.reuse not in REUSE:
            raise TransferError(f"reuse must be one of {', '.join(REUSE)}, not {self.reuse!r}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TransferSettings":
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def digits_split() -> dict[str, np.ndarray]:
    """The bundled digits split as float images (N, 1, 8, 8) in [0, 1] and int64 labels."""
    from accelstudio.core.model.examples import resources_dir

    path = resources_dir() / SPLIT_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, KeyError, ValueError) as exc:
        raise TransferError(f"the bundled digits {path} cannot be read ({exc}); reinstall AccelStudio") from None
    out = {}
    for part in ("train", "test"):
        out[f"{part}_x"] = (arrays[f"{part}_images"].astype(np.float32) / PIXEL_MAX)[:, None, :, :]
        out[f"{part}_y"] = arrays[f"{part}_labels"].astype(np.int64)
    return out


def few_shot_indices(labels: np.ndarray, classes: tuple[int, ...], shots: int, seed: int) -> np.ndarray:
    """`shots` indices per class of `classes`, drawn with `seed` (sorted)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < shots:
            raise TransferError(f"only {len(idx)} training samples of digit {c}; ask for at most that many shots")
        picked.append(rng.choice(idx, size=shots, replace=False))
    return np.sort(np.concatenate(picked))


def run_transfer(params: dict[str, Any], progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train source, transfer and scratch networks (see the module docstring); a JSON-ready result:
    {"settings", "data": {...samples per phase}, "phases": {name: {"seconds", "epochs", "curve": [...],
    "accuracy", "interval", "correct", "n"}}, "comparison": {"delta_pts", "mcnemar_p", "lost", "gained"}}.
    Each progress event's partial is {"phase", "epoch", "epochs", "loss", "accuracy"} (accuracy on the phase's
    evaluation samples after that epoch)."""
    import torch

    settings = TransferSettings.from_params(params)
    settings.validate()
    torch.set_num_threads(max(1, settings.threads))
    data = digits_split()
    source_idx = np.flatnonzero(np.isin(data["train_y"], SOURCE_CLASSES))
    source_test = np.flatnonzero(np.isin(data["test_y"], SOURCE_CLASSES))
    target_idx = few_shot_indices(data["train_y"], TARGET_CLASSES, settings.shots, settings.seed)
    target_test = np.flatnonzero(np.isin(data["test_y"], TARGET_CLASSES))
    tensors = _Tensors(data)
    report = _Reporter(progress, settings)

    torch.manual_seed(settings.seed)
    source = _new_network()
    source_phase = _fit(source, tensors.train(source_idx, SOURCE_CLASSES), tensors.test(source_test, SOURCE_CLASSES),
                        settings.source_epochs, settings, report.phase("source"), cancel, source.parameters())
    torch.manual_seed(settings.seed + 1)
    transfer = _reuse_features(source, settings.reuse)
    few, test = tensors.train(target_idx, TARGET_CLASSES), tensors.test(target_test, TARGET_CLASSES)
    transfer_phase = _fit(transfer, few, test, settings.target_epochs, settings, report.phase("transfer"), cancel,
                          transfer.parameters())
    torch.manual_seed(settings.seed + 1)
    scratch = _new_network()
    scratch_phase = _fit(scratch, few, test, settings.target_epochs, settings, report.phase("scratch"), cancel,
                         scratch.parameters())
    return {"settings": asdict(settings),
            "data": {"source": "bundled digits (scikit-learn load_digits), training split",
                     "source_samples": int(len(source_idx)), "source_eval_samples": int(len(source_test)),
                     "target_samples": int(len(target_idx)), "target_eval_samples": int(len(target_test)),
                     "eval": "test split (never trained on)"},
            "phases": {"source": source_phase.summary(), "transfer": transfer_phase.summary(),
                       "scratch": scratch_phase.summary()},
            "comparison": _paired(transfer_phase.correct, scratch_phase.correct)}


class _Tensors:
    """Slices of the split as tensors, labels renumbered 0..k-1 within the chosen classes."""

    def __init__(self, data: dict[str, np.ndarray]):
        self._data = data

    def _part(self, part: str, idx: np.ndarray, classes: tuple[int, ...]):
        import torch

        lookup = {c: i for i, c in enumerate(classes)}
        y = np.array([lookup[int(v)] for v in self._data[f"{part}_y"][idx]], dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(self._data[f"{part}_x"][idx])), torch.from_numpy(y)

    def train(self, idx, classes):
        return self._part("train", idx, classes)

    def test(self, idx, classes):
        return self._part("test", idx, classes)


@dataclass
class _Phase:
    seconds: float
    epochs: int
    curve: list[dict[str, float]]
    correct: np.ndarray
    trained_params: int
    samples: int

    def summary(self) -> dict[str, Any]:
        from accelstudio.core.measure.stats import wilson_interval

        k, n = int(self.correct.sum()), int(len(self.correct))
        return {"seconds": round(self.seconds, 3), "epochs": self.epochs, "curve": self.curve,
                "accuracy": k / n if n else None, "interval": wilson_interval(k, n), "correct": k, "n": n,
                "trained_params": self.trained_params, "train_samples": self.samples}


class _Reporter:
    def __init__(self, progress: ProgressCallback | None, settings: TransferSettings):
        self._progress = progress
        self._total = settings.source_epochs + 2 * settings.target_epochs
        self._offsets = {"source": 0, "transfer": settings.source_epochs,
                         "scratch": settings.source_epochs + settings.target_epochs}

    def phase(self, name: str):
        def report(epoch: int, epochs: int, loss: float, accuracy: float, seconds: float) -> None:
            if self._progress is None:
                return
            done = (self._offsets[name] + epoch) / self._total
            self._progress(ProgressEvent(STAGE, done, f"{name} epoch {epoch}/{epochs}: loss {loss:.4f}, "
                                                      f"accuracy {accuracy:.1%}",
                                         {"phase": name, "epoch": epoch, "epochs": epochs, "loss": loss,
                                          "accuracy": accuracy, "seconds": seconds}))
        return report


def _new_network():
    from accelstudio.core.model.architectures import DigitsCNN

    return DigitsCNN(num_classes=len(SOURCE_CLASSES))


def _reuse_features(source, reuse: str):
    """A copy of `source` whose reused layers are frozen and whose new layers start from random weights."""
    import torch

    net = copy.deepcopy(source)
    new = REUSE[reuse]
    if "fc1." in new:
        net.fc1 = torch.nn.Linear(net.fc1.in_features, net.fc1.out_features)
    net.fc2 = torch.nn.Linear(net.fc2.in_features, len(TARGET_CLASSES))
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith(new))
    return net


def trainable_parameters(net) -> int:
    """Parameters an optimizer would update (requires_grad)."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def _fit(net, train, test, epochs: int, settings: TransferSettings, report, cancel, params) -> _Phase:
    """Adam on cross-entropy for `epochs` epochs; the test accuracy after each epoch goes to `report`."""
    import torch
    import torch.nn.functional as F

    x, y = train
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    curve, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(settings.batch):
            check_cancel(cancel)
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        loss_value = total / len(y)
        if not math.isfinite(loss_value):
            raise TransferError(f"training diverged (loss {loss_value}); lower the learning rate")
        correct = _correct(net, test)
        seconds = time.perf_counter() - start
        curve.append({"epoch": epoch, "loss": loss_value, "accuracy": float(correct.mean()), "seconds": seconds})
        report(epoch, epochs, loss_value, float(correct.mean()), seconds)
    # the evaluation after each epoch is part of what the learner sees, so it is timed with the training
    return _Phase(time.perf_counter() - start, epochs, curve, _correct(net, test), trainable_parameters(net),
                  int(len(y)))


def _correct(net, test) -> np.ndarray:
    import torch

    x, y = test
    net.eval()
    with torch.no_grad():
        return (net(x).argmax(dim=1) == y).numpy()


def _paired(new: np.ndarray, base: np.ndarray) -> dict[str, Any]:
    """Transfer vs scratch on the same test samples: the accuracy change, its paired interval and McNemar's p."""
    from accelstudio.core.measure.stats import paired_accuracy_change, paired_counts

    both, lost, gained, neither = paired_counts(new, base)
    change = paired_accuracy_change(both, lost, gained, neither)
    return {"baseline": "scratch", "delta_pts": (float(new.mean()) - float(base.mean())) * 100,
            "lost": int(lost), "gained": int(gained), "change": _plain(change)}


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
