"""Select, evaluate and ship the weather pair; print the seed table.

Run after training the pairs (README, "The weather models"):

    python tools/weather_models.py RUNS_DIR [RUNS_DIR ...] --data ../shared/data/weather --ship assets/models

Each RUNS_DIR (one per recipe) holds ``seed<N>/weather-se.pt`` and ``seed<N>/weather-baseline.pt``. For every
model the square view (centre crop or letterbox) is chosen on the validation split; the test split is evaluated
once per model with that view. The shipped pair is the seed whose SE model is best on validation over every recipe
given (ties: the lower validation loss); its SE model carries the class-wise excitation statistics of the
validation + test photos (numbers only) and both carry the dataset citation, the split, their test accuracy and
the exact training command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.statistics import excitation_stats
from sedensenet.cli.options import dataclass_flags
from sedensenet.data.images import RESIZE_MODES, checkpoint_transform
from sedensenet.training.evaluate import confusion_matrix, split_dataset
from sedensenet.training.history import best_epoch_of
from sedensenet.training.loop import TrainConfig

CITATION = ("Ajayi, Gbeminiyi (2018). Multi-class Weather Dataset for Image Classification. Mendeley Data, V1. "
            "doi:10.17632/4drtyfjtfy.1. Licence CC BY 4.0.")


def training_command(train_args: dict[str, Any]) -> str:
    """The ``sedensenet train --pair`` command line that reproduces the SE model's ``train_args`` (every flag that
    differs from its default; data paths relative to the repository)."""
    cfg = TrainConfig(**{**train_args, "data": "../shared/data/weather",
                         "split_file": "../shared/data/weather/split.csv", "out": "models/weather-se.pt"})
    return shlex.join(["sedensenet", "train", *dataclass_flags(cfg, always=("arch", "se", "seed")), "--pair"])


def _accuracy(loaded: Any, data: Path, split: str, size: int, resize: str) -> tuple[float, list[list[int]]]:
    tf = checkpoint_transform(loaded.meta, input_size=size, resize=resize)
    ds = split_dataset(loaded, data, data / "split.csv", split, tf)
    cm = confusion_matrix(loaded.model, DataLoader(ds, batch_size=64), loaded.device, len(loaded.classes),
                          progress=False)
    return float(cm.diag().sum() / cm.sum()), cm.tolist()


@torch.inference_mode()
def _val_loss(loaded: Any, data: Path, size: int, resize: str) -> float:
    """Mean cross-entropy on the validation photos with one view (breaks accuracy ties between models)."""
    tf = checkpoint_transform(loaded.meta, input_size=size, resize=resize)
    ds = split_dataset(loaded, data, data / "split.csv", "val", tf)
    losses = [torch.nn.functional.cross_entropy(loaded.model(x), y, reduction="sum")
              for x, y in DataLoader(ds, batch_size=64)]
    return float(sum(losses) / len(ds))


def evaluate(path: Path, data: Path) -> dict[str, Any]:
    """Validation accuracy of every square view (crop or letterbox, at the training size or 8/7 or 9/7 of it:
    random-resized-crop training makes objects look larger than a plain resize does), the view chosen on
    validation (ties: the smaller size, then crop), its validation loss, and the test report with it."""
    loaded = load_checkpoint(path, device="cpu")
    base = loaded.input_size
    views = [(size, mode) for size in (base, round(base * 8 / 7), round(base * 9 / 7)) for mode in RESIZE_MODES]
    val = {f"{mode}@{size}": _accuracy(loaded, data, "val", size, mode)[0] for size, mode in views}
    size, mode = max(views, key=lambda v: (val[f"{v[1]}@{v[0]}"], -v[0], v[1] == "crop"))
    loaded.meta = replace(loaded.meta, input_size=size, resize=mode)
    val_loss = _val_loss(loaded, data, size, mode)
    accuracy, cm = _accuracy(loaded, data, "test", size, mode)
    totals = np.array(cm).sum(1)
    per_class = {c: float(cm[i][i] / totals[i]) for i, c in enumerate(loaded.classes)}
    return {"val": val, "val_loss": val_loss, "resize": mode, "input_size": size,
            "test": {"accuracy": accuracy, "n": int(totals.sum()), "confusion_matrix": cm,
                     "per_class_accuracy": per_class}}


def gate_std_across_photos(loaded: Any, data: Path, split: str) -> dict[str, float]:
    """Std of every SE layer's gates across the photos of ``split`` (mean over channels): ≥ 0.01 = informative."""
    ds = split_dataset(loaded, data, data / "split.csv", split, checkpoint_transform(loaded.meta))
    gates: dict[str, list[torch.Tensor]] = {}
    for x, _ in DataLoader(ds, batch_size=64):
        for r in capture_excitations(loaded.model, x).records:
            gates.setdefault(r.name, []).append(r.excitation)
    return {name: float(torch.cat(v).std(0).mean()) for name, v in gates.items()}


