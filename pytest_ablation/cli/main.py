"""The ``pytest-ablation`` command: read, compare and promote reports outside a test run.

It reuses the plugin's own report loader, gate and tables, so a comparison here and one
made by ``--ablation-gate`` always agree.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import textwrap
from pathlib import Path

from ..files import check_writable_dir, write_json_atomic
from ..results.gate import FAILING, GateInputError, gate_verdict, report_metrics, unknown_tolerance
from ..harness.options import OptionError, parse_tolerances
from ..results.model import Report
from ..results.report_json import ReportError, load_report
from ..report.terminal import render_results_table
from ..report.write import write_reports
from ..report.terminal import (
    WIDTH as LINE_WIDTH,
    render_differences,
    render_gate_table,
    render_verdicts,
    verdict_changes,
)
from ..version import __version__


def _print_json(payload) -> None:
    """Strict JSON on stdout (NaN and infinities as null), for ``--json``."""
    import json

    from ..files import strict_json

    sys.stdout.write(json.dumps(strict_json(payload), indent=2, allow_nan=False) + "\n")


def _claims(report: dict) -> list[dict]:
    """Every claim of the report with its study and variant, as report.json records it."""
    from ..stats.claims import verdict_of

    return [
        {"study": study["study"], "variant": variant["variant"], "verdict": verdict_of(e), **e}
        for study in report.get("studies") or ()
        for variant in study.get("variants") or ()
        for e in variant.get("expectations") or ()
    ]


def cmd_show(args) -> int:
    report = load_report(args.report)
    if args.json:
        _print_json(
            {
                "report": str(args.report),
                "profile": report.get("profile"),
                "claims": _claims(report),
                "results": [comparison.row() for comparison in Report.from_json(report).comparisons],
                "gate": report.get("gate"),
            }
        )
        return 0
    sys.stdout.write(render_verdicts(report))
    sys.stdout.write(render_results_table(report))
    if report.get("gate"):
        sys.stdout.write(f"gate against {report['gate']['baseline']}: {report['gate']['summary']}\n")
    return 0


def cmd_compare(args) -> int:
    tolerances = parse_tolerances(args.tolerance or [], source="--tolerance")
    baseline = load_report(args.baseline, what="baseline")
    current = load_report(args.current)
    from ..metrics.registry import metric_names

    # The built-in metrics, and those the two reports name (a project's own among them).
    problem = unknown_tolerance(tolerances, set(metric_names()) | report_metrics(baseline, current), "--tolerance")
    if problem:
        raise ReportError(problem)
    try:
        # The same judgement as --ablation-gate, on the same two documents.
        gate = gate_verdict(baseline, current, args.baseline, tolerances=tolerances)
    except GateInputError as error:
        raise ReportError(f"report {args.current}: {error}") from None
    if args.json:
        _print_json(
            {
                "baseline": str(args.baseline),
                "current": str(args.current),
                "failed": gate["failed"],
                "summary": gate["summary"],
                "counts": gate["counts"],
                "differences": gate["differences"],
                "claims": _claims(current),
                "verdict_changes": verdict_changes(baseline, current),
                "rows": gate["rows"] if args.all else [row for row in gate["rows"] if row["status"] in FAILING],
            }
        )
        return 1 if gate["failed"] else 0
    verdicts = render_verdicts(current)
    if verdicts:
        sys.stdout.write(f"claims of {args.current}:\n{verdicts}")
        for line in verdict_changes(baseline, current):
            sys.stdout.write(line + "\n")
    if args.all or gate["failed"]:
        # Without --all the table lists only problems: none, no table.
        from ..results.report_json import variant_order

        sys.stdout.write(render_gate_table(gate, only_problems=not args.all, order=variant_order(current)))
    sys.stdout.write(render_differences(gate))
    sys.stdout.write(f"{gate['summary']}\n")
    return 1 if gate["failed"] else 0


def cmd_baseline(args) -> int:
    from ..results.report_json import baseline_problem

    report = load_report(args.report)
    problem = baseline_problem(report)
    if problem:
        raise ReportError(f"{args.report} cannot be a baseline: {problem}")
    _check_output_file(args.output)
    report.pop("gate", None)
    write_json_atomic(args.output, report)
    sys.stdout.write(f"baseline written: {args.output} ({len(Report.from_json(report).comparisons)} results)\n")
    return 0


def _check_output_file(path) -> None:
    path = Path(path)
    if path.is_dir():
        raise ReportError(f"output {path} is a directory; expected a file path")
    problem = check_writable_dir(path.parent)
    if problem:
        raise ReportError(f"output {path}: cannot write there: {problem}")


def cmd_merge(args) -> int:
    from ..results.merge import merge_report_files
    from ..harness.trackers.merged import log_merged, prepare

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ReportError(f"--output: {output} is a file; expected a folder for report.json, report.md and report.html")
    problem = check_writable_dir(output)
    if problem:
        raise ReportError(f"--output: cannot write to {output}: {problem}")
    targets = prepare(args, output)  # a tracker that cannot log stops before the merge
    merged = merge_report_files(args.reports, output, partial=args.partial)
    paths = write_reports(merged, output)
    sys.stdout.write(render_results_table(merged))
    shards = ", ".join(f"{s['index']}/{s['count']}" if "index" in s else s["report"] for s in merged["merged_from"])
    sys.stdout.write(
        f"merged {len(args.reports)} report(s) ({shards}): {len(Report.from_json(merged).comparisons)} results\n"
        f"written: {paths['html']}, {paths['json']}, {paths['markdown']}\n"
    )
    logged = log_merged(targets, merged, output, exitstatus=0, gate=None, tolerances={}, out=sys.stdout)
    return 0 if logged else 1


def cmd_html(args) -> int:
    from ..report.html import write_html

    report_path = Path(args.report)
    report = load_report(report_path)
    target = Path(args.output) if args.output else report_path.with_suffix(".html")
    _check_output_file(target)
    write_html(report, target, media_root=report_path.parent)
    sys.stdout.write(f"written: {target}\n")
    return 0


def cmd_plan(args) -> int:
    from ..stats.planning import plan_rows, render_plan

    report = load_report(args.report)
    try:
        rows = plan_rows(
            report, args.metric, args.effect, power=args.power, claims=args.claims, max_seeds=args.max_seeds
        )
    except ValueError as error:
        raise ReportError(f"{args.report}: {error}") from None
    if args.json:
        _print_json(
            {"metric": args.metric, "effect": args.effect, "power": args.power, "claims": args.claims, "variants": rows}
        )
        return 0
    sys.stdout.write(render_plan(rows, args.metric, args.effect, power=args.power, claims=args.claims))
    return 0


def cmd_metrics(args) -> int:
    from ..metrics.registry import MetricRegistry
    from ..profiles import DEFAULT_PROFILE, ProfileError, load_profile

    try:
        profile = load_profile(args.profile or DEFAULT_PROFILE)
    except ProfileError as error:
        raise ReportError(f"--profile: {error}") from None
    registry = MetricRegistry.builtin()
    _register_plugin_metrics(registry)
    try:
        registry.check_options(profile.metrics)
    except ValueError as error:
        raise ReportError(f"--profile: {profile.name}: {error}") from None
    judge = _judge_weights(profile)
    if args.json:
        _print_json(
            [
                {
                    "name": spec.name,
                    "direction": spec.direction,
                    "tolerance": spec.tolerance,
                    "level": getattr(spec, "level", "video"),
                    "definition": spec.definition,
                    "backend": spec.backend,
                    "source": spec.source,
                    "weights": _metric_weights(spec, judge),
                    "profile": profile.name,
                }
                for spec in registry
            ]
        )
        return 0
    blocks = []
    for spec in registry:
        better = "informational" if spec.direction == "info" else f"{spec.direction} is better"
        level = ", one value per set of videos" if getattr(spec, "level", "video") == "set" else ""
        lines = [f"{spec.name}  ({better}, tolerance {spec.tolerance:g}{level})"]
        for label, text in (
            ("backend", spec.backend or "—"),
            ("source", spec.source),
            (f"weights ({profile.name})", _metric_weights(spec, judge)),
        ):
            lines.extend(
                textwrap.wrap(
                    f"{label}: {text}",
                    LINE_WIDTH,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
        blocks.append("\n".join(lines))
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return 0


def _register_plugin_metrics(registry) -> None:
    """The metrics installed pytest plugins register (the toy world's among them), as a run
    registers them: each ``pytest11`` plugin module's ``pytest_ablation_add_metrics``, then
    the ``pytest_ablation.metrics`` entry points'."""
    import importlib
    from importlib.metadata import entry_points

    from ..metrics.registry import InstalledMetricError

    register = functools.partial(registry.register, replace=True)
    for point in entry_points(group="pytest11"):
        try:
            hook = getattr(importlib.import_module(point.module), "pytest_ablation_add_metrics", None)
        except Exception:  # noqa: BLE001 - a broken plugin is pytest's to report, not ours
            continue
        if callable(hook) and point.module != "pytest_ablation.harness.plugin":
            hook(register=register)
    try:
        registry.add_installed()
    except InstalledMetricError as error:
        raise ReportError(str(error)) from None


def _metric_weights(spec, judge: str) -> str:
    """The judge's status for a judge-based metric; each own weight file's for the others."""
    if spec.weights:
        from ..metrics.weights import weight_file

        return "; ".join(weight_file(name).status() for name in spec.weights)
    return judge if "clip" in spec.needs else "none needed"


def _judge_weights(profile) -> str:
    """Where the profile's judge comes from, and whether it is on this machine."""
    if "clip" not in profile.models:
        return f"missing: profile {profile.name!r} has no clip role"
    spec = profile.models["clip"]
    if spec.source is None:
        return "built in-process (random weights)"
    from ..models.pretrained import local_path

    if local_path(spec.source, "file") is not None:
        return f"present: {spec.source}"
    if os.path.isabs(os.path.expanduser(spec.source)):
        return f"missing: {spec.source}"  # removed since the profile was checked
    return f"open_clip tag or hub id {spec.source!r}: read from the cache, else downloaded"


def cmd_schema(args: argparse.Namespace) -> int:
    from ..results.schema import report_schema

    print(json.dumps(report_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-ablation", description="Read, compare and promote pytest-ablation reports."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print a report's results table")
    show.add_argument("report", help="a report.json")
    _add_json(show, "the claims, results and gate of the report")
    show.set_defaults(run=cmd_show)
    comp = sub.add_parser("compare", help="gate CURRENT against BASELINE; exit 1 on a regression")
    comp.add_argument("baseline", help="the baseline report")
    comp.add_argument("current", help="the report to judge")
    comp.add_argument(
        "--tolerance", action="append", metavar="METRIC=TOL", help="override a metric's tolerance (repeatable)"
    )
    comp.add_argument("--all", action="store_true", help="list every entry, not only failures")
    _add_json(comp, "the verdict, the counts, the claims and the gate's rows (failing ones, or --all)")
    comp.set_defaults(run=cmd_compare)
    base = sub.add_parser("baseline", help="promote a report to a baseline file")
    base.add_argument("report", help="a report.json")
    base.add_argument("output", help="where to write the baseline (e.g. reports/baseline.json)")
    base.set_defaults(run=cmd_baseline)
    merge = sub.add_parser("merge", help="combine the report.json files of shards into the report of one run")
    merge.add_argument("reports", nargs="+", help="the shards' report.json files")
    merge.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="where to write the merged report.json, report.md and report.html",
    )
    merge.add_argument("--partial", action="store_true", help="merge even though some shards of the run are missing")
    from ..harness.trackers.merged import add_arguments as add_tracker_arguments

    add_tracker_arguments(merge)
    merge.set_defaults(run=cmd_merge)
    html = sub.add_parser("html", help="(re)write report.html from a report.json")
    html.add_argument("report", help="a report.json; previews are read from its folder")
    html.add_argument("-o", "--output", help="the page to write (default: beside the report)")
    html.set_defaults(run=cmd_html)
    plan = sub.add_parser("plan", help="how many prompts and seeds a study needs to detect an effect of a given size")
    plan.add_argument("report", help="a report.json whose spread between prompts and seeds is used")
    plan.add_argument("--metric", required=True, help="the metric the claim is about")
    plan.add_argument(
        "--effect", required=True, type=_positive_float, help="the true mean difference (variant - reference) to detect"
    )
    plan.add_argument("--power", type=_probability, default=0.8, help="the chance of detecting it (default 0.8)")
    plan.add_argument(
        "--claims",
        type=_positive_int,
        default=1,
        help="claims the study declares (Bonferroni shares the level; default 1)",
    )
    plan.add_argument(
        "--max-seeds", type=_positive_int, default=4, help="show plans of 1 to this many seeds per prompt (default 4)"
    )
    _add_json(plan, "each variant's variance parts and prompts needed per number of seeds")
    plan.set_defaults(run=cmd_plan)
    metrics = sub.add_parser(
        "metrics", help="list the built-in metrics: direction, tolerance, backend, source, weights"
    )
    metrics.add_argument("--profile", default=None, help="the profile whose judge weights to look for (default: tiny)")
    _add_json(metrics, "one object per metric")
    metrics.set_defaults(run=cmd_metrics)
    schema = sub.add_parser("schema", help="print report.json's JSON Schema (the one every reader checks reports by)")
    schema.set_defaults(run=cmd_schema)
    from .submit import add_parser as add_submit

    add_submit(sub, _positive_int, _positive_float)
    return parser


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print JSON instead: {what}")


def _parsed(text: str, parse, expected: str):
    try:
        return parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _positive_float(text: str) -> float:
    value = _parsed(text, float, "a number")
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _parsed(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`pytest-ablation show ... | head`): not an error of ours.
        # Point stdout at nothing so that the interpreter's final flush stays quiet.
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (ReportError, OptionError) as error:
        sys.stderr.write(f"pytest-ablation: error: {error}\n")
        return 2
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        sys.stderr.write(f"pytest-ablation: error:{where}: {error.strerror or error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
