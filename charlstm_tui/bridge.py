"""Where the app runs the model: the one place it loads, samples, sweeps, scores and
inspects it. (Elsewhere the app uses core's plain helpers, errors, paths, option ranges and
text reading; the Train screen drives :func:`core.train.train` itself, as a training is a
job of its own, not the loaded model's.)

- :func:`load_model` reads a checkpoint (importing torch on first use); the app calls it
  from a thread worker behind a loading state. :func:`checkpoint_problem` says before
  that what is wrong with a path that is no file.
- :class:`Generator` runs a :class:`~core.session.Session` from a thread worker: it
  applies the context edits the UI queued (reset, feed text, rewind), then streams
  characters into a :class:`StreamBuffer`. The sampling itself runs in a forked
  :class:`~charlstm_tui.generation_process.GenerationProcess` where there is fork
  (Linux), so the UI thread never holds the generating loop up; elsewhere, here.
  Settings changes are pushed to it (:meth:`Generator.apply`), as a :class:`Sampling`.
- Adapt: the generator holds the loaded model's :class:`~charlstm_tui.adaptation.Adaptation`;
  a run reads the user's text into it before generating (a queued "adapt" edit), F9 and
  the reset key read or reset it under :meth:`Generator.exclusive`, and the generation
  process is sent the weights whenever they changed since its last run.
- :func:`sweep` streams one prompt at several temperatures, one batched pass per step,
  into a :class:`SweepBuffer`; :func:`sweep_bits` measures its columns, :func:`score` a
  text's surprise. They run in thread workers of the explorer screens.
- :func:`inspect` reads the distribution at a position; :class:`Ghost` keeps the prompt's
  greedy continuation, for the explorer on the main screen.
- The UI drains the buffer once per frame. A per-character ``call_from_thread`` would
  cost a UI round trip per character (about 1,800 chars/s at best, stalling the worker);
  a lock-protected list costs a few hundred nanoseconds per character.

Nothing here imports Textual, and nothing imports torch until a model is loaded.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import generation_process
from .adaptation import AdaptResult, AdaptSummary, Adaptation
from .settings import Settings

if TYPE_CHECKING:
    from core.checkpoint import Checkpoint
    from core.sampling import SampleConfig
    from core.score import TextScore
    from core.session import Session
    from core.vocab import CharVocab


@dataclass(frozen=True)
class ModelInfo:
    """What the status line and the model card say about a checkpoint."""

    path: Path
    name: str
    params: int
    val_loss: float | None
    n_layers: int
    n_embd: int
    vocab_size: int
    block_size: int
    step: int

    def summary(self) -> str:
        from .widgets.status import human

        loss = f"val {self.val_loss:.3f}" if self.val_loss is not None else "val —"
        return f"{self.name} · {self.n_layers}×{self.n_embd} LSTM · {human(self.params)} params · {loss}"


@dataclass
class LoadedModel:
    """A checkpoint ready to generate: its description, vocabulary and session, and the
    checkpoint's metadata (its weights left out: the session's model holds them)."""

    info: ModelInfo
    vocab: "CharVocab"
    session: "Session"
    checkpoint: "Checkpoint"
    adaptation: Adaptation = field(init=False)  # Adapt: the model learning what the user gives it

    def __post_init__(self) -> None:
        self.adaptation = Adaptation(self)

    def clean(self, text: str) -> tuple[str, str]:
        """``(kept text, dropped characters)``: what the model can read of ``text``."""
        ids, dropped = self.vocab.encode_lenient(text)
        return (self.vocab.decode(ids) if dropped else text), dropped


def error_text(e: BaseException) -> str:
    """What a worker's failure says in a notice: core's own one-line message, or the
    exception's type and text for anything unexpected (never a traceback)."""
    from core.errors import CharLSTMError

    return str(e) if isinstance(e, CharLSTMError) else f"{type(e).__name__}: {e}"


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a checkpoint before reading it, or None. A stat, not
    a load: the app says it at once instead of after importing torch."""
    import stat

    from core.files import kind_of

    try:
        mode = Path(path).expanduser().stat().st_mode
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as e:
        return f"cannot open {path}: {e.strerror or e}"
    if stat.S_ISDIR(mode):
        return f"{path} is a folder, not a checkpoint file"
    if not stat.S_ISREG(mode):
        return f"{path} is {kind_of(mode)}, not a checkpoint file"
    return None


def problem_of(e: BaseException) -> str:
    """A load error's problem without core's fix, which names command-line options:
    core's messages read "problem; fix", and the app gives its own fix (a dialog)."""
    return error_text(e).split("; ")[0]


