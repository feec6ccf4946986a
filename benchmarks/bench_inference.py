"""Inference overheads, measured side by side in one process (CPU; add --device cuda on a GPU).

(a) forward with SE capture / plain forward, (b) SE-DenseNet-121 (SE in every layer) / baseline,
(c) our baseline / torchvision densenet121 with the same weights, (e) statistics throughput / plain inference.
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from common import interleaved, machine, ratio_line

from sedensenet import build_model
from sedensenet.analysis.capture import capture_excitations, find_se_modules
from sedensenet.analysis.statistics import excitation_stats


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
        t = interleaved({"capture": lambda: capture_excitations(se, x, se_modules=modules), "plain": fwd(se),
                         "base": fwd(base), "tv": fwd(tv)}, repeats=args.repeats)
    print(ratio_line("(a) SE-121 forward with capture / without", t, "capture", "plain", "≤ 1.02"))
    print(ratio_line("(b) SE-121 (SE every layer) / baseline DenseNet-121", t, "plain", "base", "≤ 1.05"))
    print(ratio_line("(c) our baseline / torchvision densenet121 (same weights)", t, "base", "tv", "≤ 1.00"))

    labels = torch.arange(args.batch) % 10
    batches = [(x, labels)] * 3
    classes = [str(i) for i in range(10)]
    with torch.inference_mode():
        t2 = interleaved({"stats": lambda: excitation_stats(se, batches, classes, progress=False),
                          "infer": lambda: [se(b) for b, _ in batches]}, repeats=max(3, args.repeats // 2))
    print(ratio_line("(e) statistics throughput / plain inference throughput", t2, "stats", "infer", "≥ 0.95",
                     invert=True))
    if dev.type == "cuda":
        with torch.inference_mode(), torch.autocast("cuda"):
            t3 = interleaved({"capture": lambda: capture_excitations(se, x, se_modules=modules), "plain": fwd(se),
                              "base": fwd(base), "tv": fwd(tv)}, repeats=args.repeats)
        print(ratio_line("(a, AMP) forward with capture / without", t3, "capture", "plain", "≤ 1.02"))
        print(ratio_line("(b, AMP) SE-121 / baseline", t3, "plain", "base", "≤ 1.05"))
        print(ratio_line("(c, AMP) our baseline / torchvision", t3, "base", "tv", "≤ 1.00"))


if __name__ == "__main__":
    main()
