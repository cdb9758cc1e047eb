"""Scheduling xdist workers so that tests needing the same models share a worker.

Only workers collect, and only they know which models a test's fixtures draw on: each
worker writes the group of every ablation test it collected to a folder the controller
named, and the controller's scheduler, which starts handing out tests once every worker
has collected, sends each group to one worker. Tests outside any group (or marked with
``xdist_group`` by hand, which this scheduler honours as xdist does) are spread as usual.

With ``-n N`` and no ``--dist``, the choice waits until every worker has collected: a run
in which no test has a model group (a project without studies) is scheduled by xdist's own
``load``, exactly as without the plugin.
"""

from __future__ import annotations

import json
from pathlib import Path

from xdist.scheduler import LoadScheduling, LoadScopeScheduling

from ..files import write_json_atomic


def publish_groups(folder: str | Path, worker: str, groups: dict[str, str]) -> None:
    write_json_atomic(Path(folder) / f"groups-{worker}.json", groups)


def read_groups(folder: str | Path) -> dict[str, str]:
    groups: dict[str, str] = {}
    for path in sorted(Path(folder).glob("groups-*.json")):
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


class ModelGroupsOrLoadScheduling:
    """``-n N`` without ``--dist``: ``ModelGroupScheduling`` if a collected test has a model
    group, else xdist's ``LoadScheduling``. Both follow the workers and their collections
    until every worker has collected; the first ``schedule()`` chooses, and from then on the
    chosen one alone does the work."""

    def __init__(self, config, log=None, *, groups_dir: str | Path):
        self._groups_dir = groups_dir
        self._candidates = (
            LoadScheduling(config, log),
            ModelGroupScheduling(config, log, groups_dir=groups_dir),
        )
        self.chosen: LoadScheduling | ModelGroupScheduling | None = None

    @property
    def _current(self):
        return self.chosen if self.chosen is not None else self._candidates[0]

    # -- what the controller asks ------------------------------------------------------
    @property
    def nodes(self):
        return self._current.nodes

    @property
    def collection_is_completed(self) -> bool:
        return self._current.collection_is_completed

    @property
    def tests_finished(self) -> bool:
        return self._current.tests_finished

    @property
    def has_pending(self) -> bool:
        return self._current.has_pending

    # -- what the controller tells -----------------------------------------------------
    def _tell(self, name: str, *args):
        if self.chosen is not None:
            return getattr(self.chosen, name)(*args)
        answers = [getattr(candidate, name)(*args) for candidate in self._candidates]
        return answers[0]

    def add_node(self, node) -> None:
        self._tell("add_node", node)

    def add_node_collection(self, node, collection) -> None:
        self._tell("add_node_collection", node, collection)

    def remove_node(self, node):
        return self._tell("remove_node", node)

    def mark_test_complete(self, node, item_index, duration=0) -> None:
        self._current.mark_test_complete(node, item_index, duration)

    def mark_test_pending(self, item: str) -> None:
        self._current.mark_test_pending(item)

    def remove_pending_tests_from_node(self, node, indices) -> None:
        self._current.remove_pending_tests_from_node(node, indices)

    def schedule(self) -> None:
        if self.chosen is None:
            by_model = bool(read_groups(self._groups_dir))
            self.chosen = self._candidates[1] if by_model else self._candidates[0]
        self.chosen.schedule()
