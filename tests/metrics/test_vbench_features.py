"""VBench's subject_consistency (DINO ViT-B/16), background_consistency (CLIP ViT-B/32) and
aesthetic_quality (LAION head on CLIP ViT-L/14).

The models have random weights (seeded), saved in the formats users hold; each metric must
equal VBench's computation written out below from VBench's code (vbench/utils.py transforms,
the dimension modules' loops), calling the models directly. The loaders must give back the
saved function; missing weights must stop a study at collection, naming the variable.
"""

from __future__ import annotations

import math
import textwrap
import warnings

import numpy as np
import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F
from numerics import assert_same_function_output
from safetensors.torch import save_file
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

from pytest_ablation.metrics import (
    MetricInput,
    background_consistency,
    background_consistency_per_frame,
    get_metric,
    subject_consistency,
    subject_consistency_per_frame,
)
from pytest_ablation.metrics.backends import clip_vit, dino, laion_aesthetic
from report_files import report_of, result_rows

DINO_VAR = "PYTEST_ABLATION_WEIGHTS_DINO_VITB16"
CLIP_B32_VAR = "PYTEST_ABLATION_WEIGHTS_CLIP_VITB32"
CLIP_L14_VAR = "PYTEST_ABLATION_WEIGHTS_CLIP_VITL14"
AESTHETIC_VAR = "PYTEST_ABLATION_WEIGHTS_LAION_AESTHETIC"

# Same weights, same inputs, but VBench encodes one frame at a time where the metrics batch
# frames: a cosine then moves in its last float32 bits (~1e-7), far below this.
SAME_SCORE = 1e-5


# -- VBench's computation, written out --------------------------------------------------------


def decoded(video: torch.Tensor) -> torch.Tensor:
    """What VBench's load_video returns for a file holding these frames: the decoded uint8
    frames wrapped by ``torch.Tensor``, i.e. float32 values 0-255, (F, 3, H, W)."""
    levels = (video * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return torch.Tensor(np.array(levels)).permute(0, 3, 1, 2)


VBENCH_DINO_TRANSFORM = Compose(
    [  # vbench/utils.py dino_transform(224)
        Resize(size=224, antialias=False),
        Lambda(lambda x: x.float().div(255.0)),
        Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ]
)
VBENCH_CLIP_TRANSFORM = Compose(
    [  # vbench/utils.py clip_transform(224)
        Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False),
        CenterCrop(224),
        Lambda(lambda x: x.float().div(255.0)),
        Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ]
)


def vbench_consistency(features: list[torch.Tensor]) -> tuple[float, list[float]]:
    """VBench's per-video loop over (1, D) frame features: each later frame's clamped
    cosines to the previous and the first frame, averaged; the sum over F - 1."""
    total, scores = 0.0, []
    first = previous = None
    for index, feature in enumerate(features):
        feature = F.normalize(feature, dim=-1, p=2)
        if index == 0:
            first = feature
        else:
            to_previous = max(0.0, F.cosine_similarity(previous, feature).item())
            to_first = max(0.0, F.cosine_similarity(first, feature).item())
            scores.append((to_previous + to_first) / 2)
            total += scores[-1]
        previous = feature
    return total / (len(features) - 1), scores


def dino_forward(vit: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """facebookresearch/dino's VisionTransformer.forward on timm's modules (same names):
    patch tokens, [CLS], position embeddings stretched to the grid when it is not 14x14
    (bicubic with scale factor (n + 0.1) / 14), blocks, final norm, the [CLS] token."""
    _, _, height, width = x.shape
    tokens = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tokens = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), tokens), dim=1)
    n = vit.pos_embed.shape[1] - 1
    if tokens.shape[1] - 1 == n and width == height:
        pos = vit.pos_embed
    else:
        side = math.sqrt(n)
        rows, cols = height // 16 + 0.1, width // 16 + 0.1
        grid = vit.pos_embed[:, 1:].reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=(rows / side, cols / side), mode="bicubic")
        assert grid.shape[-2:] == (int(rows), int(cols))
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, grid.shape[1])
        pos = torch.cat((vit.pos_embed[:, :1], grid), dim=1)
    tokens = tokens + pos
    for block in vit.blocks:
        tokens = block(tokens)
    return vit.norm(tokens)[:, 0]


def vbench_subject_consistency(vit, video: torch.Tensor) -> tuple[float, list[float]]:
    images = VBENCH_DINO_TRANSFORM(decoded(video))
    with torch.no_grad():  # one frame at a time, as VBench
        features = [dino_forward(vit, images[i].unsqueeze(0)) for i in range(len(images))]
    return vbench_consistency(features)


