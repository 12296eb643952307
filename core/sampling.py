"""Sampling: one character at a time, from a carried (h, c) state or the lab's window.

``stateful`` mode (default) primes the LSTM state with the prompt once, then runs a
hand-fused cell step per character: O(1) per character. ``window`` mode is the lab's:
each character re-feeds the last ``block_size`` characters from a zero state, so it
costs O(block_size) per character. Both share :func:`pick_next`, so with the same seed
and a window that covers the whole text they produce the same characters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import torch
from torch.nn import functional as F

from .errors import ConfigError
from .model import LMNet, State
from .options import LENGTH, MODE, SAMPLING, SEED, TEMPERATURE, TOP_K, TOP_P
from .table_lstm import gate_order
from .vocab import CharVocab

LayerStates = list[tuple[torch.Tensor, torch.Tensor]]  # one (h, c) of (B, H) per layer

# Below this a temperature is greedy: 1/T would overflow fp32 once it scales the logits
# (1e-40 gave all-NaN probabilities), and any such T already puts all mass on the argmax.
GREEDY_BELOW = 1e-20


@dataclass(frozen=True)
class SampleConfig:
    """Sampling controls, each checked against its :mod:`core.options` range.
    ``temperature`` 0 is greedy; ``top_k``/``top_p`` None are off; ``seed`` None is random."""

    temperature: float = TEMPERATURE.default
    top_k: int | None = TOP_K.default
    top_p: float | None = TOP_P.default
    length: int = LENGTH.default
    seed: int | None = SEED.default
    mode: str = MODE.default
    block_size: int = 256  # the window of ``window`` mode

    def __post_init__(self) -> None:
        for option in SAMPLING:
            option.check(getattr(self, option.name))
        if self.block_size < 1:
            raise ConfigError(f"block size must be >= 1, got {self.block_size}")

    def with_(self, **changes: object) -> "SampleConfig":
        return replace(self, **changes)  # type: ignore[arg-type]


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU RNG: seeded for reproducible text, else from OS entropy."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def pick_next(
    logits: torch.Tensor,
    temperature: float | torch.Tensor,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the next id for each row of ``logits`` (B, V).

    ``temperature`` is a float, or a (B,) tensor with one per stream; 0 (or anything below
    ``GREEDY_BELOW``) is greedy.
    Returns ``(ids (B,), probs (B, V))``: ``probs`` is the distribution sampled from
    (for greedy, the plain softmax). This runs once per character, so the common case
    (one float temperature, no top-k/top-p) is a handful of tensor ops.
    """
    per_row = isinstance(temperature, torch.Tensor)
    if not per_row:
        if temperature < GREEDY_BELOW:
            return logits.argmax(-1), F.softmax(logits, -1)
        scaled = logits * (1.0 / temperature)
    else:
        # Greedy rows are scaled by 1 here and taken by argmax below.
        greedy = temperature < GREEDY_BELOW
        scaled = logits / torch.where(greedy, 1.0, temperature).unsqueeze(-1).to(logits.dtype)
    if top_k is not None and top_k < scaled.size(-1):
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = F.softmax(scaled, -1)
    if top_p is not None and top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        # Drop a candidate once the ones above it already reach top_p (keeps >= 1).
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        probs = probs.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    # Inverse-CDF sampling: a few small ops, about 2x cheaper than torch.multinomial here.
    # side="right" never picks a zero-probability id; the clamp covers a cdf that
    # rounds to just under 1.
    u = torch.rand(probs.size(0), 1, generator=generator)
    ids = torch.searchsorted(probs.cumsum(-1), u, right=True).view(-1).clamp_max_(probs.size(-1) - 1)
    if per_row:
        ids = torch.where(greedy, logits.argmax(-1), ids)
    return ids, probs


