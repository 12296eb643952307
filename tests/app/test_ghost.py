"""Ghost text, driven with Pilot on the tiny checkpoint: while the user types, the
prompt shows core's greedy continuation of it; it is computed incrementally (one
typed character feeds at most one id to the model); Tab accepts it, and moves focus otherwise."""

from __future__ import annotations

from charlstm_tui.screens.explore import whole_words
from charlstm_tui.widgets.prompt import ghost_line
from core.checkpoint import load_checkpoint
from core.sampling import SampleConfig, Sampler

from .conftest import burst, drive, type_text, wait_for


def greedy(checkpoint, prompt: str, length: int = 40) -> str:
    ckpt = load_checkpoint(checkpoint)
    return Sampler(ckpt.build_model(), ckpt.vocab).generate(prompt, SampleConfig(temperature=0, length=length))


async def ghost_for(pilot, text: str) -> str:
    """Wait until the prompt reads ``text`` and shows a ghost computed for it."""
    main = pilot.app.main
    prompt = main.prompt
    want = shown(greedy_cache[text])
    await wait_for(pilot, lambda: prompt.text == text and prompt.ghost == want, f"the ghost of {text!r}")
    return prompt.ghost


greedy_cache: dict[str, str] = {}


def shown(ghost: str) -> str:
    """What the prompt shows of a 40-step greedy continuation: whole words, one line."""
    return ghost_line(whole_words(ghost))


def test_ghost_is_core_greedy_incremental_and_tab_accepts(app_on, tiny_checkpoint) -> None:
    for text in ("KING", "KINGq"):
        greedy_cache[text] = greedy(tiny_checkpoint, text)
    app = app_on()

    async def script(pilot) -> None:
        main = app.main
        prompt = main.prompt
        await type_text(pilot, "KING")
        ghost = await ghost_for(pilot, "KING")
        # 40 greedy steps, shown to the end of the line (or to a word boundary).
        full = greedy_cache["KING"]
        assert len(full) == 40 and ghost == shown(full)
        assert prompt.suggestion == ghost.replace("\n", "⏎")
        engine = main.explorer.ghost
        assert engine.fed <= 4  # each key fed at most its own character, never the prompt again

        # A character the ghost did not predict: one id fed, a new 40-step ghost.
        fed, steps = engine.fed, engine.steps
        assert ghost[0] != "q"
        await pilot.press("q")
        await ghost_for(pilot, "KINGq")
        assert (engine.fed, engine.steps) == (fed + 1, steps + 40)
        # Back to "KING": a rewind to the snapshot there; nothing is fed again.
        await pilot.press("backspace")
        await ghost_for(pilot, "KING")
        assert (engine.fed, engine.steps) == (fed + 1, steps + 80)

        # Typing the ghost's next character: the state after it is already there, so
        # nothing is fed and one greedy step extends the ghost.
        greedy_cache["KING" + ghost[0]] = greedy(tiny_checkpoint, "KING" + ghost[0])
        await type_text(pilot, ghost[0])
        # (The shown ghost is trimmed at once, then extended when the worker answers.)
        assert prompt.ghost.startswith(ghost[1:])
        await ghost_for(pilot, "KING" + ghost[0])
        assert (engine.fed, engine.steps) == (fed + 1, steps + 81)
        assert prompt.ghost == shown(greedy_cache["KING" + ghost[0]]) and prompt.ghost.startswith(ghost[1:])

        await pilot.press("tab")  # accepts the ghost shown
        assert prompt.text == "KING" + ghost[0] + shown(greedy_cache["KING" + ghost[0]]) and prompt.has_focus

        # With no ghost on show, Tab moves the focus as before.
        prompt.text = ""
        await wait_for(pilot, lambda: prompt.suggestion == "", "no ghost for an empty prompt")
        await pilot.press("tab")
        assert not prompt.has_focus

    drive(app, script)


def test_ghost_can_be_turned_off(app_on) -> None:
    app = app_on(ghost=False)

    async def script(pilot) -> None:
        main = app.main
        await type_text(pilot, "KING")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert main.prompt.suggestion == "" and main.explorer.ghost.fed == 0
        main.action_toggle_ghost()
        await wait_for(pilot, lambda: main.prompt.ghost != "", "the ghost once turned on")

    drive(app, script)


def test_ghost_follows_the_cursor(app_on, tiny_checkpoint) -> None:
    """The ghost continues the prompt's end: hidden while the cursor is inside the text,
    back (and accepted by →) at the end."""
    greedy_cache["KING"] = greedy(tiny_checkpoint, "KING")
    app = app_on()

    async def script(pilot) -> None:
        prompt = app.main.prompt
        await type_text(pilot, "KING")
        await ghost_for(pilot, "KING")
        await pilot.press("left")
        assert prompt.suggestion == "" and prompt.ghost == ""
        await pilot.press("right")  # back at the end: no ghost to accept yet, so the cursor moves
        await ghost_for(pilot, "KING")
        await pilot.press("right")
        assert prompt.text == "KING" + shown(greedy_cache["KING"])

    drive(app, script)


def test_ghost_line_stops_at_the_end_of_the_line() -> None:
    assert shown(" HENRY VI\n\nKING EDWARD IV:\nWhat say") == " HENRY VI"
    assert shown("\n\nKING EDWARD IV:\nWhat say") == "\n\nKING EDWARD IV:"  # a new line: that line
    assert shown("\nWhat say you were the sta") == "\nWhat say you were the "  # never half a word
    assert shown("ing of the sta") == "ing of the "
    assert shown("\n\n") == "\n\n" and shown("x") == "x"


def test_tab_accepts_a_ghost_over_several_lines_one_line_at_a_time(app_on, tiny_checkpoint) -> None:
    """The tiny model continues "KING" over several lines (its corpus is speaker lines and
    speeches). Tab takes the ghost to the end of the line, what the prompt showed; the
    next Tab takes the next line, each time a ghost predicted from the text accepted."""
    text = "KING"
    greedy_cache[text] = greedy(tiny_checkpoint, text)
    assert "\n" in greedy_cache[text].lstrip("\n")[:-1]  # the case under test: a ghost over lines
    app = app_on()

    async def script(pilot) -> None:
        prompt = app.main.prompt
        await type_text(pilot, text)
        for _ in range(3):
            before = prompt.text
            ghost = await ghost_for(pilot, before)
            assert "\n" not in ghost.lstrip("\n") and "⏎" not in prompt.suggestion.lstrip("⏎")
            await pilot.press("tab")
            assert prompt.text == before + ghost and prompt.cursor_location == prompt.document.end
            greedy_cache[prompt.text] = greedy(tiny_checkpoint, prompt.text)

        # Tab Tab, faster than a new prediction: the second takes the line after the
        # first from the ghost already there, and the prompt keeps the focus.
        prompt.text = ""
        await type_text(pilot, "KING")
        first = await ghost_for(pilot, "KING")
        rest = whole_words(greedy_cache["KING"])[len(first):]
        assert rest.startswith("\n")
        await burst(pilot, "tab", 2)
        assert prompt.text == "KING" + first + ghost_line(rest) and prompt.has_focus

    drive(app, script)
