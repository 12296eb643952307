"""Generation in a process of its own, so the UI never holds up the model.

Why a process: the UI thread and a generation thread share one GIL. Each torch op lets
the GIL go, and a UI frame that takes it (about 7 ms of Python, 10 times a second)
keeps the generation thread waiting until the frame is done: the stream lost what
the UI spent, and more. A child process has its own interpreter, so the UI costs the
stream nothing but a core.

The child is forked from the app as a model finishes loading (see
:meth:`~charlstm_tui.bridge.Generator.prepare`), so it starts in milliseconds and shares
the model's weights with the app (copy-on-write: no second load, no second copy in
memory). It holds a :class:`~core.session.Session` of its own. A run hands it
the end of the app's context (:class:`~core.session.Handoff`); the child streams
characters back in chunks, :data:`SEND_EVERY` apart (each one at once when the
typewriter delay is on); at the end the app's session takes back the state where
the shown text ends. A stop costs the child one character: it checks a counter in
shared memory at every step. The app takes chunks whole, so the shown text always
ends where a chunk did, and the child keeps the exact state at each chunk's end: a
stop lands as if the run had stopped right there, however far ahead the child ran.
A settings change reaches the child as an :class:`Update`, pushed by the app the moment
it happens (:meth:`GenerationProcess.update`); the child takes it at its next step.
Weights that changed in the app (Adapt: :mod:`~charlstm_tui.adaptation`) reach it as
:class:`Weights` before its next run (:meth:`GenerationProcess.load_weights`).
Every message either way is one of the dataclasses below, never a positional tuple.

The child runs torch on one thread. GNU OpenMP, which torch's builds use, cannot run
a parallel region in a forked child once the parent has used it: the child would hang.
So the app forks only where it would generate on one thread anyway (the default; see
:func:`~charlstm_tui.bridge.generation_threads`), and only on Linux, where fork is
sound (see :func:`available`). Elsewhere it generates in a thread. Nothing here
imports Textual.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import warnings
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from core.errors import CharLSTMError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import torch

    from core.sampling import Sampler
    from core.session import Handoff, Session

    from .bridge import Sampling

# Seconds between chunks at delay 0. Each chunk wakes a thread of the app, and a wake-up
# every 4 ms cost the stream ~20% (the woken thread shares the CPU's caches with it);
# the screen is drawn 10 times a second at this speed anyway.
SEND_EVERY = 0.02
POLL = 0.05  # how often the app checks for a stop while waiting on the child
REPLY_TIMEOUT = 10.0  # seconds the app waits for the child to answer a stop or a landing


# -- messages: app -> child ----------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """Generate, continuing the context whose end is ``handoff``."""

    handoff: "Handoff"
    sampling: "Sampling"


@dataclass(frozen=True)
class Update:
    """The settings changed mid-run: sample with these from the next character."""

    sampling: "Sampling"


@dataclass(frozen=True)
class Stop:
    """End the run now (the app has shown all it will take)."""


@dataclass(frozen=True)
class Land:
    """The app's shown text ends at position ``pos``: go back there, send the state."""

    pos: int
    start: int  # where the run started: snapshots from there on come back too


@dataclass(frozen=True)
class Weights:
    """The model's weights changed: each parameter named here follows as float32 bytes,
    one ``send_bytes`` each, in this order (not pickled: a pickle of 17 MB cost 13-20 ms
    more; not tensors: torch would pass those as shared memory). Sent between runs."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Quit:
    """The app is done with this process."""


# -- messages: child -> app ----------------------------------------------------------------------

@dataclass(frozen=True)
class Chars:
    """Sampled characters: ids (array "l") and their probabilities (array "f"), as bytes."""

    ids: bytes
    probs: bytes


@dataclass(frozen=True)
class Finished:
    """The run ended (its length, or a Stop)."""


@dataclass(frozen=True)
class Failed:
    """The run or the landing failed; ``error`` is one line."""

    error: str


@dataclass(frozen=True)
class Landed:
    """The state where the app's text ends, and the snapshots taken since the run started."""

    handoff: "Handoff"
    states: dict[int, bytes]


class GenerationError(CharLSTMError):
    """The generation process failed, or stopped answering."""


def available() -> bool:
    """Whether runs can be forked into a child process here (Linux)."""
    return sys.platform.startswith("linux")


