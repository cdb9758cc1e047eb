"""A real ``CLIPTokenizer`` that needs no hub: byte-level, one token per byte and no merges.

Stable Diffusion code calls ``tokenizer(prompts, padding="max_length", ...)`` and reads
``model_max_length`` and the special token ids; this tokenizer answers all of that the same
way the released one does, with a 514-token vocabulary a toy text encoder can embed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """The printable stand-in of each byte, in GPT-2/CLIP order (the ByteLevel alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shift)
            shift += 1
    mapping = dict(zip(printable, codes, strict=True))
    return [chr(mapping[byte]) for byte in range(256)]


def byte_vocabulary() -> dict[str, int]:
    """Each byte alone and at the end of a word, then the two special tokens (CLIP's order)."""
    alphabet = _bytes_to_unicode()
    tokens = alphabet + [symbol + "</w>" for symbol in alphabet] + [BOS, EOS]
    return {token: index for index, token in enumerate(tokens)}


def build_clip_tokenizer(model_max_length: int = 77) -> Any:
    """A ``transformers.CLIPTokenizer`` built from files written to a temporary folder.

    Going through ``from_pretrained`` on local files works with every transformers version
    that has CLIPTokenizer and never reaches the hub.
    """
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="pytest-ablation-tokenizer-") as folder:
        root = Path(folder)
        (root / "vocab.json").write_text(json.dumps(byte_vocabulary()), encoding="utf-8")
        # CLIP's merges file starts with a version line that the reader skips.
        (root / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        (root / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "model_max_length": model_max_length,
                    "bos_token": BOS,
                    "eos_token": EOS,
                    "unk_token": EOS,
                    "pad_token": EOS,
                    "do_lower_case": True,
                }
            ),
            encoding="utf-8",
        )
        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
