"""Dynamic evaluation: the model learns a text as it reads it.

Krause et al., "Dynamic Evaluation of Neural Sequence Models" (ICML 2018, arXiv 1709.07432).
An :class:`Adapter` reads a text in segments of ``segment`` characters. Each segment is first
scored with the weights as they are, so no character is ever scored by weights that have seen
it; then the weights take one step on that segment's loss:

    w <- w + decay * r (w0 - w)  -  step * grad / (rms + eps)

``rms`` is the root mean square of such one-segment gradients, measured once per checkpoint
(:class:`GradStats`), so every weight moves by about ``step`` whatever its gradient's scale.
``r = rms / mean(rms)`` (at most ``1 / decay``) pulls each weight back toward its trained
value w0 in proportion to how much it moves: what was learned fades, so the adaptation is a
short-term memory held in the weights, and :meth:`Adapter.reset` brings w0 back exactly.

Speed: one character costs two (1, H) x (H, 4H) products per layer (forward and backward), each
reading W_hh (4 MB of fp32 at H=512) from cache. Everything else is batched over the segment:
the input projections, the output layer, the backward's elementwise derivatives (so a time step
is a few small ops), and each weight's step, one GEMM added straight into the weight (rms is
kept factored, so dividing by it scales the GEMM's few input rows): no gradient is ever held.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from .errors import ConfigError
from .model import LMNet, State

# A weight's gradient, given as a sum of outer products over a segment's (T, B) positions:
# grad = sum_tb u[t, b]^T v[t, b], with u (T, B, n) and v (T, B, m); v None means a bias, sum_tb u.
GradSink = Callable[[str, torch.Tensor, "torch.Tensor | None"], None]


@dataclass(frozen=True)
class AdaptConfig:
    """How an :class:`Adapter` learns: ``segment`` characters per step, the step size
    (about how far each weight moves per step) and the decay toward the trained weights
    per step (0: no forgetting)."""

    # Tuned on a 2x512 Tiny Shakespeare model (the bundled one's parent), on the first 20k
    # val characters; over the whole split the bundled model reads 1.2393 nats/char (static 1.3901).
    segment: int = 25
    step: float = 1.4e-4
    decay: float = 0.001

    def __post_init__(self) -> None:
        if not (isinstance(self.segment, int) and self.segment >= 1):
            raise ConfigError(f"adapt segment must be a whole number of characters >= 1, got {self.segment}")
        if not (math.isfinite(self.step) and self.step >= 0):
            raise ConfigError(f"adapt step must be a number >= 0 (0: no adaptation), got {self.step}")
        if not (math.isfinite(self.decay) and 0 <= self.decay <= 1):
            raise ConfigError(f"adapt decay must be in [0, 1] (0: no forgetting), got {self.decay}")


class _Net:
    """An :class:`LMNet`'s forward and backward over one segment, by hand, from a given state.

    The arithmetic is nn.LSTM's in fp32, gates in its (i, f, g, o) order; tensors are time
    major, (T, B, ...), so a time step is a contiguous slice. The weights are the model's own
    parameters: an update in place is what the model (and anything reading it) sees.
    """

    def __init__(self, model: LMNet, params: dict[str, torch.Tensor] | None = None) -> None:
        """``params``: other tensors of the same names and shapes to run on (default: the model's)."""
        self.L, self.H, self.V = model.config.n_layers, model.config.n_embd, model.config.vocab_size
        self.params = params if params is not None else dict(model.named_parameters())
        self.tape: dict | None = None

    def forward(self, x: torch.Tensor, y: torch.Tensor, state: State, keep: bool) -> tuple[torch.Tensor, State]:
        """Read inputs x (T, B) from ``state`` (h, c), each (L, B, H); return the surprise
        -ln p(y) (T, B) and the state after. ``keep`` saves what :meth:`backward` needs."""
        p, H = self.params, self.H
        T, B = x.shape
        inp = F.embedding(x, p["token_embedding.weight"])  # (T, B, H)
        tape = {"x": x, "y": y, "layers": []} if keep else None
        h_out, c_out = [], []
        for l in range(self.L):
            bias = p[f"lstm.bias_ih_l{l}"] + p[f"lstm.bias_hh_l{l}"]
            gates = torch.addmm(bias, inp.reshape(T * B, H), p[f"lstm.weight_ih_l{l}"].t()).view(T, B, 4 * H)
            w_t = p[f"lstm.weight_hh_l{l}"].t()  # (H, 4H)
            hs, cs, tanh_cs = gates.new_empty(T + 1, B, H), gates.new_empty(T + 1, B, H), gates.new_empty(T, B, H)
            hs[0], cs[0] = state[0][l], state[1][l]
            # Gate slices for every step, made once: (i, f) | g | o, and the cell's inputs.
            g_if, g_g, g_o = gates[..., :2 * H].unbind(0), gates[..., 2 * H:3 * H].unbind(0), gates[..., 3 * H:].unbind(0)
            g_i, g_f = gates[..., :H].unbind(0), gates[..., H:2 * H].unbind(0)
            gl, hl, cl, tl = gates.unbind(0), hs.unbind(0), cs.unbind(0), tanh_cs.unbind(0)
            for t in range(T):
                gl[t].addmm_(hl[t], w_t)  # pre-activations, in place of the input side
                g_if[t].sigmoid_()
                g_g[t].tanh_()
                g_o[t].sigmoid_()
                torch.mul(g_f[t], cl[t], out=cl[t + 1]).addcmul_(g_i[t], g_g[t])  # c = f c + i g
                torch.tanh(cl[t + 1], out=tl[t])
                torch.mul(g_o[t], tl[t], out=hl[t + 1])  # h = o tanh(c)
            if tape is not None:
                tape["layers"].append((inp, hs, cs, gates, tanh_cs))
            inp = hs[1:]
            h_out.append(hs[T])
            c_out.append(cs[T])
        logits = torch.addmm(p["fc.bias"], inp.reshape(T * B, H), p["fc.weight"].t())  # (T*B, V)
        if tape is not None:
            tape["top"], tape["logits"] = inp, logits
            self.tape = tape
        nll = F.cross_entropy(logits, y.reshape(-1), reduction="none").view(T, B)
        return nll, (torch.stack(h_out), torch.stack(c_out))

    def backward(self, scale: float, sink: GradSink) -> None:
        """The gradient of ``scale * sum(surprise)`` over the kept segment, handed to ``sink``
        one weight at a time, each once the backward no longer reads that weight (so the sink
        may update it in place). The state the segment started from gets no gradient."""
        tape, self.tape = self.tape, None
        assert tape is not None, "backward needs a forward with keep=True"
        p, H = self.params, self.H
        x, y, top = tape["x"], tape["y"], tape["top"]
        T, B = x.shape
        dlogits = torch.softmax(tape["logits"], -1)  # (T*B, V)
        dlogits[torch.arange(T * B), y.reshape(-1)] -= 1
        dlogits.mul_(scale)
        dy = torch.mm(dlogits, p["fc.weight"]).view(T, B, H)  # before fc.weight may change
        dlogits = dlogits.view(T, B, self.V)
        sink("fc.weight", dlogits, top)
        sink("fc.bias", dlogits, None)
        for l in range(self.L - 1, -1, -1):
            inp, hs, cs, acts, tanh_cs = tape["layers"][l]
            dgates = self._recurrence_backward(dy, p[f"lstm.weight_hh_l{l}"], cs, acts, tanh_cs)
            dy = torch.mm(dgates.view(T * B, 4 * H), p[f"lstm.weight_ih_l{l}"]).view(T, B, H)  # to the input
            sink(f"lstm.weight_hh_l{l}", dgates, hs[:-1])
            sink(f"lstm.weight_ih_l{l}", dgates, inp)
            sink(f"lstm.bias_ih_l{l}", dgates, None)
            sink(f"lstm.bias_hh_l{l}", dgates, None)
        sink("token_embedding.weight", F.one_hot(x, self.V).to(dy.dtype), dy)

    @staticmethod
    def _recurrence_backward(dy: torch.Tensor, w_hh: torch.Tensor, cs: torch.Tensor, acts: torch.Tensor,
                             tanh_cs: torch.Tensor) -> torch.Tensor:
        """d pre-activations (T, B, 4H) of one layer from d outputs dy (T, B, H)."""
        T, B, H = dy.shape
        i, f, g, o = acts.split(H, -1)
        # Everything that does not depend on the gradient flowing back, for all steps at once.
        dh_to_dc = o * (1 - tanh_cs * tanh_cs)  # (T, B, H)
        dact = acts - acts * acts  # sigmoid' = s (1 - s) for i, f, o ...
        dact[..., 2 * H:3 * H] = 1 - g * g  # ... and tanh' = 1 - g^2 for g
        dc_to_ifg = torch.cat([g, cs[:-1], i], -1).view(T, B, 3, H)  # d(i, f, g) = dc * (g, c_prev, i)
        dgates = torch.empty_like(acts)
        d_ifg = dgates[..., :3 * H].unflatten(-1, (3, H)).unbind(0)
        d_o, dl = dgates[..., 3 * H:].unbind(0), dgates.unbind(0)
        dh, dc = dy[T - 1].clone(), dy.new_zeros(B, H)
        for t in range(T - 1, -1, -1):
            dc.addcmul_(dh_to_dc[t], dh)
            torch.mul(dc_to_ifg[t], dc.unsqueeze(1), out=d_ifg[t])
            torch.mul(dh, tanh_cs[t], out=d_o[t])
            dl[t].mul_(dact[t])
            dc.mul_(f[t])
            if t:
                torch.addmm(dy[t - 1], dl[t], w_hh, out=dh)  # to h_{t-1}, plus its own output's gradient
        return dgates


@dataclass
class GradStats:
    """How large one-segment gradients are, per weight, at one checkpoint's weights: what
    :class:`Adapter` divides its steps by.

    Stored factored, as Adafactor stores second moments (Shazeer and Stern, 2018): for a
    matrix, the mean square of its gradient summed along each row and along each column
    (n + m numbers, not n * m); a bias keeps one per element. A matrix's mean squares are
    then taken as rows x cols / total, which adapts as well as the full ones (measured on
    the bundled model) at a thousandth of the size, so they fit in any checkpoint.
    """

    rows: dict[str, torch.Tensor]  # parameter name -> (n,): sums along rows (or per element, for a bias)
    cols: dict[str, torch.Tensor]  # matrix name -> (m,): sums along columns
    segment: int  # the segment length the gradients were taken over
    chars: int  # how many characters they were measured on
    source: str  # where those characters came from, for people

    def factors(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A matrix's root mean square gradient as an outer product, rms[i, j] = a[i] * b[j]:
        returns (a, b); for a bias, (rms, None)."""
        rows = self.rows[name]
        if name not in self.cols:
            return rows.sqrt(), None
        return (rows / rows.sum().clamp_min(1e-30)).sqrt(), self.cols[name].sqrt()

    def mean_rms(self) -> float:
        """The mean root mean square gradient over every weight of the model."""
        total, count = 0.0, 0
        for name in self.rows:
            a, b = self.factors(name)
            total += float(a.sum() * (b.sum() if b is not None else 1))
            count += a.numel() * (b.numel() if b is not None else 1)
        return total / count

    def to_dict(self) -> dict:
        """Tensors and primitives only, as a checkpoint holds them."""
        return {"rows": dict(self.rows), "cols": dict(self.cols), "segment": self.segment, "chars": self.chars,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: object) -> "GradStats":
        """Raises ConfigError for anything that is not what :meth:`to_dict` wrote."""
        try:
            assert isinstance(d, dict)
            rows, cols = d["rows"], d["cols"]
            assert isinstance(rows, dict) and isinstance(cols, dict)
            assert all(isinstance(t, torch.Tensor) and t.dim() == 1 and t.is_floating_point()
                       for t in [*rows.values(), *cols.values()])
            stats = cls({k: v.float() for k, v in rows.items()}, {k: v.float() for k, v in cols.items()},
                        int(d["segment"]), int(d["chars"]), str(d["source"]))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise ConfigError("malformed gradient statistics; they will be measured anew") from None
        if stats.segment < 1 or not all(bool(torch.isfinite(t).all() and (t >= 0).all())
                                        for t in [*stats.rows.values(), *stats.cols.values()]):
            raise ConfigError("malformed gradient statistics; they will be measured anew")
        return stats

    def fits(self, model: LMNet) -> bool:
        """Whether these statistics are shaped for ``model``'s weights."""
        for name, p in model.named_parameters():
            if name not in self.rows or self.rows[name].shape != p.shape[:1]:
                return False
            if p.dim() == 2 and (name not in self.cols or self.cols[name].shape != p.shape[1:]):
                return False
        return True


@torch.no_grad()
def measure_stats(model: LMNet, ids: Sequence[int] | torch.Tensor, segment: int = AdaptConfig.segment,
                  max_chars: int = 8_192, streams: int = 16, source: str = "") -> GradStats:
    """Measure :class:`GradStats` on up to ``max_chars`` characters of ``ids``: ``streams``
    evenly spaced stretches, read side by side in segments, the state carried, each
    segment's gradient taken alone (as the adapter takes it) and squared."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if len(ids) < 2:
        raise ConfigError("gradient statistics need a text of at least 2 characters")
    net = _Net(model)
    streams = max(1, min(streams, (len(ids) - 1) // segment))
    gap = (len(ids) - 1) // streams  # stretches start this far apart
    span = min(gap, max(segment, max_chars // streams))
    stretches = torch.stack([ids[k * gap: k * gap + span + 1] for k in range(streams)])  # (B, span + 1)
    row_sq = {n: torch.zeros(p.size(0)) for n, p in net.params.items()}
    col_sq = {n: torch.zeros(p.size(1)) for n, p in net.params.items() if p.dim() == 2}

    def add_squares(name: str, u: torch.Tensor, v: torch.Tensor | None) -> None:
        # Stream b's gradient is g = U^T V, with U = u[:, b] (T, n) and V = v[:, b] (T, m). Its
        # squares summed along rows are diag(g g^T) = diag(U^T (V V^T) U): T x T products,
        # so g itself (n x m, per stream) is never formed.
        if v is None:
            row_sq[name].add_(u.sum(0).square().sum(0))
            return
        u, v = u.transpose(0, 1), v.transpose(0, 1)  # (B, T, n), (B, T, m)
        row_sq[name].add_((torch.bmm(torch.bmm(v, v.transpose(1, 2)), u) * u).sum((0, 1)))
        col_sq[name].add_((torch.bmm(torch.bmm(u, u.transpose(1, 2)), v) * v).sum((0, 1)))

    L, H = net.L, net.H
    state = (torch.zeros(L, streams, H), torch.zeros(L, streams, H))
    count = 0.0
    for start in range(0, span, segment):
        y = stretches[:, start + 1: start + segment + 1].t()  # (T, B)
        x = stretches[:, start: start + y.size(0)].t()
        _, state = net.forward(x, y, state, keep=True)
        net.backward(1.0 / segment, add_squares)
        count += streams * y.size(0) / segment  # a short last segment counts for its share
    return GradStats({n: s / count for n, s in row_sq.items()}, {n: s / count for n, s in col_sq.items()},
                     segment, streams * span, source)


@dataclass
class Reading:
    """What one :meth:`Adapter.read` saw: per-character surprise, -ln p in nats."""

    surprise: list[float]  # from the weights before each segment's step
    static: list[float] | None = None  # from the trained weights, where the adapter compares


class Adapter:
    """Reads texts into an :class:`LMNet`'s weights (dynamic evaluation).

    The weights are the model's own, changed in place: whatever reads the model after a
    :meth:`read` sees the adapted weights (a :class:`~core.sampling.Sampler` after its
    ``refresh()``). The adapter keeps its own recurrent state, so successive reads continue
    one text. With ``compare``, every read is also scored with the trained weights (from a
    state of their own, about a third more work), for the gain adapting brings.

    Not thread-safe, and nothing else may use the model while it reads; a read can be
    stopped between segments. Extra memory: the trained weights (to decay toward and reset
    to) and one scratch matrix the size of the largest weight: about 1.25x the weights.
    """

    def __init__(self, model: LMNet, stats: GradStats, config: AdaptConfig = AdaptConfig(), start_id: int = 0,
                 compare: bool = False) -> None:
        if not stats.fits(model):
            raise ConfigError("the gradient statistics do not fit this model; measure them anew")
        self.model = model.eval()
        self.net = _Net(model)
        self.stats = stats
        self.start_id = start_id  # what the first character is predicted from (the lab's '\n')
        self.compare = compare
        with torch.no_grad():
            self.trained = {n: p.detach().clone() for n, p in self.net.params.items()}
        self._static_net = _Net(model, self.trained)
        # Scratch for one weight's decay rates (the largest weight's size) and a bias's gradient.
        self._rates = torch.empty(max(p.numel() for p in self.trained.values()))
        self._bias_grad = torch.empty(max(p.numel() for p in self.trained.values() if p.dim() == 1))
        self._plan: dict[str, tuple[torch.Tensor, ...]] = {}
        self.configure(config)
        self.reset()

    def configure(self, config: AdaptConfig) -> None:
        """Use these settings from the next segment on (what was learned stays)."""
        # A segment's gradient is mostly noise, so its rms goes as 1 / sqrt(length): rescaled
        # so, statistics measured on one segment length serve any (the best step then stays
        # about the same: 2.1e-4, 2e-4 and 2.5e-4 for segments of 25, 50 and 100, bundled model).
        scale = math.sqrt(self.stats.segment / config.segment)
        mean = self.stats.mean_rms() * scale
        self.config = config
        for name in self.trained:
            # Per weight: the step over its rms, and the decay rate decay * rms / mean(rms).
            # A matrix's rms is a[i] * b[j] (see GradStats), so both are kept as a row vector
            # and a column vector, and a step needs no tensor the size of the weights. Each
            # factor has a floor (EPS of its mean) so a weight whose gradients were ~0 where
            # they were measured still moves boundedly.
            a, b = self.stats.factors(name)
            a = a * scale
            a += EPS * a.mean()
            rate_a = a * (config.decay / mean)
            if b is not None:
                b = b + EPS * b.mean()
                self._plan[name] = (1 / a, 1 / b, rate_a, b, rate_a.max() * b.max() > 1)
            else:
                self._plan[name] = (1 / a, rate_a.clamp_(max=1.0))

    def reset(self) -> None:
        """The trained weights back, bit for bit, and the state of a fresh text."""
        with torch.no_grad():
            for name, p in self.net.params.items():
                p.copy_(self.trained[name])
        self.restart()
        self.chars_read = 0  # characters learned from since the trained weights
        self.static_nats = self.adapted_nats = 0.0  # their surprise both ways, where compared
        self.chars_compared = 0

    def restart(self, state: State | None = None, last: int | None = None) -> None:
        """Start a new text: the state from zero, the first character predicted from
        ``start_id``; the weights keep what they learned. Or go on from ``state`` (h, c),
        each (L, 1, H), the state after a text that ended with ``last`` (a session's
        context, which the adapter did not read itself): the next read continues it, and
        with ``compare`` the trained weights' scoring starts from that state too."""
        if state is None:
            L, H = self.net.L, self.net.H
            state = (torch.zeros(L, 1, H), torch.zeros(L, 1, H))
        self.state: State = (state[0].detach().clone(), state[1].detach().clone())
        self._static_state: State = self.state
        self._last = self.start_id if last is None else last

    @contextmanager
    def trial(self) -> Iterator[None]:
        """Reads inside this block are not kept: on leaving it, the weights, the totals and
        the state are as they were on entering (the weights from a copy, made only when
        they differ from the trained ones)."""
        saved = {n: p.detach().clone() for n, p in self.net.params.items()} if self.adapted else self.trained
        kept = (self.chars_read, self.static_nats, self.adapted_nats, self.chars_compared,
                self.state, self._static_state, self._last)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.net.params.items():
                    p.copy_(saved[name])
            (self.chars_read, self.static_nats, self.adapted_nats, self.chars_compared,
             self.state, self._static_state, self._last) = kept

    @property
    def adapted(self) -> bool:
        return self.chars_read > 0

    @property
    def gain(self) -> float | None:
        """Mean nats/char adapting saved on what was read with ``compare`` (None before any)."""
        return (self.static_nats - self.adapted_nats) / self.chars_compared if self.chars_compared else None

    def nbytes(self) -> int:
        """Bytes of the tensors this adapter holds beyond the model's own weights."""
        held = [*self.trained.values(), self._rates, self._bias_grad,
                *(t for plan in self._plan.values() for t in plan if isinstance(t, torch.Tensor))]
        return sum(t.numel() * t.element_size() for t in held)

    @torch.no_grad()
    def read(self, ids: Sequence[int], learn: bool = True, stop: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None) -> Reading:
        """Read ``ids``, segment by segment: score each, then (``learn``) step on it.

        Each character's surprise comes from the weights before its segment's step, so no
        character is scored by weights that have seen it. ``stop`` ends the read between
        segments (the lists are then shorter); ``progress(done, total)`` is called after each.
        """
        ids = list(ids)
        seg = self.config.segment
        reading = Reading([], [] if self.compare else None)
        for start in range(0, len(ids), seg):
            if stop is not None and stop.is_set():
                break
            piece = ids[start: start + seg]
            x = torch.tensor([self._last] + piece[:-1]).view(-1, 1)  # (T, 1): each char's predecessor
            y = torch.tensor(piece).view(-1, 1)
            nll, self.state = self.net.forward(x, y, self.state, keep=learn)
            reading.surprise.extend(nll.view(-1).tolist())
            if reading.static is not None:
                static, self._static_state = self._static_net.forward(x, y, self._static_state, keep=False)
                reading.static.extend(static.view(-1).tolist())
                self.static_nats += float(static.sum())
                self.adapted_nats += float(nll.sum())
                self.chars_compared += len(piece)
            self._last = piece[-1]
            if learn:
                self.net.backward(1.0 / seg, self._apply)  # a short segment takes a step in its proportion
                self.chars_read += len(piece)
            if progress is not None:
                progress(min(start + seg, len(ids)), len(ids))
        return reading

    def _apply(self, name: str, u: torch.Tensor, v: torch.Tensor | None) -> None:
        """One weight's step, from its gradient (see :data:`GradSink`): the decay toward the
        trained weight, then the step, both from the weight as it was."""
        p, plan, trained = self.net.params[name], self._plan[name], self.trained[name]
        if v is None:  # a bias
            inv_rms, rates = plan
            g = torch.sum(u, (0, 1), out=self._bias_grad[: p.numel()])
            if self.config.decay:
                p.lerp_(trained, rates)
            p.addcmul_(g, inv_rms, value=-self.config.step)
            return
        inv_a, inv_b, rate_a, b, clamp = plan
        if self.config.decay:
            rates = torch.outer(rate_a, b, out=self._rates[: p.numel()].view_as(p))
            p.lerp_(trained, rates.clamp_(max=1.0) if clamp else rates)  # at most all the way back
        # grad / rms = (u / a)^T (v / b): the division done on the segment's few rows, and the
        # product added straight into the weight, so no gradient is ever held.
        p.addmm_((u.flatten(0, 1) * inv_a).t(), v.flatten(0, 1) * inv_b, alpha=-self.config.step)


EPS = 0.01  # each rms factor's floor, as a fraction of its mean
