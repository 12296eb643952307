"""Sampling: one character at a time, from a carried (h, c) state or the lab's window.

``stateful`` mode (default) primes the LSTM state with the prompt once, then runs a
hand-fused cell step per character: O(1) per character. ``window`` mode is the lab's:
each character re-feeds the last ``block_size`` characters from a zero state, so it
costs O(block_size) per character. Both share :func:`pick_next`, so with the same seed
and a window that covers the whole text they produce the same characters.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import torch
from torch.nn import functional as F

from .errors import ConfigError
from .model import LMNet, State

LayerStates = list[tuple[torch.Tensor, torch.Tensor]]  # one (h, c) of (B, H) per layer
from .vocab import CharVocab

MODES = ("stateful", "window")
MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class SampleConfig:
    """Sampling controls. ``temperature`` 0 is greedy; ``top_k``/``top_p`` None are off."""

    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    length: int = 500
    seed: int | None = None
    mode: str = "stateful"
    block_size: int = 256  # the window of ``window`` mode

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be a number >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top-k must be >= 1 (or unset), got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be in (0, 1] (or unset), got {self.top_p}")
        if not 0 <= self.length <= MAX_LENGTH:
            raise ConfigError(f"length must be between 0 and {MAX_LENGTH:,}, got {self.length}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
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

    ``temperature`` is a float, or a (B,) tensor with one per stream (rows at 0 are greedy).
    Returns ``(ids (B,), probs (B, V))``: ``probs`` is the distribution sampled from
    (for greedy, the plain softmax). This runs once per character, so the common case
    (one float temperature, no top-k/top-p) is a handful of tensor ops.
    """
    per_row = isinstance(temperature, torch.Tensor)
    if not per_row:
        if temperature == 0:
            return logits.argmax(-1), F.softmax(logits, -1)
        scaled = logits * (1.0 / temperature)
    else:
        # Rows at temperature 0 are scaled by 1 here and taken by argmax below.
        scaled = logits / torch.where(temperature > 0, temperature, 1.0).unsqueeze(-1).to(logits.dtype)
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
        ids = torch.where(temperature == 0, logits.argmax(-1), ids)
    return ids, probs


