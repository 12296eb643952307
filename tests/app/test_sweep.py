"""The temperature sweep (F7), driven with Pilot on the tiny checkpoint: N streams side by
side, exactly what core samples, in lockstep, from one batched pass per step; Esc stops."""

from __future__ import annotations

import pytest

from charlstm_tui.screens.sweep import SweepScreen, parse_temperatures
from core.errors import ConfigError
from core.checkpoint import load_checkpoint
from core.sampling import FusedLSTM, FusedRun, SampleConfig, Sampler

from .conftest import drive, screen_lines, type_text, wait_for

TEMPS = [0.0, 0.5, 0.8, 1.2]


async def open_sweep(pilot, prompt: str = "KING:", length: int | None = None, seed: int | None = None,
                     temperatures: str | None = None) -> SweepScreen:
    """F7, then fill in the prompt and the sweep's fields."""
    app = pilot.app
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
    screen = app.screen
    for name, value in (("length", length), ("seed", seed), ("temperatures", temperatures)):
        if value is not None:
            screen.query_one(f"#sweep-{name}").value = str(value)
    await type_text(pilot, prompt)
    return screen


async def sweep_done(pilot, screen: SweepScreen) -> None:
    await pilot.app.workers.wait_for_complete()
    await wait_for(pilot, lambda: screen.run is not None and screen.run.finished, "the sweep to finish")
    await pilot.pause()


def core_sweep(checkpoint, prompt: str, length: int, seed: int) -> list[str]:
    """What core samples for the same prompt, seed and temperatures, as one batch."""
    ckpt = load_checkpoint(checkpoint)
    sampler = Sampler(ckpt.build_model(), ckpt.vocab)
    rows: list[list[int]] = [[] for _ in TEMPS]
    config = SampleConfig(length=length, seed=seed)
    for ids, _ in sampler.stream_ids(ckpt.vocab.encode(prompt), config, batch=len(TEMPS), temperatures=TEMPS):
        for row, i in zip(rows, ids.tolist()):
            row.append(i)
    return [ckpt.vocab.decode(r) for r in rows]


def test_streams_are_what_core_samples(app_on, tiny_checkpoint) -> None:
    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=150, seed=11)
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        streams = screen.streams()
        assert len(streams) == 4 and len(screen.columns) == 4
        assert [c.border_title for c in screen.columns] == ["T 0.00 · greedy", "T 0.50", "T 0.80", "T 1.20"]
        assert streams == core_sweep(tiny_checkpoint, "KING:", 150, 11)
        assert len(set(streams)) == 4  # the temperatures really differ
        # The greedy column is plain greedy generation.
        ckpt = load_checkpoint(tiny_checkpoint)
        greedy = Sampler(ckpt.build_model(), ckpt.vocab).generate("KING:", SampleConfig(temperature=0, length=150))
        assert streams[0] == greedy
        # Each column starts with the prompt; the probabilities shown are in (0, 1].
        for column in screen.columns:
            t = column.transcript
            assert t.text().startswith("KING:")
            _, probs = t.kinds_probs(t.start + 5, t.end)
            assert len(probs) == 150 and all(0 < p <= 1 for p in probs)
        assert screen.run.finished == "done" and screen.status.run_text.startswith("done · 150 chars")
        assert "seed 11" in screen.status.model_text

    drive(app, script)


class CountingRun(FusedRun):
    """The real fused step, counted: how many passes, and how many rows each."""

    def __init__(self, fused: "CountingFused", state) -> None:
        super().__init__(fused, state)
        self.counter = fused

    def step(self, ids):
        self.counter.batches.append(tuple(ids.shape))
        return super().step(ids)


class CountingFused(FusedLSTM):
    def __init__(self, model) -> None:
        super().__init__(model)
        self.batches: list[tuple[int, ...]] = []

    def start(self, state) -> CountingRun:
        return CountingRun(self, state)


