"""Accuracy recovery after pruning: fine-tuning on labels, or distillation from the original model.

Runs on torch modules only, in place, on the module's own device, with a fixed seed (the global torch random
state is left as it was). Weights that are exactly zero when training starts (unstructured or 2:4 pruning)
are kept at zero after every optimizer step, so the achieved sparsity does not change; structurally pruned
models train with their smaller layers, their biased convolutions with a transient BatchNorm that is folded
back into them at the end (recovery_norm.py). Thread settings are left to the caller.

Training data: the bundled examples use the training split of resources/data/digits_split.npz (never the
test set they are evaluated on); other models need a labeled .npz given by the user.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelstudio.core.errors import CompressionError
from accelstudio.core.progress import ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.recipe import RecoverySpec
from accelstudio.core.compress.recovery_norm import TransientNorm
from accelstudio.core.data.training import NO_DATA_MESSAGE

__all__ = ["RecoveryOutcome", "recover", "recover_model", "TORCH_ONLY_MESSAGE"]

STAGE = "recover"
SEED = 0
UPDATES_PER_EPOCH = 10  # progress events within one epoch
TORCH_ONLY_MESSAGE = "recovery needs a torch model: open the .safetensors/.pt form"


@dataclass(frozen=True)
class RecoveryOutcome:
    """The trained module (the same object that was passed in), the mean loss of the last epoch
    (None when nothing ran), epochs and samples used, and the wall time in seconds."""

    module: nn.Module
    final_loss: float | None
    epochs: int
    samples: int
    seconds: float

    def summary(self, method: str) -> str:
        """One line such as 'finetune: 3 epochs on 1437 samples, final loss 0.0123, 12.3 s'."""
        loss = "-" if self.final_loss is None else f"{self.final_loss:.4f}"
        return (f"{method}: {self.epochs} epoch{'s' if self.epochs != 1 else ''} on {self.samples} training "
                f"samples, final loss {loss}, {self.seconds:.1f} s")


def recover(student: nn.Module, teacher: nn.Module | None, spec: RecoverySpec, train_data: dict[str, Any],
            progress: ProgressCallback | None = None, cancel=None, *, normalize: bool = False) -> nn.Module:
    """Fine-tune or distill `student` in place as `spec` says and return it (see `recover_model`)."""
    return recover_model(student, teacher, spec, train_data, progress, cancel, normalize=normalize).module


def recover_model(student: nn.Module, teacher: nn.Module | None, spec: RecoverySpec, train_data: dict[str, Any],
                  progress: ProgressCallback | None = None, cancel=None, *,
                  normalize: bool = False) -> RecoveryOutcome:
    """Train `student` on `train_data` ({"inputs": {name: array}, "labels": array}; inputs in the model's
    argument order) with Adam and a cosine learning-rate schedule.

    "finetune": cross-entropy on the labels. "distill": alpha * KL(teacher_T || student_T) * T^2 +
    (1 - alpha) * cross-entropy, with the teacher (the unpruned model) in eval mode and without gradients.
    Zero weights of Linear/Conv layers stay zero. `normalize` trains the biased convolutions with a transient
    BatchNorm folded back at the end (recovery_norm.py): use it after structured pruning, which shifts every
    later activation; after unstructured pruning plain training recovers as well or better. Progress stage
    "recover" (fraction over all epochs, the running loss in the text); `cancel` is checked between batches.
    The module's train/eval mode and requires_grad flags are restored afterwards. Raises CompressionError, JobCancelled.
    """
    if not isinstance(student, nn.Module):
        raise CompressionError(TORCH_ONLY_MESSAGE)
    if not spec.active:
        return RecoveryOutcome(student, None, 0, 0, 0.0)
    if spec.method == "distill" and not isinstance(teacher, nn.Module):
        raise CompressionError("distillation needs the original model as teacher; none was given")
    start = time.perf_counter()
    device = _device(student)
    inputs, labels = _training_tensors(train_data, spec.max_samples)
    masks = _zero_masks(student)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        targets = _teacher_logits(teacher, inputs, spec.batch, cancel) if spec.method == "distill" else None
        norm = TransientNorm(student if normalize else None)
        loss = _train(student, inputs, labels, targets, masks, norm, spec, device, progress, cancel)
    return RecoveryOutcome(student, loss, spec.epochs, len(labels), time.perf_counter() - start)


def _train(student, inputs, labels, targets, masks, norm: TransientNorm, spec: RecoverySpec, device, progress,
           cancel) -> float:
    params = [p for p in student.parameters() if p.is_floating_point()]
    if not params:
        raise CompressionError("the model has no float parameters to train")
    flags = [p.requires_grad for p in params]
    was_training = student.training
    steps = math.ceil(len(labels) / spec.batch)
    opt = torch.optim.Adam(params + list(norm.parameters()), lr=spec.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs * steps)
    gen = torch.Generator().manual_seed(SEED)
    loss = float("nan")
    try:
        for p in params:
            p.requires_grad_(True)
        for epoch in range(spec.epochs):
            student.train()
            order = torch.randperm(len(labels), generator=gen).split(spec.batch)
            loss = _epoch(student, inputs, labels, targets, masks, order, (opt, sched), spec, device,
                          _epoch_progress(progress, spec, epoch, steps, len(labels)), cancel)
        student.eval()  # dropout off, real BatchNorm frozen while the transient ones are measured
        norm.measure(lambda idx: student(*(x[idx].to(device) for x in inputs)),
                     torch.arange(len(labels)).split(spec.batch), cancel)
        norm.fold()
    finally:
        norm.remove()
        _apply_masks(masks)
        student.train(was_training)
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    return loss


def _epoch(student, inputs, labels, targets, masks, order, optim, spec: RecoverySpec, device, report,
           cancel) -> float:
    """One pass over the batches in `order`; the mean loss."""
    opt, sched = optim
    total, seen, right = 0.0, 0, 0
    for step, idx in enumerate(order):
        check_cancel(cancel)
        loss, correct = _loss(student, inputs, labels, targets, idx, spec, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _apply_masks(masks)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise CompressionError(f"{spec.method} diverged (loss is {value}); lower the learning rate "
                                   f"(recovery.lr, now {spec.lr:g}; CLI --recovery-lr)")
        total, seen, right = total + value * len(idx), seen + len(idx), right + correct
        report(step + 1, total / seen, right / seen)
    return total / max(seen, 1)


def _epoch_progress(progress, spec: RecoverySpec, epoch: int, steps: int, samples: int):
    """Reports within an epoch; the partial holds the running mean loss and training accuracy of the epoch so
    far, the epoch position (`epochs_done`, fractional) and the training set's size, for live curves."""
    every = max(1, steps // UPDATES_PER_EPOCH)

    def report(step: int, running: float, accuracy: float) -> None:
        if progress and (step % every == 0 or step == steps):
            progress(ProgressEvent(STAGE, (epoch + step / steps) / spec.epochs,
                                   f"{spec.method} epoch {epoch + 1}/{spec.epochs}: loss {running:.4f}",
                                   {"epoch": epoch + 1, "loss": running, "train_accuracy": accuracy,
                                    "epochs_done": epoch + step / steps, "epochs": spec.epochs,
                                    "method": spec.method, "samples": samples}))

    return report


def _loss(student, inputs, labels, targets, idx, spec: RecoverySpec, device) -> tuple[torch.Tensor, int]:
    """The batch's training loss and how many of its samples the student classifies right."""
    y = labels[idx].to(device)
    logits = _logits(student(*(x[idx].to(device) for x in inputs)))
    if logits.shape[-1] <= int(y.max()):
        raise CompressionError(f"the training labels go up to class {int(labels.max())}, but the model has "
                               f"{logits.shape[-1]} outputs")
    if not logits.requires_grad:
        raise CompressionError("the model's output does not depend on trainable parameters (a frozen or "
                               "scripted graph?); open its .safetensors/.pt weights to fine-tune it")
    ce = F.cross_entropy(logits, y)
    correct = int((logits.detach().argmax(dim=-1) == y).sum())
    if targets is None:
        return ce, correct
    t = spec.temperature
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(targets[idx].to(device) / t, dim=1),
                  reduction="batchmean")
    return spec.alpha * kl * t * t + (1.0 - spec.alpha) * ce, correct


