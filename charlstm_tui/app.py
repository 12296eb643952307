"""The Textual app: ``charlstm-tui`` with no subcommand.

Small on purpose: it owns the model loading (a thread worker, so the first frame
appears before torch is even imported), the screens, global keys, the command
palette and the theme. Generation lives in :mod:`charlstm_tui.screens.main`; the
link to ``core`` in :mod:`charlstm_tui.bridge`.
"""

from __future__ import annotations

import gc
import sys
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal

from .bridge import LoadedModel, checkpoint_problem, load_model, problem_of
from .messages import ModelFailed, ModelLoaded
from .screens.main import MainScreen
from .settings import History, load_settings


SWITCH_INTERVAL = 0.001  # seconds; see on_mount
EXPLORER_SCREENS = ("sweep", "score", "training-view")  # the explorer's screens, by name and id


class CharLSTMApp(App[None]):
    """Live text generation from a character-level LSTM checkpoint."""

    CSS_PATH = "app.tcss"
    TITLE = "charlstm-tui"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help, where ? is not typed as text", show=False),
        # The explorer and training screens stay out of the footer (it would overflow);
        # F1 and the command palette list them.
        Binding("f6,ctrl+t", "train", "Train a model", priority=True, show=False),  # priority: the prompt binds F6 (select line)
        Binding("f7", "sweep", "Temperature sweep", priority=True, show=False),  # priority: text areas bind F7 (select all)
        Binding("f9", "score", "Score a text", show=False),
        Binding("f10", "training_view", "Training view", show=False),
        # Everywhere the same: the model forgets what it adapted to (Adapt).
        Binding("ctrl+g", "reset_adaptation", "Unadapt: back to the trained weights", show=False),
    ]

    def __init__(self, checkpoint: Path, explicit: bool = False) -> None:
        super().__init__()
        self.checkpoint = Path(checkpoint)
        self.explicit = explicit  # named by the user (vs the bundled default): shapes the error text
        self.start_settings = load_settings()
        self.main = MainScreen(self.start_settings, History())
        self.trained: Path | None = None  # a model a training made, offered but not loaded yet
        # Published with the LoadedModel each time a checkpoint is loaded.
        self.model_changed_signal: Signal[LoadedModel] = Signal(self, "model-changed")

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        # The generation worker and the UI share the GIL. A 1 ms switch interval (not
        # 5) lets the worker take it back sooner while a screen update runs, so the
        # model keeps its speed while the screen keeps up.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self.start_settings.theme in self.available_themes:
            self.theme = self.start_settings.theme
        # Load after the first frame is on screen: importing torch takes seconds.
        self.call_after_refresh(self.open_checkpoint, self.checkpoint)

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        gc.unfreeze()  # (see on_model_loaded) collectable again, for a process that goes on (tests)

    # -- the model -------------------------------------------------------------------------
    def open_checkpoint(self, path: Path) -> None:
        """Load ``path`` in the background; the main screen shows the loading state.
        A path that is no file is said at once, without waiting for torch to import."""
        path = Path(path)
        problem = checkpoint_problem(path)
        if problem is not None:
            self.post_message(ModelFailed(path, problem))
            return
        self.main.model_loading(path)
        self._load(path)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, path: Path) -> None:
        try:
            model = load_model(path)
            self.main.generator.prepare(model)  # fork the generation process while torch is idle
        except Exception as e:  # noqa: BLE001  (anything else is still shown, never a traceback)
            self.post_message(ModelFailed(path, problem_of(e)))
        else:
            self.post_message(ModelLoaded(model))

    def generating(self) -> bool:
        """Text is streaming from the model: on the main screen, or in a sweep."""
        if self.main.generating:
            return True
        sweep = self.get_screen("sweep") if self.is_screen_installed("sweep") else None
        return sweep is not None and sweep.run is not None and not sweep.run.finished  # type: ignore[attr-defined]

    def training_done(self, path: Path) -> bool:
        """A training in the app saved ``path``: load it, unless text is streaming. The model
        is never taken away mid-run: then it is offered (the status line, F6 → Load) until
        the user loads it. Returns whether it is loading now."""
        if not self.generating():
            self.trained = path
            self.load_trained()
            return True
        self.trained = path
        self.main.status.show_training("new model ready · F6 to load")
        self.notify(f"{path.name} is ready. Text is being generated, so the model in use stays: "
                    "load the new one from the Train screen (F6) when you want it.", title="Training done")
        self._offer(path)
        return False

    def load_trained(self) -> None:
        """Load the model the last training made (offered while a run was streaming)."""
        path, self.trained = self.trained, None
        self.main.status.show_training("")
        self._offer(None)
        if path is not None:
            self.notify(f"Loading {path.name}.", title="Training done")
            self.open_checkpoint(path)

    def training_job(self):  # -> charlstm_tui.screens.train.Job | None
        """The app's training run (going on, or the last one), if the Train screen has one."""
        return self.get_screen("train").job if self.is_screen_installed("train") else None  # type: ignore[attr-defined]

    def _offer(self, path: Path | None) -> None:
        if self.is_screen_installed("train"):
            self.get_screen("train").offer(path)  # type: ignore[attr-defined]

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.checkpoint = message.model.info.path
        self.main.set_model(message.model)
        self.model_changed_signal.publish(message.model)
        # Torch, the model and Textual are loaded: move every object that exists now out
        # of the garbage collector's sight. A full collection then scans only what the UI
        # makes later: ~25 ms instead of ~230 ms, a stall that held a typed key that long.
        gc.freeze()

    def on_model_failed(self, message: ModelFailed) -> None:
        self.main.model_failed()
        error = message.error
        if not self.explicit and not message.path.exists() and self.main.model is None:
            error = f"the bundled model is not installed at {message.path}"
        self._pick_checkpoint(error, message.path)  # the path that failed, to be corrected

    def _pick_checkpoint(self, error: str | None = None, start: Path | None = None) -> None:
        """The checkpoint dialog: Open, Use the bundled model, and Cancel (or Quit while no
        model is loaded). Esc only closes it. Its path box starts at ``start``, else at the
        model in use."""
        from . import BUNDLED_CHECKPOINT
        from .screens.checkpoint import CheckpointScreen

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.explicit = self.explicit or path != BUNDLED_CHECKPOINT
                self.open_checkpoint(path)

        bundled = BUNDLED_CHECKPOINT if BUNDLED_CHECKPOINT.is_file() else None
        self.push_screen(CheckpointScreen(start or self.checkpoint, error, has_model=self.main.model is not None,
                                          bundled=bundled), chosen)

    # -- actions ---------------------------------------------------------------------------
    def action_open_checkpoint(self) -> None:
        """Pick another checkpoint file and load it."""
        self._pick_checkpoint()

    def action_train(self) -> None:
        """Open the Train screen. It is installed, not just pushed, so a run goes on
        (and its curves stay) while the user is back on the main screen."""
        from .screens.train import TrainScreen

        if not self.is_screen_installed("train"):
            self.install_screen(TrainScreen(), "train")
        if self.get_screen("train") not in self.screen_stack:
            self.push_screen("train")

    def action_use_bundled(self) -> None:
        """Switch back to the bundled model."""
        from . import BUNDLED_CHECKPOINT

        if not BUNDLED_CHECKPOINT.exists():
            self.notify(f"The bundled model is not installed at {BUNDLED_CHECKPOINT}.", severity="warning")
            return
        self.open_checkpoint(BUNDLED_CHECKPOINT)

    def action_reset_adaptation(self) -> None:
        """Back to the trained weights: the model forgets all it adapted to."""
        self.main.action_reset_adaptation()

    def action_toggle_adapt(self) -> None:
        """Adapt on or off: whether the model learns from prompts and scored texts."""
        main = self.main
        main.change(adapt=not main.settings.adapt)
        if main.settings.adapt:
            self.notify("Adapt on: the model learns from each prompt you enter and each text you score (F9), "
                        "as it reads it. ^G forgets all it learned.", title="Adapt")
        else:
            kept = " What it learned stays until ^G." if main.adapted is not None else ""
            self.notify(f"Adapt off: the model learns nothing more.{kept}", title="Adapt")

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _show_view(self, name: str, make: Callable[[], Screen]) -> None:
        """Show an explorer screen. It is installed once, so it keeps its state (a
        sweep, a scored text) between visits; from another explorer screen it takes
        that one's place rather than piling up."""
        if not self.is_screen_installed(name):
            self.install_screen(make(), name)
        screen = self.get_screen(name)
        if screen in self.screen_stack:
            while self.screen is not screen:
                self.pop_screen()
        elif self.screen.id in EXPLORER_SCREENS:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    async def action_sweep(self) -> None:
        """Open the temperature sweep: one prompt at several temperatures, side by side;
        on it, sweep again (F7 means the sweep on every screen)."""
        from .screens.sweep import SweepScreen

        if isinstance(self.screen, SweepScreen):
            await self.screen.action_sweep_again()
            return
        self._show_view("sweep", lambda: SweepScreen(id="sweep"))

    def action_score(self) -> None:
        """Open the Score screen: a text coloured by the model's surprise."""
        from .screens.score import ScoreScreen

        self._show_view("score", lambda: ScoreScreen(id="score"))
        self.get_screen("score").opened()  # type: ignore[attr-defined]

    def action_training_view(self) -> None:
        """Open the training view: loss curves, model card and checkpoint picker."""
        from .screens.training_view import TrainingViewScreen

        self._show_view("training-view", lambda: TrainingViewScreen(id="training-view"))

    def watch_theme(self, theme: str) -> None:
        # The theme picked from the palette is saved with the other settings.
        if self.main.is_attached:
            self.main.change(theme=theme)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): every action, opening a checkpoint, the theme."""
        yield from super().get_system_commands(screen)
        main = self.main
        yield SystemCommand("Open checkpoint…", "Load another model file", self.action_open_checkpoint)
        yield SystemCommand("Help", "Keys and what each setting does (F1)", self.action_help)
        yield SystemCommand("Train a model…", "Train a model on your own text, then generate from it (F6)",
                            self.action_train)
        yield SystemCommand("Temperature sweep", "One prompt and seed at several temperatures, side by side (F7)",
                            self.action_sweep)
        yield SystemCommand("Score a text…", "Colour a text by the model's surprise; nats/char, bits/char (F9)",
                            self.action_score)
        yield SystemCommand("Training view", "The model's loss curves and card; pick another checkpoint (F10)",
                            self.action_training_view)
        yield SystemCommand("Use the bundled model", "Switch back to the model that ships with the app",
                            self.action_use_bundled)
        yield SystemCommand("Adapt to a file…", "The model learns a text file's style as it reads it; then generate "
                            "in that style", main.action_adapt_file)
        yield SystemCommand(f"Adapt {'off' if main.settings.adapt else 'on'}",
                            "Whether the model learns from each prompt and each text scored in F9, as it reads it",
                            self.action_toggle_adapt)
        yield SystemCommand("Unadapt (reset to the trained weights)", "Back to the trained weights: the model forgets all it adapted to (^G)",
                            self.action_reset_adaptation)
        if self.trained is not None:
            yield SystemCommand("Load the trained model", f"Load {self.trained.name}, which a training just made",
                                self.load_trained)
        if screen is not main:
            return
        commands = [
            ("Generate", "Start a new run from the prompt (Enter)", main.action_generate),
            ("Stop", "Stop generating now (Esc)", main.action_stop),
            ("Continue", "Extend the text from the model's current state, after what you typed (^N)",
             main.action_continue),
            ("Regenerate", "Sample the last run again from where it started (^R)", main.action_regenerate),
            ("Clear", "Empty the output and start a fresh context (^L)", main.action_clear),
            ("Save transcript…", "Write the whole transcript to a file (^S)", main.action_save),
            ("Copy last output", "Send the last run's text to the clipboard (OSC 52) and save it to a file (^O)",
             main.action_copy_output),
            ("Settings", "Move to the settings panel (F2)", main.action_focus_settings),
            ("Temperature up", "Raise the temperature by 0.05 (F4)", partial(main.action_temperature, 1)),
            ("Temperature down", "Lower the temperature by 0.05 (F3)", partial(main.action_temperature, -1)),
            ("Toggle mode", "Switch between stateful and window sampling", main.action_toggle_mode),
            ("Toggle heat-map", "Colour generated text by the probability each character had (F5)",
             main.action_toggle_heatmap),
            ("Inspect", "A cursor over the text: top-10 candidates, entropy; fork with 1-9, 0 or r (F8)",
             main.action_inspect),
            ("Previous branch", "Show the previous branch of the fork at the cursor ([ in inspect mode)",
             partial(main.action_branch, -1)),
            ("Next branch", "Show the next branch of the fork at the cursor (] in inspect mode)",
             partial(main.action_branch, 1)),
            ("Toggle ghost text", "Preview the prompt's likely continuation while typing (Tab accepts)",
             main.action_toggle_ghost),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def run_app(checkpoint: Path, explicit: bool = False) -> None:
    """Run the app on ``checkpoint`` (``explicit``: the user named it). Needs a terminal.

    Once the app has gone, the process ends at once: tearing down torch and the rest of
    a large interpreter took about 2 s with the terminal already given back but no prompt.
    Nothing is lost by it: settings and history are written as they change, and a
    training still running is let finish its step and save first."""
    import os

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        import click

        raise click.ClickException("the interactive app needs a terminal; in scripts use 'charlstm-tui generate'")
    app = CharLSTMApp(checkpoint, explicit=explicit)
    app.run()
    job = app.training_job()
    if job is not None and not job.ended.is_set():
        print("Finishing the training step and saving the checkpoint…", file=sys.stderr, flush=True)
        job.ended.wait()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)
