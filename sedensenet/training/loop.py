"""Training loop: SE and baseline models on the demo data, an image folder or CIFAR; resumable; DDP-aware."""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from sedensenet.data.datasets import DatasetSpec, build_datasets
from sedensenet.device import DEVICE_HELP, resolve_device
from sedensenet.errors import ConfigError, MissingFileError
from sedensenet.fields import option
from sedensenet.models.checkpoint import load_checkpoint, save_checkpoint
from sedensenet.models.densenet import ARCHS, SEDenseNet, build_model, canonical_se

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Every knob of a training run (stored in the checkpoint as ``meta["train_args"]``)."""

    data: str = option("demo", "'demo', 'cifar10', 'cifar100' or an image folder", group="data")
    data_dir: str = option("data", "where CIFAR lives / is downloaded to", group="data")
    val_split: float = option(0.1, "fraction of each class held out when the folder has no train/ and val/",
                              group="data")
    split_file: str | None = option(None, "CSV with path,split[,class] (paths relative to --data): train on "
                                     "'train', select on 'val'; 'test' is never read in training", group="data")
    demo_train: int = option(4000, "demo training images", group="data")
    demo_val: int = option(800, "demo validation images", group="data")
    demo_seed: int = option(0, "demo dataset seed (validation uses seed+1)", group="data")
    arch: str = option("demo", "architecture", group="model", choices=tuple(sorted(ARCHS)))
    se: str = option("layer", "SE placement: a preset (none, layer, block, final) or sites joined by '+' (e.g. "
                     "stem+layer_input; see SE_SITES)", group="model", parse=canonical_se)
    reduction: int = option(4, "SE reduction ratio r: hidden = max(1, C // r)", group="model")
    se_hidden: int | None = option(None, "fixed SE hidden width (overrides r)", group="model")
    se_bias: bool = option(False, "biases in the SE linear layers", group="model")
    memory_efficient: bool = option(False, "checkpoint bottlenecks to save memory", group="model")
    drop_rate: float = option(0.0, "dropout after each dense layer", group="model")
    depth: int | None = option(None, "DenseNet-BC depth (6n+4) for --arch densenet_bc", group="model")
    growth: int | None = option(None, "growth rate override", group="model")
    input_size: int | None = option(None, "square input size (default: 64 demo, 32 CIFAR, 224 folders)",
                                    group="data")
    batch_size: int = option(64, "images per batch", group="optimisation")
    epochs: int = option(10, "epochs to train (with --resume: up to this many in all)", group="optimisation")
    optimizer: str = option("sgd", "SGD+Nesterov momentum or AdamW", group="optimisation",
                            choices=("sgd", "adamw"))
    lr: float | None = option(None, "peak learning rate (default 0.1 SGD, 1e-3 AdamW)", group="optimisation")
    momentum: float = option(0.9, "SGD momentum", group="optimisation")
    weight_decay: float | None = option(None, "default 1e-4 SGD, 0.05 AdamW", group="optimisation")
    schedule: str = option("cosine", "after a short warm-up: cosine decay, or ×0.1 at 50% and 75% (step)",
                           group="optimisation", choices=("cosine", "step", "none"))
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss", group="optimisation")
    ema: float | None = option(None, "keep an exponential moving average of the weights (and BatchNorm statistics) "
                               "with this decay per step, e.g. 0.98; validation, selection and the saved "
                               "checkpoint use the average", group="optimisation")
    augment: bool = option(True, "turn off data augmentation", group="data")
    color_jitter: float = option(0.2, "brightness/contrast/saturation jitter (never hue; 0 turns it off)",
                                 group="data")
    seed: int = option(0, "random seed (model, data order, augmentation)", group="optimisation")
    workers: int = option(2, "data-loading processes", group="data")
    device: str = option("auto", DEVICE_HELP, group="run")
    amp: bool = option(True, "no mixed precision on CUDA", group="run")
    channels_last: bool = option(True, "no channels_last memory format on CUDA", group="run")
    limit_batches: int | None = option(None, "stop each epoch after N batches (smoke runs)", group="optimisation")
    out: str = option("model.pt", "best checkpoint path", group="run")
    resume: bool = option(False, "continue from <out>.last.pt up to --epochs", group="run")
    quiet: bool = option(False, "no progress bars", group="run")

    def __post_init__(self) -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(map(repr, choices))}, "
                                  f"got {getattr(self, f.name)!r}")
        try:
            self.se = canonical_se(self.se)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be ≥ 1")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError("label smoothing must be in [0, 1)")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"--ema is a decay per step in (0, 1), e.g. 0.98; got {self.ema}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 1e-3)

    @property
    def decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else (1e-4 if self.optimizer == "sgd" else 0.05)


@dataclass
class TrainResult:
    """What a run produced: paths, history and a fingerprint of every batch it trained on."""

    best_path: Path
    last_path: Path
    history: list[dict[str, float]]
    best_val_acc: float
    batch_fingerprints: list[str]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (env ``WORLD_SIZE`` > 1); gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def make_model(cfg: TrainConfig, num_classes: int) -> SEDenseNet:
    """The model a :class:`TrainConfig` describes."""
    options: dict[str, Any] = dict(se_hidden=cfg.se_hidden, se_bias=cfg.se_bias, drop_rate=cfg.drop_rate)
    if cfg.depth is not None:
        options["depth"] = cfg.depth
    if cfg.growth is not None:
        options["growth"] = cfg.growth
    model = build_model(cfg.arch, se=cfg.se, reduction=cfg.reduction, num_classes=num_classes, **options)
    return model.set_grad_checkpointing(cfg.memory_efficient)  # a runtime switch: not part of the architecture


def _optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate after ``step`` of ``total`` optimiser steps (short linear warm-up, then the schedule)."""
    base = cfg.learning_rate
    warm = min(total // 20, 200)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    if cfg.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return base * (0.1 ** (int(t >= 0.5) + int(t >= 0.75)))
    return base


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha1(y.cpu().numpy().tobytes())
    h.update(x.detach().float().cpu().numpy().round(4).tobytes())
    return h.hexdigest()[:16]


def _loader(ds: Dataset, cfg: TrainConfig, shuffle: bool, epoch: int) -> DataLoader:
    rank, world = _dist_info()
    sampler = None
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    if world > 1:
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=cfg.seed)
        sampler.set_epoch(epoch)
    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=cfg.workers, generator=generator, persistent_workers=False,
                      pin_memory=torch.cuda.is_available(), drop_last=shuffle and len(ds) > cfg.batch_size)


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    if _dist_info()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def run_epoch(model: nn.Module, loader: DataLoader, device: torch.device, *, optimizer: torch.optim.Optimizer | None,
              cfg: TrainConfig, step0: int = 0, total_steps: int = 1, desc: str = "",
              fingerprints: list[str] | None = None, ema: AveragedModel | None = None) -> dict[str, float]:
    """One pass over ``loader``; trains when ``optimizer`` is given (updating ``ema`` after every step).
    Returns loss, accuracy, images/s."""
    train = optimizer is not None
    model.train(train)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing if train else 0.0)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    rank, _ = _dist_info()
    limit = cfg.limit_batches or len(loader)
    bar = tqdm(total=min(limit, len(loader)), desc=desc, leave=False, disable=cfg.quiet or rank != 0, unit="batch")
    step = step0
    with torch.set_grad_enabled(train):
        for i, (x, y) in enumerate(loader):
            if i >= limit:
                break
            if fingerprints is not None:
                fingerprints.append(_fingerprint(x, y))
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.channels_last and device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, enabled=use_amp):
                logits = model(x)
                loss = criterion(logits, y)
            if train:
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(cfg, step, total_steps)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update_parameters(_unwrapped(model))
                step += 1
            loss_sum += float(loss.detach()) * y.numel()
            correct += int((logits.argmax(1) == y).sum())
            seen += y.numel()
            rate = seen / max(1e-9, time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}")
            bar.update()
    bar.close()
    loss_sum, correct, seen = _all_reduce([loss_sum, float(correct), float(seen)], device)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / max(seen, 1), "acc": correct / max(seen, 1), "images_per_s": seen / seconds,
            "seconds": seconds, "steps": step - step0}


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _ema_of(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """The weight average ``--ema`` asks for: parameters and BatchNorm buffers, so the average evaluates as is."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _last_path(out: Path) -> Path:
    return out.with_name(out.stem + ".last" + out.suffix)


def train(cfg: TrainConfig, *, log: Log = print, spec: DatasetSpec | None = None) -> TrainResult:
    """Train one model as ``cfg`` says; keeps the best-by-val checkpoint at ``cfg.out`` and the latest
    (with optimiser state, for ``--resume``) next to it as ``<name>.last.pt``."""
    device = resolve_device(cfg.device)
    init_distributed(device)
    rank, world = _dist_info()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    spec = spec or build_datasets(cfg)
    out = Path(cfg.out)
    last = _last_path(out)
    seed_everything(cfg.seed)
    model = make_model(cfg, len(spec.classes))
    history: list[dict[str, float]] = []
    start_epoch, best = 0, -1.0
    best_model: SEDenseNet | None = None  # CPU copy of the best weights: the best file is rewritten every epoch
    best_epoch = 0
    optimizer = _optimizer(cfg, model)
    ema_state: dict[str, Any] | None = None
    if cfg.resume:
        if not last.is_file():
            raise MissingFileError(f"--resume: no {last} to resume from; run without --resume first")
        state = load_checkpoint(last, device="cpu")
        if state.config != model.config:
            raise ConfigError(f"--resume: {last} holds a different architecture ({state.config.arch}, "
                             f"se={state.config.se}); use the same model options as the first run")
        model.load_state_dict(state.model.state_dict())
        if not state.resume or "optimizer" not in state.resume:
            raise ConfigError(f"--resume: {last} holds no optimiser state; run without --resume")
        optimizer.load_state_dict(state.resume["optimizer"])
        if cfg.ema is not None and "ema" not in state.resume:
            raise ConfigError(f"--resume: {last} was trained without --ema; resume without it or start afresh")
        ema_state = state.resume.get("ema") if cfg.ema is not None else None
        history = [dict(h) for h in state.meta.history]
        start_epoch = len(history)
        best = max((h["val_acc"] for h in history), default=-1.0)
        best_model, best_epoch = _resume_best(out, history)
        log(f"resuming {last} after epoch {start_epoch}")
    model.to(device)
    if cfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    ema = _ema_of(model, cfg.ema)
    if ema is not None and ema_state is not None:
        ema.load_state_dict(ema_state)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    steps_per_epoch = min(cfg.limit_batches or 10**12, len(_loader(spec.train, cfg, True, 0)))
    total = steps_per_epoch * cfg.epochs
    fingerprints: list[str] = []
    meta_base = {"classes": list(spec.classes), "input_size": spec.input_size, "mean": list(spec.mean),
                 "std": list(spec.std), "train_args": _plain_args(cfg), "dataset": spec.description}
    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(cfg.seed * 7919 + epoch)
        tr = run_epoch(net, _loader(spec.train, cfg, True, epoch), device, optimizer=optimizer, cfg=cfg,
                       step0=epoch * steps_per_epoch, total_steps=total, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       fingerprints=fingerprints, ema=ema)
        judged = ema.module if ema is not None else net  # what is validated, selected and saved
        va = run_epoch(judged, _loader(spec.val, cfg, False, epoch), device, optimizer=None, cfg=cfg, desc="val")
        row = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_acc": tr["acc"], "val_loss": va["loss"],
               "val_acc": va["acc"], "lr": optimizer.param_groups[0]["lr"], "seconds": tr["seconds"] + va["seconds"],
               "images_per_s": tr["images_per_s"]}
        history.append(row)
        if rank == 0:
            log(f"epoch {epoch + 1}/{cfg.epochs}  train loss {tr['loss']:.4f} acc {tr['acc']:.4f}  "
                f"val loss {va['loss']:.4f} acc {va['acc']:.4f}  lr {row['lr']:.4g}  "
                f"{row['seconds']:.1f}s ({tr['images_per_s']:.0f} img/s)")
            if va["acc"] > best:
                best, best_epoch = va["acc"], epoch + 1
                best_model = _cpu_copy(ema.module if ema is not None else model)
            # both files carry every epoch so far (the best one would otherwise stop at its own epoch)
            meta = {**meta_base, "history": history, "best_epoch": best_epoch}
            if best_model is not None:
                save_checkpoint(out, best_model, meta)
            resume = {"optimizer": optimizer.state_dict()}
            if ema is not None:
                resume["ema"] = ema.state_dict()
            save_checkpoint(last, model, {**meta, "resume": resume})
    if world > 1:
        dist.barrier()
    return TrainResult(best_path=out, last_path=last, history=history, best_val_acc=best,
                       batch_fingerprints=fingerprints)


def _cpu_copy(model: SEDenseNet) -> SEDenseNet:
    """A CPU twin of ``model`` holding its current weights (contiguous, whatever the training memory format)."""
    import warnings

    from sedensenet.models.densenet import build_from_config

    with warnings.catch_warnings():  # any construction warning was shown when the model was first built
        warnings.simplefilter("ignore")
        twin = build_from_config(model.config)
    twin.load_state_dict({k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()})
    return twin.eval()


def _resume_best(out: Path, history: list[dict[str, float]]) -> tuple[SEDenseNet | None, int]:
    """The best model so far and its epoch when resuming (from ``out``; its epoch from the history)."""
    if not out.is_file() or not history:
        return None, 0
    best_epoch = max(history, key=lambda h: h["val_acc"])["epoch"]
    return load_checkpoint(out, device="cpu").model, int(best_epoch)


def _plain_args(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if v is not None and k not in ("quiet", "resume")}


def train_pair(cfg: TrainConfig, *, log: Log = print) -> tuple[TrainResult, TrainResult]:
    """Train the SE model and its baseline with the same data order, seed and hyper-parameters."""
    if cfg.se == "none":
        raise ConfigError("--pair trains an SE model and its baseline; choose an SE placement other than 'none'")
    spec = build_datasets(cfg)
    out = Path(cfg.out)
    base_out = baseline_path(out)
    log(f"[1/2] SE model (se={cfg.se}) → {out}")
    se_result = train(cfg, log=log, spec=spec)
    log(f"[2/2] baseline (se=none) → {base_out}")
    base_result = train(replace(cfg, se="none", out=str(base_out)), log=log, spec=spec)
    if _dist_info()[0] == 0:
        log(pair_table(se_result, base_result))
    return se_result, base_result


def baseline_path(out: Path) -> Path:
    """Where ``--pair`` saves the baseline: ``name-se.pt`` → ``name-baseline.pt``, else ``name-baseline.pt``."""
    stem = out.stem.removesuffix("-se")
    return out.with_name(f"{stem}-baseline{out.suffix}")


def pair_table(se: TrainResult, base: TrainResult) -> str:
    """Side-by-side summary of a ``--pair`` run."""
    def row(name: str, r: TrainResult) -> str:
        h = r.history[-1] if r.history else {}
        return (f"{name:<10} {r.best_val_acc:>12.4f} {h.get('val_acc', float('nan')):>10.4f} "
                f"{h.get('train_loss', float('nan')):>11.4f} {sum(x['seconds'] for x in r.history):>9.1f}")
    same = "yes" if se.batch_fingerprints == base.batch_fingerprints else "NO"
    return "\n".join([f"{'model':<10} {'best val acc':>12} {'final acc':>10} {'train loss':>11} {'seconds':>9}",
                      row("SE", se), row("baseline", base), f"identical batches: {same}"])
