"""The main screen: output pane, prompt, settings panel, status line and footer.

Flow of a key press: the prompt posts Submitted -> an action here queues the context
edits on the :class:`~charlstm_tui.bridge.Generator` and starts a thread worker -> the
worker streams characters into the bridge's buffer -> a timer drains the buffer into
the output pane once per frame. Widgets never call ``core``; ``core`` never knows about
widgets.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.notifications import Notification
from textual.reactive import var
from textual.screen import Screen
from textual import events
from textual.widgets import Static, TextArea
from textual.worker import get_current_worker

from ..adaptation import AdaptResult, AdaptSummary
from ..bridge import Generator, LoadedModel, Run, StreamBuffer, error_text
from ..messages import Adapted, GenerationEnded, GhostReady, Inspected
from ..settings import History, Settings, save_settings
from ..widgets.explore_view import ExplorerView
from ..widgets.inspector import InspectorPanel
from ..widgets.keybar import KeyBar
from ..widgets.output import MODEL, PROMPT, USER
from ..widgets.prompt import PromptArea
from ..widgets.settings_panel import SettingsPanel
from ..widgets.status import StatusBar
from .explore import Explorer
from .streaming import FrameFlusher

if TYPE_CHECKING:
    from ..app import CharLSTMApp

HINT = """Type a prompt below and press Enter:
the model continues it, one character at a time.

Enter generate · Esc stop · ^N continue · ^R again · ^L clear
F2 settings · F3/F4 temperature · F5 heat-map · F8 inspect
F6 train a model · F7 temperature sweep · F9 score a text · F10 training curves
F1 help · ^P every command"""

NARROW = 100  # columns: below this the settings panel folds away (F2 shows it over the output)
SHORT = 16  # rows: below this the output and the prompt lose their borders
PROMPT_HELP = ("Enter generate · ^J newline · ↑↓ history", "^J newline · ↑↓ history")


def clipboard_method() -> str:
    """"osc52" where the terminal is known to take OSC 52 clipboard writes, else "file".

    Terminals cannot be asked whether they accept OSC 52, so this goes by what they
    are: ``CHARLSTM_CLIPBOARD=osc52|file`` overrides the guess."""
    forced = os.environ.get("CHARLSTM_CLIPBOARD", "").lower()
    if forced in ("osc52", "file"):
        return forced
    term = os.environ.get("TERM", "").lower()
    program = os.environ.get("TERM_PROGRAM", "").lower()
    if os.environ.get("TMUX") or os.environ.get("WT_SESSION") or os.environ.get("KITTY_WINDOW_ID"):
        return "osc52"
    if program in ("iterm.app", "wezterm", "ghostty", "vscode", "tabby", "rio", "warpterminal"):
        return "osc52"
    if any(name in term for name in ("kitty", "alacritty", "foot", "wezterm", "ghostty", "contour")):
        return "osc52"
    return "file"


def tmux_clipboard() -> str | None:
    """tmux's ``set-clipboard`` option ("on", "external", "off"), or None if unknown.
    Only "on" passes an application's OSC 52 write on to the terminal."""
    import subprocess

    try:
        out = subprocess.run(["tmux", "show-options", "-gv", "set-clipboard"], capture_output=True, text=True,
                             timeout=1)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


