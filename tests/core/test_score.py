"""core.score: the surprise of continuations read after a context (the sweep's measure)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from core.checkpoint import load_checkpoint
from core.score import continuation_surprise


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    return ckpt.build_model().eval(), ckpt.vocab


def one_by_one(model, context: list[int], row: list[int]) -> list[float]:
    """The reference: the whole sequence in one call, one row at a time."""
    ids = context + row
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))
    return F.cross_entropy(logits[0, len(context) - 1:], torch.tensor(row), reduction="none").tolist()


def test_rows_are_scored_after_the_context_across_chunks(trained) -> None:
    model, vocab = trained
    context = vocab.encode("KING:\n")
    rows = [vocab.encode(t) for t in ("The crown is mine", "the lord of night", "Good day, sweet!!")]
    want = [one_by_one(model, context, r) for r in rows]
    for chunk in (2048, 5, 1):  # the state carries from chunk to chunk
        got = continuation_surprise(model, vocab, context, rows, chunk=chunk)
        for g, w in zip(got, want):
            assert g == pytest.approx(w, abs=1e-5)


def test_an_empty_context_starts_from_a_newline_as_generation_does(trained) -> None:
    model, vocab = trained
    row = vocab.encode("QUEEN: good night")
    got = continuation_surprise(model, vocab, [], [row])[0]
    assert got == pytest.approx(one_by_one(model, [vocab.newline_id], row), abs=1e-5)


def test_rows_of_different_lengths_and_empty_rows(trained) -> None:
    model, vocab = trained
    assert continuation_surprise(model, vocab, [1], [[], []]) == [[], []]
    with pytest.raises(ValueError, match="one length"):
        continuation_surprise(model, vocab, [1], [[1, 2], [1]])
