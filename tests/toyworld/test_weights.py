"""The weights manifest: what it records, and loading refusing files that differ from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pytest_ablation.models.pretrained import verified
from pytest_ablation.models.manifest import (
    MANIFEST,
    WeightsError,
    manifest_root,
    tensor_layout,
    verify_if_listed,
    verify_weights,
    write_manifest,
)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A weights tree of two components, like the toy world's, with its manifest."""
    root = tmp_path / "weights"
    (root / "t2i" / "unet").mkdir(parents=True)
    (root / "judge").mkdir()
    save_file(
        {"conv.weight": torch.ones(4, 3, 3, 3), "conv.bias": torch.zeros(4)},
        str(root / "t2i" / "unet" / "model.safetensors"),
    )
    save_file({"proj": torch.arange(6.0).reshape(2, 3)}, str(root / "judge" / "judge.safetensors"))
    (root / "t2i" / "unet" / "config.json").write_text("{}")
    write_manifest(root)
    return root


def test_the_manifest_lists_every_weight_file_with_hash_and_tensor_shapes(weights):
    manifest = json.loads((weights / MANIFEST).read_text())
    assert set(manifest["files"]) == {"judge/judge.safetensors", "t2i/unet/model.safetensors"}
    entry = manifest["files"]["t2i/unet/model.safetensors"]
    assert entry["tensors"]["conv.weight"] == {"dtype": "F32", "shape": [4, 3, 3, 3]}
    assert entry["tensors"]["conv.bias"]["shape"] == [4]
    assert len(entry["sha256"]) == 64
    assert entry["bytes"] == (weights / "t2i/unet/model.safetensors").stat().st_size


def test_untouched_files_verify_as_a_tree_a_folder_or_one_file(weights):
    assert len(verify_weights(weights)) == 2
    assert verify_weights(weights / "t2i") == [weights / "t2i/unet/model.safetensors"]
    assert verify_weights(weights / "judge/judge.safetensors") == [weights / "judge/judge.safetensors"]
    assert manifest_root(weights / "t2i" / "unet") == weights.resolve()


def test_one_changed_byte_is_a_hash_error_naming_the_file(weights):
    path = weights / "judge" / "judge.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte belongs to the tensor data, not the header
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"judge\.safetensors.*expected sha256 [0-9a-f]{64}, got"):
        verify_weights(weights)
    # The other component is still fine on its own.
    assert verify_weights(weights / "t2i")


def test_a_replaced_file_with_another_shape_names_the_tensor_and_both_shapes(weights):
    path = weights / "t2i" / "unet" / "model.safetensors"
    save_file({"conv.weight": torch.ones(8, 3, 3, 3), "conv.bias": torch.zeros(4)}, str(path))
    with pytest.raises(WeightsError) as caught:
        verify_weights(weights / "t2i" / "unet")
    message = str(caught.value)
    assert "model.safetensors" in message and "'conv.weight'" in message
    assert "[8, 3, 3, 3]" in message and "[4, 3, 3, 3]" in message


def test_a_missing_and_an_unlisted_file_are_errors(weights):
    stray = weights / "t2i" / "unet" / "extra.safetensors"
    save_file({"x": torch.zeros(1)}, str(stray))
    with pytest.raises(WeightsError, match="extra.safetensors: not listed"):
        verify_weights(weights / "t2i")
    stray.unlink()
    (weights / "judge" / "judge.safetensors").unlink()
    with pytest.raises(WeightsError, match="judge.safetensors: missing"):
        verify_weights(weights)


def test_a_tree_without_a_manifest_is_left_alone_by_the_loaders(tmp_path, weights):
    plain = tmp_path / "elsewhere"
    plain.mkdir()
    save_file({"x": torch.zeros(1)}, str(plain / "model.safetensors"))
    assert verify_if_listed(plain) == []
    assert verified(str(plain)) == str(plain)
    with pytest.raises(WeightsError, match="no manifest.json"):
        verify_weights(plain)


def test_the_loaders_check_a_local_source_inside_a_manifest_tree(weights):
    from pytest_ablation.models import load_model as load
    from pytest_ablation.profiles import ModelSpec

    path = weights / "judge" / "judge.safetensors"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    spec = ModelSpec(role="clip", kind="open-clip", source=str(path), options={"name": "pytest-ablation-tiny"})
    with pytest.raises(WeightsError, match="judge.safetensors"):
        load(spec, "cpu")


def test_a_file_that_is_not_safetensors_is_reported(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x05\x00")
    with pytest.raises(WeightsError, match="not a safetensors file"):
        tensor_layout(path)
