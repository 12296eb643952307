"""The prompt box: multi-line input, Enter vs newline keys, paste, and history."""

from __future__ import annotations

import json

from charlstm_tui.settings import history_path

from .conftest import drive, finished, paste, type_text


def test_newline_keys_and_paste_do_not_submit(app_on) -> None:
    app = app_on(length=5, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        prompt = app.main.prompt
        await type_text(pilot, "KING:")
        await pilot.press("ctrl+j")
        await type_text(pilot, "Hear")
        await pilot.press("shift+enter")
        await paste(pilot, "me,\nmy lord.")
        assert prompt.text == "KING:\nHear\nme,\nmy lord."
        assert app.main.run is None  # nothing was generated yet
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.output.transcript.text().startswith("KING:\nHear\nme,\nmy lord.")
        assert prompt.text == ""

    drive(app, script)


def test_history_recall_and_persistence(app_on, tiny_checkpoint) -> None:
    app = app_on(length=3, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        prompt = app.main.prompt
        for text in ("KING:", "QUEEN:\nLord"):
            await paste(pilot, text)
            await pilot.press("enter")
            await finished(pilot)
        await type_text(pilot, "dra")  # a draft is kept while browsing
        await pilot.press("up")
        assert prompt.text == "QUEEN:\nLord"
        await pilot.press("up")  # a multi-line entry does not trap ↑ on its last row
        assert prompt.text == "KING:"
        await pilot.press("up")  # the oldest stays
        assert prompt.text == "KING:"
        await pilot.press("down")
        assert prompt.text == "QUEEN:\nLord"
        await pilot.press("down")
        assert prompt.text == "dra"

    drive(app, script)
    assert json.loads(history_path().read_text()) == ["KING:", "QUEEN:\nLord"]

    # A new run of the app finds them.
    from charlstm_tui.app import CharLSTMApp

    again = CharLSTMApp(tiny_checkpoint, explicit=True)

    async def recall(pilot) -> None:
        await pilot.press("up")
        assert again.main.prompt.text == "QUEEN:\nLord"

    drive(again, recall)


def test_up_moves_the_cursor_inside_a_multiline_draft(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        prompt = app.main.prompt
        app.main.history.items[:] = ["old"]
        await paste(pilot, "line one\nline two")
        await pilot.press("up")  # on row 1: moves to row 0, no recall
        assert prompt.text == "line one\nline two" and prompt.cursor_location[0] == 0
        await pilot.press("up")  # on row 0: recall
        assert prompt.text == "old"

    drive(app, script)
