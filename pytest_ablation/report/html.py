"""report.html: the report as a page to look at, a single file that opens from disk.

Everything the page shows is inside the file: styles inline, previews and plots as base64
data URIs, no scripts. A Content-Security-Policy forbids any other source, so a page that
renders fully in a browser needs nothing from the network or the disk around it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import math
import os
from html import escape
from pathlib import Path
from typing import Any, TypeGuard
from collections.abc import Iterable

from ..files import write_text_atomic
from .format import (
    column_decimals,
    config_text,
    fixed,
    general,
    is_reference,
    p_text,
    resolution_decimals,
    settings_text,
    signed,
    swept_keys,
    swept_value,
    value_text,
)
from ..results.report_json import variant_order
from ..run.media import slug
from .terminal import expected_by_variant, verdict_rows

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Both are looked up with a metric's direction, which a report may not record (None).
_ARROWS: dict[str | None, str] = {"higher": "↑", "lower": "↓"}
_DIRECTION_TEXT: dict[str | None, str] = {
    "higher": "higher is better",
    "lower": "lower is better",
    "info": "informative only, neither direction is better",
}
# Gate statuses that get a mark in the results tables; ok and info need none.
_GATE_MARKS = {
    "regressed": ("▼ regressed", "worse than the baseline by more than the tolerance"),
    "missing": ("missing", "the baseline has this result, this run did not produce it"),
    "improved": ("▲ improved", "better than the baseline by more than the tolerance"),
    "new": ("new", "not in the baseline"),
}
# Per-frame curves are only worth a plot when there are enough frames to drift over.
DRIFT_MIN_FRAMES = 16

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem;
       color: #1d1d1f; background: #fff; max-width: 1400px; }
h1 { margin-top: 0; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.5rem; }
dl.header { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dl.header dt { font-weight: 600; } dl.header dd { margin: 0; }
code { font-size: .9em; }
.note { color: #555; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.cell .value { font-weight: 600; }
td.cell .delta { display: block; font-size: .85em; color: #444; }
td.cell .delta.significant { color: #000; font-weight: 600; }
td.cell .test { display: block; font-size: .75em; color: #666; }
.mark { display: inline-block; font-size: .75em; padding: 0 .3em; border-radius: .25em;
        margin-left: .3em; white-space: nowrap; }
td.best { background: #e9f7e9; } .mark.best { background: #2e7d32; color: #fff; }
td.gate-regressed, td.gate-missing { background: #fde8e8; }
.mark.gate-regressed, .mark.gate-missing, .status-regressed, .status-missing
  { background: #c62828; color: #fff; }
td.gate-improved { background: #e6f0fb; } .mark.gate-improved, .status-improved
  { background: #1565c0; color: #fff; }
.mark.gate-new, .status-new { background: #6d4c41; color: #fff; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: .3rem; font-weight: 600; }
.badge.failed { background: #c62828; color: #fff; } .badge.passed { background: #2e7d32; color: #fff; }
.previews { display: grid; grid-template-columns: max-content max-content max-content; gap: .5rem 1rem;
            align-items: center; }
.previews .name { font-weight: 600; }
.previews img, figure img { image-rendering: pixelated; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 540px; }
figcaption { font-size: .85em; color: #444; }
dl.metrics dt { font-weight: 600; margin-top: .4rem; } dl.metrics dd { margin-left: 1.2rem; }
.source { color: #666; font-style: italic; }
.claim-failed { color: #c62828; font-weight: 600; }
.claim-supported { color: #2e7d32; font-weight: 600; }
.claim-expected { color: #6d6d6d; font-style: italic; }
"""


def write_html(report: dict, path: str | os.PathLike, *, media_root: str | os.PathLike | None = None) -> Path:
    """Render ``report`` and write it to ``path`` atomically."""
    return write_text_atomic(path, render_html(report, media_root=media_root))


