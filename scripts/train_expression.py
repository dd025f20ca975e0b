"""Train facelens's expression model on FER2013, as the pipeline prepares faces.

Runs in a throwaway environment with the PyTorch CPU wheel (torch is never a
run-time or test dependency of facelens)::

    python3 -m venv /tmp/trainenv
    /tmp/trainenv/bin/pip install torch-2.13.0+cpu-cp311-...whl numpy onnx
    PYTHONPATH=src .venv/bin/python scripts/expression_data.py \\
        --data ../shared/data/fer2013_train --out /tmp/fer_pipeline48.npz
    /tmp/trainenv/bin/python scripts/train_expression.py --data /tmp/fer_pipeline48.npz \\
        --out src/facelens/models/attributes/expression-fercnn48.onnx

The input is ``scripts/expression_data.py``'s file: every ``fer2013_train``
image through the facelens pipeline (YuNet, the expression template crop,
the whole image where no face is found) as a 48x48 grey crop, with the
seeded 10 % validation split. Training (seeded, CPU, one thread by default:
on this shared machine two torch threads ran convolutions 3x slower than one): a compact
VGG-style network (16-32-64-192 channels, batch norm, global average
pooling; about 33 M multiply-adds per face, twice that with the mirror image), SGD with Nesterov momentum and a
one-cycle learning rate, cross-entropy weighted by the inverse square root of
class frequency (disgust is 1.5 % of the data), label smoothing 0.05, and
augmentation on every batch: horizontal flip, a small random similarity
(rotation +-10 degrees, scale 0.9-1.1, shift +-8 %), brightness and contrast
jitter, and random erasing of a patch. The last epoch's weights are kept (no
selection on the validation split). A temperature is then fitted on the
validation split (one scalar, minimising the negative log-likelihood) and
built into the exported graph, which outputs probabilities: the expected
calibration error before and after is printed and written beside the model.

``--ensemble A.pt B.pt`` trains nothing: it exports the mean logits of
networks trained apart by earlier runs (each run writes its ``.pt`` beside its
``.onnx``), with one temperature fitted on the validation split; the shipped
version 6 is two 60-epoch runs, seeds 18 and 19.

The exported ONNX (opset 17) takes ``(N, 48, 48, 1)`` float32 grey in
``[-1, 1]`` (``grey / 255 * 2 - 1``, as mini-Xception) and returns ``(N, 7)``
probabilities in facelens's class order (angry, disgust, fear, happy, sad,
surprise, neutral), averaged over the face and its mirror image.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ExpressionCNN(nn.Module):
    """48x48 grey -> 7 logits: 16-32-64-192 channels, max-pooling, global average pooling."""

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 192)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.features = nn.Sequential(
            conv(1, a),
            nn.MaxPool2d(2),  # 48 -> 24
            conv(a, b),
            conv(b, b),
            nn.MaxPool2d(2),  # 24 -> 12
            conv(b, c),
            conv(c, c),
            nn.MaxPool2d(2),  # 12 -> 6
            conv(c, d),
            conv(d, d),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(d, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.head(self.dropout(x))


def shifted_down(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """``x`` (N,1,H,W) moved ``pixels`` down (up when negative), its edge rows repeated."""
    if pixels == 0:
        return x
    margin = abs(pixels)
    padded = F.pad(x, (0, 0, margin, margin), mode="replicate")
    return padded[:, :, margin - pixels : margin - pixels + x.shape[2]]


class Ensemble(nn.Module):
    """The mean logits of ``nets`` (one or more networks trained apart) over several views
    of each face: moved down by each of ``shifts`` pixels (0: as it is) and, with ``flip``,
    mirrored too. ``x`` (N,1,H,W) -> (N,7) logits. The views go through each network as one
    batch."""

    def __init__(
        self, nets: list[ExpressionCNN], flip: bool = True, shifts: tuple[int, ...] = (0,)
    ) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.flip = flip
        self.shifts = shifts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [shifted_down(x, pixels) for pixels in self.shifts]
        if self.flip:
            views += [torch.flip(view, dims=[3]) for view in views]
        batch = torch.cat(views)
        logits = torch.stack([net(batch) for net in self.nets]).mean(dim=0)
        return logits.reshape(len(views), x.shape[0], -1).mean(dim=0)


class Exported(nn.Module):
    """The ONNX graph: NHWC input in [-1, 1], the ensemble's calibrated probabilities."""

    def __init__(self, ensemble: Ensemble, temperature: float) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.register_buffer("inv_t", torch.tensor(1.0 / temperature))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.ensemble(x.permute(0, 3, 1, 2))
        return torch.softmax(logits * self.inv_t, dim=1)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip, small random similarity, brightness/contrast, random erasing: ``x`` (N,1,H,W)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[3]), x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.9 + torch.rand(n, generator=gen) * 0.2
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.08 * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    contrast = 0.7 + torch.rand(n, 1, 1, 1, generator=gen) * 0.6
    bright = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.25
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + bright).clamp(-1, 1)
    erase = torch.rand(n, generator=gen) < 0.3
    size = x.shape[-1]
    for i in torch.nonzero(erase).flatten().tolist():
        side = int(torch.randint(size // 6, size // 3, (1,), generator=gen))
        top, left = (int(v) for v in torch.randint(0, size - side, (2,), generator=gen))
        x[i, :, top : top + side, left : left + side] = 0.0
    return x


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: the confidence-weighted gap between confidence and accuracy, 15 bins."""
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def classwise_ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, float]:
    """Per class: the ECE of that class's probability as a one-vs-rest forecast."""
    result = {}
    edges = np.linspace(0, 1, bins + 1)
    for k, name in enumerate(CLASSES):
        p, y = probs[:, k], labels == k
        total = 0.0
        for low, high in itertools.pairwise(edges):
            inside = (p > low) & (p <= high) if low > 0 else (p >= low) & (p <= high)
            if inside.any():
                total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
        result[name] = float(total)
    return result


def to_input(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops.astype(np.float32) / 255.0 * 2 - 1)[:, None]


@torch.no_grad()
def logits_of(net: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Logits of ``net`` averaged over each face and its mirror image (an :class:`Ensemble`
    is called as it is: it averages the views it was built with)."""
    net.eval()
    if isinstance(net, Ensemble):
        return torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)])
    out = [
        (net(x[i : i + batch]) + net(torch.flip(x[i : i + batch], dims=[3]))) / 2
        for i in range(0, len(x), batch)
    ]
    return torch.cat(out)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the validation NLL (golden-section search on log T)."""

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / math.exp(log_t), labels))

    low, high = math.log(0.2), math.log(5.0)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def sgd(net: nn.Module, lr: float) -> torch.optim.SGD:
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    weights: torch.Tensor,
    batch: int,
    bf16: bool,
    gen: torch.Generator,
) -> tuple[float, float]:
    """One epoch over the augmented training set; its mean loss and training accuracy."""
    net.train()
    order = torch.randperm(len(x_train), generator=gen)
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(order), batch):
        index = order[i : i + batch]
        xb, yb = augment(x_train[index].clone(), gen), y_train[index]
        if bf16:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(xb)
        loss = F.cross_entropy(logits.float(), yb, weight=weights, label_smoothing=0.05)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        loss_sum += float(loss.detach()) * len(index)
        correct += int((logits.argmax(1) == yb).sum())
        total += len(index)
    return loss_sum / total, correct / total


