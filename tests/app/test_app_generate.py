"""The main actions, driven with Pilot on the tiny checkpoint: generate, stop, continue,
regenerate, clear, and errors that must stay inside the app."""

from __future__ import annotations

import math
import os
import signal

import pytest

from charlstm_tui.widgets.transcript import MODEL, PROMPT, USER

from .conftest import drive, expected, expected_run, finished, loaded, paste, type_text, wait_for


def test_loading_state_then_model_in_status(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        # The first frame is up before the model: the output pane shows the loading state.
        assert app.main.output.loading or app.main.model is not None
        await loaded(pilot)
        assert not app.main.output.loading
        status = app.main.status
        assert status.model_text.startswith("tiny · 1×32 LSTM")
        assert "params" in status.model_text and "val" in status.model_text
        assert status.run_text.startswith("ready")

    drive(app, script, wait_loaded=False)


def test_enter_generates_exactly_what_core_samples(app_on, tiny_checkpoint) -> None:
    app = app_on(length=120, seed=7, delay_ms=0, temperature=0.8)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        t = app.main.output.transcript
        want = "KING:" + expected(tiny_checkpoint, "KING:", length=120, seed=7)
        assert t.text() == want
        kinds, probs = t.kinds_probs(t.start, t.end)
        assert kinds == bytes([PROMPT]) * 5 + bytes([MODEL]) * 120  # prompt and model text told apart
        assert all(math.isnan(p) for p in probs[:5]) and all(0 < p <= 1 for p in probs[5:])
        assert app.main.run.count == 120 and app.main.run.finished == "done"
        assert app.main.status.run_text.startswith("done · 120 chars")
        assert app.main.prompt.text == ""  # the box empties after a submit

    drive(app, script)


def test_escape_stops_and_nothing_arrives_after(app_on) -> None:
    app = app_on(length=100_000, delay_ms=5, seed=1)

    async def script(pilot) -> None:
        await type_text(pilot, "LORD:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.run.count >= 5, "some characters")
        await pilot.press("escape")
        shown = app.main.output.transcript.text()
        assert app.main.run.finished == "stopped"
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert app.main.output.transcript.text() == shown  # not one character more
        assert app.main.status.run_text.startswith("stopped")
        # The model's context ends exactly at the last character shown.
        assert app.main.model.session.text == shown

    drive(app, script)


def test_continue_extends_from_the_current_state(app_on, tiny_checkpoint) -> None:
    app = app_on(length=40, seed=3, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "QUEEN:")
        await pilot.press("enter")
        await finished(pilot)
        first = app.main.output.transcript.text()
        await pilot.press("ctrl+n")
        await finished(pilot)
        whole = app.main.output.transcript.text()
        assert whole.startswith(first) and len(whole) == len(first) + 40
        # Same as one session generating twice from its carried state.
        from core.checkpoint import load_checkpoint
        from core.sampling import SampleConfig, Sampler
        from core.session import Session

        ckpt = load_checkpoint(tiny_checkpoint)
        s = Session(Sampler(ckpt.build_model(), ckpt.vocab))
        s.feed("QUEEN:")
        cfg = SampleConfig(length=40, seed=3)
        list(s.generate(cfg))
        list(s.generate(cfg))
        assert whole == s.text

    drive(app, script)


def test_continue_appends_typed_text_to_the_context(app_on) -> None:
    app = app_on(length=30, seed=5, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        before = app.main.output.transcript.text()
        await type_text(pilot, "\nQUEEN:")
        await pilot.press("ctrl+n")
        await finished(pilot)
        t = app.main.output.transcript
        text = t.text()
        assert text.startswith(before + "\nQUEEN:") and len(text) == len(before) + 7 + 30
        kinds, _ = t.kinds_probs(t.start + len(before), t.start + len(before) + 7)
        assert kinds == bytes([USER]) * 7  # the user's addition is marked as theirs
        assert app.main.model.session.text == text

    drive(app, script)


def test_typed_text_after_a_word_starts_a_word_of_its_own(app_on) -> None:
    """Ctrl+N with typed text: 'And then' never splices onto the model's last word."""
    app = app_on(length=30, seed=5, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        before = app.main.output.transcript.text()
        if before[-1].isspace():  # make the text end mid-word
            app.main.output.append("ab", USER)
            app.main.generator.queue(("feed", "ab"))
            before += "ab"
        await type_text(pilot, "And then")
        await pilot.press("ctrl+n")
        await finished(pilot)
        text = app.main.output.transcript.text()
        assert text.startswith(before + " And then")
        assert app.main.model.session.text == text

    drive(app, script)


def test_transcript_positions_map_to_the_session(app_on) -> None:
    app = app_on(length=40, seed=3, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        await type_text(pilot, "LORD:")
        await pilot.press("enter")  # a new context, after the first run
        await finished(pilot)
        await type_text(pilot, " aye")
        await pilot.press("ctrl+n")
        await finished(pilot)
        t, session = app.main.output.transcript, app.main.model.session
        text = t.text()
        start = text.rindex("LORD:")
        assert app.main.session_position(start - 1) is None  # the first run is not in this context
        for pos in range(start, t.end):
            p = app.main.session_position(pos)
            assert session.vocab.chars[session.ids[p - session.offset]] == text[pos - t.start]

    drive(app, script)


def test_empty_enter_continues(app_on) -> None:
    app = app_on(length=25, seed=2, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        n = len(app.main.output.transcript.text())
        await pilot.press("enter")
        await finished(pilot)
        assert len(app.main.output.transcript.text()) == n + 25
        assert app.main.run.kind == "continue"

    drive(app, script)


def test_regenerate_resamples_the_last_run(app_on) -> None:
    app = app_on(length=60, seed=11, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "LORD:")
        await pilot.press("enter")
        await finished(pilot)
        first = app.main.output.transcript.text()
        await pilot.press("ctrl+r")
        await finished(pilot)
        # A fixed seed from the same state gives the same text again, in place, and says so.
        assert app.main.output.transcript.text() == first
        [notice] = [n.message for n in app._notifications if n.title == "Regenerate"]
        assert notice.startswith("The seed is fixed (11), so this run repeats the last one exactly.")
        # With a different seed the run is replaced, the prompt kept.
        app.main.change(seed=12)
        await pilot.press("ctrl+r")
        await finished(pilot)
        again = app.main.output.transcript.text()
        assert again.startswith("LORD:") and len(again) == len(first) and again != first
        assert app.main.model.session.text == again

    drive(app, script)


def test_regenerate_with_nothing_says_so(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert any("Nothing to regenerate" in n.message for n in app._notifications)

    drive(app, script)


def test_clear_mid_run_puts_enter_back_at_the_head_of_the_footer(app_on) -> None:
    """Ctrl+L mid-run stops the run: the footer says Enter generate again (it kept 'Esc stop')."""
    from .conftest import screen_lines

    app = app_on(length=100_000, delay_ms=20)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.generating and app.main.run.count > 0, "streaming")
        await wait_for(pilot, lambda: screen_lines(app)[-1].lstrip().startswith("Esc stop"), "the footer's stop key")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert not app.main.generating and app.main.status.run_text.startswith("ready · 0 chars")
        assert screen_lines(app)[-1].lstrip().startswith("Enter generate"), screen_lines(app)[-1]

    drive(app, script)


def test_clear_starts_over(app_on) -> None:
    app = app_on(length=30, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.main.output.transcript.is_empty
        assert app.main.status.run_text.startswith("ready · 0 chars")
        assert not [n for n in app._notifications if n.title == "Clear"]
        await type_text(pilot, "a prompt\nof two lines")
        await pilot.press("ctrl+l")  # the prompt is kept (as a shell's Ctrl+L keeps the line), and said so
        assert app.main.prompt.text == "a prompt\nof two lines"
        assert [n.message for n in app._notifications if n.title == "Clear"] == [
            "Cleared the output and the model's context; the prompt is kept."]
        app.main.prompt.clear_prompt()
        await type_text(pilot, "QUEEN:")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.output.transcript.text().startswith("QUEEN:")
        assert app.main.model.session.text == app.main.output.transcript.text()  # a fresh context

    drive(app, script)


def test_unknown_prompt_characters_are_named_and_dropped(app_on) -> None:
    app = app_on(length=10, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        await paste(pilot, "KING€:é")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.output.transcript.text().startswith("KING:")
        messages = [n.message for n in app._notifications]
        assert any("'€'" in m and "'é'" in m and "Dropped 2" in m for m in messages), messages

    drive(app, script)


def test_worker_error_is_a_notice_and_the_app_goes_on(app_on) -> None:
    import torch

    app = app_on(length=20, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        fused = app.main.model.session.sampler.fused
        good = fused.w_fc
        fused.w_fc = torch.zeros(3, 3)  # a real failure inside the sampling matmul...
        app.main.generator.close()  # ...which the next run's generation process inherits
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.run.finished == "error"
        notices = [n.message for n in app._notifications if n.title == "Generation failed"]
        assert notices and "RuntimeError" in notices[0] and "\n" not in notices[0], notices
        assert app.main.status.run_text.startswith("error")
        fused.w_fc = good
        app.main.generator.close()
        await pilot.press("ctrl+l")
        await type_text(pilot, "LORD:")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.run.finished == "done" and app.main.run.count == 20

    drive(app, script)


def test_actions_before_the_model_loads_run_once_it_has(app_on) -> None:
    app = app_on(length=15, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")  # most likely still loading: queued, not lost
        await loaded(pilot)
        await finished(pilot)
        assert app.main.output.transcript.text().startswith("KING:")
        assert app.main.run.count == 15

    drive(app, script, wait_loaded=False)


def test_quit_mid_generation_exits_and_stops_the_worker(app_on) -> None:
    app = app_on(length=100_000, delay_ms=0, seed=1)
    seen = {}

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.run.count > 50, "streaming")
        seen["run"] = app.main.run
        await pilot.press("ctrl+q")

    drive(app, script)
    run = seen["run"]
    assert run.stop.is_set()  # the worker was told to stop, and run_test returned: no hang
    assert run.count < 100_000


def test_a_fast_stream_is_drawn_in_frames_with_no_idle_ticks_between(app_on, monkeypatch) -> None:
    from charlstm_tui.screens.main import MainScreen

    counts = {"flush": 0, "draw": 0}
    flush, show = MainScreen._flush, MainScreen._show

    def counting_flush(self) -> None:
        counts["flush"] += 1
        flush(self)

    def counting_show(self, run, text, probs) -> None:
        counts["draw"] += bool(text)
        show(self, run, text, probs)

    monkeypatch.setattr(MainScreen, "_flush", counting_flush)  # before mount: the ticker calls these
    monkeypatch.setattr(MainScreen, "_show", counting_show)
    app = app_on(length=100_000, delay_ms=0, seed=1)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: counts["draw"] >= 5, "a few frames of text")
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        # The tiny model streams thousands of characters a second: each frame draws a
        # batch, and the ticker sleeps between frames rather than waking 60 times a
        # second to find a frame not due yet (each wake takes the GIL from the worker).
        assert counts["flush"] <= counts["draw"] + 3
        assert app.main.run.count > 5 * 8  # more than FAST_CHUNK characters a frame

    drive(app, script)


def test_runs_sample_in_a_child_process_that_ends_with_the_app(app_on, tiny_checkpoint) -> None:
    from charlstm_tui import generation_process

    if not generation_process.available():
        pytest.skip("the generation process needs fork (Linux)")
    app = app_on(length=60, seed=7, delay_ms=0, temperature=0.8)
    seen = {}

    async def script(pilot) -> None:
        forked = app.main.generator._forked  # forked by the load, before any other thread ran torch
        assert forked is not None and forked[0] is app.main.model and forked[1].alive
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        process = app.main.generator._process
        assert process is forked[1] and process.alive and process._proc.pid != os.getpid()
        seen["process"] = process
        assert app.main.output.transcript.text() == "KING:" + expected(tiny_checkpoint, "KING:", length=60, seed=7)

    drive(app, script)
    assert not seen["process"].alive  # quitting ended it


def test_a_crashed_child_is_a_notice_and_the_next_run_works(app_on) -> None:
    from charlstm_tui import generation_process

    if not generation_process.available():
        pytest.skip("the generation process needs fork (Linux)")
    app = app_on(length=100_000, seed=1, delay_ms=2)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.run.count > 10, "streaming")
        os.kill(app.main.generator._process._proc.pid, signal.SIGKILL)
        await finished(pilot)
        assert app.main.run.finished == "error"
        notices = [n.message for n in app._notifications if n.title == "Generation failed"]
        assert notices and "killed by signal 9" in notices[0], notices
        # The context holds exactly what was shown, and a new child carries on from it.
        assert app.main.model.session.text == app.main.output.transcript.text()
        shown = app.main.output.transcript.text()
        app.main.change(length=15)
        await pilot.press("ctrl+n")
        await finished(pilot)
        assert app.main.run.finished == "done" and app.main.run.count == 15
        assert app.main.output.transcript.text().startswith(shown)

    drive(app, script)


@pytest.mark.parametrize("why", ["no fork", "CHARLSTM_THREADS=2"])
def test_without_fork_runs_sample_in_the_worker_thread(app_on, tiny_checkpoint, monkeypatch, why: str) -> None:
    from charlstm_tui import generation_process

    if why == "no fork":
        monkeypatch.setattr(generation_process, "available", lambda: False)
    else:  # several threads: a forked child cannot use OpenMP, so generation stays here
        monkeypatch.setenv("CHARLSTM_THREADS", "2")
    app = app_on(length=80, seed=3, delay_ms=0, temperature=0.8)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.generator._process is None
        assert app.main.output.transcript.text() == "KING:" + expected(tiny_checkpoint, "KING:", length=80, seed=3)

    drive(app, script)


def test_enter_while_the_model_loads_runs_once_it_is_ready(app_on, monkeypatch) -> None:
    """The notice promises the press will run when the model is ready: it must."""
    import threading

    import charlstm_tui.app as app_module

    gate = threading.Event()
    real_load = app_module.load_model

    def slow_load(path):
        gate.wait(30)  # held until the prompt is typed and Enter pressed
        return real_load(path)

    monkeypatch.setattr(app_module, "load_model", slow_load)
    app = app_on(length=30, seed=2, delay_ms=0)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        assert app.main.model is None and app.main.run is None
        gate.set()
        await loaded(pilot)
        await wait_for(pilot, lambda: app.main.run is not None and app.main.run.finished, "the pending run", 15)
        assert app.main.output.transcript.text().startswith("KING:")
        assert app.main.run.count == 30

    drive(app, script, wait_loaded=False)


@pytest.mark.parametrize("where", ["process", "thread"])
def test_a_change_mid_run_reaches_whoever_samples(app_on, monkeypatch, where: str) -> None:
    """F3 pressed mid-run: the stream, in the generation process or in a thread of the app,
    samples greedily from the next characters on, and stops at the new length."""
    from charlstm_tui import generation_process

    if where == "thread":
        monkeypatch.setattr(generation_process, "available", lambda: False)
    app = app_on(length=100_000, seed=3, delay_ms=3, temperature=0.05)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.run.count >= 10, "streaming")
        await pilot.press("f3")  # 0.05 -> 0: greedy
        app.main.change(length=app.main.run.count + 60)
        await finished(pilot)
        assert app.main.settings.temperature == 0.0
        assert (app.main.generator._process is None) == (where == "thread")
        session = app.main.model.session
        # A few characters may have been sampled before the change arrived; the rest are greedy.
        for pos in range(len(session) - 40, len(session)):  # next_probs(pos) predicts the id at pos
            assert int(session.next_probs(pos).argmax()) == session.ids[pos - session.offset]
        assert app.main.run.finished == "done" and app.main.run.count == app.main.settings.length

    drive(app, script)


@pytest.mark.parametrize("where", ["process", "thread"])
@pytest.mark.parametrize("sampling", [
    dict(top_k=5), dict(top_p=0.7), dict(mode="window"), dict(top_k=8, top_p=0.9, temperature=1.3),
    dict(mode="window", top_p=0.8, temperature=0.6)], ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_top_k_top_p_and_window_generate_what_core_does(app_on, tiny_checkpoint, monkeypatch, where: str,
                                                         sampling: dict) -> None:
    """The app's settings reach the sampler whole: the text is core's for the same seed,
    in the generation process and in a thread of the app."""
    from charlstm_tui import generation_process

    if where == "thread":
        monkeypatch.setattr(generation_process, "available", lambda: False)
    app = app_on(length=150, seed=9, delay_ms=0, **{"temperature": 0.8, **sampling})

    async def script(pilot) -> None:
        await type_text(pilot, "QUEEN:")
        await pilot.press("enter")
        await finished(pilot)
        assert (app.main.generator._process is None) == (where == "thread")
        want, probs = expected_run(tiny_checkpoint, "QUEEN:", length=150, seed=9, **{"temperature": 0.8, **sampling})
        t = app.main.output.transcript
        assert t.text().endswith("QUEEN:" + want)
        # The probabilities too: on this small model window mode can pick the same
        # characters as stateful, but never with the same odds.
        assert t.kinds_probs(t.end - 150, t.end)[1] == pytest.approx(probs, abs=1e-6)

    drive(app, script)


def test_regenerate_says_the_settings_it_samples_with(app_on, tiny_checkpoint) -> None:
    """Ctrl+R after F4: the run's rule (and the saved transcript) says the new temperature,
    and the text is what core samples at it; a regenerated continuation gets a rule of its own."""
    from .conftest import expected

    app = app_on(length=40, seed=1, delay_ms=0, temperature=0.8)

    async def script(pilot) -> None:
        main = app.main
        t = main.output.transcript
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        await pilot.press("ctrl+r")
        await finished(pilot)
        for _ in range(8):
            await pilot.press("f4")
        assert main.settings.temperature == 1.2
        await pilot.press("ctrl+r")
        await finished(pilot)
        plain = t.plain()
        assert plain.startswith("── tiny · T 1.20 · stateful · seed 1 ──\nKING:") and "T 0.80" not in plain
        assert t.text() == "KING:" + expected(tiny_checkpoint, "KING:", length=40, seed=1, temperature=1.2)
        await pilot.press("ctrl+n")
        await finished(pilot)
        await pilot.press("f3")
        await pilot.press("ctrl+r")  # the continuation again, at T 1.15: under a rule that says so
        await finished(pilot)
        plain = t.plain()
        assert plain.count("── tiny · T 1.20") == 1 and plain.count("── tiny · T 1.15 · stateful · seed 1 ──") == 1
        assert plain.index("T 1.20") < plain.index("T 1.15") and len(t.text()) == 85

    drive(app, script)