class GenerationProcess:
    """A forked child that generates for the app. Made from the loaded sampler; one run
    at a time, from one thread (the app's generation worker)."""

    def __init__(self, sampler: "Sampler", block_size: int, weights_version: int = 0) -> None:
        """``weights_version``: what the app calls the sampler's weights now (see
        :meth:`load_weights`)."""
        import multiprocessing  # here, not at the top: the app's first frame does not wait for it

        self.weights_version = weights_version

        ctx = multiprocessing.get_context("fork")
        self._conn, child_conn = ctx.Pipe()
        self._news = ctx.RawValue("i", 0)  # bumped with each message sent during a run
        self._sent = 0
        self._send_lock = threading.Lock()  # the worker and the UI thread (update) both send
        self._running = False  # between a Start and its landing: an Update is for the child
        self._closed = False
        with warnings.catch_warnings():  # Python 3.12+ warns of fork in a threaded process:
            warnings.simplefilter("ignore", DeprecationWarning)  # the child runs only our loop
            self._proc = ctx.Process(target=_serve, name="charlstm-generation", daemon=True,
                                     args=(child_conn, self._conn, self._news, sampler, block_size))
            self._proc.start()
        child_conn.close()

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    def generate(self, session: "Session", sampling: "Sampling", stop: Callable[[], bool]
                 ) -> Iterator[tuple[array, array]]:
        """Yield ``(ids, probs)`` chunks the child samples, continuing ``session``.

        As :meth:`Session.generate <core.session.Session.generate>` does per character:
        a chunk joins ``session`` when the consumer asks for the next one, and closing
        the generator leaves the last one out. :meth:`update` changes the sampling
        mid-run; once ``stop()`` is true no further chunk is yielded. On the way out the
        session takes back the state at its end, so a stopped run ends at its last
        accepted chunk.
        """
        start = len(session)
        with self._send_lock:
            self._sent = self._news.value = 0
            self._send(Start(session.handoff(), sampling))
            self._running = True
        finished = False
        error: str | None = None
        try:
            while True:
                if stop():
                    return
                if not self._conn.poll(POLL):
                    if not self._proc.is_alive():
                        raise self._died()
                    continue
                msg = self._recv()
                if isinstance(msg, Chars):
                    ids, probs = array("l"), array("f")
                    ids.frombytes(msg.ids)
                    probs.frombytes(msg.probs)
                    yield ids, probs
                    session.append_sampled(ids, probs)
                elif isinstance(msg, Finished):
                    finished = True
                    return
                elif isinstance(msg, Failed):
                    error = msg.error
                    finished = True
                    return
        finally:
            self._land(session, start, finished)
            if error is not None:
                raise GenerationError(error)

    def load_weights(self, weights: "dict[str, torch.Tensor]", version: int) -> None:
        """Sample with these weights (by parameter name, all of them) from the next run
        on; ``version`` is the app's name for them. Between runs only."""
        from core.session import to_bytes

        with self._send_lock:
            self._send(Weights(tuple(weights)))
            try:
                for t in weights.values():
                    self._conn.send_bytes(to_bytes(t.detach()))
            except OSError:
                raise self._died() from None
        self.weights_version = version

    def update(self, sampling: "Sampling") -> None:
        """Use ``sampling`` from the run's next character (any thread; nothing between runs)."""
        with self._send_lock:
            if self._running and not self._closed:
                self._tell(Update(sampling))

    def _land(self, session: "Session", start: int, finished: bool) -> None:
        """End the child's run where ``session`` ends, and bring its state back."""
        try:
            with self._send_lock:
                self._running = False
                if not finished:
                    self._tell(Stop())
            if not finished:
                while not isinstance(self._recv(REPLY_TIMEOUT), (Finished, Failed)):
                    pass  # chunks sampled after the stop: never shown, so not kept
            with self._send_lock:
                self._send(Land(len(session), start))
            msg = self._recv(REPLY_TIMEOUT)
            if isinstance(msg, Failed):
                raise GenerationError(msg.error)
            session.land(msg.handoff, msg.states)
        except BaseException:
            # The child is gone or lost: the session still has the characters shown, so
            # rebuild its state here from the last one it had (the next run forks a fresh
            # child). Not after close(): the app is quitting or changing models, and drops
            # the session.
            closed = self._closed
            self.close()
            if not closed:
                session.rebuild_end()
            raise

    def _tell(self, msg: Any) -> None:
        """Send a message the child must see mid-run: it checks the counter every step.
        The caller holds the send lock."""
        self._send(msg)
        self._sent += 1
        self._news.value = self._sent

    def _send(self, msg: Any) -> None:
        try:
            self._conn.send(msg)
        except OSError:
            raise self._died() from None

    def _recv(self, timeout: float | None = None) -> Any:
        try:
            if timeout is not None and not self._conn.poll(timeout):
                raise GenerationError(f"the generation process did not answer in {timeout:.0f} s; "
                                      "the next run starts a new one")
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> GenerationError:
        if self._closed:
            return GenerationError("the generation process was closed mid-run")
        self._proc.join(1)
        code = self._proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return GenerationError(f"the generation process stopped ({how}); the next run starts a new one")

    def close(self) -> None:
        """End the child (at once: it holds nothing that needs saving). A run in flight
        then ends with a :class:`GenerationError`, leaving its session as it was."""
        self._closed = True
        try:
            with self._send_lock:
                self._conn.send(Quit())
        except OSError:
            pass
        self._conn.close()
        self._proc.join(0.5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


# -- the child ---------------------------------------------------------------------------------

def _serve(conn: Connection, parent_end: Connection, news: Any, sampler: "Sampler", block_size: int) -> None:
    """The child's main loop: one run per "run" message, until "quit" or the app is gone."""
    try:
        parent_end.close()  # so that the app's end closing reads as EOF here
        os.setpgrp()  # the terminal's signals (resize, Ctrl+C) are the app's business
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)  # the app's event loop owns that fd
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # never draw on the app's terminal, whatever a library prints
            os.dup2(null, fd)
        gc.freeze()  # the app's objects, shared copy-on-write: collections here never touch them
        import torch

        from core.session import Session

        torch.set_num_threads(1)  # never OpenMP in a forked child (see the module's docstring)
        session = Session(sampler, block_size=block_size)
        while True:
            msg = conn.recv()
            if isinstance(msg, Start):
                _run(conn, news, session, msg)
            elif isinstance(msg, Weights):
                _take_weights(conn, sampler, msg)
            elif isinstance(msg, Quit):
                return
            # an Update that crossed the end of a run: nothing to apply it to
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the app is gone
    finally:
        os._exit(0)  # skip the app's atexit handlers and finalizers: they are not ours


