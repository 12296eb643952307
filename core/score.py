"""Score a text: the model's surprise, -log p, at every character.

The text is read once, left to right, carrying the LSTM state across chunks, so every
character is predicted from all of the text before it (the first from a '\\n', as
generation starts). That is the model's true per-character loss on the text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .evaluate import LN2
from .model import LMNet
from .vocab import CharVocab


@dataclass(frozen=True)
class TextScore:
    """Per-character surprise in nats, aligned with ``text``."""

    text: str
    surprise: list[float]  # -ln p(char | everything before it)

    @property
    def nats_per_char(self) -> float:
        return sum(self.surprise) / len(self.surprise) if self.surprise else math.nan

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char)


@torch.inference_mode()
def score_text(model: LMNet, vocab: CharVocab, text: str, chunk: int = 2048) -> TextScore:
    """Score ``text`` (every character must be in ``vocab``: encode strictly first)."""
    ids = vocab.encode(text)
    model.eval()
    inputs = torch.tensor([vocab.newline_id] + ids[:-1], dtype=torch.long)  # what each char is predicted from
    targets = torch.tensor(ids, dtype=torch.long)
    surprise: list[float] = []
    state = None
    for start in range(0, len(ids), chunk):
        logits, state = model(inputs[start: start + chunk].unsqueeze(0), state)  # (1, T, V)
        nll = F.cross_entropy(logits[0].float(), targets[start: start + chunk], reduction="none")
        surprise.extend(nll.tolist())
    return TextScore(text, surprise)
