"""The wheel ships the plugin and the toy world's trained weights, and none of the code that
trains them (the repository's ``toyworld`` development package stays out)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.models.manifest import MANIFEST

REPOSITORY = Path(__file__).resolve().parents[1]
TRAINING_MODULES = ("judge", "text_clip", "vae", "t2i", "i2v", "train", "training", "quality")
# What a copy of the tree leaves behind: version control, build and run outputs.
NOT_COPIED = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ablation-cache", ".benchmarks", ".venv", "reports",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    """The file list of the wheel ``pip wheel`` builds from a copy of the repository.

    Offline: no dependencies, no build isolation (setuptools comes with the ``test`` extra),
    no index. The copy keeps the build's ``build/`` and ``*.egg-info`` out of the tree.
    """
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail("setuptools is missing: install the test extra (pip install -e '.[test]')")
    source = tmp_path_factory.mktemp("source") / "pytest-ablation"
    shutil.copytree(REPOSITORY, source, ignore=NOT_COPIED)
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--quiet", "--wheel-dir", str(out), str(source),
    ]
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    wheels = sorted(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        return archive.namelist()


def test_the_wheel_holds_only_the_plugin_package(wheel_files):
    top_level = {PurePosixPath(name).parts[0] for name in wheel_files}
    assert "toyworld" not in top_level and "tests" not in top_level
    assert {part for part in top_level if not part.endswith(".dist-info")} == {"pytest_ablation"}


def test_the_wheel_holds_no_training_module(wheel_files):
    shipped = [
        name for name in wheel_files
        if PurePosixPath(name).suffix == ".py" and PurePosixPath(name).stem in TRAINING_MODULES
    ]
    assert not shipped, f"training code in the wheel: {shipped}"


def test_the_wheel_holds_the_scenes_and_every_listed_weight_file(wheel_files):
    files = set(wheel_files)
    package = "pytest_ablation/toyworld"
    assert {f"{package}/__init__.py", f"{package}/data.py"} <= files
    assert "pytest_ablation/models/manifest.py" in files
    assert f"{package}/weights/{MANIFEST}" in files
    listed = json.loads((WEIGHTS_DIR / MANIFEST).read_text(encoding="utf-8"))["files"]
    assert listed, "the manifest lists no weight files"
    missing = sorted(f"{package}/weights/{name}" for name in listed if
                     f"{package}/weights/{name}" not in files)
    assert not missing, f"weight files left out of the wheel: {missing}"
    assert sum(name.endswith(".safetensors") for name in files) == len(listed)
