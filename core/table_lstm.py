"""A faster LSTM for training on the CPU, used by :class:`~core.model.LMNet` where it pays.

Why it is faster: layer 0's input is an embedding row, so its input projection
``E[id] @ W_ih^T + b`` is a row of one small (V, 4H) table, ``E @ W_ih^T + b``. nn.LSTM
(oneDNN on the CPU) cannot skip that projection, which is half of its GEMM work: the
projection forward, and its input and weight gradients backward. Here the table is built
once per forward (a (V, H) x (H, 4H) product), the inputs are looked up, and only the
recurrence runs, with a hand-written backward: one (B, H) x (H, 4H) GEMM per time step
each way, and W_hh's gradient as one large GEMM over all steps. On the lab config
(1x512, B128, T256) that is about 1.5x oneDNN's bf16 LSTM (``python bench/train.py``).

Upper layers (if any) project their input with one large GEMM, then share the recurrence.
GEMMs run in the autocast dtype (bf16) or in fp32; gate activations and the cell state
stay fp32. fp32 GEMMs go to oneDNN (:func:`matmul_t`): torch's ``mm`` calls MKL, whose sgemm
runs at half oneDNN's speed on AMD CPUs (90 against 175 GFLOP/s a core at these shapes on an
EPYC); bf16 ones already go to oneDNN. Dropout takes AWD-LSTM's forms (:class:`Masks`), which keep the table a table:
a dropped embedding row is a row of ``(E * mask) @ W^T``, DropConnect changes W_hh once per
batch, and locked dropout scales each layer's output by one mask per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (n_layers, B, n_embd)

def _onednn_linear():
    """oneDNN's fp32 inner product, ``x @ w.T (+ b)``, where this torch build has it."""
    try:
        if torch.backends.mkldnn.is_available():
            return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        pass
    return None


_LINEAR = _onednn_linear()


def matmul_t(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ w.T (+ bias)`` for 2-D ``x`` (M, K) and ``w`` (N, K): through oneDNN in fp32 on
    the CPU, else ``torch.addmm``/``mm`` (bf16 already runs on oneDNN there). No autograd."""
    if _LINEAR is not None and x.dtype == torch.float32 and x.device.type == "cpu":
        return _LINEAR(x, w, bias, "none", [], "")
    return torch.addmm(bias, x, w.t()) if bias is not None else torch.mm(x, w.t())


class _Linear(torch.autograd.Function):
    """``F.linear`` for a (..., K) input, each of its three GEMMs through :func:`matmul_t`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, x.size(-1))  # (M, K)
        ctx.save_for_backward(x2, w)
        return matmul_t(x2, w, b).view(*x.shape[:-1], w.size(0))  # (..., N)

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x2, w = ctx.saved_tensors
        dy2 = dy.reshape(-1, dy.size(-1))  # (M, N)
        dx = matmul_t(dy2, w.t().contiguous()).view(*dy.shape[:-1], w.size(1))
        return dx, matmul_t(dy2.t(), x2.t()), dy2.sum(0)


@dataclass
class Masks:
    """One training batch's dropout masks, already scaled by 1 / (1 - p); None where off."""

    embed: torch.Tensor | None  # (V, 1): whole embedding rows
    weight: list[torch.Tensor | None]  # per layer, (4H, H): DropConnect on W_hh
    locked: list[torch.Tensor | None]  # per layer, (B, H): on the layer's output, every time step


def gate_order(hidden: int) -> torch.Tensor:
    """Indices that reorder nn.LSTM's gate rows (i, f, g, o) to (i, f, o, g), so the three
    sigmoid gates are contiguous and one op activates them."""
    H = hidden
    return torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])


def table_lstm(idx: torch.Tensor, embedding: torch.Tensor, lstm: nn.LSTM,
               masks: Masks | None = None) -> tuple[torch.Tensor, State]:
    """Run ``lstm`` over ``embedding[idx]`` from a zero state, for training, with ``masks``.

    idx (B, T) token ids; embedding (V, H). Returns ``(out (B, T, H), (h, c))`` like
    nn.LSTM(batch_first=True), ``out`` after the last layer's locked mask. Gradients flow to
    the embedding and every LSTM weight through ``out``; the returned final ``c`` carries
    none (training never uses it).
    """
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32
    H, L = lstm.hidden_size, lstm.num_layers
    order = gate_order(H)
    hs, cs = [], []
    with torch.autocast("cpu", enabled=False):  # dtypes are chosen here, op by op
        for layer in range(L):
            w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
            if masks is not None and masks.weight[layer] is not None:
                w_hh = w_hh * masks.weight[layer]
            w_ih, w_hh = w_ih[order], w_hh[order]
            bias = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"))[order]
            if layer == 0:
                if masks is not None and masks.embed is not None:
                    embedding = embedding * masks.embed  # dropped rows: their table row is the bias
                table = torch.addmm(bias, embedding, w_ih.t())  # (V, 4H)
                gx = _Lookup.apply(table, idx.t(), dtype)  # (T, B, 4H)
            else:
                if dtype == torch.float32:
                    gx = _Linear.apply(x, w_ih, bias)  # (T, B, 4H): one large GEMM
                else:
                    gx = F.linear(x, w_ih.to(dtype), bias.to(dtype))
            x, c = _Recurrence.apply(gx, w_hh)  # (T, B, H), (B, H)
            hs.append(x[-1].detach())
            cs.append(c)
            if masks is not None and masks.locked[layer] is not None:
                x = x * masks.locked[layer].to(x.dtype)  # (T, B, H) * (B, H): one mask per sequence
    return x.transpose(0, 1), (torch.stack(hs), torch.stack(cs))


