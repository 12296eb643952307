"""The bundled checkpoint: it loads, it knows Shakespeare from noise, and it writes words."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch

from charlstm_tui import BUNDLED_CHECKPOINT

TINYSHAKESPEARE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
needs_shared_data = pytest.mark.skipif(not TINYSHAKESPEARE.exists(), reason="../shared/data/tinyshakespeare.txt is absent")

LINE = "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
WORDS = {w for w in (Path(__file__).parent / "data" / "common_words.txt").read_text().split() if not w.startswith("#")}


@pytest.fixture(scope="module")
def bundled():
    from core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(BUNDLED_CHECKPOINT)
    return ckpt, ckpt.build_model()


def test_bundled_checkpoint_is_small_and_complete(bundled) -> None:
    ckpt, model = bundled
    assert BUNDLED_CHECKPOINT.stat().st_size <= 20 * 1024 * 1024
    assert ckpt.vocab.size == 65 and "\n" in ckpt.vocab
    assert ckpt.best_val_loss is not None and ckpt.best_val_loss < 1.6
    assert len(ckpt.history) >= 2 and ckpt.step > 0


def test_the_bundled_gradient_statistics_are_for_the_bundled_weights(bundled) -> None:
    """charlstm-tui train stored them in the file: the app never waits to measure them."""
    from core.adapt_stats import stats_for

    ckpt, model = bundled
    stats = stats_for(model, ckpt, BUNDLED_CHECKPOINT, note=pytest.fail)  # found beside it, not measured
    assert stats.source == "tinyshakespeare (train split)"


def test_real_line_beats_the_same_characters_shuffled(bundled) -> None:
    from core.score import score_text

    ckpt, model = bundled
    shuffled = list(LINE)
    random.Random(0).shuffle(shuffled)
    real = score_text(model, ckpt.vocab, LINE).loss
    noise = score_text(model, ckpt.vocab, "".join(shuffled)).loss
    assert real < 2.0, real
    assert noise > real + 1.0, (real, noise)


def test_generation_at_low_temperature_is_mostly_real_words(bundled) -> None:
    from core.sampling import SampleConfig, Sampler

    ckpt, model = bundled
    text = Sampler(model, ckpt.vocab).generate("ROMEO:", SampleConfig(temperature=0.5, length=600, seed=1))
    words = re.findall(r"[a-z]+", text.lower())
    assert len(words) > 50
    known = sum(w in WORDS for w in words) / len(words)
    assert known >= 0.8, (known, text)


@needs_shared_data
def test_stored_best_val_matches_a_fresh_eval(bundled) -> None:
    from core.data import TextData, load_text
    from core.evaluate import evaluate

    ckpt, model = bundled
    data = TextData.from_text(load_text(TINYSHAKESPEARE), vocab=ckpt.vocab)
    # bf16 keeps this test near its 5 s budget (fp32 takes ~12 s on 2 cores); it moves the
    # loss by about 0.001, well inside the tolerance.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fresh = evaluate(model, data, "val", int(ckpt.train["config"]["block_size"]))
    assert abs(fresh.loss - ckpt.best_val_loss) <= 0.02, (fresh.loss, ckpt.best_val_loss)
