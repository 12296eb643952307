"""core.session: the app's generation session (pure torch, tested on the tiny model)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint
from core.errors import ConfigError
from core.sampling import SampleConfig, Sampler
from core.session import Session, SnapshotStore


@pytest.fixture(scope="module")
def sampler(tiny_checkpoint: Path) -> Sampler:
    ckpt = load_checkpoint(tiny_checkpoint)
    return Sampler(ckpt.build_model(), ckpt.vocab)


def run(session: Session, **config) -> str:
    return "".join(session.vocab.chars[i] for i, _ in session.generate(SampleConfig(**config)))


@pytest.mark.parametrize("mode", ["stateful", "window"])
@pytest.mark.parametrize("prompt", ["KING:", ""])
def test_matches_the_sampler(sampler: Sampler, mode: str, prompt: str) -> None:
    config = SampleConfig(length=120, seed=3, mode=mode, block_size=16)
    s = Session(sampler, block_size=16)
    s.feed(prompt)
    assert run(s, length=120, seed=3, mode=mode, block_size=16) == sampler.generate(prompt, config)
    assert s.text == prompt + sampler.generate(prompt, config)


def test_continue_and_fed_text_extend_the_state(sampler: Sampler) -> None:
    s = Session(sampler)
    s.feed("KING:")
    a = run(s, length=30, seed=1)
    s.feed("\nQUEEN:")
    b = run(s, length=30, seed=2)
    # The same as priming the whole text at once and sampling from there.
    fresh = Session(sampler)
    fresh.feed("KING:" + a + "\nQUEEN:")
    assert run(fresh, length=30, seed=2) == b
    assert s.text == "KING:" + a + "\nQUEEN:" + b


def test_probabilities_are_kept_per_character(sampler: Sampler) -> None:
    s = Session(sampler)
    s.feed("LORD:")
    yielded = [p for _, p in s.generate(SampleConfig(length=20, seed=5))]
    assert all(math.isnan(p) for p in s.probs[:5])
    assert list(s.probs[5:]) == pytest.approx(yielded)
    assert all(0 < p <= 1 for p in yielded)
    greedy = [p for _, p in s.generate(SampleConfig(length=5, temperature=0))]
    probs = s.next_probs(len(s) - 1, temperature=1.0)
    assert probs[s.ids[-1]].item() == pytest.approx(greedy[-1], rel=1e-5)
    assert probs.argmax().item() == s.ids[-1]


def test_state_at_any_position_equals_priming_that_prefix(sampler: Sampler) -> None:
    s = Session(sampler, snapshots=SnapshotStore(dense=16, stride=8))
    s.feed("KING:")
    run(s, length=100, seed=1)
    text = s.text
    for pos in (0, 3, 5, 40, 77, 90, 104, 105):
        h, c = s.state_at(pos)
        if pos:
            _, (rh, rc) = sampler.prime(s.vocab.encode(text[:pos]))
        else:
            rh, rc = sampler.zero_state()
        assert torch.allclose(h, rh, atol=1e-5) and torch.allclose(c, rc, atol=1e-5), pos


def test_rewind_then_generate_is_a_fork(sampler: Sampler) -> None:
    s = Session(sampler)
    s.feed("QUEEN:")
    run(s, length=50, seed=1)
    text = s.text
    s.rewind(20)
    assert s.text == text[:20] and len(s) == 20
    forked = run(s, length=30, seed=9)
    fresh = Session(sampler)
    fresh.feed(text[:20])
    assert run(fresh, length=30, seed=9) == forked
    s.rewind(0)
    assert len(s) == 0 and s.text == ""


def test_rewind_forgets_every_state_past_the_rewind_point(sampler: Sampler) -> None:
    """States kept for the text after a rewind point describe text that no longer exists.
    A pinned one (the end of a fed text) outlives the ring: were it kept, looking back at
    that position in the new text would read the old text's state."""
    s = Session(sampler, snapshots=SnapshotStore(dense=16, stride=64))
    s.feed("KING:")
    run(s, length=60, seed=1)
    s.feed("\nQUEEN:")  # pins the state at its end
    pinned = len(s)
    run(s, length=40, seed=2)
    s.rewind(20)
    assert max(s.snapshots.since(0)) == 20
    run(s, length=120, seed=3)  # a new text past the old pin; the ring has moved on since
    text = s.text
    assert max(s.snapshots.since(0)) == len(s)
    for pos in (pinned, 64, 100, len(s)):
        h, c = s.state_at(pos)
        _, (rh, rc) = sampler.prime(s.vocab.encode(text[:pos]))
        assert torch.allclose(h, rh, atol=1e-5) and torch.allclose(c, rc, atol=1e-5), pos


