"""Streaming class statistics over a whole dataset: sharded across ``torchrun`` processes, resumable.

Each process takes every ``world``-th image (strided shards, no padding duplicates), accumulates per-class sums
and sums of squares of every SE gate **on the device** (float64; no per-layer host copies, so the GPU is not
stalled), saves its partial sums every ``save_every`` batches, and finally the shards are added with one
``all_reduce``. Memory is independent of the dataset size.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from sedensenet.analysis.capture import capture_excitations, find_se_modules
from sedensenet.analysis.statistics import ExcitationStats, ExcitationSums
from sedensenet.device import autocast
from sedensenet.errors import SedensenetError

MAX_ERRORS_SHOWN = 20


class StatsRunError(SedensenetError, ValueError):
    """A statistics run cannot start or resume; the message says what to do."""


@dataclass
class RunInfo:
    """What a run did besides the numbers: images per second, resumed images, unreadable files."""

    seconds: float
    images: int
    resumed: int
    errors: list[str]

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def dist_info() -> tuple[int, int]:
    """``(rank, world size)`` of the process group, ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """Strided shard ``rank`` of ``range(n)``: every image in exactly one shard, no padding duplicates."""
    return list(range(rank, n, world))


def partial_path(out: Path, rank: int, world: int) -> Path:
    """Where shard ``rank`` of ``world`` keeps its resumable partial sums next to ``out``."""
    return out.with_name(f"{out.name}.part{rank}of{world}.npz")


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (identifies the checkpoint a partial result belongs to)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _DeviceSums:
    """Per-class sums/squares (K × all channels of all layers, float64) and counts on the compute device.

    One batch adds two matmuls over the concatenated gates of every layer, not two per layer: per-layer work
    would cost more Python and kernel launches than the gates themselves."""

    def __init__(self, k: int, channels: list[int], device: torch.device) -> None:
        self.channels = channels
        self.counts = torch.zeros(k, dtype=torch.float64, device=device)
        self.sums = torch.zeros(k, sum(channels), dtype=torch.float64, device=device)
        self.squares = torch.zeros_like(self.sums)
        self.skipped = 0

    def add(self, onehot: Tensor, gates: list[Tensor]) -> None:
        e = torch.cat(gates, dim=1).double()
        self.sums += onehot.T @ e
        self.squares += onehot.T @ (e * e)
        self.counts += onehot.sum(0)

    def load(self, host: ExcitationSums) -> None:
        self.sums.copy_(torch.from_numpy(np.concatenate(host.sums, axis=1)))
        self.squares.copy_(torch.from_numpy(np.concatenate(host.squares, axis=1)))
        self.counts.copy_(torch.from_numpy(host.counts.astype(np.float64)))
        self.skipped = host.skipped

    def to_host(self, classes: list[str], names: list[str]) -> ExcitationSums:
        host = ExcitationSums(classes, names, self.channels)
        cuts = np.cumsum(self.channels)[:-1]
        host.sums = [a.copy() for a in np.split(self.sums.cpu().numpy(), cuts, axis=1)]
        host.squares = [a.copy() for a in np.split(self.squares.cpu().numpy(), cuts, axis=1)]
        host.counts = np.rint(self.counts.cpu().numpy()).astype(np.int64)
        host.skipped = self.skipped
        return host

    def all_reduce(self) -> None:
        skipped = torch.tensor([float(self.skipped)], dtype=torch.float64, device=self.counts.device)
        flat = torch.cat([self.counts, skipped, self.sums.flatten(), self.squares.flatten()])
        dist.all_reduce(flat)
        k, n = self.counts.numel(), self.sums.numel()
        self.counts.copy_(flat[:k])
        self.skipped = round(float(flat[k]))
        self.sums.copy_(flat[k + 1:k + 1 + n].view_as(self.sums))
        self.squares.copy_(flat[k + 1 + n:].view_as(self.squares))


def _collate(items: list[tuple[Tensor, int, str]]) -> tuple[Tensor, Tensor, list[str]]:
    xs, ys, errs = zip(*items, strict=True)
    return torch.stack(xs), torch.tensor(ys), [e for e in errs if e]


def _save_partial(path: Path, sums: ExcitationSums, done: int, fingerprint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **sums.state(), done=np.array(done), fingerprint=np.array(fingerprint))
    os.replace(tmp, path)


