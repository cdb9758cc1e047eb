"""Wall time of a study run on a cold and a warm cache, and model loads per worker.

    python benchmarks/bench_run.py                 # ablations/ on the default profile
    python benchmarks/bench_run.py ablations/ -k tma --workers 2

Each run is a fresh pytest process (as a user runs it), with its own temporary cache and
report directories, so "cold" really starts from nothing and "warm" reuses only the cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], cache: Path, reports: Path) -> tuple[float, dict, int]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        *args,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--ablation-cache-dir={cache}",
        f"--ablation-report-dir={reports}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    report_path = reports / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"pytest exited with {done.returncode}")
    return seconds, report, done.returncode


def describe(report: dict) -> str:
    cache = report.get("cache", {})
    workers = report.get("environment", {}).get("workers", {})
    loads = "; ".join(
        f"{name}: " + (", ".join(f"{role} x{n}" for role, n in sorted(w.get("loads", {}).items())) or "none")
        for name, w in sorted(workers.items())
    )
    return (
        f"{len(report.get('results', []))} results, cache {cache.get('hits', 0)} loaded / "
        f"{cache.get('misses', 0)} computed; model loads per worker: {loads}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", default="ablations/")
    parser.add_argument("-k", dest="keyword", default=None)
    parser.add_argument("--workers", type=int, default=2, help="xdist workers for the -n run")
    options = parser.parse_args()
    args = [options.target] + (["-k", options.keyword] if options.keyword else [])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold, report, _ = run(args, tmp / "cache", tmp / "r1")
        print(f"cold cache, 1 process : {cold:7.1f} s  ({describe(report)})")
        warm, report, _ = run(args, tmp / "cache", tmp / "r2")
        print(f"warm cache, 1 process : {warm:7.1f} s  ({describe(report)})")
        parallel, report, _ = run(args + ["-n", str(options.workers)], tmp / "cache-n", tmp / "r3")
        print(f"cold cache, -n {options.workers}      : {parallel:7.1f} s  ({describe(report)})")


if __name__ == "__main__":
    main()