class Picker:
    """:func:`pick_next` for a generation loop: the same choices, bit for bit, from the
    same generator, with the common case (one temperature above greedy, no top-k or
    top-p) in five in-place ops on buffers allocated once. At 1x512 the recurrent step
    costs ~60 us, so pick_next's ~16 us of allocating ops was a fifth of each character.

    The ``probs`` returned are overwritten by the next call; read them before it.
    """

    def __init__(self, generator: torch.Generator, batch: int, vocab_size: int) -> None:
        self.generator = generator
        self.vocab_size = vocab_size
        with torch.inference_mode(False):  # plain tensors, updatable in place anywhere
            self._inv_t = torch.zeros(())  # 1/temperature, as pick_next's float32 scalar
            self._scaled = torch.empty(batch, vocab_size)
            self._probs = torch.empty(batch, vocab_size)
            # The cdf's first V-1 bounds only: searching them lands on V-1 exactly where
            # pick_next's search over all V lands on V and is clamped (u at or past a total
            # that rounds below 1), so the ids are the same with no clamp.
            self._bounds = torch.empty(batch, vocab_size - 1)
            self._u = torch.empty(batch, 1)
            self._ids = torch.empty(batch, 1, dtype=torch.long)
        self._head = self._probs[:, :-1]
        self._ids_flat = self._ids.view(-1)
        self._temperature: float | None = None

    def __call__(self, logits: torch.Tensor, temperature: float | torch.Tensor, top_k: int | None,
                 top_p: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids (B,), probs (B, V))`` for ``logits`` (B, V), as :func:`pick_next`."""
        if (isinstance(temperature, torch.Tensor) or temperature < GREEDY_BELOW
                or (top_k is not None and top_k < self.vocab_size) or (top_p is not None and top_p < 1.0)):
            return pick_next(logits, temperature, top_k, top_p, self.generator)
        if temperature != self._temperature:
            self._temperature = temperature
            self._inv_t.fill_(1.0 / temperature)
        torch.mul(logits, self._inv_t, out=self._scaled)
        torch.softmax(self._scaled, -1, out=self._probs)
        torch.cumsum(self._head, -1, out=self._bounds)
        self._u.uniform_(generator=self.generator)  # what torch.rand(B, 1) draws
        torch.searchsorted(self._bounds, self._u, right=True, out=self._ids)
        return self._ids_flat, self._probs


class FusedLSTM:
    """Inference-only LSTM weights, rearranged for one character at a time.

    Why it is fast: a 1x512 step is bound by reading W_hh (4 MB of fp32) from cache.
    - Layer 0's input projection is folded into a (V, 4H) table, embedding @ W_ih^T + biases,
      so its input side is a row lookup, not a matmul.
    - Gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g) and the recurrent
      matmul is split into two column halves run as one ``baddbmm`` of batch 2: BLAS spreads
      a batch over threads, where a single (1, H) x (H, 4H) product runs on one core.
      Result halves: [i | f] and [o | g].
    The arithmetic is nn.LSTM's in fp32; only the summation order of the matmuls differs.
    :meth:`start` returns a :class:`FusedRun` that does the steps.
    """

    def __init__(self, model: LMNet) -> None:
        cfg = model.config
        self.n_layers, self.hidden = cfg.n_layers, cfg.n_embd
        self.refresh(model)

    def refresh(self, model: LMNet) -> None:
        """Rearrange ``model``'s weights anew, after they changed in place (an
        :class:`~core.adapt.Adapter` read a text): runs already started use them from
        their next step."""
        H = self.hidden
        order = gate_order(H)

        def halves(w_t: torch.Tensor) -> torch.Tensor:  # (K, 4H) -> (2, K, 2H)
            return w_t.reshape(w_t.size(0), 2, 2 * H).permute(1, 0, 2).contiguous()

        with torch.no_grad():
            p = {name: t.detach().float() for name, t in model.lstm.named_parameters()}
            emb = model.token_embedding.weight.detach().float()
            table = emb @ p["weight_ih_l0"].T + p["bias_ih_l0"] + p["bias_hh_l0"]  # (V, 4H)
            self.table0 = table[:, order].reshape(-1, 2, 2 * H).transpose(0, 1).contiguous()  # (2, V, 2H)
            self.w_hh0 = halves(p["weight_hh_l0"][order].T)  # (2, H, 2H)
            # Upper layers: one product over [x, h] @ [W_ih; W_hh]^T.
            self.w_upper = [halves(torch.cat([p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"]], 1)[order].T)
                            for l in range(1, self.n_layers)]  # each (2, 2H, 2H)
            self.b_upper = [(p[f"bias_ih_l{l}"] + p[f"bias_hh_l{l}"])[order].reshape(2, 1, 2 * H).contiguous()
                            for l in range(1, self.n_layers)]  # each (2, 1, 2H)
            self.w_fc = model.fc.weight.detach().float().T.contiguous()  # (H, V)
            self.b_fc = model.fc.bias.detach().float().contiguous()

    def start(self, state: State) -> "FusedRun":
        """A run that continues from nn.LSTM's state ``(h, c)``, each (L, B, H)."""
        return FusedRun(self, state)

    def step(self, ids: torch.Tensor, state: LayerStates) -> tuple[torch.Tensor, LayerStates]:
        """One step as a pure function: feed ids (B,) with one (h, c) pair of (B, H) per
        layer; return logits (B, V) and the new per-layer states. Generation loops use
        :meth:`start` instead, which reuses its buffers from step to step."""
        run = self.start(self.from_layers(state))
        logits = run.step(ids)
        return logits, self.to_layers(run.state())

    @staticmethod
    def to_layers(state: State) -> LayerStates:
        return list(zip(state[0].unbind(0), state[1].unbind(0)))

    @staticmethod
    def from_layers(layers: LayerStates) -> State:
        return torch.stack([h for h, _ in layers]), torch.stack([c for _, c in layers])


