"""pytest-ablation's pytest hooks. Each one delegates to an object of the run (see
``session.py``): the ``AblationSession``, the ``Catalog``, the process's ``WorkerContext``
and, on the controller, the ``ResultCollector``, all kept in the config's stash. The xdist
hooks are in ``XdistHooks``, registered only when pytest-xdist is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import hookspecs
from ..run.catalog import MARKER_HELP, XFAIL_HELP, Catalog
from .options import add_options

if TYPE_CHECKING:
    from ..run.ablation import Ablation  # noqa: F401  (named by _ABLATION, as a string)
    from .collector import ResultCollector
    from .session import AblationSession
    from .worker import WorkerContext

_SESSION = pytest.StashKey["AblationSession"]()
_CATALOG = pytest.StashKey[Catalog]()
_WORKER = pytest.StashKey["WorkerContext"]()
_COLLECTOR = pytest.StashKey["ResultCollector"]()
_ABLATION = pytest.StashKey["Ablation"]()
# Whether "-n" was given without "--dist": the plugin then chooses how tests are scheduled.
_SCHEDULES_BY_MODEL = pytest.StashKey[bool]()
_GROUPS_DIR = "ablation_groups_dir"
_CATALOG_DIR = "ablation_catalog_dir"


def _session(config) -> AblationSession:
    return config.stash[_SESSION]


def _catalog(config) -> Catalog:
    return config.stash[_CATALOG]


def _worker(config) -> WorkerContext:
    return config.stash[_WORKER]


def _collector(config) -> ResultCollector | None:
    return config.stash.get(_COLLECTOR, None)


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    add_options(parser)


# -- default implementations of the plugin's own hooks (hookspecs.py) ----------------------
@pytest.hookimpl(trylast=True)
def pytest_ablation_visible_gpus(config):
    # The default: torch's answer, mapped through CUDA_VISIBLE_DEVICES. A conftest or plugin
    # that knows better implements the hook and wins (firstresult).
    from ..run.devices import torch_visible_gpus

    return torch_visible_gpus()


@pytest.hookimpl(tryfirst=True)
def pytest_ablation_add_metrics(register):
    # The built-in metrics, registered first: a conftest or plugin that registers a metric
    # of the same name replaces the built-in one.
    from ..metrics.registry import builtin_metrics

    for spec in builtin_metrics():
        register(spec)


@pytest.hookimpl(trylast=True)
def pytest_ablation_model_roles(fixturename):
    # Not known here: a fixture nobody answers for is not checked at start-up.
    return None


@pytest.hookimpl(trylast=True)
def pytest_ablation_check_prompts(profile, prompts):
    # Any prompt, as far as the plugin knows: a model's own plugin says what it cannot draw.
    return None


@pytest.hookimpl(trylast=True)
def pytest_ablation_report(config, report):
    # Nothing to add: the report is written as the other implementations leave it.
    return None


# -- start-up ------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config):
    # Runs before xdist turns "-n N" into "--dist load". The mode is left as it is: the
    # plugin's scheduler chooses by model group only once a collected test has one, so a
    # project without studies is scheduled as it would be without the plugin (README, "-n").
    option = config.option
    config.stash[_SCHEDULES_BY_MODEL] = bool(
        getattr(option, "numprocesses", None) and getattr(option, "dist", "no") == "no"
    )
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", XFAIL_HELP)
    from .session import AblationSession

    session = AblationSession(config)
    config.stash[_SESSION] = session
    catalog = config.stash[_CATALOG] = Catalog()
    if not session.is_worker:
        from .collector import ResultCollector

        collector = config.stash[_COLLECTOR] = ResultCollector(session, catalog)
        config.pluginmanager.register(_ResultHooks(collector), "ablation-results")
        if session.options.trackers:
            # Here, on the controller only: it alone holds the whole report.
            from .trackers import start_trackers

            start_trackers(config, session.options, collector)


def pytest_plugin_registered(plugin, plugin_name, manager):
    # -n auto asks for the worker count before pytest_configure, so the xdist hooks are
    # registered as soon as xdist itself is, and only then.
    if plugin_name == "xdist" and not manager.has_plugin("ablation-xdist"):
        manager.register(XdistHooks(), "ablation-xdist")


def pytest_sessionstart(session):
    from .worker import start_worker

    worker = start_worker(_session(session.config))
    if worker is not None:
        session.config.stash[_WORKER] = worker


# -- collection ----------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(collector):
    # Every parametrization passes here before -k or a node id narrows the selection: the
    # reference case of a lone variant is known from this point on.
    outcome = yield
    made = outcome.get_result()
    if made is not None:
        catalog = _catalog(collector.config)
        for item in made if isinstance(made, list) else [made]:
            if isinstance(item, pytest.Item):
                catalog.add_item(item)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    _session(config).check_collected(_catalog(config), items)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_shard(config, items):
    # Last, so that shards split what -k and -m left: every shard is given the same selection.
    shard = _session(config).options.shard
    if shard is None:
        return
    from .sharding import split

    catalog = _catalog(config)
    kept, dropped = split(items, lambda item: (catalog.model_group(item.nodeid) or "", item.nodeid), *shard)
    if dropped:
        catalog.select(dropped=[item.nodeid for item in dropped])
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session):
    # The selection is final here and nothing has run: what the selected cases need of the
    # profile is checked now, and the selection is kept for the report.
    catalog = _catalog(session.config)
    nodeids = [item.nodeid for item in session.items if catalog.case(item.nodeid) is not None]
    _session(session.config).check_selected(catalog, nodeids)
    catalog.select(nodeids)


@pytest.hookimpl(trylast=True)
def pytest_report_collectionfinish(config):
    return _session(config).collection_line(_catalog(config))


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def ablation(request):
    """Run this test's variant paired with its study's reference; see README, "Writing a study"."""
    from ..run.ablation import Ablation
    from ..run.media import MediaWriter

    config = request.config
    catalog = _catalog(config)
    case = catalog.case(request.node.nodeid)
    if case is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the `ablation` fixture needs @pytest.mark.ablation(study, ...)"
        )
    options = _session(config).options
    media = MediaWriter(options.report_dir, options.save_videos)
    runner = Ablation(request.node, case, bench=_worker(config), catalog=catalog, media=media)
    request.node.stash[_ABLATION] = runner
    return runner


@pytest.fixture(scope="session")
def ablation_models(pytestconfig):
    """This worker's model pool: ``ablation_models.get("sd")`` loads a profile role once."""
    return _worker(pytestconfig).pool