def _take_weights(conn: Connection, sampler: "Sampler", msg: Weights) -> None:
    """Copy the app's weights into the child's model (its pages become the child's own)
    and rearrange them for sampling."""
    import torch

    from core.session import from_bytes

    params = dict(sampler.model.named_parameters())
    with torch.no_grad():
        for name in msg.names:
            p = params[name]
            p.copy_(from_bytes(conn.recv_bytes()).view_as(p))
    sampler.refresh()


def _run(conn: Connection, news: Any, session: "Session", start: Start) -> None:
    """Generate from ``start.handoff`` until done or stopped, then land where the app says."""
    from charlstm_tui.bridge import error_text

    seen, stopped = 0, False
    config, delay = start.sampling.config, start.sampling.delay

    class StopFlag:  # what Session.generate checks at each step
        @staticmethod
        def is_set() -> bool:
            return stopped

    def read_news() -> None:
        nonlocal seen, stopped, config, delay
        seen = news.value
        while conn.poll():
            msg = conn.recv()
            if isinstance(msg, Update):
                config, delay = msg.sampling.config, msg.sampling.delay
            elif isinstance(msg, Stop):
                stopped = True

    ids, probs = array("l"), array("f")
    boundary = None  # where the last chunk sent ends, once the state there exists
    try:
        session.take_over(start.handoff)
        sent_at = 0.0  # the first character goes at once
        for i, p in session.generate(lambda: config, StopFlag):  # type: ignore[arg-type]
            if boundary is not None:  # i is not in yet: the state at the boundary is the latest
                session.snapshots.pin(boundary)
                boundary = None
            ids.append(i)
            probs.append(p)
            now = time.perf_counter()
            if delay or now - sent_at >= SEND_EVERY:
                conn.send(Chars(ids.tobytes(), probs.tobytes()))
                del ids[:], probs[:]
                sent_at, boundary = now, len(session) + 1
            if delay and conn.poll(delay):  # the typewriter; a stop or new settings wakes it
                read_news()
            elif news.value != seen:
                read_news()
        if ids:
            conn.send(Chars(ids.tobytes(), probs.tobytes()))
        conn.send(Finished())
    except Exception as e:  # noqa: BLE001  (reported to the app, which shows it)
        conn.send(Failed(error_text(e)))
    while True:  # the app says where its shown text ends
        msg = conn.recv()
        if isinstance(msg, Land):
            break
    try:
        session.rewind(msg.pos)
        conn.send(Landed(session.handoff(), session.states_since(msg.start)))
    except Exception as e:  # noqa: BLE001
        conn.send(Failed(error_text(e)))