def vbench_background_consistency(clip, video: torch.Tensor) -> tuple[float, list[float]]:
    images = VBENCH_CLIP_TRANSFORM(decoded(video))
    with torch.no_grad():  # all frames in one batch, as VBench
        features = clip.encode_image(images)
    return vbench_consistency([features[i].unsqueeze(0) for i in range(len(features))])


def vbench_aesthetic(clip: torch.nn.Module, head: torch.nn.Linear, video: torch.Tensor):
    images = VBENCH_CLIP_TRANSFORM(decoded(video))
    with torch.no_grad():
        features = F.normalize(clip.encode_image(images).to(torch.float32), dim=-1, p=2)
        per_frame = head(features).squeeze(dim=-1) / 10
    return torch.mean(per_frame, dim=0, keepdim=True).item(), per_frame


# -- random-weight models, saved as users have them --------------------------------------------


def _seeded(seed: int, build):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


@pytest.fixture(scope="session")
def dino_vit():
    vit = _seeded(0, lambda: timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0))
    return vit.eval()


@pytest.fixture(scope="session")
def dino_file(dino_vit, tmp_path_factory):
    # facebookresearch's dino_vitbase16_pretrain.pth: a plain state dict.
    path = tmp_path_factory.mktemp("dino") / "dino_vitbase16_pretrain.pth"
    torch.save(dino_vit.state_dict(), path)
    return path


def _open_clip(arch: str, seed: int) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _seeded(seed, lambda: open_clip.create_model(arch, pretrained=None, force_quick_gelu=True))
    return model.eval()


@pytest.fixture(scope="session")
def clip_b32():
    return _open_clip("ViT-B-32", 1)


@pytest.fixture(scope="session")
def clip_b32_file(clip_b32, tmp_path_factory):
    # open_clip's open_clip_pytorch_model.bin: the OpenAI-layout state dict.
    path = tmp_path_factory.mktemp("clip") / "open_clip_pytorch_model.bin"
    torch.save(clip_b32.state_dict(), path)
    return path


@pytest.fixture
def dino_weights(dino_file, monkeypatch):
    monkeypatch.setenv(DINO_VAR, str(dino_file))
    return dino_file


@pytest.fixture
def clip_b32_weights(clip_b32_file, monkeypatch):
    monkeypatch.setenv(CLIP_B32_VAR, str(clip_b32_file))
    return clip_b32_file


# -- the metrics equal VBench's computation ------------------------------------------------------


@pytest.mark.slow
def test_subject_consistency_is_vbenchs_on_square_frames(dino_vit, dino_weights, videos):
    video = videos.noise(frames=4, height=64, width=64, seed=3)
    expected, expected_per_frame = vbench_subject_consistency(dino_vit, video)
    # On 224x224 DINO's forward is timm's: the reference's own forward is checked against it.
    x = VBENCH_DINO_TRANSFORM(decoded(video[:1]))
    with torch.no_grad():
        assert_same_function_output(dino_forward(dino_vit, x), dino_vit(x), "DINO forward")
    score = get_metric("subject_consistency").evaluate(MetricInput(video))
    assert score.value == pytest.approx(expected, abs=SAME_SCORE)
    assert score.per_frame == pytest.approx(expected_per_frame, abs=SAME_SCORE)
    assert len(score.per_frame) == 3


@pytest.mark.slow
def test_subject_consistency_is_vbenchs_on_frames_it_does_not_crop(dino_vit, dino_weights, videos):
    # 48x80 becomes 224x373: VBench keeps the aspect ratio, the 14x23 patch grid needs
    # DINO's stretched position embeddings, and the last 5 columns fall outside the patches.
    video = videos.fade(frames=3, height=48, width=80, seed=5)
    assert VBENCH_DINO_TRANSFORM(decoded(video)).shape[-2:] == (224, 373)
    expected, expected_per_frame = vbench_subject_consistency(dino_vit, video)
    assert subject_consistency(video) == pytest.approx(expected, abs=SAME_SCORE)
    assert subject_consistency_per_frame(video) == pytest.approx(expected_per_frame, abs=SAME_SCORE)


def test_background_consistency_is_vbenchs(clip_b32, clip_b32_weights, videos):
    # Larger than 224 and not square: downscaled without antialiasing, then centre-cropped.
    video = videos.noise(frames=4, height=240, width=320, seed=7)
    expected, expected_per_frame = vbench_background_consistency(clip_b32, video)
    assert background_consistency(video) == pytest.approx(expected, abs=SAME_SCORE)
    per_frame = background_consistency_per_frame(video)
    assert per_frame == pytest.approx(expected_per_frame, abs=SAME_SCORE)


