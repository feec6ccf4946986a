"""Training benchmarks for DenseNet-BC (L=100, k=12), batch 64, 32² (CPU by default).

- memory-efficient / normal: peak memory and time per step (each mode in a fresh process, peak RSS delta on CPU,
  peak allocated memory on CUDA); gpleiss reports 0.56× memory at 1.25× time on GPU.
- our baseline / torchvision DenseNet with the same config: training throughput, interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from common import interleaved, machine, ratio_line

from sedensenet import build_model


def _step_fn(model, x, y, opt):
    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def child(mode: str, device: str, steps: int) -> None:
    dev = torch.device(device)
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32, device=dev), torch.randint(0, 10, (64,), device=dev)
    model = build_model("densenet_bc", se="none", depth=100, growth=12, memory_efficient=mode == "efficient").to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = _step_fn(model, x, y, opt)
    with open("/proc/self/statm") as fh:  # resident pages before any activation is allocated
        before = int(fh.read().split()[1]) * resource.getpagesize()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"peak": peak, "before": before, "time": sorted(times)[len(times) // 2]}))


def run_child(mode: str, device: str, steps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--device", device, "--steps", str(steps)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.device, args.steps)
        return
    print(f"machine: {machine()}; DenseNet-BC-100 k=12, batch 64, 32², device {args.device}")
    normal, efficient = run_child("normal", args.device, args.steps), run_child("efficient", args.device, args.steps)
    if args.device == "cpu":  # training memory = peak RSS minus what the process held before the first step
        mem_n, mem_e = normal["peak"] - normal["before"], efficient["peak"] - efficient["before"]
        unit = "peak RSS growth during training"
    else:
        mem_n, mem_e = normal["peak"], efficient["peak"]
        unit = "peak allocated"
    print(f"memory-efficient / normal {unit}: {mem_e / 2**20:8.0f} MiB / {mem_n / 2**20:8.0f} MiB = "
          f"{mem_e / mem_n:6.3f}   (target ≤ 0.55)")
    print(f"{'memory-efficient / normal time per step (median, separate processes)':<58} "
          f"{efficient['time'] * 1e3:9.1f} ms / {normal['time'] * 1e3:9.1f} ms   ratio "
          f"{efficient['time'] / normal['time']:6.3f} (target ≤ 1.2)")
    import torchvision

    dev = torch.device(args.device)
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32, device=dev), torch.randint(0, 10, (64,), device=dev)
    # same layout as torchvision's DenseNet class (it always has the ImageNet stem)
    ours = build_model("densenet_bc", se="none", depth=100, growth=12, stem="imagenet").to(dev)
    tv = torchvision.models.DenseNet(growth_rate=12, block_config=(16, 16, 16), num_init_features=24, bn_size=4,
                                     num_classes=10).to(dev)
    t = interleaved({"ours": _step_fn(ours, x, y, torch.optim.SGD(ours.parameters(), lr=0.1)),
                     "tv": _step_fn(tv, x, y, torch.optim.SGD(tv.parameters(), lr=0.1))}, repeats=args.steps,
                    warmup=1)
    print(ratio_line("training throughput ours / torchvision (= time tv / time ours)", t, "ours", "tv", "≥ 1.00",
                     invert=True))


if __name__ == "__main__":
    main()
