"""The explorer on the main screen: heat-map, inspector, fork and rewind, ghost text.

:class:`Explorer` is a part the :class:`~charlstm_tui.screens.main.MainScreen` owns (not a
screen, not a base class): the main screen binds the keys and hands it the messages, and
it works through the main screen's public face (its output pane, prompt, generator,
runs and settings).

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

from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING

from textual.widgets import Static
from textual.worker import get_current_worker

from ..branches import BranchTree, Fork, Segment
from ..bridge import Ghost, Inspection, LoadedModel, Run, inspect
from ..messages import GhostReady, Inspected
from ..widgets.output import MODEL

if TYPE_CHECKING:
    from ..settings import Settings
    from .main import MainScreen


def whole_words(ghost: str) -> str:
    """``ghost`` up to its last word boundary (a space or newline, kept), so accepting it
    never ends mid-word; all of it when it has no boundary."""
    cut = max(ghost.rfind(" "), ghost.rfind("\n"))
    return ghost[:cut + 1] if cut > 0 else ghost


class Explorer:
    """Heat-map, inspector, fork/rewind and ghost text, for the main screen that owns it."""

    def __init__(self, main: "MainScreen") -> None:
        self.main = main
        self.branches = BranchTree()
        self.ghost: Ghost | None = None
        self.inspection: tuple[int, Inspection] | None = None  # (position, what the panel shows)
        self._inspect_request = 0
        self._ghost_for: str | None = None  # the prompt text the ghost worker was last asked about

    @property
    def inspecting(self) -> bool:
        return self.main.output.cursor is not None

    def mounted(self) -> None:
        inspector = self.main.inspector
        inspector.border_title = "Inspector"
        inspector.border_subtitle = "F8/Esc leave"
        self._show_heatmap(self.main.settings.heatmap)

    # -- what the main screen tells it ---------------------------------------------------------
    def model_loaded(self, model: LoadedModel) -> None:
        """A model was loaded: a new ghost, no branches (the context starts over)."""
        self.ghost = Ghost(model)
        self.reset()
        self.update_ghost()

    def reset(self) -> None:
        """The context starts over (new run, clear, new model): forks no longer apply."""
        self.branches.clear()
        self.main.output.border_subtitle = ""
        if self.inspecting:
            self._request_inspect(self.main.output.cursor)  # type: ignore[arg-type]

    def weights_changed(self) -> None:
        """The model's weights changed (Adapt): the ghost text is predicted anew."""
        if self.ghost is not None:
            self.ghost.forget()
            self.update_ghost()

    def settings_changed(self, old: "Settings", new: "Settings") -> None:
        """Show the heat-map and the ghost text as the settings now say."""
        if new.heatmap != old.heatmap:
            self._show_heatmap(new.heatmap)
        if new.ghost != old.ghost:
            self.update_ghost()

    # -- heat-map ----------------------------------------------------------------------------
    def _show_heatmap(self, on: bool) -> None:
        view = self.main.output
        view.set_heatmap(on)
        legend = self.main.query_one("#heat-legend", Static)
        legend.update(view.legend_line())
        legend.display = on

    # -- inspector ---------------------------------------------------------------------------
    def toggle_inspect(self) -> None:
        """Enter inspect mode on the last character (and leave it again)."""
        if self.inspecting:
            self.leave()
            return
        view = self.main.output
        t = view.transcript
        if t.end <= t.start:
            self.main.notify("Nothing to inspect yet: generate some text first.", severity="warning")
            return
        view.focus()
        view.set_cursor(t.end - 1)

    def leave(self) -> None:
        """Leave inspect mode (Esc stops a run first: the main screen decides)."""
        main = self.main
        main.output.set_cursor(None)
        main.remove_class("-inspecting")
        self.inspection = None
        main.prompt.focus()

    def cursor_moved(self, pos: int) -> None:
        self.main.add_class("-inspecting")
        self._request_inspect(pos)

    def _request_inspect(self, pos: int) -> None:
        self._inspect_request += 1
        self._show_branch(pos)
        main = self.main
        if main.generating:
            main.inspector.show_message("Generating… the inspector reads the model when the run ends "
                                        "(Esc stops it).")
        main.run_worker(partial(self._inspect, self._inspect_request, pos, main.session_position(pos)),
                        thread=True, exclusive=True, group="inspect", exit_on_error=False)

    def _inspect(self, request: int, pos: int, sp: int | None) -> None:
        """The worker: read the distribution at session position ``sp`` once the session is free."""
        worker = get_current_worker()
        session = self.main.generator.session(lambda: worker.is_cancelled)
        if session is None:
            return
        post = self.main.post_message
        try:
            if sp is None or not session.offset <= sp < len(session):
                post(Inspected(request, pos, None, "This text is not in the model's current context "
                                                   "(an earlier run, or another model)."))
            else:
                post(Inspected(request, pos, inspect(session, sp)))
        except Exception as e:  # noqa: BLE001  (shown in the panel, never a traceback)
            post(Inspected(request, pos, None, f"{type(e).__name__}: {e}"))
        finally:
            session.lock.release()

    def inspected(self, event: Inspected) -> None:
        main = self.main
        if event.request != self._inspect_request or not self.inspecting:
            return
        if event.inspection is None:
            self.inspection = None
            main.inspector.show_message(event.error or "")
            return
        self.inspection = (event.pos, event.inspection)
        t = main.output.transcript
        index, col = t.locate(event.pos)
        sampled = t.lines[index].probs[col]
        assert main.model is not None
        main.inspector.show(event.pos, event.inspection, main.model.vocab.chars,
                            sampled if sampled == sampled else None, self._branch_label(event.pos))

    # -- fork and rewind -----------------------------------------------------------------------
    def pick(self, i: int) -> None:
        """Fork at the cursor with candidate ``i`` of the inspector (0-based)."""
        pos = self.main.output.cursor
        if pos is None:
            return
        if self.inspection is None or self.inspection[0] != pos or i >= len(self.inspection[1].top):
            self.main.notify("Wait for the inspector to show the candidates at the cursor.", severity="warning")
            return
        cid, p = self.inspection[1].top[i]
        self._fork(pos, cid, p)

    def resample(self) -> None:
        """Fork at the cursor: sample that character again and go on from there."""
        if self.main.output.cursor is not None:
            self._fork(self.main.output.cursor, None, None)

    def _segment(self, start: int) -> Segment:
        t = self.main.output.transcript
        kinds, probs = t.kinds_probs(start, t.end)
        return Segment(t.text(start, t.end), kinds, probs)

    def _fork(self, pos: int, cid: int | None, p: float | None) -> None:
        main = self.main
        sp = main.session_position(pos)
        if sp is None or main.model is None:
            main.notify("Only text in the model's current context can be forked.", severity="warning")
            return
        main.interrupt()
        out = main.output
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
        main.start(run)
        self._request_inspect(pos)

    def branch(self, n: int) -> None:
        """Show the previous (-1) or next (+1) branch of the fork at the cursor."""
        main = self.main
        out = main.output
        t = out.transcript
        pos = out.cursor if out.cursor is not None else t.end - 1
        fork = self._fork_at(pos)
        if fork is None or len(fork.branches) < 2:
            main.notify("No fork here: in inspect mode (F8), pick a candidate (1-9, 0) or press r.",
                        severity="warning")
            return
        sp = main.session_position(fork.pos)
        if sp is None:
            self.branches.clear()
            return
        main.interrupt()
        segment = self.branches.switch(fork, n, self._segment(fork.pos))
        out.truncate(fork.pos)
        at = 0
        for kind, group in groupby(segment.kinds):
            count = sum(1 for _ in group)
            out.append(segment.text[at:at + count], kind, segment.probs[at:at + count])
            at += count
        # The session goes back to the fork's snapshot and reads only this branch's text.
        main.generator.queue(("rewind_to", sp), ("feed", segment.text))
        main.forget_run()  # regenerate/copy refer to the run on screen, which is gone
        if self.inspecting:
            out.set_cursor(min(pos, max(fork.pos, out.transcript.end - 1)))
            self._request_inspect(out.cursor)  # type: ignore[arg-type]
        else:
            self._show_branch(pos)

    def _fork_at(self, pos: int) -> "Fork | None":
        """The fork whose branch holds ``pos``; on the last character, also a fork at the
        text's end (a branch stopped before its first character shows nothing after it)."""
        end = self.main.output.transcript.end
        return self.branches.at_or_before(end if pos >= end - 1 else pos)

    def _branch_label(self, pos: int) -> str:
        fork = self._fork_at(pos)
        if fork is None or len(fork.branches) < 2:
            return ""
        return f"branch {fork.current + 1}/{len(fork.branches)} · [ ] switch"

    def _show_branch(self, pos: int) -> None:
        self.main.output.border_subtitle = self._branch_label(pos)

    # -- ghost text -------------------------------------------------------------------------
    def prompt_cursor_moved(self) -> None:
        # The ghost continues the prompt's end: hide it while the cursor is elsewhere,
        # bring it back when the cursor returns (unless a worker is already on it).
        prompt = self.main.prompt
        if prompt.cursor_location != prompt.document.end:
            prompt.show_ghost("")
        elif not prompt.suggestion and prompt.text and self._ghost_for != prompt.text:
            self.update_ghost()

    def update_ghost(self) -> None:
        """The prompt changed: ask for its continuation (or hide the ghost)."""
        prompt = self.main.prompt
        prompt.sync_ghost()
        text = prompt.text
        self._ghost_for = text
        if self.ghost is None or not self.main.settings.ghost or not text:
            prompt.show_ghost("")
            return
        self.main.run_worker(partial(self._predict, self.ghost, text), thread=True, exclusive=True, group="ghost",
                             exit_on_error=False)

    def _predict(self, ghost: Ghost, text: str) -> None:
        """The worker: the greedy continuation of ``text``."""
        worker = get_current_worker()
        preview = ghost.predict(text, lambda: worker.is_cancelled)
        if preview is not None and not worker.is_cancelled:
            self.main.post_message(GhostReady(text, preview))

    def ghost_ready(self, event: GhostReady) -> None:
        main = self.main
        prompt = main.prompt
        if event.text == self._ghost_for:
            self._ghost_for = None  # answered: a later return of the cursor asks again
        if event.text == prompt.text and main.settings.ghost and prompt.cursor_location == prompt.document.end:
            prompt.show_ghost(whole_words(event.ghost))