def test_resizing_runs_on_unrounded_floats_as_in_vbench(videos):
    # VBench's frames are float32 0-255 when resized, so bicubic overshoot survives past
    # 255 and below 0; resizing uint8 frames (or clamping) would cut it off.
    from pytest_ablation.metrics import vbench

    video = videos.noise(frames=2, height=32, width=32, seed=1)
    frames = MetricInput(video).uint8_frames
    ours = vbench.clip_input(frames)
    assert_same_function_output(ours, VBENCH_CLIP_TRANSFORM(decoded(video)), "CLIP input")
    top = (255 / 255 - 0.48145466) / 0.26862954  # red channel of a white pixel
    assert float(ours[:, 0].max()) > top + 0.05
    expected = VBENCH_DINO_TRANSFORM(decoded(video))
    assert_same_function_output(vbench.dino_input(frames), expected, "DINO input")


@pytest.mark.slow
@pytest.mark.slow
def test_aesthetic_quality_is_the_laion_head_on_normalised_vit_l14_features_over_10(tmp_path, monkeypatch, videos):
    from pytest_ablation.metrics import aesthetic_quality_per_frame

    clip = _open_clip("ViT-L-14", 2)
    # OpenAI released its weights in float16: save them so (half the disk), and give the
    # in-memory model the same rounded values.
    with torch.no_grad():
        for tensor in clip.state_dict().values():
            tensor.copy_(tensor.half().float())
    clip_path = tmp_path / "ViT-L-14.pt"
    torch.save({k: v.half() for k, v in clip.state_dict().items()}, clip_path)
    head = _seeded(3, lambda: torch.nn.Linear(768, 1))
    with torch.no_grad():  # ratings around LAION's scale (~5 +- 1) rather than ~0
        head.weight.normal_(0, 1, generator=torch.Generator().manual_seed(4))
        head.bias.fill_(5.0)
    head_path = tmp_path / "sa_0_4_vit_l_14_linear.pth"
    torch.save(head.state_dict(), head_path)
    monkeypatch.setenv(CLIP_L14_VAR, str(clip_path))
    monkeypatch.setenv(AESTHETIC_VAR, str(head_path))

    video = videos.noise(frames=3, height=64, width=64, seed=11)
    expected, expected_per_frame = vbench_aesthetic(clip, head, video)
    score = get_metric("aesthetic_quality").evaluate(MetricInput(video))
    assert score.value == pytest.approx(expected, abs=SAME_SCORE)
    assert score.per_frame == pytest.approx(expected_per_frame.tolist(), abs=SAME_SCORE)
    per_frame = aesthetic_quality_per_frame(video)
    assert per_frame == pytest.approx(expected_per_frame.tolist(), abs=SAME_SCORE)
    # The comparison tells the steps apart: unnormalised features, or no /10, give other values.
    with torch.no_grad():
        raw = head(clip.encode_image(VBENCH_CLIP_TRANSFORM(decoded(video)))).squeeze(-1) / 10
    assert float((raw - expected_per_frame).abs().max()) > 100 * SAME_SCORE
    assert abs(score.value * 10 - expected) > 1.0


# -- properties ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_video_of_identical_frames_is_fully_consistent(dino_weights, clip_b32_weights, videos):
    video = videos.still(frames=4, height=64, width=64, seed=2)
    for metric in ("subject_consistency", "background_consistency"):
        score = get_metric(metric).evaluate(MetricInput(video))
        assert score.value == pytest.approx(1.0, abs=1e-6), metric
        assert score.per_frame == pytest.approx([1.0] * 3, abs=1e-6), metric


@pytest.mark.slow
def test_shuffling_frames_changes_subject_consistency(dino_weights, videos):
    # Two shots, A A B B; shuffled to A B A B the same frames cut at every step. With c the
    # cosine between the shots, the first scores (1 + c + (1 + c) / 2) / 3, the second
    # (c + (1 + c) / 2 + c) / 3: lower by (1 - c) / 3.
    a, b = videos.still(frames=2, seed=4), videos.still(frames=2, seed=8)
    two_shots = torch.cat([a, b])
    alternating = two_shots[[0, 2, 1, 3]]
    per_frame = subject_consistency_per_frame(two_shots)
    c = per_frame[1]  # the cut: (cos(A, B) + cos(A, B)) / 2
    assert c < 1 - 100 * SAME_SCORE
    assert subject_consistency(alternating) == pytest.approx(
        subject_consistency(two_shots) - (1 - c) / 3, abs=SAME_SCORE
    )