def render_html(report: dict, *, media_root: str | os.PathLike | None = None) -> str:
    """The report as one self-contained HTML page.

    ``media_root`` is the folder that the paths in ``variant["media"]`` are relative to
    (the report directory); previews outside it, missing or unreadable are shown as a
    "no preview" note. The same report and media give the same page, byte for byte.
    """
    root = Path(media_root).resolve() if media_root is not None else None
    gate = report.get("gate")
    gate_index = {(r.get("study"), r.get("variant"), r.get("metric")): r for r in (gate or {}).get("rows", [])}
    profile = report.get("profile") or {}
    title = f"Ablation report: {profile.get('name', '?')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        _header(report),
        _contents(report),
        _claims_summary(report),
    ]
    plots = _Plotter()
    for study in report.get("studies", []):
        parts.append(_study_section(report, study, gate_index, root, plots))
    if gate is not None:
        parts.append(_gate_section(gate, variant_order(report)))
    parts.append(_metrics_section(report.get("metrics") or {}))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# --- header -------------------------------------------------------------------------------


def _header(report: dict) -> str:
    profile = report.get("profile") or {}
    env = report.get("environment") or {}
    git = env.get("git") or {}
    items = [
        (
            "profile",
            f"<code>{escape(str(profile.get('name', '?')))}</code>"
            + (f" — {escape(str(profile['description']))}" if profile.get("description") else ""),
        )
    ]
    items.append(("created", escape(str(report.get("created", "?")))))
    commit = git.get("commit")
    items.append(
        (
            "commit",
            (f"<code>{escape(str(commit))}</code>" if commit else "unknown")
            + (" (uncommitted changes)" if git.get("dirty") else ""),
        )
    )
    versions = [f"{name} {version}" for name, version in (env.get("packages") or {}).items() if version]
    if env.get("python"):
        versions.insert(0, f"python {env['python']}")
    items.append(("versions", escape(", ".join(versions)) or "unknown"))
    if env.get("platform"):
        items.append(("platform", escape(str(env["platform"]))))
    gate = report.get("gate")
    if gate is not None:
        state = ("failed", "failed") if gate.get("failed") else ("passed", "passed")
        items.append(
            (
                "gate",
                f'<span class="badge {state[0]}">{state[1]}</span> '
                f"{escape(str(gate.get('summary', '')))} against "
                f"<code>{escape(str(gate.get('baseline', '?')))}</code> "
                '(<a href="#gate">details</a>)',
            )
        )
    else:
        items.append(("gate", "not run (no baseline given)"))
    rows = "\n".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f'<dl class="header">\n{rows}\n</dl>'