def _load_partial(path: Path, fingerprint: str, classes: list[str], names: list[str]) -> tuple[ExcitationSums, int]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                raise StatsRunError(f"--resume: {path} belongs to another run (checkpoint, data, batch layout or "
                                    "number of processes differ); delete it or run without --resume")
            sums = ExcitationSums.from_state(z)
            done = int(z["done"])
    except StatsRunError:
        raise
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise StatsRunError(f"--resume: {path} is unreadable ({exc}); delete it and start again") from None
    if sums.classes != classes or sums.names != names:
        raise StatsRunError(f"--resume: {path} holds statistics of other classes or SE layers; delete it")
    return sums, done


def run_statistics(model: nn.Module, dataset: Dataset, classes: list[str], *, input_size: int,
                   batch_size: int = 64, workers: int = 0, precision: str = "auto",
                   partial: Path | None = None, resume: bool = False, save_every: int = 50,
                   fingerprint: str = "", description: str = "", progress: bool = True,
                   on_batch: Callable[[int], None] | None = None) -> tuple[ExcitationStats, RunInfo]:
    """Class-wise excitation statistics of ``model`` over ``dataset`` items ``(tensor, label, error)``.

    Under an initialised process group every rank takes its strided shard and the sums are ``all_reduce``-d,
    so every rank returns the statistics of the whole dataset. ``partial``: file for this rank's partial sums,
    saved every ``save_every`` batches; with ``resume`` a run continues after the images it already covered.
    ``on_batch(batches_done)`` is called after every batch.
    """
    if batch_size < 1 or save_every < 1:
        raise StatsRunError("--batch-size and --save-every must be ≥ 1")
    rank, world = dist_info()
    device = next(model.parameters()).device
    modules = find_se_modules(model)
    if not modules:
        raise StatsRunError("the model has no SE layers (a baseline?); class statistics need an SE model")
    probe = capture_excitations(model, torch.zeros(1, 3, input_size, input_size), se_modules=modules,
                                precision="fp32")
    names = [r.name for r in probe.records]
    gates = {m.name: m.gate for m in modules}
    k = len(classes)
    acc = _DeviceSums(k, [r.channels for r in probe.records], device)
    fp = json.dumps({"run": fingerprint, "n": len(dataset), "rank": rank, "world": world})
    done = 0
    if resume and partial is not None and partial.is_file():
        host, done = _load_partial(partial, fp, classes, names)
        acc.load(host)
    indices = shard_indices(len(dataset), rank, world)
    resumed = done
    todo = Subset(dataset, indices[done:])
    loader = DataLoader(todo, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    gathered: list[Tensor | None] = [None] * len(names)

    def hook(i: int):
        def fn(_mod: nn.Module, _args: Any, out: Tensor) -> None:
            gathered[i] = out.detach().flatten(1).clone()  # clone: a later in-place op must not rewrite it
        return fn

    handles = [gates[name].register_forward_hook(hook(i)) for i, name in enumerate(names)]
    errors: list[str] = []
    batches = 0
    channels_last = device.type == "cuda"
    start = time.perf_counter()
    bar = tqdm(total=len(indices), initial=done, desc="class statistics", unit="img",
               disable=not progress or rank != 0, dynamic_ncols=True)
    try:
        for x, y, errs in loader:
            ok = y >= 0
            if not bool(ok.all()):
                acc.skipped += int((~ok).sum())
                errors.extend(errs[:max(0, MAX_ERRORS_SHOWN - len(errors))])
                x, y = x[ok], y[ok]
            if len(y):
                x = x.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                onehot = torch.nn.functional.one_hot(y.to(device, non_blocking=True), k).double()
                with torch.inference_mode(), autocast(device, precision):
                    model(x)
                    if any(g is None for g in gathered):
                        raise StatsRunError("not every SE gate ran in this forward; the model's SE layers "
                                            "changed during the run")
                    acc.add(onehot, gathered)  # type: ignore[arg-type]
                gathered[:] = [None] * len(names)
            done += len(ok)
            batches += 1
            bar.update(len(ok))
            if partial is not None and batches % save_every == 0:
                _save_partial(partial, acc.to_host(classes, names), done, fp)
            if on_batch is not None:
                on_batch(batches)
    finally:
        bar.close()
        for h in handles:
            h.remove()
    if partial is not None:
        _save_partial(partial, acc.to_host(classes, names), done, fp)
    if world > 1:
        acc.all_reduce()
    seconds = time.perf_counter() - start
    host = acc.to_host(classes, names)
    if host.images == 0:
        raise StatsRunError(f"no image could be analysed ({host.skipped} unreadable)" + (f", e.g. {errors[0]}"
                            if errors else "") + "; check DATA")
    stats = host.result(description)
    return stats, RunInfo(seconds, done - resumed, resumed, errors)
