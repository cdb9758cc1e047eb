"""Combining the reports of shards (or of runs split by hand) into the report of one run.

Results from different environments or configurations cannot be compared, so a merge is
refused, naming the field, unless the fields that decide the numbers agree: the report
format, the profile (models and settings), the metric definitions, Python and the package
versions, and the git commit. Where they agree, the merged report is built from the
variants by the same code as a single run's, so ``studies`` and ``results`` come out equal
to those of the unsharded run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast
from collections.abc import Iterable

from .record import POSITION_FIELD, missing_fields, record_of
from .report_json import ReportError, build_report, load_report, merge_cache_stats

# Dotted paths into a report that must be equal in every report merged.
MUST_AGREE = (
    "format",
    "version",
    "profile",
    "environment.python",
    "environment.packages",
    "environment.git.commit",
)


class MergeError(ReportError):
    pass


def _get(report: dict[str, Any], dotted: str) -> Any:
    value: Any = report
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first dotted path below ``path`` where ``a`` and ``b`` differ, with both values:
    down to the entry of a list (``settings.prompts[512]``), so that one differing prompt
    among hundreds is named, not the two lists."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and a != b:
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found:
                return found
        if len(a) != len(b):
            return (f"{path} length", len(a), len(b))
    return None if a == b else (path, a, b)


def _shown(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_agree(named: list[tuple[str, dict[str, Any]]]) -> None:
    (first_name, first), rest = named[0], named[1:]
    for name, report in rest:
        pairs = [(field, _get(first, field), _get(report, field)) for field in MUST_AGREE]
        # Metrics only one of the reports measured cannot disagree; shared ones must match.
        mine, theirs = first.get("metrics", {}), report.get("metrics", {})
        pairs += [(f"metrics.{m}", mine[m], theirs[m]) for m in sorted(set(mine) & set(theirs))]
        for field, ours, other in pairs:
            found = first_difference(ours, other, field)
            if found:
                where, ours, other = found
                raise MergeError(
                    f"cannot merge {name} with {first_name}: {where} differs "
                    f"({_shown(other)} there, {_shown(ours)} in {first_name})"
                )


def _check_shards(named: list[tuple[str, dict[str, Any]]], partial: bool) -> list[dict[str, Any]]:
    shards = [(name, report.get("shard")) for name, report in named]
    sharded = [(name, shard) for name, shard in shards if shard is not None]
    if not sharded:
        return []
    if len(sharded) != len(shards):
        unsharded = next(name for name, shard in shards if shard is None)
        raise MergeError(f"cannot merge {unsharded}: it is not a shard, but the others are (shard differs)")
    counts = {shard["count"] for _, shard in sharded}
    if len(counts) > 1:
        listed = ", ".join(f"{name}: {shard['index']}/{shard['count']}" for name, shard in sharded)
        raise MergeError(f"cannot merge: shard.count differs between the reports ({listed})")
    count = counts.pop()
    seen: dict[int, str] = {}
    for name, shard in sharded:
        if shard["index"] in seen:
            raise MergeError(f"cannot merge: {name} and {seen[shard['index']]} are both shard {shard['index']}/{count}")
        seen[shard["index"]] = name
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing and not partial:
        raise MergeError(
            f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing; pass every shard's "
            "report, or --partial to merge only these"
        )
    return [{"index": i, "count": count, "report": seen[i]} for i in sorted(seen)]


def _variant_records(named: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    records: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for name, report in named:
        for study in report.get("studies", []):
            for entry in study["variants"]:
                missing = missing_fields(entry)
                if missing:
                    raise MergeError(
                        f"cannot merge {name}: a variant of {study['study']} has no "
                        f"{', '.join(missing)} (is it a full report.json?)"
                    )
                key = (study["study"], entry["variant"])
                record = record_of(study["study"], entry)
                if key in records and _results(records[key][1]) != _results(record):
                    raise MergeError(
                        f"cannot merge: {key[0]} {key[1]} was run in both {records[key][0]} and "
                        f"{name} with different results"
                    )
                records.setdefault(key, (name, record))
    return [record for _, record in records.values()]


def _results(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its place in the collection, which a report of an older version
    does not give: what two runs of one variant must agree on."""
    return {k: v for k, v in record.items() if k != POSITION_FIELD}


