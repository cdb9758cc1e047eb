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
    subject = profile(
        tmp_path, 'prompts_file = "VBench_full_info.json"\nprompts_dimension = "subject_consistency"'
    ).settings.prompts
    assert subject == ("a cat wearing sunglasses", "a dog running")
    with pytest.raises(
        ProfileError,
        match="prompts_dimension: got 'color'; the suite's dimensions are: "
        "appearance_style, background_consistency, dynamic_degree",
    ):
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
    picked = {
        p
        for seed in range(20)
        for p in profile(
            tmp_path, f'prompts_file = "many.txt"\nprompts_sample = 8\nprompts_seed = {seed}'
        ).settings.prompts
    }
    assert len(picked) > 35


@pytest.mark.parametrize(
    "settings, message",
    [
        ('prompts_file = "missing.txt"', r"prompts_file: '.*missing.txt': cannot be read"),
        ('prompts_file = "bad.json"', "not valid JSON"),
        ('prompts_file = "list.json"', "expected VBench's prompt suite"),
        ('prompts_file = "prompts.txt"\nprompts = ["x"]', "either prompts or prompts_file, not both"),
        ('prompts_file = "prompts.txt"\nprompts_sample = 3', "prompts_sample: got 3; the file holds 2 prompts"),
        ('prompts_file = "prompts.txt"\nprompts_sample = -1', "prompts_sample: got -1; expected a whole number"),
        ("prompts_sample = 2", "settings.prompts_sample: only with settings.prompts_file"),
        ('prompts_file = "prompts.txt"\nprompts_dimension = "scene"', "only a VBench .json suite has dimensions"),
        ('prompts_file = "empty.txt"', "holds no prompts"),
    ],
)
def test_bad_prompt_files_are_named(tmp_path, settings, message):
    (tmp_path / "prompts.txt").write_text("one\ntwo\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "list.json").write_text('["a", "b"]')
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ProfileError, match=message):
        profile(tmp_path, settings)


@pytest.mark.parametrize("name", ["suite.JSON", "suite.Json"])
def test_the_suffix_is_matched_in_any_case(tmp_path, name):
    (tmp_path / name).write_text(json.dumps(SUITE))
    prompts = profile(tmp_path, f'prompts_file = "{name}"').settings.prompts
    assert prompts == tuple(entry["prompt_en"] for entry in SUITE)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    (tmp_path / "bom.txt").write_bytes("# my suite\na red ball\na blue box\n".encode("utf-8-sig"))
    assert profile(tmp_path, 'prompts_file = "bom.txt"').settings.prompts == ("a red ball", "a blue box")
    (tmp_path / "bom.json").write_bytes(json.dumps(SUITE).encode("utf-8-sig"))
    assert len(profile(tmp_path, 'prompts_file = "bom.json"').settings.prompts) == len(SUITE)


def test_a_prompt_twice_in_a_text_file_names_both_lines(tmp_path):
    (tmp_path / "twice.txt").write_text("# suite\na red ball\n\na blue box\n  a red ball\nan owl\n")
    with pytest.raises(
        ProfileError,
        match=r"twice.txt' line 5: prompt 'a red ball' repeats line 2; "
        r"each prompt is one sample, list it once",
    ):
        profile(tmp_path, 'prompts_file = "twice.txt"')


def test_a_prompt_twice_in_the_profile_names_both_positions(tmp_path):
    with pytest.raises(
        ProfileError,
        match=r"settings.prompts\[2\]: 'a red ball' repeats "
        r"settings.prompts\[0\]; each prompt is one sample",
    ):
        profile(tmp_path, 'prompts = ["a red ball", "a blue box", "a red ball"]')


def test_vbench_lists_a_prompt_once_per_group_of_dimensions(tmp_path):
    # As VBench_full_info.json does for two prompts: once for appearance_style, once more for
    # the overall_consistency group. One prompt, one set of videos serving both.
    suite = SUITE + [
        {"prompt_en": "a cat wearing sunglasses", "dimension": ["overall_consistency", "aesthetic_quality"]}
    ]
    (tmp_path / "full.json").write_text(json.dumps(suite))
    every = profile(tmp_path, 'prompts_file = "full.json"').settings.prompts
    assert every == tuple(entry["prompt_en"] for entry in SUITE)
    overall = profile(tmp_path, 'prompts_file = "full.json"\nprompts_dimension = "overall_consistency"')
    assert overall.settings.prompts == ("a cat wearing sunglasses",)
    # The same prompt twice for one dimension is one sample counted twice.
    suite.append({"prompt_en": "a dog running", "dimension": ["motion_smoothness"]})
    (tmp_path / "full.json").write_text(json.dumps(suite))
    message = (
        r"full.json' entry \[5\]: prompt 'a dog running' repeats entry \[2\] for dimension "
        r"motion_smoothness; each prompt is one sample"
    )
    with pytest.raises(ProfileError, match=message):
        profile(tmp_path, 'prompts_file = "full.json"')
    with pytest.raises(ProfileError, match=message):
        profile(tmp_path, 'prompts_file = "full.json"\nprompts_dimension = "motion_smoothness"')


MANY = [f"prompt number {i}, " + "with a long description " * 3 for i in range(946)]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"prompt_en": "", "dimension": ["scene"]}, r"entry \[500\]: 'prompt_en' is ''; expected the prompt"),
        ({"prompt": "a cat", "dimension": ["scene"]}, r"entry \[500\]: 'prompt_en' is None; expected the prompt"),
        ({"prompt_en": "a cat", "dimension": "scene"}, r"entry \[500\]: 'dimension' is 'scene'; expected a list"),
        ("a cat", r"entry \[500\]: got 'a cat'; expected VBench's prompt suite entry"),
    ],
)
def test_one_bad_suite_entry_among_many_is_named_alone(tmp_path, bad, message):
    suite = [{"prompt_en": p, "dimension": ["scene"]} for p in MANY]
    suite[500] = bad
    (tmp_path / "big.json").write_text(json.dumps(suite))
    with pytest.raises(ProfileError, match=message) as error:
        profile(tmp_path, 'prompts_file = "big.json"')
    assert len(str(error.value)) < 300 and "prompt number 1" not in str(error.value)


@pytest.mark.parametrize(
    "bad, message",
    [
        ('""', r"settings.prompts\[500\]: got ''; expected a non-empty string \(one of the 946 prompts\)"),
        ("3", r"settings.prompts\[500\]: got 3; expected a non-empty string"),
        (
            json.dumps(MANY[3]),
            r"settings.prompts\[500\]: 'prompt number 3, with a long .*\.\.\.' repeats "
            r"settings.prompts\[3\]",
        ),
    ],
)
def test_one_bad_prompt_among_many_in_the_profile_is_named_alone(tmp_path, bad, message):
    prompts = [json.dumps(p) for p in MANY]
    prompts[500] = bad
    with pytest.raises(ProfileError, match=message) as error:
        profile(tmp_path, f"prompts = [{', '.join(prompts)}]")
    assert len(str(error.value)) < 300 and "prompt number 1," not in str(error.value)
