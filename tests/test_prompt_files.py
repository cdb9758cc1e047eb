"""A profile's prompts from a file: plain text, or VBench's JSON prompt suite."""

import json

import pytest

from pytest_ablation.profiles import ProfileError, load_profile

SUITE = [
    {"prompt_en": "a cat wearing sunglasses", "dimension": ["subject_consistency", "appearance_style"]},
    {"prompt_en": "a train moving fast", "dimension": ["dynamic_degree"]},
    {"prompt_en": "a dog running", "dimension": ["subject_consistency", "motion_smoothness"]},
    {"prompt_en": "an empty beach", "dimension": ["background_consistency"]},
]


def profile(tmp_path, settings: str):
    path = tmp_path / "p.toml"
    path.write_text(f'[profile]\nname = "p"\nextends = "tiny"\n\n[settings]\n{settings}\n')
    return load_profile(path)


def test_text_file_one_prompt_a_line(tmp_path):
    (tmp_path / "prompts.txt").write_text("# my suite\na red ball\n\n  a blue box  \n")
    assert profile(tmp_path, 'prompts_file = "prompts.txt"').settings.prompts == ("a red ball", "a blue box")


def test_vbench_suite_all_or_one_dimension(tmp_path):
    (tmp_path / "VBench_full_info.json").write_text(json.dumps(SUITE))
    every = profile(tmp_path, 'prompts_file = "VBench_full_info.json"').settings.prompts
    assert every == tuple(entry["prompt_en"] for entry in SUITE)
    subject = profile(tmp_path, 'prompts_file = "VBench_full_info.json"\n'
                                'prompts_dimension = "subject_consistency"').settings.prompts
    assert subject == ("a cat wearing sunglasses", "a dog running")
    with pytest.raises(ProfileError, match="prompts_dimension: got 'color'; the suite's dimensions are: "
                                           "appearance_style, background_consistency, dynamic_degree"):
        profile(tmp_path, 'prompts_file = "VBench_full_info.json"\nprompts_dimension = "color"')


def test_sampling_is_seeded_and_keeps_the_file_order(tmp_path):
    lines = [f"prompt number {i}" for i in range(50)]
    (tmp_path / "many.txt").write_text("\n".join(lines))
    first = profile(tmp_path, 'prompts_file = "many.txt"\nprompts_sample = 8').settings.prompts
    again = profile(tmp_path, 'prompts_file = "many.txt"\nprompts_sample = 8').settings.prompts
    other = profile(tmp_path, 'prompts_file = "many.txt"\nprompts_sample = 8\nprompts_seed = 1').settings.prompts
    assert first == again and len(first) == 8 and len(set(first)) == 8
    assert first != other
    assert list(first) == [p for p in lines if p in first]  # the file's order
    # Different seeds spread over the whole file, not one end of it.
    picked = {p for seed in range(20) for p in profile(
        tmp_path, f'prompts_file = "many.txt"\nprompts_sample = 8\nprompts_seed = {seed}').settings.prompts}
    assert len(picked) > 35


@pytest.mark.parametrize("settings, message", [
    ('prompts_file = "missing.txt"', r"prompts_file: '.*missing.txt': cannot be read"),
    ('prompts_file = "bad.json"', "not valid JSON"),
    ('prompts_file = "list.json"', "expected VBench's prompt suite"),
    ('prompts_file = "prompts.txt"\nprompts = ["x"]', "either prompts or prompts_file, not both"),
    ('prompts_file = "prompts.txt"\nprompts_sample = 3', "prompts_sample: got 3; the file holds 2 prompts"),
    ('prompts_file = "prompts.txt"\nprompts_sample = -1', "prompts_sample: got -1; expected a whole number"),
    ('prompts_sample = 2', "settings.prompts_sample: only with settings.prompts_file"),
    ('prompts_file = "prompts.txt"\nprompts_dimension = "scene"', "only a VBench .json suite has dimensions"),
    ('prompts_file = "empty.txt"', "holds no prompts"),
])
def test_bad_prompt_files_are_named(tmp_path, settings, message):
    (tmp_path / "prompts.txt").write_text("one\ntwo\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "list.json").write_text('["a", "b"]')
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ProfileError, match=message):
        profile(tmp_path, settings)
