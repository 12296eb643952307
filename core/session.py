"""A generation session: one growing context whose LSTM state is carried between runs.

:class:`Sampler` streams a fresh continuation of a prompt. An interactive app needs more:
"continue" must extend the text from the model's *current* state, text the user types
must be appended to that context, and the explorer (issue 6) needs to look back at any
character: the probability it had, and the (h, c) state after it, to fork or rewind
without re-reading the text. ``Session`` keeps exactly that, built on the sampler's
fused step and :func:`pick_next`.

Positions: the context is a sequence of ids; position ``p`` means "after the first p
ids". The state at position p is kept for every recent p (a dense window) and every
``stride``-th older one; any other position is rebuilt from the nearest earlier state
by one batched forward over at most ``stride`` ids. Memory stays bounded: the context
keeps its last ``max_context`` ids, and older states are dropped with them.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import OrderedDict
from typing import Callable, Iterator, Sequence

import torch

from .errors import ConfigError
from .sampling import LayerStates, SampleConfig, Sampler, make_generator, pick_next

ConfigSource = SampleConfig | Callable[[], SampleConfig]


class SnapshotStore:
    """The per-layer (h, c) after each position, bounded.

    Stores references to the step's own tensors (the fused step allocates new ones each
    time), so keeping a snapshot costs no copy. The last ``dense`` positions are all
    kept; older ones survive only at multiples of ``stride`` or when ``pinned`` (the end
    of each fed text, where "regenerate" rewinds to).
    """

    def __init__(self, dense: int = 2048, stride: int = 64, max_pinned: int = 256) -> None:
        if dense < 1 or stride < 1:
            raise ConfigError("snapshot window and stride must be >= 1")
        self.dense, self.stride, self.max_pinned = dense, stride, max_pinned
        self._states: dict[int, LayerStates] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()  # dense window, oldest first
        self._pinned: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, pos: int) -> bool:
        return pos in self._states

    def put(self, pos: int, layers: LayerStates, pin: bool = False) -> None:
        self._states[pos] = layers
        self._recent[pos] = None
        self._recent.move_to_end(pos)
        if pin:
            self._pinned[pos] = None
            self._pinned.move_to_end(pos)
            if len(self._pinned) > self.max_pinned:
                old, _ = self._pinned.popitem(last=False)
                self._maybe_drop(old)
        while len(self._recent) > self.dense:
            old, _ = self._recent.popitem(last=False)
            self._maybe_drop(old)

    def _maybe_drop(self, pos: int) -> None:
        if pos % self.stride and pos not in self._pinned and pos not in self._recent:
            self._states.pop(pos, None)

    def nearest(self, pos: int) -> tuple[int, LayerStates] | None:
        """The latest stored position <= ``pos`` and its state, or None."""
        if pos in self._states:
            return pos, self._states[pos]
        best = max((p for p in self._states if p <= pos), default=None)
        return None if best is None else (best, self._states[best])

    def drop_after(self, pos: int) -> None:
        """Forget every state past ``pos`` (the text after it was rewound)."""
        for p in [p for p in self._states if p > pos]:
            del self._states[p]
            self._recent.pop(p, None)
            self._pinned.pop(p, None)

    def drop_before(self, pos: int) -> None:
        """Forget every state before ``pos`` (the context was trimmed)."""
        for p in [p for p in self._states if p < pos]:
            del self._states[p]
            self._recent.pop(p, None)
            self._pinned.pop(p, None)

    def clear(self) -> None:
        self._states.clear()
        self._recent.clear()
        self._pinned.clear()


class Session:
    """A context of ids, the LSTM state after it, and per-character history.

    Not thread-safe by itself: a caller that drives it from a worker thread holds
    :attr:`lock` for the whole run (the app's generation worker does).

    Per position the session keeps the probability that the chosen character had when
    it was sampled (``nan`` for text that was fed, not sampled), in :attr:`probs`.
    """

    def __init__(self, sampler: Sampler, block_size: int = 256, max_context: int = 200_000,
                 snapshots: SnapshotStore | None = None) -> None:
        if max_context < 1:
            raise ConfigError(f"max_context must be >= 1, got {max_context}")
        self.sampler = sampler
        self.vocab = sampler.vocab
        self.block_size = block_size
        self.max_context = max_context
        self.snapshots = snapshots or SnapshotStore()
        self.lock = threading.Lock()
        self._fc_w, self._fc_b = sampler.fused.w_fc, sampler.fused.b_fc
        self.reset()

    # -- the context -------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: an empty context and no state."""
        self.ids = array("l")  # the kept context; ids[0] is at position `offset`
        self.probs = array("f")  # chosen-char probability per kept position (nan = fed)
        self.offset = 0
        self._layers: LayerStates | None = None  # state after the whole context
        self._logits: torch.Tensor | None = None  # (1, V) next-char logits after it
        self._from_newline = False  # the context grew from the lab's '\n' start, not from text
        self.snapshots.clear()

    def __len__(self) -> int:
        """Position of the end of the context (counts trimmed ids too)."""
        return self.offset + len(self.ids)

    @property
    def text(self) -> str:
        """The kept context as text."""
        return self.vocab.decode(self.ids.tolist())

    def feed(self, text: str) -> str:
        """Append ``text`` to the context, priming the state with it in one batched call.

        Characters the vocabulary lacks are dropped; returns them (distinct, in order),
        so the caller can say which. The end of the text is pinned as a rewind point.
        """
        ids, dropped = self.vocab.encode_lenient(text)
        self.feed_ids(ids)
        return dropped

    @torch.inference_mode()
    def feed_ids(self, ids: Sequence[int]) -> None:
        """Append ``ids`` to the context (see :meth:`feed`)."""
        if not ids:
            return
        if len(self) == 0:  # a fresh context starts from the zero state, as Sampler does
            self._from_newline = False
            self.snapshots.clear()
            self.snapshots.put(0, self.sampler.fused.to_layers(self.sampler.zero_state()), pin=True)
            state = None
        else:
            state = self.sampler.fused.from_layers(self._layers)  # type: ignore[arg-type]
        logits, state = self.sampler.prime(list(ids), state=state)  # (1, V), 2 x (L, 1, H)
        self._layers, self._logits = self.sampler.fused.to_layers(state), logits
        self.ids.extend(ids)
        self.probs.extend([math.nan] * len(ids))
        self.snapshots.put(len(self), self._layers, pin=True)
        self._trim()

    def _trim(self) -> None:
        # Drop old context in chunks, so trimming costs O(1) amortised per id.
        excess = len(self.ids) - self.max_context
        if excess > 0:
            excess = max(excess, self.max_context // 8)
            del self.ids[:excess]
            del self.probs[:excess]
            self.offset += excess
            self.snapshots.drop_before(self.offset)

    # -- generation --------------------------------------------------------------
    def _ensure_logits(self) -> torch.Tensor:
        # An empty context starts from '\n' as the lab does; the newline is not part
        # of the context (the app shows nothing for it), but it is the state at 0.
        if self._logits is None:
            logits, state = self.sampler.prime([])
            self._layers, self._logits = self.sampler.fused.to_layers(state), logits
            self._from_newline = True
            self.snapshots.put(0, self._layers, pin=True)
        return self._logits

    @torch.inference_mode()
    def generate(self, config: ConfigSource, stop: threading.Event | None = None) -> Iterator[tuple[int, float]]:
        """Yield ``(id, prob)`` per sampled character, extending the context.

        ``config`` is a :class:`SampleConfig` or a function returning one, re-read every
        step, so temperature, top-k, top-p and length can change while it streams
        (mode and seed are read once). A yielded character joins the context when the
        consumer asks for the next one: breaking out of the loop leaves the last
        yielded character out, so a consumer that could not show it just stops.
        """
        get = config if callable(config) else (lambda: config)
        cfg = get()
        gen = make_generator(cfg.seed)
        window = cfg.mode == "window"
        step = self.sampler.fused.step
        logits = self._ensure_logits()
        layers = self._layers
        assert layers is not None
        n = 0
        while n < cfg.length:
            if stop is not None and stop.is_set():
                return
            if window:  # the lab's way: re-read the last block from a zero state
                logits = self._window_logits()
            ids, probs = pick_next(logits, cfg.temperature, cfg.top_k, cfg.top_p, gen)  # (1,), (1, V)
            i = int(ids)
            p = float(probs[0, i])
            yield i, p
            # Resumed: the character is accepted. Step the state past it.
            logits, layers = step(ids, layers)  # (1, V), per-layer (1, H) pairs
            self._layers, self._logits = layers, logits
            self.ids.append(i)
            self.probs.append(p)
            self.snapshots.put(len(self), layers)
            if len(self.ids) > self.max_context:
                self._trim()
            n += 1
            cfg = get()

    def _window_logits(self) -> torch.Tensor:
        context = self.ids[-self.block_size:].tolist()
        if len(context) < self.block_size and self._from_newline and self.offset == 0 or not context:
            context.insert(0, self.vocab.newline_id)  # the lab's window starts with its '\n'

        logits, _ = self.sampler.model(torch.tensor([context]))  # (1, T, V)
        return logits[:, -1].float()

    # -- looking back --------------------------------------------------------------
    @torch.inference_mode()
    def state_at(self, pos: int) -> LayerStates:
        """The per-layer (h, c) after the first ``pos`` positions.

        Taken from a snapshot when there is one; otherwise rebuilt from the nearest
        earlier snapshot by one batched forward over the ids in between.
        """
        if not self.offset <= pos <= len(self):
            raise ConfigError(f"position {pos} is outside the kept context ({self.offset}..{len(self)})")
        found = self.snapshots.nearest(pos)
        if found is None:
            raise ConfigError(f"no saved state at or before position {pos}; it is too far back")
        start, layers = found
        if start == pos:
            return layers
        between = self.ids[start - self.offset:pos - self.offset].tolist()
        _, state = self.sampler.prime(between, state=self.sampler.fused.from_layers(layers))
        return self.sampler.fused.to_layers(state)

    @torch.inference_mode()
    def next_probs(self, pos: int, temperature: float = 1.0) -> torch.Tensor:
        """The model's distribution (V,) over the character after position ``pos``."""
        h_top = self.state_at(pos)[-1][0]  # (1, H)
        logits = torch.addmm(self._fc_b, h_top, self._fc_w)[0]
        return torch.softmax(logits / temperature if temperature > 0 else logits, -1)

    def rewind(self, pos: int) -> None:
        """Cut the context back to position ``pos``; generation goes on from there."""
        if pos == len(self):
            return
        if pos == 0:
            self.reset()
            return
        layers = self.state_at(pos)
        keep = pos - self.offset
        del self.ids[keep:]
        del self.probs[keep:]
        self.snapshots.drop_after(pos)
        self.snapshots.put(pos, layers, pin=True)
        self._layers = layers
        self._logits = torch.addmm(self._fc_b, layers[-1][0], self._fc_w)
