"""The output pane: following the end, staying put when scrolled up, soft wrap,
bounded memory, distinct styles for prompt and model text."""

from __future__ import annotations

from charlstm_tui.widgets.output import OutputView
from charlstm_tui.widgets.transcript import MODEL, PROMPT, USER

from .conftest import drive, finished, screen_lines, type_text, wait_for


def test_follows_the_end_unless_scrolled_up(app_on) -> None:
    app = app_on(length=100_000, seed=1, delay_ms=1)

    async def script(pilot) -> None:
        out = app.main.output
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: out.rows.total > out.size.height * 2, "a few screens of text")
        assert out.is_vertical_scroll_end  # following
        out.scroll_to(y=2, animate=False, immediate=True)  # the user scrolls up to read
        await pilot.pause()
        rows_then = out.rows.total
        await wait_for(pilot, lambda: out.rows.total > rows_then + 5, "more text")
        assert out.scroll_y == 2  # stayed where the user was reading
        out.scroll_end(animate=False, immediate=True)  # back to the end: following again
        await pilot.pause()
        rows_then = out.rows.total
        await wait_for(pilot, lambda: out.rows.total > rows_then + 5, "more text")
        assert out.is_vertical_scroll_end
        await pilot.press("escape")
        await finished(pilot)
        # At the end of the stream the last row of text sits on the bottom row.
        assert out.scroll_y + out.scrollable_content_region.height == out.rows.total

    drive(app, script, size=(80, 24))


def test_soft_wraps_at_words_and_shows_every_character(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        out = app.main.output
        out.append("the quick brown fox jumps over the lazy dog " * 6, PROMPT)
        out.append("X" * 200, MODEL)
        await pilot.pause()
        width = out.scrollable_content_region.width
        shown = [out.render_line(y).text for y in range(out.size.height)]
        rows = [r.rstrip() for r in shown if r.strip()]
        assert all(len(r) <= width for r in shown)
        assert "".join(rows).replace(" ", "") == ("the quick brown fox jumps over the lazy dog " * 6 + "X" * 200).replace(" ", "")
        assert all(not r.endswith(("qu", "bro", "jum")) for r in rows[:4])  # no word split mid-way

    drive(app, script, size=(70, 30))


def test_prompt_model_and_user_text_look_different(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        out = app.main.output
        styles = [out.char_style(kind, 0.5) for kind in (PROMPT, MODEL, USER)]
        assert len({str(s) for s in styles}) == 3

    drive(app, script)


def test_memory_is_bounded_in_long_sessions(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        out = OutputView(max_chars=5_000, id="small")
        await app.main.mount(out)
        for i in range(400):
            out.append(f"line {i} of a long session\n", MODEL, [0.5] * len(f"line {i} of a long session\n"))
        t = out.transcript
        assert t.chars <= 5_000 and t.text().endswith("line 399 of a long session\n")
        assert t.start > 0 and t.end == t.start + t.chars  # positions keep counting
        assert out.rows.total == sum(len(line.rows(out.rows.width)) for line in t.lines)
        out.append("y" * 20_000, MODEL)  # one enormous line is cut from its head
        assert t.chars <= 5_000 and t.text().endswith("y" * 100)

    drive(app, script)


def test_a_fast_stream_keeps_its_newest_line_on_the_bottom_row(app_on) -> None:
    """Four rows a frame, ten frames a second: the pane scrolls with the text, so the
    newest line is always on the bottom row and no blank rows wait below it."""
    app = app_on()

    async def script(pilot) -> None:
        out = app.main.output
        await pilot.pause()
        row = 0
        while out.rows.total < 80:
            out.append("".join(f"\nrow {row + k}" for k in range(4)), MODEL)
            row += 4
            await pilot.pause(0.1)
            height = out.scrollable_content_region.height
            if out.rows.total >= height:
                assert out.scroll_y + height == out.rows.total == out.virtual_size.height
                bottom = screen_lines(app)[out.region.y + out.region.height - 2]  # above the border
                assert f"row {row - 1} " in bottom

    drive(app, script, size=(80, 24))


def test_following_through_a_trim_keeps_the_end_in_view(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        out = OutputView(max_chars=5_000, id="small")
        await app.main.mount(out, before=app.main.output)
        await pilot.pause()
        height = out.scrollable_content_region.height
        for i in range(600):  # about 12 trims
            out.append(f"line {i} of a long stream\n", MODEL)
            assert out.scroll_y < out.rows.total <= out.scroll_y + height  # the end is in view
        assert out.transcript.start > 0

    drive(app, script, size=(80, 24))
