"""The end-of-run summary in the terminal."""

from __future__ import annotations

import textwrap

WIDTH = 100  # the terminal tables' width too


def _wrapped(text: str, indent: str = "    ") -> str:
    # Paths and ids stay whole: a line may outgrow the width rather than split a path.
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)


def write_summary(terminal, collector) -> None:
    """The results, the cache, the workers, the gate and where the report went: what the
    run's ``ResultCollector`` finished with (nothing when it made no report)."""
    report = collector.report
    if report is None:
        return
    from ..results.gate import FAILING
    from ..results.report_json import variant_order
    from .terminal import (
        render_differences,
        render_gate_table,
        render_results_table,
        render_verdicts,
    )

    verdicts = render_verdicts(report)
    if verdicts:
        # First: the answer to "does this part matter?", one line per claim.
        terminal.write_sep("=", "ablation verdicts")
        terminal.write(verdicts)
    if terminal.config.get_verbosity() >= 0:
        terminal.write_sep("=", "ablation results")
        terminal.write(render_results_table(report))
    write_expected_reasons(terminal, report)
    cache = report.get("cache") or {}
    if cache:
        line = f"cache: {cache.get('hits', 0)} loaded, {cache.get('misses', 0)} computed" + (
            " (cache disabled)" if collector.options.no_cache else ""
        )
        terminal.write_line(line)
        for entry in cache.get("corrupted", []):
            terminal.write_line(f"cache: corrupted entry recomputed: {entry}", yellow=True)
        for entry in cache.get("unreadable", []):
            terminal.write_line(f"cache: unreadable entry recomputed: {entry}", yellow=True)
        unwritten = cache.get("unwritten", [])
        if unwritten:
            terminal.write_line(
                f"cache: {len(unwritten)} entr{'y' if len(unwritten) == 1 else 'ies'} computed but "
                f"not kept (first: {unwritten[0]})",
                yellow=True,
            )
    for name, info in sorted(report["environment"].get("workers", {}).items()):
        loads = ", ".join(f"{role} x{n}" for role, n in sorted(info.get("loads", {}).items()))
        terminal.write_line(f"worker {name}: {info.get('device_text')}; model loads: {loads or 'none'}")
    gate = collector.gate
    if gate is not None:
        terminal.write_sep("=", "ablation gate", red=gate["failed"], green=not gate["failed"])
        terminal.write_line(f"baseline {gate['baseline']}: {gate['summary']}")
        if gate["failed"]:
            terminal.write(render_gate_table(gate, order=variant_order(report)))
            terminal.write(render_differences(gate))
        not_run = [r for r in gate["rows"] if r["status"] == "not run"]
        if not_run:
            order = variant_order(report)
            cases = sorted(
                {(r["study"], r["variant"]) for r in not_run},
                key=lambda case: (case[0], order.get(case, len(order)), case[1]),
            )
            terminal.write_line(
                _wrapped("not run (not selected, not failed): " + ", ".join(f"{s} {v}" for s, v in cases))
            )
        reasons = dict.fromkeys(
            f"{row['status']}: {row['study']} {row['variant']}: {row['reason']}"
            for row in gate["rows"]
            if row["status"] in FAILING and row.get("reason")
        )
        for line in reasons:
            terminal.write_line(_wrapped(line), red=True)
    paths = collector.report_paths or {}
    if paths:
        terminal.write_line(_wrapped(f"report: {paths['html']}, {paths['json']}, {paths['markdown']}"))
        shard = report.get("shard")
        if shard and collector.nothing_to_run:
            terminal.write_line(
                f"shard {shard['index']}/{shard['count']}: nothing to run (the split gave the "
                "selected tests to the other shards); its empty report is written for the merge"
            )
        if shard:
            terminal.write_line(
                f"shard {shard['index']}/{shard['count']}: combine the shards' report.json files "
                "with `pytest-ablation merge`"
            )
    for line, failed in collector.tracker_lines:
        terminal.write_line(_wrapped(line), red=failed)
    if collector.write_error:
        terminal.write_line(f"ablation: {collector.write_error}", red=True)
    elif collector.options.save_baseline is not None:
        terminal.write_line(f"baseline saved: {collector.options.save_baseline}")
    if gate is not None and gate["failed"]:
        # Last, just above pytest's own count: "4 passed" alone would hide why the run fails.
        terminal.write_line(
            _wrapped(
                f"ablation gate FAILED against {gate['baseline']} ({gate['summary']}): the run exits "
                "with status 1 whatever the tests' own outcomes"
            ),
            red=True,
            bold=True,
        )


def write_expected_reasons(terminal, report: dict) -> None:
    """Why each strict expected failure with a claim not supported is expected, once per
    case, so that its verdict is not taken for the run's failure."""
    from ..stats.claims import verdict_of
    from ..results.outcomes import expected_failures

    expected = expected_failures(report)
    for study in report["studies"]:
        for variant in study["variants"]:
            reason = expected.get((study["study"], variant["variant"]))
            if reason is None or all(verdict_of(c) == "supported" for c in variant.get("expectations") or []):
                continue
            terminal.write_line(_wrapped(f"expected: {study['study']} {variant['variant']}: {reason}"), yellow=True)
