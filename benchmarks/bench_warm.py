"""A warm run against the bare import of the package's dependencies.

    python benchmarks/bench_warm.py                # ablations/ on tiny, 5 runs each
    python benchmarks/bench_warm.py --runs 9 --target ablations/ -k tma

A warm run (every video and score in the cache) should cost little more than starting
Python with what the package depends on: it prints both medians and their ratio, which the
project keeps at or below 1.5 on a 2-core machine. Each figure is a fresh process, as a user
runs it: first one cold run fills a temporary cache, then the runs alternate between the
bare import and the warm run, so a busy moment of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What pyproject.toml's dependencies are imported as.
DEPENDENCIES = (
    "pytest",
    "xdist",
    "hypothesis",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "open_clip",
    "numpy",
    "tabulate",
    "safetensors",
    "filelock",
    "cv2",
    "matplotlib",
    "PIL",
)
TARGET_RATIO = 1.5


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{' '.join(command[:4])} ... exited with {done.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="ablations/")
    parser.add_argument("-k", dest="keyword", default=None)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    bare = [sys.executable, "-c", "import " + ", ".join(DEPENDENCIES)]
    with tempfile.TemporaryDirectory() as tmp:
        run = [
            sys.executable,
            "-m",
            "pytest",
            options.target,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--ablation-cache-dir={Path(tmp) / 'cache'}",
            f"--ablation-report-dir={Path(tmp) / 'reports'}",
        ]
        if options.keyword:
            run += ["-k", options.keyword]
        cold = seconds(run)
        imports, warm = [], []
        for _ in range(options.runs):
            imports.append(seconds(bare))
            warm.append(seconds(run))
    bare_median, warm_median = statistics.median(imports), statistics.median(warm)
    ratio = warm_median / bare_median
    print(f"cold run                        : {cold:6.1f} s")
    print(f"bare import of the dependencies : {bare_median:6.1f} s  (median of {options.runs})")
    print(f"warm run                        : {warm_median:6.1f} s  (median of {options.runs})")
    print(f"warm / bare                     : {ratio:6.2f}   (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
