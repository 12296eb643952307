"""The training view (F10): a checkpoint's loss curves, its model card, and a picker of
the checkpoints on this machine.

The picker lists the ``.pt`` files in the bundled ``checkpoints/`` folder, in
``<data dir>/models`` (where the Train screen saves) and beside the current checkpoint,
each with the val loss of the weights it holds (a resume file's, ``NAME.last.pt``, is its
last evaluation's, so labelled). Every file is read once (:meth:`ModelCard.read`, on the CPU,
in a thread worker) and only its card is kept. Moving the cursor shows a file's train and
val curves (:class:`~charlstm_tui.widgets.loss_chart.LossChart`) and card; Enter loads it
into the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ..card import LN2, ModelCard
from ..messages import CardRead
from ..widgets.keybar import KeyBar
from ..widgets.loss_chart import LossChart

if TYPE_CHECKING:
    from ..app import CharLSTMApp
    from ..bridge import LoadedModel

COLUMNS = (("mark", ""), ("name", "checkpoint"), ("val", "val loss"), ("bits", "bits/char"), ("step", "step"),
           ("model", "model"), ("folder", "folder"))


def checkpoint_files(current: Path) -> list[Path]:
    """The ``.pt`` files the picker offers: the bundled folder, ``<data dir>/models`` and
    the current checkpoint's folder, in that order, each file once, hidden ones and
    gradient statistics beside a checkpoint (``NAME.adapt.pt``) left out."""
    from core.paths import SIDECAR_SUFFIX, data_dir

    from .. import BUNDLED_CHECKPOINT

    found: dict[Path, Path] = {}
    for folder in (BUNDLED_CHECKPOINT.parent, data_dir() / "models", current.parent):
        try:
            files = sorted(p for p in folder.glob("*.pt") if not p.name.startswith(".")
                           and not p.name.endswith(SIDECAR_SUFFIX) and p.is_file())
        except OSError:
            continue
        for p in files:
            found.setdefault(p.resolve(), p)
    if current.is_file():
        found.setdefault(current.resolve(), current)
    return list(found.values())


def file_key(path: Path) -> tuple[str, int, int]:
    """Identifies a file's version: a rewritten checkpoint is read again."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


