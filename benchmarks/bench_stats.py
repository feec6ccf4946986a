"""(f) ``sedensenet stats`` throughput vs plain inference over the same data loader (images/s and their ratio).

Both loops read the same in-memory images through a DataLoader with the same batch size, device and precision
(``auto``: AMP on CUDA, fp32 on the CPU); "plain" only runs the model, "stats" is ``run_statistics`` (gate hooks
accumulating per-class float64 sums on the device). Run with ``--device cuda`` on a GPU.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import interleaved, machine, ratio_line
from torch.utils.data import DataLoader, Dataset

from sedensenet import build_model
from sedensenet.analysis.stats_run import run_statistics
from sedensenet.device import autocast


class Images(Dataset):
    """``n`` random images with labels, as ``(tensor, label, error)`` items."""

    def __init__(self, n: int, size: int, classes: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, size, size, generator=g)
        self.y = torch.arange(n) % classes

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        return self.x[i], int(self.y[i]), ""


def plain(model: torch.nn.Module, data: Dataset, batch: int, workers: int, precision: str) -> None:
    device = next(model.parameters()).device
    loader = DataLoader(data, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda",
                        collate_fn=lambda items: torch.stack([x for x, _, _ in items]))
    for x in loader:
        x = x.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(device, precision):
            model(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--arch", default="demo", choices=("demo", "densenet121"))
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    size = 64 if args.arch == "demo" else 224
    classes = 8 if args.arch == "demo" else 1000
    options = {"reduction": 4} if args.arch == "demo" else {}  # the shipped demo models' SE width
    model = build_model(args.arch, se="layer", num_classes=classes, **options).eval().to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    data = Images(args.images, size, classes)
    names = [str(i) for i in range(classes)]
    print(f"machine: {machine()}; {args.arch} (SE every layer), {args.images} images {size}², batch {args.batch}, "
          f"{args.workers} loader workers, device {dev}, precision {args.precision}")
    times = interleaved({
        "stats": lambda: run_statistics(model, data, names, input_size=size, batch_size=args.batch,
                                        workers=args.workers, precision=args.precision, progress=False),
        "plain": lambda: plain(model, data, args.batch, args.workers, args.precision),
    }, repeats=args.repeats, warmup=1)
    for name in ("plain", "stats"):
        print(f"{name + ' images/s':<20} {args.images / statistics.median(times[name]):10.1f}")
    print(ratio_line("(f) stats throughput / plain inference throughput", times, "stats", "plain", "≥ 0.95",
                     invert=True))


if __name__ == "__main__":
    main()
