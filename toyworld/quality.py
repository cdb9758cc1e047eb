"""Print the quality figures of the trained toy world: ``python -m toyworld.quality
[STAGE ...] [--out DIR]``.

Each stage's own ``quality`` measures the weights as shipped (loaded from ``--out``): the
judge's and the generators' CLIP zero-shot accuracy, the share of text-to-image samples the
judge classifies as prompted, the image-to-video model's motion and condition consistency.
A stage with no weights yet is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_ablation.toyworld import WEIGHTS_DIR
from toyworld.train import STAGES, StageError, format_figures, ordered, resolve, say


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(
        prog="python -m toyworld.quality",
        description="Print the quality figures of the toy world's trained models.",
    )
    cli.add_argument("stages", nargs="*", metavar="STAGE", help=f"of: {', '.join(STAGES)} (default: all)")
    cli.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"weights folder (default: {WEIGHTS_DIR})")
    cli.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    args = cli.parse_args(argv)
    unknown = [name for name in args.stages if name not in STAGES]
    if unknown:
        cli.error(f"unknown stage {', '.join(map(repr, unknown))}; allowed: {', '.join(STAGES)}")
    if args.threads < 1:
        cli.error(f"--threads must be >= 1, got {args.threads}")

    import torch

    torch.set_num_threads(args.threads)
    from pytest_ablation.models.manifest import WeightsError, verify_if_listed

    out = args.out.expanduser().resolve()
    try:
        checked = verify_if_listed(out)
        say(
            f"weights: {len(checked)} file(s) match {out / 'manifest.json'}"
            if checked
            else f"weights: no manifest under {out}"
        )
    except WeightsError as exc:
        say(f"weights: the manifest does not match the files ({exc})")
    results = {}
    for stage in ordered(args.stages):
        try:
            measure = resolve(stage.quality)
        except StageError as exc:
            say(f"{stage.name}: skipped ({exc})")
            continue
        start = time.perf_counter()
        try:
            figures = measure(out, progress=say)
        except FileNotFoundError as exc:
            say(f"{stage.name}: not trained yet ({exc})")
            continue
        results[stage.name] = figures
        say(f"{stage.name}: {format_figures(figures)} ({time.perf_counter() - start:.0f}s)")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
