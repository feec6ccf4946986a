"""``sedensenet train`` / ``evaluate`` / ``curves`` sub-commands."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from sedensenet.cli.output import json_text, terminal
from sedensenet.models.densenet import ARCHS, SE_PLACEMENTS, SE_SITES, canonical_se

EXAMPLES = """examples:
  sedensenet train --data demo --pair --epochs 15 --out models/demo-se.pt
  sedensenet train --data photos/ --val-split 0.2 --arch densenet121 --se layer --input-size 224 --out weather.pt
  sedensenet train --data cifar10 --data-dir ~/data --arch densenet_bc --depth 100 --growth 12 --epochs 300
  torchrun --nproc_per_node 2 -m sedensenet train --data demo --out ddp.pt      (multi-GPU / multi-process)
"""


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "") else int(text)


def _se_placement(text: str) -> str:
    """argparse type for ``--se``: the canonical placement string, or a usage error listing the choices."""
    try:
        return canonical_se(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_train_parser(sub: Any) -> None:
    """Register ``train``."""
    p = sub.add_parser("train", help="train an SE-DenseNet (and with --pair its baseline)",
                       description="Train an SE-DenseNet on the offline demo shapes, an image folder "
                                   "(root/<class>/*.jpg, or root/train + root/val) or CIFAR-10/100. Keeps the "
                                   "best-by-validation checkpoint at --out and the latest (for --resume) at "
                                   "<out>.last.pt; the per-epoch history is stored in both.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data", default="demo", help="'demo', 'cifar10', 'cifar100' or an image folder (default demo)")
    d.add_argument("--data-dir", default="data", help="where CIFAR lives / is downloaded to (default ./data)")
    d.add_argument("--val-split", type=float, default=0.1,
                   help="fraction of each class held out when the folder has no train/ and val/ (default 0.1)")
    d.add_argument("--split-file", default=None,
                   help="CSV with path,split[,class] (paths relative to --data): train on 'train', select on "
                        "'val'; 'test' is never read in training")
    d.add_argument("--demo-train", type=int, default=4000, help="demo training images (default 4000)")
    d.add_argument("--demo-val", type=int, default=800, help="demo validation images (default 800)")
    d.add_argument("--demo-seed", type=int, default=0, help="demo dataset seed (validation uses seed+1)")
    d.add_argument("--input-size", type=int, default=None,
                   help="square input size (default: 64 demo, 32 CIFAR, 224 folders)")
    d.add_argument("--color-jitter", type=float, default=0.2,
                   help="brightness/contrast/saturation jitter (never hue; 0 turns it off; default 0.2)")
    d.add_argument("--no-augment", dest="augment", action="store_false", help="turn off data augmentation")
    d.add_argument("--workers", type=int, default=2, help="data-loading processes (default 2)")
    m = p.add_argument_group("model")
    m.add_argument("--arch", default="demo", choices=sorted(ARCHS), help="architecture (default demo)")
    m.add_argument("--se", default="layer", type=_se_placement, metavar="PLACEMENT",
                   help=f"SE placement: a preset ({', '.join(SE_PLACEMENTS)}; default layer) or sites joined by '+' "
                        f"from {', '.join(SE_SITES)}")
    m.add_argument("--reduction", type=int, default=4, help="SE reduction ratio r: hidden = max(1, C // r)")
    m.add_argument("--se-hidden", type=_optional_int, default=None, help="fixed SE hidden width (overrides r)")
    m.add_argument("--se-bias", action="store_true", help="biases in the SE linear layers")
    m.add_argument("--memory-efficient", action="store_true", help="checkpoint bottlenecks to save memory")
    m.add_argument("--drop-rate", type=float, default=0.0, help="dropout after each dense layer")
    m.add_argument("--depth", type=int, default=None, help="DenseNet-BC depth (6n+4) for --arch densenet_bc")
    m.add_argument("--growth", type=int, default=None, help="growth rate override")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=10, help="epochs to train (with --resume: in all; default 10)")
    o.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    o.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="SGD+Nesterov momentum or AdamW")
    o.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.1 SGD, 1e-3 AdamW)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    o.add_argument("--weight-decay", type=float, default=None, help="default 1e-4 SGD, 0.05 AdamW")
    o.add_argument("--schedule", choices=("cosine", "step", "none"), default="cosine",
                   help="after a short warm-up: cosine decay, or ×0.1 at 50%% and 75%% (step)")
    o.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the loss (default 0)")
    o.add_argument("--seed", type=int, default=0, help="random seed: model, data order, augmentation (default 0)")
    o.add_argument("--limit-batches", type=int, default=None, help="stop each epoch after N batches (smoke runs)")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    r.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    r.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="no channels_last memory format on CUDA")
    r.add_argument("--out", default="model.pt", help="best checkpoint path (default model.pt)")
    r.add_argument("--resume", action="store_true", help="continue from <out>.last.pt up to --epochs")
    r.add_argument("--pair", action="store_true",
                   help="also train the baseline (se=none) with identical data order, seed and settings; "
                        "saved as <name>-baseline.pt (a trailing -se in the name is replaced)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
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
    p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU; the default), cpu, cuda, mps")
    p.add_argument("--json", action="store_true", help="print one JSON document")
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
            raise ValueError(f"{path} has no training history (it was not trained with sedensenet train)")
        label = f"{Path(path).stem} (se={loaded.config.se})"
        runs[label] = loaded.meta.history
    written = write_figure(training_curves(runs), Path(args.out))
    for path in written:
        print(f"wrote {path}")
    return 0


REGISTRARS = (add_train_parser, add_evaluate_parser, add_curves_parser)
