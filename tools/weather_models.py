"""Select, evaluate and ship the weather pair; print the seed table.

Run after training the pairs (README, "The weather models"):

    python tools/weather_models.py RUNS_DIR --data ../shared/data/weather --ship assets/models

RUNS_DIR holds ``seed<N>/weather-se.pt`` and ``seed<N>/weather-baseline.pt``. For every model the square view
(centre crop or letterbox) is chosen on the validation split; the test split is evaluated once per model with
that view. The shipped pair is the seed whose SE model is best on validation; its SE model carries the class-wise
excitation statistics of the validation + test photos (numbers only) and both carry the dataset citation, the
split, their test accuracy and the exact training command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.statistics import excitation_stats
from sedensenet.data.images import eval_transform
from sedensenet.training.evaluate import evaluate_checkpoint, split_dataset

CITATION = ("Ajayi, Gbeminiyi (2018). Multi-class Weather Dataset for Image Classification. Mendeley Data, V1. "
            "doi:10.17632/4drtyfjtfy.1. Licence CC BY 4.0.")


def training_command(train_args: dict[str, Any]) -> str:
    """The ``sedensenet train`` command line that reproduces ``train_args`` (data paths relative to the repo)."""
    a = train_args
    return (f"sedensenet train --data ../shared/data/weather --split-file ../shared/data/weather/split.csv "
            f"--arch {a['arch']} --input-size {a['input_size']} --epochs {a['epochs']} --se layer "
            f"--reduction {a['reduction']} --se-bias --label-smoothing {a['label_smoothing']:g} "
            f"--color-jitter {a['color_jitter']:g} --workers 0 --seed {a['seed']} --pair "
            "--out models/weather-se.pt")


def evaluate(path: Path, data: Path) -> dict[str, Any]:
    """Validation accuracy of both square views, the chosen view, and the test report with it."""
    split_file = data / "split.csv"
    val = {mode: evaluate_checkpoint(path, str(data), split_file=split_file, split="val", resize=mode,
                                     device="cpu", progress=False)["accuracy"] for mode in ("crop", "letterbox")}
    chosen = max(val, key=lambda m: (val[m], m == "crop"))  # ties keep the centre crop
    test = evaluate_checkpoint(path, str(data), split_file=split_file, split="test", resize=chosen, device="cpu",
                               progress=False)
    return {"val": val, "resize": chosen, "test": test}


def gate_spread(loaded: Any, data: Path, split: str) -> dict[str, float]:
    """Std of every SE layer's gates across the photos of ``split`` (mean over channels): ≥ 0.01 = informative."""
    ds = split_dataset(loaded, data, data / "split.csv", split, _transform(loaded))
    gates: dict[str, list[torch.Tensor]] = {}
    for x, _ in DataLoader(ds, batch_size=64):
        for r in capture_excitations(loaded.model, x).records:
            gates.setdefault(r.name, []).append(r.excitation)
    return {name: float(torch.cat(v).std(0).mean()) for name, v in gates.items()}


def _transform(loaded: Any) -> Any:
    m = loaded.meta
    return eval_transform(loaded.input_size, m["mean"], m["std"], m.get("resize", "crop"))


def class_statistics(loaded: Any, data: Path) -> dict[str, Any]:
    """Class-wise excitation statistics over the validation + test photos, as plain numbers."""
    parts = [split_dataset(loaded, data, data / "split.csv", s, _transform(loaded)) for s in ("val", "test")]
    loader = DataLoader(ConcatDataset(parts), batch_size=64)
    stats = excitation_stats(loaded.model, loader, loaded.classes, progress=False)
    return {**stats.as_dict(), "description": "weather photos, validation + test splits "
                                              f"({sum(len(p) for p in parts)} photos; Ajayi 2018, CC BY 4.0)"}


def ship(se: Path, base: Path, results: dict[str, dict[str, Any]], data: Path, out: Path) -> None:
    """Write the shipped pair with provenance, test accuracy and (SE model) stored class statistics."""
    out.mkdir(parents=True, exist_ok=True)
    for path, name in ((se, "weather-se.pt"), (base, "weather-baseline.pt")):
        loaded = load_checkpoint(path, device="cpu")
        r = results[str(path)]
        meta = dict(loaded.meta)
        meta.update(resize=r["resize"], dataset=CITATION,
                    split="../shared/data/weather/split.csv (train 781 / val 169 / test 169; duplicate groups "
                          "kept within one split)",
                    evaluation={"split": "test", "accuracy": r["test"]["accuracy"], "n": r["test"]["n"],
                                "per_class_accuracy": r["test"]["per_class_accuracy"],
                                "confusion_matrix": r["test"]["confusion_matrix"],
                                "val_accuracy_by_view": r["val"]},
                    training_command=training_command(meta["train_args"]))
        loaded.meta.update(resize=r["resize"])
        if loaded.config.se != "none":
            meta["class_statistics"] = class_statistics(loaded, data)
        for key in ("source", "assumed", "resume"):
            meta.pop(key, None)
        save_checkpoint(out / name, loaded.model, meta)
        print(f"wrote {out / name} ({(out / name).stat().st_size / 2**20:.2f} MiB)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data/weather"))
    p.add_argument("--ship", type=Path, default=None, help="write the chosen pair here")
    p.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seeds = sorted(d for d in args.runs.glob("seed*") if (d / "weather-se.pt").is_file()
                   and (d / "weather-baseline.pt").is_file())
    if not seeds:
        print(f"no seed*/weather-se.pt + weather-baseline.pt pairs under {args.runs}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, Any]] = {}
    for d in seeds:
        for kind in ("se", "baseline"):
            path = d / f"weather-{kind}.pt"
            results[str(path)] = evaluate(path, args.data)
            r = results[str(path)]
            print(f"{d.name} {kind:<8} val crop {r['val']['crop']:.4f} letterbox {r['val']['letterbox']:.4f} "
                  f"→ {r['resize']}; test {r['test']['accuracy']:.4f}", flush=True)
    print("\n| model | " + " | ".join(d.name for d in seeds) + " | mean ± std |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for kind in ("se", "baseline"):
        accs = [results[str(d / f"weather-{kind}.pt")]["test"]["accuracy"] * 100 for d in seeds]
        spread = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        print(f"| {kind} test acc (%) | " + " | ".join(f"{a:.2f}" for a in accs) +
              f" | {statistics.mean(accs):.2f} ± {spread:.2f} |")
    best = max(seeds, key=lambda d: results[str(d / "weather-se.pt")]["val"][
        results[str(d / "weather-se.pt")]["resize"]])
    print(f"\nselected on validation: {best.name}")
    for kind in ("se", "baseline"):
        path = best / f"weather-{kind}.pt"
        loaded = load_checkpoint(path, device="cpu")
        loaded.meta["resize"] = results[str(path)]["resize"]
        if kind == "se":
            spread = gate_spread(loaded, args.data, "test")
            print("gate std across test photos per SE layer: min "
                  f"{min(spread.values()):.4f}, max {max(spread.values()):.4f}")
            results[str(path)]["gate_std"] = spread
        cm = np.array(results[str(path)]["test"]["confusion_matrix"])
        print(f"{kind} test confusion (rows true {loaded.classes}):\n{cm}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.ship:
        ship(best / "weather-se.pt", best / "weather-baseline.pt", results, args.data, args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
