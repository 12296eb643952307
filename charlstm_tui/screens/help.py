"""The help screen (F1 or ?): what the app does and every key, read from the bindings
themselves so the table cannot drift from what the keys really do."""

from __future__ import annotations

import io
from typing import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.keybar import key_text

ABOUT = """\
A character-level LSTM continues your text one character at a time.

[b]stateful[/b] mode carries the LSTM state (h, c) from character to character: each step costs the same. \
[b]window[/b] mode is the original lab's: every character re-reads the last block of text from a zero state.
[b]temperature[/b] 0 always takes the likeliest character; higher values take more risks. \
[b]top-k[/b] and [b]top-p[/b] leave only the likeliest characters to draw from.
[b]continue[/b] (^N) goes on from the model's current state; text you typed is added first, as a word of its own.
[b]regenerate[/b] (^R) samples the last run again from where it started. A fixed [b]seed[/b] repeats a run exactly.
Settings change mid-run (temperature, top-k, top-p, delay, length) and are saved for next time. \
Below 100 columns the settings panel folds away: F2 shows it.
[b]heat-map[/b] (F5) colours each generated character by the probability it had when it was sampled.
[b]inspect[/b] (F8, or click the text): a cursor; the panel shows the 10 likeliest characters there, the entropy \
and the chosen one. Digits fork with a candidate, r resamples; \\[ and ] switch between a fork's branches.
[b]ghost text[/b]: while you type, the likely continuation shows dimmed; Tab or → accepts it to the end of the line, a line at a time.
[b]adapt[/b] (a setting, F2): the model learns from each prompt you enter and each text you score (F9) as it reads it, never from its own text, so it takes on your names and phrasing; the status line says on how many characters and how much less surprised it is (bits/char). [b]Adapt to a file…[/b] (^P) reads a whole file. ^G, anywhere, brings the trained weights back. F9 shows a text's surprise both ways, side by side.
[b]train[/b] (F6) a model on your own text; [b]sweep[/b] (F7) one prompt at several temperatures; \
[b]score[/b] (F9) a text by the model's surprise; [b]curves[/b] (F10) of the model's training.
? opens this help too, wherever it is not typed as text. ^N means Ctrl+N, as in the footer."""

EXPLORER_ACTIONS = ("toggle_heatmap", "inspect")


def keys_cell(binding: Binding) -> str:
    """A binding's keys as the footer names them ('F5', '^N', 'Esc', 'PgUp'), alternatives
    joined by ' / '; ``key_display`` where one row stands for a run of keys."""
    return binding.key_display or " / ".join(key_text(k.strip()) for k in binding.key.split(","))


def key_rows(sections: Iterable[tuple[str, Iterable[Binding]]]) -> Table:
    """A table of keys and what they do, from ``Binding`` lists."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "")
        seen: set[str] = set()
        for b in bindings:
            if not b.description or b.description in seen:
                continue
            seen.add(b.description)
            table.add_row(keys_cell(b), b.description)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """Modal help; any of Esc, F1, ? or q closes it."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        from ..widgets.prompt import PromptArea
        from ..widgets.settings_panel import SettingInput
        from ..widgets.explore_view import ExplorerView
        from .main import MainScreen
        from .score import ScoreScreen
        from .sweep import SweepScreen
        from .training_view import TrainingViewScreen
        from .train import TrainScreen

        app_keys = [b for b in self.app.BINDINGS if isinstance(b, Binding)] + [
            Binding("ctrl+p", "command_palette", "Command palette: every action, open a checkpoint, theme"),
            Binding("ctrl+q", "quit", "Quit"),
        ]
        sections = [
            ("Prompt", PromptArea.BINDINGS),
            ("Generation", [b for b in MainScreen.BINDINGS if b.action not in EXPLORER_ACTIONS]),
            ("Explorer (main screen)", [*(b for b in MainScreen.BINDINGS if b.action in EXPLORER_ACTIONS),
                                        Binding("tab", "", "Accept the ghost text in the prompt, a line "
                                        "at a time (→ too; with none, Tab moves focus)")]),
            ("Inspect mode (F8 or a click on the text)", [
                Binding("left,right", "", "Cursor: previous / next character"),
                Binding("up,down", "", "Cursor: row up / down"),
                Binding("1", "", "Fork with candidate 1…9, 0 of the inspector", key_display="1–9 / 0"),
                *[b for b in ExplorerView.BINDINGS if not b.key.isdigit() and b.key not in ("left", "right", "up", "down")]]),
            ("Settings panel (F2, Tab to move)", SettingInput.BINDINGS),
            ("Output pane (Tab to focus)", [Binding("up,down", "", "Scroll"), Binding("pageup,pagedown", "", "Page"),
                                           Binding("end", "", "Back to the end (follow)")]),
            ("Train screen (F6)", [*TrainScreen.BINDINGS, Binding("tab", "", "Complete the path (also →)"),
                                   Binding("enter", "", "Read the text file named in the path box")]),
            ("Temperature sweep (F7)", [Binding("enter", "", "Sweep the prompt at every temperature"),
                                        *SweepScreen.BINDINGS, Binding("tab", "", "To the temperatures, length, seed")]),
            ("Score a text (F9)", [*ScoreScreen.BINDINGS, Binding("enter", "", "Load the file named in the path box")]),
            ("Training view (F10)", [Binding("up,down", "", "Show a checkpoint's curves and card"),
                                     *TrainingViewScreen.BINDINGS]),
            ("App", app_keys),
        ]
        self.sections = sections
        self.keys = key_rows(sections)
        with VerticalScroll(id="help"):
            yield Static("charlstm-tui help", id="help-title")
            yield Static(ABOUT, id="help-about")
            yield Static(self.keys, id="help-keys")
            yield Static("Esc, F1 or q to close", classes="dialog-hint")

    def keys_text(self, width: int = 100) -> str:
        """The keys table as plain text (what the screen shows)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO())
        console.print(self.keys)
        return console.export_text()

    def action_close(self) -> None:
        self.dismiss(None)
