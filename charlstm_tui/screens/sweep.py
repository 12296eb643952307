"""The temperature sweep (F7): one prompt and one seed, streamed side by side at several
temperatures, in lockstep.

All the streams come from one batched forward pass per step: they are the rows of a
batch, each with its own temperature (:func:`charlstm_tui.bridge.sweep`). The worker
pushes a whole step at a time into a :class:`~charlstm_tui.bridge.SweepBuffer`, and a
timer moves it onto the screen at most once per frame, so every column always shows the
same number of characters, and Esc stops them all between two steps.

Top-k, top-p and mode are the main screen's settings, so only the temperature differs
between columns; a blank seed picks a random one, shown in the status line.
"""

from __future__ import annotations

import random
import re
import time
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Input, Label, Static
from textual.worker import get_current_worker

from core.errors import ConfigError
from core.options import LENGTH, SEED, TEMPERATURE

from ..bridge import LoadedModel, Run, SweepBuffer, error_text, sweep, sweep_bits
from ..messages import GenerationEnded, SweepMeasured
from ..widgets.ordered_input import OrderedInput
from ..widgets.keybar import KeyBar
from ..widgets.output import MODEL, PROMPT, OutputView
from ..widgets.prompt import PromptArea
from ..widgets.status import StatusBar
from .streaming import FrameFlusher

if TYPE_CHECKING:
    from ..app import CharLSTMApp

DEFAULT_TEMPERATURES = (0.0, 0.5, 0.8, 1.2)
MAX_STREAMS = 8  # columns side by side; more would be too narrow to read


def parse_temperatures(text: str) -> list[float]:
    """'0, 0.5 0.8' -> [0.0, 0.5, 0.8]: one to :data:`MAX_STREAMS` temperatures, each in
    the temperature's range. Raises :class:`~core.errors.ConfigError` saying what to type."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        raise ConfigError("temperatures: type one or more, separated by spaces, e.g. 0 0.5 0.8 1.2")
    if len(parts) > MAX_STREAMS:
        raise ConfigError(f"temperatures: at most {MAX_STREAMS} side by side, got {len(parts)}")
    return [TEMPERATURE.parse(p) for p in parts]


def column_titles(temperature: float) -> tuple[str, ...]:
    """A column's title, longest first: "T 0.00 · greedy", "T 0.00", "0.00"."""
    short = f"T {temperature:.2f}"
    return ((f"{short} · greedy",) if temperature == 0 else ()) + (short, f"{temperature:.2f}")


def column_subtitles(bits: float | None) -> tuple[str, ...]:
    """A measured column's subtitle, longest first (its length is the status line's)."""
    if bits is None:
        return ()
    return f"{bits:.2f} bits/char (T 1)", f"{bits:.2f} bits/char", f"{bits:.2f}"


