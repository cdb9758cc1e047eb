"""The wheel ships the plugin and the toy world's trained weights, and none of the code that
trains them (the repository's ``toyworld`` development package stays out)."""

from __future__ import annotations

import importlib.util
import json
import re
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
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ablation-cache",
    ".benchmarks",
    ".venv",
    "reports",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the repository.

    Offline: no dependencies, no build isolation (setuptools comes with the ``test`` extra),
    no index. The copy keeps the build's ``build/`` and ``*.egg-info`` out of the tree.
    """
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail("setuptools is missing: install the test extra (pip install -e '.[test]')")
    source = tmp_path_factory.mktemp("source") / "pytest-ablation"
    shutil.copytree(REPOSITORY, source, ignore=NOT_COPIED)
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--quiet",
        "--wheel-dir",
        str(out),
        str(source),
    ]
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    wheels = sorted(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_files(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def wheel_metadata(wheel, wheel_files):
    from email.parser import Parser

    name = next(n for n in wheel_files if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as archive:
        return Parser().parsestr(archive.read(name).decode("utf-8"))


def test_the_wheel_is_typed_and_licensed(wheel_files, wheel_metadata):
    assert "pytest_ablation/py.typed" in wheel_files
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in wheel_files), [
        n for n in wheel_files if ".dist-info/" in n
    ]
    classifiers = wheel_metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)} <= set(classifiers)


def test_the_base_install_requires_only_what_the_package_imports(wheel_metadata):
    # hypothesis is for the tests: the package never imports it, and a base install must
    # not bring its pytest plugin into every other project's runs.
    base = [req.split(";")[0] for req in wheel_metadata.get_all("Requires-Dist") if "extra ==" not in req]
    names = {re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].strip().lower() for req in base}
    assert "hypothesis" not in names
    import_names = {
        "pytest-xdist": "xdist",
        "open_clip_torch": "open_clip",
        "opencv-python-headless": "cv2",
        "pillow": "PIL",
        "tomli": "tomli",
    }
    package = Path(__file__).resolve().parents[1] / "pytest_ablation"
    source = "\n".join(path.read_text(encoding="utf-8") for path in package.rglob("*.py"))
    for name in names:
        module = import_names.get(name, name)
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.MULTILINE), (
            f"{name} is a base requirement the package never imports"
        )
    extras = {
        req.split("extra ==")[1].strip().strip("'\"")
        for req in wheel_metadata.get_all("Requires-Dist")
        if "extra ==" in req
    }
    assert {"test", "submit", "wandb", "mlflow", "vbench"} <= extras


def test_the_wheel_holds_only_the_plugin_package(wheel_files):
    top_level = {PurePosixPath(name).parts[0] for name in wheel_files}
    assert "toyworld" not in top_level and "tests" not in top_level
    assert {part for part in top_level if not part.endswith(".dist-info")} == {"pytest_ablation"}


def test_the_wheel_holds_no_training_module(wheel_files):
    shipped = [
        name
        for name in wheel_files
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
    missing = sorted(f"{package}/weights/{name}" for name in listed if f"{package}/weights/{name}" not in files)
    assert not missing, f"weight files left out of the wheel: {missing}"
    assert sum(name.endswith(".safetensors") for name in files) == len(listed)