@pytest.fixture(scope="session")
def ablation_cache(pytestconfig):
    """The run's content-addressed cache (``ResultCache``): ``.tensors(key, compute)`` keeps
    e.g. tuned weights; honours --ablation-cache-dir and --ablation-no-cache."""
    return _worker(pytestconfig).cache


@pytest.fixture(scope="session")
def ablation_profile(pytestconfig):
    """The profile of this run (models and settings)."""
    return _session(pytestconfig).profile


@pytest.fixture(scope="session")
def ablation_device(pytestconfig) -> str:
    """This worker's torch device, e.g. "cpu" or "cuda:1"."""
    return _worker(pytestconfig).device


# -- running -------------------------------------------------------------------------------
def pytest_runtest_setup(item):
    group = _catalog(item.config).model_group(item.nodeid)
    if group is not None:
        _worker(item.config).enter_model_group(group)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    # Claims are soft: each is recorded as the test makes it, and all are decided together
    # when the test function has returned, failing it with every claim that does not hold.
    runner = pyfuncitem.stash.get(_ABLATION, None)
    try:
        result = yield
    except BaseException:
        if runner is not None:
            runner.finish_claims(raise_failures=False)  # still recorded, with a verdict
        raise
    if runner is not None:
        runner.finish_claims()
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    case = _catalog(item.config).case(item.nodeid)
    runner = item.stash.get(_ABLATION, None)
    if case is not None and call.when == "call" and runner is not None:
        from ..report.junit import junit_properties

        for record in runner.records:
            item.user_properties.extend(junit_properties(record))
    outcome = yield
    if case is None:
        return
    report = outcome.get_result()
    from ..stats.expectations import ExpectationFailed

    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(ExpectationFailed):
        # The message holds all there is to know (numbers, interval, why); the traceback would
        # only walk the plugin's own frames.
        report.longrepr = f"ExpectationFailed: {call.excinfo.value}"
    payload = {"study": case.study, "variant": case.variant}
    if call.when == "call":
        payload["records"] = list(runner.records) if runner is not None else []
        # A failed claim (or assertion) is a failed case; any other exception an error.
        payload["assertion"] = bool(call.excinfo is not None and call.excinfo.errisinstance(AssertionError))
    # An attribute of the report travels with it from an xdist worker to the controller.
    report.ablation = payload


class _ResultHooks:
    """Receives every test report, from this process or from an xdist worker."""

    def __init__(self, collector):
        self._collector = collector

    def pytest_runtest_logreport(self, report):
        self._collector.receive(report)


# -- the end -------------------------------------------------------------------------------
def pytest_sessionfinish(session):
    config = session.config
    worker = config.stash.get(_WORKER, None)
    if worker is not None:
        worker.close()
    collector = _collector(config)
    if collector is not None:
        collector.finish(session, worker)


