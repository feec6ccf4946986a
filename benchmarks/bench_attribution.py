"""(d) Latency of each attribution method (one image), on DenseNet-121 at 224² and on the demo model at 64²."""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from common import machine

from sedensenet import build_model
from sedensenet.analysis.attribution import METHODS, attribute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-121", action="store_true", help="only the demo model")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    dev = torch.device(args.device)
    print(f"machine: {machine()}; device {dev}; defaults: IG 32 steps, GradientSHAP 16 samples, occlusion "
          "window size/8 stride size/16")
    models = [("demo (SE every layer), 64²", build_model("demo", se="layer", reduction=4), 64)]
    if not args.skip_121:
        models.append(("DenseNet-121 (SE every layer), 224²", build_model("densenet121", se="layer"), 224))
    for label, model, size in models:
        model = model.eval().to(dev)
        x = torch.randn(1, 3, size, size, device=dev)
        attribute(model, x, "saliency", 0)  # warm-up
        print(f"\n{label}")
        for method in METHODS:
            t = time.perf_counter()
            attribute(model, x, method, 0)
            print(f"  {method:<22} {time.perf_counter() - t:8.2f} s")
        t = time.perf_counter()
        attribute(model, x, "saliency", 0, smoothgrad=8)
        print(f"  {'smoothgrad(saliency,8)':<22} {time.perf_counter() - t:8.2f} s")


if __name__ == "__main__":
    main()
