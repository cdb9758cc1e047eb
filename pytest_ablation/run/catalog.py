"""The ``ablation`` marker and the catalogue of the studies' cases found at collection.

The catalogue records every parametrization of a study's test function as it is made,
before ``-k``, ``-m`` or a node id narrow the selection, so that a variant run on its own
still knows its reference case, and every worker builds the same catalogue.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from ..suggest import did_you_mean

if TYPE_CHECKING:
    from ..stats.claims import Decidability

MARKER = "ablation"
MARKER_HELP = (
    "ablation(study, reference=None, metrics=[...], prompts=None, seeds=None, settings=None): "
    "the test is one variant of an ablation study; `reference` is the id of the variant it "
    "is compared to (e.g. 'mu=0.98'), `metrics` the registered metric names it is scored by; "
    "unit='seed' makes the seed index, not the prompt, the statistical unit; "
    "metrics_on={'toy': [...]} adds metrics on the named profiles only; "
    "claims={'variant': ['metric claim [margin]', ...]} declares the study's confirmatory family"
)


class StudyError(ValueError):
    pass


class ProfileSettingError(StudyError):
    """A profile's setting that a generator fixture reads at collection is unusable."""


REPLICATES_ATTRIBUTE = "_pytest_ablation_replicates"


def replicates(unit: str, count=None):
    """Declare a generator fixture's replicate structure, checked at collection.

    ``unit="seed"``: the generator's randomness is shared by every sample of one seed index
    (ExVideo's tuning runs: seed index k samples the model of tuning run k), so only seed
    indexes are independent and a study using the fixture must set ``unit="seed"``.
    ``unit="prompt"``: every sample is independent; ``unit="seed"`` is then refused.
    ``count(profile) -> int``: how many replicates the profile gives; a study that leaves
    ``seeds`` unset samples that many seed indexes::

        @pytest.fixture(scope="session")
        @replicates("seed", count=lambda profile: read_recipe(profile).tuning_runs)
        def my_tuned_generator(...): ...
    """
    if unit not in UNITS:
        raise ValueError(f"replicates: unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}")
    if count is not None and not callable(count):
        raise ValueError(f"replicates: count must be a function of the profile, got {count!r}")

    def mark(function):
        setattr(function, REPLICATES_ATTRIBUTE, (unit, count))
        return function

    return mark