@torch.no_grad()
def recompute_batch_norm(net: nn.Module, x: torch.Tensor, batch: int, bf16: bool) -> None:
    """Batch norm statistics of averaged weights: one pass over the (unaugmented) images."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the pass
    net.train()
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        net(xb.contiguous(memory_format=torch.channels_last) if bf16 else xb)
    net.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="scripts/expression_data.py's npz")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx to write")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.08)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="train in bfloat16 autocast with channels-last tensors (weights stay float32; "
        "about 3x faster on CPUs with AMX; validation, calibration and export stay float32)",
    )
    parser.add_argument(
        "--widths",
        default="16,32,64,192",
        help="channels of the four stages, comma-separated (the shipped version 4: 32,64,128,256 with --epochs 20)",
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="start from these weights (a .pt this script wrote)"
    )
    parser.add_argument(
        "--swa-epochs",
        type=int,
        default=0,
        help="after the one-cycle epochs, this many epochs at the constant --swa-lr whose "
        "weights are averaged (stochastic weight averaging; batch norm statistics recomputed)",
    )
    parser.add_argument("--swa-lr", type=float, default=0.01)
    parser.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        default=None,
        help="train nothing: export the mean logits of these networks (.pt files this script "
        "wrote, all of --widths), with one temperature fitted on the validation split",
    )
    parser.add_argument(
        "--no-flip",
        action="store_true",
        help="with --ensemble: each network sees the face only, not also its mirror image",
    )
    parser.add_argument(
        "--shifts",
        default="0",
        help="with --ensemble: each face is also seen moved down by each of these pixels "
        "(comma-separated, negative: up; 0: as it is), and each of those mirrored",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    data = np.load(args.data)
    crops, labels, validation = data["crops"], data["labels"], data["validation"]
    x_train, y_train = to_input(crops[~validation]), torch.from_numpy(labels[~validation])
    x_val, y_val = to_input(crops[validation]), torch.from_numpy(labels[validation])
    counts = np.bincount(labels[~validation], minlength=len(CLASSES)).astype(np.float64)
    weights = torch.tensor((counts.sum() / counts) ** 0.5, dtype=torch.float32)
    weights = weights / (weights * torch.from_numpy(counts / counts.sum()).float()).sum()
    print(
        f"train {len(x_train)}, validation {len(x_val)}, class weights {weights.numpy().round(2)}"
    )

    widths = tuple(int(w) for w in args.widths.split(","))
    if len(widths) != 4:
        parser.error("--widths takes four channel counts, e.g. 16,32,64,192")
    if args.ensemble:
        return export_ensemble(args, widths, x_val, y_val)
    net = ExpressionCNN(widths)  # type: ignore[arg-type]
    if args.bf16:
        net = net.to(memory_format=torch.channels_last)
    if args.init is not None:
        net.load_state_dict(torch.load(args.init))
    batches = math.ceil(len(x_train) / args.batch)
    optimizer = sgd(net, args.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=max(1, args.epochs * batches), pct_start=0.2
    )
    started = time.perf_counter()
    epoch_data = (x_train, y_train, weights, args.batch, args.bf16, gen)
    for epoch in range(args.epochs):
        loss, accuracy = train_epoch(net, optimizer, schedule, *epoch_data)
        val_acc = float((logits_of(net, x_val).argmax(1) == y_val).float().mean())
        print(
            f"epoch {epoch + 1}/{args.epochs} loss {loss:.3f} train acc {accuracy:.3f} "
            f"val acc {val_acc:.4f} {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    if args.swa_epochs:
        averaged = torch.optim.swa_utils.AveragedModel(net)
        optimizer = sgd(net, args.swa_lr)
        for epoch in range(args.swa_epochs):
            loss, accuracy = train_epoch(net, optimizer, None, *epoch_data)
            averaged.update_parameters(net)
            print(
                f"swa epoch {epoch + 1}/{args.swa_epochs} loss {loss:.3f} "
                f"train acc {accuracy:.3f} {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        net = averaged.module
        recompute_batch_norm(net, x_train, args.batch, args.bf16)
        val_acc = float((logits_of(net, x_val).argmax(1) == y_val).float().mean())
        print(f"averaged weights: val acc {val_acc:.4f}", flush=True)

    net = net.to(memory_format=torch.contiguous_format)
    temperature, report = calibration_report(net, x_val, y_val)
    report |= {
        "epochs": args.epochs,
        "init": str(args.init) if args.init else None,
        "swa_epochs": args.swa_epochs,
        "swa_lr": args.swa_lr if args.swa_epochs else None,
        "widths": list(widths),
        "seed": args.seed,
        "bf16": args.bf16,
        "training_seconds": round(time.perf_counter() - started),
        "torch": torch.__version__,
    }
    export(Ensemble([net.eval()]), temperature, report, args.out)
    torch.save(net.state_dict(), args.out.with_suffix(".pt"))
    return 0


def calibration_report(
    net: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor
) -> tuple[float, dict[str, object]]:
    """The temperature fitted on the validation split, and the split's accuracy and
    calibration before and after it."""
    logits = logits_of(net, x_val)
    temperature = fit_temperature(logits, y_val)
    before = torch.softmax(logits, 1).numpy()
    after = torch.softmax(logits / temperature, 1).numpy()
    y = y_val.numpy()
    return temperature, {
        "validation_images": len(y),
        "validation_accuracy": float((before.argmax(1) == y).mean()),
        "temperature": temperature,
        "ece_before": expected_calibration_error(before, y),
        "ece_after": expected_calibration_error(after, y),
        "classwise_ece_after": classwise_ece(after, y),
        "nll_before": float(F.cross_entropy(logits, y_val)),
        "nll_after": float(F.cross_entropy(logits / temperature, y_val)),
    }


def export_ensemble(
    args: argparse.Namespace,
    widths: tuple[int, ...],
    x_val: torch.Tensor,
    y_val: torch.Tensor,
) -> int:
    """``--ensemble``: the members' mean logits, calibrated on the validation split, exported."""
    members = []
    member_accuracy = {}
    for path in args.ensemble:
        net = ExpressionCNN(widths)  # type: ignore[arg-type]
        net.load_state_dict(torch.load(path))
        members.append(net.eval())
        hit = logits_of(net, x_val).argmax(1) == y_val
        member_accuracy[str(path)] = float(hit.float().mean())
    shifts = tuple(int(pixels) for pixels in args.shifts.split(","))
    ensemble = Ensemble(members, flip=not args.no_flip, shifts=shifts)
    temperature, report = calibration_report(ensemble, x_val, y_val)
    report |= {
        "ensemble": [str(path) for path in args.ensemble],
        "member_validation_accuracy_with_flip": member_accuracy,
        "flip": not args.no_flip,
        "shifts_down_px": list(shifts),
        "widths": list(widths),
        "torch": torch.__version__,
    }
    export(ensemble, temperature, report, args.out)
    return 0


def export(ensemble: Ensemble, temperature: float, report: dict[str, object], out: Path) -> None:
    """Print ``report``, write the ONNX graph to ``out`` and the report beside it."""
    print(json.dumps(report, indent=2))
    exported = Exported(ensemble.eval(), temperature).eval()
    dummy = torch.zeros(2, 48, 48, 1)
    torch.onnx.export(
        exported,
        (dummy,),
        str(out),
        input_names=["input"],
        output_names=["probabilities"],
        dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    out.with_suffix(".training.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
