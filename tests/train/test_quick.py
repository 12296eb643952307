"""The quick preset's choice of sizes for tiny, medium and large corpora."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.quick import QUICK, adapt_quick, quick_sizes
from core.train import preset


def test_quick_is_a_preset_bounded_by_time():
    assert preset("quick") is QUICK
    assert QUICK.time_limit is not None and QUICK.time_limit * 60 <= 90  # leaves room for start-up in 100 s
    assert QUICK.validate() is QUICK


@pytest.mark.parametrize(("n_chars", "expected"), [
    (3_000, (64, 32, 0.1)),  # a poem
    (19_999, (64, 32, 0.1)),
    (20_000, (128, 64, 0.1)),  # a diary
    (150_000, (128, 64, 0.1)),
    (1_115_394, (256, 128, 0.0)),  # Tiny Shakespeare
    (50_000_000, (256, 128, 0.0)),  # large: the time budget, not the text, bounds the model
])
def test_quick_sizes_grow_with_the_corpus(n_chars, expected):
    assert quick_sizes(n_chars) == expected


def test_sizes_never_shrink_as_the_corpus_grows():
    sizes = [quick_sizes(n) for n in (10, 1_000, 20_000, 200_000, 1_000_000, 10**9)]
    assert [s[0] for s in sizes] == sorted(s[0] for s in sizes)
    assert [s[1] for s in sizes] == sorted(s[1] for s in sizes)


@pytest.mark.parametrize("n_chars", [40, 300, 1_000, 5_000])
def test_tiny_corpus_gets_a_block_its_val_split_can_hold(n_chars):
    config, _ = adapt_quick(QUICK, n_chars)
    n_val = n_chars - int(n_chars * 0.9)
    assert 1 <= config.block_size < n_val  # sample_batch needs block + 1 characters in each split


def test_adapt_quick_says_what_it_chose():
    config, message = adapt_quick(QUICK, 1_115_394)
    assert (config.n_embd, config.block_size, config.dropout) == (256, 128, 0.0)
    assert message == "quick preset for 1,115,394 chars: 1x256 LSTM, block 128, dropout 0, 1.4 min"
    medium, message = adapt_quick(QUICK, 60_000)
    assert (medium.n_embd, medium.block_size, medium.dropout) == (128, 64, 0.1)
    assert "1x128 LSTM, block 64, dropout 0.1" in message


def test_options_the_user_set_win():
    config, message = adapt_quick(replace(QUICK, n_embd=48), 3_000, explicit={"n_embd"})
    assert config.n_embd == 48 and config.block_size == 32
    assert "1x48 LSTM" in message
