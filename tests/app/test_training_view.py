"""The training view (F10), driven with Pilot on the tiny checkpoint: loss curves from the
checkpoint's history, the model card, and a picker that lists checkpoint files with their
val loss and loads the chosen one. Also: the explorer's keys in the palette and help."""

from __future__ import annotations

import json
import math
from pathlib import Path

from charlstm_tui.card import ModelCard
from charlstm_tui.screens.training_view import TrainingViewScreen
from core.checkpoint import load_checkpoint, save_checkpoint
from core.paths import data_dir

from .conftest import drive, wait_for

OTHER_HISTORY = [{"step": s, "train_loss": 4.0 - s / 100, "val_loss": 4.1 - s / 110} for s in (0, 50, 100, 150, 200)]


def other_checkpoint(tiny: Path) -> Path:
    """A second file in <data dir>/models: the tiny weights with another history."""
    ckpt = load_checkpoint(tiny)
    ckpt.train = {**ckpt.train, "best_val_loss": 1.2345, "history": OTHER_HISTORY, "data": "other-text", "step": 12_345}
    return save_checkpoint(data_dir() / "models" / "other.pt", ckpt)


def cell(screen: TrainingViewScreen, path: Path, column: str) -> str:
    return str(screen.picker.get_cell(str(path), column))


def test_curves_card_and_picker_that_loads(app_on, tiny_checkpoint) -> None:
    other = other_checkpoint(tiny_checkpoint)
    broken = other.with_name("broken.pt")
    broken.write_bytes(b"not a checkpoint")
    tiny = load_checkpoint(tiny_checkpoint)
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingViewScreen), "the training view")
        screen: TrainingViewScreen = app.screen
        await wait_for(pilot, lambda: all(screen.card(p) or str(p.resolve()) in screen.errors for p in screen.files),
                       "every file to be read")
        await pilot.pause()
        names = [p.name for p in screen.files]
        assert {"tiny.pt", "tiny.last.pt", "other.pt", "broken.pt"} <= set(names)
        # The current checkpoint is marked, highlighted, and its curves and card shown.
        assert cell(screen, tiny_checkpoint, "mark") == "●" and cell(screen, other, "mark") == ""
        assert screen.files[screen.picker.cursor_row] == tiny_checkpoint
        history = tiny.history
        assert len(history) >= 2
        assert screen.chart.points("val") == [(h["step"], h["val_loss"]) for h in history]
        assert screen.chart.points("train") == [(h["step"], h["train_loss"]) for h in history]
        best = tiny.best_val_loss
        assert f"best val     {best:.4f} nats/char, {best / math.log(2):.4f} bits/char" in screen.card_text
        assert "LSTM 1 x 32" in screen.card_text
        # Every file with its val loss (nats and bits); a bad file says so.
        assert cell(screen, tiny_checkpoint, "val") == f"{best:.4f}"
        assert cell(screen, other, "val") == "1.2345" and cell(screen, other, "bits") == f"{1.2345 / math.log(2):.4f}"
        assert cell(screen, other, "step") == "12,345"
        assert screen.picker.columns["step"].content_width >= len("12,345")  # widened once read, not cut
        assert cell(screen, broken, "val") == "unreadable"
        # Moving the cursor shows that file's curves and card.
        target = names.index("other.pt")
        while screen.picker.cursor_row != target:
            await pilot.press("down" if screen.picker.cursor_row < target else "up")
        assert screen.chart.points("val") == [(h["step"], h["val_loss"]) for h in OTHER_HISTORY]
        assert "other-text" in screen.card_text and "1.2345 nats/char" in screen.card_text
        # Enter loads it into the app; the mark follows.
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.model.info.path == other, "the chosen model to load")
        await pilot.pause()
        assert app.checkpoint == other
        assert cell(screen, other, "mark") == "●" and cell(screen, tiny_checkpoint, "mark") == ""
        # A broken file is refused with its reason, and the model stays.
        while screen.picker.cursor_row != names.index("broken.pt"):
            await pilot.press("down" if screen.picker.cursor_row < names.index("broken.pt") else "up")
        await pilot.press("enter")
        await pilot.pause()
        assert any(n.title == "Cannot load" and "broken.pt" in n.message for n in app._notifications)
        assert app.checkpoint == other
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, "the main screen")

    drive(app, script, size=(140, 40))


