"""The explorer on the main screen (issue 6): heat-map, inspector, fork and rewind, ghost text.

:class:`ExplorerScreen` is :class:`~charlstm_tui.screens.main.MainScreen`'s base: the
keys and actions that look into the model while it writes. It uses the main screen's
output pane (an :class:`~charlstm_tui.widgets.explore_view.ExplorerView`), prompt,
generator and runs.

- Heat-map (F5): the pane colours each generated character by its probability.
- Inspector (F8, or a click on the text): a cursor over the text; a worker reads the
  model's distribution there from the session's (h, c) snapshots; the panel that takes
  the settings' place shows the top 10, the entropy and the chosen character.
- Fork (digits, r): the text after the cursor is kept as a branch; the session rewinds
  to the snapshot at the cursor, takes the picked candidate (or samples afresh), and
  generation goes on. [ and ] switch between the branches of the fork at the cursor.
- Ghost text: a worker keeps the prompt's greedy continuation up to date, feeding only
  what was typed since the last keystroke (:class:`~charlstm_tui.bridge.Ghost`).
"""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING

from textual import on, work
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TextArea
from textual.worker import get_current_worker

from ..branches import BranchTree, Segment
from ..bridge import Ghost, Inspection, Run, inspect
from ..messages import GhostReady, Inspected
from ..widgets.explore_view import ExplorerView
from ..widgets.inspector import InspectorPanel
from ..widgets.output import MODEL

if TYPE_CHECKING:
    from .main import MainScreen