class FusedRun:
    """The recurrent state of B streams, stepped in place.

    At this size each tensor op costs ~1-2 us of dispatch, as much as its arithmetic, so
    the step writes into buffers allocated once, through views made once: no op here
    only slices, chunks or allocates. The h of all layers share one (B, L*H) buffer
    [h_0 | h_1 | ...], so layer l's input [h_{l-1} (new), h_l (old)] is a plain slice of it.
    Not thread-safe; the logits returned by :meth:`step` are overwritten by the next step.
    """

    def __init__(self, fused: FusedLSTM, state: State) -> None:
        self.f = fused
        L, H = fused.n_layers, fused.hidden
        B = state[0].size(1)
        # Plain tensors even under inference_mode, so they can be updated in place anywhere.
        with torch.inference_mode(False):
            self.h = state[0].float().transpose(0, 1).reshape(B, L * H).clone()  # (B, L*H)
            self.c = state[1].float().clone()  # (L, B, H)
            self.logits = torch.empty(B, fused.b_fc.numel())  # (B, V)
            self.gates = torch.empty(2, B, 2 * H)  # pre-activations, halves [i | f], [o | g]
            self.act = torch.empty(2, B, 2 * H)  # their sigmoids (the g quarter unused)
            self.g = torch.empty(B, H)  # tanh of the g pre-activation
            self.tanh_c = torch.empty(B, H)
        # Views made once; they follow the buffers' contents.
        self.i, self.f_gate, self.o = self.act[0, :, :H], self.act[0, :, H:], self.act[1, :, :H]
        self.g_pre = self.gates[1, :, H:]
        self.h_layer = [self.h[:, l * H:(l + 1) * H] for l in range(L)]  # each (B, H)
        self.c_layer = list(self.c.unbind(0))  # each (B, H)
        self.h_in = [self.h_layer[0].expand(2, B, H)] + [  # each layer's matmul input
            self.h[:, (l - 1) * H:(l + 1) * H].expand(2, B, 2 * H) for l in range(1, L)]

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ids (B,) and return the next logits (B, V)."""
        f = self.f
        torch.index_select(f.table0, 1, ids, out=self.gates)  # layer 0 input side: a lookup
        self.gates.baddbmm_(self.h_in[0], f.w_hh0)
        self._cell(0)
        for l in range(1, f.n_layers):
            torch.baddbmm(f.b_upper[l - 1], self.h_in[l], f.w_upper[l - 1], out=self.gates)
            self._cell(l)
        return torch.addmm(f.b_fc, self.h_layer[-1], f.w_fc, out=self.logits)

    def _cell(self, l: int) -> None:
        """c = f*c + i*g; h = o*tanh(c), from the pre-activations in ``self.gates``."""
        torch.sigmoid(self.gates, out=self.act)  # one op for i, f and o
        torch.tanh(self.g_pre, out=self.g)
        c = self.c_layer[l]
        c.mul_(self.f_gate).addcmul_(self.i, self.g)
        torch.tanh(c, out=self.tanh_c)
        torch.mul(self.o, self.tanh_c, out=self.h_layer[l])

    def state(self) -> State:
        """A copy of the state as nn.LSTM's (h, c), each (L, B, H)."""
        L, H = self.f.n_layers, self.f.hidden
        return self.h.view(-1, L, H).transpose(0, 1).contiguous(), self.c.clone()


