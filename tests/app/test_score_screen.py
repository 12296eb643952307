"""Score my text (F9), driven with Pilot on the tiny checkpoint: the totals and every
character's surprise are core.score.score_text's; unknown characters are named and
left out; a file loads by its path; bad paths are one notice."""

from __future__ import annotations

import math

import pytest
from textual import events

from charlstm_tui.screens import score as score_screen
from charlstm_tui.screens.score import ScoreScreen
from charlstm_tui.widgets.surprise import EDGES, band, band_label
from core.checkpoint import load_checkpoint
from core.score import score_text

from .conftest import drive, paste, wait_for

TEXT = "KING:\nThe crown is mine, and thou art ill.\n\nQUEEN:\nGood night, sweet lord!\n"


async def open_score(pilot) -> ScoreScreen:
    await pilot.press("f9")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ScoreScreen), "the score screen")
    return pilot.app.screen


async def scored(pilot, screen: ScoreScreen) -> None:
    await pilot.app.workers.wait_for_complete()
    await wait_for(pilot, lambda: screen.result is not None and not screen.view.loading, "the score")
    await pilot.pause()


def core_score(checkpoint, text: str):
    ckpt = load_checkpoint(checkpoint)
    return score_text(ckpt.build_model(), ckpt.vocab, text)


def test_pasted_text_scores_as_core_with_unknown_characters_left_out(app_on, tiny_checkpoint) -> None:
    app = app_on()

    async def script(pilot) -> None:
        screen = await open_score(pilot)
        await paste(pilot, TEXT.replace("crown", "crøwn").replace("night", "nigh€t"))
        assert screen.text_area.text.startswith("KING:\nThe crøwn")
        await pilot.press("f5")
        await scored(pilot, screen)
        want = core_score(tiny_checkpoint, TEXT.replace("crown", "crwn").replace("night", "nigh" + "t"))
        r = screen.result
        assert r.text == want.text and r.surprise == pytest.approx(want.surprise, abs=1e-5)
        totals = dict(line.split(": ", 1) for line in screen.totals_text.splitlines())
        static = {k: v.split(" | ")[0] for k, v in totals.items()}  # static | adapted as read
        assert static["nats/char"] == f"{r.loss:.4f}" and abs(r.loss - want.loss) < 1e-5
        assert static["bits/char"] == f"{r.bits_per_char:.4f}"
        assert static["perplexity"] == f"{r.perplexity:.3f}"
        assert totals["characters"] == f"{len(want.text):,}"
        assert totals["left out"] == "'ø', '€'" and totals["model"] == "tiny"
        notice = [n.message for n in app._notifications if n.title == "Unknown characters"]
        assert len(notice) == 1 and "'ø', '€'" in notice[0]
        # The view holds the scored text, each character with p = exp(-surprise).
        t = screen.view.transcript
        assert t.text() == want.text
        _, probs = t.kinds_probs(t.start, t.end)
        assert [-math.log(p) for p in probs] == pytest.approx(want.surprise, rel=1e-4, abs=1e-5)
        # ...coloured by band: the least and the most surprising characters differ.
        styles = {screen.view.char_style(1, p) for p in probs}
        assert len(styles) > 2

    drive(app, script)


