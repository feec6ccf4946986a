"""``sedensenet --help`` start-up time: the quick top-level help vs a command's help (which builds the full
parser and imports torch) vs a bare Python start, each a fresh process, interleaved, median of the repeats.

Run: ``python benchmarks/bench_cli_help.py --repeats 7`` from the repository root (PYTHONPATH=. for a checkout).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sedensenet --help": [sys.executable, "-m", "sedensenet", "--help"],
    "sedensenet explain --help": [sys.executable, "-m", "sedensenet", "explain", "--help"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7, help="fresh processes per case (default 7)")
    args = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for r in range(args.repeats):
        order = list(CASES)[r % len(CASES):] + list(CASES)[: r % len(CASES)]  # rotate the order each round
        for name in order:
            t = time.perf_counter()
            subprocess.run(CASES[name], check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, values in times.items():
        print(f"{name:<28} median {med[name]:6.2f} s  (min {min(values):.2f}, max {max(values):.2f}, "
              f"n={len(values)})")
    print(f"quick help / command help: ratio {med['sedensenet --help'] / med['sedensenet explain --help']:.3f}; "
          f"target: sedensenet --help ≤ 1.0 s")


if __name__ == "__main__":
    main()
