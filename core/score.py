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


@torch.inference_mode()
def continuation_surprise(model: LMNet, vocab: CharVocab, context: list[int], rows: list[list[int]],
                          chunk: int = 2048) -> list[list[float]]:
    """Per character of each row, -ln p at temperature 1 when read after ``context``
    (from a zero state, as sampling primes a prompt; an empty context is '\\n', as
    generation starts). The rows are the continuations of one prompt, of one length (a
    temperature sweep's columns): one measure for text sampled at any temperature."""
    if not rows or not rows[0]:
        return [[] for _ in rows]
    if any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("the rows must have one length")
    model.eval()
    context = list(context) or [vocab.newline_id]
    B = len(rows)
    logits, state = model(torch.tensor([context] * B, dtype=torch.long), None)  # (B, T, V)
    last = logits[:, -1].float()  # (B, V): predicts each row's first character
    targets = torch.tensor(rows, dtype=torch.long)  # (B, n)
    surprise: list[torch.Tensor] = []
    for start in range(0, targets.size(1), chunk):
        block = targets[:, start:start + chunk]  # (B, t)
        logits, state = model(block, state)  # (B, t, V): predicts the next character after each
        preds = torch.cat([last.unsqueeze(1), logits[:, :-1].float()], 1)  # (B, t, V)
        surprise.append(F.cross_entropy(preds.transpose(1, 2), block, reduction="none"))  # (B, t)
        last = logits[:, -1].float()
    return torch.cat(surprise, 1).tolist()

