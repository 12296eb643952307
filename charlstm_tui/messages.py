"""Messages from background workers to the UI.

Workers run in threads; they never touch widgets. They post one of these (posting
is thread-safe) and the handler runs on the UI thread. Streamed characters do not
travel as messages: they go through :class:`charlstm_tui.bridge.StreamBuffer`, which the
UI drains once per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from core.train import Progress

    from core.score import TextScore

    from .adaptation import AdaptResult
    from .bridge import Inspection, LoadedModel, Run
    from .card import ModelCard
    from .screens.train import Job, Plan, TextInfo


@dataclass
class ModelLoaded(Message):
    """A checkpoint was read and its model is ready to generate."""

    model: "LoadedModel"


@dataclass
class ModelFailed(Message):
    """A checkpoint could not be loaded; ``error`` is one line naming the fix."""

    path: Path
    error: str


@dataclass
class GenerationEnded(Message):
    """A run's worker finished: ``reason`` is "done", "stopped" or "error"."""

    run: "Run"
    reason: str
    error: str | None = None


@dataclass
class Adapted(Message):
    """The adapter read a text into the model, or the trained weights came back (Adapt)."""

    result: "AdaptResult"


# -- the Train screen ---------------------------------------------------------------------

@dataclass
class TrainTextChecked(Message):
    """A training text was read and a recipe fitted to it (``info``, ``plan``), or it
    could not be used (``error``, one line). ``request`` tells stale answers apart."""

    request: int
    path: Path
    info: "TextInfo | None"
    plan: "Plan | None"
    error: str | None = None


@dataclass
class TrainingProgress(Message):
    """The app's training run moved on. ``steps`` holds every ``(step, loss)`` since the
    last message (steps arrive in batches, about ten a second); ``event`` is the latest
    :class:`core.train.Progress` ("step", "eval" or "done")."""

    steps: list[tuple[int, float]]
    event: "Progress"


@dataclass
class TrainingEnded(Message):
    """The training worker finished: ``done`` is the trainer's last event (its ``path`` is
    the best checkpoint, None when nothing was saved), or ``error`` says what went wrong."""

    job: "Job"
    done: "Progress | None"
    error: str | None = None


# -- the explorer screens: score, training view ----------------------------------------------

@dataclass
class TextLoaded(Message):
    """A text file for the Score screen was read (``text``), or could not be (``error``)."""

    path: Path
    text: str | None
    error: str | None = None


@dataclass
class TextScored(Message):
    """The Score screen's worker finished: ``score`` (the trained weights') and ``adapted``
    (adapting as it read, from weights adapted on ``adapted_from`` characters before;
    None where the model could not adapt, ``note`` says why) for
    the characters the model knows and read (fewer when ``stopped``), ``dropped`` the
    ones it does not (left out), or ``error``. ``request`` tells stale answers apart."""

    request: int
    score: "TextScore | None"
    dropped: str = ""
    error: str | None = None
    adapted: "TextScore | None" = None
    stopped: bool = False
    note: str = ""
    adapted_from: int = 0  # characters the model had adapted on before it read this text (0: trained weights)


@dataclass
class ScoreRead(Message):
    """The Score screen's worker read a piece of the text: its characters and their
    surprise (nats) by the trained weights and adapting; ``done`` of ``total`` so far."""

    request: int
    text: str
    static: list[float]
    adapted: list[float]
    done: int
    total: int


@dataclass
class SweepMeasured(Message):
    """The sweep's columns, measured once it ended: bits/char of each column's text at
    temperature 1 (``bits``), or ``error``. ``run`` tells stale answers apart."""

    run: "Run"
    bits: list[float]
    error: str | None = None


@dataclass
class CardRead(Message):
    """The Training view read a checkpoint file's card, or could not (``error``)."""

    request: int
    path: Path
    card: "ModelCard | None"
    error: str | None = None


# -- the explorer on the main screen: inspector, ghost text ------------------------------------

@dataclass
class Inspected(Message):
    """The inspector's worker read the model's distribution at transcript position
    ``pos`` (``inspection``), or could not (``error``). ``request`` tells stale answers apart."""

    request: int
    pos: int
    inspection: "Inspection | None"
    error: str | None = None


@dataclass
class GhostReady(Message):
    """The ghost-text worker's greedy continuation ``ghost`` of the prompt ``text``."""

    text: str
    ghost: str