def class_statistics(loaded: Any, data: Path) -> dict[str, Any]:
    """Class-wise excitation statistics over the validation + test photos, as plain numbers."""
    tf = checkpoint_transform(loaded.meta)
    parts = [split_dataset(loaded, data, data / "split.csv", s, tf) for s in ("val", "test")]
    loader = DataLoader(ConcatDataset(parts), batch_size=64)
    stats = excitation_stats(loaded.model, loader, loaded.classes, progress=False)
    return {**stats.as_dict(), "description": "weather photos, validation + test splits "
                                              f"({sum(len(p) for p in parts)} photos; Ajayi 2018, CC BY 4.0)"}


def ship(se: Path, base: Path, results: dict[str, dict[str, Any]], data: Path, out: Path) -> None:
    """Write the shipped pair with provenance, test accuracy and (SE model) stored class statistics."""
    out.mkdir(parents=True, exist_ok=True)
    command = training_command(load_checkpoint(se, device="cpu").meta.train_args)  # one command trains both
    for path, name in ((se, "weather-se.pt"), (base, "weather-baseline.pt")):
        loaded = load_checkpoint(path, device="cpu")
        r = results[str(path)]
        meta = loaded.meta.stored()
        meta.update(resize=r["resize"], input_size=r["input_size"], dataset=CITATION,
                    split="../shared/data/weather/split.csv (train 781 / val 169 / test 169; duplicate groups "
                          "kept within one split)",
                    evaluation={"split": "test", "accuracy": r["test"]["accuracy"], "n": r["test"]["n"],
                                "per_class_accuracy": r["test"]["per_class_accuracy"],
                                "confusion_matrix": r["test"]["confusion_matrix"],
                                "val_accuracy_by_view": r["val"],
                                "view": f"{r['resize']} at {r['input_size']}² (chosen on validation)"},
                    training_command=command)
        loaded.meta = replace(loaded.meta, resize=r["resize"], input_size=r["input_size"])
        if loaded.config.se != "none":
            meta["class_statistics"] = class_statistics(loaded, data)
        last = torch.load(path.with_name(path.stem + ".last.pt"), map_location="cpu", weights_only=True)
        meta["history"] = last["meta"]["history"]  # every epoch (training before full histories kept the best's)
        meta["best_epoch"] = best_epoch_of(meta["history"])
        for key in ("source", "assumed", "resume"):
            meta.pop(key, None)
        save_checkpoint(out / name, loaded.model, meta)
        print(f"wrote {out / name} ({(out / name).stat().st_size / 2**20:.2f} MiB)")


def _seeds(runs: Path) -> list[Path]:
    return sorted(d for d in runs.glob("seed*") if (d / "weather-se.pt").is_file()
                  and (d / "weather-baseline.pt").is_file())


def _table(runs: Path, seeds: list[Path], results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{runs}\n| model | " + " | ".join(d.name for d in seeds) + " | mean ± std |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for kind in ("se", "baseline"):
        accs = [results[str(d / f"weather-{kind}.pt")]["test"]["accuracy"] * 100 for d in seeds]
        spread = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        print(f"| {kind} test acc (%) | " + " | ".join(f"{a:.2f}" for a in accs) +
              f" | {statistics.mean(accs):.2f} ± {spread:.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="one folder per recipe, each with seed<N>/ pairs")
    p.add_argument("--data", type=Path, default=Path("../shared/data/weather"))
    p.add_argument("--ship", type=Path, default=None, help="write the chosen pair here")
    p.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    recipes = {runs: _seeds(runs) for runs in args.runs}
    for runs, seeds in recipes.items():
        if not seeds:
            print(f"no seed*/weather-se.pt + weather-baseline.pt pairs under {runs}", file=sys.stderr)
            return 2
    results: dict[str, dict[str, Any]] = {}
    for seeds in recipes.values():
        for d in seeds:
            for kind in ("se", "baseline"):
                path = d / f"weather-{kind}.pt"
                results[str(path)] = r = evaluate(path, args.data)
                views = " ".join(f"{k} {v:.4f}" for k, v in r["val"].items())
                print(f"{d} {kind:<8} val {views} → {r['resize']}@{r['input_size']} (val loss "
                      f"{r['val_loss']:.4f}); test {r['test']['accuracy']:.4f}", flush=True)
    for runs, seeds in recipes.items():
        _table(runs, seeds, results)
    # the shipped pair: the SE model best on validation over every recipe (ties: the lower validation loss)
    candidates = [d for seeds in recipes.values() for d in seeds]
    best = max(candidates, key=lambda d: (max(results[str(d / "weather-se.pt")]["val"].values()),
                                          -results[str(d / "weather-se.pt")]["val_loss"]))
    print(f"\nselected on validation: {best}")
    for kind in ("se", "baseline"):
        path = best / f"weather-{kind}.pt"
        loaded = load_checkpoint(path, device="cpu")
        loaded.meta = replace(loaded.meta, resize=results[str(path)]["resize"],
                              input_size=results[str(path)]["input_size"])
        if kind == "se":
            spread = gate_std_across_photos(loaded, args.data, "test")
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
