"""Regenerate assets/examples from the shipped demo models (seed 777: used neither for training nor validation).

Picks one clear example per class, three hard cases (the smallest objects), and up to three images on which the
SE model and its baseline disagree; writes their labels and both models' predictions to labels.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sedensenet import load_checkpoint
from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.data.images import preprocess

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "examples"
SEED, N = 777, 1200


def main() -> None:
    se = load_checkpoint(ROOT / "assets" / "models" / "demo-se.pt", device="cpu")
    base = load_checkpoint(ROOT / "assets" / "models" / "demo-baseline.pt", device="cpu")
    samples = [make_sample(SEED, i) for i in range(N)]
    with torch.inference_mode():
        x = preprocess([s.pil for s in samples], se.meta)
        p_se = torch.softmax(se.model(x), 1)
        p_base = torch.softmax(base.model(x), 1)
    chosen: dict[str, tuple[int, str]] = {}
    for c, name in enumerate(DEMO_CLASSES):
        i = next(i for i, s in enumerate(samples) if s.label == c and p_se[i].argmax() == c
                 and p_base[i].argmax() == c and p_se[i, c] > 0.95)
        chosen[f"{name}.png"] = (i, "clear example")
    small = sorted((s.mask.mean(), i) for i, s in enumerate(samples) if p_se[i].argmax() == s.label)
    for _, i in small[:3]:
        chosen[f"hard-small-{i}-{DEMO_CLASSES[samples[i].label]}.png"] = (i, "hard: a very small object")
    disagree = [i for i in range(N) if p_se[i].argmax() != p_base[i].argmax()]
    for i in disagree[:3]:
        chosen[f"disagree-{i}-{DEMO_CLASSES[samples[i].label]}.png"] = (i, "SE and baseline disagree")
    for old in OUT.glob("*.png"):
        old.unlink()
    labels = {}
    for fname, (i, note) in chosen.items():
        samples[i].pil.save(OUT / fname)
        labels[fname] = {"label": DEMO_CLASSES[samples[i].label], "note": note, "seed": SEED, "index": i,
                         "se_prediction": DEMO_CLASSES[int(p_se[i].argmax())],
                         "baseline_prediction": DEMO_CLASSES[int(p_base[i].argmax())]}
    labels["photo-astronaut.jpg"] = {"label": None, "note": "a real photograph (NASA, public domain), none of the "
                                     "demo classes: the models must still answer, and the app shows how"}
    (OUT / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    print(f"wrote {len(labels)} examples; {len(disagree)} of {N} images are classified differently by SE/baseline")


if __name__ == "__main__":
    main()
