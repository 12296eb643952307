"""Score a text: the model's surprise, -log p, at every character.

The text is read once, left to right, carrying the LSTM state across chunks, so every
character is predicted from all of the text before it (the first from a '\\n', as
generation starts). That is the model's true per-character loss on the text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .evaluate import LossReport
from .model import LMNet
from .vocab import CharVocab


@dataclass(frozen=True)
class TextScore(LossReport):
    """Per-character surprise in nats, aligned with ``text``; ``loss`` is its mean."""

    text: str = ""
    surprise: list[float] = field(default_factory=list)  # -ln p(char | everything before it)

    @classmethod
    def of(cls, text: str, surprise: list[float]) -> "TextScore":
        return cls(sum(surprise) / len(surprise) if surprise else math.nan, len(surprise), text, surprise)


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
    return TextScore.of(text, surprise)