def _claims_summary(report: dict) -> str:
    """The page opens with every claim and its verdict, declared claims first: what a reader
    came for, before the studies' tables."""
    headers, rows = verdict_rows(report)
    if not rows:
        return ""
    counts: dict[str, int] = {}
    for row in rows:
        word = row[0].split()[0]
        counts[word] = counts.get(word, 0) + 1
    tally = ", ".join(f"{counts[w]} {w}" for w in ("supported", "refuted", "inconclusive") if w in counts)
    body = "\n".join(
        f'<tr data-verdict="{escape(row[0].split()[0])}">'
        + "".join(f"<td>{escape(str(cell))}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return (
        '<section id="claims"><h2>Claims</h2>\n'
        f"<p>{len(rows)} claim(s): {escape(tally)}.</p>\n"
        '<table class="claims"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in headers)
        + "</tr></thead><tbody>\n"
        + body
        + "\n</tbody></table></section>"
    )


def _contents(report: dict) -> str:
    links = ['<li><a href="#claims">claims</a></li>'] if verdict_rows(report)[1] else []
    links += [f'<li><a href="#{_anchor(s["study"])}">{escape(s["study"])}</a></li>' for s in report.get("studies", [])]
    if report.get("gate") is not None:
        links.append('<li><a href="#gate">gate</a></li>')
    links.append('<li><a href="#metrics">metric definitions</a></li>')
    return "<nav><ul>\n" + "\n".join(links) + "\n</ul></nav>"


def _anchor(study: str) -> str:
    return "study-" + slug(study)


# --- one study ----------------------------------------------------------------------------


def _study_section(report: dict, study: dict, gate_index: dict, media_root: Path | None, plots: _Plotter) -> str:
    name = study["study"]
    variants = study.get("variants", [])
    metrics = study.get("metrics", [])
    info = report.get("metrics") or {}
    parts = [f'<section class="study" id="{escape(_anchor(name))}">', f"<h2>{escape(name)}</h2>", _study_intro(study)]
    parts.append(_results_table(study, info, gate_index))
    parts.append(_details(study))
    parts.append(_set_metrics(report, name))
    parts.append(_claims(variants, expected_by_variant(report, name)))
    parts.append(_definitions(metrics, info))
    parts.append(_previews(study, media_root))
    parts.append(plots.section(study, info))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _study_intro(study: dict) -> str:
    variants = study.get("variants", [])
    first_metric: dict[str, Any] = next((m for v in variants for m in v.get("metrics", {}).values()), {})
    n = first_metric.get("n", "?")
    confidence = first_metric.get("confidence")
    confidence = confidence if _finite(confidence) else 0.95
    references = ", ".join(study.get("references", [])) or "?"
    text = (
        f"Reference: <strong>{escape(references)}</strong>. Each cell: the variant's mean; "
        f"Δ = variant − reference with its {confidence:.0%} t-interval over "
        + (
            f"{escape(str(n))} seeds (each seed index an independent replicate, prompts averaged within it)"
            if first_metric.get("unit") == "seed"
            else f"{escape(str(n))} prompts (seeds averaged within a prompt)"
        )
        + "; p: the t and sign-flip "
        "tests; adj.: Bonferroni over the study's declared claims (confirmatory) or Benjamini-Hochberg "
        "over the report's other cells (exploratory); bold and ★ only when significant "
        "after adjustment; MDE: the smallest difference detected with 80% power."
    )
    settings = settings_text(study, times="×")
    if settings:
        text += f" {escape(settings)}."
    return f'<p class="note">{text}</p>'


def _direction(metric: str, info: dict, variants: list[dict]) -> str | None:
    """From the metric registry, else from the results (a report merged from runs with
    different registries may lack an entry)."""
    direction = (info.get(metric) or {}).get("direction")
    if direction:
        return direction
    return next((v["metrics"][metric].get("direction") for v in variants if metric in v.get("metrics", {})), None)


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def best_variants(study: dict, metric: str, direction: str | None) -> set[str]:
    """Variants with the best value of ``metric`` in ``study``, ties included, where that is
    significant after adjustment for multiple comparisons (stats/inference.py).

    A variant is best only when its difference from the reference is significant and in the
    better direction; the reference is best only when every other variant is significantly
    worse. Empty for 'info' metrics (no direction is better), when every variant has the
    same value, and when the best value is not significantly the best.
    """
    if direction not in ("higher", "lower"):
        return set()
    variants = [
        v
        for v in study.get("variants", [])
        if metric in v.get("metrics", {}) and _finite(v["metrics"][metric].get("value"))
    ]
    values = {v["variant"]: v["metrics"][metric]["value"] for v in variants}
    if len(set(values.values())) < 2:
        return set()
    best = max(values.values()) if direction == "higher" else min(values.values())
    sign = 1 if direction == "higher" else -1

    def is_reference(v):
        return v.get("is_reference") or v["variant"] == v.get("reference")

    def significantly(v, better: bool) -> bool:
        m = v["metrics"][metric]
        delta = m.get("delta")
        return bool(m.get("significant")) and _finite(delta) and (sign * delta > 0) == better

    chosen = set()
    for v in variants:
        if values[v["variant"]] != best:
            continue
        if is_reference(v):
            others = [o for o in variants if not is_reference(o)]
            if others and all(significantly(o, better=False) for o in others):
                chosen.add(v["variant"])
        elif significantly(v, better=True):
            chosen.add(v["variant"])
    return chosen


def _results_table(study: dict, info: dict, gate_index: dict) -> str:
    name = study["study"]
    metrics = study.get("metrics", [])
    variants = study.get("variants", [])
    config_keys = swept_keys(variants)
    decimals = {m: column_decimals(study, m, info) for m in metrics}
    directions = {m: _direction(m, info, variants) for m in metrics}
    best = {m: best_variants(study, m, directions[m]) for m in metrics}
    head = ["<th>variant</th>"] + (["<th>config</th>"] if config_keys else [])
    for m in metrics:
        direction = directions[m]
        tip = (info.get(m) or {}).get("definition", "")
        arrow = _ARROWS.get(direction, "")
        head.append(
            f'<th data-metric="{escape(m)}" title="{escape(tip)}">{escape(m)}'
            + (f" {arrow}" if arrow else "")
            + f'<br><span class="note">{escape(_DIRECTION_TEXT.get(direction, "?"))}</span></th>'
        )
    rows = []
    for variant in variants:
        vname = variant["variant"]
        label = escape(vname) + (' <span class="note">(reference)</span>' if variant.get("is_reference") else "")
        cells = [f'<th scope="row">{label}</th>']
        if config_keys:
            cells.append("<td><code>" + escape(config_text(variant, config_keys)) + "</code></td>")
        for m in metrics:
            cells.append(
                _cell(variant, m, vname in best[m], directions[m], gate_index.get((name, vname, m)), decimals[m])
            )
        rows.append(f'<tr data-variant="{escape(vname)}">' + "".join(cells) + "</tr>")
    return (
        f'<table class="results" data-study="{escape(name)}">\n'
        f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _cell(
    variant: dict, metric: str, is_best: bool, direction: str | None, gate_row: dict | None, decimals: int
) -> str:
    classes = ["cell"]
    attrs = [f'data-metric="{escape(metric)}"']
    body = []
    m = (variant.get("metrics") or {}).get(metric)
    if m is None:
        body.append('<span class="value">—</span>')
    else:
        body.append(f'<span class="value">{value_text(m.get("value"), decimals)}</span>')
        ci = m.get("ci") or [None, None]
        if is_reference(variant):
            body.append('<span class="delta">reference</span>')
        else:
            low, high = ci
            significant = bool(m.get("significant"))
            body.append(
                f'<span class="delta{" significant" if significant else ""}">'
                f"Δ {signed(m.get('delta'), decimals)} [{signed(low, decimals)}, "
                f"{signed(high, decimals)}]</span>"
            )
            family = m.get("family") or "exploratory"
            body.append(
                f'<span class="test" data-family="{escape(family)}">p {p_text(m.get("p_value"))}'
                f" · adj. {p_text(m.get('p_adjusted'))} ({escape(family)})"
                f" · MDE {fixed(m.get('mde'), decimals)}</span>"
            )
    if is_best:
        classes.append("best")
        attrs.append('data-best="true"')
        body.append(
            f'<span class="mark best" title="best {escape(metric)} in this study '
            f'({escape(_DIRECTION_TEXT[direction])})">★ best</span>'
        )
    status = (gate_row or {}).get("status")
    if status:
        attrs.append(f'data-gate="{escape(status)}"')
    if status in _GATE_MARKS:
        assert gate_row is not None  # the status came from it
        text, why = _GATE_MARKS[status]
        classes.append(f"gate-{status}")
        detail = (
            f"{why}: baseline {fixed(gate_row.get('baseline'), decimals)}, current "
            f"{fixed(gate_row.get('current'), decimals)}, change "
            f"{signed(gate_row.get('change'), decimals)}, "
            f"tolerance {general(gate_row.get('tolerance'))}"
        )
        body.append(f'<span class="mark gate-{escape(status)}" title="{escape(detail)}">{escape(text)}</span>')
    return f'<td class="{" ".join(classes)}" {" ".join(attrs)}>' + "".join(body) + "</td>"


def _details(study: dict) -> str:
    """What the generator reported about each variant's samples (``details``), if any."""
    from .terminal import detail_rows

    headers, rows = detail_rows(study)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="details"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _set_metrics(report: dict, study: str) -> str:
    """The study's set-level metrics (FVD): one row per variant, then their warnings."""
    from .terminal import set_metric_rows

    headers, rows, warnings = set_metric_rows(report, study)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    notes = "".join(f'<p class="set-warning"><strong>Warning:</strong> {escape(w)}</p>' for w in warnings)
    return f'<table class="set-metrics"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>{notes}'


def _claims(variants: list[dict], expected: dict[str, str]) -> str:
    from .terminal import claim_rows

    headers, rows = claim_rows({"variants": variants}, expected)
    if not rows:
        return ""
    body = []
    for row in rows:
        verdict = row[7]
        css = (
            "claim-expected"
            if verdict.endswith("(expected)")
            else "claim-supported"
            if verdict == "supported"
            else "claim-failed"
        )
        cells = "".join(f"<td>{escape(str(cell))}</td>" for cell in row[:7])
        body.append(f'<tr>{cells}<td class="{css}">{escape(verdict)}</td><td>{escape(row[8])}</td></tr>')
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"


def _definitions(metrics: Iterable[str], info: dict) -> str:
    items = []
    for m in metrics:
        entry = info.get(m) or {}
        direction = entry.get("direction")
        items.append(
            f'<dt data-metric="{escape(m)}">{escape(m)} {_ARROWS.get(direction, "")} '
            f'<span class="note">({escape(_DIRECTION_TEXT.get(direction, "direction unknown"))})</span></dt>'
            f"<dd>{escape(str(entry.get('definition', 'no definition recorded')))}"
            f' <span class="source">— {escape(str(entry.get("source", "source unknown")))}</span></dd>'
        )
    return '<dl class="metrics">\n' + "\n".join(items) + "\n</dl>"


# --- previews -----------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _media_uri(media_root: Path | None, relative: Any) -> str | None:
    """The file at ``media_root / relative`` as a data URI, or None when it cannot be shown.

    Paths that lead outside media_root are refused: the report names the files, and a page
    meant for sharing must not pick up whatever else is on the disk.
    """
    if media_root is None or not isinstance(relative, str) or not relative:
        return None
    path = (media_root / relative).resolve()
    if not path.is_relative_to(media_root):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = _sniff(data)
    return _data_uri(data, mime) if mime else None


def _first_sample(variant: dict) -> dict | None:
    prompts = (variant.get("settings") or {}).get("prompts") or []
    samples = variant.get("samples") or []
    for sample in samples:
        if (not prompts or sample.get("prompt") == prompts[0]) and sample.get("seed_index", 0) == 0:
            return sample
    return samples[0] if samples else None


def _previews(study: dict, media_root: Path | None) -> str:
    variants = study.get("variants", [])
    if not variants:
        return ""
    # The plugin previews the first prompt and seed; media may say which sample it shows.
    first_media = variants[0].get("media") if isinstance(variants[0].get("media"), dict) else {}
    sample = first_media if "prompt" in first_media else _first_sample(variants[0]) or {}
    caption = "Previews of the first prompt and seed"
    if sample.get("prompt") is not None:
        caption += f": “{escape(str(sample['prompt']))}”, seed index {escape(str(sample.get('seed_index', 0)))}"
    cells = []
    for variant in variants:
        media = variant.get("media") if isinstance(variant.get("media"), dict) else {}
        name = escape(variant["variant"])
        cells.append(f'<div class="name">{name}</div>')
        for kind, label in (("strip", "frames"), ("animation", "animation")):
            uri = _media_uri(media_root, media.get(kind))
            if uri is None:
                cells.append(
                    f'<div class="note no-preview" data-variant="{name}" data-kind="{kind}">no preview ({label})</div>'
                )
            else:
                cells.append(
                    f'<img class="preview-{kind}" data-variant="{name}" src="{uri}" alt="{escape(label)} of {name}">'
                )
    return (
        f'<h3>Videos</h3>\n<p class="note">{caption}. Left: frames evenly sampled over '
        "the video; right: the whole video, looping.</p>\n"
        f'<div class="previews">\n' + "\n".join(cells) + "\n</div>"
    )


# --- plots --------------------------------------------------------------------------------


def sweep_key(variants: list[dict]) -> str | None:
    """The key a study sweeps, when the variants differ in exactly one configuration key or
    setting (e.g. ``guidance_scale`` passed through ``ablation.run``) and its values are
    numbers: plots then draw the metric over that parameter."""
    keys = swept_keys(variants)
    if len(keys) != 1 or len(variants) < 2:
        return None
    values = [swept_value(v, keys[0]) for v in variants]
    return keys[0] if all(_finite(x) for x in values) else None


def _per_frame_means(entry: dict) -> list[float] | None:
    per_frame = entry.get("per_frame")
    if not isinstance(per_frame, list):
        return None
    curves = [c for c in per_frame if isinstance(c, list) and c and all(_finite(x) for x in c)]
    if not curves:
        return None
    # Samples of one study have equally long videos; should one differ, compare the frames
    # all of them have.
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


class _Plotter:
    """Draws the plots of a study as PNG data URIs; matplotlib is imported on first use."""

    def section(self, study: dict, info: dict) -> str:
        variants = study.get("variants", [])
        metrics = study.get("metrics", [])
        if not variants or not metrics:
            return ""
        if importlib.util.find_spec("matplotlib") is None:
            return '<h3>Plots</h3><p class="note">Plots need matplotlib, which is not installed.</p>'
        key = sweep_key(variants)
        # A variant keeps its colour across the plots of its study.
        colors = {v["variant"]: i for i, v in enumerate(variants)}
        figures = []
        for metric in metrics:
            entry = info.get(metric) or {}
            png = self._sweep(variants, metric, key) if key else self._bars(variants, metric, colors)
            if png is not None:
                what = (
                    f"{metric} over {key}; error bars: the {_confidence(variants, metric)} "
                    "interval of the paired difference to the reference, around the value"
                    if key
                    else f"Δ {metric} (variant − reference) with its {_confidence(variants, metric)} interval"
                )
                figures.append(_figure(png, metric, what, entry, kind="metric"))
        frames = max((int((v.get("settings") or {}).get("frames") or 0) for v in variants), default=0)
        if frames >= DRIFT_MIN_FRAMES:
            for metric in metrics:
                png = self._drift(variants, metric, colors)
                if png is not None:
                    per = _per_of(variants, metric)
                    figures.append(
                        _figure(
                            png,
                            metric,
                            f"{metric} per {per} over the video, mean over samples: drift over time",
                            info.get(metric) or {},
                            kind="drift",
                        )
                    )
        if not figures:
            return ""
        return '<h3>Plots</h3>\n<div class="plots">\n' + "\n".join(figures) + "\n</div>"

    @staticmethod
    def _new_figure(bottom: float):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(5.2, 3.3), dpi=100)
        # Fixed margins rather than constrained layout, which doubles the drawing time.
        figure.subplots_adjust(left=0.17, right=0.97, top=0.9, bottom=bottom)
        return figure

    @staticmethod
    def _png(figure) -> bytes:
        buffer = io.BytesIO()
        # No "Software" entry (it names the matplotlib version): identical bytes across runs.
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    def _draw(self, draw, *, bottom: float = 0.15) -> bytes:
        import matplotlib.style

        # Each plot starts from matplotlib's defaults, whatever the user's matplotlibrc
        # says, so the same report gives the same pictures everywhere.
        with matplotlib.style.context("default"):
            figure = self._new_figure(bottom)
            draw(figure)
            _plain_axes(figure)
            return self._png(figure)

    def _sweep(self, variants: list[dict], metric: str, key: str) -> bytes | None:
        points = sorted(
            (
                (swept_value(v, key), v["metrics"][metric], v)
                for v in variants
                if metric in v.get("metrics", {}) and _finite(v["metrics"][metric].get("value"))
            ),
            key=lambda p: p[0],
        )
        if not points:
            return None

        def draw(figure):
            ax = figure.add_subplot()
            xs = [p[0] for p in points]
            ys = [p[1]["value"] for p in points]
            low, high = zip(*(_value_interval(p[1]) for p in points))
            ax.errorbar(
                xs,
                ys,
                yerr=[[y - lo for y, lo in zip(ys, low)], [hi - y for y, hi in zip(ys, high)]],
                marker="o",
                capsize=3,
                color="C0",
            )
            references = [p for p in points if p[2].get("is_reference")]
            for x, m, _ in references:
                ax.plot([x], [m["value"]], marker="*", markersize=13, color="C3", linestyle="none", label="reference")
                ax.axhline(m["value"], color="C3", linestyle="--", linewidth=0.8)
            if references:
                ax.legend(loc="best", fontsize="small")
            ax.set_xlabel(key)
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} over {key}", fontsize="medium")
            ax.grid(True, alpha=0.3)

        return self._draw(draw)

    def _bars(self, variants: list[dict], metric: str, colors: dict) -> bytes | None:
        bars = [
            (v["variant"], v["metrics"][metric], bool(v.get("is_reference")))
            for v in variants
            if metric in v.get("metrics", {}) and _finite(v["metrics"][metric].get("delta"))
        ]
        if not bars:
            return None

        def draw(figure):
            ax = figure.add_subplot()
            positions = range(len(bars))
            deltas = [m["delta"] for _, m, _ in bars]
            errors = [[], []]
            for _, m, _ in bars:
                low, high = m.get("ci") or (None, None)
                finite = _finite(low) and _finite(high)
                errors[0].append(max(0.0, m["delta"] - low) if finite else 0.0)
                errors[1].append(max(0.0, high - m["delta"]) if finite else 0.0)
            # The reference is grey: its bar is zero by definition.
            fill = ["0.6" if is_ref else f"C{colors[name] % 10}" for name, _, is_ref in bars]
            ax.bar(positions, deltas, yerr=errors, capsize=4, color=fill)
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_xticks(
                list(positions),
                [name for name, _, _ in bars],
                rotation=30 if tilted else 0,
                ha="right" if tilted else "center",
                fontsize="small",
            )
            ax.set_ylabel(f"Δ {metric}")
            ax.set_title(f"Δ {metric} vs reference", fontsize="medium")
            ax.grid(True, axis="y", alpha=0.3)

        # Many or long variant names are tilted and need more room below the axes.
        tilted = len(bars) > 4 or max(len(name) for name, _, _ in bars) > 10
        return self._draw(draw, bottom=0.3 if tilted else 0.15)

    def _drift(self, variants: list[dict], metric: str, colors: dict) -> bytes | None:
        curves = [
            (v["variant"], _per_frame_means(v["metrics"][metric])) for v in variants if metric in v.get("metrics", {})
        ]
        curves = [(name, c) for name, c in curves if c]
        if not curves:
            return None
        per = _per_of(variants, metric)

        def draw(figure):
            ax = figure.add_subplot()
            for name, curve in curves:
                ax.plot(range(len(curve)), curve, label=name, color=f"C{colors[name] % 10}", linewidth=1.2)
            ax.set_xlabel(f"{per} index")
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} per {per} (mean over samples)", fontsize="medium")
            ax.legend(loc="best", fontsize="x-small")
            ax.grid(True, alpha=0.3)

        return self._draw(draw)