def generation_threads() -> int:
    """Torch threads for generation: one by default, leaving a core for the UI.

    A one-character step is too small to split well over threads that also share the
    machine with the UI thread; ``CHARLSTM_THREADS`` overrides."""
    try:
        return max(1, int(os.environ.get("CHARLSTM_THREADS", "1")))
    except ValueError:
        return 1


def load_model(path: Path) -> LoadedModel:
    """Read ``path`` and build its sampler and session. Slow (imports torch): call it
    from a worker. Raises :class:`core.errors.CharLSTMError` with a one-line fix."""
    import dataclasses

    import torch

    from core.checkpoint import load_checkpoint
    from core.sampling import Sampler
    from core.session import Session

    torch.set_num_threads(generation_threads())
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    block = int((ckpt.train.get("config") or {}).get("block_size", 256))
    info = ModelInfo(
        path=Path(path), name=Path(path).stem, params=model.num_params(), val_loss=ckpt.val_loss,
        n_layers=ckpt.model_config.n_layers, n_embd=ckpt.model_config.n_embd, vocab_size=ckpt.vocab.size,
        block_size=block, step=ckpt.step,
    )
    return LoadedModel(info, ckpt.vocab, Session(Sampler(model, ckpt.vocab), block_size=block),
                       dataclasses.replace(ckpt, state_dict={}, resume=None))


_run_ids = itertools.count(1)


@dataclass(eq=False)
class Run:
    """One generation, from the key press to its last character.

    The UI owns the positions (``out_start``: where its text starts in the transcript);
    the worker fills ``ctx_start``, the session position its generation started from.
    """

    kind: str  # "new", "continue", "regenerate", or "adapt" (read a text into the model, generate nothing)
    out_start: int = 0
    id: int = field(default_factory=lambda: next(_run_ids))
    stop: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False  # set under the buffer lock: no character is accepted after it
    ctx_start: int | None = None
    count: int = 0  # characters shown so far
    started: float = field(default_factory=time.perf_counter)
    last_at: float | None = None  # when the latest characters were shown
    finished: str | None = None  # "done" / "stopped" / "error" once over
    seed_offset: int = 0  # added to a fixed seed: each branch of a fork samples its own way
    reading: tuple[int, int] | None = None  # (done, total) characters while the adapter reads, before any text
    reading_since: float | None = None  # when that read started
    note: str = ""  # what the read is doing first, if anything (measuring gradient statistics)
    headed: bool = False  # the rule above its text is its own (it says the settings it started with)

    def rate(self) -> float | None:
        """Characters per second reaching the screen since the run started."""
        if self.last_at is None or self.last_at <= self.started:
            return None
        return self.count / (self.last_at - self.started)


@dataclass(frozen=True)
class Sampling:
    """What whoever samples takes from the settings: core's config and the typewriter
    delay. Made once per change and pushed (:meth:`Generator.apply`)."""

    config: "SampleConfig"
    delay: float  # seconds between characters

    @classmethod
    def of(cls, settings: Settings, block_size: int, seed_offset: int = 0) -> "Sampling":
        """For a run of a model trained on ``block_size``; a fixed seed moves by
        ``seed_offset`` (each branch of a fork samples its own way)."""
        from core.options import MAX_SEED, SAMPLING
        from core.sampling import SampleConfig

        values = {o.name: getattr(settings, o.name) for o in SAMPLING}
        if settings.seed is not None:
            values["seed"] = (settings.seed + seed_offset) % (MAX_SEED + 1)
        return cls(SampleConfig(**values, block_size=block_size), settings.delay_ms / 1000)


