"""The per-test ``ablation`` object, the API a study is written in: run a variant, pair it
with its reference, and check claims on the comparison.

A case stands alone: it computes (or loads from the cache) its own variant *and* the
reference it is compared to, so any subset, order or worker gives the same numbers. The
samples are made by ``samples.SampleProducer``; the reference's configuration is learnt by
replaying the reference case's test function (``replay``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Mapping

from ..stats.expectations import ClaimSet, Expectation, IgnoredExpectation
from .errors import AblationError
from .generation import BoundGenerator, bind_generator
from .keys import canonical
from .replay import ReferenceCaptured, replay_reference
from .samples import SETTING_FIELDS, ProgressWriter, Sample, SampleProducer, Workbench
from ..results.record import (
    DETAILS_FIELD,
    generator_details,
    make_record,
    metric_entry,
    sample_entry,
)
from ..stats.paired import PairedDelta, paired_delta

if TYPE_CHECKING:
    from .catalog import Case, Catalog
    from .media import MediaWriter

# Named here too: studies and the package's own modules import them from this module.
__all__ = ["Ablation", "AblationError", "Comparison", "MetricComparison", "ProgressWriter", "Sample", "Workbench"]


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    direction: str
    delta: PairedDelta
    variant_samples: tuple
    reference_samples: tuple
    per_frame: tuple  # per sample: the metric's per-frame values, or None

    @property
    def value(self) -> float:
        return self.delta.variant


@dataclass
class Comparison:
    """What ``ablation.run`` returns: the variant's scores against its reference's."""

    study: str
    variant: str
    reference: str
    config: dict
    reference_config: dict
    settings: dict
    metrics: dict[str, MetricComparison]
    samples: list[Sample] = field(repr=False, default_factory=list)
    reference_sample_list: list[Sample] = field(repr=False, default_factory=list)
    # Set-level metrics (FVD): one value for all the variant's videos against a reference
    # set, with a bootstrap interval (``pytest_ablation.metrics.dimensions.fvd.SetMetricResult``).
    set_metrics: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> MetricComparison:
        if metric in self.set_metrics:
            raise KeyError(_set_level_message(metric, "comparison[...]"))
        return self.metrics[metric]

    def delta(self, metric: str) -> float:
        if metric in self.set_metrics:
            raise KeyError(_set_level_message(metric, "comparison.delta(...)"))
        return self.metrics[metric].delta.delta

    def value(self, metric: str) -> float:
        if metric in self.set_metrics:
            return self.set_metrics[metric].value
        return self.metrics[metric].delta.variant

    def set_metric(self, metric: str):
        """The set-level result of ``metric`` (e.g. ``"fvd"``): value, interval (low, high),
        n_variant, n_reference, what the reference set was, and a warning below the set
        size the metric needs."""
        try:
            return self.set_metrics[metric]
        except KeyError:
            raise KeyError(
                f"{metric!r} is not a set-level metric of this comparison; it has "
                f"{', '.join(map(repr, self.set_metrics)) or 'none'} (per-video metrics: "
                f"comparison[{metric!r}])"
            ) from None


def _set_level_message(metric: str, what: str) -> str:
    return (
        f"{metric} is a set-level metric: it compares all the variant's videos with a "
        f"reference set, so it has no paired per-prompt delta for {what}; read "
        f"comparison.set_metric({metric!r}) (value, low, high, n_variant, warning)"
    )


class Ablation:
    """The ``ablation`` fixture's value for one test case.

    ``bench`` is what the process offers the case (device, models, cache, scorer, progress
    lines), ``catalog`` knows the case's reference, and ``media`` writes the pictures of
    each variant it runs.
    """

    def __init__(
        self,
        item,
        case: Case,
        *,
        bench: Workbench,
        catalog: Catalog,
        media: MediaWriter,
        replay_until: int | None = None,
    ):
        self.case = case
        self.records: list[dict] = []  # one per ablation.run call, sent with the test report
        self._item, self._bench, self._catalog, self._media = item, bench, catalog, media
        # Set while the reference case is replayed up to its ablation.run call of this number.
        self._replay_until = replay_until
        self._calls = 0
        self._record_of: dict[int, dict] = {}
        # The study's declared claims are one family, whichever cases run (``claims.py``).
        self._claims = ClaimSet(family_size=len(case.marker.claims))
        self._declared = tuple(c for c in case.marker.claims if c.variant == case.variant)
        self._producer = SampleProducer(bench, case.study)

    # -- conveniences for study authors ------------------------------------------------
    @property
    def study(self) -> str:
        return self.case.study

    @property
    def variant(self) -> str:
        return self.case.variant

    @property
    def is_reference(self) -> bool:
        return self.case.variant == (self.case.marker.reference or self.case.variant)

    @property
    def models(self):
        return self._bench.pool

    @property
    def device(self) -> str:
        return self._bench.device

    @property
    def profile(self):
        return self._bench.profile

    @property
    def settings(self):
        return self._settings({})

    # -- the API ------------------------------------------------------------------------
    def run(self, generator: Any, **config: Any) -> Comparison:
        """Generate and score this variant and its reference over every (prompt, seed)."""
        return self._producer.on_device(lambda: self._run(generator, config), "running the variant", self.case.variant)

    def _run(self, generator: Any, config: dict) -> Comparison:
        self._calls += 1
        call = self._calls
        if self._replay_until is not None and call == self._replay_until:
            raise ReferenceCaptured(generator, config)
        self._bench.pool.prepare_torch()
        bound = bind_generator(generator, self._bench.pool.identities)
        variant_config, settings = self._split(config)
        design = self._design(settings) if call == 1 and self._replay_until is None else None
        decisions: dict = {}
        for round_number, units in enumerate(design.looks if design else [None], start=1):
            at = settings if units is None else self._at_units(settings, units)
            samples, videos, reference_config, reference_samples, reference_videos = self._paired(
                bound, variant_config, at, call, units
            )
            comparison = self._compare(variant_config, reference_config, at, samples, reference_samples)
            if design is None or self._decide_round(design, comparison, decisions):
                break
            self._bench.progress(
                f"{self.case.study} {self.case.variant}: round {round_number} of "
                f"{len(design.looks)} ({units} {self.case.marker.unit}s) leaves "
                f"{sum(d.verdict == 'continue' for d in decisions.values())} claim(s) undecided: "
                "generating the next round"
            )
        if self._replay_until is None:
            comparison.set_metrics = self._set_metrics(videos, reference_videos, at)
            record = self._record(comparison, bound, call)
            details = generator_details(videos)
            if details:
                record[DETAILS_FIELD] = details
            record.update(self._media.save(record, videos, fps=at.fps))
            self.records.append(record)
            self._record_of[id(comparison)] = record
            if call == 1:
                self._check_declared(comparison, decisions, design)
        return comparison

    def _paired(self, bound, variant_config, settings, call: int, units: int | None):
        """This variant's samples and videos, and its reference's, on the same samples."""
        metrics = self._video_metrics()
        samples, videos = self._producer.samples(bound, variant_config, settings, self.case.variant, metrics)
        if self._replay_until is not None or self.is_reference:
            return samples, videos, variant_config, samples, videos
        ref_generator, ref_raw = replay_reference(
            self._item,
            self.case,
            self._catalog,
            call,
            current=self,
            replaying=lambda reference: Ablation(
                self._item, reference, bench=self._bench, catalog=self._catalog, media=self._media, replay_until=call
            ),
        )
        ref_bound = bind_generator(ref_generator, self._bench.pool.identities)
        reference_config, ref_settings = self._split(ref_raw)
        if units is not None:
            ref_settings = self._at_units(ref_settings, units)
        if ref_settings.prompts != settings.prompts or ref_settings.seeds != settings.seeds:
            raise AblationError(
                f"{self.case.nodeid}: the variant and its reference use different prompts "
                "or seeds, so their scores cannot be paired"
            )
        # A case without a reference is its own, and returned above.
        reference_samples, reference_videos = self._producer.samples(
            ref_bound, reference_config, ref_settings, cast(str, self.case.marker.reference), metrics
        )
        return samples, videos, reference_config, reference_samples, reference_videos

    # -- adaptive sample size (the marker's ``rounds``) -----------------------------------
    def _design(self, settings):
        """The group-sequential design of this case's declared claims, or None."""
        marker = self.case.marker
        if marker.rounds is None or not self._declared:
            return None
        from ..stats.claims import ALPHA
        from ..stats.sequential import sequential_design

        first, step = marker.rounds
        budget = settings.seeds if marker.unit == "seed" else len(settings.prompts)
        try:
            return sequential_design(first, step, budget, ALPHA / len(marker.claims))
        except ValueError as error:
            raise AblationError(
                f"{self.case.nodeid}: rounds={{'first': {first}, 'step': {step}}} over a budget of "
                f"{budget} {marker.unit}s: {error}"
            ) from None

    def _at_units(self, settings, units: int):
        if self.case.marker.unit == "seed":
            return settings.replace(seeds=units)
        return settings.replace(prompts=settings.prompts[:units])

    def _decide_round(self, design, comparison: Comparison, decisions: dict) -> bool:
        """Decide each undecided declared claim at this look; True when none is left."""
        from ..stats.expectations import CLAIMS

        for claim in self._declared:
            if claim in decisions and decisions[claim].verdict != "continue":
                continue
            side, sign = CLAIMS[claim.claim].tests[0]
            diffs = comparison.metrics[claim.metric].delta.unit_differences
            decisions[claim] = design.decide(diffs, sign * claim.margin, side)
        return all(d.verdict != "continue" for d in decisions.values())

    def _check_declared(self, comparison: Comparison, decisions: dict, design) -> None:
        """The variant's declared claims, checked on its first comparison (with their
        sequential decisions, in a study of rounds)."""
        for claim in self._declared:
            decision = decisions.get(claim)
            sequential = (
                None
                if decision is None
                else {
                    "verdict": decision.verdict,
                    "look": decision.look + 1,
                    "n": decision.n,
                    "looks": list(design.looks),
                    "p_value": decision.p_value,
                }
            )
            self.expect(comparison, claim.metric)._check(
                claim.claim, claim.margin, claim.statistic, family="declared", sequential=sequential
            )

    def expect(self, comparison: Comparison, metric: str):
        if metric in self.case.marker.metrics and self._level(metric) == "set":
            raise AblationError(
                f"ablation.expect(..., {metric!r}): {_set_level_message(metric, 'a claim')}. "
                "A claim here is a paired test over prompts and does not apply; assert on the "
                f"set-level result instead, e.g. assert result.set_metric({metric!r}).high < bound"
            )
        if self._replay_until is not None:
            return IgnoredExpectation()
        record = self._record_of.get(id(comparison))

        def remember(outcome: dict) -> None:
            if record is not None:
                record["expectations"].append(outcome)

        return Expectation(comparison, metric, on_checked=remember, claims=self._claims, declared=self._declared)

    def finish_claims(self, *, raise_failures: bool = True) -> None:
        """Decide every claim the test made (Holm over them), giving each its verdict, and
        fail listing those that do not hold; called when the test function has returned
        (without ``raise_failures`` when it raised: its claims are still recorded)."""
        if raise_failures and self._declared and self._replay_until is None and not self.records:
            raise AblationError(
                f"{self.case.nodeid}: the study declares claims for {self.case.variant!r} "
                f"({', '.join(c.text() for c in self._declared)}), but the test never called "
                "ablation.run, so they cannot be decided"
            )
        if raise_failures:
            self._claims.raise_failures()
        else:
            self._claims.decide()

    # -- machinery ----------------------------------------------------------------------
    def _settings(self, overrides: Mapping[str, Any]):
        marker = self.case.marker
        merged: dict[str, Any] = dict(marker.settings)
        if marker.prompts is not None:
            merged["prompts"] = marker.prompts
        if marker.seeds is not None:
            merged["seeds"] = marker.seeds
        merged.update(overrides)
        settings = self._bench.profile.settings
        return settings.replace(**merged) if merged else settings

    def _split(self, config: Mapping[str, Any]):
        setting_overrides = {k: v for k, v in config.items() if k in SETTING_FIELDS}
        variant_config = {k: v for k, v in config.items() if k not in SETTING_FIELDS}
        try:
            canonical(variant_config, where="ablation.run configuration")
        except TypeError as error:
            raise AblationError(str(error)) from None
        return variant_config, self._settings(setting_overrides)

    def _compare(self, config, reference_config, settings, samples, reference_samples) -> Comparison:
        reference_name = self.case.marker.reference or self.case.variant
        metrics = {}
        for metric in self._video_metrics():
            spec = self._bench.metric(metric)
            values = [s.scores[metric]["value"] for s in samples]
            reference_values = [s.scores[metric]["value"] for s in reference_samples]
            # The prompt is the unit: the seeds of a prompt are averaged before the tests. A
            # study whose seed indexes are independent replicates of the variant (the
            # marker's unit="seed") averages the prompts of a seed index instead.
            unit = getattr(self.case.marker, "unit", "prompt")
            labels = [s.seed_index if unit == "seed" else s.prompt for s in samples]
            delta = paired_delta(values, reference_values, units=labels, unit=unit)
            metrics[metric] = MetricComparison(
                metric=metric,
                direction=spec.direction,
                delta=delta,
                variant_samples=tuple(values),
                reference_samples=tuple(reference_values),
                per_frame=tuple(s.scores[metric].get("per_frame") for s in samples),
            )
        return Comparison(
            study=self.case.study,
            variant=self.case.variant,
            reference=reference_name,
            config=canonical(config),
            reference_config=canonical(reference_config),
            settings=settings.to_dict(),
            metrics=metrics,
            samples=samples,
            reference_sample_list=reference_samples,
        )

    # -- set-level metrics (FVD) ---------------------------------------------------------
    def _level(self, metric: str) -> str:
        return getattr(self._bench.metric(metric), "level", "video")

    def _video_metrics(self) -> tuple[str, ...]:
        return tuple(m for m in self.case.marker.metrics if self._level(m) == "video")

    def _set_metrics(self, videos, reference_videos, settings) -> dict:
        from .set_scoring import SetMetricError, SetScorer

        scorer = SetScorer(self.case, self._bench, self._item.path)
        try:
            return scorer.score(videos, reference_videos, settings)
        except SetMetricError as error:
            raise AblationError(f"{self.case.nodeid}: {error}") from None

    def _record(self, comparison: Comparison, bound: BoundGenerator, call: int) -> dict:
        return make_record(
            study=comparison.study,
            variant=comparison.variant if call == 1 else f"{comparison.variant}#{call}",
            reference=comparison.reference,
            is_reference=self.is_reference,
            nodeid=self.case.nodeid,
            generator=bound.name,
            generator_identity=canonical(bound.identity),
            config=comparison.config,
            reference_config=comparison.reference_config,
            settings=comparison.settings,
            samples=[sample_entry(s.prompt, s.seed_index, s.seed, s.video_key) for s in comparison.samples],
            metrics={
                name: metric_entry(
                    direction=m.direction,
                    delta=m.delta.to_dict(),
                    samples=m.variant_samples,
                    reference_samples=m.reference_samples,
                    per_frame=m.per_frame,
                    details=comparison.samples[0].scores[name].get("details"),
                )
                for name, m in comparison.metrics.items()
            },
            set_metrics={
                name: {**r.to_dict(), "direction": self._bench.metric(name).direction}
                for name, r in comparison.set_metrics.items()
            },
        )
