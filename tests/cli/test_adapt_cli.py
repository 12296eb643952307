"""``eval --adapt`` and ``score --adapt``: both figures, named, from one read each; bad input
is one line. Figures are checked against core's Adapter directly."""

from __future__ import annotations

import json

import pytest
from test_cli import fails, run

from core.adapt import AdaptConfig, Adapter
from core.adapt_stats import stats_for
from core.checkpoint import load_checkpoint
from core.data import TextData


@pytest.fixture(scope="module")
def text(corpus_text) -> str:
    return corpus_text[:1_500]


@pytest.fixture
def text_file(tmp_path, text):
    path = tmp_path / "poem.txt"
    path.write_text(text, encoding="utf-8")
    return path


def expected(checkpoint, text: str, **config) -> tuple[float, float]:
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    adapter = Adapter(model, stats_for(model, ckpt, checkpoint), AdaptConfig(**config), start_id=ckpt.vocab.newline_id)
    ids = ckpt.vocab.encode(text)
    static = adapter.read(ids, learn=False).surprise
    adapter.restart()
    adapted = adapter.read(ids).surprise
    return sum(static) / len(static), sum(adapted) / len(adapted)


def test_eval_adapt_prints_the_static_and_the_adapted_figure_on_the_same_split(tiny_checkpoint, corpus_file, corpus_text):
    code, out, err = run("eval", "-c", tiny_checkpoint, "--data", corpus_file, "--adapt", "--adapt-step", "1e-3")
    assert code == 0, err
    static_line, adapted_line, gain_line = out.splitlines()
    n = len(TextData.from_text(corpus_text).val)
    assert "state carried" in static_line and f"({n:,} chars, state carried)" in static_line
    assert "adapted as read" in adapted_line and f"({n:,} chars, adapted as read" in adapted_line
    val_text = load_checkpoint(tiny_checkpoint).vocab.decode(TextData.from_text(corpus_text).val.tolist())
    static, adapted = expected(tiny_checkpoint, val_text, step=1e-3)
    assert f"loss {static:.4f} nats/char" in static_line and f"loss {adapted:.4f} nats/char" in adapted_line
    assert adapted < static and f"gained {static - adapted:.4f} nats/char" in gain_line


def test_score_adapt_json_gives_both_surprises_per_character(tiny_checkpoint, text_file, text):
    code, out, err = run("score", text_file, "-c", tiny_checkpoint, "--adapt", "--json", "--adapt-segment", "30",
                         "--adapt-step", "2e-3", "--adapt-decay", "0.01")
    assert code == 0, err
    result = json.loads(out)
    static, adapted = expected(tiny_checkpoint, text, segment=30, step=2e-3, decay=0.01)
    assert result["chars"] == len(text) == len(result["per_char"])
    assert result["nats_per_char"] == pytest.approx(static, abs=1e-9)
    assert result["adapted"] == pytest.approx({"nats_per_char": adapted, "bits_per_char": adapted / 0.6931471805599453,
                                               "perplexity": pytest.approx(2.718281828459045 ** adapted),
                                               "segment": 30, "step": 2e-3, "decay": 0.01})
    assert "".join(c["char"] for c in result["per_char"]) == text
    first = result["per_char"][:30]  # the first segment is scored before any step: the same both ways
    assert all(c["surprise_nats"] == c["adapted_surprise_nats"] for c in first)
    later = result["per_char"][30:]
    assert sum(c["adapted_surprise_nats"] for c in later) < sum(c["surprise_nats"] for c in later)


def test_score_adapt_with_step_zero_prints_the_same_figure_twice(tiny_checkpoint, text_file):
    code, out, err = run("score", text_file, "-c", tiny_checkpoint, "--adapt", "--adapt-step", "0")
    assert code == 0, err
    static_line, adapted_line = out.splitlines()
    assert "state carried" in static_line and "adapted as read" in adapted_line
    assert static_line.split(" (")[0] == adapted_line.split(" (")[0]


def test_the_help_states_the_defaults_adapting_uses():
    code, out, _ = run("score", "--help")
    text = " ".join(out.split())
    assert code == 0
    for option, value in (("segment", AdaptConfig.segment), ("step", AdaptConfig.step), ("decay", AdaptConfig.decay)):
        assert f"--adapt-{option}" in text and f"[default: {value:g}]" in text, option


def test_score_without_adapt_is_unchanged(tiny_checkpoint, text_file):
    code, out, _ = run("score", text_file, "-c", tiny_checkpoint, "--json")
    assert code == 0 and "adapted" not in json.loads(out)


@pytest.mark.parametrize("args, says", [
    (("--adapt-step", "1e-3"), "--adapt-step needs --adapt"),
    (("--adapt", "--adapt-step", "-1"), "--adapt-step"),
    (("--adapt", "--adapt-segment", "0"), "--adapt-segment"),
    (("--adapt", "--adapt-decay", "2"), "--adapt-decay"),
])
def test_bad_adapt_settings_are_one_line(tiny_checkpoint, text_file, args, says):
    assert says in fails("score", text_file, "-c", tiny_checkpoint, *args)


@pytest.mark.parametrize("extra", [("--context", "window"), ("--context", "stream"), ("--block-size", "16")])
def test_eval_adapt_refuses_options_that_do_not_apply(tiny_checkpoint, corpus_file, extra):
    assert "drop" in fails("eval", "-c", tiny_checkpoint, "--data", corpus_file, "--adapt", *extra)


def test_score_adapt_on_unknown_characters_is_one_line(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("KING: ☃ snow", encoding="utf-8")
    assert "☃" in fails("score", bad, "-c", tiny_checkpoint, "--adapt")


def test_score_adapt_leaves_the_checkpoint_and_its_folder_alone(tiny_checkpoint, text_file, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "m.pt"
    path.write_bytes(tiny_checkpoint.read_bytes())
    before = path.read_bytes()
    code, _, err = run("score", text_file, "-c", path, "--adapt", "--adapt-step", "1e-2")
    assert code == 0, err
    assert path.read_bytes() == before and [p.name for p in folder.iterdir()] == ["m.pt"]