class TrainingViewScreen(Screen):
    """Chart and card above, the checkpoint picker below."""

    app: "CharLSTMApp"

    BINDINGS = [
        Binding("enter", "load", "Load this checkpoint"),
        Binding("f5", "refresh", "Look again"),
        Binding("escape", "back", "Back"),
    ]
    # Under 16 rows the picker takes the screen (the curves and card need more room) and the
    # footer stays on it (app.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (16, "-roomy-v")]

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cards: dict[tuple[str, int, int], ModelCard] = {}  # read once per file version
        self.errors: dict[str, str] = {}  # resolved path -> why it could not be read
        self.files: list[Path] = []  # the picker's rows, in order
        self.shown: Path | None = None  # the file whose card and curves are on screen
        self._request = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="tv-top"):
            yield LossChart("No loss history in this checkpoint.", id="tv-chart")
            with VerticalScroll(id="tv-card-box"):
                yield Static("Reading…", id="tv-card")
        yield DataTable(id="tv-picker", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first. In the picker Enter is the table's own key
        (it selects the row, which loads it): its action is named so the footer finds it."""
        return [("select_cursor", "load"), ("load", "load"), ("back", "back"),
                ("refresh", "look again"), ("help", "help"), ("train", "train"), ("sweep", "sweep"), ("score", "score")]

    def on_mount(self) -> None:
        self.chart.border_title = "Loss"
        self.query_one("#tv-card-box").border_title = "Model card"
        self.picker.border_title = "Checkpoints"
        self.picker.border_subtitle = "↑↓ look · Enter load · F5 look again"
        for key, label in COLUMNS:
            self.picker.add_column(label, key=key)
        self.picker.focus()

    def on_screen_resume(self) -> None:
        # Each visit: files may have appeared (a run in the Train screen) and the model
        # may have changed.
        signal = self.app.model_changed_signal
        signal.unsubscribe(self)
        signal.subscribe(self, self._model_changed)
        self.action_refresh()

    def on_screen_suspend(self) -> None:
        self.app.model_changed_signal.unsubscribe(self)

    @property
    def chart(self) -> LossChart:
        return self.query_one("#tv-chart", LossChart)

    @property
    def picker(self) -> DataTable:
        return self.query_one("#tv-picker", DataTable)

    @property
    def card_text(self) -> str:
        """The shown model card as plain text ("" until it is read)."""
        card = self.card(self.shown) if self.shown is not None else None
        return card.text() if card is not None else ""

    def card(self, path: Path) -> ModelCard | None:
        """``path``'s card if it has been read (in its current version)."""
        try:
            return self.cards.get(file_key(path))
        except OSError:
            return None

    # -- the picker ----------------------------------------------------------------------
    def action_refresh(self) -> None:
        """List the checkpoint files again and read the new ones."""
        current = Path(self.app.checkpoint)
        keep = self.shown or current
        self.files = checkpoint_files(current)
        table = self.picker
        table.clear()
        for path in self.files:
            table.add_row(*self._cells(path), key=str(path))
        unread = [p for p in self.files if self.card(p) is None]
        # The current checkpoint first: its card and curves are what the user came for.
        unread.sort(key=lambda p: p.resolve() != current.resolve())
        self._request += 1
        if unread:
            self._read(self._request, unread)
        rows = [p.resolve() for p in self.files]
        if keep.resolve() in rows:
            table.move_cursor(row=rows.index(keep.resolve()), animate=False)
        if self.files:
            self._show(self.files[table.cursor_row])
        else:
            self.chart.clear()
            self.query_one("#tv-card", Static).update(
                "No checkpoint files found. Train one (F6), or open one with ^P → Open checkpoint.")

    def _cells(self, path: Path) -> list[Text | str]:
        current = path.resolve() == Path(self.app.checkpoint).resolve()
        mark = Text("●", style="bold") if current else ""
        card = self.card(path)
        folder = str(path.parent).replace(str(Path.home()), "~", 1)
        if card is None:
            error = self.errors.get(str(path.resolve()))
            status = Text("unreadable" if error else "reading…", style="italic dim")
            return [mark, path.name, status, "", "", "", folder]
        # The val loss of the weights in the file: a resume file's is its last evaluation's
        # (the run's best is the best file's), labelled so.
        loss = card.val_loss
        val = Text(f"{loss:.4f}" if loss is not None else "—", justify="right")
        bits = Text(f"{loss / LN2:.4f}" if loss is not None else "—", justify="right")
        if card.resumable:
            val.append(" last eval" if loss is not None else " not evaluated", style="dim")
        return [mark, path.name, val, bits, Text(f"{card.step:,}", justify="right"),
                f"{card.n_layers}×{card.n_embd}", folder]

    @work(thread=True, exclusive=True, group="training-view", exit_on_error=False)
    def _read(self, request: int, paths: list[Path]) -> None:
        """Read each file's card, posting each as soon as it is read."""
        from core.errors import CharLSTMError

        for path in paths:
            try:
                card = ModelCard.read(path)
            except CharLSTMError as e:
                self.post_message(CardRead(request, path, None, str(e)))
            except Exception as e:  # noqa: BLE001  (an odd file is one line in the table, not a crash)
                self.post_message(CardRead(request, path, None, f"{type(e).__name__}: {e}"))
            else:
                self.post_message(CardRead(request, path, card))

    @on(CardRead)
    def _card_read(self, event: CardRead) -> None:
        path = event.path
        if event.card is not None:
            try:
                self.cards[file_key(path)] = event.card
            except OSError:
                return  # gone since
        else:
            self.errors[str(path.resolve())] = event.error or "unreadable"
        if event.request != self._request or path not in self.files:
            return
        for (key, _), value in zip(COLUMNS, self._cells(path)):
            self.picker.update_cell(str(path), key, value, update_width=True)
        if self.shown is not None and self.shown.resolve() == path.resolve():
            self._show(path)

    @on(DataTable.RowHighlighted, "#tv-picker")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show(Path(event.row_key.value))

    @on(DataTable.RowSelected, "#tv-picker")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._load(Path(event.row_key.value))

    def action_load(self) -> None:
        if self.files:
            self._load(self.files[self.picker.cursor_row])

    def _load(self, path: Path) -> None:
        if path.resolve() == Path(self.app.checkpoint).resolve() and self.app.main.model is not None:
            self.notify(f"{path.name} is the model in use.")
            return
        error = self.errors.get(str(path.resolve()))
        if error and self.card(path) is None:
            self.notify(error, title="Cannot load", severity="error")
            return
        self.app.explicit = True  # the user chose it: a failure names it, not the bundled model
        self.app.open_checkpoint(path)
        self.notify(f"Loading {path.name}…", title="Model")

    def _model_changed(self, model: "LoadedModel") -> None:
        for path in self.files:
            self.picker.update_cell(str(path), "mark", self._cells(path)[0])

    # -- the chart and the card ----------------------------------------------------------
    def _show(self, path: Path) -> None:
        self.shown = path
        card = self.card(path)
        box = self.query_one("#tv-card", Static)
        self.chart.show_border((f"Loss · {path.name}", "Loss"))
        if card is None:
            error = self.errors.get(str(path.resolve()))
            self.chart.clear()
            box.update(Text(f"Cannot read {path}: {error}" if error else f"Reading {path.name}…"))
            return
        self.chart.set_history(card.history)
        n = len(card.history)
        evals = f"{n} evaluation{'s' * (n != 1)}" if n else "no evaluations"
        self.chart.show_border((f"Loss · {path.name}", "Loss"),
                               (f"{evals} · from {card.history_source}", evals) if n else (evals,))
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for label, value in card.rows():
            table.add_row(label, value)
        box.update(table)

    def action_back(self) -> None:
        self.app.pop_screen()