def test_explorer_keys_in_palette_and_help(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Temperature sweep", "Score a text…", "Training view"} <= titles
        await pilot.press("f1")
        await pilot.pause()
        keys = app.screen.keys_text(width=140)
        for section in ("Temperature sweep (F7)", "Score a text (F9)", "Training view (F10)"):
            assert section in keys
        assert "Load this checkpoint" in keys and "Stop / back" in keys

    drive(app, script)


def test_card_history_prefers_the_longer_metrics_file(tmp_path, tiny_checkpoint) -> None:
    ckpt = load_checkpoint(tiny_checkpoint)
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    card = ModelCard.of(path, ckpt)
    assert card.history == tuple(ckpt.history) and card.history_source == "checkpoint"
    # The trainer's metrics file holds the whole run; a line cut short by a crash is skipped.
    lines = [json.dumps(h) for h in OTHER_HISTORY] + ['{"step": 25']
    (tmp_path / "m.metrics.jsonl").write_text("\n".join(lines), encoding="utf-8")
    card = ModelCard.of(path, ckpt)
    assert card.history == tuple(OTHER_HISTORY) and card.history_source == "m.metrics.jsonl"


def test_gradient_statistics_beside_a_checkpoint_are_not_listed_as_checkpoints(tmp_path, tiny_checkpoint) -> None:
    """NAME.adapt.pt (the statistics that adapting reads, as the bundled model ships) is no
    checkpoint: the picker listed it as "unreadable"."""
    import shutil

    from charlstm_tui import BUNDLED_CHECKPOINT
    from charlstm_tui.screens.training_view import checkpoint_files
    from core import adapt_stats

    current = tmp_path / "mine.pt"
    shutil.copy(tiny_checkpoint, current)
    sidecar = adapt_stats.sidecar_path(current)
    sidecar.write_bytes(b"statistics")
    names = [p.name for p in checkpoint_files(current)]
    assert "mine.pt" in names and sidecar.name not in names
    if adapt_stats.sidecar_path(BUNDLED_CHECKPOINT).exists():
        assert BUNDLED_CHECKPOINT.name in names
        assert not any(n.endswith(".adapt.pt") for n in names), names


def resume_file(tiny: Path, name: str, step: int) -> Path:
    """A run's resume file in <data dir>/models: tiny.last.pt (real, with its optimizer) with
    a history whose last evaluation, at step 60, is worse than the run's best."""
    ckpt = load_checkpoint(tiny.with_name("tiny.last.pt"))
    assert ckpt.resume is not None
    history = [{"step": 30, "train_loss": 2.0, "val_loss": 1.1111}, {"step": 60, "train_loss": 1.5, "val_loss": 2.2222}]
    ckpt.train = {**ckpt.train, "best_val_loss": 1.1111, "history": history, "step": step}
    return save_checkpoint(data_dir() / "models" / name, ckpt)


def test_a_resume_file_shows_its_own_val_loss_labelled_and_cli_advice_as_such(app_on, tiny_checkpoint) -> None:
    """NAME.last.pt showed the run's best val (the best file's figure) as its own."""
    last = resume_file(tiny_checkpoint, "run.last.pt", 60)
    later = resume_file(tiny_checkpoint, "later.last.pt", 65)  # stopped after the last evaluation
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingViewScreen), "the training view")
        screen: TrainingViewScreen = app.screen
        await wait_for(pilot, lambda: screen.card(last) and screen.card(later), "the files to be read")
        await pilot.pause()
        assert cell(screen, last, "val") == "2.2222 last eval"
        assert cell(screen, last, "bits") == f"{2.2222 / math.log(2):.4f}"
        assert cell(screen, later, "val") == "— not evaluated" and cell(screen, later, "bits") == "—"
        target = [p.name for p in screen.files].index("run.last.pt")
        while screen.picker.cursor_row != target:
            await pilot.press("down" if screen.picker.cursor_row < target else "up")
        card = screen.card_text
        assert "val          2.2222 nats/char" in card and "at its last evaluation (step 60)" in card
        assert "run's best   1.1111 nats/char" in card and "best val" not in card
        assert "the run's best model is run.pt" in card
        assert f"resume       on the command line: charlstm-tui train --data TEXT --resume {last}" in card
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.model.info.path == last, "the resume file to load")
        assert app.main.model.info.summary().endswith("val 2.222")
        target = [p.name for p in screen.files].index("later.last.pt")
        while screen.picker.cursor_row != target:
            await pilot.press("down" if screen.picker.cursor_row < target else "up")
        assert "not evaluated: saved at step 65, after the last evaluation (step 60)" in screen.card_text

    drive(app, script, size=(80, 24))


def test_the_footer_names_enter_to_load_at_80x24(app_on) -> None:
    """The picker's own Enter hid the screen's: the footer began at 'F5 look again'."""
    from .conftest import screen_lines

    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingViewScreen), "the training view")
        await pilot.pause()
        assert app.screen.picker.has_focus
        assert screen_lines(app)[-1].startswith(" Enter load  Esc back  F5 look again")
        # The chart's border: the longest forms that fit, whole ('from checkpo…' before).
        screen = app.screen
        await wait_for(pilot, lambda: screen.chart.border_subtitle, "the chart's curves")
        chart = screen.chart.region
        rows = screen_lines(app)
        for row in (rows[chart.y], rows[chart.bottom - 1]):
            assert "…" not in row[chart.x:chart.right]
        assert screen.chart.border_subtitle.endswith("evaluations")

    drive(app, script, size=(80, 24))


def test_at_30x8_the_picker_and_the_keys_show(app_on, tiny_checkpoint) -> None:
    """The picker's 12 rows pushed the footer off an 8-row terminal, under empty curves."""
    from .conftest import screen_lines

    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingViewScreen), "the training view")
        await pilot.pause()
        rows = screen_lines(app)
        assert rows[-1].strip() == "Enter load  Esc back" and "Checkpoints" in rows[0]
        assert any(tiny_checkpoint.name in r for r in rows)

    drive(app, script, size=(30, 8))
