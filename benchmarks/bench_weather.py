"""The weather model's costs, measured side by side in one process.

(f) one CPU forward of the weather model (demo layout, at its input size) / DenseNet-121 at 224² (batch 1).
(g) the Explore request on the weather model: image bytes → decode → prediction + every SE record + Integrated
    Gradients (32 steps) + Grad-CAM; median seconds (target ≤ 0.5 s on 2 cores).

Uses ``assets/models/weather-se.pt`` when present (an untrained model of the same layout costs the same otherwise).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import torch
from common import interleaved, machine, ratio_line
from PIL import Image

from sedensenet import build_model, load_checkpoint
from sedensenet.analysis.pipeline import explain_image, run_capture
from sedensenet.data.images import load_image
from sedensenet.models.checkpoint import LoadedModel

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "examples" / "weather" / "dusk-launch-pad.jpg"


def explore_request(loaded: LoadedModel, data: bytes) -> None:
    """What the Explore page computes for a new image (uncached)."""
    img = load_image(data)
    cap = run_capture(loaded, [img])
    target = int(cap.logits[0].argmax())
    explain_image(loaded, img, "integrated_gradients", target, steps=32)
    explain_image(loaded, img, "gradcam", target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    loaded = load_checkpoint(ROOT / "assets" / "models" / "weather-se.pt", device="cpu")
    size = loaded.input_size
    ref = build_model("densenet121", se="none", num_classes=4).eval()
    x_small, x_ref = torch.randn(1, 3, size, size), torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        t = interleaved({"weather": lambda: loaded.model(x_small), "d121": lambda: ref(x_ref)},
                        repeats=args.repeats)
    print(ratio_line(f"(f) weather SE model at {size}² / DenseNet-121 at 224² (batch 1)", t, "weather", "d121",
                     "≪ 1"))
    buf = io.BytesIO()
    Image.open(PHOTO).save(buf, format="JPEG")
    data = buf.getvalue()
    explore_request(loaded, data)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        explore_request(loaded, data)
        times.append(time.perf_counter() - start)
    q = statistics.quantiles(times, n=4)
    print(f"(g) explore request (bytes → prediction + SE records + IG(32) + Grad-CAM): median "
          f"{statistics.median(times):.3f} s (IQR {q[0]:.3f}–{q[2]:.3f}; target ≤ 0.5 s)")


if __name__ == "__main__":
    main()
