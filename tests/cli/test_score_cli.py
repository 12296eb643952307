"""``charlstm-tui score FILE``: the model's surprise at every character of a text.

Expected numbers come from the model itself (one forward pass over the whole text), so
these tests check that the command reads the text as the model would: from a '\\n'
start, with the state carried across the scoring chunks.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from core.checkpoint import load_checkpoint
from core.score import score_text
from test_cli import fails, run


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


def surprise_in_one_pass(ckpt, text: str) -> list[float]:
    """-ln p of each character, every one read in a single forward pass from '\\n'."""
    ids = ckpt.vocab.encode(text)
    x = torch.tensor([[ckpt.vocab.newline_id] + ids[:-1]])
    with torch.no_grad():
        logits, _ = ckpt.build_model()(x)
    return F.cross_entropy(logits[0], torch.tensor(ids), reduction="none").tolist()


def test_score_prints_loss_bits_and_perplexity(tiny_checkpoint, ckpt, corpus_text, tmp_path):
    text = corpus_text[:500]
    (tmp_path / "t.txt").write_text(text)
    code, out, err = run("score", "-c", tiny_checkpoint, tmp_path / "t.txt")
    assert (code, err) == (0, "")
    expected = sum(surprise_in_one_pass(ckpt, text)) / len(text)
    assert out == (f"{tmp_path / 't.txt'}: {expected:.4f} nats/char, {expected / math.log(2):.4f} bits/char, "
                   f"perplexity {math.exp(expected):.3f} ({len(text):,} chars)\n")


def test_json_gives_every_characters_surprise(tiny_checkpoint, ckpt, tmp_path):
    text = "KING:\nThe crown, my lord!\n"
    (tmp_path / "t.txt").write_text(text)
    code, out, _ = run("score", "-c", tiny_checkpoint, "--json", tmp_path / "t.txt")
    assert code == 0
    got = json.loads(out)
    assert [c["char"] for c in got["per_char"]] == list(text) and got["chars"] == len(text)
    assert [c["surprise_nats"] for c in got["per_char"]] == pytest.approx(surprise_in_one_pass(ckpt, text), abs=1e-5)
    assert got["nats_per_char"] == pytest.approx(sum(c["surprise_nats"] for c in got["per_char"]) / len(text),
                                                 abs=1e-5)
    assert got["bits_per_char"] == pytest.approx(got["nats_per_char"] / math.log(2))
    assert got["perplexity"] == pytest.approx(math.exp(got["nats_per_char"]))


def test_a_text_longer_than_a_chunk_carries_the_state_across(ckpt, corpus_text):
    """Scored in chunks of 64, the surprise is the one-pass surprise at every position;
    a state reset at a chunk's start would show from character 64 on."""
    text = corpus_text[:300]
    chunked = score_text(ckpt.build_model(), ckpt.vocab, text, chunk=64).surprise
    whole = surprise_in_one_pass(ckpt, text)
    assert chunked == pytest.approx(whole, abs=1e-5)
    restarted = score_text(ckpt.build_model(), ckpt.vocab, text[64:], chunk=64).surprise
    assert restarted[:8] != pytest.approx(whole[64:72], abs=1e-3)  # what forgetting the state looks like


def test_the_command_scores_a_text_longer_than_its_chunk(tiny_checkpoint, ckpt, corpus_text, tmp_path):
    text = corpus_text[:5000]  # the command scores in chunks of 2048
    (tmp_path / "long.txt").write_text(text)
    code, out, _ = run("score", "-c", tiny_checkpoint, "--json", tmp_path / "long.txt")
    assert code == 0
    got = [c["surprise_nats"] for c in json.loads(out)["per_char"]]
    assert got == pytest.approx(surprise_in_one_pass(ckpt, text), abs=1e-4)


def test_unknown_characters_fail_or_are_dropped(tiny_checkpoint, ckpt, tmp_path):
    (tmp_path / "t.txt").write_text("KING: 0 @ the crown")
    assert "'0', '@'" in fails("score", "-c", tiny_checkpoint, tmp_path / "t.txt")
    code, out, err = run("score", "-c", tiny_checkpoint, "--drop-unknown", "--json", tmp_path / "t.txt")
    assert code == 0 and err == "note: dropped 2 character(s) the model does not know: '0', '@'\n"
    kept = "KING:   the crown"
    got = json.loads(out)
    assert "".join(c["char"] for c in got["per_char"]) == kept
    assert [c["surprise_nats"] for c in got["per_char"]] == pytest.approx(surprise_in_one_pass(ckpt, kept), abs=1e-5)
    (tmp_path / "alien.txt").write_text("0123@@")
    assert fails("score", "-c", tiny_checkpoint, "--drop-unknown", tmp_path / "alien.txt") == (
        f"Error: {tmp_path / 'alien.txt'} has no characters the model knows (only '0', '1', '2', '3', '@'); "
        "use a text in its vocabulary")


def test_missing_empty_and_not_utf8(tiny_checkpoint, tmp_path):
    assert fails("score", "-c", tiny_checkpoint, tmp_path / "nope.txt") == (
        f"Error: text file not found: {tmp_path / 'nope.txt'}; check the path")
    (tmp_path / "empty.txt").write_text("")
    assert "is empty" in fails("score", "-c", tiny_checkpoint, tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("KING: héllo".encode("latin-1"))
    assert "is not UTF-8 text (invalid byte 0xe9 at byte 7)" in fails("score", "-c", tiny_checkpoint,
                                                                      tmp_path / "latin1.txt")
