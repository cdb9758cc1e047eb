"""The plugin's options: declared once, read and checked once, reused by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .devices import DeviceError, parse_devices
from .profiles import DEFAULT_PROFILE, looks_like_path

DEFAULT_REPORT_DIR = "reports"
DEFAULT_CACHE_DIR = ".ablation-cache"
DEFAULT_KEEP_RUNS = 10
VIDEO_FORMATS = ("mp4", "gif", "png")


class OptionError(ValueError):
    """A bad option value; the message names the option and what is allowed."""


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    type: str = "string"  # ini type
    default: Any = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS = (
    Option(
        "--ablation-profile",
        "models and settings to run the studies with: a built-in profile name "
        f"(default {DEFAULT_PROFILE!r}) or the path of a profile TOML file",
        default=DEFAULT_PROFILE,
        metavar="NAME|PATH",
    ),
    Option(
        "--ablation-devices",
        "'auto' (one GPU per worker, else CPU), 'cpu', or a list such as cuda:0,cuda:1 "
        "dealt to xdist workers round-robin",
        default="auto",
        metavar="DEVICES",
    ),
    Option(
        "--ablation-report-dir",
        f"where report.json and report.md are written (default {DEFAULT_REPORT_DIR}/)",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
    ),
    Option(
        "--ablation-cache-dir",
        f"content-addressed cache of videos and scores (default {DEFAULT_CACHE_DIR}/)",
        default=DEFAULT_CACHE_DIR,
        metavar="DIR",
    ),
    Option(
        "--ablation-no-cache",
        "neither read nor write the cache: regenerate everything",
        type="bool",
        default=False,
    ),
    Option(
        "--ablation-gate",
        "fail the run when a metric regresses against this baseline file",
        metavar="BASELINE",
    ),
    Option(
        "--ablation-save-baseline",
        "write this run's results as a baseline file for --ablation-gate",
        metavar="PATH",
    ),
    Option(
        "--ablation-shard",
        "run only shard I of N of the selected tests (1 <= I <= N); a study may span "
        "shards, tests that share models stay together where balance allows; combine the shards' reports with `pytest-ablation merge`",
        metavar="I/N",
    ),
    Option(
        "--ablation-keep-runs",
        "how many past runs' copies of the report to keep under <report dir>/runs/, newest "
        f"first (default {DEFAULT_KEEP_RUNS}; 0 writes no copy)",
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
    ),
    Option(
        "--ablation-save-videos",
        f"also save every generated video under <report dir>/videos/, as {'|'.join(VIDEO_FORMATS)}",
        metavar="FORMAT",
    ),
)

TOLERANCES_INI = "ablation_tolerances"


def add_options(parser) -> None:
    group = parser.getgroup("ablation", "ablation studies (pytest-ablation)")
    for option in OPTIONS:
        if option.type == "bool":
            group.addoption(option.flag, action="store_true", default=None, dest=option.dest,
                            help=option.help)
        else:
            group.addoption(option.flag, default=None, dest=option.dest,
                            metavar=option.metavar, help=option.help)
        # No ini default: an ini key set to an empty value must be told from one not set.
        parser.addini(option.ini, f"{option.help} (ini twin of {option.flag})",
                      type=option.type if option.type == "bool" else "string",
                      default=None)
    parser.addini(
        TOLERANCES_INI,
        "gate tolerances per metric, one 'metric = tolerance' a line (overrides the defaults)",
        type="linelist",
        default=[],
    )


@dataclass(frozen=True)
class AblationOptions:
    profile: str = DEFAULT_PROFILE
    devices: list[str] | str = "auto"
    report_dir: Path = Path(DEFAULT_REPORT_DIR)
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    no_cache: bool = False
    gate: Path | None = None
    save_baseline: Path | None = None
    shard: tuple[int, int] | None = None
    save_videos: str | None = None
    keep_runs: int = DEFAULT_KEEP_RUNS
    tolerances: dict[str, float] = field(default_factory=dict)


# What each option allows, for the message about an empty value.
ALLOWED = {
    "ablation_profile": "a built-in profile name or a profile TOML file",
    "ablation_devices": "'auto', 'cpu' or a list such as cuda:0,cuda:1",
    "ablation_report_dir": "a folder",
    "ablation_cache_dir": "a folder",
    "ablation_gate": "a baseline report.json file",
    "ablation_save_baseline": "a file path such as reports/baseline.json",
    "ablation_shard": "I/N with 1 <= I <= N, e.g. 1/4",
    "ablation_save_videos": "one of " + ", ".join(VIDEO_FORMATS),
    "ablation_keep_runs": "a whole number >= 0",
}


def _value(config, option: Option) -> tuple[Any, Path]:
    """The option's value (its default when not given) and the folder a relative path in it
    is relative to. An empty value is an error, never a silent default: ``--ablation-gate ""``
    must not turn the gate off."""
    given = config.getoption(option.dest)
    if given is not None:
        where, base = option.flag, Path(config.invocation_params.dir)
    else:
        where = f"{option.ini} (ini)"
        base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
        from pytest import UsageError

        try:
            given = config.getini(option.ini)
        except (ValueError, TypeError, UsageError) as error:
            raise OptionError(
                f"{option.ini} (ini): {error}; allowed: true or false (also yes/no, on/off, 1/0)"
            ) from None
    if given is None:
        return option.default, base
    if option.type != "bool" and not str(given).strip():
        raise OptionError(
            f"{where}: empty value; expected {ALLOWED.get(option.dest, 'a value')} "
            "(leave the option out for its default)"
        )
    return given, base


def _path(value: Any, base: Path) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def parse_tolerances(lines: list[str], source: str = TOLERANCES_INI) -> dict[str, float]:
    """``metric = tolerance`` lines; ``source`` (the ini key or a CLI flag) names them in errors."""
    import math

    tolerances = {}
    for line in lines:
        name, sep, number = line.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or not value >= 0 or not math.isfinite(value):
            raise OptionError(
                f"{source}: {line!r} is not 'metric = tolerance' with a tolerance >= 0"
            )
        tolerances[name.strip()] = value
    return tolerances


def parse_shard(value: Any) -> tuple[int, int] | None:
    """``"I/N"`` as ``(I, N)``, or None when no sharding was asked for."""
    if value in (None, ""):
        return None
    index, sep, count = str(value).strip().partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or not 1 <= shard[0] <= shard[1]:
        raise OptionError(
            f"--ablation-shard: got {value!r}; expected I/N with whole numbers 1 <= I <= N, "
            "e.g. 1/4 for the first of four shards"
        )
    return shard


def parse_video_format(value: Any) -> str | None:
    if value in (None, ""):
        return None
    fmt = str(value).strip().lower()
    if fmt not in VIDEO_FORMATS:
        raise OptionError(
            f"--ablation-save-videos: got {value!r}; expected one of {', '.join(VIDEO_FORMATS)}"
        )
    return fmt


def parse_keep_runs(value: Any, where: str = "--ablation-keep-runs") -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise OptionError(f"{where}: got {value!r}; expected a whole number >= 0 (0 writes no copy)")
    return int(text)


def read_options(config) -> AblationOptions:
    """Read every option, command line over ini over default, and check its form.

    Checks that need the world (does the profile exist, is the directory writable) are the
    session's, so that this stays cheap and usable by the CLI.
    """
    by_dest = {option.dest: option for option in OPTIONS}
    values = {dest: _value(config, option) for dest, option in by_dest.items()}
    try:
        devices = parse_devices(str(values["ablation_devices"][0]))
    except DeviceError as error:
        raise OptionError(str(error)) from None
    profile_value, profile_base = values["ablation_profile"]
    profile = str(profile_value).strip()
    if looks_like_path(profile):
        profile = str(_path(profile, profile_base))
    return AblationOptions(
        profile=profile,
        devices=devices,
        report_dir=_path(*values["ablation_report_dir"]) or Path(DEFAULT_REPORT_DIR),
        cache_dir=_path(*values["ablation_cache_dir"]) or Path(DEFAULT_CACHE_DIR),
        no_cache=bool(values["ablation_no_cache"][0]),
        gate=_path(*values["ablation_gate"]),
        save_baseline=_path(*values["ablation_save_baseline"]),
        shard=parse_shard(values["ablation_shard"][0]),
        save_videos=parse_video_format(values["ablation_save_videos"][0]),
        keep_runs=parse_keep_runs(values["ablation_keep_runs"][0]),
        tolerances=parse_tolerances(config.getini(TOLERANCES_INI) or []),
    )