@torch.no_grad()
def _teacher_logits(teacher: nn.Module, inputs, batch: int, cancel) -> torch.Tensor:
    """The teacher's logits for every training sample, computed once (the inputs never change)."""
    device = _device(teacher)
    was_training = teacher.training
    teacher.eval()
    try:
        chunks = []
        for idx in torch.arange(len(inputs[0])).split(max(batch, 64)):
            check_cancel(cancel)
            chunks.append(_logits(teacher(*(x[idx].to(device) for x in inputs))).float().cpu())
        return torch.cat(chunks)
    finally:
        teacher.train(was_training)


def _logits(out) -> torch.Tensor:
    if isinstance(out, dict):
        out = next(iter(out.values()), None)
    elif isinstance(out, (tuple, list)):
        out = out[0] if out else None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CompressionError(f"recovery needs a classifier whose output is (batch, classes); got {shape}")
    return out


def _device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    raise CompressionError("the model has no parameters to train")


def _training_tensors(data: dict[str, Any], max_samples: int | None) -> tuple[list[torch.Tensor], torch.Tensor]:
    if not isinstance(data, dict) or not data.get("inputs") or data.get("labels") is None:
        raise CompressionError(NO_DATA_MESSAGE)
    labels = np.asarray(data["labels"]).astype(np.int64)
    arrays = [np.asarray(a) for a in data["inputs"].values()]
    if labels.ndim != 1 or any(len(a) != len(labels) for a in arrays) or not len(labels):
        raise CompressionError(f"training data: {len(labels)} labels do not match the inputs' sample counts "
                               f"{[len(a) for a in arrays]}; give one label per sample")
    if max_samples is not None and max_samples < len(labels):
        from accelstudio.core.data.dataset import subset_indices

        idx = subset_indices(len(labels), max_samples)
        labels, arrays = labels[idx], [a[idx] for a in arrays]
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays], torch.from_numpy(labels)


def _zero_masks(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, mask of its zeros) for every Linear/Conv weight that holds exact zeros."""
    from accelstudio.core.compress.pruning_torch import prunable_layers

    masks = []
    for _, layer in prunable_layers(module):
        zeros = layer.weight.detach() == 0
        if bool(zeros.any()):
            masks.append((layer.weight, zeros))
    return masks


@torch.no_grad()
def _apply_masks(masks) -> None:
    for weight, zeros in masks:
        weight.masked_fill_(zeros, 0)


def zeroing_reports(module: nn.Module, reports) -> list:
    """The per-layer reports of a zeroing method recomputed from the module's weights (after training)."""
    from accelstudio.core.compress.pruning_plan import sparsity_report
    from accelstudio.core.compress.pruning_torch import prunable_layers

    layers = dict(prunable_layers(module))
    out = []
    for r in reports:
        layer = layers.get(r.name)
        if layer is None:
            out.append(r)
            continue
        w = layer.weight
        bias = r.params_before - w.numel()
        out.append(sparsity_report(r.name, r.requested, int((w == 0).sum()), w.numel(), bias))
    return out
