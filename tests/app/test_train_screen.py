"""The Train screen (F6): a real run on a tiny corpus, end to end, then generation from the
new model; stopping, leaving and coming back, quitting mid-run; every bad input shown
on the screen as one line. Runs are short: the quick preset fits a 1x64 LSTM to the
test corpus, and the budget is a few seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input, RadioButton, Static

from charlstm_tui.screens.help import HelpScreen
from charlstm_tui.screens.train import DEFAULT_BUDGET, TrainScreen
from core.checkpoint import load_checkpoint
from core.paths import data_dir
from core.train import last_path

from .conftest import drive, expected, screen_lines, type_text, wait_for

BUDGET = "0.04"  # minutes: 2.4 s of training, then the final evaluation


async def open_train(pilot) -> TrainScreen:
    await pilot.press("f6")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrainScreen), "the Train screen")
    return pilot.app.screen


async def choose(pilot, screen: TrainScreen, path: Path, budget: str = BUDGET, preset: str = "quick") -> None:
    """Set the budget and preset, type ``path`` and press Enter; wait for the check."""
    screen.query_one("#train-budget", Input).value = budget
    screen.query_one(f"#preset-{preset}", RadioButton).value = True
    field = screen.query_one("#train-path", Input)
    field.value = str(path)
    field.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: not screen.checking, "the text check")


async def trained(pilot, screen: TrainScreen) -> None:
    await wait_for(pilot, lambda: screen.state in ("done", "failed") and screen.job.ended.is_set(), "the run to end")
    await pilot.pause()


async def generated(pilot) -> None:
    """The main screen's run ended. (Not conftest's ``finished``: it waits for every worker,
    and the Train screen's directory tree keeps one for as long as it lives.)"""
    main = pilot.app.main
    await wait_for(pilot, lambda: main.run is not None and main.run.finished, "the run to finish")
    await pilot.pause()


