"""Synthetic reports shaped like reports/report.json, and a small HTML tree for assertions.

The reports are built by hand rather than by running studies: the HTML report only reads
the report document and the preview files, and hand-made numbers make the expected best
variants and gate marks obvious.
"""

from __future__ import annotations

import copy
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pytest_ablation.run.media import slug, write_preview

PROMPTS = ["a red ball bouncing on a wooden floor", "a sailboat drifting on a calm blue lake"]

METRIC_INFO = {
    "clip_score": {
        "direction": "higher",
        "tolerance": 0.5,
        "definition": "mean over frames of 100 * cos(CLIP(frame), CLIP(prompt)), clamped at 0",
        "source": "torchmetrics CLIPScore",
    },
    "dynamic_degree": {
        "direction": "info",
        "tolerance": 1.0,
        "definition": "mean over pairs of the mean optical-flow magnitude of the top 5% vectors",
        "source": "VBench dynamic_degree",
    },
    "temporal_flickering": {
        "direction": "higher",
        "tolerance": 0.002,
        "definition": "(255 - mean over pairs of mean |f_t - f_t+1|) / 255 on uint8 frames",
        "source": "VBench temporal_flickering",
    },
    "warping_error": {
        "direction": "lower",
        "tolerance": 0.01,
        "definition": "mean over pairs of |f_t+1 - warp(f_t)| < 1 & 2 >",
        "source": "test-only metric with a lower-is-better direction",
    },
}

# zs2-tma: a sweep over momentum; mu=0.6 has the best clip_score.
TMA_VALUES = {
    "mu=0.0": {"momentum": 0.0, "clip_score": 4.10, "dynamic_degree": 3.00},
    "mu=0.6": {"momentum": 0.6, "clip_score": 4.20, "dynamic_degree": 2.99},
    "mu=0.8": {"momentum": 0.8, "clip_score": 4.11, "dynamic_degree": 2.98},
    "mu=0.98": {"momentum": 0.98, "clip_score": 4.12, "dynamic_degree": 2.97},
    "mu=1.0": {"momentum": 1.0, "clip_score": 4.05, "dynamic_degree": 2.96},
}
TMA_REFERENCE = "mu=0.98"

# exvideo-position: categorical variants with 32-frame videos; "static" is best on both
# directed metrics (highest temporal_flickering, lowest warping_error).
EXVIDEO_VALUES = {
    "cyclic": {"position": "cyclic", "temporal_flickering": 0.8901, "warping_error": 0.30, "dynamic_degree": 34.3},
    "static": {"position": "static", "temporal_flickering": 0.8950, "warping_error": 0.21, "dynamic_degree": 34.1},
    "trainable": {
        "position": "trainable",
        "temporal_flickering": 0.8905,
        "warping_error": 0.25,
        "dynamic_degree": 34.2,
    },
}
EXVIDEO_REFERENCE = "trainable"
EXVIDEO_FRAMES = 32
TMA_FRAMES = 4


def _settings(frames: int, size: int, fps: int) -> dict:
    return {
        "prompts": list(PROMPTS),
        "seeds": 2,
        "frames": frames,
        "steps": 3,
        "height": size,
        "width": size,
        "guidance_scale": 7.5,
        "fps": fps,
    }


