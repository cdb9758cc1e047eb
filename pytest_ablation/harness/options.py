"""The plugin's options: declared once, read and checked once, reused by the CLI."""

from __future__ import annotations

import re
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..profiles import DEFAULT_PROFILE, looks_like_path
from ..run.devices import DeviceError, parse_devices
from ..run.media import VIDEO_FORMATS

DEFAULT_REPORT_DIR = "reports"
# The cache is the user's, shared by every project: its entries are content-addressed, so a
# video one project made serves any other that asks for it. This variable chooses another
# folder for every run (a shared filesystem on a cluster, a scratch disk).
CACHE_ENV = "PYTEST_ABLATION_CACHE"
DEFAULT_CACHE_TEXT = f"${CACHE_ENV}, else $XDG_CACHE_HOME/pytest-ablation, else ~/.cache/pytest-ablation"
DEFAULT_KEEP_RUNS = 10


def default_cache_dir() -> Path:
    """The cache folder when no option names one: ``$PYTEST_ABLATION_CACHE``, else the
    user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``) / pytest-ablation."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser().absolute() / "pytest-ablation"


class OptionError(ValueError):
    """A bad option value; the message names the option and what is allowed."""


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    type: str = "string"  # ini type; "optional": a flag that may take a value (FLAG[=VALUE])
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
        f"content-addressed cache of videos and scores, shared by your projects (default {DEFAULT_CACHE_TEXT})",
        default=None,
        metavar="DIR",
    ),
    Option(
        "--ablation-no-cache",
        "neither read nor write the cache: regenerate everything",
        type="bool",
        default=False,
    ),
    Option(
        "--ablation-require-decidable",
        "make it a usage error, at collection, when a study's declared claims cannot be "
        "decided with the units the profile gives (by default such cases are expected "
        "failures and listed under the collection line)",
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
    Option(
        "--ablation-wandb",
        "log the run to Weights & Biases, offline (under <report dir>/wandb/) unless "
        "WANDB_MODE says otherwise; the project defaults to the project folder's name; needs "
        'pip install "pytest-ablation[wandb]"',
        type="optional",
        metavar="[ENTITY/]PROJECT",
    ),
    Option(
        "--ablation-mlflow",
        "log the run to MLflow: a tracking URI, or a folder for a local store (default "
        "<report dir>/mlflow/: an SQLite database and the artifacts); needs pip install "
        '"pytest-ablation[mlflow]"',
        type="optional",
        metavar="URI|DIR",
    ),
)

TOLERANCES_INI = "ablation_tolerances"


def add_options(parser) -> None:
    group = parser.getgroup("ablation", "ablation studies (pytest-ablation)")
    for option in OPTIONS:
        if option.type == "bool":
            group.addoption(option.flag, action="store_true", default=None, dest=option.dest, help=option.help)
        elif option.type == "optional":
            # Alone it is True (the option's default value); a value is given with "=", as
            # a following test path would be taken for it (parse_tracker says so).
            group.addoption(
                option.flag,
                nargs="?",
                const=True,
                default=None,
                dest=option.dest,
                metavar=option.metavar,
                help=option.help,
            )
        else:
            group.addoption(option.flag, default=None, dest=option.dest, metavar=option.metavar, help=option.help)
        # No ini default: an ini key set to an empty value must be told from one not set.
        parser.addini(
            option.ini,
            f"{option.help} (ini twin of {option.flag})",
            type=option.type if option.type == "bool" else "string",
            default=None,
        )
    parser.addini(
        TOLERANCES_INI,
        "gate tolerances per metric, one 'metric = tolerance' a line (overrides the defaults)",
        type="linelist",
        default=[],
    )


def names_the_plugin(config) -> bool:
    """Whether this run asks for the plugin before anything is collected: an ``--ablation-``
    option on the command line, or an ``ablation_`` ini key in the project's configuration.

    Only such a run has its devices and ``-n auto``'s worker count decided at start-up; in a
    project without studies the plugin then stays out of the way (README, "-n")."""
    if any(getattr(config.option, option.dest, None) is not None for option in OPTIONS):
        return True
    return any(config.getini(option.ini) is not None for option in OPTIONS) or bool(config.getini(TOLERANCES_INI))


@dataclass(frozen=True)
class AblationOptions:
    profile: str = DEFAULT_PROFILE
    devices: list[str] | str = "auto"
    report_dir: Path = Path(DEFAULT_REPORT_DIR)
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    no_cache: bool = False
    require_decidable: bool = False
    gate: Path | None = None
    save_baseline: Path | None = None
    shard: tuple[int, int] | None = None
    save_videos: str | None = None
    keep_runs: int = DEFAULT_KEEP_RUNS
    tolerances: dict[str, float] = field(default_factory=dict)
    # Experiment trackers to log to (trackers/): name -> its value, None for its default.
    trackers: dict[str, str | None] = field(default_factory=dict)


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
    "ablation_wandb": "a W&B project as PROJECT or ENTITY/PROJECT, or true",
    "ablation_mlflow": "an MLflow tracking URI or a folder, or true",
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


def _where(config, option: Option) -> str:
    """How an error names the option: its flag, or its ini key when the value came from there."""
    return option.flag if config.getoption(option.dest) is not None else f"{option.ini} (ini)"


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
            raise OptionError(f"{source}: {line!r} is not 'metric = tolerance' with a tolerance >= 0")
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
        raise OptionError(f"--ablation-save-videos: got {value!r}; expected one of {', '.join(VIDEO_FORMATS)}")
    return fmt


def parse_keep_runs(value: Any, where: str = "--ablation-keep-runs") -> int:
    text = str(value).strip()
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "٣" (which
    # int() reads as 3).
    if not (text.isascii() and text.isdigit()):
        raise OptionError(f"{where}: got {value!r}; expected a whole number >= 0 (0 writes no copy)")
    return int(text)


# A URI scheme of two characters or more: "C:\\..." is a Windows path, not a URI.
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")
# Characters W&B refuses in a project name, and its longest name.
WANDB_FORBIDDEN = "\\#?%:"
WANDB_MAX_PROJECT = 128
_ON = ("true", "yes", "on", "1")
_OFF = ("false", "no", "off", "0")


def _swallowed_path(text: str, base: Path) -> bool:
    """Whether a tracker option's value is a test path that argparse handed it:
    ``pytest --ablation-wandb tests/`` gives the option "tests/"."""
    path = _path(text, base)
    if path is None:
        return False
    if "::" in text or text.endswith(".py") or path.is_file():
        return True
    # A folder of test files; a folder for an MLflow store holds none.
    return path.is_dir() and any(path.glob("*.py"))


def parse_tracker(name: str, value: Any, base: Path, where: str, explicit: bool = True) -> tuple[bool, str | None]:
    """``(on, value)`` of ``--ablation-wandb`` or ``--ablation-mlflow`` (``name``): the flag
    alone, or an ini value of true/yes/on/1, is on with the tracker's default (None); an ini
    false/no/off/0 is off. An MLflow folder comes back absolute. ``explicit``: the value was
    written as the option's own (``FLAG=VALUE``, an ini value), not as the next argument,
    which may be a test path that argparse handed to the option."""
    if value is None or value is False:
        return False, None
    if value is True:
        return True, None
    text = str(value).strip()
    if text.lower() in _ON:
        return True, None
    if text.lower() in _OFF:
        return False, None
    what = "W&B project" if name == "wandb" else "MLflow tracking URI or store folder"
    if not explicit and not URI_SCHEME.match(text) and _swallowed_path(text, base):
        flag = f"--ablation-{name}"
        raise OptionError(
            f"{where}: took {text!r} as the {what}, but it is a test path; give a value with "
            f"'=' ({flag}={'PROJECT' if name == 'wandb' else 'URI'}), or put {flag} alone "
            "after the test paths"
        )
    if name == "wandb":
        parts = text.split("/")
        if (
            len(parts) > 2
            or not all(p.strip() for p in parts)
            or len(parts[-1]) > WANDB_MAX_PROJECT
            or any(c in WANDB_FORBIDDEN for c in text)
        ):
            raise OptionError(
                f"{where}: got {text!r}; expected PROJECT or ENTITY/PROJECT: a W&B project name "
                f"of at most {WANDB_MAX_PROJECT} characters, none of {' '.join(WANDB_FORBIDDEN)} "
                "(or the option alone for the default project, the project folder's name)"
            )
        return True, text
    if URI_SCHEME.match(text):
        return True, text
    return True, str(_path(text, base))


def read_trackers(config) -> dict[str, str | None]:
    """The trackers the options turn on: name -> value (None for the tracker's default)."""
    trackers = {}
    for option in OPTIONS:
        if option.type != "optional":
            continue
        value, base = _value(config, option)
        on_command_line = config.getoption(option.dest) is not None
        where = option.flag if on_command_line else f"{option.ini} (ini)"
        explicit = not on_command_line or any(
            str(arg).startswith(f"{option.flag}=") for arg in config.invocation_params.args
        )
        on, target = parse_tracker(option.dest.removeprefix("ablation_"), value, base, where, explicit)
        if on:
            trackers[option.dest.removeprefix("ablation_")] = target
    return trackers


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
        cache_dir=_path(*values["ablation_cache_dir"]) or default_cache_dir(),
        no_cache=bool(values["ablation_no_cache"][0]),
        require_decidable=bool(values["ablation_require_decidable"][0]),
        gate=_path(*values["ablation_gate"]),
        save_baseline=_path(*values["ablation_save_baseline"]),
        shard=parse_shard(values["ablation_shard"][0]),
        save_videos=parse_video_format(values["ablation_save_videos"][0]),
        keep_runs=parse_keep_runs(values["ablation_keep_runs"][0], _where(config, by_dest["ablation_keep_runs"])),
        tolerances=parse_tolerances(config.getini(TOLERANCES_INI) or []),
        trackers=read_trackers(config),
    )
