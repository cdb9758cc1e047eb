"""A variant's results as JUnit XML properties, so CI systems show them beside the test.

pytest's ``--junitxml`` writes a test's ``user_properties`` as ``<property>`` elements; the
plugin appends these to the test item before its report is made, on whichever worker ran it.
"""

from __future__ import annotations

from ..stats.claims import verdict_of


def _number(value) -> str:
    return "" if value is None else f"{float(value):.6g}"


def junit_properties(record: dict) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for one ``ablation.run`` record: who it was compared to, then
    per metric the value, the reference's value, the paired delta and its interval, and the
    claims the test checked with their outcome."""
    prefix = f"ablation.{record['variant']}" if "#" in record["variant"] else "ablation"
    properties = [
        (f"{prefix}.study", record["study"]),
        (f"{prefix}.variant", record["variant"]),
        (f"{prefix}.reference", record["reference"]),
    ]
    for metric, m in record["metrics"].items():
        low, high = m["ci"]
        properties += [
            (f"{prefix}.{metric}.value", _number(m["value"])),
            (f"{prefix}.{metric}.reference_value", _number(m["reference_value"])),
            (f"{prefix}.{metric}.delta", _number(m["delta"])),
            (f"{prefix}.{metric}.ci95", f"[{_number(low)}, {_number(high)}]"),
        ]
    for claim in record["expectations"]:
        margin = f" by {claim['margin']:g}" if claim["margin"] else ""
        properties.append(
            (
                f"{prefix}.{claim['metric']}.claim",
                f"{claim['claim']}{margin}: {verdict_of(claim)}",
            )
        )
    return properties
