"""The Train screen (F6): train a model on your own text without leaving the app.

Before a run: pick a text file (type its path, → or Tab completes it, or choose it in
the tree), see its size, vocabulary and first lines, choose a preset and a time budget;
the recipe the run will use is shown as soon as it is known.

During a run: :func:`core.train.train` runs in a thread worker. Its events reach the
screen as messages, batched to about ten a second, and become live loss curves, tokens/s
and the ETA. F8 (twice) stops after the current step, keeping the best checkpoint so far. Esc
goes back to the main screen at any time; a run keeps going there.

After it: the best checkpoint, ``<data dir>/models/<text>-<preset>-<time>.pt``, is loaded
into the app, ready to generate. Every problem (a missing, unreadable or non-UTF-8 file,
a folder, a text too short for the block, a full disk) is one line on the screen.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, DirectoryTree, Input, Label, ProgressBar, RadioButton, RadioSet, Static
from textual.worker import get_current_worker

from ..messages import TrainingEnded, TrainingProgress, TrainTextChecked
from ..widgets.keybar import KeyBar
from ..widgets.loss_chart import LossChart
from ..widgets.ordered_input import OrderedInput
from ..widgets.status import PartsLine, human
from .checkpoint import PathSuggester

if TYPE_CHECKING:
    from core.train import TrainConfig

    from ..app import CharLSTMApp

PRESETS = {  # name -> (radio label, tooltip)
    "quick": ("quick · fits the text", "A good model of any text in about 90 s of CPU: the model and block sizes "
              "adapt to the text's length."),
    "default": ("default · 2×512, slow", "Ours, tuned for the best val loss: a 2x512 LSTM with dropout. "
                "Hours on a CPU; set a budget."),
    "lab": ("lab · the notebook's", "The original lab's recipe exactly: 1x512, batch 128 x 256, lr 3e-4, "
            "10,000 steps."),
}
DEFAULT_BUDGET = 1.55  # minutes: core.quick.QUICK.time_limit (a test keeps them equal)
UPDATE_EVERY = 0.1  # seconds: at most ~10 progress messages a second reach the UI
CONFIRM = 3.0  # seconds in which a second F5 or F8 confirms the first
PREVIEW_LINES = 12
PREVIEW_WIDTH = 200  # characters of a preview line
SHOWN_CHARS = 300  # vocabulary characters listed before "and N more"
VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}

HINT = ("Pick a text file: type its path (→ or Tab completes, Enter reads it) or choose it in the tree; "
        "then a preset and a budget, and F5 twice to start.")


# -- the text and the recipe (no Textual below this line until TrainScreen) ----------------

@dataclass(frozen=True)
class TextInfo:
    """A training text, read and described."""

    path: Path
    size: int  # bytes on disk
    mtime: float
    text: str
    vocab: str  # its distinct characters, sorted
    lines: int

    def summary(self) -> str:
        return f"{human(self.size)}B · {len(self.text):,} characters · {self.lines:,} lines"

    def preview(self) -> str:
        return "\n".join(line[:PREVIEW_WIDTH] for line in self.text[:PREVIEW_LINES * PREVIEW_WIDTH].split("\n")[:PREVIEW_LINES])


def show_chars(chars: str, limit: int = SHOWN_CHARS) -> str:
    """Characters as a user can read them: whitespace as ⏎ ␣ ⇥, other controls as escapes."""
    def one(ch: str) -> str:
        if ch in VISIBLE:
            return VISIBLE[ch]
        return ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")

    shown = "".join(one(ch) for ch in chars[:limit])
    return shown + (f" … and {len(chars) - limit:,} more" if len(chars) > limit else "")


def read_text(path: Path) -> TextInfo:
    """Read a training text, or raise :class:`core.errors.DataError` with one line."""
    from core.data import load_text
    from core.errors import DataError

    try:
        st = path.stat()
    except OSError:
        st = None  # let load_text say what is wrong
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path} is a folder: pick a text file in it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A pipe or a device would block the reader or never end.
        raise DataError(f"{path} is not a regular file (a pipe, socket or device); pick a text file")
    if st is None:
        raise DataError(f"{path} does not exist; check the path or pick a file in the tree")
    text = load_text(path)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return TextInfo(path, st.st_size, st.st_mtime, text, "".join(sorted(set(text))), lines)


@dataclass(frozen=True)
class Plan:
    """The recipe a run on a text will use, in words; ``problem`` if it cannot run."""

    config: "TrainConfig"
    note: str
    problem: str | None = None


def make_plan(info: TextInfo, preset_name: str, budget: float | None) -> Plan:
    """The preset, with the budget as its time limit; quick adapts its sizes to the text."""
    from core.data import VAL_FRACTION
    from core.quick import adapt_quick
    from core.train import preset

    config = dataclasses.replace(preset(preset_name), time_limit=budget)
    n = len(info.text)
    if preset_name == "quick":
        config, note = adapt_quick(config, n)
    else:
        note = (f"{preset_name} preset: {config.n_layers}x{config.n_embd} LSTM, block {config.block_size}, "
                f"dropout {config.dropout:g}" + (f", {budget:g} min" if budget else ""))
    if not budget:
        note += f"; no time limit: {config.max_iters:,} steps"
    config.validate()
    # Both splits need a block plus one character (the same split as core.data.TextData).
    n_train = int(n * (1 - VAL_FRACTION))
    if min(n_train, n - n_train) <= config.block_size:
        need = int((config.block_size + 1) / VAL_FRACTION) + 1
        fix = "use a longer text" + (" or the quick preset, which fits its block to the text"
                                     if preset_name != "quick" else "")
        return Plan(config, note, f"{info.path.name} has {n:,} characters: too short for the {preset_name} "
                                  f"preset's block of {config.block_size} (it needs at least {need:,}); {fix}")
    return Plan(config, note)


def parse_budget(value: str) -> float | None:
    """Minutes from the budget field; blank means no limit. ValueError with the fix."""
    value = value.strip()
    if not value:
        return None
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not minutes > 0 or minutes != minutes or minutes == float("inf"):
        raise ValueError(f"time budget {value!r}: type minutes above 0, e.g. 1.5 (blank: no limit)")
    return minutes


def shown_path(path: Path) -> str:
    """``path`` with the home folder as ``~``: shorter on a narrow screen, as exact."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def models_dir() -> Path:
    """Where models trained in the app go: ``<data dir>/models``."""
    from core.paths import data_dir

    return data_dir() / "models"