def _metric(value: float, reference: float, direction: str, per_frame_length: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    samples = [value + float(x) for x in rng.normal(0, 0.001, 4)]
    reference_samples = [reference + float(x) for x in rng.normal(0, 0.001, 4)]
    delta = value - reference
    return {
        "direction": direction,
        "value": value,
        "reference_value": reference,
        "delta": delta,
        "ci": [delta - 0.002, delta + 0.002] if delta else [0.0, 0.0],
        "n": 4,
        "confidence": 0.95,
        # Hand-made: every non-zero delta is far outside its interval, so significant.
        "p_value": 0.001 if delta else 1.0,
        "p_adjusted": 0.004 if delta else 1.0,
        "significant": bool(delta),
        "mde": 0.003,
        "samples": samples,
        "reference_samples": reference_samples,
        # A slow upward drift so per-frame plots have something to show.
        "per_frame": [
            [value + 0.001 * t + float(x) for t, x in enumerate(rng.normal(0, 0.0005, per_frame_length))]
            for _ in range(4)
        ],
        "details": {"per": "pair" if direction == "info" else "frame"},
    }


def _study(
    name: str, values: dict, reference: str, metrics: list[str], config_of, frames: int, size: int, fps: int
) -> dict:
    variants = []
    for i, (variant, row) in enumerate(sorted(values.items())):
        variants.append(
            {
                "variant": variant,
                "reference": reference,
                "is_reference": variant == reference,
                "nodeid": f"ablations/test_{name}.py::test[{variant}]",
                "generator": "synthetic",
                "generator_identity": None,
                "config": config_of(row),
                "reference_config": config_of(values[reference]),
                "settings": _settings(frames, size, fps),
                "samples": [
                    {"prompt": p, "seed_index": s, "seed": 1000 * i + 10 * j + s, "video": f"{name}-{variant}-{j}-{s}"}
                    for j, p in enumerate(PROMPTS)
                    for s in range(2)
                ],
                "expectations": [],
                "metrics": {
                    m: _metric(
                        row[m],
                        values[reference][m],
                        METRIC_INFO[m]["direction"],
                        frames,
                        seed=zlib.crc32(f"{name}/{variant}/{m}".encode()),
                    )
                    for m in metrics
                },
            }
        )
    return {"study": name, "references": [reference], "metrics": metrics, "variants": variants}


def synthetic_report(*, gate: bool = True) -> dict:
    studies = [
        _study(
            "exvideo-position",
            EXVIDEO_VALUES,
            EXVIDEO_REFERENCE,
            ["dynamic_degree", "temporal_flickering", "warping_error"],
            lambda row: {"position": row["position"]},
            EXVIDEO_FRAMES,
            32,
            7,
        ),
        _study(
            "zs2-tma",
            TMA_VALUES,
            TMA_REFERENCE,
            ["clip_score", "dynamic_degree"],
            lambda row: {"momentum": row["momentum"], "noise": "two_stage", "lam": 0.1},
            TMA_FRAMES,
            64,
            8,
        ),
    ]
    results = [
        {
            "study": s["study"],
            "variant": v["variant"],
            "reference": v["reference"],
            "metric": m,
            **{
                k: v["metrics"][m][k]
                for k in ("direction", "value", "reference_value", "delta", "ci", "n", "confidence")
            },
        }
        for s in studies
        for v in s["variants"]
        for m in s["metrics"]
    ]
    report = {
        "format": "pytest-ablation-report",
        "version": 3,
        "created": "2026-01-02T03:04:05+00:00",
        "profile": {"name": "tiny", "description": "toy models for the tests", "settings": {}},
        "metrics": copy.deepcopy(METRIC_INFO),
        "studies": studies,
        "cases": [
            {
                "study": s["study"],
                "variant": v["variant"],
                "nodeid": v.get("nodeid"),
                "outcome": "passed",
                "reason": None,
            }
            for s in studies
            for v in s["variants"]
        ],
        "environment": {
            "python": "3.11.7",
            "platform": "Linux",
            "packages": {"pytest-ablation": "0.1.0", "torch": "2.15.0", "diffusers": None},
            "git": {"commit": "2bcdadfaf42a1de58f0b892b290c171b7fbb10f8", "dirty": True},
            "workers": {},
        },
    }
    if gate:
        rows = []
        for r in results:
            status = "info" if r["direction"] == "info" else "ok"
            change = 0.0
            if (r["study"], r["variant"], r["metric"]) == ("zs2-tma", "mu=0.0", "clip_score"):
                status, change = "regressed", -0.9
            if (r["study"], r["variant"], r["metric"]) == ("exvideo-position", "cyclic", "warping_error"):
                status, change = "improved", -0.05
            rows.append(
                {
                    "study": r["study"],
                    "variant": r["variant"],
                    "metric": r["metric"],
                    "status": status,
                    "direction": r["direction"],
                    "baseline": r["value"] - change,
                    "current": r["value"],
                    "change": change,
                    "tolerance": METRIC_INFO[r["metric"]]["tolerance"],
                }
            )
        rows.append(
            {
                "study": "zs2-tma",
                "variant": "mu=0.4",
                "metric": "clip_score",
                "status": "missing",
                "direction": "higher",
                "baseline": 4.0,
                "current": None,
                "change": None,
                "tolerance": 0.5,
            }
        )
        report["gate"] = {
            "baseline": "reports/baseline.json",
            "failed": True,
            "counts": {"ok": 12, "info": 8, "regressed": 1, "improved": 1, "missing": 1},
            "summary": "1 regressed, 1 missing, 12 ok, 1 improved, 8 info",
            "rows": rows,
        }
    return report


def toy_video(frames: int, size: int, color: tuple[int, int, int]) -> np.ndarray:
    """A square moving one pixel a frame: every frame differs from the one before."""
    video = np.full((frames, size, size, 3), 20, dtype=np.uint8)
    for t in range(frames):
        x = t % (size - 8)
        video[t, 4:12, x : x + 8] = color
    return video


def add_previews(report: dict, report_dir: Path) -> dict:
    """Write a preview per variant under report_dir/media/<study>/ and record it the way
    the plugin does: paths relative to the report directory."""
    for s, study in enumerate(report["studies"]):
        folder = report_dir / "media" / slug(study["study"])
        for v, variant in enumerate(study["variants"]):
            settings = variant["settings"]
            video = toy_video(settings["frames"], settings["height"], (255, 40 * v % 256, 60 * s % 256))
            names = write_preview(video, folder, slug(variant["variant"]), fps=settings["fps"])
            variant["media"] = {kind: f"media/{slug(study['study'])}/{name}" for kind, name in names.items()}
    return report


@pytest.fixture
def report_with_media(tmp_path) -> tuple[dict, Path]:
    report_dir = tmp_path / "reports"
    return add_previews(synthetic_report(), report_dir), report_dir


# --- a minimal element tree on top of html.parser -------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.content: list[Node | str] = []  # children and text, in document order

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.content)

    def iter(self, tag: str | None = None, cls: str | None = None):
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                yield child
            yield from child.iter(tag, cls)


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        self.current.content.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.current = self.current.parent

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        assert node is not self.root, f"</{tag}> closes nothing"
        self.current = node.parent

    def handle_data(self, data):
        self.current.content.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> is never closed"
    return builder.root
