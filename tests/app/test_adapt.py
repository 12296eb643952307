"""Adapt in the app (issue 15), driven with Pilot on the tiny checkpoint: the setting that
has the model read each prompt before it goes on, adapting to a file, the reset key, and
that the adapted weights reach whoever samples (the generation process or a thread)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from charlstm_tui import generation_process
from charlstm_tui.screens.adapt_file import AdaptFileScreen

from .conftest import drive, expected, finished, paste, screen_lines, wait_for

# A strong pattern the tiny model was not trained on: adapting to it changes what it writes.
POEM = ("QUEEN:\nThe owl and the moon go sailing, sailing,\nthe owl and the moon go sailing home.\n\n" * 8)


def adapted_expected(checkpoint: Path, prompt: str, *, length: int, seed: int, temperature: float = 0.8) -> str:
    """What core generates after an Adapter with the default settings read ``prompt`` from
    the '\\n' start: the app must show exactly this."""
    from core.adapt import Adapter
    from core.adapt_stats import stats_for
    from core.checkpoint import load_checkpoint
    from core.sampling import SampleConfig, Sampler
    from core.session import Session

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    ids = ckpt.vocab.encode(prompt)
    adapter = Adapter(model, stats_for(model, ckpt, checkpoint, ids), start_id=ckpt.vocab.newline_id)
    adapter.read(ids)
    block = int(ckpt.train["config"]["block_size"])
    session = Session(Sampler(model, ckpt.vocab), block_size=block)
    session.feed(prompt)
    config = SampleConfig(temperature=temperature, length=length, seed=seed, block_size=block)
    return "".join(ckpt.vocab.chars[i] for i, _ in session.generate(config))


def trained_weights(checkpoint: Path) -> dict:
    from core.checkpoint import load_checkpoint

    return dict(load_checkpoint(checkpoint).build_model().named_parameters())


def same_weights(model, weights: dict) -> bool:
    import torch

    return all(torch.equal(p, weights[n]) for n, p in model.named_parameters())


@pytest.fixture(params=["process", "thread"])
def where(request, monkeypatch) -> str:
    """Who samples: the forked generation process, or a thread of the app."""
    if request.param == "thread":
        monkeypatch.setattr(generation_process, "available", lambda: False)
    elif not generation_process.available():
        pytest.skip("the generation process needs fork (Linux)")
    return request.param


def test_with_adapt_on_the_prompt_is_read_first_and_the_adapted_weights_reach_generation(
        app_on, tiny_checkpoint, where) -> None:
    app = app_on(adapt=True, length=200, seed=5, delay_ms=0, temperature=0.8)
    static = expected(tiny_checkpoint, POEM, length=200, seed=5)
    adapted = adapted_expected(tiny_checkpoint, POEM, length=200, seed=5)
    assert adapted != static  # (so the test can tell them apart)

    async def script(pilot) -> None:
        main = app.main
        await paste(pilot, POEM)
        await pilot.press("enter")
        await finished(pilot)
        assert (main.generator._process is None) == (where == "thread")
        assert main.output.transcript.text().endswith(POEM + adapted)
        assert "· adapt on ──" in main.output.transcript.plain().splitlines()[0]  # the run's separator says so
        # The status line says so; the model's own 200 characters were never read.
        assert main.adapted is not None and main.adapted.chars == len(POEM)
        assert main.adapted.gain is not None and main.adapted.gain > 0
        status = screen_lines(app)[-2]
        # At 80 columns, the short form.
        assert f"adapted {len(POEM):,}: −{main.adapted.gain:.2f} bits/char" in status, status
        assert "^G unadapt" in screen_lines(app)[-1]
        # Ctrl+G: the trained weights back, here and where it samples: the same run again
        # (Ctrl+R, same seed) is the static model's. Adapt off, so the prompt is not read again.
        main.change(adapt=False)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: main.adapted is None, "the reset")
        await app.workers.wait_for_complete()
        if where == "process":
            assert main.generator._process.weights_version == main.model.adaptation.version
        assert same_weights(main.model.session.sampler.model, trained_weights(tiny_checkpoint))
        assert "adapted" not in screen_lines(app)[-2] and "unadapt" not in screen_lines(app)[-1]
        await pilot.press("ctrl+r")
        await finished(pilot)
        assert main.output.transcript.text().endswith(POEM + static)

    drive(app, script, size=(80, 24))


def test_adapt_off_reads_nothing_and_typed_text_is_read_on_from_the_context(app_on, tiny_checkpoint) -> None:
    app = app_on(length=60, seed=2, delay_ms=0)
    trained = trained_weights(tiny_checkpoint)

    async def script(pilot) -> None:
        main = app.main
        await paste(pilot, POEM)
        await pilot.press("enter")
        await finished(pilot)
        assert main.adapted is None and main.model.adaptation.adapter is None
        assert same_weights(main.model.session.sampler.model, trained)
        assert "adapt on" not in main.output.transcript.plain()
        # Adapt on (F2, typed): typed text after the model's is read, on from where the
        # context ends; the model's own text never is.
        await pilot.press("f2")
        panel = main.panel
        panel.input_for("adapt").focus()
        await pilot.press("up")  # a bool steps on/off
        await pilot.press("escape")
        assert main.settings.adapt
        await paste(pilot, "The owl and the moon")
        await pilot.press("ctrl+n")
        await finished(pilot)
        assert main.adapted is not None and main.adapted.chars == len(" The owl and the moon")
        assert not same_weights(main.model.session.sampler.model, trained)

    drive(app, script)


def test_adapt_to_a_file_with_progress_bad_paths_esc_and_a_stop(app_on, tiny_checkpoint, tmp_path) -> None:
    poem = tmp_path / "poem.txt"
    poem.write_text(POEM, encoding="utf-8")
    long_text = tmp_path / "long.txt"
    long_text.write_text(POEM * 400, encoding="utf-8")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    app = app_on(length=40, seed=1, delay_ms=0)

    async def dialog(pilot, path) -> AdaptFileScreen:
        palette = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        palette["Adapt to a file…"]()
        await wait_for(pilot, lambda: isinstance(app.screen, AdaptFileScreen) and app.screen.query("#path"),
                       "the dialog")
        screen = app.screen
        screen.query_one("#path").value = str(path)
        await pilot.press("enter")
        return screen

    def dialog_error(screen) -> str:
        return str(screen.query_one("#path-error").content)

    async def script(pilot) -> None:
        main = app.main
        # Bad paths are said in the dialog, which stays; Esc closes it and nothing changed.
        for path, words in ((tmp_path / "missing.txt", "not found"), (tmp_path, "is a directory"),
                            (binary, "not UTF-8"), (empty, "empty")):
            screen = await dialog(pilot, path)
            await wait_for(pilot, lambda: words in dialog_error(screen), f"the error for {path.name}")
            assert app.screen is screen
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is main, "the dialog to close")
        assert main.adapted is None and main.model.adaptation.adapter is None
        # A file: the status line and a notice say what it did.
        await dialog(pilot, poem)
        await wait_for(pilot, lambda: main.adapted is not None, "the read to end")
        assert main.adapted.chars == len(POEM)
        assert any("Read poem.txt" in n.message for n in app._notifications)
        await app.workers.wait_for_complete()
        if generation_process.available():  # the child was sent the weights already, off the next run's path
            assert main.generator._process.weights_version == main.model.adaptation.version > 0
        # Then Enter generates, with the adapted weights (the prompt is not read: Adapt is off).
        await pilot.press("enter")
        await finished(pilot)
        assert main.run.kind != "adapt" and main.run.count == 40
        assert main.adapted.chars == len(POEM)
        # A long file: typing goes on while it reads; Esc stops it, keeping what was read.
        await dialog(pilot, long_text)
        await wait_for(pilot, lambda: main.run.kind == "adapt" and main.run.reading and main.run.reading[0] > 2000,
                       "the long read to be under way")
        assert "adapting" in screen_lines(app)[-2]
        await pilot.press("k", "i", "n", "g")
        assert main.prompt.text == "king"
        await pilot.press("escape")
        await wait_for(pilot, lambda: any("Stopped after" in n.message for n in app._notifications), "the stop")
        assert len(POEM) + 2000 < main.adapted.chars < len(POEM) * 401
        assert main.run is None or main.run.kind != "adapt"

    drive(app, script, size=(80, 24))


def test_ctrl_g_with_nothing_adapted_says_so_and_the_palette_has_the_commands(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("not adapted" in n.message for n in app._notifications)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Adapt to a file…", "Adapt on", "Unadapt (reset to the trained weights)"} <= titles
        await app.run_action("toggle_adapt")
        assert app.main.settings.adapt
        assert "Adapt off" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("f1")
        await pilot.pause()
        keys = app.screen.keys_text(width=140)
        assert "Unadapt: back to the trained weights" in keys

    drive(app, script)


def core_reading(checkpoint: Path, text: str, **config):
    """Core's adapter, comparing, reading ``text`` from the '\\n' start with the default settings
    (or ``config``'s)."""
    from core.adapt import AdaptConfig, Adapter
    from core.adapt_stats import stats_for
    from core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    ids = ckpt.vocab.encode(text)
    adapter = Adapter(model, stats_for(model, ckpt, checkpoint, ids), AdaptConfig(**config),
                      start_id=ckpt.vocab.newline_id, compare=True)
    return adapter.read(ids)


def test_f9_shows_static_and_adapted_side_by_side_and_keeps_what_it_read_only_with_adapt_on(
        app_on, tiny_checkpoint) -> None:
    from charlstm_tui.screens.score import ScoreScreen

    text = POEM * 6  # more than one piece (1,000 characters) of the read
    want = core_reading(tiny_checkpoint, text)
    trained = trained_weights(tiny_checkpoint)
    app = app_on()

    async def scored(pilot, screen) -> None:
        await wait_for(pilot, lambda: screen.result is not None and not screen._reading, "the score")
        await pilot.pause()

    async def script(pilot) -> None:
        main = app.main
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, ScoreScreen), "the score screen")
        screen = app.screen
        await paste(pilot, text)
        await pilot.press("f5")
        await scored(pilot, screen)
        # Both readings are core's, character by character; the side by side shows both bits/char.
        assert screen.result.surprise == want.static and screen.adapted.surprise == want.surprise
        assert screen.adapted.loss < screen.result.loss
        assert [-math.log(p) for p in screen.adapted_view.transcript.kinds_probs(0, len(text))[1]] == \
            pytest.approx(want.surprise, rel=1e-4, abs=1e-5)
        rows = "\n".join(screen_lines(app))
        assert "Static" in rows and "Adapted as read" in rows
        assert f"{screen.result.bits_per_char:.2f} bits/char" in rows
        assert f"{screen.adapted.bits_per_char:.2f} bits/char" in rows
        assert "trained weights." in rows and "nothing stays." in rows  # where the adapted reading began
        totals = dict(line.split(": ", 1) for line in screen.totals_text.splitlines())
        assert totals["gain, b/c"] == f"{screen.result.bits_per_char - screen.adapted.bits_per_char:+.4f}"
        # Adapt off: nothing stayed.
        assert main.adapted is None and same_weights(main.model.session.sampler.model, trained)
        # Adapt on: the same read, kept; the main screen's status line says so.
        main.change(adapt=True)
        await pilot.press("f5")
        await scored(pilot, screen)
        assert screen.adapted.surprise == want.surprise
        await wait_for(pilot, lambda: main.adapted is not None, "the main screen to hear of it")
        assert main.adapted.chars == len(text) and not same_weights(main.model.session.sampler.model, trained)
        first = screen.adapted.loss
        # Again: the adapted reading starts from what the model learned, and the static one
        # is still the trained weights'.
        await pilot.press("f5")
        await scored(pilot, screen)
        assert screen.result.surprise == want.static and screen.adapted.loss < first
        assert screen.adapted_from == len(text) and f"adapted on {len(text):,}" in "".join(screen_lines(app))
        assert main.adapted.chars == 2 * len(text)
        # Esc stops a read: the figures are for what was read.
        screen.text_area.text = POEM * 60
        await pilot.press("f5")
        await wait_for(pilot, lambda: screen.view.transcript.end >= 1000, "the read to be under way")
        await pilot.press("escape")
        await scored(pilot, screen)
        assert 1000 <= len(screen.result.text) < len(POEM) * 90 and len(screen.adapted.text) == len(screen.result.text)
        assert any("Stopped after" in n.message for n in app._notifications), [n.message for n in app._notifications]
        assert app.screen is screen  # Esc stopped the read; a second Esc goes back
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is main, "the main screen")
        assert "adapted on" in screen_lines(app)[-2]

    drive(app, script, size=(80, 24))


