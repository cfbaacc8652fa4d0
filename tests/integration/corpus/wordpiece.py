"""A small BERT (uncased WordPiece) tokenizer over a shipped ``tokenizer.json``.

Enough for English test sentences: lower-case, accents stripped, split on whitespace and
punctuation, greedy longest-match WordPiece with ``##`` continuations, ``[CLS] ...
[SEP]``, right padding. No dependency beyond the standard library.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np


class WordPiece:
    """Encodes sentences to ``input_ids`` / ``attention_mask`` / ``token_type_ids``."""

    def __init__(self, tokenizer_json: Path) -> None:
        spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "WordPiece":
            raise ValueError(f"not a WordPiece tokenizer: {tokenizer_json}")
        self.vocab: dict[str, int] = model["vocab"]
        self.unk = self.vocab[model.get("unk_token", "[UNK]")]
        self.cls, self.sep, self.pad = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]"))

    def tokens(self, text: str) -> list[int]:
        """Token ids of one sentence, without the special tokens."""
        ids: list[int] = []
        for word in _basic_split(text):
            ids.extend(self._wordpiece(word))
        return ids

    def encode(self, sentences: list[str], length: int) -> dict[str, np.ndarray]:
        """A padded batch: each sentence as ``[CLS] tokens [SEP]``, cut to ``length``."""
        ids = np.full((len(sentences), length), self.pad, dtype=np.int64)
        mask = np.zeros((len(sentences), length), dtype=np.int64)
        for row, sentence in enumerate(sentences):
            tokens = [self.cls, *self.tokens(sentence)[: length - 2], self.sep]
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(ids),
        }

    def _wordpiece(self, word: str) -> list[int]:
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:  # no piece matches: the whole word is unknown
                return [self.unk]
            start = end
        return pieces


def _basic_split(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words: list[str] = []
    current = ""
    for char in text:
        if char.isspace():
            words, current = _flush(words, current), ""
        elif unicodedata.category(char).startswith("P") or (char.isascii() and not char.isalnum()):
            words, current = [*_flush(words, current), char], ""
        else:
            current += char
    return _flush(words, current)


def _flush(words: list[str], current: str) -> list[str]:
    return [*words, current] if current else words