class SweepScreen(FrameFlusher, Screen):
    """Prompt and temperatures above, one column per temperature below."""

    app: "CharLSTMApp"

    BINDINGS = [
        Binding("escape", "stop_or_back", "Stop / back"),
        Binding("f7", "sweep_again", "Sweep again"),  # F7 means the sweep everywhere (the app's key calls this here)
    ]
    # Under 48 columns or 12 rows there is no room for four columns and their controls:
    # the screen says so and how to go back (app.tcss, ``-thin``/``-tiny``).
    HORIZONTAL_BREAKPOINTS = [(0, "-thin"), (48, "-roomy")]
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (12, "-roomy-v")]

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = SweepBuffer()
        self.run: Run | None = None  # the sweep on screen (streaming or last finished)
        self.temperatures: list[float] = list(DEFAULT_TEMPERATURES)  # of the columns on screen
        self.seed: int | None = None  # the seed of the sweep on screen
        self._out_start = 0  # where the generated text starts in each column's transcript
        # The model and prompt ids of the sweep on screen, until its measure starts: a run's
        # end is settled twice (its GenerationEnded and the ticker's last frame), measured once.
        self._swept: tuple[LoadedModel, list[int]] | None = None
        self.bits: list[float] = []  # per column, once measured: bits/char of its text at T=1

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        s = self.app.main.settings
        with Horizontal(id="sweep-controls"):
            yield PromptArea(self.app.main.history, id="sweep-prompt")
            with Grid(id="sweep-settings"):
                yield Label("temperatures", classes="setting-label")
                yield OrderedInput(" ".join(f"{t:g}" for t in DEFAULT_TEMPERATURES), id="sweep-temperatures", compact=True)
                yield Label("length", classes="setting-label")
                yield OrderedInput(str(s.length), id="sweep-length", compact=True)
                yield Label("seed", classes="setting-label")
                yield OrderedInput("" if s.seed is None else str(s.seed), id="sweep-seed", placeholder="random",
                            compact=True)
        yield Static("", id="sweep-error", markup=False)
        yield Static("Too small for a sweep (48×12 at least). Esc back.",
                     id="sweep-small", classes="too-small")
        yield Horizontal(*self._make_columns(self.temperatures), id="sweep-streams")
        yield StatusBar(id="sweep-status")
        yield KeyBar()

    def _make_columns(self, temperatures: list[float]) -> list[OutputView]:
        columns = []
        for t in temperatures:
            column = OutputView(f"{column_titles(t)[0]}\n\nEnter to sweep")
            column.show_border(column_titles(t))
            columns.append(column)
        return columns

    def on_mount(self) -> None:
        prompt = self.prompt
        prompt.border_title = "Prompt"
        prompt.show_hints("Enter sweep · ^J newline · ↑↓ history", "^J newline · ↑↓ history")
        self.query_one("#sweep-settings").border_title = "Sweep"
        self.query_one("#sweep-settings").border_subtitle = "same seed, one batch"
        prompt.focus()
        self._start_ticker()
        self._show_status()

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first."""
        return [("stop_or_back", "stop" if self.run is not None and not self.run.finished else "back"),
                ("sweep", "sweep again"), ("help", "help"), ("train", "train"), ("score", "score"),
                ("training_view", "curves")]

    def on_screen_resume(self) -> None:
        self._show_status()  # the model may have changed while away

    @property
    def prompt(self) -> PromptArea:
        return self.query_one("#sweep-prompt", PromptArea)

    @property
    def columns(self) -> list[OutputView]:
        return list(self.query_one("#sweep-streams").query_children(OutputView))

    @property
    def status(self) -> StatusBar:
        return self.query_one("#sweep-status", StatusBar)

    def streams(self) -> list[str]:
        """The text each column generated (the prompt left out), as shown."""
        return [c.transcript.text(max(self._out_start, c.transcript.start), c.transcript.end)
                for c in self.columns]

    # -- actions -------------------------------------------------------------------------
    @on(PromptArea.Submitted)
    async def _submitted(self) -> None:
        await self.action_sweep_again()

    @on(Input.Submitted)
    async def _input_submitted(self) -> None:
        await self.action_sweep_again()

    async def action_sweep_again(self) -> None:
        """Start a sweep of the prompt at every temperature (stopping the one running)."""
        model = self.app.main.model
        if model is None:
            self.notify("The model is still loading; try again in a moment.", severity="warning")
            return
        try:
            temperatures = parse_temperatures(self.query_one("#sweep-temperatures", Input).value)
            length = LENGTH.parse(self.query_one("#sweep-length", Input).value)
            seed = SEED.parse(self.query_one("#sweep-seed", Input).value)
        except ConfigError as e:
            self._error(str(e))
            return
        self._error("")
        text, ids = self._take_prompt(model)
        self._stop_current()
        self.app.main.action_stop()  # one stream of work at a time on a small CPU
        self.seed = seed if seed is not None else random.randrange(2**31)
        await self._set_columns(temperatures)
        for column in self.columns:
            column.clear()
            column.append(text, PROMPT)
        self._out_start = self.columns[0].transcript.end
        self._swept, self.bits = (model, ids), []
        run = Run("sweep")
        self.run = run
        self.buffer.start(run)
        settings = self.app.main.settings.with_(length=length, seed=self.seed)
        self._show_status()
        assert self._ticker is not None
        self._ticker.resume()
        self._sweep(model, ids, temperatures, settings, run)

    def action_stop_or_back(self) -> None:
        """Esc: stop a running sweep; otherwise back to the main screen."""
        if self.run is not None and not self.run.finished:
            self._stop_current()
            self._show_status()
        else:
            self.app.pop_screen()

    def _take_prompt(self, model: LoadedModel) -> tuple[str, list[int]]:
        text = self.prompt.text
        ids, dropped = model.vocab.encode_lenient(text)
        self.app.main.accept_prompt(text, dropped)
        return model.vocab.decode(ids), ids

    async def _set_columns(self, temperatures: list[float]) -> None:
        """One column per temperature: rebuilt when their number changes, retitled always."""
        if len(temperatures) != len(self.columns):
            box = self.query_one("#sweep-streams")
            await box.remove_children()
            await box.mount_all(self._make_columns(temperatures))
        for column, t in zip(self.columns, temperatures):
            column.show_border(column_titles(t))
        self.temperatures = list(temperatures)

    def _error(self, text: str) -> None:
        line = self.query_one("#sweep-error", Static)
        line.update(text)
        line.display = bool(text)

    # -- running -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def _sweep(self, model: LoadedModel, ids: list[int], temperatures: list[float], settings, run: Run) -> None:
        """The worker: every forward pass happens here, off the UI thread."""
        worker = get_current_worker()
        try:
            reason = sweep(model, ids, temperatures, settings, self.buffer, run, lambda: worker.is_cancelled)
            error = None
        except Exception as e:  # noqa: BLE001  (shown as a notice; the app keeps running)
            reason, error = "error", error_text(e)
        self.post_message(GenerationEnded(run, reason, error))

    @property
    def stream_buffer(self) -> SweepBuffer:
        return self.buffer

    def _show(self, run: Run, text: str, probs: list[float]) -> None:
        if not text or run is not self.run:
            return
        n = len(self.temperatures)
        run.last_at = time.perf_counter()
        run.count += len(text) // n
        for column, (chars, p) in zip(self.columns, SweepBuffer.split(text, probs, n)):
            column.append(chars, MODEL, p)

    def _settle(self) -> None:
        self._show_subtitles()
        run = self.run
        if run is not None and run.finished and run.count and self._swept is not None:
            swept, self._swept = self._swept, None
            self._measure(run, *swept, self.streams())

    @work(thread=True, exclusive=True, group="sweep-measure", exit_on_error=False)
    def _measure(self, run: Run, model: LoadedModel, ids: list[int], streams: list[str]) -> None:
        """Each column's bits/char at temperature 1: one measure, whatever it was sampled at."""
        try:
            self.post_message(SweepMeasured(run, sweep_bits(model, ids, streams)))
        except Exception as e:  # noqa: BLE001  (shown as a notice, never a traceback)
            self.post_message(SweepMeasured(run, [], error_text(e)))

    @on(SweepMeasured)
    def _measured(self, event: SweepMeasured) -> None:
        if event.run is not self.run:
            return
        if event.error:
            self.notify(event.error, title="Could not measure the sweep", severity="warning")
        self.bits = event.bits
        self._show_subtitles()

    def _show_subtitles(self) -> None:
        # Only once a sweep ends: a new border subtitle repaints the whole column, four
        # times over, which would cost the UI more than all the streamed text.
        for i, (column, t) in enumerate(zip(self.columns, self.temperatures)):
            column.show_border(column_titles(t), column_subtitles(self.bits[i] if i < len(self.bits) else None))

    def _show_status(self) -> None:
        model = self.app.main.model
        if model is None:
            self.status.show_model("loading the model…")
        else:
            n = len(self.temperatures)
            seed = f" · seed {self.seed}" if self.seed is not None else ""
            self.status.show_model(f"{model.info.name} · {n} streams, one batched step each{seed}")
        self._footer_follows_run()  # Esc stop, or Esc back
        run = self.run
        if run is None:
            self.status.show_run("ready", 0, None)
            return
        self.status.show_run(run.finished or "generating", run.count, run.rate())

    @on(GenerationEnded)
    def _ended(self, event: GenerationEnded) -> None:
        run = event.run
        if event.error:
            self.notify(event.error, title="Sweep failed", severity="error", timeout=10)
        if run is self.run:
            if not run.finished:
                text, probs = self.buffer.drain()
                self._show(run, text, probs)
                run.finished = event.reason
                self._settle()
            self._show_status()

    def on_unmount(self) -> None:
        if self.run is not None:
            self.buffer.stop(self.run)
