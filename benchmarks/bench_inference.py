"""Inference overheads, measured side by side in one process (CPU; add --device cuda on a GPU).

(a) forward with SE capture / plain forward, (b) SE-DenseNet-121 (SE in every layer) / baseline,
(c) our baseline / torchvision densenet121 with the same weights, (e) statistics throughput / plain inference.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torchvision
from common import interleaved, machine, ratio_line

from sedensenet import build_model
from sedensenet.analysis.capture import capture_excitations, find_se_modules
from sedensenet.analysis.statistics import excitation_stats
from sedensenet.device import amp_dtype, autocast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    print(f"machine: {machine()}; batch {args.batch}, {args.size}², device {dev}")
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev)
    se = build_model("densenet121", se="layer").eval().to(dev)
    base = build_model("densenet121", se="none").eval().to(dev)
    tv = torchvision.models.densenet121().eval().to(dev)
    base.load_state_dict(tv.state_dict())
    modules = find_se_modules(se)

    def fwd(m):
        return lambda: m(x)

    with torch.inference_mode():
        t = interleaved({"capture": lambda: capture_excitations(se, x, se_modules=modules, precision="fp32"),
                         "plain": fwd(se),
                         "base": fwd(base), "tv": fwd(tv)}, repeats=args.repeats)
    print(ratio_line("(a) SE-121 forward with capture / without", t, "capture", "plain", "≤ 1.02"))
    print(ratio_line("(b) SE-121 (SE every layer) / baseline DenseNet-121", t, "plain", "base", "≤ 1.05"))
    print(ratio_line("(c) our baseline / torchvision densenet121 (same weights)", t, "base", "tv", "≤ 1.00"))

    labels = torch.arange(args.batch) % 10
    batches = [(x, labels)] * 3
    classes = [str(i) for i in range(10)]
    with torch.inference_mode():
        t2 = interleaved({"stats": lambda: excitation_stats(se, batches, classes, progress=False, precision="fp32"),
                          "infer": lambda: [se(b) for b, _ in batches]}, repeats=max(3, args.repeats // 2))
    print(ratio_line("(e) statistics throughput / plain inference throughput", t2, "stats", "infer", "≥ 0.95",
                     invert=True))
    print(images_per_s("fp32", t, args.batch))
    if dev.type == "cuda":
        for m in (se, base, tv):
            m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(dev, "auto"):
            t3 = interleaved({"capture": lambda: capture_excitations(se, x, se_modules=modules), "plain": fwd(se),
                              "base": fwd(base), "tv": fwd(tv)}, repeats=args.repeats)
        print(f"AMP dtype {amp_dtype(dev, 'auto')}, channels_last")
        print(ratio_line("(a, AMP) forward with capture / without", t3, "capture", "plain", "≤ 1.02"))
        print(ratio_line("(b, AMP) SE-121 / baseline", t3, "plain", "base", "≤ 1.05"))
        print(ratio_line("(c, AMP) our baseline / torchvision", t3, "base", "tv", "≤ 1.00"))
        print(images_per_s("AMP", t3, args.batch))


def images_per_s(label: str, times: dict[str, list[float]], batch: int) -> str:
    """Images/s (median) of each timed function."""
    parts = [f"{name} {batch / statistics.median(v):,.1f}" for name, v in times.items()]
    return f"images/s ({label}): " + ", ".join(parts)


if __name__ == "__main__":
    main()
