"""pytest-ablation's pytest hooks. Each one delegates to the run's ``AblationSession``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import hookspecs
from .options import add_options
from .study import MARKER_HELP, XFAIL_HELP, StudyError, profile_xfail

if TYPE_CHECKING:
    from .session import AblationSession

_SESSION = pytest.StashKey["AblationSession"]()
_RUNNER = pytest.StashKey["Ablation"]()
_CASE = pytest.StashKey["Case"]()
_MODEL_GROUP = pytest.StashKey[str]()
_GROUPS_DIR = "ablation_groups_dir"
_CATALOG_DIR = "ablation_catalog_dir"


def _session(config) -> "AblationSession":
    return config.stash[_SESSION]


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_ablation_visible_gpus(config):
    # The default: torch's answer, mapped through CUDA_VISIBLE_DEVICES. A conftest or plugin
    # that knows better implements the hook and wins (firstresult).
    from .devices import torch_visible_gpus

    return torch_visible_gpus()


@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config):
    # Runs before xdist turns "-n N" into "--dist load": unless the user chose a mode,
    # keep each study on one worker so its models load once (see README, "-n").
    option = config.option
    if getattr(option, "numprocesses", None) and getattr(option, "dist", "no") == "no":
        option.dist = "loadgroup"
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", XFAIL_HELP)
    from .session import AblationSession

    ablation = AblationSession(config)
    config.stash[_SESSION] = ablation
    config.pluginmanager.register(_ResultHooks(ablation), "ablation-results")


def pytest_plugin_registered(plugin, plugin_name, manager):
    # -n auto asks for the worker count before pytest_configure, so the xdist hooks are
    # registered as soon as xdist itself is, and only then.
    if plugin_name == "xdist" and not manager.has_plugin("ablation-xdist"):
        manager.register(XdistHooks(), "ablation-xdist")


def pytest_sessionstart(session):
    _session(session.config).start()


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(collector):
    # Every parametrization passes here before -k or a node id narrows the selection: the
    # reference case of a lone variant is known from this point on.
    outcome = yield
    made = outcome.get_result()
    if made is not None:
        items = made if isinstance(made, list) else [made]
        _session(collector.config).collected(i for i in items if isinstance(i, pytest.Item))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    ablation = _session(config)
    ablation.check_studies()
    groups = {}
    for item in items:
        case = ablation.catalog.case(item.nodeid)
        if case is None:
            continue
        item.stash[_CASE] = case
        try:
            expected_failure = profile_xfail(item, ablation.profile.name)
        except StudyError as error:
            raise pytest.UsageError(str(error)) from None
        if expected_failure is not None:
            item.add_marker(expected_failure)
        item.stash[_MODEL_GROUP] = _model_group(item, case)
        if item.get_closest_marker("xdist_group") is None:
            groups[item.nodeid] = item.stash[_MODEL_GROUP]
    folder = getattr(config, "workerinput", {}).get(_GROUPS_DIR)
    if folder:
        from .xdist_scheduling import publish_groups

        publish_groups(folder, config.workerinput["workerid"], groups)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_shard(config, items):
    # Last, so that shards split what -k and -m left: every shard is given the same selection.
    shard = _session(config).options.shard
    if shard is None:
        return
    from .sharding import split

    kept, dropped = split(items, lambda item: item.stash.get(_MODEL_GROUP, item.nodeid), *shard)
    if dropped:
        _session(config).shard_dropped.update(item.nodeid for item in dropped)
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session):
    # The selection is final here and nothing has run: what the selected cases need of the
    # profile is checked now, and the selection is kept for the report.
    ablation = _session(session.config)
    nodeids = [item.nodeid for item in session.items if item.stash.get(_CASE, None) is not None]
    ablation.check_selected(nodeids)
    ablation.selection_done(nodeids)
    folder = getattr(session.config, "workerinput", {}).get(_CATALOG_DIR)
    if folder:
        # Published now, not at the end: a worker that is killed mid-run still told the
        # controller which cases exist and which were selected.
        from .files import write_json_atomic

        worker = session.config.workerinput["workerid"]
        write_json_atomic(Path(folder) / f"catalog-{worker}.json", ablation.catalog_summary())


def _model_group(item, case) -> str:
    """Tests whose fixtures draw on the same models go to one worker, which loads them once.

    The fixtures that request ``ablation_models`` (a study's generator fixtures, e.g. ``zs2``)
    name the models a test needs before it runs; a study without such a fixture is its own
    group.
    """
    definitions = item._fixtureinfo.name2fixturedefs
    users = sorted(
        name for name in item.fixturenames
        if any("ablation_models" in d.argnames for d in definitions.get(name, ()))
    )
    return "models:" + "+".join(users) if users else f"study:{case.study}"


@pytest.fixture
def ablation(request):
    """Run this test's variant paired with its study's reference; see README, "Writing a study"."""
    from .runner import Ablation

    case = request.node.stash.get(_CASE, None)
    if case is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the `ablation` fixture needs @pytest.mark.ablation(study, ...)"
        )
    runner = Ablation(_session(request.config), request.node, case)
    request.node.stash[_RUNNER] = runner
    return runner


@pytest.fixture(scope="session")
def ablation_models(pytestconfig):
    """This worker's model pool: ``ablation_models.get("sd")`` loads a profile role once."""
    return _session(pytestconfig).pool


@pytest.fixture(scope="session")
def ablation_cache(pytestconfig):
    """The run's content-addressed cache (``ResultCache``): ``.tensors(key, compute)`` keeps
    e.g. tuned weights; honours --ablation-cache-dir and --ablation-no-cache."""
    return _session(pytestconfig).cache


@pytest.fixture(scope="session")
def ablation_profile(pytestconfig):
    """The profile of this run (models and settings)."""
    return _session(pytestconfig).profile


@pytest.fixture(scope="session")
def ablation_device(pytestconfig) -> str:
    """This worker's torch device, e.g. "cpu" or "cuda:1"."""
    ablation = _session(pytestconfig)
    if ablation.assignment is None:
        ablation.start()
    return ablation.assignment.device


def pytest_runtest_setup(item):
    group = item.stash.get(_MODEL_GROUP, None)
    if group is not None:
        _session(item.config).enter_model_group(group)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    # Claims are soft: each is recorded as the test makes it, and all are decided together
    # when the test function has returned, failing it with every claim that does not hold.
    runner = pyfuncitem.stash.get(_RUNNER, None)
    try:
        result = yield
    except BaseException:
        if runner is not None:
            runner.claims.decide()  # the claims made so far are still recorded with a verdict
        raise
    if runner is not None:
        runner.finish_claims()
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    case = item.stash.get(_CASE, None)
    runner = item.stash.get(_RUNNER, None)
    if case is not None and call.when == "call" and runner is not None:
        from .report.junit import junit_properties

        for record in runner.records:
            item.user_properties.extend(junit_properties(record))
    outcome = yield
    if case is None:
        return
    report = outcome.get_result()
    payload = {"study": case.study, "variant": case.variant}
    if call.when == "call":
        payload["records"] = list(runner.records) if runner is not None else []
        # A failed claim (or assertion) is a failed case; any other exception an error.
        payload["assertion"] = bool(call.excinfo is not None
                                    and call.excinfo.errisinstance(AssertionError))
    # An attribute of the report travels with it from an xdist worker to the controller.
    report.ablation = payload


class _ResultHooks:
    """Receives every test report, from this process or from an xdist worker."""

    def __init__(self, ablation):
        self._ablation = ablation

    def pytest_runtest_logreport(self, report):
        self._ablation.receive(report)


@pytest.hookimpl(trylast=True)
def pytest_report_collectionfinish(config):
    ablation = _session(config)
    if ablation.catalog.by_nodeid and not ablation.is_worker:
        studies = sorted({c.study for c in ablation.catalog.by_nodeid.values()})
        about = f" ({ablation.profile.description})" if ablation.profile.description else ""
        return f"ablation: profile {ablation.profile.name!r}{about}, studies: {', '.join(studies)}"
    return None


def pytest_sessionfinish(session):
    ablation = _session(session.config)
    ablation.finish_worker()
    ablation.finish(session)
    ablation.finish_controller()


def pytest_terminal_summary(terminalreporter, config):
    from .summary import write_summary

    write_summary(terminalreporter, _session(config))


class XdistHooks:
    """Registered only when pytest-xdist is installed."""

    @pytest.hookimpl
    def pytest_xdist_auto_num_workers(self, config):
        # Asked before pytest_configure, so there is no session yet: read the options here.
        from .session import auto_worker_count_for

        return auto_worker_count_for(config)

    @pytest.hookimpl
    def pytest_configure_node(self, node):
        from .session import WORKER_DEVICE

        ablation = _session(node.config)
        index = int(str(node.gateway.id).lstrip("gw") or 0)
        node.workerinput[WORKER_DEVICE] = ablation.worker_assignment(index).to_dict()
        node.workerinput[_CATALOG_DIR] = ablation.groups_dir()
        if node.config.option.dist == "loadgroup":
            node.workerinput[_GROUPS_DIR] = ablation.groups_dir()

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from .xdist_scheduling import ModelGroupScheduling

        return ModelGroupScheduling(config, log, groups_dir=_session(config).groups_dir())

    @pytest.hookimpl
    def pytest_testnodedown(self, node, error):
        from .session import WORKER_CATALOG, WORKER_SUMMARY

        output = getattr(node, "workeroutput", None) or {}
        _session(node.config).receive_worker(
            str(node.gateway.id), output.get(WORKER_SUMMARY), output.get(WORKER_CATALOG)
        )
