"""Loss evaluation: the exact pass over a split, the trainer's random-window estimate,
and the derived bits/char and perplexity."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from core.checkpoint import load_checkpoint
from core.data import TextData
from core.errors import DataError
from core.evaluate import LossReport, estimate_loss, evaluate
from core.model import LMNet, ModelConfig


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    return ckpt.build_model(), ckpt


def reference_loss(model: LMNet, ids: torch.Tensor, block: int) -> tuple[float, int]:
    """Window by window, each from a zero state, one model call per window."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, block):
            x = ids[start:start + block]
            y = ids[start + 1:start + block + 1]
            x = x[: len(y)]
            logits, _ = model(x.unsqueeze(0))
            nll += F.cross_entropy(logits[0], y, reduction="sum").item()
            count += len(y)
    return nll / count, count


def test_loss_report_derived_values():
    r = LossReport(loss=1.5, chars=10)
    assert r.bits_per_char == pytest.approx(1.5 / math.log(2))
    assert r.perplexity == pytest.approx(math.exp(1.5))


@pytest.mark.parametrize("split, block", [("val", 32), ("val", 7), ("all", 64), ("train", 50)])
def test_evaluate_scores_every_character_of_the_split(trained, corpus_text, split, block):
    model, ckpt = trained
    data = TextData.from_text(corpus_text, ckpt.vocab)
    ids = torch.cat([data.train, data.val]).long() if split == "all" else data.split(split).long()
    report = evaluate(model, data, split, block, batch_size=5)
    loss, count = reference_loss(model, ids, block)
    assert report.chars == count == len(ids) - 1  # the tail after the last full window counts too
    assert report.loss == pytest.approx(loss, rel=1e-5)


def test_stream_context_carries_the_state_through_the_split(trained, corpus_text):
    model, ckpt = trained
    data = TextData.from_text(corpus_text, ckpt.vocab)
    ids = data.split("val").long()
    report = evaluate(model, data, "val", 16, context="stream")
    # Reference: the streams evaluate() uses, each read in one call from a zero state, and
    # the characters left after them read on from the last stream's state.
    n = (len(ids) - 1) // 8
    nll = 0.0
    with torch.no_grad():
        state = None
        for i in range(8):
            logits, state = model(ids[i * n:(i + 1) * n].unsqueeze(0))
            nll += F.cross_entropy(logits[0], ids[i * n + 1:(i + 1) * n + 1], reduction="sum").item()
        if 8 * n < len(ids) - 1:
            logits, _ = model(ids[8 * n:-1].unsqueeze(0), state)
            nll += F.cross_entropy(logits[0], ids[8 * n + 1:], reduction="sum").item()
    assert report.chars == len(ids) - 1
    assert report.loss == pytest.approx(nll / report.chars, rel=1e-5)
    assert report.loss < evaluate(model, data, "val", 16).loss  # more context, lower loss


def test_untrained_model_scores_about_ln_vocab(corpus_text):
    data = TextData.from_text(corpus_text)
    torch.manual_seed(0)
    model = LMNet(ModelConfig(data.vocab.size, 32))
    assert abs(evaluate(model, data, "val", 64).loss - math.log(data.vocab.size)) < 0.2


def test_trained_model_beats_chance_and_estimate_agrees(trained, corpus_text):
    model, ckpt = trained
    data = TextData.from_text(corpus_text, ckpt.vocab)
    exact = evaluate(model, data, "val", 32).loss
    assert exact < math.log(ckpt.vocab.size) - 0.5
    model.train()
    estimate = estimate_loss(model, data, "val", iters=20, batch_size=16, block_size=32,
                             generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert model.training  # restored
    assert abs(estimate - exact) < 0.15


def test_evaluate_runs_without_dropout_and_leaves_the_mode_as_it_was(corpus_text):
    data = TextData.from_text(corpus_text)
    torch.manual_seed(0)
    model = LMNet(ModelConfig(data.vocab.size, 32, n_layers=2, dropout=0.5)).eval()
    in_eval = evaluate(model, data, "val", 64).loss
    model.train()
    assert evaluate(model, data, "val", 64).loss == in_eval  # no dropout inside
    assert model.training  # restored, as estimate_loss does, for the trainer's mid-run evaluation
    with pytest.raises(ValueError):
        evaluate(model, data, "val", 64, context="nope")
    assert model.training  # restored after an error too


def test_split_too_short_to_evaluate_is_a_clear_error(trained):
    model, ckpt = trained
    data = TextData.from_text("KING:\n", ckpt.vocab)  # val split: 1 character
    with pytest.raises(DataError, match="too few to evaluate"):
        evaluate(model, data, "val", 32)
    assert evaluate(model, data, "all", 32).chars == 5  # one window shorter than the block