def checkpoint_path(text: Path, preset_name: str) -> Path:
    """``<models dir>/<text stem>-<preset>-<YYYYmmdd-HHMMSS>.pt``, never an existing file."""
    base = f"{text.stem}-{preset_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = models_dir() / f"{base}.pt", 2
    while out.exists():
        out, n = models_dir() / f"{base}-{n}.pt", n + 1
    return out


def training_threads() -> int:
    """Torch threads for training: all cores but one, which the UI keeps (at least one).
    ``CHARLSTM_TRAIN_THREADS`` overrides."""
    try:
        return max(1, int(os.environ["CHARLSTM_TRAIN_THREADS"]))
    except (KeyError, ValueError):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores - 1)


@dataclass(eq=False)
class Job:
    """One run started from the screen."""

    info: TextInfo
    preset: str
    budget: float | None
    out: Path
    stop: threading.Event = field(default_factory=threading.Event)  # set: end after the current step
    ended: threading.Event = field(default_factory=threading.Event)  # set by the worker as it returns


# -- widgets ----------------------------------------------------------------------------------

class PathInput(OrderedInput):
    """A path field whose completion Tab (as well as →) accepts."""

    BINDINGS = [Binding("tab", "complete", "Complete the path", show=False)]

    def action_complete(self) -> None:
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()


