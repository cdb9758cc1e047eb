"""What a report may call significant: confirmatory claims, exploratory cells, adjusted p.

A study's claims are its confirmatory family: their one-sided p-values are adjusted together
by Holm's method (family-wise error), and a claim is ``confirmed`` when it holds after that
study-wide adjustment (a test decides on its own claims, Holm over those). Every other
variant-metric cell is exploratory: its two-sided p-value is adjusted across the whole report
by Benjamini-Hochberg (false discovery rate). A cell is ``significant`` when its adjusted
p-value is at most 1 - confidence (Holm over the study's claimed cells for a confirmatory
cell), and only such cells may be called the best of their study.
"""

from __future__ import annotations

from ..stats import DEFAULT_CONFIDENCE, benjamini_hochberg, holm

# Fields each result (and each variant's metric entry) gains.
INFERENCE_FIELDS = ("n_samples", "spread", "p_value", "mde", "family", "p_adjusted", "significant")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def annotate(studies: list[dict]) -> None:
    """Set ``family``, ``p_adjusted`` and ``significant`` on every variant's metric entry and
    ``p_study`` and ``confirmed`` on every claim, in place."""
    exploratory: list[dict] = []
    for study in studies:
        claims = [e for v in study["variants"] for e in v.get("expectations") or []
                  if _number(e.get("p_value"))]
        for claim, adjusted in zip(claims, holm([c["p_value"] for c in claims])):
            claim["p_study"] = adjusted
            claim["confirmed"] = bool(adjusted <= claim.get("alpha", (1 - DEFAULT_CONFIDENCE) / 2))
        confirmatory: list[dict] = []
        for variant in study["variants"]:
            claimed = {e["metric"] for e in variant.get("expectations") or []}
            for metric, m in variant["metrics"].items():
                if variant.get("is_reference") or variant["variant"] == variant.get("reference"):
                    # Compared with itself: nothing to test.
                    m.update(family="reference", p_value=None, mde=None, p_adjusted=None,
                             significant=False)
                elif not _number(m.get("p_value")):
                    m.update(family="exploratory", p_adjusted=None, significant=False)
                elif metric in claimed:
                    m["family"] = "confirmatory"
                    confirmatory.append(m)
                else:
                    m["family"] = "exploratory"
                    exploratory.append(m)
        for m, adjusted in zip(confirmatory, holm([m["p_value"] for m in confirmatory])):
            m["p_adjusted"] = adjusted
            m["significant"] = bool(adjusted <= 1 - m.get("confidence", DEFAULT_CONFIDENCE))
    for m, adjusted in zip(exploratory, benjamini_hochberg([m["p_value"] for m in exploratory])):
        m["p_adjusted"] = adjusted
        m["significant"] = bool(adjusted <= 1 - m.get("confidence", DEFAULT_CONFIDENCE))


def result_fields(m: dict) -> dict:
    """The inference fields of one variant's metric entry, for ``results``."""
    return {name: m.get(name) for name in INFERENCE_FIELDS}