# The left margin holds tick labels of this many characters; each more widens it.
_LABEL_CHARS = 6
_CHAR_WIDTH = 0.0125  # of the figure's width, at its size and the default font


def _plain_axes(figure) -> None:
    """Tick labels that read as the numbers they are: no offset ("1e-5+9.979e-1") and no
    scientific notation, on every numeric axis; the left margin grows with the y labels."""
    from matplotlib.ticker import ScalarFormatter

    longest = 0
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                formatter.set_useOffset(False)
                formatter.set_scientific(False)
        if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
            low, high = ax.get_ylim()  # settles the limits the ticks are placed in
            locations = [y for y in ax.yaxis.get_majorticklocs() if low <= y <= high]
            labels = ax.yaxis.get_major_formatter().format_ticks(locations)
            longest = max([longest, *(len(label) for label in labels)])
    if longest > _LABEL_CHARS:
        left = figure.subplotpars.left + _CHAR_WIDTH * (longest - _LABEL_CHARS)
        figure.subplots_adjust(left=min(left, 0.4))


def _value_interval(entry: dict) -> tuple[float, float]:
    """The delta's interval moved onto the value: value = reference value + delta, so the
    interval is reference value + [low, high]; a point without one gets a zero-length bar."""
    value = entry["value"]
    low, high = entry.get("ci") or (None, None)
    reference = entry.get("reference_value")
    if not (_finite(low) and _finite(high) and _finite(reference)):
        return value, value
    return min(value, reference + low), max(value, reference + high)