def test_train_on_a_tiny_corpus_then_generate_from_it(app_on, corpus_file: Path, corpus_text: str,
                                                      tiny_checkpoint: Path) -> None:
    app = app_on(length=30, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        screen = await open_train(pilot)
        # The path completes with Tab, then the text is read as soon as it names a file.
        screen.query_one("#train-budget", Input).value = BUDGET
        field = screen.query_one("#train-path", Input)
        field.value = str(corpus_file.parent / "pla")
        await wait_for(pilot, lambda: field._suggestion == str(corpus_file), "the completion")
        await pilot.press("tab")
        assert field.value == str(corpus_file)
        await wait_for(pilot, lambda: screen.info is not None and not screen.checking, "the text to be read")
        info = str(screen.query_one("#train-info", Static).render())
        assert f"{len(corpus_text):,} characters" in info
        assert f"{len(set(corpus_text))} distinct characters" in info and "⏎␣!" in info
        assert corpus_text.split("\n")[1] in str(screen.query_one("#train-preview", Static).render())
        plan = str(screen.query_one("#train-plan", Static).render())
        assert "quick preset for" in plan and "1x64 LSTM" in plan and "0.04 min" in plan
        assert screen.chart.is_empty

        await pilot.press("f5")  # one press only asks for a second: F5 is the heat-map elsewhere
        assert screen.state == "setup" and "Press F5 again to start training on plays.txt" in screen.message
        await pilot.press("f5")
        assert screen.state in ("running", "done")  # a quick run of a tiny text may end at once
        await trained(pilot, screen)
        assert screen.state == "done", screen.message
        out = screen.out
        assert out is not None and out.parent == data_dir() / "models" and out.exists()
        # The curves received every step (batched, none lost) and the final evaluation.
        assert screen.chart.count("train") == load_checkpoint(last_path(out)).step >= 2
        assert screen.chart.count("val") >= 1
        assert re.fullmatch(r"plays-quick-\d{8}-\d{6}\.pt", out.name)
        ckpt = load_checkpoint(out)
        assert ckpt.train["data"] == "plays" and ckpt.train["config"]["time_limit"] == 0.04
        assert ckpt.model_config.n_embd == 64
        # It ends by itself: 25 passes over the text (a few seconds), or the 2.4 s budget on a busy machine.
        assert re.match(r"(finished|time limit): ", screen.message) and str(out) in screen.message
        # It is loaded, and generation uses it.
        await wait_for(pilot, lambda: app.main.model is not None and app.main.model.info.path == out, "the new model")
        await pilot.press("escape")
        assert app.screen is app.main
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await generated(pilot)
        assert app.main.last_output() == expected(out, "KING:", length=30, seed=1)
        assert app.main.last_output() != expected(tiny_checkpoint, "KING:", length=30, seed=1)

    drive(app, script)


def test_stop_keeps_the_checkpoint_and_the_run_survives_leaving_the_screen(app_on, corpus_file: Path) -> None:
    # Few key presses while training: each makes Pilot wait up to a second for the
    # process to go idle, which it never does while a run is busy.
    app = app_on()

    async def script(pilot) -> None:
        screen = await open_train(pilot)
        await choose(pilot, screen, corpus_file, budget="5", preset="default")  # quick ends in seconds here
        screen.action_start()  # (F5 itself is pressed in the end-to-end test)
        await wait_for(pilot, lambda: screen.chart.count("train") >= 3, "the first steps")
        # Back on the main screen the run goes on and the app answers keys.
        await pilot.press("escape")
        assert app.screen is app.main and screen.state == "running"
        await pilot.press("a")
        assert app.main.prompt.text == "a"
        seen = screen.chart.count("train")
        await wait_for(pilot, lambda: screen.chart.count("train") > seen, "steps while away")
        app.action_train()
        await wait_for(pilot, lambda: app.screen is screen, "the same screen, curves and all")
        await pilot.press("f8")  # one press only asks for a second: F8 is the inspector elsewhere
        assert not screen.job.stop.is_set() and "Press F8 again to stop training" in screen.message
        await pilot.press("f8")
        assert screen.job.stop.is_set() and screen.state in ("stopping", "done")  # a tiny step ends at once
        await trained(pilot, screen)
        assert screen.state == "done" and "stopped" in screen.message
        assert screen.out is not None and load_checkpoint(screen.out).step >= 3
        await wait_for(pilot, lambda: app.main.model.info.path == screen.out, "the stopped run's model")

    drive(app, script)


def test_quitting_mid_run_stops_the_trainer(app_on, corpus_file: Path) -> None:
    app = app_on()
    jobs = []

    async def script(pilot) -> None:
        screen = await open_train(pilot)
        await choose(pilot, screen, corpus_file, budget="5", preset="default")  # quick ends in seconds here
        screen.action_start()
        await wait_for(pilot, lambda: screen.chart.count("train") >= 1, "the first step")
        jobs.append(screen.job)

    drive(app, script)  # the app exits here, mid-run
    job = jobs[0]
    assert job.ended.wait(60), "the training thread is still running after the app quit"
    assert job.out.exists()  # it stopped the way F8 does: saved


def bad_inputs(tmp_path: Path, corpus_file: Path) -> list[tuple[str, Path, str, str, str]]:
    """(case, path, preset, budget, what the line must say) for every kind of bad input."""
    cases = [("missing", tmp_path / "nope.txt", "quick", BUDGET, "nope.txt does not exist"),
             ("folder", tmp_path, "quick", BUDGET, "is a folder: pick a text file in it")]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("héllo wörld, ".encode("latin-1") * 50)
    cases.append(("not-utf8", latin1, "quick", BUDGET, "not UTF-8 text (invalid byte 0xe9 at byte 1)"))
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.txt"
        locked.write_text("some text " * 100)
        locked.chmod(0)
        cases.append(("unreadable", locked, "quick", BUDGET, "cannot read"))
    if Path("/proc/self/mem").exists():  # a regular file whose read fails, even for root
        cases.append(("io-error", Path("/proc/self/mem"), "quick", BUDGET,
                      "cannot read data file /proc/self/mem: Input/output error"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases.append(("empty", empty, "quick", BUDGET, "is empty"))
    cases.append(("budget", corpus_file, "quick", "1.2.3", "type minutes above 0"))
    short = tmp_path / "short.txt"
    short.write_text("To be or not to be. " * 25)  # 500 characters; a block of 256 needs 2,571
    cases.append(("short-for-default", short, "default", BUDGET,
                  "too short for the default preset's block of 256 (it needs at least 2,571)"))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("abcdefghij")  # quick shrinks its block to 1: still too long for a 1-char val split
    cases.append(("short-for-quick", tiny, "quick", BUDGET, "too short for the quick preset's block of 1"))
    return cases


def test_bad_input_is_one_line_on_the_screen(app_on, tmp_path: Path, corpus_file: Path) -> None:
    app = app_on()
    cases = bad_inputs(tmp_path, corpus_file)

    async def script(pilot) -> None:
        screen = await open_train(pilot)
        line = screen.query_one("#train-message", Static)
        for case, path, preset, budget, want in cases:
            await choose(pilot, screen, path, budget=budget, preset=preset)
            assert want in screen.message and line.has_class("-error"), f"{case}: {screen.message}"
            assert "\n" not in screen.message and "Traceback" not in screen.message, case
            screen.action_start()  # refused, with the same line
            assert screen.state == "setup" and screen.job is None, case
            assert want in screen.message or "Pick a text file first" in screen.message, case
        assert not (data_dir() / "models").exists()
        # And a good file after all that is accepted.
        await choose(pilot, screen, corpus_file)
        assert screen.message.startswith("Ready: plays.txt") and not line.has_class("-error")
        assert "teach a model little" not in screen.message
        poem = tmp_path / "poem.txt"
        poem.write_text("The lantern swings above the quay at Dunmore,\nand every gull calls for Marigold.\n")
        await choose(pilot, screen, poem)  # it trains, and is said to teach little
        assert screen.message.startswith("Ready: poem.txt") and not line.has_class("-error")
        assert "At 81 characters it will teach a model little" in screen.message

    drive(app, script, wait_loaded=False)


@pytest.fixture
def full_models_dir(tmp_path: Path):
    """The models folder on a 1 MiB tmpfs filled to the last byte (needs root)."""
    models = data_dir() / "models"
    models.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(models)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        with open(models / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield models
    finally:
        subprocess.run(["umount", "-l", str(models)], check=True)


def test_full_disk_is_shown_and_the_old_model_stays(app_on, corpus_file: Path, full_models_dir: Path) -> None:
    app = app_on()

    async def script(pilot) -> None:
        before = app.main.model.info.path
        screen = await open_train(pilot)
        await choose(pilot, screen, corpus_file, budget="0.02")
        await pilot.press("f5", "f5")
        await trained(pilot, screen)
        assert screen.state == "failed"
        assert "Training failed: cannot write checkpoint" in screen.message and "the disk is full" in screen.message
        assert screen.query_one("#train-message", Static).has_class("-error")
        assert app.main.model.info.path == before
        assert not screen.query_one("#train-path", Input).disabled  # ready for another try

    drive(app, script)


def test_palette_help_and_the_bundled_model(
        app_on, tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import charlstm_tui

    monkeypatch.setattr(charlstm_tui, "BUNDLED_CHECKPOINT", tmp_path / "checkpoints" / "shakespeare.pt")
    app = app_on()

    async def script(pilot) -> None:
        titles = {c.title for c in app.get_system_commands(app.main)}
        assert {"Train a model…", "Use the bundled model"} <= titles
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen is not app.main, "the palette")
        await type_text(pilot, "Train a model")
        await wait_for(pilot, lambda: "Train a model" in str(
            app.screen.query_one("CommandList").get_option_at_index(0).prompt), "the match")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), "the Train screen")
        await pilot.press("escape")
        app.action_use_bundled()  # not installed yet: said so, nothing changes
        await pilot.pause()
        assert any("bundled model is not installed" in n.message for n in app._notifications)
        assert app.main.model.info.name == "tiny"
        charlstm_tui.BUNDLED_CHECKPOINT.parent.mkdir()
        shutil.copy(tiny_checkpoint, charlstm_tui.BUNDLED_CHECKPOINT)
        app.action_use_bundled()
        await wait_for(pilot, lambda: app.main.model.info.name == "shakespeare", "the bundled model")
        # F6 and the Train screen's keys are in the help.
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        keys = app.screen.keys_text()
        for words in ("Train a model", "Start training", "Stop, keep the best", "Complete the path"):
            assert words in keys

    drive(app, script)


def test_default_budget_is_the_quick_presets_time_limit() -> None:
    from core.quick import QUICK

    assert DEFAULT_BUDGET == QUICK.time_limit


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_a_training_that_ends_mid_run_offers_its_model_and_takes_nothing_away(app_on, corpus_file: Path,
                                                                               tiny_checkpoint: Path, size) -> None:
    """The model is offered, not swapped in; F6 shows the Load button, whole and on screen
    (it sat hidden in the Recipe's button row, with only its focus for Enter to find), and
    the whole screen fits: the footer on the last row, the stats line ends in whole parts."""
    app = app_on(length=100_000, delay_ms=2, seed=4)

    async def script(pilot) -> None:
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        run = app.main.run
        screen = await open_train(pilot)
        await choose(pilot, screen, corpus_file, budget="0.1")
        screen.action_start()
        await wait_for(pilot, lambda: screen.chart.count("train") >= 1, "the first step")
        assert app.main.status.train_text.startswith("training ")  # shown on the main screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.job.ended.is_set() and screen.state == "done", "the training")
        await pilot.pause(0.3)
        # The run goes on, on the model it started with; the new one is offered, not swapped in.
        assert app.main.run is run and not run.finished
        assert app.main.model.info.path == tiny_checkpoint
        assert app.main.status.train_text == "new model ready · F6 to load"
        count = run.count
        await wait_for(pilot, lambda: run.count > count + 20, "the run still streaming")
        # F6 then Enter loads it (the Train screen's Load button has the focus).
        await pilot.press("f6")
        await pilot.pause()
        assert app.screen is screen and app.focused is screen.query_one("#train-load")
        lines = screen_lines(app)
        label = f"Load {screen.out.name}"
        assert any(label in line for line in lines), "the Load button is not on screen"
        assert "load it below" in screen.message
        assert lines[-1].lstrip().startswith("F5 start"), "the footer is off screen"
        stats = next(line for line in lines if "ETA" in line)
        assert re.search(r"step [\d,]+( · |\s*$)", stats), stats  # never "· step" without its number
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.model.info.path == screen.out, "the trained model")
        assert run.finished == "stopped"  # the user chose to swap: the run ends there
        assert app.main.status.train_text == "" and app.trained is None
        assert "Loaded into the app" in screen.message and not screen.query_one("#train-offer").display

    drive(app, script, size=size)


def test_at_80x24_the_tree_shows_whole_names(app_on, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Text column was 21 cells: 'tinyshakespeare.txt' showed as 'tinyshakes'."""
    (tmp_path / "tinyshakespeare.txt").write_text("To be, or not to be\n" * 50)
    (tmp_path / "shakespeare_plays").mkdir()
    monkeypatch.chdir(tmp_path)
    app = app_on()

    async def script(pilot) -> None:
        await open_train(pilot)
        await pilot.pause(0.3)
        text = "\n".join(screen_lines(app))
        assert "tinyshakespeare.txt" in text and "shakespeare_plays" in text
        assert "Recipe" in text and "Start" in text and "Stop" in text

    drive(app, script, size=(80, 24))


def test_at_30x8_the_train_screen_says_it_is_too_small_and_how_to_go_back(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        await open_train(pilot)
        await pilot.pause()
        rows = screen_lines(app)
        text = "\n".join(rows)
        assert "Too small to set up a run" in text and "Esc back" in rows[-1]
        assert "Pick a text file" not in text  # the hint about the hidden tree is left out
        await pilot.press("escape")
        assert app.screen is app.main

    drive(app, script, size=(30, 8))
