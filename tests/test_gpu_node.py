"""The GPU check on an offline node: scripts/gpu-wheels' folder and scripts/gpu-check.

The node is simulated by a venv of this machine's base Python that holds only the packages a
cluster node is taken to have (torch, transformers, timm, pytest, pytest-xdist, hypothesis,
safetensors, opencv, matplotlib and what they need), linked from this venv: no diffusers, no
open_clip, no pytest-ablation. The folder must install the project into it with
``--no-index``; what the project then imports must come from the folder or from those
packages, nothing else. Building the folder needs the package index: those tests run with
PYTEST_ABLATION_INDEX_TESTS=1 (skipped otherwise, or without the index).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from report_files import report_of

ROOT = Path(__file__).resolve().parent.parent
NODE_HAS = [
    "torch",
    "transformers",
    "timm",
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "safetensors",
    "opencv-python-headless",
    "matplotlib",
]
CUDA_STACK = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia[-_].*|cuda[-_].*)-")
NO_GPU_LINE = re.compile(r"^gpu-check: no GPU: torch \S+ \(CUDA build \S+\) sees no CUDA GPU; .+$")


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def wheel_name(path: Path) -> str:
    return canonicalize_name(path.name.split("-")[0])


def index_unreachable() -> str | None:
    """Why the package index cannot be reached, or None when it can."""
    configured = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"], capture_output=True, text=True
    )
    index = os.environ.get("PIP_INDEX_URL") or configured.stdout.strip() or "https://pypi.org/simple"
    url = index.rstrip("/") + "/diffusers/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read(1)
    except Exception as error:  # noqa: BLE001 - any failure means: no index here
        return f"the package index cannot be reached ({url}: {error}); scripts/gpu-wheels needs it"
    return None


def node_distributions() -> dict[str, metadata.Distribution]:
    """NODE_HAS and everything they need, as installed in this venv."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    seen: dict[str, metadata.Distribution] = {}
    todo = [(canonicalize_name(name), "") for name in NODE_HAS]
    done: set[tuple[str, str]] = set()
    while todo:
        name, extra = todo.pop()
        if (name, extra) in done or name not in installed:
            continue
        done.add((name, extra))
        seen[name] = installed[name]
        for text in installed[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                todo.append((canonicalize_name(requirement.name), ""))
                todo += [(canonicalize_name(requirement.name), e) for e in requirement.extras]
    return seen


def link_node_packages(site: Path) -> None:
    """Link NODE_HAS and what they need (and pip: a node's Python has it) from this venv."""
    ours = Path(metadata.distribution("torch").locate_file(""))
    dists = {**node_distributions(), "pip": metadata.distribution("pip")}
    for dist in dists.values():
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            if (ours / top).exists() and not (site / top).exists():
                (site / top).symlink_to(ours / top)


def python_paths(python: Path, cwd: Path) -> dict:
    done = subprocess.run(
        [
            str(python),
            "-c",
            "import json, sys, sysconfig; print(json.dumps("
            "{'purelib': sysconfig.get_paths()['purelib'], 'venv': sys.prefix != sys.base_prefix}))",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module", params=["installation", "venv"])
def node_python(request, tmp_path_factory) -> Path:
    """The node's Python: a Python installation whose site-packages hold the node's packages
    only, or a venv holding them over an installation that has none (then the check's venv
    reaches them through a .pth file, not --system-site-packages). The installation is this
    machine's base interpreter with its standard library, but a site-packages of its own."""
    work = tmp_path_factory.mktemp(f"node-{request.param}")
    base = Path(sys._base_executable).resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    prefix = work / "installation"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / version / "site-packages").mkdir(parents=True)
    shutil.copy2(base, prefix / "bin" / version)
    (prefix / "bin" / "python3").symlink_to(version)
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            (prefix / "lib" / version / entry.name).symlink_to(entry)
    for library in stdlib.parent.glob("libpython*"):
        (prefix / "lib" / library.name).symlink_to(library)
    python = prefix / "bin" / "python3"
    paths = python_paths(python, work)
    if paths["venv"] or Path(paths["purelib"]) != prefix / "lib" / version / "site-packages":
        pytest.skip(f"a copy of {base} does not make a Python installation of its own here: {paths}")
    if request.param == "installation":
        link_node_packages(prefix / "lib" / version / "site-packages")
    else:
        node = work / "venv"
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(node)], check=True, timeout=120, cwd=work)
        python = node / "bin" / "python"
        link_node_packages(Path(python_paths(python, work)["purelib"]))
    probe = subprocess.run(
        [
            str(python),
            "-c",
            (
                "import importlib.util as u, torch, transformers, timm, pytest, xdist, cv2, matplotlib, pip; "
                "print([m for m in ('diffusers', 'open_clip', 'pytest_ablation', 'tabulate', 'ftfy', 'requests') "
                "if u.find_spec(m)])"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.strip() == "[]", f"the stand-in node already has {probe.stdout.strip()}"
    return python


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # Two minutes of downloads and installs, and a package index that a test run cannot count
    # on: asked for by name (README: The GPU check), not part of every run.
    if os.environ.get("PYTEST_ABLATION_INDEX_TESTS") != "1":
        pytest.skip("builds the GPU node's folder from the package index: set PYTEST_ABLATION_INDEX_TESTS=1 to run it")
    reason = index_unreachable()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("gpu-wheels")
    out = work / "gpu-node"
    done = subprocess.run(
        [sys.executable, "scripts/gpu-wheels", "--out", str(out), "--cache-dir", str(work / "pip-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"gpu-wheels: .*gpu-node: \d+ wheels and the check's files, [\d.]+ MiB", done.stdout), done.stdout
    return out


@pytest.mark.slow
def test_the_folder_holds_the_project_and_what_the_node_lacks_and_no_cuda_stack(folder):
    wheels = sorted(folder.glob("*.whl"))
    names = {wheel_name(path): path for path in wheels}
    assert {"pytest-ablation", "diffusers", "open-clip-torch", "tabulate", "ftfy"} <= names.keys(), sorted(names)
    pins = constraint_pins()
    for name in ("diffusers", "open-clip-torch"):
        assert names[name].name.split("-")[1] == pins[name], (names[name].name, pins[name])
    assert not [p.name for p in wheels if CUDA_STACK.match(p.name)]
    node = {
        canonicalize_name(n)
        for n in (
            "torch",
            "transformers",
            "timm",
            "pytest",
            "hypothesis",
            "numpy",
            "huggingface-hub",
            "safetensors",
            "matplotlib",
            "pillow",
        )
    }
    assert not node & names.keys(), "the node's own packages must not be in the folder"
    # Small: the project's wheel (mostly the toy world's weights) and a few pure-Python wheels.
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 48 * 2**20, total
    with zipfile.ZipFile(names["pytest-ablation"]) as wheel:
        assert "pytest_ablation/harness/plugin.py" in wheel.namelist()
    for relative in (
        "gpu-check",
        "repo/scripts/gpu-check",
        "repo/tests/gpu/test_gpu.py",
        "repo/tests/gpu/conftest.py",
        "repo/tests/conftest.py",
        "repo/benchmarks/bench_gpu.py",
        "repo/ablations/test_zs2_tma.py",
        "repo/ablations/conftest.py",
        "repo/pyproject.toml",
        "repo/conftest.py",
        "MANIFEST.txt",
    ):
        assert (folder / relative).is_file(), relative
    assert os.access(folder / "gpu-check", os.X_OK) and os.access(folder / "repo/scripts/gpu-check", os.X_OK)
    # The installed wheel is what the check tests: the copy holds no package source.
    assert not (folder / "repo" / "pytest_ablation").exists()


@pytest.mark.slow
def test_the_folder_installs_offline_on_the_node_and_the_plugin_runs_a_study(folder, node_python, tmp_path, request):
    venv, results = tmp_path / "venv", tmp_path / "results"
    done = subprocess.run(
        [
            str(folder / "gpu-check"),
            "--python",
            str(node_python),
            "--venv",
            str(venv),
            "--results",
            str(results),
            "--budget",
            "300",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    steps = {row["step"]: row for row in json.loads((results / "summary.json").read_text())["steps"]}
    install_log = (results / "install.log").read_text()
    assert steps["install"]["status"] == "ok", install_log[-3000:]
    assert "--no-index --find-links" in install_log
    (installed,) = [line for line in install_log.splitlines() if line.startswith("Successfully installed ")]
    installed = {canonicalize_name(item.rsplit("-", 1)[0]) for item in installed.split()[2:]}
    # Every wheel of the folder was needed, and used: the node lacked each of them.
    assert installed == {wheel_name(path) for path in folder.glob("*.whl")}, installed
    assert "Downloading" not in install_log  # nothing came from anywhere but the folder
    # No GPU here: the check stops there, saying so, with its summary written.
    assert done.returncode == 1 and steps["gpu"]["status"] == "failed"
    assert steps["tests"]["status"] == steps["benchmark"]["status"] == "not run"

    # Everything the project needs resolves to the check's venv (from the folder) or the node's
    # packages: none comes from the base Python this machine's venvs are made of.
    python = venv / "bin" / "python"
    where = subprocess.run(
        [
            str(python),
            "-c",
            """
import importlib.metadata as md, json, re
from packaging.requirements import Requirement
seen, todo = {}, ["pytest-ablation"]
while todo:
    name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
    if name in seen:
        continue
    dist = md.distribution(name)
    seen[name] = str(dist.locate_file(""))
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            todo.append(requirement.name)
print(json.dumps(seen))
""",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    locations = json.loads(where.stdout)
    node_site = str(Path(metadata.distribution("torch").locate_file("")))  # linked into the node
    venv_site = next(str(p) for p in (venv / "lib").glob("python3*/site-packages"))
    node_own = next(str(p) for p in (node_python.parent.parent / "lib").glob("python3*/site-packages"))
    assert locations["diffusers"] == locations["open-clip-torch"] == locations["pytest-ablation"] == venv_site
    assert locations["torch"] == node_own  # the node's torch, reused, not installed again
    strays = {name: path for name, path in locations.items() if path not in (venv_site, node_own, node_site)}
    assert not strays, strays
    assert not list(Path(venv_site).glob("torch-*.dist-info"))

    if request.node.callspec.params["node_python"] != "installation":
        return
    # And the installed plugin runs a study (on the CPU), from the folder's copy of the tree.
    study = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "ablations/test_zs2_tma.py::test_tma[mu=0.98]",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ablation-devices=cpu",
            f"--ablation-cache-dir={tmp_path / 'cache'}",
            f"--ablation-report-dir={tmp_path / 'report'}",
        ],
        cwd=folder / "repo",
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-2000:]
    report = report_of(tmp_path, "report")
    assert report["environment"]["packages"]["diffusers"] == constraint_pins()["diffusers"]
    assert [s["study"] for s in report["studies"]] == ["zs2-tma"]


@pytest.mark.slow
def test_gpu_check_without_a_gpu_fails_in_one_line_and_still_writes_its_summary(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    results = tmp_path / "results"
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu-check"), "--results", str(results), "--python", sys.executable],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    reasons = [line for line in done.stdout.splitlines() if line.startswith("gpu-check: no GPU")]
    assert len(reasons) == 1 and NO_GPU_LINE.match(reasons[0]), done.stdout
    assert done.stdout.rstrip().endswith("gpu-check: FAILED (gpu, tests, benchmark)")
    summary = json.loads((results / "summary.json").read_text())
    assert summary["passed"] is False and summary["gpu"] == reasons[0]
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [
        ("gpu", "failed"),
        ("tests", "not run"),
        ("benchmark", "not run"),
    ]
    assert (results / "summary.txt").read_text().splitlines()[-1] == "gpu-check: FAILED (gpu, tests, benchmark)"


FAKE_PYTHON = r"""#!/usr/bin/env bash
# Stands in for the check's Python: a GPU that "is there", GPU tests with one failure, and a
# benchmark that writes its first figures and then runs past its time limit; anything else
# (the summary) goes to the real Python.
case "$1" in
    -c) echo "gpu-check: 1 GPU(s): Stand-in GPU (80 GiB); torch 0, CUDA 0" ;;
    -m)
        for arg; do case $arg in --junitxml=*) junit=${arg#*=} ;; esac; done
        cat >"$junit" <<'XML'
<testsuites><testsuite name="pytest" tests="2"><testcase classname="tests.gpu.test_gpu" name="test_a" time="1"/><testcase classname="tests.gpu.test_gpu" name="test_b" time="1"><failure message="boom">boom</failure></testcase></testsuite></testsuites>
XML
        echo "tests/gpu/test_gpu.py::test_b FAILED"; exit 1 ;;
    benchmarks/bench_gpu.py)
        while (($#)); do [[ $1 == --json ]] && json=$2; shift; done
        cat >"$json" <<'JSON'
{"device_name": "Stand-in GPU", "size": "paper", "steps": 4, "videos": 4, "batch": 2, "errors": [],
 "figures": [{"method": "zs2", "dtype": "float16", "unet_only_s": 0.5, "videos_per_s_batch1": 1.0,
              "videos_per_s_batched": 1.6, "batch": 2, "peak_memory": "9.00 GiB", "harness_s": 2.1,
              "harness_overhead": 0.05, "harness_dtype": "float16"}]}
JSON
        echo "zs2: measured"; exec sleep 120 ;;
    *) exec REAL_PYTHON "$@" ;;
esac
"""


@pytest.mark.slow
@pytest.mark.slow
def test_gpu_check_runs_every_step_within_its_budget_and_reports_what_it_measured(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.replace("REAL_PYTHON", sys.executable))
    fake.chmod(0o755)
    results = tmp_path / "results"
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu-check"), "--python", str(fake), "--results", str(results), "--budget", "30"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    # The benchmark ran although the tests failed, and was stopped at the budget's end.
    assert elapsed < 30 + 5, elapsed
    summary = json.loads((results / "summary.json").read_text())
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [
        ("gpu", "ok"),
        ("tests", "failed"),
        ("benchmark", "timeout"),
    ]
    assert summary["tests"]["counts"] == {"passed": 1, "failure": 1, "error": 0, "skipped": 0}
    text = (results / "summary.txt").read_text()
    assert "failure: tests.gpu.test_gpu::test_b" in text
    assert "zs2: unet-only floor 0.500 s/video (float16); batch 2 x1.60 over batch 1; peak memory 9.00 GiB" in text
    assert "overhead +5.0% over the UNet floor (harness float16, floor float16)" in text
    assert text.splitlines()[-1] == "gpu-check: FAILED (tests, benchmark)"
    assert "zs2: measured" in (results / "bench.txt").read_text()
    assert text in done.stdout
