"""What the installed plugin costs a project that has no ablation study.

    python benchmarks/bench_unused.py              # one test, 7 runs each way
    python benchmarks/bench_unused.py --runs 11 -n 2

A throwaway project with one plain test is run with the plugin (as installed) and without
it (``-p no:ablation -p no:ablation-methods -p no:ablation-toyworld``), alternating so that
a busy moment of the machine hits both alike. It prints the median wall time and the
largest resident memory of each way, and whether torch, numpy, diffusers or open_clip were
imported by any process of the run, each way (another installed plugin may import one
itself: pytest-randomly imports numpy). The project keeps the difference within noise and
the heavy modules the plugin adds at none.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLUGINS_OFF = ["-p", "no:ablation", "-p", "no:ablation-methods", "-p", "no:ablation-toyworld"]
HEAVY = ("torch", "numpy", "diffusers", "open_clip")

# Each process of the run (the controller and every xdist worker) appends what it imported.
CONFTEST = f"""
import json, os, sys

def pytest_unconfigure(config):
    heavy = [name for name in {HEAVY!r} if name in sys.modules]
    with open(os.environ["BENCH_IMPORTS_LOG"], "a") as log:
        log.write(json.dumps(heavy) + "\\n")
"""


def run_once(project: Path, extra: list[str]) -> tuple[float, int]:
    """Wall seconds and the largest resident set (KiB) of one fresh ``pytest`` process."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "if done.returncode != 0:\n"
        "    sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:]); sys.exit(done.returncode)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-c", wrapper, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} failed:\n{done.stderr}")
    return elapsed, int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("-n", dest="workers", default=None, help="pytest-xdist workers, as -n")
    options = parser.parse_args()
    workers = ["-n", options.workers] if options.workers else []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
        (project / "conftest.py").write_text(CONFTEST)
        log = project / "imports.jsonl"
        os.environ["BENCH_IMPORTS_LOG"] = str(log)
        timings: dict[str, list[float]] = {"on": [], "off": []}
        memory: dict[str, int] = {"on": 0, "off": 0}
        imported: dict[str, set[str]] = {"on": set(), "off": set()}
        run_once(project, workers)  # the first run warms the file cache for both ways
        for _ in range(options.runs):
            for way, extra in (("on", workers), ("off", workers + PLUGINS_OFF)):
                log.unlink(missing_ok=True)
                seconds, rss = run_once(project, extra)
                timings[way].append(seconds)
                memory[way] = max(memory[way], rss)
                for line in log.read_text().splitlines():
                    imported[way].update(json.loads(line))
    on, off = statistics.median(timings["on"]), statistics.median(timings["off"])
    print(
        f"one plain test{' with -n ' + options.workers if options.workers else ''}, "
        f"median of {options.runs} fresh processes each way"
    )
    print(f"plugin on  : {on:5.2f} s, {memory['on'] / 1024:6.1f} MiB largest process")
    print(f"plugin off : {off:5.2f} s, {memory['off'] / 1024:6.1f} MiB largest process")
    print(f"difference : {on - off:+5.2f} s ({on / off:.2f}x)")
    # Another installed plugin may import some of them itself (pytest-randomly imports
    # numpy to reseed it): what counts is what the plugin adds.
    added = sorted(imported["on"] - imported["off"])
    print(f"heavy modules imported with the plugin off: {sorted(imported['off']) or 'none'}")
    print(f"heavy modules the plugin adds: {added or 'none'}")


if __name__ == "__main__":
    main()