def _environment(named: list[tuple[str, dict[str, Any]]], shards: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {s["report"]: f"shard{s['index']}" for s in shards}
    environments: list[Any] = [report.get("environment") or {} for _, report in named]
    first = environments[0]
    platforms = sorted({e.get("platform") for e in environments} - {None})
    workers = {}
    for position, ((name, _), environment) in enumerate(zip(named, environments), start=1):
        label = labels.get(name, f"report{position}")
        for worker, summary in (environment.get("workers") or {}).items():
            workers[f"{label}/{worker}"] = summary
    git = first.get("git")
    if git is not None:
        git = {**git, "dirty": any((e.get("git") or {}).get("dirty") for e in environments)}
    return {
        **first,
        "platform": "; ".join(platforms) if platforms else first.get("platform"),
        "git": git,
        "workers": {name: workers[name] for name in sorted(workers)},
    }


def _cases(
    named: list[tuple[str, dict[str, Any]]],
) -> tuple[list[dict[str, Any]], dict[str, set[str]]] | tuple[None, None]:
    """Every report's cases, each case once: where a shard ran it, with that outcome.

    None when a report does not record its cases (an older report version)."""
    if not all(isinstance(report.get("cases"), list) for _, report in named):
        return None, None
    cases: dict[tuple[str, str, str], dict[str, Any]] = {}
    selection: dict[str, set[str]] = {"paths": set(), "files": set(), "ignored": set()}
    for _, report in named:
        for case in report["cases"]:
            key = (case["study"], case["variant"], case.get("nodeid") or "")
            if key not in cases or cases[key]["outcome"] == "deselected":
                cases[key] = case
        for field in selection:
            selection[field].update((report.get("selection") or {}).get(field, ()))
    return list(cases.values()), selection


def merge_reports(named: Iterable[tuple[str, dict[str, Any]]], *, partial: bool = False) -> dict[str, Any]:
    """One report from several; ``named`` pairs each report with the name errors use."""
    named = list(named)
    if not named:
        raise MergeError("nothing to merge: give at least one report")
    _check_agree(named)
    shards = _check_shards(named, partial)
    metric_info: dict[str, dict[str, Any]] = {}
    for _, report in named:
        metric_info.update(report.get("metrics", {}))
    cases, selection = _cases(named)
    merged = build_report(
        _variant_records(named),
        profile=named[0][1].get("profile") or {},
        environment=_environment(named, shards),
        metric_info=metric_info,
        cache=merge_cache_stats([{"cache": r.get("cache")} for _, r in named]),
        created=max(r.get("created") or "" for _, r in named) or None,
        cases=cases,
        selection=selection,
    )
    merged["merged_from"] = shards or [{"report": name} for name, _ in named]
    return merged


def merge_report_files(paths: Iterable[str | Path], output_dir: Path, *, partial: bool = False) -> dict[str, Any]:
    """Merge report files and bring their previews and saved videos into ``output_dir``.

    Only files inside a shard report's own folder are copied, and only into ``output_dir``:
    a report whose preview or video path climbs out of its folder (``..``, an absolute
    path, a link to elsewhere) is refused, as report.html refuses to show such a file, so a
    tampered report can neither write outside the output folder nor copy in what lies
    outside its own. The output folder may not be a shard's own folder (its report.json
    would be overwritten by the merge).
    """
    paths = cast("list[Path]", [Path(p) for p in paths])
    output = Path(output_dir).resolve()
    for path in paths:
        if path.resolve().parent == output:
            raise MergeError(
                f"--output {output_dir} is the folder of {path}: the merged report.json would "
                "overwrite that shard's; write the merge to a folder of its own"
            )
    named = [(str(p), load_report(p)) for p in paths]
    merged = merge_reports(named, partial=partial)
    folders = {}
    for path, (_, report) in zip(paths, named):
        for study in report.get("studies", []):
            for entry in study["variants"]:
                folders[(study["study"], entry["variant"])] = (path, path.parent.resolve())
    copies = []
    for study in merged["studies"]:
        for entry in study["variants"]:
            report_path, source = folders[(study["study"], entry["variant"])]
            relative = list((entry.get("media") or {}).values()) + list(entry.get("videos") or [])
            for rel in relative:
                copies.append((_inside(source, rel, report_path), _inside(output, rel, report_path)))
    for source, target in copies:  # all checked before anything is written
        _copy(source, target)
    return merged


def _inside(folder: Path, relative: object, report: Path) -> Path:
    """``folder / relative``, refused (``MergeError``) unless it stays inside ``folder``,
    links resolved, and every file beneath it does too."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
        raise MergeError(f"report {report}: media path {relative!r} is not a relative path inside its folder; refused")
    path = folder / relative
    resolved = path.resolve()
    if not resolved.is_relative_to(folder):
        raise MergeError(f"report {report}: media path {relative!r} leads outside its folder {folder}; refused")
    if path.is_dir():
        for inner in path.rglob("*"):
            if not inner.resolve().is_relative_to(folder):
                raise MergeError(
                    f"report {report}: {inner} (under media path {relative!r}) "
                    f"leads outside its folder {folder}; refused"
                )
    return path


def _copy(source: Path, target: Path) -> None:
    if not source.exists() or source.resolve() == target.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():  # --ablation-save-videos png: a folder of frames
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