class Sampler:
    """A model and its vocabulary, ready to generate. Cheap to keep; not thread-safe."""

    def __init__(self, model: LMNet, vocab: CharVocab) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.fused = FusedLSTM(model)

    def refresh(self) -> None:
        """Take up the model's weights after they changed in place (see :class:`~core.adapt.Adapter`)."""
        self.fused.refresh(self.model)

    # -- state ---------------------------------------------------------------
    def zero_state(self, batch: int = 1) -> State:
        L, H = self.fused.n_layers, self.fused.hidden
        return torch.zeros(L, batch, H), torch.zeros(L, batch, H)

    @torch.inference_mode()
    def prime(self, ids: Sequence[int], state: State | None = None, batch: int = 1) -> tuple[torch.Tensor, State]:
        """Run ``ids`` through the LSTM (one batched call) and return the last logits (B, V)
        and the state after them. With no ids, primes from '\\n' as the lab does.

        ``batch`` streams that share the prompt (and ``state``, of batch 1) read it once:
        the result is expanded to B rows, so 64 samples of a long prompt cost what one does.
        """
        if not ids and state is None:
            ids = [self.vocab.newline_id]
        if not ids:
            raise ValueError("priming an existing state needs at least one id")
        x = torch.tensor([list(ids)], dtype=torch.long)  # (1, T)
        if state is None:
            state = self.zero_state(1)
        logits, (h, c) = self.model(x, state)
        logits = logits[:, -1].float()  # (1, V)
        if batch > 1:  # views: whoever steps the streams copies them into its own buffers
            logits = logits.expand(batch, -1)
            h, c = h.expand(-1, batch, -1), c.expand(-1, batch, -1)
        return logits, (h, c)

    # -- generation ----------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        """Strict: raises VocabError naming characters the model does not know."""
        return self.vocab.encode(prompt)

    def stream(self, prompt: str, config: SampleConfig, stop: threading.Event | None = None) -> Iterator[str]:
        """Yield generated characters one at a time (the prompt itself is not yielded)."""
        chars = self.vocab.chars
        for ids, _ in self._steps(self.encode_prompt(prompt), config, batch=1, stop=stop):
            yield chars[ids.item()]

    def stream_ids(
        self,
        prompt_ids: Sequence[int],
        config: SampleConfig,
        batch: int = 1,
        temperatures: Sequence[float] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(ids (B,), probs (B, V))`` per step for ``batch`` independent streams
        that share a prompt; one forward pass per step covers all of them.
        ``temperatures`` (one per stream) overrides ``config.temperature``."""
        for ids, probs in self._steps(prompt_ids, config, batch, temperatures, stop):
            yield ids.clone(), probs.clone()  # the loop's buffers change at the next step

    def _steps(self, prompt_ids: Sequence[int], config: SampleConfig, batch: int = 1,
               temperatures: Sequence[float] | None = None, stop: threading.Event | None = None,
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`stream_ids` yielding its buffers, for callers done with them by the next step."""
        if batch < 1:
            raise ConfigError(f"need at least one stream, got batch={batch}")
        gen = make_generator(config.seed)
        temp: float | torch.Tensor = config.temperature
        if temperatures is not None:
            if len(temperatures) != batch:
                raise ConfigError(f"{len(temperatures)} temperatures given for {batch} streams")
            for t in temperatures:
                config.with_(temperature=t)  # the same range check as one temperature
            temp = torch.tensor([float(t) for t in temperatures])
        if config.mode == "window":
            yield from self._window(list(prompt_ids), config, batch, temp, gen, stop)
            return
        logits, state = self.prime(prompt_ids, batch=batch)
        # No inference_mode around this loop: it would be entered and left at every
        # yield (~2 us), and the fused weights are plain tensors that need no autograd.
        run = self.fused.start(state)
        pick = Picker(gen, batch, self.vocab.size)
        for _ in range(config.length):
            if stop is not None and stop.is_set():
                return
            ids, probs = pick(logits, temp, config.top_k, config.top_p)
            yield ids, probs
            logits = run.step(ids)

    def _window(self, context: list[int], config: SampleConfig, batch: int, temp, gen, stop) -> Iterator:
        T = config.block_size
        ctx = torch.tensor([(context or [self.vocab.newline_id])[-T:]] * batch, dtype=torch.long)  # (B, <=T)
        pick = Picker(gen, batch, self.vocab.size)
        for _ in range(config.length):
            if stop is not None and stop.is_set():
                return
            with torch.inference_mode():
                logits, _ = self.model(ctx)  # re-read the window from a zero state
            ids, probs = pick(logits[:, -1].float(), temp, config.top_k, config.top_p)
            yield ids, probs
            ctx = torch.cat([ctx, ids.unsqueeze(1)], 1)[:, -T:]  # keep only the window: O(T) memory

    def generate(self, prompt: str, config: SampleConfig) -> str:
        """The whole continuation as one string."""
        return "".join(self.stream(prompt, config))

    def generate_batch(self, prompt: str, config: SampleConfig, n: int) -> list[str]:
        """``n`` independent samples of the same prompt, sampled in one batched pass."""
        rows: list[list[int]] = [[] for _ in range(n)]
        for ids, _ in self._steps(self.encode_prompt(prompt), config, batch=n):
            for row, i in zip(rows, ids.tolist()):
                row.append(i)
        return [self.vocab.decode(r) for r in rows]
