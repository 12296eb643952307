"""Adapt: the loaded model learns the user's text as it reads it (dynamic evaluation,
:mod:`core.adapt`), for the app.

One :class:`Adaptation` per loaded model. Its :class:`~core.adapt.Adapter` is made on the
first read (its gradient statistics found or measured then, see
:func:`core.adapt_stats.stats_for`; it holds about 3.3x the weights), and always scores
with the trained weights alongside, so the status line can say what adapting gained.

Where the adapted weights go. The adapter changes the loaded model's weights in place, and
this process's sampler takes them up after each read (``Sampler.refresh``): the main
session, the ghost text, the inspector, the sweep and F9 all read that model. The
generation process was forked with the weights as they were and holds its own copy
(copy-on-write); each change bumps :attr:`Adaptation.version`, and the generator sends the
child the weights before its next run when its version is behind
(:meth:`~charlstm_tui.generation_process.GenerationProcess.load_weights`).

Who may change them when: every read and reset runs under the generator's run lock
(:meth:`~charlstm_tui.bridge.Generator.exclusive`, or inside a run's worker), so no run
samples, in this process or the child, while the weights change. Nothing here imports
Textual; torch only once a read starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

if TYPE_CHECKING:
    import torch

    from core.adapt import Adapter, AdaptConfig
    from core.model import State

    from .bridge import LoadedModel

LN2 = math.log(2)


@dataclass(frozen=True)
class AdaptSummary:
    """What the status line says of an adapted model."""

    chars: int  # characters learned from since the trained weights
    gain: float | None  # bits/char adapting saved on them, against the trained weights (None: not measured)

    def forms(self) -> tuple[str, ...]:
        """The status line's words, longest first: it shows the longest that fits."""
        from .widgets.status import human

        if self.gain is None:
            return (f"adapted on {self.chars:,} chars", f"adapted {human(self.chars)}", "adapted")
        gain = f"{-self.gain:+.2f}".replace("-", "−") + " bits/char"
        return (f"adapted on {self.chars:,} chars: {gain}", f"adapted {human(self.chars)}: {gain}",
                f"adapted {-self.gain:+.2f}".replace("-", "−"), "adapted")


@dataclass(frozen=True)
class AdaptResult:
    """One read into the adapter (or a reset), for the UI: ``kind`` is "prompt", "file",
    "score" or "reset"; ``read`` of ``total`` characters were read (fewer: stopped);
    ``summary`` is the model's state after it (None: not adapted)."""

    kind: str
    what: str  # the prompt, a file's name, the scored text
    read: int
    total: int
    summary: AdaptSummary | None
    kept: bool = True  # False: a trial (F9 with Adapt off), nothing stayed
    error: str | None = None
    owner: "Adaptation | None" = field(default=None, compare=False)  # whose: a model replaced meanwhile is not the UI's

    @property
    def stopped(self) -> bool:
        return self.error is None and self.read < self.total


class Adaptation:
    """The loaded model's adapter and the version of its weights. Not thread-safe: the
    caller holds the generator's run lock (see the module's docstring)."""

    def __init__(self, model: "LoadedModel", config: "AdaptConfig | None" = None) -> None:
        self.model = model
        self.config = config
        self.adapter: "Adapter | None" = None
        self.version = 0  # bumped with each change of the model's weights

    def summary(self) -> AdaptSummary | None:
        """The adapted state now, or None while the weights are the trained ones."""
        a = self.adapter
        if a is None or not a.adapted:
            return None
        return AdaptSummary(a.chars_read, a.gain / LN2 if a.gain is not None else None)

    @contextlib.contextmanager
    def reader(self, *, keep: bool = True, after: "tuple[State, int] | None" = None, sample: Sequence[int] = (),
               note: Callable[[str], None] | None = None, rate: float = 1.0) -> Iterator["Adapter"]:
        """The adapter, ready to read a new text: from the '\\n' start, or on from ``after``
        (the state after a context that ended with that id). With ``keep`` False nothing read
        in the block stays. ``sample``: ids to measure the gradient statistics on when the
        checkpoint has none (see :func:`core.adapt_stats.stats_for`; ``note`` is told first).
        ``rate``: the step size, as a multiple of the settings' (the app's "adapt rate").
        Raises :class:`core.errors.CharLSTMError` when there is nothing to adapt with."""
        from core.adapt import AdaptConfig

        adapter = self._adapter(sample, note)
        base = self.config or AdaptConfig()
        if adapter.config.step != base.step * rate:
            adapter.configure(dataclasses.replace(base, step=base.step * rate))
        if after is None:
            adapter.restart()
        else:
            adapter.restart(*after)
        before = adapter.chars_read
        try:
            with contextlib.nullcontext() if keep else adapter.trial():
                yield adapter
        finally:
            if keep and adapter.chars_read != before:
                self._changed()

    def reset(self) -> bool:
        """The trained weights back; False when they were not adapted."""
        if self.adapter is None or not self.adapter.adapted:
            return False
        self.adapter.reset()
        self._changed()
        return True

    def weights(self) -> "dict[str, torch.Tensor]":
        """The model's weights as they are now, by name (for the generation process)."""
        return dict(self.model.session.sampler.model.named_parameters())

    def _changed(self) -> None:
        self.model.session.sampler.refresh()
        self.version += 1

    def _adapter(self, sample: Sequence[int], note: Callable[[str], None] | None) -> "Adapter":
        if self.adapter is None:
            from core.adapt import AdaptConfig, Adapter
            from core.adapt_stats import stats_for

            m = self.model
            model = m.session.sampler.model
            # Found by the weights' digest: they are the trained ones here, before any read.
            stats = stats_for(model, m.checkpoint, m.info.path, list(sample), note=note)
            self.adapter = Adapter(model, stats, self.config or AdaptConfig(), start_id=m.vocab.newline_id,
                                   compare=True)
        return self.adapter