def declared_replicates(item):
    """(fixture name, unit, count) of the first fixture of ``item`` declaring ``replicates``."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}) or {}
    for name in getattr(item, "fixturenames", ()):
        for definition in definitions.get(name, ()):
            function = getattr(definition, "func", None)
            for candidate in (function, getattr(function, "__wrapped__", None), getattr(function, "__func__", None)):
                declared = getattr(candidate, REPLICATES_ATTRIBUTE, None)
                if declared is not None:
                    return (name, *declared)
    return None


def _undecidable_xfail(profile: str, found):
    import pytest

    from ..stats.expectations import ExpectationFailed

    return pytest.mark.xfail(
        strict=True, raises=ExpectationFailed, reason=f"undecidable on profile {profile!r}: {found.line()}"
    )


# What a study's samples are grouped by before its paired tests (the marker's ``unit``).
UNITS = ("prompt", "seed")


XFAIL_MARKER = "ablation_xfail"
XFAIL_HELP = (
    "ablation_xfail(*profiles, reason): on these profiles only, the test is a strict expected "
    "failure of a claim (ExpectationFailed; any other exception fails the test), for a claim "
    "that cannot hold there, e.g. with random weights; elsewhere it must pass"
)


def profile_xfail(item, profile: str):
    """The strict xfail mark ``ablation_xfail`` asks for on ``profile``, or None."""
    for mark in item.iter_markers(XFAIL_MARKER):
        reason = mark.kwargs.get("reason")
        if not mark.args or not reason:
            raise StudyError(
                f"{item.nodeid}: @pytest.mark.ablation_xfail needs the profile name(s) and a "
                "reason, e.g. ablation_xfail('tiny', reason='random weights')"
            )
        if profile in mark.args:
            import pytest

            from ..stats.expectations import ExpectationFailed

            # Only a failed claim is the expected failure: a crash (a generator bug, a full
            # disk, a missing file) must not hide as XFAIL.
            return pytest.mark.xfail(strict=True, raises=ExpectationFailed, reason=f"on profile {profile!r}: {reason}")
    return None


@dataclass(frozen=True)
class StudyMarker:
    study: str
    reference: str | None
    metrics: tuple[str, ...]
    prompts: tuple[str, ...] | None = None
    seeds: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    # FVD's reference set: a folder of real videos (relative to the test file's folder), or
    # None for the study's reference variant's videos.
    fvd_reference: str | None = None
    # The statistical unit the samples are averaged within before the paired tests:
    # "prompt" (the default), or "seed" where each seed index is an independent replicate
    # of the variant itself (e.g. ExVideo's tuning runs: seed index k samples tuning run k).
    unit: str = "prompt"
    # Metrics added on some profiles only ({profile: (metric, ...)}), for metrics that read
    # only that profile's videos (the toy world's scene parser): ``for_profile`` applies them.
    metrics_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The study's confirmatory family, fixed before anything runs (``claims.py``).
    claims: tuple = ()
    # Adaptive sample size: (first, step) units per round, up to every unit the profile
    # gives (``sequential.py``); None for a fixed-size study.
    rounds: tuple[int, int] | None = None

    def settings_on(self, profile_settings):
        """The study settings on a profile: the profile's, with the marker's overrides."""
        merged: dict[str, Any] = dict(self.settings)
        if self.prompts is not None:
            merged["prompts"] = self.prompts
        if self.seeds is not None:
            merged["seeds"] = self.seeds
        return profile_settings.replace(**merged) if merged else profile_settings

    def units_on(self, profile_settings) -> int:
        """How many statistical units a profile's settings give this study."""
        settings = self.settings_on(profile_settings)
        return settings.seeds if self.unit == "seed" else len(settings.prompts)

    def for_profile(self, profile: str) -> StudyMarker:
        extra = [m for m in self.metrics_on.get(profile, ()) if m not in self.metrics]
        return dataclasses.replace(self, metrics=self.metrics + tuple(extra)) if extra else self

    @classmethod
    def from_mark(cls, mark, where: str) -> StudyMarker:
        args, kwargs = list(mark.args), dict(mark.kwargs)
        study = args.pop(0) if args else kwargs.pop("study", None)
        if args:
            raise StudyError(f"{where}: @pytest.mark.ablation takes one positional argument, the study name")
        if not isinstance(study, str) or not study.strip():
            raise StudyError(f"{where}: @pytest.mark.ablation needs a study name (a non-empty string)")
        reference = kwargs.pop("reference", None)
        if reference is not None and not isinstance(reference, str):
            raise StudyError(f"{where}: reference must be a variant id string such as 'mu=0.98', got {reference!r}")
        metrics = kwargs.pop("metrics", None)
        if isinstance(metrics, str) or not metrics or not all(isinstance(m, str) for m in metrics):
            raise StudyError(f"{where}: metrics must be a non-empty list of metric names, got {metrics!r}")
        prompts = kwargs.pop("prompts", None)
        if prompts is not None:
            if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) and p for p in prompts):
                raise StudyError(f"{where}: prompts must be a non-empty list of non-empty strings")
            prompts = tuple(prompts)
        seeds = kwargs.pop("seeds", None)
        if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
            raise StudyError(f"{where}: seeds must be an integer >= 1 (seeds per prompt), got {seeds!r}")
        settings = kwargs.pop("settings", None) or {}
        if not isinstance(settings, Mapping):
            raise StudyError(f"{where}: settings must be a dict of study settings, got {settings!r}")
        fvd_reference = kwargs.pop("fvd_reference", None)
        if fvd_reference is not None:
            if not isinstance(fvd_reference, (str, os.PathLike)) or not str(fvd_reference).strip():
                raise StudyError(
                    f"{where}: fvd_reference must be the path of a folder of real videos, got {fvd_reference!r}"
                )
            if "fvd" not in metrics:
                raise StudyError(
                    f"{where}: fvd_reference={str(fvd_reference)!r} is FVD's "
                    "reference set, but 'fvd' is not among the study's metrics"
                )
            fvd_reference = str(fvd_reference)
        metrics_on = kwargs.pop("metrics_on", None) or {}
        if not isinstance(metrics_on, Mapping) or not all(
            isinstance(profile, str) and not isinstance(names, str) and names and all(isinstance(n, str) for n in names)
            for profile, names in metrics_on.items()
        ):
            raise StudyError(
                f"{where}: metrics_on must map profile names to non-empty lists of "
                f"metric names, e.g. {{'toy': ['identity_constancy']}}, got {metrics_on!r}"
            )
        metrics_on = {profile: tuple(dict.fromkeys(names)) for profile, names in metrics_on.items()}
        unit = kwargs.pop("unit", "prompt")
        if unit not in UNITS:
            raise StudyError(f"{where}: unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}")
        rounds = kwargs.pop("rounds", None)
        if rounds is not None:
            rounds = _rounds(rounds, where)
        from ..stats.claims import ClaimSpecError, parse_claims

        try:
            claims = parse_claims(kwargs.pop("claims", None), where)
        except ClaimSpecError as error:
            raise StudyError(str(error)) from None
        if kwargs:
            allowed = (
                "reference",
                "metrics",
                "prompts",
                "seeds",
                "settings",
                "fvd_reference",
                "unit",
                "metrics_on",
                "claims",
                "rounds",
            )
            raise StudyError(
                f"{where}: unknown ablation marker argument(s) {sorted(kwargs)}; "
                f"{did_you_mean(sorted(kwargs)[0], allowed)}allowed: {', '.join(allowed)}"
            )
        if rounds is not None:
            unsupported = [c.text() for c in claims if c.claim == "within_reference" or c.statistic != "mean"]
            if not claims or unsupported:
                raise StudyError(
                    f"{where}: rounds= needs declared claims, each one-sided on the mean "
                    f"(not within_reference, not median); "
                    + (f"got {', '.join(unsupported)}" if unsupported else "none declared")
                )
        return cls(
            study.strip(),
            reference,
            tuple(dict.fromkeys(metrics)),
            prompts,
            seeds,
            dict(settings),
            fvd_reference,
            unit=unit,
            metrics_on=metrics_on,
            claims=claims,
            rounds=rounds,
        )


