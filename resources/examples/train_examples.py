"""Train the bundled example models on real handwritten digits and write them to resources/examples/.

The data are scikit-learn's digits (1,797 real 8x8 scans, shipped inside scikit-learn; nothing is downloaded).
A fixed, stratified 80/20 split (seed 0) is stored in resources/data/digits_split.npz.

Reproduce with:  pip install -e .[train] && python resources/examples/train_examples.py [NAME ...]
Each example gets:  model.safetensors, model.onnx, data.npz (test inputs `x` and `labels`),
calib.npz (256 training inputs `x` for static-quantization calibration) and meta.json (test accuracy and more).
Training is seeded; exact weights may differ across CPUs and thread counts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from accelstudio.core.model.architectures import get_architecture

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "digits_split.npz"
SEED = 0
BATCHNORM_TRAINED = {"digits-resnet"}  # trained with BatchNorm, folded into the convs before saving

EXAMPLES = {
    # name: (architecture, title, epochs, learning rate)
    "digits-mlp": ("digits-mlp", "Digits MLP", 60, 2e-3),
    "digits-cnn": ("digits-cnn", "Digits CNN", 40, 2e-3),
    "digits-resnet": ("digits-resnet", "Digits ResNet (64x64)", 8, 2e-3),
    "digits-vit": ("digits-vit", "Digits ViT (transformer)", 200, 2e-3),
}


def make_split() -> dict[str, np.ndarray]:
    """Load scikit-learn's digits and store a fixed stratified split; return it."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # values 0..16
    idx = np.arange(len(images))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=SEED, stratify=digits.target)
    split = {
        "train_images": images[train_idx], "train_labels": digits.target[train_idx].astype(np.int64),
        "test_images": images[test_idx], "test_labels": digits.target[test_idx].astype(np.int64),
    }
    DATA.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DATA, **split)
    return split


def to_input(images: np.ndarray, architecture: str) -> np.ndarray:
    """Turn uint8 8x8 digit images (0..16) into the float32 input `x` of an architecture, values in [0, 1]."""
    x = torch.from_numpy(images.astype(np.float32) / 16.0)
    if architecture == "digits-mlp":
        return x.reshape(len(x), 64).numpy()
    return x.unsqueeze(1).numpy().astype(np.float32)


def attach_batchnorm(model: torch.nn.Module) -> list:
    """Train-time BatchNorm after every convolution, applied through forward hooks so that the module keeps the
    bundled (BatchNorm-free) architecture; fold_batchnorm() later merges the statistics into the conv weights."""
    handles = []
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]:
        conv.bn = torch.nn.BatchNorm2d(conv.out_channels)
        handles.append(conv.register_forward_hook(lambda m, _inp, out: m.bn(out)))
    return handles


@torch.no_grad()
def fold_batchnorm(model: torch.nn.Module, handles: list) -> None:
    """Merge each conv's BatchNorm (eval statistics) into its weight and bias, then remove the BatchNorm."""
    for h in handles:
        h.remove()
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and hasattr(m, "bn")]:
        bn = conv.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        del conv.bn


def train(arch_name: str, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> torch.nn.Module:
    torch.manual_seed(SEED)
    model = get_architecture(arch_name).build()
    bn_hooks = attach_batchnorm(model) if arch_name in BATCHNORM_TRAINED else []
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(xt), generator=gen).split(32):
            xb = xt[batch]
            if xb.dim() == 4:  # random shifts of up to one pixel for robustness
                dx, dy = torch.randint(-1, 2, (2,), generator=gen).tolist()
                xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(xb), yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    if bn_hooks:
        fold_batchnorm(model, bn_hooks)
    return model


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def export_onnx(model: torch.nn.Module, sample: np.ndarray, path: Path) -> None:
    torch.onnx.export(
        model, (torch.from_numpy(sample[:1]),), str(path), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
    )


def main(names: list[str]) -> None:
    torch.set_num_threads(2)
    split = make_split()
    for name, (arch_name, title, epochs, lr) in EXAMPLES.items():
        if names and name not in names:
            continue
        t0 = time.perf_counter()
        x_train = to_input(split["train_images"], arch_name)
        x_test = to_input(split["test_images"], arch_name)
        model = train(arch_name, x_train, split["train_labels"], epochs, lr)
        acc = accuracy(model, x_test, split["test_labels"])
        out = HERE / name
        out.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        (out / "model.safetensors").chmod(0o644)
        export_onnx(model, x_test, out / "model.onnx")
        np.savez_compressed(out / "data.npz", x=x_test, labels=split["test_labels"])
        rng = np.random.default_rng(SEED)
        calib = x_train[rng.choice(len(x_train), 256, replace=False)]
        np.savez_compressed(out / "calib.npz", x=calib)
        arch = get_architecture(arch_name)
        meta = {
            "name": name, "title": title, "architecture": arch_name, "description": arch.description,
            "input": {"name": "x", "shape": [None, *arch.input_shape[1:]], "dtype": "float32", "range": [0.0, 1.0]},
            "num_classes": arch.num_classes, "classes": [str(i) for i in range(arch.num_classes)],
            "test_accuracy": round(acc, 4), "n_test": int(len(x_test)), "n_train": int(len(x_train)),
            "training": {"epochs": epochs, "lr": lr, "optimizer": "Adam", "seed": SEED,
                         "data": "scikit-learn load_digits, stratified 80/20 split, seed 0"},
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{name}: test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
