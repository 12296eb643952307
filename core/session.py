"""A generation session: one growing context whose LSTM state is carried between runs.

:class:`Sampler` streams a fresh continuation of a prompt. An interactive app needs more:
"continue" must extend the text from the model's *current* state, text the user types
must be appended to that context, and the explorer (issue 6) needs to look back at any
character: the probability it had, and the (h, c) state after it, to fork or rewind
without re-reading the text. ``Session`` keeps exactly that, built on the sampler's
:class:`FusedRun` step and :func:`pick_next`.

Positions: the context is a sequence of ids; position ``p`` means "after the first p
ids". The state at p is kept for every recent p (a ring of ``dense`` slots, filled by
two small copies per character) and every ``stride``-th older one; any other position
is rebuilt from the nearest earlier state by one batched forward over at most
``stride`` ids. Memory stays bounded: the context keeps its last ``max_context`` ids,
and older states are dropped with them.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from .errors import ConfigError
from .model import State
from .sampling import FusedRun, Picker, SampleConfig, Sampler, make_generator

ConfigSource = SampleConfig | Callable[[], SampleConfig]


class SnapshotStore:
    """The state after each position, as one flat vector ``[h | c]`` (2*L*H,).

    The last ``dense`` positions live in a preallocated ring: keeping one is a single
    ``torch.cat(..., out=slot)`` of the run's buffers, about 2 us. The ring is small on
    purpose: at 2x512 a slot is 8 KB, and a 2,048-slot ring (16 MB) written one slot per
    character pushed the model's 13 MB of weights out of the CPU's cache, costing
    generation about 10% (``Session.generate`` vs ``Sampler.stream``); older positions
    are rebuilt from a ``stride`` snapshot in a few ms. Positions that are
    multiples of ``stride``, and up to ``max_pinned`` pinned ones (the end of each fed
    text, where "regenerate" rewinds to), are also kept as clones outside the ring.
    """

    def __init__(self, dense: int = 64, stride: int = 64, max_pinned: int = 256) -> None:
        if dense < 1 or stride < 1:
            raise ConfigError("snapshot window and stride must be >= 1")
        self.dense, self.stride, self.max_pinned = dense, stride, max_pinned
        self._slots: list[torch.Tensor] = []  # views of one (dense, 2*L*H) tensor, made on first use
        self._ring_pos = [-1] * dense  # which position each slot holds (-1: none)
        self._kept: dict[int, torch.Tensor] = {}
        self._pinned: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, pos: int) -> bool:
        return self._ring_pos[pos % self.dense] == pos or pos in self._kept

    def __len__(self) -> int:
        return sum(p >= 0 for p in self._ring_pos) + len(self._kept)

    def put(self, pos: int, h: torch.Tensor, c: torch.Tensor, pin: bool = False) -> None:
        """Keep the state after ``pos``: ``h`` and ``c`` as flat views (copied, so the
        caller's buffers may change afterwards)."""
        if not self._slots:
            with torch.inference_mode(False):
                self._slots = list(torch.empty(self.dense, h.numel() + c.numel()).unbind(0))
        slot = pos % self.dense
        torch.cat((h, c), out=self._slots[slot])
        self._ring_pos[slot] = pos
        if pin:
            self.pin(pos)
        elif pos % self.stride == 0:
            self._kept[pos] = self._slots[slot].clone()

    def pin(self, pos: int) -> None:
        """Keep the state after ``pos`` (stored already) beyond the ring's reach, as a
        rewind point; the oldest of more than ``max_pinned`` such points is let go."""
        flat = self.get(pos)
        if flat is None:
            raise ConfigError(f"no state after position {pos} to keep")
        self._kept[pos] = flat.clone()
        self._pinned[pos] = None
        self._pinned.move_to_end(pos)
        if len(self._pinned) > self.max_pinned:
            old, _ = self._pinned.popitem(last=False)
            if old % self.stride:
                self._kept.pop(old, None)

    def get(self, pos: int) -> torch.Tensor | None:
        """The flat state after ``pos``, or None."""
        slot = pos % self.dense
        if self._ring_pos[slot] == pos:
            return self._slots[slot]
        return self._kept.get(pos)

    def nearest(self, pos: int) -> tuple[int, torch.Tensor] | None:
        """The latest stored position <= ``pos`` and its flat state, or None."""
        found = self.get(pos)
        if found is not None:
            return pos, found
        best = max((p for p in self._ring_pos if 0 <= p <= pos), default=-1)
        best = max(best, max((p for p in self._kept if p <= pos), default=-1))
        return None if best < 0 else (best, self.get(best))  # type: ignore[return-value]

    def drop_after(self, pos: int) -> None:
        """Forget every state past ``pos`` (the text after it was rewound)."""
        self._ring_pos = [p if p <= pos else -1 for p in self._ring_pos]
        for p in [p for p in self._kept if p > pos]:
            del self._kept[p]
            self._pinned.pop(p, None)

    def drop_before(self, pos: int) -> None:
        """Forget every state before ``pos`` (the context was trimmed)."""
        self._ring_pos = [p if p >= pos else -1 for p in self._ring_pos]
        for p in [p for p in self._kept if p < pos]:
            del self._kept[p]
            self._pinned.pop(p, None)

    def clear(self) -> None:
        self._ring_pos = [-1] * self.dense
        self._kept.clear()
        self._pinned.clear()

    def since(self, pos: int) -> dict[int, torch.Tensor]:
        """Every stored state at ``pos`` or later, by position, oldest first."""
        found = {p: self._slots[p % self.dense] for p in self._ring_pos if p >= pos}
        found.update((p, t) for p, t in self._kept.items() if p >= pos)
        return dict(sorted(found.items()))


def to_bytes(t: torch.Tensor) -> bytes:
    """A float32 tensor's values as raw bytes (no numpy needed), to cross a process pipe."""
    out = bytearray(4 * t.numel())
    torch.frombuffer(out, dtype=torch.float32).copy_(t.reshape(-1))
    return bytes(out)


def from_bytes(b: bytes) -> torch.Tensor:
    """The float32 tensor (flat) that :func:`to_bytes` made."""
    return torch.frombuffer(bytearray(b), dtype=torch.float32)


@dataclass(frozen=True)
class Handoff:
    """Where a session's context ends, as plain values (no tensors: it crosses a process
    pipe as it is). Enough for a session elsewhere to generate on from there exactly as
    this one would: :meth:`Session.take_over` starts from it, :meth:`Session.land`
    takes the result back.
    """

    pos: int  # len(session)
    tail: tuple[int, ...]  # the last block_size ids, which window mode re-reads
    from_newline: bool  # the context grew from the lab's '\n' start
    state: bytes | None  # float32 [h | c] (2*L*H,) after pos; None: nothing read yet
    logits: bytes | None  # float32 (V,), the next-char logits after pos


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
        self.snapshots = snapshots if snapshots is not None else SnapshotStore()
        self.lock = threading.Lock()
        fused = sampler.fused
        self._L, self._H = fused.n_layers, fused.hidden
        self.reset()

    # -- the context -------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: an empty context and no state."""
        self.ids = array("l")  # the kept context; ids[0] is at position `offset`
        self.probs = array("f")  # chosen-char probability per kept position (nan = fed)
        self.offset = 0
        self._run: FusedRun | None = None  # the state after the whole context, stepped in place
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

    def feed_ids(self, ids: Sequence[int]) -> None:
        """Append ``ids`` to the context (see :meth:`feed`)."""
        if not ids:
            return
        if len(self) == 0:  # a fresh context starts from the zero state, as Sampler does
            self.snapshots.clear()
            self._from_newline = False
            self._keep(self.sampler.fused.start(self.sampler.zero_state()), 0, pin=True)
            state = None
        else:
            assert self._run is not None
            state = self._run.state()
        self._read(ids, state)

    def _read(self, ids: Sequence[int], state: State | None) -> None:
        """Append ``ids``, priming the state with them from ``state`` (None: zero)."""
        logits, state = self.sampler.prime(list(ids), state=state)  # (1, V), 2 x (L, 1, H)
        self._run, self._logits = self.sampler.fused.start(state), logits
        self.ids.extend(ids)
        self.probs.extend([math.nan] * len(ids))
        self._keep(self._run, len(self), pin=True)
        self._trim()

    def _keep(self, run: FusedRun, pos: int, pin: bool = False) -> None:
        self.snapshots.put(pos, run.h.view(-1), run.c.view(-1), pin)

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
    def _ensure_run(self) -> FusedRun:
        # An empty context starts from '\n' as the lab does; the newline is not part
        # of the context (the app shows nothing for it), but it is the state at 0.
        if self._run is None:
            logits, state = self.sampler.prime([])
            self._run, self._logits = self.sampler.fused.start(state), logits
            self._from_newline = True
            self._keep(self._run, 0, pin=True)
        return self._run

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
        pick = Picker(make_generator(cfg.seed), 1, self.vocab.size)
        window = cfg.mode == "window"
        run = self._ensure_run()
        logits = self._logits
        assert logits is not None
        # This loop is the app's per-character cost, so it keeps to locals. No
        # inference_mode around it (it would be entered and left at each yield): the
        # fused weights and the run's buffers need no autograd.
        h, c = run.h.view(-1), run.c.view(-1)
        put, ids_append, probs_append = self.snapshots.put, self.ids.append, self.probs.append
        pos, n = len(self), 0
        while n < cfg.length:
            if stop is not None and stop.is_set():
                return
            if window:  # the lab's way: re-read the last block from a zero state
                logits = self._window_logits()
            ids, probs = pick(logits, cfg.temperature, cfg.top_k, cfg.top_p)  # (1,), (1, V)
            i = int(ids)
            p = float(probs[0, i])
            yield i, p
            # Resumed: the character is accepted. Step the state past it.
            logits = self._logits = run.step(ids)  # (1, V), the run's own buffer
            ids_append(i)
            probs_append(p)
            pos += 1
            put(pos, h, c)
            if len(self.ids) > self.max_context:
                self._trim()
            n += 1
            cfg = get()

    # -- generating elsewhere (the app's generation process) ------------------------
    def handoff(self) -> Handoff:
        """The end of the context, for :meth:`take_over` in another process."""
        run = self._run
        return Handoff(
            pos=len(self), tail=tuple(self.ids[-self.block_size:]), from_newline=self._from_newline,
            state=None if run is None else to_bytes(torch.cat((run.h.view(-1), run.c.view(-1)))),
            logits=None if self._logits is None else to_bytes(self._logits))

    def take_over(self, end: Handoff) -> None:
        """Become a session whose context ends as ``end`` says (only the tail's ids are
        kept, so positions before it are out of reach), ready to :meth:`generate`."""
        self.reset()
        self.ids.extend(end.tail)
        self.probs.extend([math.nan] * len(end.tail))
        self.offset = end.pos - len(end.tail)
        self._from_newline = end.from_newline
        if end.state is not None and end.logits is not None:
            self._install(end, pin=True)  # where a stop before the first chunk lands

    def append_sampled(self, ids: Sequence[int], probs: Sequence[float]) -> None:
        """Extend the context with characters another session sampled from this one's
        :meth:`handoff`. The state stays behind until :meth:`land` brings it."""
        self.ids.extend(ids)
        self.probs.extend(probs)

    def states_since(self, pos: int) -> dict[int, bytes]:
        """Every stored state at ``pos`` or later, as bytes, for :meth:`land`."""
        return {p: to_bytes(t) for p, t in self.snapshots.since(pos).items()}

    def land(self, end: Handoff, states: dict[int, bytes]) -> None:
        """Take back what another session generated after :meth:`append_sampled` gave
        this one its characters: the state at the end (``end.pos`` must be ``len(self)``)
        and the states it kept on the way, so looking back costs what it would have."""
        if end.pos != len(self):
            raise ConfigError(f"the generated text ends at {end.pos}, the context at {len(self)}")
        L, H = self._L, self._H
        for pos, flat in states.items():
            if self.offset <= pos < end.pos:
                t = from_bytes(flat)
                self.snapshots.put(pos, t[:L * H], t[L * H:])
        self._from_newline = end.from_newline
        if end.state is None or end.logits is None:
            self._run, self._logits = None, None
        else:
            self._install(end)
        self._trim()

    def _install(self, end: Handoff, pin: bool = False) -> None:
        L, H = self._L, self._H
        flat = from_bytes(end.state)  # type: ignore[arg-type]
        h = flat[:L * H].view(1, L, H).transpose(0, 1)  # (L, 1, H)
        self._run = self.sampler.fused.start((h, flat[L * H:].view(L, 1, H)))
        self._logits = from_bytes(end.logits).view(1, -1)  # type: ignore[arg-type]
        self._keep(self._run, end.pos, pin)

    def _window_logits(self) -> torch.Tensor:
        context = self.ids[-self.block_size:].tolist()
        if len(context) < self.block_size and self._from_newline and self.offset == 0 or not context:
            context.insert(0, self.vocab.newline_id)  # the lab's window starts with its '\n'
        with torch.inference_mode():
            logits, _ = self.sampler.model(torch.tensor([context]))  # (1, T, V)
        return logits[:, -1].float()

    # -- looking back --------------------------------------------------------------
    def state_at(self, pos: int) -> State:
        """The LSTM state ``(h, c)``, each (L, 1, H), after the first ``pos`` positions.

        Taken from a snapshot when there is one; otherwise rebuilt from the nearest
        earlier snapshot by one batched forward over the ids in between.
        """
        if not self.offset <= pos <= len(self):
            raise ConfigError(f"position {pos} is outside the kept context ({self.offset}..{len(self)})")
        found = self.snapshots.nearest(pos)
        if found is None:
            raise ConfigError(f"no saved state at or before position {pos}; it is too far back")
        start, flat = found
        L, H = self._L, self._H
        h = flat[:L * H].view(1, L, H).transpose(0, 1).contiguous()  # (L, 1, H)
        state = (h, flat[L * H:].view(L, 1, H).clone())
        if start == pos:
            return state
        between = self.ids[start - self.offset:pos - self.offset].tolist()
        _, state = self.sampler.prime(between, state=state)
        return state

    def next_probs(self, pos: int, temperature: float = 1.0) -> torch.Tensor:
        """The model's distribution (V,) over the character after position ``pos``."""
        fused = self.sampler.fused
        h_top = self.state_at(pos)[0][-1]  # (1, H)
        with torch.inference_mode():
            logits = torch.addmm(fused.b_fc, h_top, fused.w_fc)[0]
            return torch.softmax(logits / temperature if temperature > 0 else logits, -1)

    def rewind(self, pos: int) -> None:
        """Cut the context back to position ``pos``; generation goes on from there."""
        if pos == len(self):
            return
        if pos == 0:
            self.reset()
            return
        state = self.state_at(pos)
        keep = pos - self.offset
        del self.ids[keep:]
        del self.probs[keep:]
        self.snapshots.drop_after(pos)
        self._restart(state, pin=True)

    def rebuild_end(self) -> None:
        """Recompute the state after the whole context from the nearest stored one: for
        a session whose characters came by :meth:`append_sampled` but whose state did
        not come back (the process generating them died)."""
        try:
            state = self.state_at(len(self))
        except ConfigError:
            # No state here at all: the context began empty, so the other process began
            # it from the lab's '\n' start, as generate does. Read it again from there.
            ids, probs = self.ids.tolist(), self.probs
            self.reset()
            self._read(ids, self._ensure_run().state())
            self.probs = probs
            return
        self._restart(state)
        self._trim()

    def _restart(self, state: State, pin: bool = False) -> None:
        """Carry on from ``state``, the state after the whole context."""
        fused = self.sampler.fused
        self._run = fused.start(state)
        self._logits = torch.addmm(fused.b_fc, state[0][-1], fused.w_fc)  # (1, V)
        self._keep(self._run, len(self), pin=pin)