def _rounds(value, where: str) -> tuple[int, int]:
    if isinstance(value, Mapping) and set(value) == {"first", "step"}:
        first, step = value["first"], value["step"]
        if all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in (first, step)):
            return first, step
    raise StudyError(
        f"{where}: rounds must be {{'first': N, 'step': K}} with whole numbers "
        f">= 1 (units in the first round, units added per round), got {value!r}"
    )


def _claim_problems(case: Case, cases: Mapping[str, Case]) -> list[str]:
    """What is wrong with the declared claims of a case's marker (each named once per study
    through the set of errors)."""
    errors = []
    reference = case.marker.reference or case.variant
    for claim in case.marker.claims:
        if claim.variant not in cases:
            errors.append(
                f"{case.nodeid}: claims: {claim.variant!r} is not one of the study's variants: {', '.join(cases)}"
            )
        elif claim.variant == reference:
            errors.append(
                f"{case.nodeid}: claims: {claim.variant!r} is the reference; a claim compares another variant with it"
            )
        if claim.metric not in case.marker.metrics:
            errors.append(
                f"{case.nodeid}: claims[{claim.variant!r}]: metric {claim.metric!r} "
                f"is not among the study's metrics: {', '.join(case.marker.metrics)}"
            )
    return errors


def fvd_reference_folder(marker: StudyMarker, test_file) -> Path:
    """The marker's ``fvd_reference`` folder: a relative path is taken from the folder of the
    test file, so that a study finds its real videos wherever pytest is started."""
    folder = Path(str(marker.fvd_reference)).expanduser()
    return folder if folder.is_absolute() else Path(test_file).parent / folder


@dataclass(frozen=True)
class Case:
    """One collected variant of a study."""

    study: str
    variant: str
    nodeid: str
    function: str
    params: Mapping[str, Any]
    direct_params: frozenset
    marker: StudyMarker


def variant_id(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.id if callspec is not None else item.originalname


def _empty_parameter_set(item) -> str | None:
    """pytest's reason for a placeholder item made of ``parametrize(name, [])``, or None."""
    for mark in item.iter_markers():
        reason = mark.kwargs.get("reason", "")
        if isinstance(reason, str) and reason.startswith("got empty parameter set"):
            return reason
    return None


def _direct_params(item) -> frozenset:
    names: set[str] = set()
    for mark in item.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",") if a.strip()]
        indirect = mark.kwargs.get("indirect", False)
        for name in argnames:
            if indirect is True or (isinstance(indirect, (list, tuple)) and name in indirect):
                continue
            names.add(name)
    return frozenset(names)


def _function_key(item) -> str:
    return f"{item.module.__name__ if item.module else '?'}::{item.cls.__name__ + '::' if item.cls else ''}{item.originalname}"