def test_one_batched_forward_pass_per_step(app_on) -> None:
    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        sampler = app.main.model.session.sampler
        counting = CountingFused(sampler.model)
        sampler.fused = counting  # the sweep's steps now go through the counting subclass
        primes = []
        hook = sampler.model.lstm.register_forward_hook(lambda m, args, out: primes.append(tuple(args[0].shape)))
        try:
            screen = await open_sweep(pilot, prompt="LORD:", length=40, seed=2, temperatures="0 0.3 0.6 0.9 1.5")
            await pilot.press("enter")
            await sweep_done(pilot, screen)
        finally:
            hook.remove()
        assert [len(s) for s in screen.streams()] == [40] * 5
        # The prompt was read once, its state shared by all five streams (a (1, 5) batch),
        # then every character of all five came from one fused step of batch 5. Once it
        # ended, the measure read the prompt and the 40 characters once more, for all five.
        assert [p[:2] for p in primes] == [(1, 5), (5, 5), (5, 40)]
        assert counting.batches == [(5,)] * 40

    drive(app, script)


def test_lockstep_then_escape_stops_every_stream(app_on) -> None:
    app = app_on(delay_ms=2)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=100_000, seed=3)
        await pilot.press("enter")
        seen = set()
        while len(seen) < 4:  # at every frame all the columns have the same length
            lengths = {len(s) for s in screen.streams()}
            assert len(lengths) == 1, lengths
            seen |= lengths - {0}
            await pilot.pause(0.01)
        await pilot.press("escape")
        shown = screen.streams()
        assert screen.run.finished == "stopped"
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert screen.streams() == shown  # not one character more, in any column
        assert len({len(s) for s in shown}) == 1 and len(shown[0]) >= 5
        assert screen.status.run_text.startswith("stopped")
        await pilot.press("escape")  # nothing running: back to the main screen
        await wait_for(pilot, lambda: app.screen is app.main, "the main screen")
        await pilot.press("f7")  # the sweep is still there on the way back
        await wait_for(pilot, lambda: app.screen is screen, "the sweep screen again")
        assert screen.streams() == shown

    drive(app, script)


def test_edited_temperatures_and_bad_input(app_on) -> None:
    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=20, seed=4, temperatures="0, 2")
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        assert [c.border_title for c in screen.columns] == ["T 0.00 · greedy", "T 2.00"]
        assert [len(s) for s in screen.streams()] == [20, 20]
        run = screen.run
        screen.query_one("#sweep-temperatures").value = "0 hot"
        await pilot.press("enter")
        await pilot.pause()
        error = screen.query_one("#sweep-error")
        assert error.display and "'hot' is not a number" in str(error.render())
        assert screen.run is run  # nothing started
        screen.query_one("#sweep-temperatures").value = "0.7 1.1"
        screen.query_one("#sweep-seed").value = ""  # random: the seed drawn is shown...
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        assert not error.display and screen.run is not run
        seed, first = screen.seed, screen.streams()
        assert seed is not None and f"seed {seed}" in screen.status.model_text
        screen.query_one("#sweep-seed").value = str(seed)  # ...and typed in, repeats the sweep
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        assert screen.streams() == first

    drive(app, script)


def test_parse_temperatures() -> None:
    assert parse_temperatures(" 0, 0.5  0.8,1.2 ") == TEMPS
    for bad, why in (("", "type one or more"), ("0 3", "out of range"), ("1 " * 9, "at most 8")):
        with pytest.raises(ConfigError, match=why):
            parse_temperatures(bad)