def test_load_a_file_by_path_and_bad_input(app_on, tiny_checkpoint, tmp_path, monkeypatch) -> None:
    app = app_on()
    text_file = tmp_path / "scene.txt"
    text_file.write_text(TEXT, encoding="utf-8")

    async def script(pilot) -> None:
        screen = await open_score(pilot)
        await pilot.press("f5")  # nothing typed yet
        assert any("Nothing to score" in n.message for n in app._notifications)
        path = screen.query_one("#score-path")
        path.focus()
        await pilot.press("enter")  # no path: both ways to give a text
        assert any(n.message.startswith("Type the path of a text file to load (→ completes it), or paste a text")
                   for n in app._notifications)
        path.value = str(tmp_path / "missing.txt")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await wait_for(pilot, lambda: any(n.title == "Cannot load" for n in app._notifications), "the error")
        assert any("not found" in n.message and "missing.txt" in n.message for n in app._notifications)
        assert screen.result is None
        path.value = str(text_file)
        await pilot.press("enter")
        await scored(pilot, screen)
        assert screen.text_area.text == TEXT  # loading a file scores it at once
        want = core_score(tiny_checkpoint, TEXT)
        assert screen.result.loss == pytest.approx(want.loss, abs=1e-6)
        assert screen.dropped == "" and "left out" not in screen.totals_text
        # A text longer than the app scores: its start is scored, and the notice says
        # how to score all of it.
        monkeypatch.setattr(score_screen, "MAX_CHARS", 40)
        path.focus()
        await pilot.press("enter")  # read the same file again
        await wait_for(pilot, lambda: screen.result.text == TEXT[:40] and not screen.view.loading, "the cut score")
        assert any(n.title == "Long text" and f"charlstm-tui score {text_file}" in n.message
                   for n in app._notifications)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, "the main screen")

    drive(app, script)


def test_bands_and_legend() -> None:
    assert [band(b) for b in (0.0, 0.99, 1.0, 2.5, 3.99, 5.0, 6.0, 40.0)] == [0, 0, 1, 2, 3, 4, 5, 5]
    labels = [band_label(i) for i in range(len(EDGES) + 1)]
    assert labels[0] == "< 1 bit" and labels[2] == "2–3 bits" and labels[-1] == "≥ 6 bits"


def test_each_character_is_drawn_in_its_own_band_not_its_rows_first(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        screen = await open_score(pilot)
        await paste(pilot, TEXT)
        await pilot.press("f5")
        await scored(pilot, screen)
        view, r = screen.view, screen.result
        styles = view.band_styles()
        row = view.render_line(0)  # the first row: "KING:"
        first = r.text.split("\n")[0]
        want = [styles[band(s / math.log(2))] for s in r.surprise[:len(first)]]
        assert len({band(s / math.log(2)) for s in r.surprise[:len(first)]}) > 1  # the row mixes bands
        # Segments merge neighbours of one band: expand them back to one style per character.
        per_char = [seg.style for seg in row for _ in seg.text][:len(first)]
        assert per_char == [view.rich_style + w for w in want]

    drive(app, script)


def test_f9_opens_with_the_text_box_focused_for_keys_sent_at_once(app_on, monkeypatch) -> None:
    """Keys sent straight after F9 (a fast typist, a paste) land in the text box, none in
    the path box above it, each time the screen opens, also when it was left with the
    path box focused. The first time, the text box is focused as the screen mounts: the
    path box, focused first and left a moment later, took keys typed while a busy
    machine drew the screen."""
    app = app_on()
    at_mount = []
    mount = ScoreScreen.on_mount

    def on_mount(self) -> None:
        at_mount.append(self.focused)
        mount(self)

    monkeypatch.setattr(ScoreScreen, "on_mount", on_mount)

    async def type_at_once(text: str) -> None:
        for ch in text:  # queued before the app handles the first
            event = events.Key(ch, ch)
            event.set_sender(app)
            app._driver.send_message(event)

    async def script(pilot) -> None:
        await pilot.press("f9")
        screen = app.screen
        assert isinstance(screen, ScoreScreen) and at_mount == [screen.text_area]
        await type_at_once("KI")
        await pilot.pause()
        path = screen.query_one("#score-path")
        assert (screen.text_area.text, path.value) == ("KI", "")
        assert app.focused is screen.text_area
        path.focus()
        await pilot.press("escape", "f9")
        await type_at_once("N")
        await pilot.pause()
        assert (screen.text_area.text, path.value) == ("KIN", "")
        assert app.focused is screen.text_area

    drive(app, script)
