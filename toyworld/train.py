"""Train the toy world's models: ``python -m toyworld.train [STAGE ...]`` (from the
repository root).

Stages run in dependency order (``judge``, ``text``, ``vae``, ``t2i``, ``i2v``; none named:
all). Each writes its weights under ``--out`` (default: the shipped weights folder,
``pytest_ablation.toyworld.WEIGHTS_DIR``), after which the weights manifest there is
refreshed and the stage's quality figures are printed. A stage whose inputs are neither
under ``--out`` nor made earlier in the same run is refused before anything trains, naming
the stage to run first.

Every stage module exposes ``train(out, *, steps=None, seed=0, progress=print) -> figures``
and ``quality(out, *, progress=print) -> figures``; they are imported only when their stage
runs, so one stage's module failing to import leaves the others usable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_ablation.toyworld import WEIGHTS_DIR

DEFAULT_THREADS = 2
RECORD = "training.json"


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    requires: tuple[str, ...] = ()
    # What the stage writes under --out that later stages read.
    outputs: tuple[str, ...] = ()
    summary: str = ""

    @property
    def train(self) -> str:
        return f"{self.module}:train"

    @property
    def quality(self) -> str:
        return f"{self.module}:quality"


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "judge",
            "toyworld.judge",
            outputs=("judge/open_clip_model.safetensors",),
            summary="the judge CLIP (open_clip) that scores videos",
        ),
        Stage(
            "text",
            "toyworld.text_clip",
            outputs=("t2i/tokenizer", "t2i/text_encoder", "i2v/image_encoder", "i2v/feature_extractor"),
            summary="the generators' CLIP: tokenizer, text encoder, image encoder",
        ),
        Stage(
            "vae",
            "toyworld.vae",
            outputs=("t2i/vae",),
            summary="the autoencoder of both generators",
        ),
        Stage(
            "t2i",
            "toyworld.t2i",
            requires=("text", "vae"),
            summary="the text-to-image UNet (Stable Diffusion's structure)",
        ),
        Stage(
            "i2v",
            "toyworld.i2v",
            requires=("text", "vae"),
            summary="the image-to-video UNet (Stable Video Diffusion's structure)",
        ),
    )
}


class StageError(Exception):
    """A stage cannot run: its module is missing, or its inputs are."""


def resolve(target: str) -> Callable[..., Any]:
    """The function a "package.module:function" string names."""
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StageError(f"{target}: cannot import {module_name} ({exc})") from exc
    found = getattr(module, function, None)
    if not callable(found):
        raise StageError(f"{target}: {module_name} has no function {function!r}")
    return found


def ordered(names: Sequence[str]) -> list[Stage]:
    """The named stages (all when none), once each, in dependency order."""
    wanted = set(names) if names else set(STAGES)
    return [stage for name, stage in STAGES.items() if name in wanted]


def missing_inputs(stages: Sequence[Stage], out: Path) -> str | None:
    """Why some stage cannot run (its inputs are absent and nothing earlier makes them)."""
    made: set[str] = set()
    for stage in stages:
        for required in stage.requires:
            if required in made:
                continue
            absent = [path for path in STAGES[required].outputs if not (out / path).exists()]
            if absent:
                return (
                    f"stage {stage.name!r} needs the outputs of stage {required!r} under {out} "
                    f"(missing: {', '.join(absent)}); run it first: "
                    f"python -m toyworld.train {required} --out {out}"
                )
        made.add(stage.name)
    return None


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m toyworld.train",
        description="Train the toy world's models into a weights folder.",
    )
    stage_help = "; ".join(f"{s.name}: {s.summary}" for s in STAGES.values())
    parser.add_argument(
        "stages",
        nargs="*",
        metavar="STAGE",
        help=f"stages to train, run in dependency order (default: all). {stage_help}",
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"weights folder (default: {WEIGHTS_DIR})")
    parser.add_argument("--steps", type=int, default=None, help="training steps of each stage (default: its own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch CPU threads (default: {DEFAULT_THREADS}; the same seed and threads give the same weights)",
    )
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    unknown = [name for name in args.stages if name not in STAGES]
    if unknown:
        parser.error(f"unknown stage {', '.join(map(repr, unknown))}; allowed: {', '.join(STAGES)}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")


def say(message: str) -> None:
    print(message, flush=True)


def record(out: Path, stage: str, figures: dict[str, float], args: argparse.Namespace) -> None:
    """Keep each stage's last figures and settings in ``out/training.json``."""
    from pytest_ablation.files import write_json_atomic

    path = out / RECORD
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        runs = {}
    runs[stage] = {
        "figures": figures,
        "steps": args.steps,
        "seed": args.seed,
        "threads": args.threads,
    }
    write_json_atomic(path, runs)


def readable_by_all(out: Path) -> None:
    """Atomic writes create private files; weights meant to ship must be readable by all."""
    for path in out.rglob("*"):
        if path.is_file() and path.stat().st_mode & 0o777 != 0o644:
            path.chmod(0o644)


def format_figures(figures: dict[str, float]) -> str:
    return ", ".join(
        f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}" for name, value in figures.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    check_arguments(cli, args)
    out = args.out.expanduser().resolve()
    stages = ordered(args.stages)
    problem = missing_inputs(stages, out)
    if problem:
        cli.error(problem)
    try:
        trainers = {stage.name: resolve(stage.train) for stage in stages}
    except StageError as exc:
        say(f"error: {exc}")
        return 1

    import torch

    from pytest_ablation.models.manifest import write_manifest

    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    say(f"training {', '.join(s.name for s in stages)} into {out} (seed {args.seed}, {args.threads} thread(s))")
    start = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    for stage in stages:
        say(f"== {stage.name}: {stage.summary}")
        figures = trainers[stage.name](out, steps=args.steps, seed=args.seed, progress=say)
        results[stage.name] = figures
        record(out, stage.name, figures, args)
        readable_by_all(out)
        write_manifest(out)
        say(f"== {stage.name} done: {format_figures(figures)}")
    total = time.perf_counter() - start
    say("")
    for name, figures in results.items():
        say(f"{name:6s} {format_figures(figures)}")
    say(f"total {total:.0f}s; manifest: {out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
