"""Files and dialogs: save, copy, help, command palette, opening checkpoints, and the
error screen for a missing or corrupt checkpoint."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import Button, Input

from charlstm_tui.app import CharLSTMApp
from charlstm_tui.screens.checkpoint import CheckpointScreen
from charlstm_tui.screens.help import HelpScreen
from charlstm_tui.screens.save import SaveScreen
from core.paths import data_dir

from .conftest import drive, finished, loaded, paste, screen_lines, type_text, wait_for


async def generate(pilot, prompt: str = "KING:") -> None:
    await type_text(pilot, prompt)
    await pilot.press("enter")
    await finished(pilot)


async def checkpoint_dialog(pilot, part: str, what: str) -> None:
    """Wait until the checkpoint dialog is on top, with ``part`` (a selector) composed."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, CheckpointScreen) and app.screen.query(part), what)


def test_save_transcript_asks_for_a_name(app_on, tmp_path: Path) -> None:
    app = app_on(length=40, seed=1, delay_ms=0)
    target = tmp_path / "out" / "story.txt"

    async def script(pilot) -> None:
        await generate(pilot, "KING:")
        await generate(pilot, "QUEEN:")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen) and app.screen.query("#path"),
                       "the save dialog")
        field = app.screen.query_one("#path")
        field.value = str(tmp_path)  # a folder: refused in the dialog
        await pilot.press("enter")
        assert "is a folder" in str(app.screen.query_one("#path-error").render())
        field.value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main, "the dialog to close")
        assert any("Saved the transcript" in n.message for n in app._notifications)
        text = target.read_text()
        # Both runs, each after the line that says what made it, exactly as generated.
        rule = "── tiny · T 0.80 · stateful · seed 1 ──\n"
        assert text.startswith(rule + "KING:") and f"\n\n{rule}QUEEN:" in text
        assert text == app.main.output.transcript.plain()

    drive(app, script)


def test_save_error_is_shown_in_the_dialog(app_on, tmp_path: Path) -> None:
    app = app_on(length=10, seed=1, delay_ms=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")

    async def script(pilot) -> None:
        await generate(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen) and app.screen.query("#path"),
                       "the save dialog")
        app.screen.query_one("#path").value = str(blocker / "inside.txt")  # parent is a file
        await pilot.press("enter")
        assert "cannot write" in str(app.screen.query_one("#path-error").render())
        await pilot.press("escape")
        assert app.screen is app.main

    drive(app, script)


async def save_to(pilot, path: Path) -> str:
    """Ctrl+S, type ``path``, Enter; the dialog's answer once the write has ended."""
    app = pilot.app
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen) and app.screen.query("#path"), "the save dialog")
    app.screen.query_one("#path").value = str(path)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, SaveScreen) or not getattr(app.screen, "_busy", False), "the write")
    return str(app.screen.query_one("#path-error").render()) if isinstance(app.screen, SaveScreen) else ""


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_save_never_writes_into_what_is_not_a_regular_file(app_on, tmp_path: Path, kind: str) -> None:
    """Ctrl+S to a FIFO (opening it would wait forever for a reader, on the UI thread), a
    symlink (its target would be replaced) or a device: refused in the dialog, left alone."""
    import threading

    app = app_on(length=10, seed=1, delay_ms=0)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = {"fifo": tmp_path / "pipe", "symlink": tmp_path / "link.txt", "device": Path("/dev/null")}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        target.symlink_to(victim)
    unblocked = []

    def watchdog() -> None:  # a write blocked on the FIFO: let it through, so the test fails, not hangs
        time.sleep(10)
        if kind == "fifo" and not done.is_set():
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
            unblocked.append(os.read(fd, 100))
            os.close(fd)

    done = threading.Event()
    threading.Thread(target=watchdog, daemon=True).start()

    async def script(pilot) -> None:
        await generate(pilot)
        said = await save_to(pilot, target)
        assert {"fifo": "is a named pipe (FIFO)", "symlink": "is a symbolic link",
                "device": "is a character device"}[kind] in said
        assert isinstance(app.screen, SaveScreen)  # still asking, for another name
        await pilot.press("escape")
        done.set()

    drive(app, script)
    assert not unblocked and victim.read_text() == "precious"
    if kind == "symlink":
        assert target.is_symlink()


