"""Reading the report.json that a test's run wrote: one reader for every test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report_of(where: Any, folder: str = "reports") -> dict:
    """The report.json of a run.

    ``where`` is a pytester, a project folder (the report is ``folder/report.json`` in it; give
    ``folder="."`` for a folder that holds report.json itself), or the report file. The file
    is read as strict JSON: NaN or Infinity in it fails the test, since other JSON readers
    refuse them.
    """
    path = Path(getattr(where, "path", where))
    if path.suffix != ".json":
        path = path / folder / "report.json"

    def refuse(token: str) -> None:
        raise ValueError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
