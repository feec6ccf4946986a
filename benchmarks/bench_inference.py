"""Inference overheads, measured side by side in one process (CPU; add --device cuda on a GPU).

(a) forward with SE capture / plain forward (``capture_excitations(model, x)`` as the app and CLI call it: SE
discovery included, cached per model after the first call), (b) SE-DenseNet-121 (SE in every layer) / baseline,
(c) our baseline / torchvision densenet121 with the same weights, (e) statistics throughput / plain inference.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torchvision
from common import interleaved, machine, ratio_line

from sedensenet import build_model
from sedensenet.analysis.capture import _discover, capture_excitations, find_se_modules
from sedensenet.analysis.statistics import excitation_stats
from sedensenet.device import amp_dtype, autocast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="batch sizes (default 1 16)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time (use with OMP_NUM_THREADS=1 on an overloaded shared host)")
    ap.add_argument("--no-stats", action="store_true", help="skip (e)")
    args = ap.parse_args()
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        ap.error("--clock cpu needs one torch thread (OMP_NUM_THREADS=1)")
    dev = torch.device(args.device)
    torch.manual_seed(0)
    print(f"machine: {machine()}; batches {args.batch}, {args.size}², device {dev}, {args.clock} clock")
    se = build_model("densenet121", se="layer").eval().to(dev)
    base = build_model("densenet121", se="none").eval().to(dev)
    tv = torchvision.models.densenet121().eval().to(dev)
    base.load_state_dict(tv.state_dict())
    _discovery(se, args.repeats, args.clock)
    for batch in args.batch:
        x = torch.randn(batch, 3, args.size, args.size, device=dev)
        print(f"batch {batch}")
        _overheads(se, base, tv, x, args.repeats, dev, args.clock)
    if args.no_stats:
        return
    x = torch.randn(args.batch[-1], 3, args.size, args.size, device=dev)
    labels = torch.arange(args.batch[-1]) % 10
    batches = [(x, labels)] * 3
    classes = [str(i) for i in range(10)]
    with torch.inference_mode():
        t2 = interleaved({"stats": lambda: excitation_stats(se, batches, classes, progress=False, precision="fp32"),
                          "infer": lambda: [se(b) for b, _ in batches]}, repeats=max(3, args.repeats // 2),
                         clock_kind=args.clock)
    print(ratio_line(f"(e) statistics / plain inference throughput, batch {args.batch[-1]}", t2, "stats", "infer",
                     "≥ 0.95", invert=True))


def _discovery(model: torch.nn.Module, repeats: int, clock: str) -> None:
    """What capture's per-model cache saves on every call: walking the modules to find the SE layers."""
    t = interleaved({"walk": lambda: _discover(model), "cached": lambda: find_se_modules(model)}, repeats=repeats,
                    clock_kind=clock)
    walk, cached = statistics.median(t["walk"]), statistics.median(t["cached"])
    print(f"SE discovery per capture call: walking the model {walk * 1e3:.2f} ms, cached {cached * 1e6:.0f} µs")


def _overheads(se: torch.nn.Module, base: torch.nn.Module, tv: torch.nn.Module, x: torch.Tensor, repeats: int,
               dev: torch.device, clock: str = "wall") -> None:
    def fwd(m):
        return lambda: m(x)

    fns = {"capture": lambda: capture_excitations(se, x, precision="fp32"), "plain": fwd(se), "base": fwd(base),
           "tv": fwd(tv)}
    with torch.inference_mode():
        t = interleaved(fns, repeats=repeats, clock_kind=clock)
    print(ratio_line("(a) SE-121 forward with capture / without", t, "capture", "plain", "≤ 1.02"))
    print(ratio_line("(b) SE-121 (SE every layer) / baseline DenseNet-121", t, "plain", "base", "≤ 1.05"))
    print(ratio_line("(c) our baseline / torchvision densenet121 (same weights)", t, "base", "tv", "≤ 1.00"))
    print(images_per_s("fp32", t, x.shape[0]))
    if dev.type == "cuda":
        for m in (se, base, tv):
            m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        fns = {"capture": lambda: capture_excitations(se, x), "plain": fwd(se), "base": fwd(base), "tv": fwd(tv)}
        with torch.inference_mode(), autocast(dev, "auto"):
            t3 = interleaved(fns, repeats=repeats, clock_kind=clock)
        print(f"AMP dtype {amp_dtype(dev, 'auto')}, channels_last")
        print(ratio_line("(a, AMP) forward with capture / without", t3, "capture", "plain", "≤ 1.02"))
        print(ratio_line("(b, AMP) SE-121 / baseline", t3, "plain", "base", "≤ 1.05"))
        print(ratio_line("(c, AMP) our baseline / torchvision", t3, "base", "tv", "≤ 1.00"))
        print(images_per_s("AMP", t3, x.shape[0]))


def images_per_s(label: str, times: dict[str, list[float]], batch: int) -> str:
    """Images/s (median) of each timed function."""
    parts = [f"{name} {batch / statistics.median(v):,.1f}" for name, v in times.items()]
    return f"images/s ({label}): " + ", ".join(parts)

if __name__ == "__main__":
    main()
