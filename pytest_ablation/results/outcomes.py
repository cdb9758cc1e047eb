"""What happened to each selected case, from its test reports (of this process or a worker).

A case's outcome is one of ``passed``, ``failed`` (a claim or an assertion did not hold, or
a strict expected failure passed), ``error`` (any other exception, in set-up, the test or
tear-down; a crashed worker), ``xfailed``, ``skipped``; a selected case with no outcome at
the end of the run is ``unfinished``, and a collected case that was not selected is
``deselected``. report.json records them (``cases``) and the gate judges them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

FAILURES = ("failed", "error")


def _short(text: str) -> str:
    """The reason on one line, whole: the terminal points to report.md for it, and report.md,
    report.json and report.html all keep every word."""
    return " ".join(text.split())


def failure_text(report: pytest.TestReport) -> str:
    """The one-line message of a failed report: the exception, as pytest shows it last."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _short(crash.message)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return _short(str(longrepr[2]))
    lines = [line for line in str(longrepr or "").splitlines() if line.strip()]
    return _short(lines[-1]) if lines else "failed"


def skip_text(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return _short(text.removeprefix("Skipped: ") or "skipped")


class Outcomes:
    """Outcome and reason per node id, built from every phase's report."""

    def __init__(self) -> None:
        self.by_nodeid: dict[str, tuple[str, str | None]] = {}

    def add(self, report: pytest.TestReport) -> None:
        nodeid = getattr(report, "nodeid", None)
        if not nodeid:
            return
        when = getattr(report, "when", None)
        before = self.by_nodeid.get(nodeid)
        if before is not None and before[0] in FAILURES:
            return  # the first failure is the one to report
        payload = getattr(report, "ablation", None) or {}
        if report.failed:
            if when == "call" and str(report.longrepr).startswith("[XPASS(strict)]"):
                outcome: tuple[str, str | None] = (
                    "failed",
                    "passed, but was expected to fail (strict): "
                    + _short(str(report.longrepr)[len("[XPASS(strict)]") :].strip() or "xfail"),
                )
            elif when == "call" and payload.get("assertion"):
                outcome = ("failed", failure_text(report))
            else:
                phases: dict[str | None, str] = {"setup": "in set-up", "teardown": "in tear-down", "call": ""}
                phase = phases.get(when, "")
                outcome = ("error", _short(f"{phase + ': ' if phase else ''}{failure_text(report)}"))
        elif report.skipped:
            if hasattr(report, "wasxfail"):
                outcome = ("xfailed", _short(str(report.wasxfail or "expected failure")))
            else:
                outcome = ("skipped", skip_text(report))
        elif when == "setup":
            outcome = ("unfinished", "started, but the run ended before it finished")
        elif when == "call":
            outcome = ("passed", None)
        else:
            return  # a passing tear-down changes nothing
        if before is not None and before[0] in ("xfailed", "skipped") and outcome[0] == "unfinished":
            return
        self.by_nodeid[nodeid] = outcome

    def get(self, nodeid: str) -> tuple[str, str | None] | None:
        return self.by_nodeid.get(nodeid)


def selection_paths(config: pytest.Config) -> dict[str, list[str]]:
    """The paths this run collected (its arguments) and ignored, relative to the root dir."""
    root = Path(config.rootpath).resolve()
    invocation = Path(config.invocation_params.dir)

    def relative(arg: str) -> str:
        part = str(arg).split("::", 1)[0]
        path = Path(part)
        path = (path if path.is_absolute() else invocation / path).resolve()
        try:
            return path.relative_to(root).as_posix() or "."
        except ValueError:
            return Path(os.path.relpath(path, root)).as_posix()

    ignored = list(config.getoption("ignore", None) or ())
    return {
        "paths": sorted({relative(a) for a in config.args}),
        "ignored": sorted({relative(i) for i in ignored}),
    }


def expected_failures(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``(study, variant) -> reason`` of the cases that failed as expected (strict xfail): a
    claim of theirs that does not hold is expected, and the reason says why."""
    return {
        (case["study"], case["variant"]): case.get("reason") or "expected failure"
        for case in report.get("cases") or ()
        if case.get("outcome") == "xfailed"
    }
