"""The generation process: a forked child samples, the app's session takes the result back.

Real forks, real pipes, a real SIGKILL. The child must make exactly the characters an
in-process Session makes, end where the shown text ends, and fail with one line."""

from __future__ import annotations

import os
import signal
import time
from array import array
from pathlib import Path
from typing import Iterator

import pytest
import torch

from charlstm_tui.bridge import Sampling
from charlstm_tui.generation_process import GenerationError, GenerationProcess, available
from core.model import LMNet, ModelConfig
from core.sampling import SampleConfig, Sampler
from core.session import Session
from core.vocab import CharVocab

pytestmark = pytest.mark.skipif(not available(), reason="the generation process needs fork (Linux)")


@pytest.fixture(scope="module")
def sampler() -> Sampler:
    """Two layers, so the flat [h | c] state crosses the pipe in its real layout."""
    torch.manual_seed(0)
    vocab = CharVocab.from_text("abcdefghij KLMN:\n")
    return Sampler(LMNet(ModelConfig(vocab_size=vocab.size, n_embd=24, n_layers=2)).eval(), vocab)


@pytest.fixture
def process(sampler: Sampler) -> Iterator[GenerationProcess]:
    p = GenerationProcess(sampler, block_size=16)
    yield p
    p.close()


def fixed(config: SampleConfig, delay: float = 0.0) -> Sampling:
    return Sampling(config, delay)


def drain(process: GenerationProcess, session: Session, config: SampleConfig) -> tuple[list[int], list[float]]:
    ids, probs = [], []
    for chunk_ids, chunk_probs in process.generate(session, fixed(config), lambda: False):
        ids += chunk_ids
        probs += chunk_probs
    return ids, probs


def local(sampler: Sampler, prompt: str, *configs: SampleConfig) -> Session:
    s = Session(sampler, block_size=16)
    s.feed(prompt)
    for config in configs:
        list(s.generate(config))
    return s


@pytest.mark.parametrize("mode", ["stateful", "window"])
@pytest.mark.parametrize("prompt", ["KLM:", ""])
def test_the_child_samples_what_a_session_here_samples(sampler, process, mode: str, prompt: str) -> None:
    config = SampleConfig(length=150, seed=7, mode=mode, block_size=16)
    session = Session(sampler, block_size=16)
    session.feed(prompt)
    ids, probs = drain(process, session, config)
    here = local(sampler, prompt, config)
    assert session.ids == here.ids and len(ids) == 150
    assert array("f", probs) == here.probs[len(here) - 150:]
    # The state came back: continuing here is the same as continuing there.
    assert "".join(sampler.vocab.chars[i] for i, _ in session.generate(config)) == \
        "".join(sampler.vocab.chars[i] for i, _ in here.generate(config))


def test_runs_continue_from_the_state_the_last_one_left(sampler, process) -> None:
    config = SampleConfig(length=40, seed=3)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    drain(process, session, config)
    session.feed("\nMN:")
    drain(process, session, config)
    here = local(sampler, "KLM:", config)
    here.feed("\nMN:")
    list(here.generate(config))
    assert session.text == here.text


def test_looking_back_after_a_run_is_as_cheap_and_exact_as_here(sampler, process) -> None:
    config = SampleConfig(length=300, seed=1)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    drain(process, session, config)
    here = local(sampler, "KLM:", config)
    for pos in (4, 64, 250, 290, 303, 304):
        assert pos in session.snapshots  # kept on the way in the child, brought back
        for a, b in zip(session.state_at(pos), here.state_at(pos)):
            assert torch.equal(a, b)


def test_a_stop_ends_the_session_at_the_last_chunk_taken(sampler, process) -> None:
    config = SampleConfig(length=100_000, seed=2)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    taken: list[int] = []
    chunks = process.generate(session, fixed(config), lambda: False)
    for ids, _ in chunks:
        if len(taken) >= 10:
            break  # this chunk is not taken (not shown): as with Session.generate, it is left out
        taken += ids
    chunks.close()
    assert len(session) == 4 + len(taken)
    here = local(sampler, "KLM:", config.with_(length=len(taken)))
    assert session.ids == here.ids
    # The child ran far past the stop (this model is fast), yet the state there is exact:
    # a continuation is the one a session stopped right there would give.
    assert torch.equal(session.state_at(len(session))[1], here.state_at(len(here))[1])
    assert torch.equal(session._logits, here._logits)
    more = SampleConfig(length=50, seed=9)
    assert [i for i, _ in session.generate(more)] == [i for i, _ in here.generate(more)]


