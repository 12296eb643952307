"""The quick preset's choice of sizes for tiny, medium and large corpora."""

from __future__ import annotations

from dataclasses import replace

import pytest

import core.machine
from core.quick import QUICK, TOKENS_PER_PARAM, WIDTHS, adapt_quick, plan_quick, quick_sizes
from core.train import preset


def test_quick_is_a_preset_bounded_by_time():
    assert preset("quick") is QUICK
    assert QUICK.time_limit is not None and QUICK.time_limit * 60 <= 95  # leaves room for start-up and the last evaluation in 100 s
    assert QUICK.validate() is QUICK


@pytest.mark.parametrize(("n_chars", "expected"), [
    (3_000, (64, 32, 16, 0.1, 0.3)),  # a poem
    (19_999, (64, 32, 16, 0.1, 0.3)),
    (20_000, (128, 64, 16, 0.1, 0.3)),  # a diary
    (150_000, (128, 64, 16, 0.1, 0.3)),
    (1_115_394, (192, 256, 8, 0.0, 0.0)),  # Tiny Shakespeare: plan_quick then sizes it by this machine's speed
    (50_000_000, (192, 256, 8, 0.0, 0.0)),  # large: the time budget, not the text, bounds the model
])
def test_quick_sizes_grow_with_the_corpus(n_chars, expected):
    sizes = quick_sizes(n_chars)
    assert tuple(sizes[k] for k in ("n_embd", "block_size", "batch_size", "dropout", "weight_drop")) == expected


def test_a_large_text_gets_more_weight_decay_unless_the_user_set_it():
    assert adapt_quick(QUICK, 1_115_394)[0].weight_decay == 0.1
    assert adapt_quick(QUICK, 46_000)[0].weight_decay == QUICK.weight_decay == 0.01
    assert adapt_quick(replace(QUICK, weight_decay=0.3), 1_115_394, explicit={"weight_decay"})[0].weight_decay == 0.3


def test_a_very_short_text_is_said_to_teach_little():
    assert adapt_quick(QUICK, 178)[1].endswith("; a text this short teaches a model little: "
                                               "a few pages or more make one worth sampling")
    assert "teaches" not in adapt_quick(QUICK, 2_000)[1]


def test_sizes_never_shrink_as_the_corpus_grows():
    sizes = [quick_sizes(n) for n in (10, 1_000, 20_000, 200_000, 1_000_000, 10**9)]
    assert [s["n_embd"] for s in sizes] == sorted(s["n_embd"] for s in sizes)
    assert [s["block_size"] for s in sizes] == sorted(s["block_size"] for s in sizes)


def test_a_small_text_gets_at_most_25_passes():
    config, message = adapt_quick(QUICK, 46_000)  # 41,400 train chars, 16 x 64 a step
    assert config.max_iters == 1_011 and message.endswith(", 1.55 min, at most 1,011 steps")
    big, message = adapt_quick(QUICK, 1_115_394)
    assert big.max_iters == QUICK.max_iters and "at most" not in message  # the clock ends it first
    pinned, _ = adapt_quick(replace(QUICK, max_iters=50_000), 46_000, explicit={"max_iters"})
    assert pinned.max_iters == 50_000


@pytest.mark.parametrize("n_chars", [40, 300, 1_000, 5_000])
def test_tiny_corpus_gets_a_block_its_val_split_can_hold(n_chars):
    config, _ = adapt_quick(QUICK, n_chars)
    n_val = n_chars - int(n_chars * 0.9)
    assert 1 <= config.block_size < n_val  # sample_batch needs block + 1 characters in each split


def test_adapt_quick_says_what_it_chose():
    config, message = adapt_quick(QUICK, 1_115_394)
    assert (config.n_embd, config.block_size, config.dropout) == (192, 256, 0.0)
    assert message == "quick preset for 1,115,394 chars: 1x192 LSTM, batch 8 x block 256, dropout 0, 1.55 min"
    medium, message = adapt_quick(QUICK, 60_000)
    assert (medium.n_embd, medium.block_size, medium.dropout, medium.weight_drop) == (128, 64, 0.1, 0.3)
    assert "1x128 LSTM, batch 16 x block 64, dropout 0.1, weight drop 0.3, 1.55 min, at most 1,319 steps" in message


def test_options_the_user_set_win():
    config, message = adapt_quick(replace(QUICK, n_embd=48), 3_000, explicit={"n_embd"})
    assert config.n_embd == 48 and config.block_size == 32
    assert "1x48 LSTM" in message


def fake_machine(monkeypatch, chars_per_s_at_256: float) -> list[int]:
    """This machine's speed, as the probe would time it: a step's work grows with width
    squared. Returns the widths the probe timed."""
    timed = []

    def time_paths(model, batch, block, amp_dtype, paths=(False, True), runs=3):
        width = model.config.n_embd
        timed.append(width)
        seconds = batch * min(block, 64) / chars_per_s_at_256 * (width / 256) ** 2
        return dict.fromkeys(paths, seconds)

    monkeypatch.setattr(core.machine, "time_paths", time_paths)
    return timed


@pytest.mark.parametrize(("speed", "width"), [
    (5_000, 128),  # a slow laptop: the narrowest
    (25_000, 192),  # about 8 chars a parameter for 1x192 in 84 s
    (60_000, 256),
    (2_000_000, 512),  # a fast machine: the widest
])
def test_plan_quick_picks_the_widest_model_the_machine_feeds_enough(monkeypatch, speed, width):
    timed = fake_machine(monkeypatch, speed)
    config, message = plan_quick(replace(QUICK, device="cpu"), 1_115_394, 65)
    assert config.n_embd == width and timed == [w for w in WIDTHS if w <= width] + [w for w in WIDTHS if w > width][:1]
    assert f"1x{width} is the widest this machine feeds {TOKENS_PER_PARAM} chars a parameter" in message
    assert 1.3 < config.time_limit < QUICK.time_limit  # the probe's seconds come out of the budget


def test_plan_quick_probes_only_large_texts_on_the_cpu_with_the_width_left_to_it(monkeypatch):
    timed = fake_machine(monkeypatch, 60_000)
    small, _ = plan_quick(QUICK, 60_000, 65)
    assert small == adapt_quick(QUICK, 60_000)[0]
    pinned, _ = plan_quick(replace(QUICK, n_embd=300), 1_115_394, 65, explicit={"n_embd"})
    assert pinned.n_embd == 300 and pinned.time_limit == QUICK.time_limit
    assert timed == []


def test_a_slow_probe_stops_early_and_never_takes_more_than_half_the_budget(monkeypatch):
    import time

    def time_paths(model, batch, block, amp_dtype, paths=(False, True), runs=3):
        time.sleep(0.08)  # a machine so busy that each width takes long to time
        return dict.fromkeys(paths, 1e-4)

    monkeypatch.setattr(core.machine, "time_paths", time_paths)
    config, message = plan_quick(replace(QUICK, device="cpu", time_limit=0.05), 1_115_394, 65)
    assert config.n_embd < WIDTHS[-1]  # a fast machine, but the probe's share of 3 s ran out first
    assert config.time_limit >= 0.025