def test_consistency_needs_two_frames(dino_weights, videos):
    with pytest.raises(ValueError, match="subject_consistency"):
        subject_consistency(videos.still(frames=1))


# -- loaders ---------------------------------------------------------------------------------------


def _dino_features(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("layout", ["facebookresearch .pth", "timm safetensors", "training checkpoint"])
@pytest.mark.slow
def test_dino_loader_gives_back_the_saved_model(layout, dino_vit, tmp_path):
    state = {k: v.clone() for k, v in dino_vit.state_dict().items()}
    if layout == "timm safetensors":
        path = tmp_path / "model.safetensors"
        save_file(state, str(path))
    elif layout == "training checkpoint":
        # DINO's checkpoints wrap the backbone with its projection head under "teacher".
        path = tmp_path / "checkpoint.pth"
        teacher = {f"module.backbone.{k}": v for k, v in state.items()}
        teacher["module.head.last_layer.weight_g"] = torch.ones(65536, 1)
        torch.save({"teacher": teacher}, path)
    else:
        path = tmp_path / "dino_vitbase16_pretrain.pth"
        torch.save(state, path)
    loaded = dino.build(path, "cpu")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert_same_function_output(_dino_features(loaded, x), _dino_features(dino_vit, x), layout)


@pytest.mark.parametrize("layout", ["state dict", "safetensors", "TorchScript archive"])
@pytest.mark.slow
def test_clip_loader_gives_back_the_saved_model(layout, clip_b32, tmp_path):
    if layout == "safetensors":
        path = tmp_path / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in clip_b32.state_dict().items()}, str(path))
    elif layout == "TorchScript archive":
        # OpenAI's ViT-B-32.pt is a traced model; tracing's sanity check recompiles, skip it.
        path = tmp_path / "ViT-B-32.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace_module(
                clip_b32, {"encode_image": (torch.zeros(1, 3, 224, 224),)}, check_trace=False
            )
        traced.save(str(path))
    else:
        path = tmp_path / "open_clip_pytorch_model.bin"
        wrapped = {f"module.{k}": v for k, v in clip_b32.state_dict().items()}
        torch.save({"state_dict": wrapped}, path)
    loaded = clip_vit.build_vit_b32(path, "cpu")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_same_function_output(loaded(x), clip_b32.encode_image(x), layout)


def test_on_a_gpu_clip_runs_in_openais_half_precision_layout(clip_b32, clip_b32_file):
    # What clip.load gives VBench on a GPU: float16 convolutions, linear layers, attention
    # and projection, float32 LayerNorm parameters and embeddings; float32 on the CPU.
    assert clip_vit.half_precision("cuda:1") and not clip_vit.half_precision("cpu")
    half = clip_vit.load(clip_b32_file, "ViT-B-32", half=True)
    assert half.conv1.weight.dtype == torch.float16
    assert half.proj.dtype == torch.float16
    block = half.transformer.resblocks[0]
    assert block.attn.in_proj_weight.dtype == torch.float16
    assert block.mlp.c_fc.weight.dtype == torch.float16
    assert half.ln_pre.weight.dtype == torch.float32
    assert half.class_embedding.dtype == torch.float32
    assert torch.equal(half.conv1.weight, clip_b32.visual.conv1.weight.half())
    assert type(half.ln_pre).__name__ == "LayerNormFp32"  # computes in float32, as OpenAI's
    full = clip_vit.load(clip_b32_file, "ViT-B-32", half=False)
    assert {p.dtype for p in full.parameters()} == {torch.float32}
    # The half tower runs (here on the CPU) and is the same function to float16's ~3
    # significant digits, its features float16 as VBench's background cosines get them.
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features_half = clip_vit.ClipImageTower(half)(x)
        features = clip_vit.ClipImageTower(full)(x)
    assert features_half.dtype == torch.float16
    scale = float(features.abs().max())
    torch.testing.assert_close(features_half.float(), features, rtol=0, atol=1e-2 * scale)


def test_aesthetic_head_loader_round_trips_and_checks_the_shape(tmp_path):
    head = _seeded(5, lambda: torch.nn.Linear(768, 1))
    path = tmp_path / "sa_0_4_vit_l_14_linear.pth"
    torch.save(head.state_dict(), path)
    features = F.normalize(torch.randn(4, 768, generator=torch.Generator().manual_seed(1)), dim=-1)
    with torch.no_grad():
        assert torch.equal(laion_aesthetic.build(path, "cpu")(features), head(features))
    # The ViT-B/32 head LAION also released (512 inputs) is not the one VBench uses.
    torch.save(torch.nn.Linear(512, 1).state_dict(), path)
    refused = r"sa_0_4_vit_l_14_linear\.pth is not LAION's aesthetic head.*\(1, 512\)"
    with pytest.raises(ValueError, match=refused):
        laion_aesthetic.build(path, "cpu")