class MainScreen(FrameFlusher, Screen):
    """Prompt, stream, settings; owns the generation worker, the frame flush and the
    :class:`~charlstm_tui.screens.explore.Explorer` (heat-map, inspector, fork, ghost
    text), whose keys it binds and whose messages it hands on."""

    app: "CharLSTMApp"

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "continue", "Continue"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+o", "copy_output", "Copy the last output"),
        Binding("f2", "focus_settings", "Settings", show=False),  # named in the panel's title
        Binding("f3", "temperature(-1)", "Temperature down", show=False),
        Binding("f4", "temperature(1)", "Temperature up", show=False),
        Binding("f5", "toggle_heatmap", "Heat-map"),
        Binding("f8", "inspect", "Inspect"),
    ]

    #: What the user controls: the one copy. Every change goes through :meth:`change`
    #: (or a key that steps a control); :meth:`watch_settings` shows, saves and pushes it.
    settings: var[Settings] = var(Settings, init=False)

    def __init__(self, settings: Settings, history: History) -> None:
        super().__init__()
        self.set_reactive(MainScreen.settings, settings)
        self.generator = Generator(settings, on_adapted=lambda result: self.post_message(Adapted(result)))
        self.history = history
        self.model: LoadedModel | None = None
        self.run: Run | None = None  # the run on screen (streaming or last finished)
        self.loading_model = True  # a model is on its way (the app starts by loading one)
        self._pending: Callable[[], None] | None = None  # an action asked for while the model loads
        # Where the model's context starts in the transcript: from there on, transcript
        # position p is session position p - context_start (see session_position).
        self.context_start = 0
        self.explorer = Explorer(self)
        self._told_seed: int | None = None  # the fixed seed Ctrl+R last said repeats a run
        self.adapted: AdaptSummary | None = None  # the model's adaptation, as the last read or reset left it
        self._generated: Run | None = None  # the run on screen before an "adapt" run took its place
        self._setting_notice: Notification | None = None  # the notice a key's setting change put up last

    @property
    def generating(self) -> bool:
        """A run is streaming."""
        return self.run is not None and not self.run.finished

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield ExplorerView(HINT, id="output")
                yield Static(id="heat-legend")
                yield PromptArea(self.history, id="prompt")
            yield SettingsPanel(self.settings, id="settings")
            yield InspectorPanel(id="inspector")
        yield StatusBar(id="status")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        prompt = self.prompt
        prompt.border_title = "Prompt"
        prompt.show_hints(*PROMPT_HELP)
        self.panel.can_focus_children = False  # reached with F2, not Tab
        self.output.border_title = "Output"
        prompt.focus()
        self._start_ticker()
        self.explorer.mounted()
        if self.model is None:  # the first frame shows that the model is on its way
            self.output.loading = True
            self.status.show_run("loading", 0, None)

    @property
    def output(self) -> ExplorerView:
        return self.query_one("#output", ExplorerView)

    @property
    def inspector(self) -> InspectorPanel:
        return self.query_one("#inspector", InspectorPanel)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one("#prompt", PromptArea)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def panel(self) -> SettingsPanel:
        return self.query_one("#settings", SettingsPanel)

    # -- the model -----------------------------------------------------------------------
    def model_loading(self, path: Path) -> None:
        """Show the loading state (called by the app as it starts a load)."""
        self.loading_model = True
        self.output.loading = True
        self.status.show_model(f"loading {path.name}…")
        self.status.show_run("loading", 0, None)

    def set_model(self, model: LoadedModel) -> None:
        """Use a freshly loaded model; the transcript stays, the context starts over."""
        self._stop_current()
        switched = self.model is not None
        self.model, self.loading_model = model, False
        self.generator.set_model(model)
        self._show_adapted(None)  # a model starts from its trained weights
        self.context_start = self.output.transcript.end  # a new model reads from here on
        self.output.loading = False
        self.status.show_model(model.info.summary())
        self.status.show_run("ready", 0, None)
        self.explorer.model_loaded(model)
        if switched:
            self.output.add_rule(f"model {model.info.name}")
            self.notify(f"Loaded {model.info.path}", title="Model")
        if self._pending is not None:
            action, self._pending = self._pending, None
            action()

    def model_failed(self) -> None:
        """Loading failed: leave the loading state (the app shows what went wrong)."""
        self.loading_model = False
        self._pending = None
        self.output.loading = False
        if self.model is not None:
            self.status.show_model(self.model.info.summary())
        else:
            self.status.show_model("no model loaded · Enter opens one")
        self._show_status()

    def _need_model(self, action: Callable[[], None]) -> bool:
        """True if the model is there; otherwise run ``action`` once it is."""
        if self.model is not None:
            return True
        if not self.loading_model:
            self.notify("No model is loaded: open a checkpoint, or use the bundled model.", severity="warning")
            self.app.action_open_checkpoint()
            return False
        self._pending = action
        self.notify("The model is still loading; this will run as soon as it is ready.")
        return False

    # -- actions ---------------------------------------------------------------------------
    @on(PromptArea.Submitted)
    def _submitted(self, event: PromptArea.Submitted) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        """Start a new run from the prompt (fresh state). An empty prompt continues."""
        if not self._need_model(self.action_generate):
            return
        assert self.model is not None
        text = self.prompt.text
        if not text and not self.output.transcript.is_empty:
            self.action_continue()
            return
        kept = self._take_prompt(text)
        self._stop_current()
        out = self.output
        out.add_rule(self._rule_label())
        self.context_start = out.transcript.end
        self.explorer.reset()
        out.append(kept, PROMPT)
        run = Run("new", out_start=out.transcript.end, headed=True)
        self.generator.queue(("reset",), *self._adapt_ops(run, kept, on=False), ("feed", kept), ("mark", run))
        self.start(run)

    def action_continue(self) -> None:
        """Extend the text from the model's current state, after appending what the
        user typed into the prompt (if anything)."""
        if not self._need_model(self.action_continue):
            return
        kept = self._take_prompt(self.prompt.text)
        self._stop_current()
        out = self.output
        if out.transcript.is_empty:
            out.add_rule(self._rule_label())
            kind = PROMPT
        else:
            kind = USER
            before = out.transcript.text(out.transcript.end - 1) if out.transcript.end > out.transcript.start else ""
            if kept and before and not before.isspace() and not kept[0].isspace():
                kept = " " + kept  # typed text starts a word of its own, not the end of the model's
        out.append(kept, kind)
        run = Run("continue", out_start=out.transcript.end)
        self.generator.queue(*self._adapt_ops(run, kept, on=True), ("feed", kept), ("mark", run))
        self.start(run)

    def _adapt_ops(self, run: Run, text: str, on: bool) -> list[tuple]:
        """With Adapt on, the edit that has the adapter read what the user typed or pasted,
        before the model reads it and goes on (``on``: continuing the context)."""
        if not (self.settings.adapt and text):
            return []
        run.reading = (0, len(text))  # the status line says so from the first frame
        return [("adapt", run, text, "prompt", "the prompt", on, self.settings.adapt_rate)]

    def action_regenerate(self) -> None:
        """Sample the last run again from where it started (same prompt, same state)."""
        if not self._need_model(self.action_regenerate):
            return
        last = self.last_generated
        if last is None:
            self.notify("Nothing to regenerate yet: type a prompt and press Enter.", severity="warning")
            return
        if self.settings.seed is not None and self.settings.seed != self._told_seed:
            self._told_seed = self.settings.seed  # said once per seed: the next Ctrl+R knows
            self.notify(f"The seed is fixed ({self.settings.seed}), so this run repeats the last one exactly. "
                        "Blank the seed (F2) for a new sample.", title="Regenerate")
        self._stop_current()
        out = self.output
        out.truncate(last.out_start)
        self.explorer.branches.drop_from(last.out_start)
        run = Run("regenerate", out_start=last.out_start, headed=last.headed)
        label = self._rule_label()  # the settings this run samples with, above its text
        if out.rule_label(last.out_start) != label:
            if run.headed:
                out.relabel(last.out_start, label)
            else:  # a continuation under another run's rule: a rule of its own
                out.add_rule(label)
                run.headed = True
        self.generator.queue(("rewind", last), ("mark", run))
        self.start(run)

    def action_stop(self) -> None:
        """Stop at once: what was sampled before the key is shown, nothing after."""
        if self.run is None or self.run.finished:
            return
        self.interrupt()

    def interrupt(self) -> None:
        """Stop the run streaming, keeping what it showed."""
        self._stop_current()
        self._show_status()

    def forget_run(self) -> None:
        """The run on screen is gone (another branch shows): nothing to regenerate or copy."""
        self.run = None
        self._show_status()

    def action_clear(self) -> None:
        """Start over: empty output, empty context."""
        self._stop_current()
        self.output.clear()
        self.context_start = self.output.transcript.end
        self.explorer.reset()
        self.run = None
        if self.model is not None:
            self.generator.queue(("reset",))
        self._show_status()  # and the footer: Enter generate, no longer Esc stop
        if self.prompt.text:
            self.notify("Cleared the output and the model's context; the prompt is kept.", title="Clear")

    def action_save(self) -> None:
        """Ask for a file name and write the transcript there."""
        from .save import SaveScreen

        stamp = time.strftime("%Y%m%d-%H%M%S")
        default = Path.cwd() / f"charlstm-transcript-{stamp}.txt"
        text = self.output.transcript.plain()

        def done(path: Path | None) -> None:
            if path is not None:
                self.notify(f"Saved the transcript ({len(text):,} characters) to {path}", title="Saved")

        self.app.push_screen(SaveScreen(default, text), done)

    def action_copy_output(self) -> None:
        """Copy the last run's output: sent to the terminal's clipboard (OSC 52), and
        always saved to a file too, since no terminal says whether it took the text."""
        text = self.last_output()
        if not text:
            self.notify("Nothing to copy yet: generate something first.", severity="warning")
            return
        self.app.copy_to_clipboard(text)  # harmless where unsupported
        self._save_output(text)

    @work(thread=True, group="copy", exit_on_error=False)
    def _save_output(self, text: str) -> None:
        """The worker: write the copied text to the data folder's last-output.txt (a file
        of ours: replaced, but never through a link or into a FIFO), then say where."""
        from core.errors import CharLSTMError
        from core.files import atomic_write, check_output
        from core.paths import data_dir

        n = f"{len(text):,} characters"
        sent = clipboard_method() != "file"
        path = data_dir() / "last-output.txt"
        try:
            check_output(path, "the copy's file", error=CharLSTMError)
            with atomic_write(path, "the copy's file", error=CharLSTMError) as f:
                f.write(text.encode("utf-8"))
        except CharLSTMError as e:
            what = f"Sent {n} to the terminal's clipboard (OSC 52), but could not save them: " if sent else \
                "Could not save the output: "
            self.app.call_from_thread(self.notify, f"{what}{e}", title="Copy", severity="error", timeout=10)
            return
        if not sent:
            message = f"Saved the output to {path} ({n}): this terminal may not accept clipboard writes (OSC 52)."
        else:
            why = ""
            if os.environ.get("TMUX") and tmux_clipboard() != "on":
                why = " tmux passes it on only with 'set -g set-clipboard on'."
            message = (f"Sent {n} to the terminal's clipboard (OSC 52); the terminal may ignore it.{why} "
                       f"It is also saved in {path}")
        self.app.call_from_thread(self.notify, message, title="Copy")

    def session_position(self, pos: int) -> int | None:
        """The model session's position for transcript position ``pos`` (None when that
        text is not in the current context). For the explorer: inspect, fork, rewind."""
        if self.model is None or pos < self.context_start:
            return None
        p = pos - self.context_start
        session = self.model.session
        return p if session.offset <= p <= len(session) else None

    def last_output(self) -> str:
        """The text the last run generated."""
        run = self.last_generated
        if run is None:
            return ""
        t = self.output.transcript
        return t.text(max(run.out_start, t.start), t.end)

    @property
    def last_generated(self) -> Run | None:
        """The last run that generated text (the run on screen, unless the adapter reads
        a file)."""
        return self._generated if self.run is not None and self.run.kind == "adapt" else self.run

    # -- Adapt ---------------------------------------------------------------------------
    def action_adapt_file(self) -> None:
        """Ask for a text file, read it into the model (Adapt), then generate in its style."""
        if not self._need_model(self.action_adapt_file):
            return
        from .adapt_file import AdaptFileScreen

        self.app.push_screen(AdaptFileScreen(), self.adapt_to)

    def adapt_to(self, chosen: "tuple[Path, str] | None") -> None:
        """Read a file's text into the model: a run of its own, with its progress in the
        status line; Esc stops it (what was read is kept)."""
        if chosen is None or self.model is None:
            return
        path, text = chosen
        kept, dropped = self.model.clean(text)
        if not kept:
            self.notify(f"{path.name} has no character the model knows; pick another text.", title="Adapt",
                        severity="error")
            return
        self.accept_prompt("", dropped)
        self._stop_current()
        if self.run is not None and self.run.kind != "adapt":
            self._generated = self.run
        run = Run("adapt", reading=(0, len(kept)))
        self.generator.queue(("adapt", run, kept, "file", path.name, False, self.settings.adapt_rate))
        self.notify(f"Reading {path.name} ({len(kept):,} characters) into the model. Esc stops; what it read "
                    "is kept.", title="Adapt")
        self.start(run)

    def action_reset_adaptation(self) -> None:
        """Back to the trained weights: the model forgets all it adapted to."""
        reading = self.run is not None and self.run.kind == "adapt" and not self.run.finished
        if self.model is None or (self.adapted is None and not reading):
            self.notify("The model is not adapted: it has its trained weights.", title="Adapt")
            return
        if self.generating and not reading:
            self.notify("Stopped the run: a run samples with the weights it started with.", title="Adapt")
        self._stop_current()
        self._show_status()
        self._reset_adaptation()

    @work(thread=True, exclusive=True, group="adapt-reset", exit_on_error=False)
    def _reset_adaptation(self) -> None:
        self.generator.reset_adaptation(lambda: get_current_worker().is_cancelled)

    @on(Adapted)
    def _adapted(self, event: Adapted) -> None:
        result: AdaptResult = event.result
        if self.model is None or result.owner is not self.model.adaptation:
            return  # a model replaced since: what its adapter did is gone with it
        if result.kept:
            self._show_adapted(result.summary)
        if result.error:
            self.notify(f"Could not adapt to {result.what}: {result.error}", title="Adapt", severity="error",
                        timeout=10)
        elif result.kind == "reset":
            self.notify("The model has its trained weights again.", title="Adapt")
        elif result.kind == "file":
            gain = result.summary.forms()[0] if result.summary else "nothing learned"
            if result.stopped:
                self.notify(f"Stopped after {result.read:,} of {result.total:,} characters of {result.what}; "
                            f"what was read is kept ({gain}).", title="Adapt")
            else:
                self.notify(f"Read {result.what}: the model is {gain}. Type a prompt and press Enter (or just "
                            "Enter) to generate in its style.", title="Adapt")

    def _show_adapted(self, summary: AdaptSummary | None) -> None:
        """Show whether the model is adapted: the status line, the footer's reset key."""
        changed = (summary is None) != (self.adapted is None)
        self.adapted = summary
        self.status.show_adapt(summary.forms() if summary is not None else ())
        self.explorer.weights_changed()
        if changed:
            self.refresh_bindings()

    def action_focus_settings(self) -> None:
        """F2: into the settings panel (shown over the output on a narrow terminal), or
        back out of it."""
        panel = self.panel
        if panel.has_focus_within:
            self.prompt.focus()
            return
        panel.can_focus_children = True
        self.add_class("-settings-open")
        self._say_setting(None)  # the panel shows the values now
        panel.input_for("temperature").focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # Focus left the settings panel (Esc, Enter, F2, a click): it folds away again.
        panel = self.panel
        if self.has_class("-settings-open") and panel not in event.widget.ancestors_with_self:
            self.remove_class("-settings-open")
            panel.can_focus_children = False

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        self.set_class(width < NARROW, "-narrow")
        self.set_class(height < SHORT, "-short")

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first: it shows as many as fit."""
        if self.panel.has_focus_within:
            return [("done", "back"), ("step(1)", "more"), ("step(-1)", "less"), ("step(10)", "×10"),
                    ("help", "help")]
        if self.explorer.inspecting:
            return [("leave_inspect", "stop" if self.generating else "leave"), ("pick(0)", "fork with #1"),
                    ("resample", "resample"), ("branch(-1)", "prev branch"), ("branch(1)", "next branch"),
                    ("help", "help")]
        first = [("stop", "stop")] if self.generating else [("submit", "generate")]
        if self.adapted is not None:
            first.append(("reset_adaptation", "unadapt"))
        return first + [
            ("help", "help"), ("focus_settings", "settings"), ("train", "train"), ("sweep", "sweep"),
            ("score", "score"), ("training_view", "curves"), ("toggle_heatmap", "heat-map"),
            ("inspect", "inspect"), ("continue", "continue"), ("regenerate", "again"), ("save", "save"),
            ("copy_output", "copy"), ("command_palette", "commands")]

    def action_temperature(self, n: int) -> None:
        self.step("temperature", n)

    def action_toggle_mode(self) -> None:
        self.step("mode", 1)

    def action_focus_prompt(self) -> None:
        self.prompt.focus()

    # -- the explorer's keys and messages ------------------------------------------------------
    def action_toggle_heatmap(self) -> None:
        """Colour generated text by the probability each character had (and back)."""
        self.change(heatmap=not self.settings.heatmap)

    def action_toggle_ghost(self) -> None:
        """Show (or stop showing) the prompt's likely continuation while typing."""
        self.change(ghost=not self.settings.ghost)
        self.notify(f"Ghost text {'on' if self.settings.ghost else 'off'}.")

    def action_inspect(self) -> None:
        """Enter inspect mode on the last character (F8 again leaves it)."""
        self.explorer.toggle_inspect()

    def action_leave_inspect(self) -> None:
        """Esc in inspect mode: stop a run if one streams, else leave inspect mode."""
        if self.generating:
            self.action_stop()
        else:
            self.explorer.leave()

    def action_pick(self, i: int) -> None:
        """Fork at the cursor with candidate ``i`` of the inspector (0-based)."""
        self.explorer.pick(i)

    def action_resample(self) -> None:
        """Fork at the cursor: sample that character again and go on from there."""
        self.explorer.resample()

    def action_branch(self, n: int) -> None:
        """Show the previous (-1) or next (+1) branch of the fork at the cursor."""
        self.explorer.branch(n)

    @on(ExplorerView.CursorMoved)
    def _cursor_moved(self, event: ExplorerView.CursorMoved) -> None:
        self.explorer.cursor_moved(event.pos)

    @on(Inspected)
    def _inspected(self, event: Inspected) -> None:
        self.explorer.inspected(event)

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self.explorer.update_ghost()

    @on(TextArea.SelectionChanged, "#prompt")
    def _prompt_cursor(self) -> None:
        self.explorer.prompt_cursor_moved()

    @on(GhostReady)
    def _ghost_ready(self, event: GhostReady) -> None:
        self.explorer.ghost_ready(event)

    # -- settings --------------------------------------------------------------------------
    def change(self, **values: object) -> None:
        """Set some settings (a typed value, a toggle, the theme)."""
        self.settings = self.settings.with_(**values)

    def step(self, name: str, n: int) -> None:
        """Step control ``name`` by ``n`` key presses, from its value now: a burst of
        presses counts every one."""
        from ..settings import CONTROL

        option, old = CONTROL[name], getattr(self.settings, name)
        self.change(**{name: option.stepped(old, n)})
        if self.panel.display:
            self._say_setting(None)  # the panel shows it: an older notice would contradict it
            return
        # Folded away (a narrow terminal) or in the inspector's place: say it.
        new = getattr(self.settings, name)
        limit = "" if new != old or not n else " (highest)" if n > 0 else " (lowest)"
        self._say_setting(f"{option.label} {option.show(new)}{limit}")

    def _say_setting(self, text: str | None) -> None:
        """Say a setting's new value where the settings panel does not show it (None: take
        the notice down). One notice, which the next key's replaces, so a burst of F4
        leaves the value it ended at rather than a stack of toasts over the output."""
        app, old = self.app, self._setting_notice
        if old is None and text is None:
            return
        if old is not None:
            app._unnotify(old, refresh=False)
        self._setting_notice = None if text is None else Notification(text, title="Settings (F2)", timeout=3)
        if self._setting_notice is not None:
            # Added at once, not posted (as App.notify does): a notice still in the queue
            # would miss the next key's removal and stay.
            app._notifications.add(self._setting_notice)
        app._refresh_notifications()

    def watch_settings(self, old: Settings, new: Settings) -> None:
        # Pushed once, to whoever samples: the run streaming takes temperature, top-k/p,
        # delay and length at its next character; mode and seed apply from the next run.
        self.generator.apply(new)
        self.panel.show(old, new)
        self.explorer.settings_changed(old, new)
        self.persist()

    @on(SettingsPanel.Changed)
    def _typed(self, event: SettingsPanel.Changed) -> None:
        with self.panel.typed(event.name):
            self.change(**{event.name: event.value})

    @on(SettingsPanel.Stepped)
    def _stepped(self, event: SettingsPanel.Stepped) -> None:
        self.step(event.name, event.n)

    @on(SettingsPanel.Done)
    def _panel_done(self) -> None:
        self.prompt.focus()

    def persist(self) -> None:
        """Save the settings; a read-only data dir is reported, not fatal."""
        try:
            save_settings(self.settings)
        except OSError as e:
            self.notify(f"Could not save settings: {e.strerror or e}", severity="warning")

    # -- running -----------------------------------------------------------------------------
    def _take_prompt(self, text: str) -> str:
        """Clean the prompt for the model, say what was dropped, remember it, clear the box."""
        assert self.model is not None
        kept, dropped = self.model.clean(text)
        self.accept_prompt(text, dropped)
        self.prompt.clear_prompt()
        return kept

    def accept_prompt(self, text: str, dropped: str) -> None:
        """What every screen does with a prompt it runs: name the characters the model
        dropped, and add the prompt to the shared history."""
        if dropped:
            from core.vocab import describe_chars

            self.app.notify(f"Dropped {len(dropped)} character(s) the model does not know: {describe_chars(dropped)}",
                            title="Unknown characters", severity="warning")
        if text:
            try:
                self.history.add(text)
            except OSError as e:
                self.app.notify(f"Could not save the prompt history: {e.strerror or e}", severity="warning")

    def _rule_label(self) -> str:
        s = self.settings
        name = self.model.info.name if self.model else ""
        seed = f" · seed {s.seed}" if s.seed is not None else ""
        adapt = " · adapt on" if s.adapt else f" · adapted on {self.adapted.chars:,} chars" if self.adapted else ""
        return f"{name} · T {s.temperature:.2f} · {s.mode}{seed}{adapt}"

    def start(self, run: Run) -> None:
        """Stream ``run`` (its context edits are queued on the generator)."""
        self.run = run
        self.generator.buffer.start(run)
        self._show_status()
        assert self._ticker is not None
        self._ticker.resume()
        self._generate(run)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, run: Run) -> None:
        """The worker: everything that touches torch happens here, off the UI thread."""
        worker = get_current_worker()
        try:
            reason = self.generator.work(run, lambda: worker.is_cancelled)
            error = None
        except Exception as e:  # noqa: BLE001  (shown as a notice; the app keeps running)
            reason, error = "error", error_text(e)
        self.post_message(GenerationEnded(run, reason, error))

    @property
    def stream_buffer(self) -> StreamBuffer:
        return self.generator.buffer

    def _show(self, run: Run, text: str, probs: list[float]) -> None:
        if not text:
            return
        run.last_at = time.perf_counter()
        run.count += len(text)
        self.output.append(text, MODEL, probs)

    def _show_status(self) -> None:
        run = self.run
        self._footer_follows_run()  # Esc stop / Enter generate lead the footer
        if run is None:
            state = "ready" if self.model else "loading" if self.loading_model else "no model"
            self.status.show_run(state, 0, None)
            return
        if run.reading is not None and not run.count and not run.finished:
            done, total = run.reading
            elapsed = time.perf_counter() - (run.reading_since or time.perf_counter())
            self.status.show_reading(done, total, done / elapsed if done and elapsed > 0.5 else None, run.note)
            return
        if run.kind == "adapt":
            self.status.show_run("ready", 0, None)
            return
        state = run.finished or "generating"
        self.status.show_run(state, run.count, run.rate())

    @on(GenerationEnded)
    def _ended(self, event: GenerationEnded) -> None:
        run = event.run
        if event.error:
            self.notify(event.error, title="Generation failed", severity="error", timeout=10)
        if run is self.run:
            if not run.finished:
                text, probs = self.generator.buffer.drain()
                self._show(run, text, probs)
                run.finished = event.reason
            if run.kind == "adapt":
                self.run = self._generated  # the run on screen before it
            self._show_status()

    def on_unmount(self) -> None:
        # Quitting mid-stream: the worker sees the stop at its next character.
        if self.run is not None:
            self.generator.stop(self.run)
        self.generator.close()
