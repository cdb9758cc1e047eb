"""What the terminal, report.md and report.html show alike: how numbers are written, what a
study varies, and the settings its variants share.

Numbers: a metric's column is written with one number of decimals for its values, deltas,
intervals and MDE, chosen from the metric's resolution (the narrowest interval of the
column and the metric's gate tolerance: two significant digits of the smaller), in fixed
notation; p-values with two significant digits, and below 0.001 as "<0.001".
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard, cast

MAX_DECIMALS = 6
# Settings a study may vary that are not one value per variant, or not a setting of the
# generated video.
_NOT_SWEPT = ("prompts",)
# The settings line: (setting names, label when it varies, text of one value).
_SETTINGS_TEXT = (
    (("frames",), "frames", lambda s, x: f"{s.get('frames')} frames"),
    (("steps",), "steps", lambda s, x: f"{s.get('steps')} steps"),
    (("width", "height"), "size", lambda s, x: f"{s.get('width')}{x}{s.get('height')}"),
    (("guidance_scale",), "guidance", lambda s, x: f"guidance {s.get('guidance_scale')}"),
    (("fps",), "fps", lambda s, x: f"{s.get('fps')} fps"),
)


def finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --- numbers ------------------------------------------------------------------------------


def _clamp(decimals: int) -> int:
    return max(0, min(MAX_DECIMALS, decimals))


def resolution_decimals(scale: float | None) -> int | None:
    """Decimals that show two significant digits of ``scale`` (None without a scale)."""
    if not finite(scale) or scale <= 0:
        return None
    return _clamp(1 - math.floor(math.log10(scale)))


def column_decimals(study: dict, metric: str, info: dict | None = None) -> int:
    """The decimals of ``metric``'s column in ``study``: from the narrowest interval of the
    paired differences and the metric's tolerance (``info``: the report's ``metrics``),
    else four significant digits of the largest value."""
    entries = [v["metrics"][metric] for v in study.get("variants", ()) if metric in (v.get("metrics") or {})]
    scales = []
    for m in entries:
        low, high = m.get("ci") or (None, None)
        if finite(low) and finite(high) and high > low:
            scales.append((high - low) / 2)
    tolerance = ((info or {}).get(metric) or {}).get("tolerance")
    if finite(tolerance) and tolerance > 0:
        scales.append(tolerance)
    if scales:
        return cast(int, resolution_decimals(min(scales)))
    values = [abs(m["value"]) for m in entries if finite(m.get("value")) and m["value"] != 0]
    if values:
        return _clamp(3 - math.floor(math.log10(max(values))))
    return 3


def fixed(x: Any, decimals: int) -> str:
    """``x`` with ``decimals`` decimals; "—" for no value, "NaN" for one that is not a number
    (report.json writes it as null: shown, never hidden, where a value is expected)."""
    if x is None:
        return "—"
    if not finite(x):
        return "NaN" if isinstance(x, float) and math.isnan(x) else str(x)
    if abs(x) >= 1e9:
        return f"{x:.4g}"
    return f"{x:.{decimals}f}"


def signed(x: Any, decimals: int) -> str:
    if not finite(x):
        return fixed(x, decimals)
    if abs(x) >= 1e9:
        return f"{x:+.4g}"
    return f"{x:+.{decimals}f}"


def value_text(x: Any, decimals: int) -> str:
    """A metric's value: "NaN" where report.json has null."""
    return "NaN" if x is None else fixed(x, decimals)


def p_text(p: Any) -> str:
    if not finite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def general(x: Any) -> str:
    """A number given by a person (a margin, a tolerance): as short as it is, in fixed
    notation for ordinary magnitudes."""
    if not finite(x):
        return "—" if x is None else str(x)
    if x == 0:
        return "0"
    if 1e-6 <= abs(x) < 1e9:
        text = f"{x:.6f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else f"{x:.3g}"
    return f"{x:.3g}"


# --- what a study varies ------------------------------------------------------------------

_MISSING = object()


def swept_value(variant: dict, key: str) -> Any:
    """The value of a swept key in ``variant``: its configuration's, else its settings'."""
    config = variant.get("config") or {}
    if key in config:
        return config[key]
    return (variant.get("settings") or {}).get(key)


def swept_keys(variants: list[dict]) -> list[str]:
    """What the study varies: the configuration keys whose value is not the same in every
    variant (by name), then the settings that differ (a setting passed through
    ``ablation.run``, e.g. ``guidance_scale``), in the settings' order."""
    config_keys = sorted({k for v in variants for k in (v.get("config") or {})})
    varying = [k for k in config_keys if len({repr((v.get("config") or {}).get(k, _MISSING)) for v in variants}) > 1]
    setting_keys = list(dict.fromkeys(k for v in variants for k in (v.get("settings") or {})))
    varying += [
        k
        for k in setting_keys
        if k not in _NOT_SWEPT
        and k not in config_keys
        and len({repr((v.get("settings") or {}).get(k, _MISSING)) for v in variants}) > 1
    ]
    return varying


def config_text(variant: dict, keys: list[str]) -> str:
    """``key=value, ...`` of the swept keys, as the variant has them."""
    return ", ".join(f"{k}={swept_value(variant, k)}" for k in keys)


def is_reference(variant: dict) -> bool:
    return bool(variant.get("is_reference")) or variant.get("variant") == variant.get("reference")


def settings_text(study: dict, times: str = "x") -> str | None:
    """The settings of the study's videos, e.g. ``4 frames, 3 steps, 64x64, guidance 7.5,
    8 fps; 2 prompt(s) x 2 seed(s)``. A setting the variants differ in is not the study's:
    it is given as the reference's and marked as varying, or, without the reference's
    entry, as varying."""
    variants = study.get("variants") or []
    reference = next((v for v in variants if is_reference(v)), None)
    base = ((reference or variants[0]).get("settings") or {}) if variants else {}
    if not base:
        return None
    varying = set(swept_keys(variants))
    parts = []
    for names, label, text in _SETTINGS_TEXT:
        if not varying.intersection(names):
            parts.append(text(base, times))
        elif reference is not None:
            parts.append(f"{text(base, times)} at the reference (varies: see config)")
        else:
            parts.append(f"{label} varies (see config)")
    return ", ".join(parts) + f"; {len(base.get('prompts') or [])} prompt(s) {times} {base.get('seeds')} seed(s)"