class FusedLSTM:
    """Inference-only LSTM step with the weights rearranged for one character at a time.

    Why it is fast: a 1x512 step is bound by reading W_hh (4 MB of fp32) from cache.
    - Layer 0's input projection is folded into a (V, 4H) table, embedding @ W_ih^T + biases,
      so its input side is a row lookup, not a matmul.
    - Gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g) and the recurrent
      matmul is split into two column halves run as one ``baddbmm`` of batch 2: BLAS spreads
      a batch over threads, where a single (1, H) x (H, 4H) product runs on one core.
      Result halves: [i | f] and [o | g].
    """

    def __init__(self, model: LMNet) -> None:
        cfg = model.config
        self.n_layers, self.hidden = cfg.n_layers, cfg.n_embd
        H = self.hidden
        order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])

        def halves(w_t: torch.Tensor) -> torch.Tensor:  # (K, 4H) -> (2, K, 2H)
            return w_t.reshape(w_t.size(0), 2, 2 * H).permute(1, 0, 2).contiguous()

        with torch.no_grad():
            p = {name: t.detach().float() for name, t in model.lstm.named_parameters()}
            emb = model.token_embedding.weight.detach().float()
            table = emb @ p["weight_ih_l0"].T + p["bias_ih_l0"] + p["bias_hh_l0"]  # (V, 4H)
            self.table0 = table[:, order].reshape(-1, 2, 2 * H).contiguous()  # (V, 2, 2H)
            self.w_hh0 = halves(p["weight_hh_l0"][order].T)  # (2, H, 2H)
            # Upper layers: one product over [x, h] @ [W_ih; W_hh]^T.
            self.w_upper = [halves(torch.cat([p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"]], 1)[order].T)
                            for l in range(1, self.n_layers)]  # each (2, 2H, 2H)
            self.b_upper = [(p[f"bias_ih_l{l}"] + p[f"bias_hh_l{l}"])[order].reshape(2, 1, 2 * H).contiguous()
                            for l in range(1, self.n_layers)]  # each (2, 1, 2H)
            self.w_fc = model.fc.weight.detach().float().T.contiguous()  # (H, V)
            self.b_fc = model.fc.bias.detach().float().contiguous()

    def _cell(self, gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gates (2, B, 2H) as [i | f], [o | g]; c (B, H) -> new (h, c).

        Few, large ops on purpose: at this size each op costs ~1-2 us of dispatch."""
        i_f, o_g = gates.unbind(0)
        i, f = i_f.sigmoid().chunk(2, -1)
        o, g = o_g.chunk(2, -1)
        c = torch.addcmul(f * c, i, g.tanh())
        return o.sigmoid() * c.tanh(), c

    def step(self, ids: torch.Tensor, state: LayerStates) -> tuple[torch.Tensor, LayerStates]:
        """Feed ids (B,) with one (h, c) pair of (B, H) per layer; return logits (B, V)
        and the new per-layer states. Use :meth:`to_layers` / :meth:`from_layers` to
        convert from and to nn.LSTM's (L, B, H) state."""
        B = ids.size(0)
        h0, c0 = state[0]
        x_gates = self.table0.index_select(0, ids).transpose(0, 1)  # (2, B, 2H)
        h, c = self._cell(torch.baddbmm(x_gates, h0.expand(2, B, -1), self.w_hh0), c0)
        new_state = [(h, c)]
        for l in range(1, self.n_layers):
            xh = torch.cat([h, state[l][0]], 1).expand(2, B, -1)  # (2, B, 2H)
            h, c = self._cell(torch.baddbmm(self.b_upper[l - 1], xh, self.w_upper[l - 1]), state[l][1])
            new_state.append((h, c))
        return torch.addmm(self.b_fc, h, self.w_fc), new_state

    @staticmethod
    def to_layers(state: State) -> LayerStates:
        return list(zip(state[0].unbind(0), state[1].unbind(0)))

    @staticmethod
    def from_layers(layers: LayerStates) -> State:
        return torch.stack([h for h, _ in layers]), torch.stack([c for _, c in layers])


class Sampler:
    """A model and its vocabulary, ready to generate. Cheap to keep; not thread-safe."""

    def __init__(self, model: LMNet, vocab: CharVocab) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.fused = FusedLSTM(model)

    # -- state ---------------------------------------------------------------
    def zero_state(self, batch: int = 1) -> State:
        L, H = self.fused.n_layers, self.fused.hidden
        return torch.zeros(L, batch, H), torch.zeros(L, batch, H)

    @torch.inference_mode()
    def prime(self, ids: Sequence[int], state: State | None = None, batch: int = 1) -> tuple[torch.Tensor, State]:
        """Run ``ids`` through the LSTM (one batched call) and return the last logits (B, V)
        and the state after them. With no ids, primes from '\\n' as the lab does."""
        if not ids and state is None:
            ids = [self.vocab.newline_id]
        if not ids:
            raise ValueError("priming an existing state needs at least one id")
        x = torch.tensor([list(ids)] * batch, dtype=torch.long)
        if state is None:
            state = self.zero_state(batch)
        logits, state = self.model(x, state)
        return logits[:, -1].float(), state

    # -- generation ----------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        """Strict: raises VocabError naming characters the model does not know."""
        return self.vocab.encode(prompt)

    def stream(self, prompt: str, config: SampleConfig, stop: threading.Event | None = None) -> Iterator[str]:
        """Yield generated characters one at a time (the prompt itself is not yielded)."""
        chars = self.vocab.chars
        for ids, _ in self.stream_ids(self.encode_prompt(prompt), config, batch=1, stop=stop):
            yield chars[ids.item()]

    @torch.inference_mode()
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
        gen = make_generator(config.seed)
        temp: float | torch.Tensor = config.temperature
        if temperatures is not None:
            if len(temperatures) != batch:
                raise ConfigError(f"{len(temperatures)} temperatures given for {batch} streams")
            temp = torch.tensor([float(t) for t in temperatures])
        if config.mode == "window":
            yield from self._window(list(prompt_ids), config, batch, temp, gen, stop)
            return
        logits, state = self.prime(prompt_ids, batch=batch)
        layers = self.fused.to_layers(state)
        step = self.fused.step
        for _ in range(config.length):
            if stop is not None and stop.is_set():
                return
            ids, probs = pick_next(logits, temp, config.top_k, config.top_p, gen)
            yield ids, probs
            logits, layers = step(ids, layers)

    def _window(self, context: list[int], config: SampleConfig, batch: int, temp, gen, stop) -> Iterator:
        ctx = torch.tensor([context or [self.vocab.newline_id]] * batch, dtype=torch.long)  # (B, T)
        for _ in range(config.length):
            if stop is not None and stop.is_set():
                return
            logits, _ = self.model(ctx[:, -config.block_size:])  # re-read the window from a zero state
            ids, probs = pick_next(logits[:, -1].float(), temp, config.top_k, config.top_p, gen)
            yield ids, probs
            ctx = torch.cat([ctx, ids.unsqueeze(1)], 1)

    def generate(self, prompt: str, config: SampleConfig) -> str:
        """The whole continuation as one string."""
        return "".join(self.stream(prompt, config))

    def generate_batch(self, prompt: str, config: SampleConfig, n: int) -> list[str]:
        """``n`` independent samples of the same prompt, sampled in one batched pass."""
        rows: list[list[int]] = [[] for _ in range(n)]
        for ids, _ in self.stream_ids(self.encode_prompt(prompt), config, batch=n):
            for row, i in zip(rows, ids.tolist()):
                row.append(i)
        return [self.vocab.decode(r) for r in rows]
