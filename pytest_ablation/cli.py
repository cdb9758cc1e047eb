"""The ``pytest-ablation`` command: read, compare and promote reports outside a test run.

It reuses the plugin's own report loader, gate and tables, so a comparison here and one
made by ``--ablation-gate`` always agree.
"""

from __future__ import annotations

import argparse
import sys

from .files import write_json_atomic
from .gate import compare, summarize
from .options import OptionError, parse_tolerances
from .report import ReportError, load_report, render_results_table
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