class ExplorerScreen(Screen):
    """Heat-map, inspector, fork/rewind and ghost text for the main screen."""

    BINDINGS = [
        Binding("f5", "toggle_heatmap", "Heat-map"),
        Binding("f8", "inspect", "Inspect"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.branches = BranchTree()
        self.ghost: Ghost | None = None
        self._inspect_request = 0
        self.inspection: tuple[int, Inspection] | None = None  # (position, what the panel shows)
        self._ghost_for: str | None = None  # the prompt text the ghost worker was last asked about

    @property
    def main(self) -> "MainScreen":
        return self  # type: ignore[return-value]  (always a MainScreen)

    @property
    def inspector(self) -> InspectorPanel:
        return self.query_one("#inspector", InspectorPanel)

    @property
    def view(self) -> ExplorerView:
        return self.query_one("#output", ExplorerView)

    @property
    def inspecting(self) -> bool:
        return self.view.cursor is not None

    def on_mount(self) -> None:
        self.inspector.border_title = "Inspector"
        self.inspector.border_subtitle = "F8/Esc leave"
        self._show_heatmap(self.main.settings.heatmap)

    # -- hooks the main screen calls ---------------------------------------------------------
    def explorer_model(self, model) -> None:
        """A model was loaded: a new ghost, no branches (the context starts over)."""
        self.ghost = Ghost(model)
        self.explorer_reset()
        self._update_ghost()

    def explorer_reset(self) -> None:
        """The context starts over (new run, clear, new model): forks no longer apply."""
        self.branches.clear()
        self.view.border_subtitle = ""
        if self.inspecting:
            self._request_inspect(self.view.cursor)  # type: ignore[arg-type]

    # -- heat-map ----------------------------------------------------------------------------
    def action_toggle_heatmap(self) -> None:
        """Colour generated text by the probability each character had (and back)."""
        self.main.change(heatmap=not self.main.settings.heatmap)

    def explorer_settings(self, old, new) -> None:
        """The settings changed: show the heat-map and the ghost text as they say."""
        if new.heatmap != old.heatmap:
            self._show_heatmap(new.heatmap)
        if new.ghost != old.ghost:
            self._update_ghost()

    def _show_heatmap(self, on: bool) -> None:
        view = self.view
        view.set_heatmap(on)
        legend = self.query_one("#heat-legend", Static)
        legend.update(view.legend_line())
        legend.display = on

    # -- inspector ---------------------------------------------------------------------------
    def action_inspect(self) -> None:
        """Enter inspect mode on the last character (F8 again leaves it)."""
        if self.inspecting:
            self.action_leave_inspect()
            return
        t = self.view.transcript
        if t.end <= t.start:
            self.notify("Nothing to inspect yet: generate some text first.", severity="warning")
            return
        self.view.focus()
        self.view.set_cursor(t.end - 1)

    def action_leave_inspect(self) -> None:
        """Esc in inspect mode: stop a run if one streams, else leave inspect mode."""
        main = self.main
        if main.run is not None and not main.run.finished:
            main.action_stop()
            return
        self.view.set_cursor(None)
        self.remove_class("-inspecting")
        self.inspection = None
        main.prompt.focus()

    @on(ExplorerView.CursorMoved)
    def _cursor_moved(self, event: ExplorerView.CursorMoved) -> None:
        self.add_class("-inspecting")
        self._request_inspect(event.pos)

    def _request_inspect(self, pos: int) -> None:
        self._inspect_request += 1
        self._show_branch(pos)
        run = self.main.run
        if run is not None and not run.finished:
            self.inspector.show_message("Generating… the inspector reads the model when the run ends "
                                        "(Esc stops it).")
        sp = self.main.session_position(pos)
        self._inspect(self._inspect_request, pos, None if sp is None else sp)

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _inspect(self, request: int, pos: int, sp: int | None) -> None:
        """Read the distribution at session position ``sp`` once the session is free."""
        worker = get_current_worker()
        session = self.main.generator.session(lambda: worker.is_cancelled)
        if session is None:
            return
        try:
            if sp is None or not session.offset <= sp < len(session):
                self.post_message(Inspected(request, pos, None, "This text is not in the model's current "
                                            "context (an earlier run, or another model)."))
            else:
                self.post_message(Inspected(request, pos, inspect(session, sp)))
        except Exception as e:  # noqa: BLE001  (shown in the panel, never a traceback)
            self.post_message(Inspected(request, pos, None, f"{type(e).__name__}: {e}"))
        finally:
            session.lock.release()

    @on(Inspected)
    def _inspected(self, event: Inspected) -> None:
        if event.request != self._inspect_request or not self.inspecting:
            return
        if event.inspection is None:
            self.inspection = None
            self.inspector.show_message(event.error or "")
            return
        self.inspection = (event.pos, event.inspection)
        t = self.view.transcript
        index, col = t.locate(event.pos)
        sampled = t.lines[index].probs[col]
        model = self.main.model
        assert model is not None
        self.inspector.show(event.pos, event.inspection, model.vocab.chars,
                            sampled if sampled == sampled else None, self._branch_label(event.pos))

    # -- fork and rewind -----------------------------------------------------------------------
    def action_pick(self, i: int) -> None:
        """Fork at the cursor with candidate ``i`` of the inspector (0-based)."""
        pos = self.view.cursor
        if pos is None:
            return
        if self.inspection is None or self.inspection[0] != pos or i >= len(self.inspection[1].top):
            self.notify("Wait for the inspector to show the candidates at the cursor.", severity="warning")
            return
        cid, p = self.inspection[1].top[i]
        self._fork(pos, cid, p)

    def action_resample(self) -> None:
        """Fork at the cursor: sample that character again and go on from there."""
        if self.view.cursor is not None:
            self._fork(self.view.cursor, None, None)

    def _segment(self, start: int) -> Segment:
        t = self.view.transcript
        kinds, probs = t.kinds_probs(start, t.end)
        return Segment(t.text(start, t.end), kinds, probs)

    def _fork(self, pos: int, cid: int | None, p: float | None) -> None:
        main = self.main
        sp = main.session_position(pos)
        if sp is None or main.model is None:
            self.notify("Only text in the model's current context can be forked.", severity="warning")
            return
        main._stop_current()
        out = self.view
        fork = self.branches.fork(pos, self._segment(pos))
        out.truncate(pos)
        ops: list[tuple] = [("rewind_to", sp)]
        if cid is not None:
            ch = main.model.vocab.chars[cid]
            out.append(ch, MODEL, [p if p is not None else float("nan")])
            ops.append(("feed", ch))
        # Each branch of a fork has its own seed offset, so a fixed seed still varies them.
        run = Run("fork", out_start=out.transcript.end, seed_offset=len(fork.branches) - 1)
        main.generator.queue(*ops, ("mark", run))
        main._start(run)
        self._request_inspect(pos)

    def action_branch(self, n: int) -> None:
        """Show the previous (-1) or next (+1) branch of the fork at the cursor."""
        t = self.view.transcript
        pos = self.view.cursor if self.view.cursor is not None else t.end - 1
        fork = self.branches.at_or_before(pos)
        if fork is None or len(fork.branches) < 2:
            self.notify("No fork here: in inspect mode (F8), pick a candidate (1-9, 0) or press r.",
                        severity="warning")
            return
        main = self.main
        sp = main.session_position(fork.pos)
        if sp is None:
            self.branches.clear()
            return
        main._stop_current()
        segment = self.branches.switch(fork, fork.current + n, self._segment(fork.pos))
        out = self.view
        out.truncate(fork.pos)
        at = 0
        for kind, group in groupby(segment.kinds):
            count = sum(1 for _ in group)
            out.append(segment.text[at:at + count], kind, segment.probs[at:at + count])
            at += count
        # The session goes back to the fork's snapshot and reads only this branch's text.
        main.generator.queue(("rewind_to", sp), ("feed", segment.text))
        main.run = None  # regenerate/copy refer to the run on screen, which is gone
        main._show_status()
        if self.inspecting:
            self.view.set_cursor(min(pos, max(fork.pos, out.transcript.end - 1)))
            self._request_inspect(self.view.cursor)  # type: ignore[arg-type]
        else:
            self._show_branch(pos)

    def _branch_label(self, pos: int) -> str:
        fork = self.branches.at_or_before(pos)
        if fork is None or len(fork.branches) < 2:
            return ""
        return f"branch {fork.current + 1}/{len(fork.branches)} · [ ] switch"

    def _show_branch(self, pos: int) -> None:
        self.view.border_subtitle = self._branch_label(pos)

    # -- ghost text -------------------------------------------------------------------------
    def action_toggle_ghost(self) -> None:
        """Show (or stop showing) the prompt's likely continuation while typing."""
        on = not self.main.settings.ghost
        self.main.change(ghost=on)
        self.notify(f"Ghost text {'on' if on else 'off'}.")

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self._update_ghost()

    @on(TextArea.SelectionChanged, "#prompt")
    def _prompt_cursor(self) -> None:
        # The ghost continues the prompt's end: hide it while the cursor is elsewhere,
        # bring it back when the cursor returns (unless a worker is already on it).
        prompt = self.main.prompt
        if prompt.cursor_location != prompt.document.end:
            prompt.show_ghost("")
        elif not prompt.suggestion and prompt.text and self._ghost_for != prompt.text:
            self._update_ghost()

    def _update_ghost(self) -> None:
        prompt = self.main.prompt
        prompt.sync_ghost()
        text = prompt.text
        self._ghost_for = text
        if self.ghost is None or not self.main.settings.ghost or not text:
            prompt.show_ghost("")
            return
        self._ghost(text)

    @work(thread=True, exclusive=True, group="ghost", exit_on_error=False)
    def _ghost(self, text: str) -> None:
        worker = get_current_worker()
        ghost = self.ghost
        if ghost is None:
            return
        preview = ghost.predict(text, lambda: worker.is_cancelled)
        if preview is not None and not worker.is_cancelled:
            self.post_message(GhostReady(text, preview))

    @on(GhostReady)
    def _ghost_ready(self, event: GhostReady) -> None:
        prompt = self.main.prompt
        if event.text == self._ghost_for:
            self._ghost_for = None  # answered: a later return of the cursor asks again
        if event.text == prompt.text and self.main.settings.ghost and prompt.cursor_location == prompt.document.end:
            prompt.show_ghost(event.ghost)
