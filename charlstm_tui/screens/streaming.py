"""What every screen that streams generated text shares: the once-per-frame flush of
the worker's buffer onto the screen, and a stop that shows what was already made."""

from __future__ import annotations

import time

from textual.timer import Timer

from ..bridge import Run, StreamBuffer

FRAME = 1 / 60  # the flush timer: at most one output update per frame
FAST_FRAME = 1 / 10  # ...but a fast stream is drawn 10 times a second, no tick between (see _flush)
FAST_CHUNK = 8  # characters per flush above which a stream counts as fast
STATUS_EVERY = 0.25  # seconds between status-line updates while streaming


class FrameFlusher:
    """Mixin for a Screen whose worker fills a :class:`StreamBuffer`.

    The screen provides ``run``, ``stream_buffer``, ``_show`` and ``_show_status`` (and
    ``_settle`` if it has something to finish when a run ends); it calls :meth:`_start_ticker` on mount and ``self._ticker.resume()``
    when a run starts."""

    run: Run | None
    _ticker: Timer | None = None
    _status_at = 0.0

    @property
    def stream_buffer(self) -> StreamBuffer:
        raise NotImplementedError

    def _show(self, run: Run, text: str, probs: list[float]) -> None:
        raise NotImplementedError

    def _show_status(self) -> None:
        raise NotImplementedError

    def _settle(self) -> None:
        """The run ended: let the screen finish (subtitles, say)."""

    _footer_running = False  # what the footer shows: a run streaming (Esc stop first), or not

    def _footer_follows_run(self) -> None:
        """Redraw the footer when a run starts or ends, for the key it leads with."""
        running = self.run is not None and not self.run.finished
        if running != self._footer_running:
            self._footer_running = running
            self.refresh_bindings()  # type: ignore[attr-defined]

    def _start_ticker(self) -> None:
        self._ticker = self.set_interval(FRAME, self._flush, pause=True)  # type: ignore[attr-defined]

    def _stop_current(self) -> None:
        run = self.run
        if run is not None and not run.finished:
            text, probs = self.stream_buffer.stop(run)
            self._show(run, text, probs)
            run.finished = "stopped"
            self._settle()

    def _flush(self) -> None:
        """At most once per frame: move what the worker produced onto the screen.

        A slow stream (the typewriter) is drawn every frame, one character at a time.
        A fast one is drawn 10 times a second, and the ticker sleeps in between: the UI
        thread shares the GIL with the worker, so whatever it does while the worker
        streams (a screen update costs milliseconds, an idle tick too adds up at 60 Hz)
        is time taken from the worker. Text arriving thousands of characters a second
        reads the same at 10 frames a second."""
        run = self.run
        text, probs = self.stream_buffer.drain()
        if run is not None and not text and run.reading is not None and not run.finished:
            # The adapter reads a text before any character comes (Adapt): its progress,
            # four times a second, and no tick between (the read shares the GIL with this).
            now = time.perf_counter()
            if now - self._status_at >= STATUS_EVERY:
                self._status_at = now
                self._show_status()
            assert self._ticker is not None
            self._ticker.pause()
            self.set_timer(FAST_FRAME, self._ticker.resume)  # type: ignore[attr-defined]
            return
        if run is not None and text:
            self._show(run, text, probs)
            now = time.perf_counter()
            if now - self._status_at >= STATUS_EVERY:
                self._status_at = now
                # In a frame of its own: Textual redraws the rectangle around everything
                # dirty, and the status row (the bottom, full width) with the output's new
                # rows spans the whole screen; alone, it is one row.
                self.call_after_refresh(self._show_status)  # type: ignore[attr-defined]
            if len(text) > FAST_CHUNK and not run.finished:
                assert self._ticker is not None
                self._ticker.pause()
                self.set_timer(FAST_FRAME, self._ticker.resume)  # type: ignore[attr-defined]  (ticks at once)
                return
        if run is None or run.finished:
            assert self._ticker is not None
            self._ticker.pause()
            self._settle()