class TextTree(DirectoryTree):
    """Folders and files, hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]


# -- the screen ---------------------------------------------------------------------------------

class TrainScreen(Screen):
    """Pick a text, a preset and a budget; train; watch the curves; use the model."""

    app: "CharLSTMApp"

    # F5 and F8 are the heat-map and the inspector on the main screen: here one press only
    # asks for a second, so a habitual press starts or stops nothing.
    BINDINGS = [
        Binding("f5", "press_start", "Start training (F5 twice)"),
        Binding("f8", "press_stop", "Stop, keep the best (F8 twice)"),
        Binding("escape", "back", "Back to generating"),
    ]
    # Under 100 columns the text's column gets the room the tree needs; under 60 columns or
    # 16 rows a run cannot be set up: the screen says so, with the run's progress and
    # message, and how to go back (app.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-thin"), (60, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (16, "-roomy-v")]

    def __init__(self) -> None:
        super().__init__()
        self.state = "setup"  # setup -> running -> stopping -> done / failed
        self.info: TextInfo | None = None  # the text read last
        self.plan: Plan | None = None  # its recipe, for the preset and budget shown
        self.job: Job | None = None  # the run going on, or the last one
        self.out: Path | None = None  # the last checkpoint written
        self._request = 0  # the latest text check asked for...
        self._answered = 0  # ...and the latest one answered
        self._armed: tuple[str, float] | None = None  # (key, when) of a first press waiting for its second
        self._path_timer: Timer | None = None
        self._done_line = ""  # what the last run did, for the message line

    def compose(self) -> ComposeResult:
        yield Static("Too small to set up a run (60×16 at least). Esc back.",
                     id="train-small", classes="too-small")
        with Horizontal(id="train-setup"):
            with Vertical(id="train-source"):
                yield PathInput(str(Path.cwd()) + os.sep, id="train-path", placeholder="path/to/text.txt",
                                suggester=PathSuggester())
                yield TextTree(Path.cwd(), id="train-tree")
            with Vertical(id="train-about"):
                yield Static("No text read yet.", id="train-info")
                yield Static("", id="train-preview", markup=False)
            with VerticalScroll(id="train-recipe"):  # scrolls where the plan is long and the terminal short
                with RadioSet(id="train-preset"):
                    for i, (name, (label, tip)) in enumerate(PRESETS.items()):
                        button = RadioButton(label, value=i == 0, id=f"preset-{name}")
                        button.tooltip = tip
                        yield button
                with Horizontal(id="train-budget-row"):
                    yield Label("Budget (min)", id="train-budget-label")
                    yield OrderedInput(f"{DEFAULT_BUDGET:g}", id="train-budget", compact=True, restrict=r"[0-9.]*")
                yield Static("", id="train-plan")
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="train-start", variant="primary", compact=True)
                    yield Button("Stop", id="train-stop", variant="error", compact=True, disabled=True)
        yield LossChart("Loss curves appear here once training starts.", id="train-chart")
        with Horizontal(id="train-progress-row"):
            yield ProgressBar(total=100, show_eta=False, id="train-progress")
            yield PartsLine(id="train-stats")
        yield Static(HINT, id="train-message", classes="-hint", markup=False)
        with Horizontal(id="train-offer"):  # shown while a trained model waits to be loaded
            yield Button("Load", id="train-load", variant="success", compact=True)
            yield Static("the model in use stays until then", id="train-offer-note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#train-offer").display = False
        self.query_one("#train-source").border_title = "Text"
        self.query_one("#train-about").border_title = "About it"
        self.query_one("#train-recipe").border_title = "Recipe"
        self.chart.border_title = "Loss"
        self.query_one("#train-path", Input).focus()

    @property
    def chart(self) -> LossChart:
        return self.query_one("#train-chart", LossChart)

    @property
    def message(self) -> str:
        """The message line, as shown."""
        return str(self.query_one("#train-message", Static).render())

    def _say(self, text: str, kind: str = "") -> None:
        """One line under the chart: ``kind`` "error", "ok" or plain."""
        line = self.query_one("#train-message", Static)
        line.update(text)
        line.set_class(kind == "error", "-error")
        line.set_class(kind == "ok", "-ok")
        line.set_class(text == HINT, "-hint")  # about the setup: left out where it is not shown

    # -- choosing the text, preset and budget --------------------------------------------------
    @property
    def preset(self) -> str:
        pressed = self.query_one("#train-preset", RadioSet).pressed_button
        return pressed.id.removeprefix("preset-") if pressed is not None and pressed.id else "quick"

    def budget(self) -> float | None:
        """The budget field in minutes (None: no limit); ValueError names the fix."""
        return parse_budget(self.query_one("#train-budget", Input).value)

    @on(Input.Changed, "#train-path")
    def _path_typed(self, event: Input.Changed) -> None:
        # Read a file as soon as the path names one (completion, paste), a moment after
        # the last key; errors wait for Enter, so half-typed paths stay quiet.
        if self._path_timer is not None:
            self._path_timer.stop()
        path = Path(os.path.expanduser(event.value.strip()))
        if event.value.strip() and path.is_file() and (self.info is None or path != self.info.path):
            self._path_timer = self.set_timer(0.15, lambda: self.check(path))

    @on(Input.Submitted, "#train-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self._say("Type the path of a text file (Tab completes it), or pick one in the tree.", "error")
            return
        self.check(Path(os.path.expanduser(value)))

    @on(DirectoryTree.FileSelected, "#train-tree")
    def _file_picked(self, event: DirectoryTree.FileSelected) -> None:
        field = self.query_one("#train-path", Input)
        with field.prevent(Input.Changed):
            field.value = str(event.path)
        self.check(event.path)

    @on(DirectoryTree.DirectorySelected, "#train-tree")
    def _folder_picked(self, event: DirectoryTree.DirectorySelected) -> None:
        field = self.query_one("#train-path", Input)
        field.value = str(event.path) + os.sep

    @on(RadioSet.Changed, "#train-preset")
    @on(Input.Changed, "#train-budget")
    def _recipe_changed(self) -> None:
        if self.info is not None:
            self.check(self.info.path)

    def check(self, path: Path) -> None:
        """Read ``path`` (again only if it changed) and fit the recipe, off the UI thread."""
        if self.state in ("running", "stopping"):
            return
        try:
            budget = self.budget()
        except ValueError as e:
            self._say(str(e), "error")
            return
        if not path.is_absolute():
            path = Path.cwd() / path
        self._request += 1
        self.query_one("#train-plan", Static).update("checking…")
        self._check(self._request, path, self.preset, budget, self.info)

    @work(thread=True, exclusive=True, group="train-check", exit_on_error=False)
    def _check(self, request: int, path: Path, preset_name: str, budget: float | None,
               cached: TextInfo | None) -> None:
        from core.errors import CharLSTMError

        try:
            info = cached
            if info is None or info.path != path or (path.stat().st_mtime, path.stat().st_size) != (info.mtime, info.size):
                info = read_text(path)
            plan = make_plan(info, preset_name, budget)
        except CharLSTMError as e:
            self.post_message(TrainTextChecked(request, path, None, None, str(e)))
        except OSError as e:  # the file vanished between two looks
            self.post_message(TrainTextChecked(request, path, None, None, f"cannot read {path}: {e.strerror or e}"))
        else:
            self.post_message(TrainTextChecked(request, path, info, plan))

    @property
    def checking(self) -> bool:
        """A text check is on its way."""
        return self._answered != self._request

    @on(TrainTextChecked)
    def _checked(self, message: TrainTextChecked) -> None:
        if message.request != self._request or self.state in ("running", "stopping"):
            return  # an older answer, or too late to matter
        self._answered = message.request
        plan_line = self.query_one("#train-plan", Static)
        if message.error is not None:
            self.info, self.plan = None, None
            self.query_one("#train-info", Static).update("No text read yet.")
            self.query_one("#train-preview", Static).update("")
            plan_line.update("")
            self._say(message.error, "error")
            return
        info, plan = message.info, message.plan
        assert info is not None and plan is not None
        self.info, self.plan = info, plan
        self.query_one("#train-info", Static).update(Text.assemble(
            (info.path.name, "bold"), f"\n{info.summary()}\n", (f"{len(info.vocab)}", "bold"),
            " distinct characters:\n", show_chars(info.vocab)))
        self.query_one("#train-preview", Static).update(info.preview())
        plan_line.update(plan.note)
        if plan.problem:
            self._say(plan.problem, "error")
        else:
            from core.quick import SHORT_TEXT, SHORT_TEXT_ADVICE

            short = (f" At {len(info.text):,} characters it will teach a model little: {SHORT_TEXT_ADVICE}."
                     if len(info.text) < SHORT_TEXT else "")
            self._say(f"Ready: {info.path.name} with the {self.preset} preset. F5 twice (or Start) to begin.{short}")

    # -- running ------------------------------------------------------------------------------------
    def action_start(self) -> None:
        """Start training on the chosen text with the chosen preset and budget."""
        if self.state in ("running", "stopping"):
            self._say("A run is going on: F8 twice stops it.", "error")
            return
        if self.info is None:
            self._say("Pick a text file first: type its path and press Enter, or choose it in the tree.", "error")
            return
        try:
            budget = self.budget()
        except ValueError as e:
            self._say(str(e), "error")
            return
        if self.plan is not None and self.plan.problem:
            self._say(self.plan.problem, "error")
            return
        self.job = Job(self.info, self.preset, budget, checkpoint_path(self.info.path, self.preset))
        self.chart.clear()
        self.query_one("#train-progress", ProgressBar).update(progress=0)
        self.query_one("#train-stats", PartsLine).show("starting…")
        self._say(f"Training on {self.info.path.name} ({self.preset}); it will be saved as {self.job.out}")
        self._set_state("running")
        self._train(self.job)

    def action_stop(self) -> None:
        """Stop after the current step; the best checkpoint so far is kept and loaded."""
        if self.state != "running" or self.job is None:
            return
        self.job.stop.set()
        self._set_state("stopping")
        self._say("Stopping after this step; the best checkpoint so far is kept…")

    def _confirmed(self, key: str, what: str) -> bool:
        """True for the second press of ``key`` within :data:`CONFIRM` seconds of the first;
        the first says what a second would do."""
        now = time.monotonic()
        if self._armed is not None and self._armed[0] == key and now - self._armed[1] < CONFIRM:
            self._armed = None
            return True
        self._armed = (key, now)
        self._say(f"Press {key} again to {what}.")
        return False

    def action_press_start(self) -> None:
        """F5: start, on a second press (the first of a text not ready says why at once)."""
        if self.state in ("running", "stopping") or self.info is None:
            self.action_start()
        elif self._confirmed("F5", f"start training on {self.info.path.name} ({self.preset})"):
            self.action_start()

    def action_press_stop(self) -> None:
        """F8: stop after the current step, on a second press."""
        if self.state == "running" and self._confirmed("F8", "stop training (the best checkpoint so far is kept)"):
            self.action_stop()

    def action_back(self) -> None:
        if self.state in ("running", "stopping"):
            self.notify("Training goes on in the background; F6 shows it again. The model loads when it is done.",
                        title="Training")
        self.app.pop_screen()

    @on(Button.Pressed, "#train-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#train-stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    @on(Button.Pressed, "#train-load")
    def _load_pressed(self) -> None:
        self.app.load_trained()

    def offer(self, path: Path | None) -> None:
        """Show (``path``) or hide (None) the Load button for a trained model that waits."""
        button = self.query_one("#train-load", Button)
        offered = self.query_one("#train-offer").display
        self.query_one("#train-offer").display = path is not None
        if path is not None:
            button.label = f"Load {path.name}"
            if self.is_current:
                button.focus()
            return
        if self.is_current and self.focused is button:
            self.query_one("#train-path", Input).focus()
        if offered and self._done_line:
            self._say(f"{self._done_line}. Loaded into the app: Esc to generate with it.", "ok")

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first."""
        return [("press_start", "start (twice)"), ("press_stop", "stop (twice)"), ("back", "back"), ("help", "help"),
                ("sweep", "sweep"), ("score", "score"), ("training_view", "curves")]

    def on_screen_resume(self) -> None:
        if self.app.trained is not None:
            self.query_one("#train-load", Button).focus()

    def _set_state(self, state: str) -> None:
        self.state = state
        busy = state in ("running", "stopping")
        for selector in ("#train-path", "#train-tree", "#train-preset", "#train-budget"):
            self.query_one(selector).disabled = busy
        self.query_one("#train-start", Button).disabled = busy
        self.query_one("#train-stop", Button).disabled = state != "running"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Greyed out in the footer when they would do nothing.
        if action == "press_start":
            return self.state not in ("running", "stopping") or None
        if action == "press_stop":
            return self.state == "running" or None
        return True

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _train(self, job: Job) -> None:
        """The worker: everything that touches torch happens here, off the UI thread.
        Steps are batched into one message per :data:`UPDATE_EVERY` seconds;
        evaluations and the end go out at once."""
        from core.errors import CharLSTMError, DataError

        worker = get_current_worker()
        steps: list[tuple[int, float]] = []
        posted, done, error = 0.0, None, None
        try:
            import torch

            from core.data import TextData
            from core.train import train

            torch.set_num_threads(training_threads())  # this thread's; generation sets its own
            plan = make_plan(job.info, job.preset, job.budget)  # the same recipe as shown
            if plan.problem:
                raise DataError(plan.problem)
            data = TextData.from_text(job.info.text)
            config = plan.config
            if job.preset == "quick":  # sized by a speed probe of this machine, as the CLI does
                from core.quick import plan_quick

                config, _ = plan_quick(config, len(job.info.text), data.vocab.size)
            for event in train(config, data, job.out, stop=job.stop, data_name=job.info.path.stem):
                if worker.is_cancelled:  # the screen is going away (the app quits)
                    job.stop.set()
                if event.kind == "step":
                    steps.append((event.step, event.loss))
                now = time.monotonic()
                if event.kind != "step" or now - posted >= UPDATE_EVERY:
                    self.post_message(TrainingProgress(steps, event))
                    steps, posted = [], now
                if event.kind == "done":
                    done = event
        except CharLSTMError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001  (shown on the screen, never a traceback)
            error = f"training failed: {type(e).__name__}: {e}"
        finally:
            job.ended.set()
        self.post_message(TrainingEnded(job, done, error))

    @on(TrainingProgress)
    def _progress(self, message: TrainingProgress) -> None:
        from ..train_view import duration

        chart, e = self.chart, message.event
        if message.steps:
            chart.add("train", message.steps)
        if e.kind == "eval" and e.val_loss is not None:
            chart.add("val", [(e.step, e.val_loss)])
        self.query_one("#train-progress", ProgressBar).update(progress=100 * e.fraction)
        # The losses are in the chart's legend; this line says where, how long and how fast,
        # in whole parts, as many as fit.
        self.query_one("#train-stats", PartsLine).show(
            f"step {e.step:,}", f"ETA {duration(e.eta)}", f"{human(e.tokens_per_s)} tok/s",
            f"{duration(e.elapsed)} elapsed")
        self.app.main.status.show_training(f"training {100 * e.fraction:.0f}%")

    @on(TrainingEnded)
    def _ended(self, message: TrainingEnded) -> None:
        from ..train_view import done_line

        self.app.main.status.show_training("")
        if message.error is not None:
            self._set_state("failed")
            self._say(f"Training failed: {message.error}", "error")
            self.app.notify(message.error, title="Training failed", severity="error", timeout=10)
            return
        done = message.done
        self._set_state("done")
        if done is None or done.path is None:
            self._say("Stopped before the first step: nothing was saved.")
            return
        self.out = Path(done.path)
        self._done_line = done_line(done, shown_path(self.out))
        if self.app.training_done(self.out):
            self._say(f"{self._done_line}. Loaded into the app: Esc to generate with it.", "ok")
        else:
            self._say(f"{self._done_line}. Text was being generated: load it below when you want it.", "ok")

    def on_unmount(self) -> None:
        # The app is quitting mid-run: the trainer ends after its step (and saves), so
        # the worker thread does not keep the process alive.
        if self.job is not None:
            self.job.stop.set()

