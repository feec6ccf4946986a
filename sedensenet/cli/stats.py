"""``sedensenet stats``: class-wise SE excitation statistics over a whole dataset (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sedensenet.cli.options import add_device, add_json
from sedensenet.cli.output import json_text, say
from sedensenet.device import PRECISIONS


def add_stats_parser(sub: Any) -> None:
    """Register ``stats``."""
    p = sub.add_parser(
        "stats", help="class-wise mean/std of every SE layer's excitation over a dataset (SENet §7)",
        description="Class-wise mean and std of every SE layer's excitation and the class-specificity by depth "
                    "(the SENet paper's 'role of excitation' analysis), streamed over DATA with running sums: "
                    "memory does not grow with the dataset. DATA is 'demo' or an image folder root/<class>/…. "
                    "Under `torchrun --nproc_per_node N -m sedensenet stats …` the images are sharded across the "
                    "processes and the sums combined with all_reduce. Open the --out file on the app's Class "
                    "statistics page.")
    p.add_argument("checkpoint", metavar="CKPT", help="SE model checkpoint")
    p.add_argument("data", metavar="DATA", help="'demo' or an image folder root/<class>/<image>")
    p.add_argument("--split-file", default=None, metavar="CSV",
                   help="CSV with columns path (relative to DATA), split (train/val/test), optional class")
    p.add_argument("--split", default=None, choices=("train", "val", "test"),
                   help="use only these rows of --split-file (default: every row)")
    p.add_argument("--out", default="stats.json", help="stats file to write, .json or .npz (default stats.json)")
    p.add_argument("--description", default=None,
                   help="what the data is, kept in the file and shown by the app (default: generated)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward (default 64)")
    p.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default 2)")
    add_device(p)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (default): bf16/fp16 autocast on CUDA, fp32 elsewhere; or force fp32/bf16/fp16")
    p.add_argument("--save-every", type=int, default=50, metavar="N",
                   help="save this process's partial sums every N batches (default 50) for --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its partial sums (<out>.part<rank>of<world>.npz)")
    p.add_argument("--demo-n", type=int, default=800, help="images for DATA=demo (default 800)")
    p.add_argument("--demo-seed", type=int, default=12345, help="seed for DATA=demo (default 12345)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json(p, "print a JSON summary (file, images, specificity by depth)")
    p.set_defaults(handler=_cmd_stats)


def _device(spec: str, world: int):
    import torch

    from sedensenet.device import resolve_device

    device = resolve_device(spec)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def _cmd_stats(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from sedensenet.analysis.stats_file import save_stats
    from sedensenet.analysis.stats_run import StatsRunError, dist_info, file_digest, partial_path, run_statistics
    from sedensenet.data.images import checkpoint_transform
    from sedensenet.data.labelled import labelled_data
    from sedensenet.models.checkpoint import load_checkpoint

    out = Path(args.out)
    if out.suffix.lower() not in (".json", ".npz"):
        raise StatsRunError(f"--out {out}: use a .json or .npz file name")
    if args.workers < 0:
        raise StatsRunError("--workers must be ≥ 0")
    joined = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        from sedensenet.device import resolve_device

        dist.init_process_group(backend="nccl" if resolve_device(args.device).type == "cuda" else "gloo")
        joined = True
    try:
        rank, world = dist_info()
        device = _device(args.device, world)
        loaded = load_checkpoint(args.checkpoint, device=device)
        if device.type == "cuda":
            loaded.model.to(memory_format=torch.channels_last)
        meta = loaded.meta
        size = meta.input_size
        transform = checkpoint_transform(meta)
        data = labelled_data(args.data, loaded.classes, transform, size,
                             split_file=args.split_file, split=args.split, demo_n=args.demo_n,
                             demo_seed=args.demo_seed)
        description = args.description or f"{data.description}; checkpoint {Path(args.checkpoint).name}"
        digest = file_digest(args.checkpoint)
        fingerprint = json.dumps({"checkpoint": digest, "data": data.description, "batch": args.batch_size})
        part = partial_path(out, rank, world)
        stats, info = run_statistics(loaded.model, data.dataset, loaded.classes, input_size=size,
                                     batch_size=args.batch_size, workers=args.workers, precision=args.precision,
                                     partial=part, resume=args.resume, save_every=args.save_every,
                                     fingerprint=fingerprint, description=description,
                                     progress=not args.quiet)
        stats.extra.update(checkpoint=Path(args.checkpoint).name, checkpoint_sha256=digest, arch=loaded.config.arch,
                           se=loaded.config.se, precision=args.precision, device=str(device.type),
                           processes=world)
        if rank == 0:
            save_stats(out, stats)
        if world > 1:
            dist.barrier()
        part.unlink(missing_ok=True)
        if rank != 0:
            return 0
        _report(args, out, stats, info, world)
        return 0
    finally:
        if joined:
            dist.destroy_process_group()


def _report(args: argparse.Namespace, out: Path, stats: Any, info: Any, world: int) -> None:
    from sedensenet.analysis.stats_file import summary_line

    spec = stats.specificity_by_depth()
    if args.json:
        print(json_text({"out": str(out), "description": stats.description, "images": int(stats.counts.sum()),
                          "counts": dict(zip(stats.classes, stats.counts.tolist(), strict=True)),
                          "skipped": stats.skipped, "unreadable": info.errors, "processes": world,
                          "resumed_images": info.resumed, "images_per_s": info.images_per_s,
                          "specificity_by_depth": [{"layer": n, "specificity": s} for n, s in spec]}))
        return
    say(f"{summary_line(stats)} → {out}")
    say(f"data: {stats.description}")
    if info.resumed:
        print(f"resumed after {info.resumed} images of this process's shard")
    for err in info.errors:
        say(f"skipped: {err}", file=sys.stderr)
    print(f"{info.images_per_s:.1f} images/s ({world} process{'es' if world > 1 else ''})")
    print("class-specificity by depth:")
    for name, s in spec:
        say(f"  {name:<44} {s:.4f}")


COMMANDS = (add_stats_parser,)
