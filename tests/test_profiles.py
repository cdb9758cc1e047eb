"""Profiles: built-ins, the TOML format, and validation that names the file and the field."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ablation.profiles import (
    DEFAULT_PROFILE,
    ModelSpec,
    Profile,
    ProfileError,
    StudySettings,
    builtin_profiles,
    load_profile,
)

GOOD_SETTINGS = dict(
    prompts=("a cat", "a dog"),
    seeds=2,
    frames=4,
    steps=3,
    height=64,
    width=64,
    guidance_scale=7.5,
    fps=8,
)

FULL_EXAMPLE = """
[profile]
name = "mine"
description = "a profile of my own"

[settings]
prompts = ["a cat on a mat", "a dog in the fog"]
seeds = 3
frames = 8
steps = 20
height = 256
width = 320
guidance_scale = 6.0
fps = 12

[models.sd]
kind = "stable-diffusion"
source = "./weights/sd"
dtype = "float16"
revision = "main"
subfolders = { unet = "unet_ema" }

[models.svd]
kind = "stable-video-diffusion"
source = "stabilityai/stable-video-diffusion-img2vid-xt"

[models.clip]
kind = "open-clip"
source = "openai"
name = "ViT-L-14"

[models.extra]
kind = "callable"
source = "my_package.models:build"
width = 3
"""


def write(tmp_path: Path, text: str, name: str = "profile.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(models: str, settings: str | None = None) -> str:
    body = settings or "\n".join(
        f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in GOOD_SETTINGS.items()
    )
    return f'[profile]\nname = "p"\n\n[settings]\n{body}\n\n{models}\n'


TINY_SD = '[models.sd]\nkind = "tiny-stable-diffusion"\n'


# --- built-in profiles -------------------------------------------------------------------


def test_builtin_names() -> None:
    names = builtin_profiles()
    assert names == sorted(names)
    assert {"tiny", "sd15"} <= set(names)
    assert DEFAULT_PROFILE == "tiny"


def test_tiny_profile() -> None:
    profile = load_profile("tiny")
    assert profile.name == "tiny"
    assert {role: profile.model(role).kind for role in profile.roles} == {
        "sd": "tiny-stable-diffusion",
        "svd": "tiny-stable-video-diffusion",
        "clip": "tiny-open-clip",
    }
    s = profile.settings
    assert (s.frames, s.steps, s.height, s.width, s.fps) == (4, 3, 64, 64, 8)
    assert len(s.prompts) == 2 and len(set(s.prompts)) == 2 and s.seeds == 2
    assert all(spec.source is None for spec in profile.models.values())
    assert profile.path is not None and profile.path.endswith("tiny.toml")


def test_sd15_profile() -> None:
    profile = load_profile("sd15")
    assert profile.model("sd").source == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert profile.model("svd").source == "stabilityai/stable-video-diffusion-img2vid-xt"
    clip = profile.model("clip")
    assert (clip.kind, clip.source, clip.options["name"]) == ("open-clip", "openai", "ViT-L-14")
    s = profile.settings
    assert (s.frames, s.steps, s.height, s.width, s.guidance_scale) == (8, 50, 512, 512, 7.5)
    # Prompts are the unit: eighteen distinct prompts, one seed each.
    assert len(s.prompts) == 18 and len(set(s.prompts)) == 18 and s.seeds == 1


@pytest.mark.parametrize("name", ["tiny", "sd15"])
def test_to_dict_is_json(name: str) -> None:
    profile = load_profile(name)
    data = json.loads(json.dumps(profile.to_dict()))
    assert data["name"] == name
    assert data["settings"]["prompts"] == list(profile.settings.prompts)
    assert set(data["models"]) == set(profile.roles)


def test_importing_profiles_stays_light() -> None:
    code = (
        "import sys\n"
        "from pytest_ablation.profiles import load_profile\n"
        "load_profile('tiny'); load_profile('sd15')\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- names and paths ---------------------------------------------------------------------


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(ProfileError) as err:
        load_profile("sd99")
    message = str(err.value)
    assert "'sd99'" in message
    for name in builtin_profiles():
        assert name in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ProfileError, match="nope.toml.*does not exist"):
        load_profile(str(missing))


@pytest.mark.parametrize("value", ["", "   ", None, 3])
def test_bad_argument(value: object) -> None:
    with pytest.raises(ProfileError, match="tiny"):
        load_profile(value)  # type: ignore[arg-type]


def test_full_example(tmp_path: Path) -> None:
    (tmp_path / "weights" / "sd").mkdir(parents=True)
    path = write(tmp_path, FULL_EXAMPLE)
    profile = load_profile(path)  # a PathLike works as well as a string
    assert profile.name == "mine" and profile.description == "a profile of my own"
    assert profile.path == str(path.resolve())
    assert profile.settings.prompts == ("a cat on a mat", "a dog in the fog")
    assert (profile.settings.width, profile.settings.fps) == (320, 12)
    sd = profile.model("sd")
    assert sd.source == str((tmp_path / "weights" / "sd").resolve())
    assert dict(sd.options["subfolders"]) == {"unet": "unet_ema"}
    assert sd.options["dtype"] == "float16"
    assert profile.model("svd").source == "stabilityai/stable-video-diffusion-img2vid-xt"
    assert profile.model("extra").options == {"width": 3}
    assert json.loads(json.dumps(profile.to_dict()))["models"]["sd"]["options"]["subfolders"] == {"unet": "unet_ema"}


def test_relative_paths_resolve_against_the_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cfg" / "sd").mkdir(parents=True)
    path = write(tmp_path / "cfg", minimal('[models.sd]\nkind = "stable-diffusion"\nsource = "sd"\n'))
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    assert load_profile(str(path)).model("sd").source == str((tmp_path / "cfg" / "sd").resolve())


def test_unknown_role(tmp_path: Path) -> None:
    profile = load_profile("tiny")
    with pytest.raises(ProfileError) as err:
        profile.model("vae")
    assert "'vae'" in str(err.value) and "sd, svd, clip" in str(err.value)


# --- malformed files ---------------------------------------------------------------------


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[profile\nname = 'x'\n")
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    assert str(path) in str(err.value) and "not valid TOML" in str(err.value)


@pytest.mark.parametrize(
    "text, field",
    [
        ("[settings]\nframes = 1\n", "profile: missing"),
        (minimal(TINY_SD).replace('name = "p"\n', ""), "profile.name: missing"),
        (minimal(TINY_SD).replace('name = "p"', "name = 3"), "profile.name"),
        (minimal(TINY_SD).replace('name = "p"', 'name = "p"\ncolour = "red"'), "profile.colour"),
        (minimal(TINY_SD) + "[extras]\nx = 1\n", "extras: unknown table"),
        (minimal(TINY_SD).replace("frames = 4\n", ""), "settings.frames: missing"),
        (minimal(TINY_SD).replace("fps = 8", "fps = 8\nfpss = 9"), "settings.fpss: unknown"),
        (minimal(TINY_SD).replace("frames = 4", 'frames = "four"'), "settings.frames"),
        (minimal(""), "models: a profile needs at least one"),
        (minimal("[models.sd]\nseed = 1\n"), "models.sd.kind: missing"),
        (minimal('[models.sd]\nkind = "sdxl"\n'), "models.sd.kind"),
        ("models = 3\n" + minimal(""), "models: expected a table"),
        (minimal(TINY_SD + "seed = -1\n"), "models.sd.seed"),
        (minimal(TINY_SD + 'dtype = "float64"\n'), "models.sd.dtype"),
        (minimal(TINY_SD + "colour = 1\n"), "models.sd.colour: unknown option"),
        (minimal(TINY_SD + 'source = "x/y"\n'), "models.sd.source"),
        (minimal('[models.sd]\nkind = "stable-diffusion"\n'), "models.sd.source: missing"),
        (
            minimal('[models.sd]\nkind = "stable-diffusion"\nsource = "./absent"\n'),
            "models.sd.source",
        ),
        (
            minimal('[models.sd]\nkind = "stable-diffusion"\nsource = "not a hub id"\n'),
            "models.sd.source",
        ),
        (
            minimal('[models.sd]\nkind = "stable-diffusion"\nsource = "a/b"\nsubfolders = { text = "t" }\n'),
            "models.sd.subfolders.text",
        ),
        (minimal('[models.c]\nkind = "open-clip"\nsource = "openai"\n'), "models.c.name: missing"),
        (
            minimal('[models.c]\nkind = "open-clip"\nsource = "./gone.pt"\nname = "x"\n'),
            "models.c.source",
        ),
        (minimal('[models.f]\nkind = "callable"\nsource = "no_colon"\n'), "models.f.source"),
        (minimal('[models."bad role"]\nkind = "tiny-stable-diffusion"\n'), "models"),
        (minimal(TINY_SD + "when = 1979-05-27\n"), "models.sd.when"),
    ],
)
def test_invalid_fields_name_the_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert field in message, message


def test_source_of_a_folder_kind_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file.bin").write_bytes(b"x")
    path = write(tmp_path, minimal('[models.sd]\nkind = "stable-diffusion"\nsource = "./file.bin"\n'))
    with pytest.raises(ProfileError, match="not a folder"):
        load_profile(str(path))


# --- extends -----------------------------------------------------------------------------


def test_extends_overrides_one_source(tmp_path: Path) -> None:
    (tmp_path / "sd").mkdir()
    path = write(
        tmp_path,
        '[profile]\nname = "sd15-local"\nextends = "sd15"\n\n[settings]\nsteps = 25\n\n[models.sd]\nsource = "./sd"\n',
    )
    profile = load_profile(str(path))
    base = load_profile("sd15")
    assert profile.name == "sd15-local" and profile.description == base.description
    assert profile.settings == base.settings.replace(steps=25)
    assert profile.model("sd").source == str((tmp_path / "sd").resolve())
    assert profile.model("sd").options == base.model("sd").options  # dtype etc. kept
    assert profile.model("svd") == base.model("svd")


def test_extends_with_another_kind_replaces_the_role(tmp_path: Path) -> None:
    path = write(tmp_path, '[profile]\nname = "x"\nextends = "sd15"\n\n' + TINY_SD)
    spec = load_profile(str(path)).model("sd")
    assert spec == ModelSpec("sd", "tiny-stable-diffusion", None, {})


def test_extends_a_relative_file_and_cycles(tmp_path: Path) -> None:
    write(tmp_path, minimal(TINY_SD), "base.toml")
    child = write(tmp_path, '[profile]\nname = "c"\nextends = "base.toml"\n', "child.toml")
    assert load_profile(str(child)).model("sd").kind == "tiny-stable-diffusion"
    write(tmp_path, '[profile]\nname = "a"\nextends = "b.toml"\n', "a.toml")
    write(tmp_path, '[profile]\nname = "b"\nextends = "a.toml"\n', "b.toml")
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(str(tmp_path / "a.toml"))


def test_extends_unknown_profile(tmp_path: Path) -> None:
    child = write(tmp_path, '[profile]\nname = "c"\nextends = "sd99"\n')
    with pytest.raises(ProfileError) as err:
        load_profile(str(child))
    assert str(err.value).startswith(f"{child}: profile.extends: unknown profile 'sd99'")


def test_extends_errors_name_the_file_at_fault(tmp_path: Path) -> None:
    bad = write(tmp_path, minimal(TINY_SD).replace("steps = 3", "steps = 0"), "bad.toml")
    child = write(tmp_path, '[profile]\nname = "c"\nextends = "bad.toml"\n', "child.toml")
    with pytest.raises(ProfileError) as err:
        load_profile(str(child))
    assert str(err.value).startswith(str(bad)) and "settings.steps" in str(err.value)


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("frames", 0),
        ("frames", -1),
        ("frames", 2.0),
        ("frames", True),
        ("steps", 0),
        ("seeds", 0),
        ("fps", 0),
        ("height", 0),
        ("height", -64),
        ("height", 60),
        ("width", 0),
        ("width", 100),
        ("prompts", ()),
        ("prompts", "a cat"),
        ("prompts", ("a cat", "")),
        ("prompts", ("a cat", "  ")),
        ("prompts", ("a cat", 3)),
        ("guidance_scale", -1.0),
        ("guidance_scale", math.nan),
        ("guidance_scale", math.inf),
        ("guidance_scale", "7.5"),
    ],
)
def test_invalid_settings(field: str, value: object) -> None:
    base = StudySettings(**GOOD_SETTINGS)
    with pytest.raises(ProfileError) as err:
        base.replace(**{field: value})
    assert f"settings.{field}" in str(err.value) and "expected" in str(err.value)
    with pytest.raises(ProfileError, match=f"settings.{field}"):
        StudySettings(**{**GOOD_SETTINGS, field: value})


def test_replace_unknown_field_lists_fields() -> None:
    with pytest.raises(ProfileError) as err:
        StudySettings(**GOOD_SETTINGS).replace(frame=3)
    assert "settings.frame" in str(err.value) and "frames" in str(err.value)


def test_replace_and_normalise() -> None:
    base = StudySettings(**GOOD_SETTINGS)
    changed = base.replace(frames=16, prompts=["x"], guidance_scale=5)
    assert changed.frames == 16 and changed.prompts == ("x",)
    assert isinstance(changed.guidance_scale, float) and changed.guidance_scale == 5.0
    assert base.frames == 4  # frozen, untouched
    assert base.to_dict() == {**GOOD_SETTINGS, "prompts": ["a cat", "a dog"], "batch_size": "auto"}
    assert StudySettings.from_dict(base.to_dict()) == base


@given(st.integers(min_value=-50, max_value=50))
def test_frames_accepted_exactly_when_positive(frames: int) -> None:
    base = StudySettings(**GOOD_SETTINGS)
    if frames >= 1:
        assert base.replace(frames=frames).frames == frames
    else:
        with pytest.raises(ProfileError, match="settings.frames"):
            base.replace(frames=frames)


@given(st.integers(min_value=-64, max_value=2048))
def test_sizes_accepted_exactly_when_positive_multiples_of_8(size: int) -> None:
    base = StudySettings(**GOOD_SETTINGS)
    if size > 0 and size % 8 == 0:
        assert base.replace(height=size, width=size).height == size
    else:
        with pytest.raises(ProfileError, match="settings.height"):
            base.replace(height=size)


# --- in-code profiles --------------------------------------------------------------------


def test_in_code_profile_and_immutable_options() -> None:
    spec = ModelSpec("sd", "tiny-stable-diffusion", options={"seed": 3})
    profile = Profile("code", "", StudySettings(**GOOD_SETTINGS), {"sd": spec}, None)
    assert profile.path is None and profile.model("sd").options["seed"] == 3
    with pytest.raises(TypeError):
        spec.options["seed"] = 4  # type: ignore[index]
    with pytest.raises(ProfileError, match="models.x"):
        Profile("code", "", StudySettings(**GOOD_SETTINGS), {"x": spec}, None)
    with pytest.raises(ProfileError, match="kinds are"):
        ModelSpec("sd", "tiny")
    assert len({spec, ModelSpec("sd", "tiny-stable-diffusion", options={"seed": 3})}) == 1
    assert hash(load_profile("tiny")) == hash(load_profile("tiny"))


def test_exsvd_weights_option_resolves_against_the_profile_folder(tmp_path):
    from pytest_ablation.profiles import load_profile

    weights = tmp_path / "weights" / "ExVideo-SVD-128f-v1"
    weights.mkdir(parents=True)
    (tmp_path / "p.toml").write_text(
        '[profile]\nname = "x"\nextends = "exsvd"\n\n[models.svd]\nexsvd = "./weights/ExVideo-SVD-128f-v1"\n'
    )
    profile = load_profile(str(tmp_path / "p.toml"))
    assert profile.model("svd").options["exsvd"] == str(weights.resolve())
    assert load_profile("exsvd").model("svd").options["exsvd"] == "ECNU-CILab/ExVideo-SVD-128f-v1"


def test_batch_size_is_optional_auto_or_a_positive_integer():
    from pytest_ablation.profiles.settings import resolve_batch_size

    assert StudySettings.from_dict(dict(GOOD_SETTINGS)).batch_size == "auto"
    assert StudySettings.from_dict({**GOOD_SETTINGS, "batch_size": 3}).batch_size == 3
    for bad in (0, -1, 1.5, "all", True):
        with pytest.raises(ProfileError, match=r"settings.batch_size: got .*; expected an integer >= 1 or \"auto\""):
            StudySettings.from_dict({**GOOD_SETTINGS, "batch_size": bad})
    assert resolve_batch_size("auto", "cpu", 8) == 1
    assert resolve_batch_size("auto", "cuda:0", 8) == 2  # 8 frames x 2 branches x 2 = 32 images
    assert resolve_batch_size("auto", "cuda:1", 4) == 4
    assert resolve_batch_size("auto", "cuda:0", 25) == 1
    assert resolve_batch_size(5, "cpu", 8) == 5


@pytest.mark.parametrize(
    "body, where, meant",
    [
        ("[setings]\nprompts = ['a']\n", "setings: unknown table", "settings"),
        ("[settings]\npromts = ['a']\n", "settings.promts: unknown setting", "prompts"),
        ("[settings]\nguidance-scale = 2.0\n", "settings.guidance-scale: unknown setting", "guidance_scale"),
        ("[models.clip]\nkind = 'tiny-open-clip'\nseeed = 1\n", "models.clip.seeed", "seed"),
    ],
)
def test_an_unknown_key_names_the_closest_valid_one(tmp_path: Path, body, where, meant) -> None:
    path = write(tmp_path, '[profile]\nname = "mine"\nextends = "tiny"\n' + body)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert where in message and f"did you mean {meant!r}?" in message


@pytest.mark.parametrize(
    "table, where, meant",
    [
        ("[methods.exvideo]\nrecipie = {steps = 3}\n", "methods.exvideo.recipie: unknown option", "recipe"),
        ("[methods.exvideo.recipe]\nstepz = 3\n", "methods.exvideo.recipe.stepz: unknown field", "steps"),
    ],
)
def test_an_unknown_method_key_names_the_closest_valid_one(tmp_path: Path, table, where, meant):
    from pytest_ablation.methods.exvideo.profile import exvideo_on_profile

    profile = load_profile(write(tmp_path, '[profile]\nname = "mine"\nextends = "tiny"\n' + table))
    with pytest.raises(ValueError) as info:
        exvideo_on_profile(profile)
    assert where in str(info.value) and f"did you mean {meant!r}?" in str(info.value)


def test_a_misspelt_profile_name_and_claim_name_the_closest(tmp_path: Path) -> None:
    from pytest_ablation.stats.claims import ClaimSpecError, parse_claims

    with pytest.raises(ProfileError, match="did you mean 'tiny'?"):
        load_profile("tinny")
    with pytest.raises(ClaimSpecError, match="unknown claim 'above_refrence'; did you mean 'above_reference'?"):
        parse_claims({"v": ["clip_score above_refrence"]}, "test_x")
    with pytest.raises(ClaimSpecError, match="did you mean 'margin'?"):
        parse_claims({"v": [{"metric": "clip_score", "claim": "above_reference", "margn": 1}]}, "test_x")
