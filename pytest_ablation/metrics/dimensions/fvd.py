"""FVD is a set-level metric: it has no per-video score (see pytest_ablation.metrics.fvd)."""

from __future__ import annotations


def evaluate(inp):
    raise TypeError(
        "fvd is a set-level metric: it compares a set of videos with a reference set and has "
        "no value for one video; a study computes it from all the videos of a variant "
        "(comparison.set_metric('fvd')), or call pytest_ablation.metrics.fvd.fvd(...) directly"
    )
