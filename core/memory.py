"""What fits in memory: the bytes this process may still take, and what a run or a
text would need, checked before the work starts rather than discovered by the kernel's
OOM killer an hour in. Estimates are rough on purpose: they only refuse what is off by
an order of magnitude. Importing this module is cheap (no torch)."""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .model import ModelConfig

# Reading a text of N bytes holds the bytes, the decoded str (1 to 4 bytes a character)
# and, while it is encoded, a translated copy and the id tensor: about 6N at the peak.
TEXT_BYTES_PER_BYTE = 6


def available_bytes() -> int | None:
    """Bytes this process can still allocate: the system's available memory, capped by
    an address-space limit (``ulimit -v``) less what is mapped already. None: unknown."""
    free = _meminfo("MemAvailable")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        mapped = _self_status("VmSize") or 0
        left = max(soft - mapped, 0)
        free = left if free is None else min(free, left)
    return free


def total_bytes() -> int | None:
    """The machine's physical memory, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return _meminfo("MemTotal")


def _meminfo(key: str) -> int | None:
    return _kib_field("/proc/meminfo", key)


def _self_status(key: str) -> int | None:
    return _kib_field("/proc/self/status", key)


def _kib_field(path: str, key: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KB``: decimal units, as ``ls -lh --si`` and disk makers count."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def fits(size: int, per_byte: float = TEXT_BYTES_PER_BYTE) -> str | None:
    """None when a file of ``size`` bytes, taking ``per_byte`` bytes of memory for each
    once read, fits in memory; else why not."""
    free = available_bytes()
    need = int(size * per_byte)
    if free is not None and need > free:
        return f"reading it needs about {human_bytes(need)} of memory and {human_bytes(free)} is available"
    return None


def training_bytes(n_params: int, batch_size: int, block_size: int, n_embd: int, n_layers: int,
                   vocab_size: int) -> int:
    """Rough peak memory of one training step, in bytes (fp32).

    Parameters, gradients and AdamW's two moments: 16 bytes a parameter (plus a weight
    average's 4). Activations kept for the backward pass: per position and layer, about
    ten vectors of ``n_embd`` (the four gates, c, h, tanh(c) and their grads), and the
    logits with their softmax and gradient (three of ``vocab_size``).
    """
    positions = batch_size * block_size
    activations = positions * (10 * n_embd * n_layers + 3 * vocab_size)
    return 4 * (5 * n_params + activations)


def training_problem(model_config: "ModelConfig", batch_size: int, block_size: int,
                     device: "torch.device") -> str | None:
    """None when a run of this size can fit on ``device``; else one line saying what is
    too big and which options to lower. Catches sizes off by orders of magnitude (a
    typo'd --n-embd), before the model is built: building it would be the hang."""
    params = count_params(model_config)
    need = training_bytes(params, batch_size, block_size, model_config.n_embd, model_config.n_layers,
                          model_config.vocab_size)
    have = device_bytes(device)
    if have is None or need <= have:
        return None
    c = model_config
    return (f"training a {c.n_layers:,}x{c.n_embd:,} LSTM ({params:,} parameters) on batches of {batch_size:,} x "
            f"{block_size:,} characters needs about {human_bytes(need)} of memory, more than the {human_bytes(have)} "
            f"of this {'machine' if device.type == 'cpu' else device.type.upper()}; use smaller --n-embd, "
            "--n-layers, --batch-size or --block-size")


def count_params(model_config: "ModelConfig") -> int:
    """Parameters of an LMNet of this config, counted on torch's meta device (shapes
    only, nothing allocated). Layers are alike, so two small builds give the count for
    any depth: a model of 10^8 layers is never built just to be counted."""
    import dataclasses

    import torch

    from .model import LMNet

    def params(layers: int) -> int:
        with torch.device("meta"):
            return LMNet(dataclasses.replace(model_config, n_layers=layers)).num_params()

    one = params(1)
    if model_config.n_layers == 1:
        return one
    return one + (model_config.n_layers - 1) * (params(2) - one)


def device_bytes(device: "torch.device") -> int | None:
    """Memory of ``device``: the GPU's own, else the machine's."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    return total_bytes()
