"""The ``pytest-ablation`` command: read, compare and promote reports outside a test run.

It reuses the plugin's own report loader, gate and tables, so a comparison here and one
made by ``--ablation-gate`` always agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import check_writable_dir, write_json_atomic
from .gate import compare, summarize
from .options import OptionError, parse_tolerances
from .report import ReportError, load_report, render_results_table, write_reports
from .report.terminal import render_gate_table


def cmd_show(args) -> int:
    report = load_report(args.report)
    sys.stdout.write(render_results_table(report))
    if report.get("gate"):
        sys.stdout.write(f"gate against {report['gate']['baseline']}: {report['gate']['summary']}\n")
    return 0


def cmd_compare(args) -> int:
    baseline = load_report(args.baseline, what="baseline")
    current = load_report(args.current)
    tolerances = parse_tolerances(args.tolerance or [])
    rows = compare(
        baseline["results"],
        current["results"],
        ran={(r["study"], r["variant"]) for r in current["results"]},
        tolerances=tolerances,
    )
    gate = summarize(rows, args.baseline)
    sys.stdout.write(render_gate_table(gate, only_problems=not args.all))
    sys.stdout.write(f"{gate['summary']}\n")
    return 1 if gate["failed"] else 0


def cmd_baseline(args) -> int:
    report = load_report(args.report)
    report.pop("gate", None)
    write_json_atomic(args.output, report)
    sys.stdout.write(f"baseline written: {args.output} ({len(report['results'])} results)\n")
    return 0


def cmd_merge(args) -> int:
    from .report.merge import merge_report_files

    output = Path(args.output)
    problem = check_writable_dir(output)
    if problem:
        raise ReportError(f"--output: cannot write to {output}: {problem}")
    merged = merge_report_files(args.reports, output, partial=args.partial)
    paths = write_reports(merged, output, keep_run=False)
    sys.stdout.write(render_results_table(merged))
    shards = ", ".join(
        f"{s['index']}/{s['count']}" if "index" in s else s["report"] for s in merged["merged_from"]
    )
    sys.stdout.write(
        f"merged {len(args.reports)} report(s) ({shards}): {len(merged['results'])} results\n"
        f"written: {paths['html']}, {paths['json']}, {paths['markdown']}\n"
    )
    return 0


def cmd_html(args) -> int:
    from .report.html import write_html

    report_path = Path(args.report)
    report = load_report(report_path)
    target = Path(args.output) if args.output else report_path.with_suffix(".html")
    write_html(report, target, media_root=report_path.parent)
    sys.stdout.write(f"written: {target}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-ablation", description="Read, compare and promote pytest-ablation reports."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print a report's results table")
    show.add_argument("report", help="a report.json")
    show.set_defaults(run=cmd_show)
    comp = sub.add_parser("compare", help="gate CURRENT against BASELINE; exit 1 on a regression")
    comp.add_argument("baseline", help="the baseline report")
    comp.add_argument("current", help="the report to judge")
    comp.add_argument("--tolerance", action="append", metavar="METRIC=TOL",
                      help="override a metric's tolerance (repeatable)")
    comp.add_argument("--all", action="store_true", help="list every entry, not only failures")
    comp.set_defaults(run=cmd_compare)
    base = sub.add_parser("baseline", help="promote a report to a baseline file")
    base.add_argument("report", help="a report.json")
    base.add_argument("output", help="where to write the baseline (e.g. reports/baseline.json)")
    base.set_defaults(run=cmd_baseline)
    merge = sub.add_parser(
        "merge", help="combine the report.json files of shards into the report of one run"
    )
    merge.add_argument("reports", nargs="+", help="the shards' report.json files")
    merge.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="where to write the merged report.json, report.md and report.html")
    merge.add_argument("--partial", action="store_true",
                       help="merge even though some shards of the run are missing")
    merge.set_defaults(run=cmd_merge)
    html = sub.add_parser("html", help="(re)write report.html from a report.json")
    html.add_argument("report", help="a report.json; previews are read from its folder")
    html.add_argument("-o", "--output", help="the page to write (default: beside the report)")
    html.set_defaults(run=cmd_html)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ReportError, OptionError) as error:
        sys.stderr.write(f"pytest-ablation: error: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