def test_save_asks_before_replacing_a_file(app_on, tmp_path: Path) -> None:
    """An existing file is replaced only after "Replace it"; Enter again keeps it."""
    app = app_on(length=10, seed=1, delay_ms=0)
    target = tmp_path / "notes.txt"
    target.write_text("a long text of mine\n" * 2000)
    before = target.read_text()

    async def script(pilot) -> None:
        await generate(pilot)
        said = await save_to(pilot, target)
        assert "notes.txt already exists (40,000 bytes" in said and "Replace it" in said
        assert target.read_text() == before
        await pilot.press("enter")  # a habitual second Enter: the focused button keeps the file
        assert isinstance(app.screen, SaveScreen) and target.read_text() == before
        assert "left as it is" in str(app.screen.query_one("#path-error").render())
        await pilot.press("enter")  # asked again
        await wait_for(pilot, lambda: not app.screen._busy and app.screen._confirming is not None, "the question")
        await pilot.click("#replace")
        await wait_for(pilot, lambda: app.screen is app.main, "the dialog to close")
        assert target.read_text() == app.main.output.transcript.plain()
        assert any("Saved the transcript" in n.message for n in app._notifications)

    drive(app, script)


def test_copy_never_writes_through_a_link(app_on, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+O's file is ours: a symlink put in its place is refused, its target left alone."""
    monkeypatch.setenv("CHARLSTM_CLIPBOARD", "file")
    app = app_on(length=30, seed=4, delay_ms=0)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = data_dir() / "last-output.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(victim)

    async def script(pilot) -> None:
        await generate(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: any(n.title == "Copy" for n in app._notifications), "the copy's notice")
        [notice] = [n.message for n in app._notifications if n.title == "Copy"]
        assert notice.startswith("Could not save the output") and "is a symbolic link" in notice

    drive(app, script)
    assert victim.read_text() == "precious" and path.is_symlink()


def test_copy_sends_osc52_and_says_only_that_it_was_sent(app_on, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside tmux (set-clipboard external by default) nothing may reach the clipboard: the
    notice says the text was sent, not copied, and names the file it is also saved in."""
    monkeypatch.delenv("CHARLSTM_CLIPBOARD", raising=False)
    monkeypatch.setenv("TMUX", "/nonexistent/tmux-socket,1,0")  # this tmux answers nothing: unknown
    app = app_on(length=30, seed=4, delay_ms=0)

    async def script(pilot) -> None:
        await pilot.press("ctrl+o")
        assert any("Nothing to copy" in n.message for n in app._notifications)
        await generate(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: any(n.title == "Copy" for n in app._notifications), "the copy's notice")
        out = app.main.last_output()
        assert len(out) == 30 and app.clipboard == out
        path = data_dir() / "last-output.txt"
        assert path.read_text() == out
        [notice] = [n.message for n in app._notifications if n.title == "Copy"]
        assert notice.startswith("Sent 30 characters to the terminal's clipboard (OSC 52)")
        assert "set-clipboard on" in notice and str(path) in notice and "Copied" not in notice

    drive(app, script)


def test_copy_falls_back_to_a_file_and_says_so(app_on, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARLSTM_CLIPBOARD", "file")
    app = app_on(length=30, seed=4, delay_ms=0)

    async def script(pilot) -> None:
        await generate(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: any(n.title == "Copy" for n in app._notifications), "the copy's notice")
        path = data_dir() / "last-output.txt"
        assert path.read_text() == app.main.last_output()
        [notice] = [n.message for n in app._notifications if n.title == "Copy"]
        assert notice.startswith(f"Saved the output to {path} (30 characters)") and "OSC 52" in notice

    drive(app, script)


def test_help_opens_with_f1_and_question_mark(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        keys = app.screen.keys_text()
        for words in ("Generate", "Stop", "Continue", "Regenerate", "Clear", "Save", "Copy", "History back"):
            assert words in keys
        shown = " ".join(line.strip("│ ") for line in screen_lines(app))
        assert "r resamples; [ and ] switch between a fork's branches" in shown  # not eaten as markup
        assert "[ / ]" in keys or ("[" in keys and "]" in keys)
        await pilot.press("escape")
        assert app.screen is app.main
        await paste(pilot, "text?")  # '?' typed in the prompt is text, not help
        assert app.main.prompt.text == "text?" and app.screen is app.main
        app.main.output.focus()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help from ?")
        await pilot.press("q")
        assert app.screen is app.main

    drive(app, script)


def test_palette_lists_every_action_and_runs_one(app_on) -> None:
    app = app_on(length=20, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        titles = {c.title for c in app.get_system_commands(app.main)}
        for title in ("Generate", "Stop", "Continue", "Regenerate", "Clear", "Save transcript…", "Copy last output",
                      "Open checkpoint…", "Theme", "Help", "Settings", "Temperature up", "Temperature down",
                      "Toggle mode", "Quit"):
            assert title in titles
        await type_text(pilot, "KING:")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen is not app.main, "the palette")
        await type_text(pilot, "Generate")
        await wait_for(pilot, lambda: "Generate" in str(app.screen.query_one("CommandList").get_option_at_index(0).prompt),
                       "the match")
        await pilot.press("enter")
        await finished(pilot)
        assert app.main.output.transcript.text().startswith("KING:")

    drive(app, script)


def test_theme_choice_persists(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        app.theme = "nord"
        await pilot.pause()

    drive(app, script)
    from charlstm_tui.settings import load_settings

    assert load_settings().theme == "nord"
    again = app_on()

    async def check(pilot) -> None:
        assert again.theme == "nord"

    drive(again, check)


def test_open_another_checkpoint(app_on, tiny_checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "second.pt"
    shutil.copy(tiny_checkpoint, other)
    app = app_on(length=10, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        await generate(pilot)
        app.action_open_checkpoint()
        await checkpoint_dialog(pilot, "#path", "the picker")
        app.screen.query_one("#path").value = str(tmp_path / "nope.pt")
        await pilot.press("enter")
        assert "does not exist" in str(app.screen.query_one("#path-error").render())
        app.screen.query_one("#path").value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.model is not None and app.main.model.info.name == "second",
                       "the second model")
        assert app.main.status.model_text.startswith("second ·")
        await generate(pilot, "LORD:")
        assert "LORD:" in app.main.output.transcript.text()

    drive(app, script)


def test_a_second_bad_path_replaces_the_error_the_dialog_opened_with(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The dialog opened on one file's error; another bad path typed in it is the only
    error shown (the first stayed on top, contradicting the line under the box)."""
    poem = tmp_path / "poem.txt"
    poem.write_text("The lantern swings above the quay.\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    app = CharLSTMApp(poem, explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#dialog-error", "the error dialog")
        dialog = app.screen
        assert str(poem) in str(dialog.query_one("#dialog-error").render())
        dialog.query_one("#path").value = str(fifo)
        await pilot.press("enter")
        assert str(dialog.query_one("#path-error").render()) == f"{fifo} is a named pipe (FIFO), not a checkpoint file"
        assert not dialog.query_one("#dialog-error").display and not dialog.query_one(".dialog-hint").display
        assert str(dialog.query_one("#dialog-title").render()) == "Open a checkpoint"
        dialog.query_one("#path").value = str(tiny_checkpoint)
        await pilot.press("enter")
        await loaded(pilot)
        assert app.main.model.info.path == tiny_checkpoint

    drive(app, script, wait_loaded=False)


def test_a_path_typed_in_a_burst_after_ctrl_u_is_kept(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Ctrl+U and the path typed behind it in one write: the old text goes, the new stays
    (the typed text was inserted first and Ctrl+U then deleted it)."""
    from .conftest import at_once

    app = CharLSTMApp(tiny_checkpoint, explicit=True)

    async def script(pilot) -> None:
        app.action_open_checkpoint()
        await checkpoint_dialog(pilot, "#path", "the picker")
        field = app.screen.query_one("#path")
        field.focus()
        await pilot.pause()
        await at_once(pilot, "end", "ctrl+u", *"/tmp/m.pt")
        assert field.value == "/tmp/m.pt"

    drive(app, script)


def test_a_corrupt_checkpoint_opened_while_a_model_runs_is_named_in_the_dialog(tmp_path: Path,
                                                                             tiny_checkpoint: Path) -> None:
    """The error dialog's path box holds the file that failed, ready to correct, not the model in use."""
    bad = tmp_path / "models" / "broken.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    app = CharLSTMApp(tiny_checkpoint, explicit=True)

    async def script(pilot) -> None:
        app.open_checkpoint(bad)
        await checkpoint_dialog(pilot, "#dialog-error", "the error dialog")
        assert str(bad) in str(app.screen.query_one("#dialog-error").render())
        assert app.screen.query_one("#path").value == str(bad)
        assert app.main.model is not None and app.main.model.info.path == tiny_checkpoint  # still in use

    drive(app, script)


@pytest.mark.parametrize("kind", ["missing", "corrupt", "bundled"])
def test_bad_checkpoint_opens_the_error_screen_then_a_good_one_loads(kind: str, tmp_path: Path,
                                                                     tiny_checkpoint: Path) -> None:
    bad = tmp_path / "model.pt"
    if kind == "corrupt":
        bad.write_bytes(b"PK\x03\x04 not really a zip")
    app = CharLSTMApp(bad, explicit=kind != "bundled")

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#path", "the error screen")
        error = str(app.screen.query_one("#dialog-error").render())
        want = {"missing": "does not exist", "corrupt": "corrupt", "bundled": "bundled model is not installed"}[kind]
        assert want in error and str(bad) in error
        assert "Fix:" in str(app.screen.query_one(".dialog-hint").render())
        app.screen.query_one("#path").value = str(tiny_checkpoint)
        await pilot.press("enter")
        await loaded(pilot)
        assert app.screen is app.main and app.main.model.info.name == "tiny"

    drive(app, script, wait_loaded=False)


def test_escape_closes_the_error_screen_and_the_app_stays(tmp_path: Path, tiny_checkpoint: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Esc closes a dialog, even the one at start-up; Quit quits; the bundled model is a button."""
    import charlstm_tui

    monkeypatch.setattr(charlstm_tui, "BUNDLED_CHECKPOINT", tiny_checkpoint)
    app = CharLSTMApp(tmp_path / "missing.pt", explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#path", "the error screen")
        dialog = app.screen
        assert [str(b.label) for b in dialog.query(Button)] == ["Open", "Use the bundled model", "Quit", "Cancel"]
        assert "missing.pt does not exist" in str(dialog.query_one("#dialog-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.screen is app.main and app.main.model is None
        assert app.main.status.model_text == "no model loaded · Enter opens one"
        assert app.main.status.run_text.startswith("no model · ")  # not "ready", nor a word of its own
        await type_text(pilot, "KING:")
        await pilot.press("enter")  # nothing to generate with: the dialog comes back
        await checkpoint_dialog(pilot, "#bundled", "the dialog again")
        app.screen.query_one("#bundled", Button).press()
        await loaded(pilot)
        assert app.screen is app.main and app.main.model.info.path == tiny_checkpoint
        app.action_open_checkpoint()  # with a model loaded: no Quit, Esc closes
        await checkpoint_dialog(pilot, "#path", "the picker")
        assert not app.screen.query("#quit")
        await pilot.press("escape")
        assert app.screen is app.main and app.is_running
        app.open_checkpoint(tmp_path / "other-missing.pt")  # a failed load keeps the model: still ready
        await checkpoint_dialog(pilot, "#path", "the error again")
        app.screen.query_one("#path", Input).value = ""
        await pilot.click("#open")  # no path: say what to do, both ways
        assert str(app.screen.query_one("#path-error").render()) == "type a path (→ completes it), or pick a file below"
        await pilot.press("escape")
        assert app.main.status.run_text.startswith("ready · ")

    drive(app, script, wait_loaded=False)


def test_quit_on_the_error_screen_quits(tmp_path: Path) -> None:
    app = CharLSTMApp(tmp_path / "missing.pt", explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#quit", "the error screen")
        app.screen.query_one("#quit", Button).press()
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")

    drive(app, script, wait_loaded=False)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_path_that_is_no_file_is_said_before_any_load(kind: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import charlstm_tui.app as app_module

    def never(path):
        raise AssertionError("load_model was called for a path that is no file")

    monkeypatch.setattr(app_module, "load_model", never)
    path = tmp_path
    if kind == "fifo":
        path = tmp_path / "model.pt"
        os.mkfifo(path)
    app = CharLSTMApp(path, explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#path", "the error screen")
        error = str(app.screen.query_one("#dialog-error").render())
        assert error == {"folder": f"{path} is a folder, not a checkpoint file",
                         "fifo": f"{path} is a named pipe (FIFO), not a checkpoint file"}[kind]

    drive(app, script, wait_loaded=False)


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
def test_the_error_dialog_shows_its_message_and_every_button_on_a_small_terminal(size, tmp_path: Path,
                                                                                tiny_checkpoint: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of random bytes at start-up: the error, the path field and all four buttons are
    on screen, whole, and a click on each reaches it."""
    import charlstm_tui

    monkeypatch.setattr(charlstm_tui, "BUNDLED_CHECKPOINT", tiny_checkpoint)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(1000))
    app = CharLSTMApp(bad, explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#quit", "the error screen")
        await pilot.pause()
        dialog = app.screen
        screen = "\n".join(screen_lines(app))
        assert "Cannot open the checkpoint" in screen and "not a checkpoint at all" in screen
        visible = dialog.query_one("#dialog").region
        assert visible.contains_region(dialog.query_one("#path").region)  # the path field
        for button in dialog.query(Button):
            label = str(button.label)
            assert visible.contains_region(button.region), label  # inside the dialog: not cut, not below it
            assert label in screen, label
        await pilot.click("#cancel")
        assert app.screen is app.main and app.is_running
        app.action_open_checkpoint()  # the picker, now with the bundled model's button: click that
        await checkpoint_dialog(pilot, "#bundled", "the picker")
        await pilot.pause()
        await pilot.click("#bundled")
        await loaded(pilot)

    drive(app, script, size=size, wait_loaded=False)


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
def test_the_save_dialog_shows_its_question_and_buttons_on_a_small_terminal(app_on, size, tmp_path: Path) -> None:
    app = app_on(length=10, seed=1, delay_ms=0)
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")

    async def script(pilot) -> None:
        await generate(pilot)
        said = await save_to(pilot, target)
        assert "already exists" in said
        await pilot.pause()
        screen = "\n".join(screen_lines(app))
        visible = app.screen.query_one("#dialog").region
        for button in app.screen.query(Button):
            assert visible.contains_region(button.region) and str(button.label) in screen
        assert "already exists" in screen
        await pilot.click("#replace")
        await wait_for(pilot, lambda: app.screen is app.main, "the dialog to close")
        assert target.read_text() == app.main.output.transcript.plain()

    drive(app, script, size=size)


def test_a_resize_from_wide_to_30x8_under_the_error_dialog_keeps_the_app_running(tmp_path: Path) -> None:
    """The main screen under the dialog learns of a resize after it is laid out anew: for a
    frame its output pane is 0 columns wide, and its welcome hint must draw there (it raised)."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(1000))
    app = CharLSTMApp(bad, explicit=True)

    async def script(pilot) -> None:
        await checkpoint_dialog(pilot, "#quit", "the error screen")
        for size in ((160, 45), (30, 8), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
        assert app.is_running and isinstance(app.screen, CheckpointScreen)
        assert "Cannot open the checkpoint" in "\n".join(screen_lines(app))

    drive(app, script, size=(80, 24), wait_loaded=False)


def test_help_names_every_key_as_the_footer_does_and_each_is_bound(app_on) -> None:
    """One style of key names, the footer's (F5, ^N, Esc, Enter, PgUp), in the help's
    table and its text; each key listed with an action is an action of the app."""
    import re

    from charlstm_tui.screens.help import keys_cell
    from charlstm_tui.screens.main import MainScreen
    from charlstm_tui.screens.score import ScoreScreen
    from charlstm_tui.screens.sweep import SweepScreen
    from charlstm_tui.screens.train import TrainScreen
    from charlstm_tui.screens.training_view import TrainingViewScreen
    from charlstm_tui.widgets.explore_view import ExplorerView
    from charlstm_tui.widgets.prompt import PromptArea
    from charlstm_tui.widgets.settings_panel import SettingInput

    footer_style = re.compile(r"F\d+|\^[A-Z]|Esc|Enter|Shift\+Enter|Tab|PgUp|PgDn|End|[↑↓←→?\[\]r0]|1–9")
    owners = (CharLSTMApp, MainScreen, PromptArea, ExplorerView, SettingInput, TrainScreen, SweepScreen, ScoreScreen,
              TrainingViewScreen)
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        listed = [b for _, bindings in app.screen.sections for b in bindings if b.description]
        for b in listed:
            for key in keys_cell(b).split(" / "):
                assert footer_style.fullmatch(key), (key, b.description)
            if b.action:
                name = b.action.removeprefix("screen.").removeprefix("app.").split("(")[0]
                assert any(hasattr(owner, f"action_{name}") for owner in owners), b.action
        shown = " ".join(line.strip("│ ") for line in screen_lines(app))
        assert "Ctrl+" not in shown.replace("^N means Ctrl+N", "")
        assert "1–9 / 0" in app.screen.keys_text() and "^N means Ctrl+N" in shown

    drive(app, script, size=(120, 80))