class _Lookup(torch.autograd.Function):
    """``table[ids]`` in ``dtype``; the table's gradient is one one-hot GEMM, (V, N) x (N, 4H)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.vocab = table.size(0)
        return table.to(dtype)[ids]  # (T, B, 4H)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (ids,) = ctx.saved_tensors
        flat = ids.reshape(-1)  # (N,)
        onehot = torch.zeros(ctx.vocab, flat.numel(), dtype=grad.dtype)
        onehot[flat, torch.arange(flat.numel())] = 1
        return torch.mm(onehot, grad.reshape(flat.numel(), -1)).float(), None, None


class _Recurrence(torch.autograd.Function):
    """h_t, c_t from the input-side pre-activations gx (T, B, 4H), gates in (i, f, o, g) order.

    Buffers are allocated once and written with ``out=``: at B=128, H=512 a step is a
    handful of ops on (B, H) tensors, so allocation would cost as much as the arithmetic.
    """

    @staticmethod
    def forward(ctx, gx: torch.Tensor, w_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, G = gx.shape
        H = G // 4
        w = w_hh.to(gx.dtype).contiguous()  # (4H, H)
        fp32 = gx.dtype == torch.float32
        hs = gx.new_empty(T + 1, B, H)  # the GEMMs' dtype
        cs = torch.empty(T + 1, B, H)  # fp32
        hs[0], cs[0] = 0, 0  # the zero state
        acts = torch.empty(T, B, G)  # sigmoid(i, f, o) | tanh(g), fp32
        tanh_cs = torch.empty(T, B, H)
        pre, pre32 = gx.new_empty(B, G), torch.empty(B, G)
        for t in range(T):
            if fp32:
                torch.add(gx[t], matmul_t(hs[t], w), out=pre)
            else:
                torch.addmm(gx[t], hs[t], w.t(), out=pre)
                pre32.copy_(pre)  # one contiguous cast: cheaper than casting inside two strided ops
            a, p = acts[t], pre if fp32 else pre32
            torch.sigmoid(p[:, :3 * H], out=a[:, :3 * H])
            torch.tanh(p[:, 3 * H:], out=a[:, 3 * H:])
            c = cs[t + 1]
            torch.mul(a[:, H:2 * H], cs[t], out=c).addcmul_(a[:, :H], a[:, 3 * H:])  # c = f c + i g
            torch.tanh(c, out=tanh_cs[t])
            torch.mul(a[:, 2 * H:3 * H], tanh_cs[t], out=hs[t + 1])  # h = o tanh(c)
        ctx.save_for_backward(w, hs, cs, acts, tanh_cs)
        c_last = cs[-1]
        ctx.mark_non_differentiable(c_last)
        return hs[1:], c_last

    @staticmethod
    def backward(ctx, dy: torch.Tensor, _dc_last: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        w, hs, cs, acts, tanh_cs = ctx.saved_tensors
        T, B, H = dy.shape
        dgates = hs.new_empty(T, B, 4 * H)  # d pre-activations, the GEMMs' dtype
        dh, dc = torch.zeros(B, H), torch.zeros(B, H)  # carried back through time, fp32
        w_t = w.t().contiguous()  # (H, 4H): dh = dgates @ w
        dpre = torch.empty(B, 4 * H)
        tmp, dsig, ones = torch.empty(B, H), torch.empty(B, 3 * H), torch.ones(B, H)
        for t in range(T - 1, -1, -1):
            a, tanh_c = acts[t], tanh_cs[t]
            i, f, o, g, sig = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:], a[:, :3 * H]
            dh.add_(dy[t])
            torch.addcmul(ones, tanh_c, tanh_c, value=-1, out=tmp).mul_(o)
            dc.addcmul_(tmp, dh)  # dc += dh o (1 - tanh(c)^2)
            torch.mul(dc, g, out=dpre[:, :H])  # d i
            torch.mul(dc, cs[t], out=dpre[:, H:2 * H])  # d f
            torch.mul(dh, tanh_c, out=dpre[:, 2 * H:3 * H])  # d o
            torch.mul(dc, i, out=dpre[:, 3 * H:])  # d g
            dc.mul_(f)  # to c_{t-1}
            dpre[:, :3 * H].mul_(torch.addcmul(sig, sig, sig, value=-1, out=dsig))  # sigmoid' = s (1 - s)
            dpre[:, 3 * H:].mul_(torch.addcmul(ones, g, g, value=-1, out=tmp))  # tanh' = 1 - g^2
            dgates[t].copy_(dpre)
            dh.copy_(matmul_t(dgates[t], w_t))  # to h_{t-1}
        dw = matmul_t(dgates.view(T * B, 4 * H).t(), hs[:-1].reshape(T * B, H).t()).float()  # (4H, H)
        return dgates, dw
