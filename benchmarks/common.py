"""Timing helpers: paired, interleaved repeats in one process, reported as median paired ratios with IQR."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {torch.get_num_threads()} torch threads{gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def _clock(kind: str = "wall") -> Callable[[], float]:
    """Wall-clock time by default (with several threads CPU time is no better on a shared host: OpenMP workers
    spin while they wait). ``"cpu"``: this process's CPU time — honest only with one torch thread, and then it
    leaves out what other processes on an overloaded host take."""
    return time.process_time if kind == "cpu" else time.perf_counter


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2,
                clock_kind: str = "wall") -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` rounds, round-robin (order rotated every round)."""
    clock = _clock(clock_kind)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t = clock()
            fns[name]()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(clock() - t)
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> tuple[float, float, float]:
    """Median over rounds of time[num]/time[den] (each round measured back to back) and its quartiles."""
    ratios = sorted(a / b for a, b in zip(times[num], times[den], strict=True))
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
    return statistics.median(ratios), q[0], q[2]


def ratio_line(label: str, times: dict[str, list[float]], num: str, den: str, target: str,
               invert: bool = False) -> str:
    """One result line: medians of both and the median paired ratio with its interquartile range."""
    r, lo, hi = paired_ratio(times, den, num) if invert else paired_ratio(times, num, den)
    a, b = statistics.median(times[num]), statistics.median(times[den])
    return (f"{label:<58} {a * 1e3:9.1f} ms / {b * 1e3:9.1f} ms   ratio {r:6.3f} "
            f"(IQR {lo:.3f}–{hi:.3f}; target {target})")
