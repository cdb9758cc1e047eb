"""The generators' CLIP (stage ``text``): tokenizer, a few training steps, the saved layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import captions, sample_images, video_captions, vocabulary
from toyworld import text_clip
from toyworld.training import class_index, contrastive_loss

SHIPPED = WEIGHTS_DIR / text_clip.TEXT_ENCODER / "model.safetensors"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return text_clip.write_tokenizer(tmp_path_factory.mktemp("text") / "t2i" / "tokenizer")


def test_learned_merges_make_every_word_one_piece():
    words = ["green", "red", "greed", "a"]
    pieces = {word: list(word[:-1]) + [word[-1] + "</w>"] for word in words}
    for left, right in text_clip.learn_merges(words):
        for symbols in pieces.values():
            index = 0
            while index + 1 < len(symbols):
                if (symbols[index], symbols[index + 1]) == (left, right):
                    symbols[index : index + 2] = [left + right]
                index += 1
    assert pieces == {word: [word + "</w>"] for word in words}


def test_every_caption_word_is_one_token_and_every_caption_round_trips(tokenizer):
    for word in vocabulary():
        ids = tokenizer(word, add_special_tokens=False).input_ids
        assert tokenizer.convert_ids_to_tokens(ids) == [word + "</w>"]
    ids = text_clip.tokenize(tokenizer, video_captions())
    assert ids.shape == (len(video_captions()), text_clip.MAX_LENGTH)
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == video_captions()
    # Stable Diffusion's padding: start, the words, then end tokens to the full length.
    first = ids[0].tolist()
    assert first[0] == tokenizer.bos_token_id and first[-1] == tokenizer.eos_token_id
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == len(tokenizer) - 1
    # A word outside the world still tokenizes (byte by byte) instead of failing.
    assert len(tokenizer("zebra", add_special_tokens=False).input_ids) == 5


def test_a_few_steps_lower_the_loss(tokenizer):
    model = text_clip.build(tokenizer, seed=0)
    images, texts, _ = sample_images(48, seed=99)
    labels = class_index(texts)
    tokens = text_clip.tokenize(tokenizer, captions())

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(
                contrastive_loss(
                    model.encode_images(images),
                    model.encode_texts(tokens),
                    labels,
                    model.logit_scale.exp(),
                )
            )

    start = loss()
    losses = text_clip.fit(model, tokenizer, steps=8, seed=0, batch_size=24)
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert loss() < start - 0.05


def test_the_saved_towers_fit_the_generators_pipelines(tokenizer, tmp_path):
    """What the T2I and I2V models are built against: shapes, sizes and the processor."""
    model = text_clip.build(tokenizer, seed=1)
    out = tmp_path / "weights"
    text_clip.write_tokenizer(out / text_clip.TOKENIZER)
    text_clip.save(model.eval(), out)
    loaded_tokenizer, text_encoder, image_encoder, processor = text_clip.load(out)
    assert text_encoder.config.max_position_embeddings == loaded_tokenizer.model_max_length == 16
    hidden = text_encoder(text_clip.tokenize(loaded_tokenizer, ["a red circle"])).last_hidden_state
    assert hidden.shape == (1, 16, 64)
    image = (sample_images(1, seed=0)[0][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    pixels = processor(images=image, return_tensors="pt").pixel_values
    assert pixels.shape == (1, 3, 32, 32)
    embeds = image_encoder(pixel_values=pixels).image_embeds
    assert embeds.shape == (1, 64)
    # The processor and the training normalisation agree, so features match exactly.
    direct = model.encode_images(sample_images(1, seed=0)[0])
    assert torch.allclose(embeds, direct, atol=1e-2)


@pytest.mark.skipif(
    not SHIPPED.is_file(), reason=f"no trained text stage at {SHIPPED} yet (python -m toyworld.train text)"
)
def test_the_shipped_towers_match_fresh_images_with_their_captions():
    tokenizer, text_encoder, image_encoder, _ = text_clip.load(WEIGHTS_DIR)
    model = text_clip.GeneratorClip(text_encoder, image_encoder)
    images, texts, _ = sample_images(40, seed=31_337)
    with torch.no_grad():
        scores = model.encode_images(images) @ model.encode_texts(text_clip.tokenize(tokenizer, captions())).T
    correct = int((scores.argmax(dim=1) == class_index(texts)).sum())
    assert correct >= 30, f"{correct}/40 fresh images classified correctly"