def test_every_column_is_measured_the_same_way(app_on, tiny_checkpoint) -> None:
    """Each column's figure is the model's bits/char at T 1 of the text it wrote, read after
    the prompt, whatever temperature it was sampled at: figures compare across columns."""
    import math

    import torch
    from torch.nn import functional as F

    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=120, seed=3)
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        await wait_for(pilot, lambda: len(screen.bits) == 4, "the columns' measure")
        ckpt = load_checkpoint(tiny_checkpoint)
        model = ckpt.build_model().eval()
        prompt = ckpt.vocab.encode("KING:")
        for column, text, bits in zip(screen.columns, screen.streams(), screen.bits):
            ids = prompt + ckpt.vocab.encode(text)
            with torch.no_grad():
                logits, _ = model(torch.tensor([ids[:-1]]))
            want = F.cross_entropy(logits[0, len(prompt) - 1:], torch.tensor(ids[len(prompt):])).item() / math.log(2)
            assert bits == pytest.approx(want, abs=1e-4)
            assert column.border_subtitle == f"{bits:.2f} bits/char (T 1)"
        assert screen.bits[0] == min(screen.bits)  # greedy text is the likeliest at T 1
        assert screen.bits[-1] == max(screen.bits)  # and T 1.2 the least likely

    drive(app, script)


def test_f7_on_the_sweep_screen_sweeps_again_as_the_footer_says(app_on) -> None:
    """F7 means the sweep on every screen: it opens it, and on it sweeps again (the footer
    said "F7 sweep again" while F7 did nothing there); F5 is the heat-map's key, not this."""
    from .conftest import screen_lines

    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=20, seed=3)
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        first = screen.run
        assert "F7 sweep again" in screen_lines(app)[-1]
        await pilot.press("f5")
        await pilot.pause()
        assert screen.run is first
        await pilot.press("f7")
        await sweep_done(pilot, screen)
        assert app.screen is screen and screen.run is not first and screen.run.finished == "done"

    drive(app, script)


def test_column_titles_and_subtitles_show_whole_at_80x24(app_on) -> None:
    """Four columns of 20 cells: 'T 0.00 · greedy' was cut to 'T 0.00 · gree…' and the
    measure to '2.13 bits/char (T 1) · 1…'; each shows the longest form that fits whole."""
    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=60, seed=3)
        assert [c.border_title for c in screen.columns] == ["T 0.00", "T 0.50", "T 0.80", "T 1.20"]
        await pilot.press("enter")
        await sweep_done(pilot, screen)
        await wait_for(pilot, lambda: len(screen.bits) == 4, "the columns' measure")
        await pilot.pause()
        assert [c.border_subtitle for c in screen.columns] == [f"{b:.2f} bits/char" for b in screen.bits]
        rows = screen_lines(app)
        borders = [r for r in rows if "T 0.50" in r or "bits/char" in r]
        assert len(borders) == 2 and not any("…" in r for r in borders)
        await pilot.resize_terminal(160, 45)
        await pilot.pause(0.2)
        assert screen.columns[0].border_title == "T 0.00 · greedy"
        assert screen.columns[0].border_subtitle == f"{screen.bits[0]:.2f} bits/char (T 1)"

    drive(app, script, size=(80, 24))


def test_at_30x8_the_sweep_says_it_is_too_small_and_how_to_go_back(app_on) -> None:
    app = app_on(delay_ms=0)

    async def script(pilot) -> None:
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "Too small for a sweep" in text and "Esc back" in text
        await pilot.press("escape")
        assert app.screen is app.main

    drive(app, script, size=(30, 8))


def test_the_footer_leads_with_esc_stop_while_a_sweep_streams(app_on) -> None:
    """While the columns stream, Esc stops (the footer said 'Esc back' all along); once done, Esc goes back."""
    from .conftest import screen_lines, wait_for

    app = app_on(delay_ms=20)

    async def script(pilot) -> None:
        screen = await open_sweep(pilot, length=2_000, seed=3)
        assert screen_lines(app)[-1].lstrip().startswith("Esc back")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run is not None and screen.run.count > 0, "streaming")
        await wait_for(pilot, lambda: screen_lines(app)[-1].lstrip().startswith("Esc stop"), "the footer's stop key")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.run.finished == "stopped", "the stop")
        await wait_for(pilot, lambda: screen_lines(app)[-1].lstrip().startswith("Esc back"), "the footer's back key")
        assert app.screen is screen

    drive(app, script)