def _confidence(variants: list[dict], metric: str) -> str:
    for v in variants:
        if metric in v.get("metrics", {}):
            return f"{v['metrics'][metric].get('confidence', 0.95):.0%}"
    return "95%"


def _per_of(variants: list[dict], metric: str) -> str:
    for v in variants:
        per = ((v.get("metrics", {}).get(metric) or {}).get("details") or {}).get("per")
        if per:
            return str(per)
    return "frame"


def _figure(png: bytes, metric: str, what: str, entry: dict, *, kind: str) -> str:
    return (
        f'<figure class="plot" data-metric="{escape(metric)}" data-kind="{kind}">'
        f'<img src="{_data_uri(png, "image/png")}" alt="{escape(what)}">'
        f"<figcaption><strong>{escape(what)}</strong>. {escape(metric)}: "
        f"{escape(str(entry.get('definition', 'no definition recorded')))}"
        f' <span class="source">— {escape(str(entry.get("source", "source unknown")))}</span>'
        "</figcaption></figure>"
    )


# --- gate and glossary --------------------------------------------------------------------


def _gate_section(gate: dict, order: dict) -> str:
    rows = gate.get("rows", [])
    shown = sorted(
        (r for r in rows if r.get("status") not in ("ok", "info")),
        key=lambda r: (
            str(r.get("study")),
            order.get((r.get("study"), r.get("variant")), len(order)),
            str(r.get("metric")),
        ),
    )
    counts = gate.get("counts") or {}
    head = (
        f'<section id="gate"><h2>Gate</h2>\n<p>Baseline <code>{escape(str(gate.get("baseline", "?")))}</code>: '
        f"{escape(str(gate.get('summary', '')))}. "
        + (
            '<span class="badge failed">failed</span>'
            if gate.get("failed")
            else '<span class="badge passed">passed</span>'
        )
        + "</p>"
    )
    differences = gate.get("differences") or []
    if differences:
        head += (
            "\n<p>The baseline and this report were made differently:</p>\n<ul>"
            + "".join(f"<li><code>{escape(line)}</code></li>" for line in differences)
            + "</ul>"
        )
    if not shown:
        return head + f'\n<p class="note">All {len(rows)} results are ok or informative.</p></section>'
    lines = []
    for r in shown:
        status = str(r.get("status"))
        decimals = resolution_decimals(r.get("tolerance"))

        def number(x, sign=False, decimals=decimals):
            if not _finite(x) or decimals is None:
                return ("+" if sign and _finite(x) and x >= 0 else "") + general(x)
            return signed(x, decimals) if sign else fixed(x, decimals)

        lines.append(
            f'<tr data-status="{escape(status)}"><td>{escape(str(r.get("study")))}</td>'
            f"<td>{escape(str(r.get('variant')))}</td><td>{escape(str(r.get('metric')))}</td>"
            f'<td><span class="badge status-{escape(status)}">{escape(status)}</span></td>'
            f"<td>{number(r.get('baseline'))}</td><td>{number(r.get('current'))}</td>"
            f"<td>{number(r.get('change'), sign=True)}</td><td>{general(r.get('tolerance'))}</td>"
            f"<td>{escape(str(r.get('direction', '')))}</td></tr>"
        )
    hidden = sum(counts.get(s, 0) for s in ("ok", "info"))
    return (
        head + '\n<table class="gate"><thead><tr><th>study</th><th>variant</th><th>metric</th>'
        "<th>status</th><th>baseline</th><th>current</th><th>change</th><th>tolerance</th>"
        "<th>direction</th></tr></thead><tbody>\n"
        + "\n".join(lines)
        + "\n</tbody></table>\n"
        + (f'<p class="note">{hidden} ok or informative results not listed.</p>' if hidden else "")
        + "</section>"
    )


def _metrics_section(info: dict) -> str:
    return '<section id="metrics"><h2>Metric definitions</h2>\n' + _definitions(list(info), info) + "\n</section>"
