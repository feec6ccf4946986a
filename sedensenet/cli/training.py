"""``sedensenet train`` / ``evaluate`` / ``curves`` sub-commands."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from sedensenet.cli.options import add_dataclass_arguments, add_device, add_json
from sedensenet.cli.output import json_text, terminal
from sedensenet.errors import ConfigError

TRAIN_GROUPS = {"data": "data", "model": "model", "optimisation": "optimisation", "run": "run"}
EXAMPLES = """examples:
  sedensenet train --data demo --pair --epochs 15 --out models/demo-se.pt
  sedensenet train --data photos/ --val-split 0.2 --arch densenet121 --se layer --input-size 224 --out weather.pt
  sedensenet train --data cifar10 --data-dir ~/data --arch densenet_bc --depth 100 --growth 12 --epochs 300
  torchrun --nproc_per_node 2 -m sedensenet train --data demo --out ddp.pt      (multi-GPU / multi-process)
"""


def add_train_parser(sub: Any) -> None:
    """Register ``train``: one flag per :class:`~sedensenet.training.loop.TrainConfig` field, plus ``--pair``."""
    from sedensenet.training.loop import TrainConfig

    p = sub.add_parser("train", help="train an SE-DenseNet (and with --pair its baseline)",
                       description="Train an SE-DenseNet on the offline demo shapes, an image folder "
                                   "(root/<class>/*.jpg, or root/train + root/val) or CIFAR-10/100. Keeps the "
                                   "best-by-validation checkpoint at --out and the latest (for --resume) at "
                                   "<out>.last.pt; the per-epoch history is stored in both.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = add_dataclass_arguments(p, TrainConfig, groups=TRAIN_GROUPS, default_group="run")
    groups["run"].add_argument("--pair", action="store_true",
                   help="also train the baseline (se=none) with identical data order, seed and settings; "
                        "saved as <name>-baseline.pt (a trailing -se in the name is replaced)")
    p.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from sedensenet.training.loop import TrainConfig, train, train_pair

    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    if args.pair:
        train_pair(cfg)
    else:
        result = train(cfg)
        print(f"best val acc {result.best_val_acc:.4f} → {result.best_path}")
    return 0


def add_evaluate_parser(sub: Any) -> None:
    """Register ``evaluate``."""
    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix on a dataset",
                       description="Evaluate a checkpoint on 'demo' (a fresh demo set), an image folder "
                                   "(root/<class>/…) or cifar10/cifar100 (test split).")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth) to evaluate")
    p.add_argument("data", metavar="DATA", help="'demo', 'cifar10', 'cifar100' or an image folder")
    p.add_argument("--demo-n", type=int, default=800, help="demo images to generate (default 800)")
    p.add_argument("--demo-seed", type=int, default=12345, help="demo seed (default 12345, unused in training)")
    p.add_argument("--data-dir", default="data", help="CIFAR location")
    p.add_argument("--split-file", default=None, help="CSV with path,split[,class] relative to DATA (a folder)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="which rows of --split-file to evaluate (default test)")
    p.add_argument("--resize", default=None, choices=("crop", "letterbox"),
                   help="override the checkpoint's square view: centre crop or letterbox (default: the model's)")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    add_device(p)
    add_json(p)
    p.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from sedensenet.training.evaluate import evaluate_checkpoint, format_report

    report = evaluate_checkpoint(args.checkpoint, args.data, demo_n=args.demo_n, demo_seed=args.demo_seed,
                                 data_dir=args.data_dir, batch_size=args.batch_size, device=args.device,
                                 split_file=args.split_file, split=args.split, resize=args.resize)
    print(json_text(report) if args.json else terminal(format_report(report)))
    return 0


def add_curves_parser(sub: Any) -> None:
    """Register ``curves``."""
    p = sub.add_parser("curves", help="train/val accuracy and loss curves of one or more checkpoints",
                       description="Plot the training history stored in checkpoints (several overlaid, e.g. SE vs "
                                   "baseline). Writes HTML; PNG too when the name ends in .png (needs kaleido and "
                                   "a Chromium).")
    p.add_argument("checkpoints", metavar="CKPT", nargs="+", help="checkpoints whose stored histories to plot")
    p.add_argument("--out", default="curves.html", help="output file, .html or .png (default curves.html)")
    p.set_defaults(handler=_cmd_curves)


def _cmd_curves(args: argparse.Namespace) -> int:
    from sedensenet.figures import training_curves, write_figure
    from sedensenet.models.checkpoint import load_checkpoint

    runs = {}
    for path in args.checkpoints:
        loaded = load_checkpoint(path, device="cpu")
        if not loaded.meta.history:
            raise ConfigError(f"{path} has no training history (it was not trained with sedensenet train)")
        label = f"{Path(path).stem} (se={loaded.config.se})"
        runs[label] = loaded.meta.history
    written = write_figure(training_curves(runs), Path(args.out))
    for path in written:
        print(f"wrote {path}")
    return 0


COMMANDS = (add_train_parser, add_evaluate_parser, add_curves_parser)
