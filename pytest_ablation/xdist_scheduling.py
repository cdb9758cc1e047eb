"""Scheduling xdist workers so that tests needing the same models share a worker.

Only workers collect, and only they know which models a test's fixtures draw on: each
worker writes the group of every ablation test it collected to a folder the controller
named, and the controller's scheduler, which starts handing out tests once every worker
has collected, sends each group to one worker. Tests outside any group (or marked with
``xdist_group`` by hand, which this scheduler honours as xdist does) are spread as usual.
"""

from __future__ import annotations

import json
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

from .files import write_json_atomic


def publish_groups(folder: str | Path, worker: str, groups: dict[str, str]) -> None:
    write_json_atomic(Path(folder) / f"{worker}.json", groups)


def read_groups(folder: str | Path) -> dict[str, str]:
    groups: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.json")):
        groups.update(json.loads(path.read_text(encoding="utf-8")))
    return groups


def publish_catalog(folder: str | Path, worker: str, catalog: dict) -> None:
    write_json_atomic(Path(folder) / f"catalog-{worker}.json", catalog)


def read_catalogs(folder: str | Path) -> list[tuple[str, dict]]:
    """``(worker, catalogue)`` of each worker that published its catalogue (``Catalog.summary``)
    when its collection finished; an unreadable file is passed over."""
    catalogs = []
    for path in sorted(Path(folder).glob("catalog-*.json")):
        try:
            catalogs.append((path.stem.removeprefix("catalog-"), json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return catalogs


class ModelGroupScheduling(LoadScopeScheduling):
    """``--dist loadgroup`` with the groups each test's models define."""

    def __init__(self, config, log=None, *, groups_dir: str | Path):
        super().__init__(config, log)
        self._groups_dir = groups_dir
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            self._groups = read_groups(self._groups_dir)
        group = self._groups.get(nodeid)
        if group is not None:
            return group
        if nodeid.rfind("@") > nodeid.rfind("]"):
            return nodeid.split("@")[-1]
        return nodeid