def pytest_terminal_summary(terminalreporter, config):
    collector = _collector(config)
    if collector is not None:
        from ..report.summary import write_summary

        write_summary(terminalreporter, collector)


class XdistHooks:
    """Registered only when pytest-xdist is installed.

    The controller names a folder where each worker publishes the model group of every test
    it collected (for the scheduler) and its catalogue (which survives a killed worker);
    each worker gets its device, and sends back its summary and catalogue when it finishes.
    """

    def __init__(self) -> None:
        self._folder: str | None = None
        # The device index of each live worker, and those a crashed worker left: a worker
        # started in its place (--max-worker-restart) takes its device, not the next in the
        # round, which another live worker may be using.
        self._index_of: dict[str, int] = {}
        self._freed: list[int] = []

    def _shared_folder(self) -> str:
        if self._folder is None:
            import tempfile

            self._folder = tempfile.mkdtemp(prefix="pytest-ablation-groups-")
        return self._folder

    @pytest.hookimpl
    def pytest_xdist_auto_num_workers(self, config):
        # Asked before pytest_configure, so there is no session yet: read the options here.
        # A run that does not name the plugin gets xdist's own count (README, "-n").
        from .options import names_the_plugin

        if not names_the_plugin(config):
            return None
        from .session import auto_worker_count_for

        return auto_worker_count_for(config)

    @pytest.hookimpl
    def pytest_configure_node(self, node):
        from .session import WORKER_DEVICE, WORKER_INDEX

        session = _session(node.config)
        workers = int(node.workerinput.get("workercount") or 1)
        index = int(str(node.gateway.id).lstrip("gw") or 0)
        if index >= workers and self._freed:
            index = self._freed.pop(0)
        self._index_of[str(node.gateway.id)] = index
        node.workerinput[WORKER_INDEX] = index
        if session.devices_decided:
            node.workerinput[WORKER_DEVICE] = session.devices.assignment(index, workers).to_dict()
        node.workerinput[_CATALOG_DIR] = self._shared_folder()
        if self._schedules_by_model(node.config):
            node.workerinput[_GROUPS_DIR] = self._shared_folder()

    @staticmethod
    def _schedules_by_model(config) -> bool:
        return config.getvalue("dist") == "loadgroup" or config.stash.get(_SCHEDULES_BY_MODEL, False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        from .xdist_scheduling import ModelGroupScheduling, ModelGroupsOrLoadScheduling

        if config.getvalue("dist") == "loadgroup":
            return ModelGroupScheduling(config, log, groups_dir=self._shared_folder())
        if config.getvalue("dist") == "load" and config.stash.get(_SCHEDULES_BY_MODEL, False):
            return ModelGroupsOrLoadScheduling(config, log, groups_dir=self._shared_folder())
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config, items):
        # On a worker, once the plugin has noted each test's model group: published before
        # the worker reports its collection, so the scheduler finds every group.
        result = yield
        folder = getattr(config, "workerinput", {}).get(_GROUPS_DIR)
        if folder:
            from .xdist_scheduling import publish_groups

            publish_groups(folder, config.workerinput["workerid"], _catalog(config).groups)
        return result

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        # Published now, not at the end: a worker that is killed mid-run still told the
        # controller which cases exist and which were selected.
        config = session.config
        folder = getattr(config, "workerinput", {}).get(_CATALOG_DIR)
        if folder:
            from .xdist_scheduling import publish_catalog

            publish_catalog(folder, config.workerinput["workerid"], _catalog(config).summary())

    @pytest.hookimpl
    def pytest_testnodedown(self, node, error):
        from .session import WORKER_CATALOG, WORKER_SUMMARY

        index = self._index_of.pop(str(node.gateway.id), None)
        if error is not None and index is not None:
            self._freed.append(index)

        output = getattr(node, "workeroutput", None) or {}
        _collector(node.config).receive_worker(
            str(node.gateway.id), output.get(WORKER_SUMMARY), output.get(WORKER_CATALOG)
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        config = session.config
        if hasattr(config, "workerinput"):
            from .session import WORKER_CATALOG, WORKER_SUMMARY

            config.workeroutput[WORKER_SUMMARY] = _worker(config).summary()
            config.workeroutput[WORKER_CATALOG] = _catalog(config).summary()
        elif self._folder is not None:
            from .xdist_scheduling import read_catalogs

            collector = _collector(config)
            for name, catalog in read_catalogs(self._folder):
                collector.receive_worker(name, catalog=catalog)

    def pytest_unconfigure(self, config):
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