def test_stopping_keeps_only_characters_the_consumer_took(sampler: Sampler) -> None:
    s = Session(sampler)
    s.feed("KING:")
    taken = []
    for i, _ in s.generate(SampleConfig(length=100, seed=1)):
        if len(taken) == 10:
            break  # the 11th was yielded but not taken: it must not join the context
        taken.append(i)
    assert s.ids[5:].tolist() == taken
    stop = threading.Event()
    got = []
    for i, _ in s.generate(SampleConfig(length=100, seed=1), stop):
        got.append(i)
        if len(got) == 4:
            stop.set()  # taken, then stopped: all four stay
    assert len(s) == 5 + 10 + 4


def test_settings_can_change_mid_stream(sampler: Sampler) -> None:
    s = Session(sampler)
    s.feed("LORD:")
    config = SampleConfig(length=1000, seed=1)
    box = [config]
    n = 0
    for _ in s.generate(lambda: box[0]):
        n += 1
        if n == 10:
            box[0] = config.with_(length=15)  # shortened while running
    assert n == 15


def test_memory_stays_bounded(sampler: Sampler) -> None:
    s = Session(sampler, max_context=500, snapshots=SnapshotStore(dense=64, stride=32))
    s.feed("KING:")
    run(s, length=3000, seed=1)
    assert len(s) == 3005 and len(s.ids) <= 500 and s.offset == 3005 - len(s.ids)
    assert len(s.snapshots) <= 64 + 500 // 32 + 2
    with pytest.raises(ConfigError, match="outside the kept context"):
        s.state_at(10)
    h, _ = s.state_at(len(s) - 100)  # still reachable: rebuilt from a strided snapshot
    assert h.shape == (1, 1, 32)


def test_feed_drops_unknown_characters(sampler: Sampler) -> None:
    s = Session(sampler)
    assert s.feed("KING€:é") == "€é"
    assert s.text == "KING:"


def test_a_lost_state_is_rebuilt_from_the_context(sampler: Sampler) -> None:
    """What the app does when its generation process dies mid-run: the characters it
    showed are in the context, and the state after them is recomputed here."""
    config = SampleConfig(length=70, seed=2)
    here = Session(sampler)
    here.feed("KING:")
    ids = [i for i, _ in here.generate(config)]
    s = Session(sampler)
    s.feed("KING:")
    s.append_sampled(ids, [0.5] * len(ids))
    s.rebuild_end()
    assert s.text == here.text and list(s.probs[-70:]) == [0.5] * 70
    assert torch.allclose(s.state_at(len(s))[1], here.state_at(len(here))[1], atol=1e-5)
    # A context that began in the other process (no state here at all) began from the
    # lab's '\n', as generate does from nothing: it is read again from there.
    begun = Session(sampler)
    ids = [i for i, _ in begun.generate(config)]
    fresh = Session(sampler)
    fresh.append_sampled(ids, [0.5] * len(ids))
    fresh.rebuild_end()
    assert fresh.text == begun.text and len(fresh) == 70
    assert torch.allclose(fresh.state_at(70)[1], begun.state_at(70)[1], atol=1e-5)
