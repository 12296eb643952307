"""The output pane's data: positions, kinds, probabilities, wrapping, trimming."""

from __future__ import annotations

import math

from charlstm_tui.widgets.transcript import MODEL, PROMPT, USER, Line, RowIndex, Transcript, wrap_from


def rows_of(text: str, width: int) -> list[str]:
    rows = [0]
    wrap_from(text, width, rows)
    return [text[a:b] for a, b in zip(rows, rows[1:] + [len(text)])]


def test_wrap_breaks_after_spaces_and_splits_long_words() -> None:
    assert rows_of("aaa bbb ccc", 7) == ["aaa bbb ", "ccc"]  # the space after "bbb" overhangs
    assert rows_of("aaa bbbb ccc", 7) == ["aaa ", "bbbb ", "ccc"]
    assert rows_of("aaaaaaaaaa", 4) == ["aaaa", "aaaa", "aa"]
    assert rows_of("ab cd", 2) == ["ab ", "cd"]  # a trailing space may overhang
    assert rows_of("", 5) == [""]
    assert rows_of("漢字漢字漢字", 5) == ["漢字", "漢字", "漢字"]  # two cells each


def test_wrapping_incrementally_equals_wrapping_at_once() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 5
    rows = [0]
    for i in range(0, len(text), 7):
        wrap_from(text[:i + 7], 17, rows)
    whole = [0]
    wrap_from(text, 17, whole)
    assert rows == whole


def test_append_tracks_positions_kinds_and_probs() -> None:
    t = Transcript()
    t.append("KING:\n", PROMPT)
    t.append("Hear me", MODEL, [0.5] * 7)
    t.append("\nok", USER)
    assert t.text() == "KING:\nHear me\nok" and t.end == 16
    assert [line.text for line in t.lines] == ["KING:", "Hear me", "ok"]
    kinds, probs = t.kinds_probs(0, t.end)
    assert kinds == bytes([PROMPT] * 6 + [MODEL] * 7 + [USER] * 3)
    assert probs[6:13] == [0.5] * 7 and all(math.isnan(p) for p in probs[:6] + probs[13:])
    assert t.locate(6) == (1, 0) and t.locate(5) == (0, 5) and t.locate(16) == (2, 2)


def test_rules_separate_runs_without_adding_text() -> None:
    t = Transcript()
    t.add_rule("run 1")
    assert not t.is_empty and t.text() == ""
    t.append("one", PROMPT)
    t.add_rule("run 2")
    t.append("two\n", PROMPT)
    t.add_rule("run 3")
    t.append("three", PROMPT)
    assert t.text() == "onetwo\nthree"
    assert [line.rule for line in t.lines] == ["run 1", None, "run 2", None, "run 3", None]
    # Saved, each run keeps the line that says what made it.
    assert t.plain() == "── run 1 ──\none\n\n── run 2 ──\ntwo\n\n── run 3 ──\nthree"


def test_truncate_drops_the_tail() -> None:
    t = Transcript()
    t.append("KING:", PROMPT)
    t.append("abc\ndef\ng", MODEL)
    t.truncate(7)
    assert t.text() == "KING:ab" and t.end == 7
    t.append("XY", MODEL)
    assert t.text() == "KING:abXY"


def test_trim_keeps_memory_bounded_and_positions_stable() -> None:
    t = Transcript(max_chars=100)
    for i in range(50):
        t.append(f"{i:03d}\n", MODEL)
    assert t.chars <= 100 and t.end == 200
    assert t.text().endswith("048\n049\n") and t.text(t.end - 4) == "049\n"
    t.append("z" * 500, MODEL)
    assert t.chars <= 100 and t.text().endswith("z" * 50)


def test_row_index_maps_display_rows() -> None:
    t = Transcript()
    t.append("aaaa bbbb cccc\nd", MODEL)
    index = RowIndex()
    index.rebuild(t, 6)
    assert index.total == 4  # "aaaa ", "bbbb ", "cccc", "d"
    assert index.find(0) == (0, 0) and index.find(2) == (0, 2) and index.find(3) == (1, 0)
    t.append("ddddddddd", MODEL)
    index.rebuild(t, 6, from_line=1)
    assert index.total == 5 and index.find(4) == (1, 1)


def test_line_rows_follow_the_width() -> None:
    line = Line(text="abcdefgh")
    assert line.rows(3) == [0, 3, 6]
    assert line.rows(8) == [0]