def test_a_model_loaded_mid_read_starts_unadapted(app_on, tiny_checkpoint, tmp_path) -> None:
    """The read of the model replaced ends with it: what it learned is not the new model's."""
    long_text = tmp_path / "long.txt"
    long_text.write_text(POEM * 400, encoding="utf-8")
    app = app_on()

    async def script(pilot) -> None:
        main = app.main
        old = main.model
        main.adapt_to((long_text, long_text.read_text(encoding="utf-8")))
        await wait_for(pilot, lambda: main.run.reading and main.run.reading[0] > 500, "the read to be under way")
        app.open_checkpoint(tiny_checkpoint)
        await wait_for(pilot, lambda: main.model is not old, "the new model")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert old.adaptation.summary() is not None  # the old model did learn...
        assert main.adapted is None and "adapted" not in screen_lines(app)[-2]  # ...the new one did not
        assert same_weights(main.model.session.sampler.model, trained_weights(tiny_checkpoint))

    drive(app, script)


def test_the_adapt_rate_scales_the_step_of_every_read(app_on, tiny_checkpoint) -> None:
    """At adapt rate 3 a prompt is read as core reads it with three times the default step."""
    from core.adapt import AdaptConfig

    app = app_on(adapt=True, adapt_rate=3.0, length=1, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        main = app.main
        await paste(pilot, POEM)
        await pilot.press("enter")
        await finished(pilot)
        adapter = main.model.adaptation.adapter
        assert adapter.config.step == pytest.approx(3 * AdaptConfig().step)
        want = core_reading(tiny_checkpoint, POEM, step=3 * AdaptConfig().step)
        assert main.adapted.gain == pytest.approx(sum(a - b for a, b in zip(want.static, want.surprise))
                                                  / len(POEM) / math.log(2), rel=1e-6)

    drive(app, script)
