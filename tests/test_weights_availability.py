"""The start-up check of a profile's real checkpoints: looked up in the local caches with no
network call, a line per missing role, and a stop before anything loads when they cannot be
fetched."""

import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest

from pytest_ablation.models.availability import hub_reachable, missing_weights
from pytest_ablation.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]


def cache_a_repo(cache: Path, repo: str, filename: str) -> None:
    """The layout huggingface_hub writes: a ref naming a snapshot that holds the file."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_text("{}")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_every_missing_role_is_one_line_and_a_cached_one_is_not(hub_cache):
    profile = load_profile("sd15")
    lines = missing_weights(profile.models.values())
    assert [line.split(":", 1)[0] for line in lines] == ["models.sd", "models.svd", "models.clip"]
    cache_a_repo(hub_cache, profile.models["sd"].source, "model_index.json")
    cache_a_repo(hub_cache, "timm/vit_large_patch14_clip_224.openai", "open_clip_pytorch_model.bin")
    lines = missing_weights(profile.models.values())
    assert [line.split(":", 1)[0] for line in lines] == ["models.svd"]
    assert "huggingface-cli download stabilityai/stable-video-diffusion-img2vid-xt" in lines[0]


def test_local_and_in_process_models_are_never_missing(hub_cache):
    for name in ("tiny", "toy"):
        assert missing_weights(load_profile(name).models.values()) == []


def test_an_unreachable_hub_is_told_within_seconds(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    started = time.monotonic()
    assert hub_reachable(seconds=2.0) is False
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_paper_scale_run_without_its_weights_stops_at_start_up_in_a_few_lines(tmp_path):
    env = {**__import__("os").environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "ablations/test_zs2_tma.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ablation-profile=sd15",
            f"--ablation-report-dir={tmp_path / 'reports'}",
            f"--ablation-cache-dir={tmp_path / 'cache'}",
            f"--rootdir={REPO}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "needs weights that are not on this machine, and HF_HUB_OFFLINE is set" in done.stderr
    missing = [line.strip().split(":", 1)[0] for line in done.stderr.splitlines() if line.startswith("  models.")]
    assert missing == ["models.clip", "models.sd"]  # the TMA study loads no SVD
    assert "Traceback" not in output
    import torch

    if not torch.cuda.is_available():
        assert "ablation: warning: this run has no GPU, and profile 'sd15' loads 'sd', 'svd' in half" in " ".join(
            done.stdout.split()
        )
    assert len(output.splitlines()) < 20
    assert time.monotonic() - started < 120
    assert not (tmp_path / "cache").exists()