def test_settings_reach_the_child_mid_run(sampler, process) -> None:
    greedy = Sampling(SampleConfig(length=400, seed=1, temperature=0.0), 0.0)
    start = Sampling(SampleConfig(length=400, seed=1, temperature=1.0), 0.003)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    seen = 0
    for ids, probs in process.generate(session, start, lambda: False):
        seen += len(ids)
        if 5 <= seen < 5 + len(ids):
            process.update(greedy)  # pushed once: from here on greedy, no delay, 400 in all
    assert len(session) == 4 + 400
    # The greedy tail: each character is the argmax of the one before's distribution.
    tail = session.ids[-50:]
    for pos in range(len(session) - 50, len(session)):
        assert int(session.next_probs(pos - 1).argmax()) == session.ids[pos - 1 - session.offset + 1]
    assert tail


def test_an_update_between_runs_goes_nowhere(sampler, process) -> None:
    process.update(Sampling(SampleConfig(temperature=0.0), 0.0))  # no run: nothing is sent
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    config = SampleConfig(length=60, seed=5)
    ids, _ = drain(process, session, config)
    assert session.ids == local(sampler, "KLM:", config).ids


def test_a_killed_child_is_one_line_and_the_session_stays_whole(sampler, process) -> None:
    config = SampleConfig(length=100_000, seed=4)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    taken: list[int] = []
    with pytest.raises(GenerationError, match=r"killed by signal 9\); the next run starts a new one") as e:
        for ids, _ in process.generate(session, fixed(config, delay=0.001), lambda: False):
            taken += ids
            if len(taken) >= 20 and process.alive:
                os.kill(process._proc.pid, signal.SIGKILL)
    assert "\n" not in str(e.value)
    assert not process.alive
    # Every character shown is in the context, and the state after them was rebuilt here.
    here = local(sampler, "KLM:", config.with_(length=len(session) - 4))
    assert session.ids == here.ids
    assert torch.allclose(session.state_at(len(session))[1], here.state_at(len(here))[1], atol=1e-5)
    # The app forks a new child for the next run and goes on from there.
    fresh = GenerationProcess(sampler, block_size=16)
    try:
        drain(fresh, session, SampleConfig(length=10, seed=1))
        assert len(session) == len(here) + 10
    finally:
        fresh.close()


def test_close_ends_the_child_even_mid_run(sampler) -> None:
    process = GenerationProcess(sampler, block_size=16)
    session = Session(sampler, block_size=16)
    session.feed("KLM:")
    chunks = process.generate(session, fixed(SampleConfig(length=100_000, seed=1)), lambda: False)
    next(chunks)
    pid = process._proc.pid
    start = time.perf_counter()
    process.close()
    assert not process.alive and time.perf_counter() - start < 2
    with pytest.raises(OSError):
        os.kill(pid, 0)  # reaped: not even a zombie
    start = time.perf_counter()
    with pytest.raises(GenerationError, match="closed mid-run"):
        chunks.close()  # the run in flight cannot land: one clear error, at once
    assert time.perf_counter() - start < 1


def test_the_child_generates_after_the_app_ran_torch_on_several_threads(sampler) -> None:
    """GNU OpenMP hangs in a forked child that opens a parallel region after its parent
    did: the child runs on one thread whatever the app ran before (training, say)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.randn(600, 600)
        for _ in range(3):
            a @ a  # the parent's OpenMP pool is up
        process = GenerationProcess(sampler, block_size=16)
    finally:
        torch.set_num_threads(threads)
    try:
        session = Session(sampler, block_size=16)
        session.feed("KLM:")
        ids, _ = drain(process, session, SampleConfig(length=60, seed=1))
        assert len(ids) == 60
    finally:
        process.close()