class Catalog:
    """Every ablation case collected in this process, by node id and by study, with the model
    group of each and which cases the run selected."""

    def __init__(self) -> None:
        self._by_nodeid: dict[str, Case] = {}
        self._by_function: dict[str, dict[str, Case]] = {}
        self._errors: list[str] = []
        self._model_groups: dict[str, str] = {}
        self._selected: set[str] = set()
        self._shard_dropped: set[str] = set()
        # Model groups of the tests that do not name their own ``xdist_group``: what the
        # model-group scheduler needs to know of this process's collection.
        self.groups: dict[str, str] = {}

    def add_item(self, item) -> None:
        mark = item.get_closest_marker(MARKER)
        if mark is None:
            return
        try:
            marker = StudyMarker.from_mark(mark, item.nodeid)
        except StudyError as error:
            self._errors.append(str(error))
            return
        empty = _empty_parameter_set(item)
        if empty is not None:
            # pytest makes one placeholder item of an empty list of values, whose id is not a
            # variant: say what is wrong instead of comparing it with the reference.
            self._errors.append(
                f"{item.nodeid.split('[', 1)[0]}: study {marker.study!r} has no variants: {empty}; "
                "parametrize it with the reference and the variants to compare"
            )
            return
        if marker.fvd_reference is not None:
            folder = fvd_reference_folder(marker, item.path)
            if not folder.is_dir():
                self._errors.append(
                    f"{item.nodeid}: fvd_reference={marker.fvd_reference!r} is not a folder "
                    f"(looked for {str(folder)!r}, relative to the test file's folder)"
                )
                return
        callspec = getattr(item, "callspec", None)
        case = Case(
            study=marker.study,
            variant=variant_id(item),
            nodeid=item.nodeid,
            function=_function_key(item),
            params=dict(callspec.params) if callspec is not None else {},
            direct_params=_direct_params(item),
            marker=marker,
        )
        self._by_nodeid[item.nodeid] = case
        self._by_function.setdefault(case.function, {})[case.variant] = case

    def problems(self, known_metrics) -> list[str]:
        errors = list(self._errors)
        defined: dict[tuple[str, str], list[Case]] = {}
        for cases in self._by_function.values():
            for case in cases.values():
                defined.setdefault((case.study, case.variant), []).append(case)
        for (study, variant), definers in sorted(defined.items()):
            if len(definers) > 1:
                errors.append(
                    f"study {study!r} variant {variant!r} is defined by "
                    f"{' and '.join(c.nodeid for c in definers)}; a study's variant ids must be "
                    "unique (rename the study or the variant ids)"
                )
        for cases in self._by_function.values():
            for case in cases.values():
                named = case.marker.metrics + tuple(m for names in case.marker.metrics_on.values() for m in names)
                unknown = [m for m in dict.fromkeys(named) if m not in known_metrics]
                if unknown:
                    errors.append(
                        f"{case.nodeid}: unknown metric(s) {', '.join(map(repr, unknown))}; "
                        f"{did_you_mean(unknown[0], known_metrics)}known metrics: "
                        f"{', '.join(sorted(known_metrics))}"
                    )
                errors += _claim_problems(case, cases)
                reference = case.marker.reference
                if reference is None and len(cases) > 1:
                    errors.append(
                        f"{case.nodeid}: study {case.study!r} has {len(cases)} variants; name the "
                        f"one they are compared to with reference=..., one of: {', '.join(cases)}"
                    )
                elif reference is not None and reference not in cases:
                    errors.append(
                        f"{case.nodeid}: reference {reference!r} is not one of the test's variants: {', '.join(cases)}"
                    )
        return sorted(set(errors))

    def case(self, nodeid: str) -> Case | None:
        return self._by_nodeid.get(nodeid)

    def reference_of(self, case: Case) -> Case:
        name = case.marker.reference or case.variant
        return self._by_function[case.function][name]

    def studies(self) -> list[str]:
        return sorted({case.study for case in self._by_nodeid.values()})

    def prepare(self, items, profile, *, require_decidable: bool = False) -> list:
        """Make the cases ready for ``profile`` (a ``Profile``), before any model loads.

        Gives every case the metrics its marker adds on the profile (``metrics_on``) and the
        seeds its generator's replicates take (``replicates``); marks the cases expected to
        fail there (``ablation_xfail``), and those whose declared claims the profile's units
        cannot decide (a strict expected failure, or with ``require_decidable`` a
        ``StudyError``); notes each case's model group (see ``model_group_of``). Returns the
        ``Decidability`` of every study whose declared claims cannot be decided.
        """
        from ..stats.claims import decidability

        case: Case | None
        for case in list(self._by_nodeid.values()):
            marker = case.marker.for_profile(profile.name)
            if marker is not case.marker:
                self._replace(dataclasses.replace(case, marker=marker))
        errors = []
        for item in items:
            case = self.case(item.nodeid)
            if case is not None:
                try:
                    self._apply_replicates(item, case, profile)
                except ProfileSettingError:
                    raise
                except StudyError as error:
                    errors.append(str(error))
        if errors:
            raise StudyError("invalid ablation study:\n  " + "\n  ".join(sorted(set(errors))))
        undecidable: dict[str, Decidability] = {}
        for item in items:
            case = self.case(item.nodeid)
            if case is None:
                continue
            expected_failure = profile_xfail(item, profile.name)
            mine = [c for c in case.marker.claims if c.variant == case.variant]
            if mine:
                found = decidability(
                    case.study, case.marker.claims, case.marker.units_on(profile.settings), case.marker.unit
                )
                if not found.decidable:
                    undecidable[case.study] = found
                    if expected_failure is None:
                        expected_failure = _undecidable_xfail(profile.name, found)
            if expected_failure is not None:
                item.add_marker(expected_failure)
            group = self._model_groups[item.nodeid] = model_group_of(item, case)
            if item.get_closest_marker("xdist_group") is None:
                self.groups[item.nodeid] = group
        if undecidable and require_decidable:
            raise StudyError(
                f"--ablation-require-decidable: on profile {profile.name!r}, "
                + "; ".join(d.line() for d in undecidable.values())
            )
        return list(undecidable.values())

    def _replace(self, case: Case) -> None:
        self._by_nodeid[case.nodeid] = case
        self._by_function[case.function][case.variant] = case

    def _apply_replicates(self, item, case: Case, profile) -> None:
        declared = declared_replicates(item)
        if declared is None:
            return
        fixture, unit, count = declared
        if case.marker.unit != unit:
            raise StudyError(
                f"{case.nodeid}: unit={case.marker.unit!r}, but the generator fixture "
                f"{fixture!r} draws its randomness per {unit} index (replicates={unit!r}: e.g. "
                f"one tuned model per seed index), so its samples of one {case.marker.unit} are "
                f"not independent; set unit={unit!r} on the study's marker"
            )
        if count is None:
            return
        try:
            runs = count(profile)
        except ValueError as error:
            # The fixture reads the profile's settings for it (e.g. [methods.exvideo] recipe):
            # a bad one stops the run here, before any model loads.
            raise ProfileSettingError(
                f"--ablation-profile: profile {profile.name!r}: {error} (read by the generator "
                f"fixture {fixture!r} of {case.nodeid})"
            ) from None
        if case.marker.seeds is None:
            self._replace(dataclasses.replace(case, marker=dataclasses.replace(case.marker, seeds=runs)))
        elif case.marker.seeds != runs:
            raise StudyError(
                f"{case.nodeid}: seeds={case.marker.seeds}, but the generator fixture {fixture!r} "
                f"has {runs} replicate(s) on profile {profile.name!r} (one per seed index); leave "
                "seeds unset to take them all, or change the profile"
            )

    def model_group(self, nodeid: str) -> str | None:
        return self._model_groups.get(nodeid)

    def select(self, nodeids=(), *, dropped=()) -> None:
        """Note the cases the run selected, and those a shard left to the other shards."""
        self._selected.update(n for n in nodeids if n in self._by_nodeid)
        self._shard_dropped.update(dropped)

    def summary(self) -> dict:
        """The cases and the selection, as a worker sends them to the controller.

        ``cases`` are in collection order (every parametrization as it was made, before any
        selection): the report lists a study's variants in this order (``results.report_json``)."""
        return {
            "cases": [[c.study, c.variant, c.nodeid] for c in self._by_nodeid.values()],
            "selected": sorted(self._selected),
            "shard_dropped": sorted(self._shard_dropped),
        }


def model_group_of(item, case: Case) -> str:
    """Tests whose fixtures draw on the same models go to one worker, which loads them once.

    The fixtures that request ``ablation_models`` (a study's generator fixtures, e.g. ``zs2``)
    name the models a test needs before it runs; a study without such a fixture is its own
    group.
    """
    definitions = item._fixtureinfo.name2fixturedefs
    users = sorted(
        name for name in item.fixturenames if any("ablation_models" in d.argnames for d in definitions.get(name, ()))
    )
    return "models:" + "+".join(users) if users else f"study:{case.study}"
