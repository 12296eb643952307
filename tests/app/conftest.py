"""Helpers for driving the app with Textual's Pilot on the tiny checkpoint.

Tests are plain functions that call :func:`drive`, which runs an async script inside
``App.run_test``. Waiting is always on a condition (the model loaded, a run finished,
a screen shown) checked after each processed frame, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from charlstm_tui.app import CharLSTMApp
from textual.pilot import Pilot

TIMEOUT = 60.0  # generous: the suite shares 2 cores with other work


async def wait_for(pilot: Pilot, condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> None:
    """Let the app run until ``condition()`` is true (checked after each short pause)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


async def loaded(pilot: Pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.main.model is not None, "the model to load")


async def finished(pilot: Pilot) -> None:
    """Wait for the current run's worker to end and its last characters to be shown."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await wait_for(pilot, lambda: app.main.run is not None and app.main.run.finished, "the run to finish")
    await pilot.pause()


def drive(app: CharLSTMApp, script: Callable[[Pilot], Awaitable[None]], size: tuple[int, int] = (110, 34),
          wait_loaded: bool = True) -> None:
    """Run ``script(pilot)`` against ``app`` in a headless terminal of ``size``."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            if wait_loaded:
                await loaded(pilot)
            await script(pilot)

    asyncio.run(main())


def write_settings(**values: Any) -> Path:
    """Pre-set the persisted settings (in the test's own XDG data dir)."""
    from charlstm_tui.settings import settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


def expected(checkpoint: Path, prompt: str, *, length: int, seed: int, temperature: float = 0.8, **sampling: Any) -> str:
    """What core's Session generates for ``prompt`` (``sampling``: top_k, top_p, mode), with
    the checkpoint's block size as the window: the app must show exactly this."""
    return expected_run(checkpoint, prompt, length=length, seed=seed, temperature=temperature, **sampling)[0]


def expected_run(checkpoint: Path, prompt: str, *, length: int, seed: int, temperature: float = 0.8,
                 **sampling: Any) -> tuple[str, list[float]]:
    """:func:`expected`, with the probability each character was sampled with."""
    from core.checkpoint import load_checkpoint
    from core.sampling import SampleConfig, Sampler
    from core.session import Session

    ckpt = load_checkpoint(checkpoint)
    block = int(ckpt.train["config"]["block_size"])
    session = Session(Sampler(ckpt.build_model(), ckpt.vocab), block_size=block)
    session.feed(prompt)
    config = SampleConfig(temperature=temperature, length=length, seed=seed, block_size=block, **sampling)
    picks = list(session.generate(config))
    return "".join(ckpt.vocab.chars[i] for i, _ in picks), [p for _, p in picks]


async def type_text(pilot: Pilot, text: str) -> None:
    """Type ``text`` key by key (newlines with Ctrl+J, as a user would)."""
    for ch in text:
        await pilot.press("ctrl+j" if ch == "\n" else "space" if ch == " " else ch)


async def paste(pilot: Pilot, text: str) -> None:
    """Paste ``text`` as the terminal does (a bracketed paste reaches the focused widget)."""
    from textual import events

    pilot.app.post_message(events.Paste(text))
    await pilot.pause()


def screen_lines(app: CharLSTMApp) -> list[str]:
    """The screen as the user sees it, one string per row (the top screen drawn)."""
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


async def burst(pilot: Pilot, key: str, count: int) -> None:
    """Send ``key`` ``count`` times at once, as a held key or a fast typist does: every
    event is queued before the app handles the first."""
    await at_once(pilot, *[key] * count)


async def at_once(pilot: Pilot, *keys: str) -> None:
    """Send ``keys`` (names, or single characters) in one burst, as a fast typist or
    keys over ssh arrive: every event is queued before the app handles the first."""
    from textual import events
    from textual.keys import _character_to_key

    app = pilot.app
    for key in keys:
        event = events.Key(_character_to_key(key), key) if len(key) == 1 else events.Key(key, None)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()
    await pilot.pause()


@pytest.fixture
def app_on(tiny_checkpoint: Path) -> Callable[..., CharLSTMApp]:
    """``app_on(**settings)``: an app on the tiny checkpoint with those settings saved."""

    def make(checkpoint: Path | None = None, **settings: Any) -> CharLSTMApp:
        if settings:
            write_settings(**settings)
        return CharLSTMApp(checkpoint or tiny_checkpoint, explicit=True)

    return make


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The app sets torch's thread count for generation; leave it as found for other tests."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
