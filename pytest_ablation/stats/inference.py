"""What a report may call significant: claimed cells and exploratory cells, adjusted p.

A claim's verdict is decided in its test (``expectations``), in the family its study
declares, and is not changed here. A variant-metric cell that a claim is about is
confirmatory: its two-sided p-value is adjusted by Bonferroni over the study's declared
family (its size is on the claim), so, like the verdict, it does not depend on which cases
ran. Every other cell is exploratory: its two-sided p-value is adjusted across the whole
report by Benjamini-Hochberg (false discovery rate). A cell is ``significant`` when its
adjusted p-value is at most 1 - confidence, and only such cells may be called the best of
their study.
"""

from __future__ import annotations

from typing import Any

from .paired import DEFAULT_CONFIDENCE, benjamini_hochberg

# Fields each result (and each variant's metric entry) gains.
INFERENCE_FIELDS = ("n_samples", "spread", "p_value", "mde", "family", "p_adjusted", "significant")


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def annotate(studies: list[dict[str, Any]]) -> None:
    """Set ``family``, ``p_adjusted`` and ``significant`` on every variant's metric entry, in
    place."""
    exploratory: list[dict[str, Any]] = []
    for study in studies:
        for variant in study["variants"]:
            claims = variant.get("expectations") or []
            claimed = {e["metric"]: max(int(e.get("family_size") or 1), 1) for e in claims}
            for metric, m in variant["metrics"].items():
                if variant.get("is_reference") or variant["variant"] == variant.get("reference"):
                    # Compared with itself: nothing to test.
                    m.update(family="reference", p_value=None, mde=None, p_adjusted=None, significant=False)
                elif not _number(m.get("p_value")):
                    m.update(family="exploratory", p_adjusted=None, significant=False)
                elif metric in claimed:
                    m["family"] = "confirmatory"
                    m["p_adjusted"] = min(1.0, claimed[metric] * m["p_value"])
                    m["significant"] = bool(m["p_adjusted"] <= 1 - m.get("confidence", DEFAULT_CONFIDENCE))
                else:
                    m["family"] = "exploratory"
                    exploratory.append(m)
    for m, adjusted in zip(exploratory, benjamini_hochberg([m["p_value"] for m in exploratory])):
        m["p_adjusted"] = adjusted
        m["significant"] = bool(adjusted <= 1 - m.get("confidence", DEFAULT_CONFIDENCE))


def result_fields(m: dict[str, Any]) -> dict[str, Any]:
    """The inference fields of one variant's metric entry, for ``results``."""
    return {name: m.get(name) for name in INFERENCE_FIELDS}