class Latest:
    """Where a run in this process finds its sampling: :meth:`update` replaces it, and the
    sampling loop reads it at each character."""

    def __init__(self, sampling: Sampling) -> None:
        self.sampling = sampling

    def update(self, sampling: Sampling) -> None:
        self.sampling = sampling


class StreamBuffer:
    """Characters from the worker, waiting for the next frame. Thread-safe.

    Only the current run may push, and not once it is stopped: stopping takes the
    lock, so a character is either pushed before the stop (and shown with it) or
    refused. That is what makes Esc final.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: Run | None = None
        self._chars: list[str] = []
        self._probs: list[float] = []

    def start(self, run: Run) -> None:
        with self._lock:
            self._run = run
            self._chars, self._probs = [], []

    def push(self, run: Run, text: str, probs: Iterable[float]) -> bool:
        """Queue characters (one or a chunk), all or none; False when ``run`` is no
        longer allowed to add any."""
        with self._lock:
            if run is not self._run or run.stopped:
                return False
            self._chars.append(text)
            self._probs.extend(probs)
            return True

    def drain(self) -> tuple[str, list[float]]:
        """Take everything queued: ``(text, probs)``."""
        with self._lock:
            chars, probs = self._chars, self._probs
            self._chars, self._probs = [], []
        return "".join(chars), probs

    def stop(self, run: Run) -> tuple[str, list[float]]:
        """Refuse further characters from ``run`` and take what it queued before."""
        with self._lock:
            run.stopped = True
            run.stop.set()
            if run is not self._run:
                return "", []
            chars, probs = self._chars, self._probs
            self._chars, self._probs = [], []
        return "".join(chars), probs


class Generator:
    """Drives the loaded model's session for the UI.

    The UI thread queues context edits with :meth:`queue` the moment the user acts
    (so the transcript and the queued context always agree), and starts a worker
    that calls :meth:`work`. Whichever worker runs next applies every queued edit in
    order, under the session lock, before generating: a run whose worker was
    cancelled before it started still gets its prompt into the context.

    Settings reach it one way: the UI pushes each change with :meth:`apply`, which
    hands it on at once to whoever samples the run in flight (the generation process,
    or this process's sampling loop). Nothing polls for them.

    Whatever changes the model's weights (an adapter read, a reset) holds the run lock,
    as a run does: in a run's worker (the queued "adapt" edit) or under :meth:`exclusive`.
    Each outcome goes to ``on_adapted`` (from the worker's thread).
    """

    def __init__(self, settings: Settings, on_adapted: Callable[[AdaptResult], None] | None = None) -> None:
        self.model: LoadedModel | None = None
        self._on_adapted = on_adapted or (lambda result: None)
        self.buffer = StreamBuffer()
        self._settings = settings  # the latest pushed: the next run starts with them
        self._live: tuple[Run, Callable[[Sampling], None]] | None = None  # the run in flight, its sampler's inbox
        self._live_lock = threading.Lock()  # guards the two above
        self._ops: list[tuple[Any, ...]] = []
        self._ops_lock = threading.Lock()
        self._process: generation_process.GenerationProcess | None = None
        self._process_model: LoadedModel | None = None  # the model it was forked from
        self._forked: tuple[LoadedModel, generation_process.GenerationProcess] | None = None  # by prepare()
        self._process_lock = threading.Lock()  # guards the three above
        self._run_lock = threading.Lock()  # one run at a time, process or not

    def apply(self, settings: Settings) -> None:
        """New settings (UI thread): the run in flight samples with them from its next
        character (mode and seed from the next run), and the next run starts with them."""
        with self._live_lock:
            self._settings = settings
            if self._live is not None and self.model is not None:
                run, inbox = self._live
                inbox(Sampling.of(settings, self.model.info.block_size, run.seed_offset))

    def set_model(self, model: LoadedModel | None) -> None:
        with self._ops_lock:
            self.model, self._ops = model, []

    def prepare(self, model: LoadedModel) -> None:
        """Fork ``model``'s generation process now. Call it from the thread that loaded
        the model, before anything else runs torch on it: a fork copies only the forking
        thread, so a lock that another thread held inside torch at that moment would stay
        held in the child for good. (A run forks by itself when there is no process for
        its model, as after a crash.)"""
        try:
            process = self._fork(model)
        except OSError:
            return  # no fork now (out of memory, say): the first run tries again, and says why
        if process is None:
            return
        with self._process_lock:
            unused, self._forked = self._forked, (model, process)
        if unused is not None:
            unused[1].close()

    @staticmethod
    def _fork(model: LoadedModel) -> "generation_process.GenerationProcess | None":
        """A generation process for ``model``, or None where runs stay in this process:
        where there is no sound fork, or generation runs on several threads (a forked
        child cannot use OpenMP threads; CHARLSTM_THREADS above 1 asks for them). It
        starts with the model's weights as they are now."""
        if not generation_process.available() or generation_threads() != 1:
            return None
        return generation_process.GenerationProcess(model.session.sampler, model.info.block_size,
                                                    weights_version=model.adaptation.version)

    def close(self) -> None:
        """End the generation processes, if any (the app is quitting)."""
        with self._process_lock:
            ends = [self._process, self._forked[1] if self._forked else None]
            self._process, self._forked = None, None
        for process in ends:
            if process is not None:
                process.close()

    def _generation_process(self, model: LoadedModel) -> "generation_process.GenerationProcess | None":
        """The process that samples for ``model``: the one :meth:`prepare` forked, or
        one forked now; None where there is no fork. The caller holds the run lock, so
        the process it replaces has no run in flight."""
        with self._process_lock:
            process = self._process
            if process is not None and self._process_model is model and process.alive:
                return process
            replaced = process
            if self._forked is not None and self._forked[0] is model and self._forked[1].alive:
                process, self._forked = self._forked[1], None
            else:
                process = self._fork(model)
            self._process, self._process_model = process, model
        if replaced is not None:
            replaced.close()
        return process

    # -- queued context edits (UI thread) ------------------------------------------------
    def queue(self, *ops: tuple[Any, ...]) -> None:
        """Append edits: ``("reset",)``, ``("feed", text)``, ``("mark", run)`` (the run
        starts here), ``("rewind", run)`` (back to where ``run`` started),
        ``("rewind_to", pos)`` (back to session position ``pos``: a fork), or
        ``("adapt", run, text, kind, what, on, rate)``: the adapter reads ``text`` (``run``'s
        stop ends the read, its ``reading`` shows the progress), from the '\\n' start or,
        with ``on``, on from the context's end, at ``rate`` (see
        :meth:`~charlstm_tui.adaptation.Adaptation.reader`); ``kind`` and ``what`` name it
        to the UI."""
        with self._ops_lock:
            self._ops.extend(ops)

    def _apply_queued(self, model: LoadedModel) -> None:
        session = model.session
        with self._ops_lock:
            ops, self._ops = self._ops, []
        for op in ops:
            if op[0] == "adapt":
                self._adapt(model, *op[1:])
            elif op[0] == "reset":
                session.reset()
            elif op[0] == "feed":
                session.feed(op[1])
            elif op[0] == "mark":
                op[1].ctx_start = len(session)
            elif op[0] == "rewind" and op[1].ctx_start is not None:
                session.rewind(op[1].ctx_start)
            elif op[0] == "rewind_to":
                session.rewind(op[1])

    def session(self, cancelled: Callable[[], bool]) -> "Session | None":
        """For a worker that reads the session (the inspector): wait for its lock (a run
        streaming holds it) and apply the queued edits, so the session matches the
        screen. Returns the session, locked (the caller releases ``session.lock``), or
        None when ``cancelled()`` turned true while waiting."""
        model = self.model
        if model is None:
            return None
        session = model.session
        with self.exclusive(cancelled) as held:  # an edit may be an adapter read
            if not held:
                return None
            while not session.lock.acquire(timeout=0.05):
                if cancelled():
                    return None
            if cancelled():
                session.lock.release()
                return None
            self._apply_queued(model)
        return session

    @contextlib.contextmanager
    def exclusive(self, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bool]:
        """Hold the run lock for a worker that changes or reads the model's weights
        outside a run (F9's adapter read, a reset): waits for the run in flight to end.
        Yields False, holding nothing, when ``cancelled()`` turned true while waiting.
        Weights changed meanwhile go to the generation process before the lock does."""
        while not self._run_lock.acquire(timeout=0.05):
            if cancelled():
                yield False
                return
        try:
            yield True
        finally:
            try:
                if self.model is not None:
                    self._sync_weights(self.model)
            finally:
                self._run_lock.release()

    def _sync_weights(self, model: LoadedModel) -> None:
        """Send ``model``'s generation process its weights where they changed since it
        last had them, off the next run's path (the caller holds the run lock). A child
        that has died is left for the next run to replace."""
        with self._process_lock:
            found = [(self._process_model, self._process)] + ([self._forked] if self._forked else [])
        adaptation = model.adaptation
        for owner, process in found:
            if owner is model and process is not None and process.alive \
                    and process.weights_version != adaptation.version:
                try:
                    process.load_weights(adaptation.weights(), adaptation.version)
                except generation_process.GenerationError:
                    pass

    def adapted(self, result: AdaptResult) -> None:
        """Tell the UI what a read or a reset did (any thread)."""
        self._on_adapted(result)

    def reset_adaptation(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """The trained weights back (a worker; waits for the run in flight). Returns
        whether they were adapted."""
        model = self.model
        if model is None:
            return False
        with self.exclusive(cancelled) as held:
            if not held or not model.adaptation.reset():
                return False
        self.adapted(AdaptResult("reset", "", 0, 0, None, owner=model.adaptation))
        return True

    def _adapt(self, model: LoadedModel, run: Run, text: str, kind: str, what: str, on: bool, rate: float) -> None:
        """The queued "adapt" edit (the caller holds the run and session locks). Never
        raises: a failure is reported, and the edits after it still apply."""
        session = model.session
        ids, _ = model.vocab.encode_lenient(text)
        if not ids:
            return
        after = None
        if on and len(session.ids):  # the state after the context, and the id it ended with
            after = (session.state_at(len(session)), int(session.ids[-1]))
        run.reading = (0, len(ids))

        def progress(done: int, total: int) -> None:
            run.reading = (done, total)

        def note(message: str) -> None:
            run.note = message

        read, error = 0, None
        try:
            with model.adaptation.reader(after=after, sample=ids, note=note, rate=rate) as adapter:
                before, run.reading_since = adapter.chars_read, time.perf_counter()  # the adapter is ready
                adapter.read(ids, stop=run.stop, progress=progress)
                read = adapter.chars_read - before
        except Exception as e:  # noqa: BLE001  (said in a notice; the run goes on unadapted)
            error = error_text(e)
        run.note = ""
        self.adapted(AdaptResult(kind, what, read, len(ids), model.adaptation.summary(), error=error,
                                 owner=model.adaptation))

    # -- the worker's side ---------------------------------------------------------------
    def work(self, run: Run, cancelled: Callable[[], bool]) -> str:
        """Apply queued edits, then stream ``run`` into the buffer until its length,
        a stop or a cancel. Runs in a worker thread. Returns "done" or "stopped"."""
        model = self.model
        if model is None:
            return "stopped"
        session = model.session
        chars = model.vocab.chars
        push = self.buffer.push
        with self._run_lock, session.lock:
            process = self._generation_process(model)
            self._apply_queued(model)
            if run.stopped or cancelled():
                return "stopped"
            if run.kind == "adapt":
                self._sync_weights(model)  # now, not as the next run starts
                return "done"
            adaptation = model.adaptation
            if process is not None and process.weights_version != adaptation.version:
                process.load_weights(adaptation.weights(), adaptation.version)  # what was adapted since it last ran
            with self._live_lock:
                sampling = Sampling.of(self._settings, model.info.block_size, run.seed_offset)
                latest = Latest(sampling) if process is None else None
                self._live = (run, latest.update if latest is not None else process.update)  # type: ignore[union-attr]
            try:
                if latest is not None:
                    return self._work_here(run, session, latest, cancelled)
                assert process is not None
                chunks = process.generate(session, sampling, lambda: run.stopped or cancelled())
                try:
                    for ids, probs in chunks:
                        if not push(run, "".join([chars[i] for i in ids]), probs):
                            break  # not shown, so not kept: the session ends at the last shown chunk
                finally:
                    chunks.close()  # the session takes back the state where the shown text ends
            finally:
                with self._live_lock:
                    self._live = None
        return "stopped" if run.stopped or cancelled() else "done"

    def _work_here(self, run: Run, session: "Session", latest: Latest, cancelled: Callable[[], bool]) -> str:
        """:meth:`work`'s stream in this thread, where there is no generation process."""
        import torch

        chars = session.vocab.chars
        push = self.buffer.push
        torch.set_num_threads(generation_threads())
        for i, p in session.generate(lambda: latest.sampling.config, run.stop):
            if cancelled() or not push(run, chars[i], (p,)):
                return "stopped"  # not shown, so not kept: the session ends at the last shown char
            delay = latest.sampling.delay
            if delay:
                run.stop.wait(delay)  # the typewriter; wakes at once on a stop
        return "stopped" if run.stopped else "done"

    def stop(self, run: Run) -> tuple[str, list[float]]:
        """Stop ``run`` now; returns the characters it produced before the stop."""
        return self.buffer.stop(run)


# -- the explorer: temperature sweep and scoring ---------------------------------------------

class SweepBuffer(StreamBuffer):
    """A :class:`StreamBuffer` for a temperature sweep: each push is a whole step, one
    character per stream, taken under the one lock. Steps are kept interleaved ("abcd"
    for streams 0..3), so every drain holds the same number of characters per stream and
    a stop falls between two steps, never inside one: the streams stay in lockstep."""

    def push_step(self, run: Run, chars: str, probs: list[float]) -> bool:
        """Queue one step (``chars[i]`` and ``probs[i]`` for stream i); False once ``run``
        may not add any more."""
        with self._lock:
            if run is not self._run or run.stopped:
                return False
            self._chars.append(chars)
            self._probs.extend(probs)
            return True

    @staticmethod
    def split(text: str, probs: list[float], n: int) -> list[tuple[str, list[float]]]:
        """Undo the interleaving of a drain: ``(text, probs)`` for each of ``n`` streams."""
        return [(text[i::n], probs[i::n]) for i in range(n)]


def sweep(model: LoadedModel, prompt_ids: list[int], temperatures: list[float], settings: Settings,
          buffer: SweepBuffer, run: Run, cancelled: Callable[[], bool]) -> str:
    """Stream ``prompt_ids``'s continuation at each temperature into ``buffer`` until
    ``settings.length``, a stop or a cancel. Runs in a worker thread; returns "done" or
    "stopped". One seed, top-k, top-p and mode for all streams: only the temperature differs.

    The streams are the rows of one batch: :meth:`core.sampling.Sampler.stream_ids` does
    one forward pass per step for all of them, with a temperature per row."""
    import torch

    from core.sampling import SampleConfig

    s = settings
    config = SampleConfig(temperature=temperatures[0], top_k=s.top_k, top_p=s.top_p, length=s.length,
                          seed=s.seed, mode=s.mode, block_size=model.info.block_size)
    chars = model.vocab.chars
    torch.set_num_threads(generation_threads())
    steps = model.session.sampler.stream_ids(prompt_ids, config, batch=len(temperatures),
                                             temperatures=temperatures, stop=run.stop)
    for ids, probs in steps:  # (B,), (B, V)
        if cancelled():
            return "stopped"
        chosen = probs.gather(1, ids.unsqueeze(1)).view(-1).tolist()  # (B,) each pick's probability
        if not buffer.push_step(run, "".join([chars[i] for i in ids.tolist()]), chosen):
            return "stopped"
        if s.delay_ms:
            run.stop.wait(s.delay_ms / 1000)  # the typewriter; wakes at once on a stop
    return "stopped" if run.stopped else "done"


def sweep_bits(model: LoadedModel, prompt_ids: list[int], streams: list[str]) -> list[float]:
    """Bits per character of each sweep column's text by the model at temperature 1, read
    after the prompt: one measure for every column (NaN for a column with no text)."""
    from core.score import continuation_surprise

    rows = [model.vocab.encode(text) for text in streams]
    surprise = continuation_surprise(model.session.sampler.model, model.vocab, prompt_ids, rows)
    return [sum(s) / len(s) / math.log(2) if s else math.nan for s in surprise]


def score(model: LoadedModel, text: str) -> tuple["TextScore", str]:
    """``(core.score.TextScore, dropped)``: the model's surprise at each character of
    ``text`` it knows; ``dropped`` lists (once each) the characters it does not know,
    which are left out. Slow for long texts: call it from a worker."""
    from core.errors import VocabError
    from core.score import score_text

    kept, dropped = model.clean(text)
    if not kept:
        raise VocabError("the text has no character the model knows; paste or load another text")
    return score_text(model.session.sampler.model, model.vocab, kept), dropped


def score_adapting(generator: Generator, model: LoadedModel, text: str, *, keep: bool, rate: float,
                   stop: threading.Event,
                   cancelled: Callable[[], bool], chunk: Callable[[str, list[float], list[float], int, int], None],
                   ) -> "tuple[TextScore, TextScore, str, AdaptSummary | None] | None":
    """F9's two readings of ``text`` at once: by the trained weights and adapting as it is
    read (one :class:`~core.adapt.Adapter` read from the '\\n' start, so both by the same
    arithmetic; the adapted one from the weights as they are, adapted or not). What was
    learned stays only with ``keep`` (Adapt on); ``rate``: the adapt rate. Runs in a worker: waits for the run in
    flight to end (the generator's run lock); hands each piece read to ``chunk(text,
    static, adapted, done, total)`` (surprise in nats), and ends early at ``stop``.

    Returns ``(static, adapted, dropped, before)`` over the characters read (all of the
    text's known characters unless stopped; ``before``: how the model was adapted when the
    read began, None for the trained weights), or None when ``cancelled()`` while waiting. Raises
    :class:`core.errors.CharLSTMError` when the model cannot adapt (no gradient
    statistics, and too little text to measure them on)."""
    from core.errors import VocabError
    from core.score import TextScore

    kept, dropped = model.clean(text)
    if not kept:
        raise VocabError("the text has no character the model knows; paste or load another text")
    ids = model.vocab.encode(kept)
    static: list[float] = []
    adapted: list[float] = []
    with generator.exclusive(cancelled) as held:
        if not held:
            return None
        before = model.adaptation.summary()
        with model.adaptation.reader(keep=keep, sample=ids, rate=rate) as adapter:
            piece = adapter.config.segment * 40  # whole segments: the same reading as in one go
            for start in range(0, len(ids), piece):
                if stop.is_set() or cancelled():
                    break
                reading = adapter.read(ids[start:start + piece], stop=stop)
                assert reading.static is not None  # the app's adapter always compares
                static += reading.static
                adapted += reading.surprise
                chunk(kept[start:start + len(reading.surprise)], reading.static, reading.surprise, len(adapted),
                      len(ids))
        generator.adapted(AdaptResult("score", "the scored text", len(adapted), len(ids),
                                      model.adaptation.summary(), kept=keep, owner=model.adaptation))
    done = kept[:len(adapted)]
    return TextScore.of(done, static), TextScore.of(done, adapted), dropped, before


# -- the explorer on the main screen: inspector and ghost text -------------------------------

@dataclass(frozen=True)
class Inspection:
    """The model's view of one character of the context: the distribution it came from."""

    top: list[tuple[int, float]]  # the 10 likeliest (id, p), best first
    entropy_bits: float  # of the whole distribution
    chosen: int | None  # the id actually at that position (None past the end)
    chosen_p: float | None  # its probability in that distribution


def inspect(session: "Session", pos: int, k: int = 10) -> Inspection:
    """What the model predicted for the character after session position ``pos``
    (temperature 1). The state comes from the session's snapshots, so this costs one
    output layer and a softmax, or a forward over at most a snapshot stride of ids.
    The caller holds ``session.lock``."""
    import torch

    probs = session.next_probs(pos)  # (V,)
    p, ids = probs.topk(min(k, probs.numel()))
    entropy = -float((probs * torch.log2(probs.clamp_min(1e-30))).sum())
    at = pos - session.offset
    chosen = session.ids[at] if at < len(session.ids) else None
    return Inspection(list(zip(ids.tolist(), p.tolist())), entropy, chosen,
                      float(probs[chosen]) if chosen is not None else None)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Ghost:
    """The prompt's likely continuation (greedy), kept up to date as the user types.

    Incremental: a session of its own holds the prompt as last seen, then its greedy
    continuation. Typing the character the ghost showed next feeds nothing: the state
    after it is already there, and one greedy step extends the ghost. Typing anything
    else feeds that one id, after a rewind to the snapshot at the longest common prefix
    when an earlier character changed; only then are ``length`` greedy steps run. Runs in
    a worker; :meth:`predict` takes a lock, so a newer request waits for an older one,
    which stops at its next step once cancelled.
    """

    def __init__(self, model: LoadedModel, length: int = 40) -> None:
        from core.session import Session, SnapshotStore

        self.vocab = model.vocab
        self.length = length
        # Its own session on the shared sampler: the fused weights are read-only and
        # each run steps its own buffers, so it may run beside the generation worker.
        self.session = Session(model.session.sampler, snapshots=SnapshotStore(dense=1024, stride=32))
        self.lock = threading.Lock()
        self.fed = 0  # ids fed to the model, ever: typing one character feeds at most one
        self.steps = 0  # greedy steps run, ever
        self._held: list[int] = []  # the session's context: typed ids, then greedy ones
        self._base = 0  # where the greedy part of _held starts
        self._stale = False  # the weights changed: what the session holds is the old model's

    def forget(self) -> None:
        """The model's weights changed (Adapt): the next prediction reads the prompt anew.
        Any thread; takes no lock."""
        self._stale = True

    def predict(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> str | None:
        """The greedy continuation of ``text`` (characters the model lacks are skipped),
        or None when cancelled before it was complete."""
        from core.sampling import SampleConfig

        ids, _ = self.vocab.encode_lenient(text)
        with self.lock:
            if cancelled():
                return None
            if not ids:
                return ""
            session, held = self.session, self._held
            if self._stale:
                self._stale = False
                session.reset()
                held.clear()
                self._base = 0
            keep = common_prefix(held, ids)
            # What the session holds past the prompt is its greedy continuation only if
            # the prompt ends inside the greedy part; otherwise rewind and feed the rest.
            if keep < len(ids) or len(ids) < self._base:
                session.rewind(keep)  # 0: a fresh context
                del held[keep:]
                if len(ids) > keep:
                    session.feed_ids(ids[keep:])
                    self.fed += len(ids) - keep
                    held.extend(ids[keep:])
                self._base = len(ids)
            missing = len(ids) + self.length - len(held)
            if missing > 0:
                for i, _ in session.generate(SampleConfig(temperature=0, length=missing)):
                    if cancelled():
                        return None  # i is not kept: the session drops it too
                    held.append(i)
                    self.steps += 1
            return self.vocab.decode(held[len(ids):len(ids) + self.length])