def test_a_checkpoint_of_another_model_is_refused_naming_file_and_expectation(dino_file, clip_b32_file, tmp_path):
    refused = r"dino_vitbase16_pretrain\.pth is not the OpenAI CLIP ViT-B/32 weights.*missing"
    with pytest.raises(ValueError, match=refused):
        clip_vit.build_vit_b32(dino_file, "cpu")
    with pytest.raises(ValueError, match=r"open_clip_pytorch_model\.bin is not a DINO ViT-B/16"):
        dino.build(clip_b32_file, "cpu")
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("not weights")
    with pytest.raises(ValueError, match=r"cannot read .*notes\.pth as a DINO ViT-B/16"):
        dino.build(not_a_checkpoint, "cpu")


# -- through the plugin ---------------------------------------------------------------------------

PROJECT_WORLD = """
def load_toy(device):
    return {"device": device}
"""

PROJECT_PROFILE = """
[profile]
name = "vbench-features"

[settings]
prompts = ["a red circle"]
seeds = 1
frames = 4
steps = 1
height = 16
width = 16
guidance_scale = 1.0
fps = 8

[models.toy]
kind = "callable"
source = "toy_world:load_toy"
"""

PROJECT_CONFTEST = '''
import pytest
import torch


class Frames:
    """Frames that share a base image; ``noise`` of them is replaced by fresh noise."""

    def cache_identity(self):
        return {"toy": "frames"}

    def generate(self, request):
        g = request.generator
        shape = (request.frames, 3, request.height, request.width)
        base = torch.rand((1,) + shape[1:], generator=g)
        noise = torch.rand(shape, generator=g)
        s = request.config["noise"]
        return base * (1 - s) + noise * s


@pytest.fixture
def frames(ablation_models):
    ablation_models.get("toy")
    return Frames()
'''

PROJECT_STUDY = """
import pytest


@pytest.mark.ablation("vbench", reference="noise=1.0", metrics=METRICS)
@pytest.mark.parametrize("noise", [0.0, 1.0], ids=lambda s: f"noise={s}")
def test_vbench(noise, frames, ablation):
    ablation.run(frames, noise=noise)
"""


def _project(pytester, monkeypatch, metrics):
    pytester.makepyfile(
        toy_world=PROJECT_WORLD,
        conftest=PROJECT_CONFTEST,
        test_vbench=PROJECT_STUDY.replace("METRICS", repr(metrics)),
    )
    (pytester.path / "toy.toml").write_text(textwrap.dedent(PROJECT_PROFILE))
    pytester.makeini("[pytest]\nablation_profile = toy.toml\n")
    # Nothing from this machine's Hugging Face cache or variables may stand in.
    monkeypatch.setenv("HF_HUB_CACHE", str(pytester.path / "empty-hf-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(pytester.path / "xdg"))
    for variable in (DINO_VAR, CLIP_B32_VAR, CLIP_L14_VAR, AESTHETIC_VAR):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.slow
def test_missing_weights_stop_the_study_at_collection_naming_the_variables(pytester, monkeypatch):
    metrics = ["subject_consistency", "background_consistency", "aesthetic_quality"]
    _project(pytester, monkeypatch, metrics)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*metrics the selected studies name cannot run on this machine:*",
            f"*aesthetic_quality: OpenAI CLIP ViT-L/14*weights not found; set {CLIP_L14_VAR}*",
            f"*aesthetic_quality: LAION aesthetic predictor head*not found; set {AESTHETIC_VAR}*",
            f"*background_consistency: OpenAI CLIP ViT-B/32*weights not found; set {CLIP_B32_VAR}*",
            f"*subject_consistency: DINO ViT-B/16*weights not found; set {DINO_VAR}*",
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.slow
def test_with_weights_the_study_scores_subject_consistency(pytester, monkeypatch, dino_file):
    _project(pytester, monkeypatch, ["subject_consistency"])
    monkeypatch.setenv(DINO_VAR, str(dino_file))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    report = report_of(pytester)
    values = {r["variant"]: r["value"] for r in result_rows(report) if r["metric"] == "subject_consistency"}
    assert values["noise=0.0"] == pytest.approx(1.0, abs=1e-6)  # identical frames
    assert values["noise=1.0"] < 1.0 - 100 * SAME_SCORE  # independent noise frames
