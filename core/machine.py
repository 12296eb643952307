"""What this machine trains fastest with: the autocast precision, the LSTM path and the threads.

Both are decided from facts of this machine, not from rules tuned on another one. bf16
runs only where the CPU computes it natively (its cpuinfo flags say AVX-512 BF16 or AMX,
or an ARM core's bf16): elsewhere torch emulates it, 2-2.5x slower than fp32, though
``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` says yes on any AVX-512 CPU. The table
LSTM (core/table_lstm.py) runs only where a short timed probe of both paths, at the
run's own sizes, shows it faster. And a run uses torch's threads only where a probe shows
them faster than one: OpenMP's threads wait for each other at every operation, so where
other work holds a core, a 2-thread step waits for the scheduler hundreds of times (seen:
a 1x192 step took 7.8 s on 2 threads and 0.08 s on one, on a 2-core machine with both
cores busy).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from .model import LMNet

CPUINFO = Path("/proc/cpuinfo")
# x86: AVX-512 BF16 dot products, AMX tiles; aarch64: the BF16 extension (Neoverse V1 and up).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Below this much GEMM work per time step (batch x hidden^2) a probe times noise: both
# paths take well under a millisecond a step, and torch's LSTM is the plain choice.
PROBE_MIN_WORK = 32 * 128 * 128
THREADS_MIN_WORK = 8 * 128 * 128  # below this, a step's matrices are too small to share out
PROBE_STEPS = 64  # time steps per probe batch: per-step costs dominate, so this gives the ratio
PROBE_MARGIN = 1.05  # the table LSTM must win by this much, more than a probe's noise


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str] | None:
    """The CPU's feature flags from ``cpuinfo`` (x86 ``flags``, ARM ``Features``), or None
    where there is no such file to read (macOS, Windows)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def precision(device: torch.device, amp: bool, cpuinfo: Path = CPUINFO) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for a run (None: fp32) and why, in words for the first log line."""
    if not amp:
        return None, "fp32 (--no-amp)"
    if device.type == "cuda":
        return torch.float16, "fp16 autocast (CUDA)"
    if device.type != "cpu":
        return None, f"fp32 (no autocast on {device.type})"
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None, f"fp32 (no {cpuinfo} to tell whether this CPU has native bf16)"
    native = next((f for f in NATIVE_BF16_FLAGS if f in flags), None)
    if native is None:
        return None, "fp32 (this CPU has no native bf16: emulated bf16 would be slower)"
    return torch.bfloat16, f"bf16 autocast (this CPU has {native})"


def time_paths(model: LMNet, batch: int, block: int, amp_dtype: torch.dtype | None,
               paths: tuple[bool, ...] = (False, True), runs: int = 3) -> dict[bool, float]:
    """Seconds per training forward and backward of a (batch, min(block, 64)) batch on the
    CPU, for each path (False: torch's LSTM, True: the table LSTM): the best of ``runs``
    after a warm-up, taking turns so that a busy machine slows the paths alike. Leaves the
    model's weights, gradients, mode and the global RNG as they were."""
    best = dict.fromkeys(paths, float("inf"))
    was_training, asked = model.training, model.table_lstm
    model.train()
    with torch.random.fork_rng(devices=[]):  # the batch and masks drawn here leave the run's streams alone
        idx = torch.randint(model.config.vocab_size, (batch, min(block, PROBE_STEPS)))
        for rep in range(runs + 1):
            for table in paths:
                model.table_lstm = table
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits, _ = model(idx)  # (B, T, V)
                F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), idx.reshape(-1)).backward()
                if rep > 0:  # the first run of each warms up
                    best[table] = min(best[table], time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    model.table_lstm = asked
    return best


def choose_threads(model: LMNet, batch: int, block: int, device: torch.device,
                   amp_dtype: torch.dtype | None) -> tuple[int, str]:
    """How many torch threads to train with, and why: torch's count, unless a timed probe
    (one forward and backward on torch's LSTM, the best of two after a warm-up) finds one
    thread faster, or the model is too small to probe. A many-thread run that takes 3x one
    thread's best is stopped early."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        return threads, f"{threads} thread{'s' if threads > 1 else ''}"
    if batch * model.config.n_embd ** 2 < THREADS_MIN_WORK:
        return 1, "1 thread (a model this small gains nothing from more)"
    was_training, asked = model.training, model.table_lstm
    model.train()
    model.table_lstm = False
    best = {}
    try:
        with torch.random.fork_rng(devices=[]):
            idx = torch.randint(model.config.vocab_size, (batch, min(block, PROBE_STEPS)))
            for count in (1, threads):
                torch.set_num_threads(count)
                best[count] = float("inf")
                for rep in range(3):
                    start = time.perf_counter()
                    with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
                        logits, _ = model(idx)  # (B, T, V)
                    F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), idx.reshape(-1)).backward()
                    spent = time.perf_counter() - start
                    if rep > 0:
                        best[count] = min(best[count], spent)
                    if count > 1 and spent > 3 * best[1]:
                        best[count] = min(best[count], spent)
                        break
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        model.table_lstm = asked
        torch.set_num_threads(threads)
    ratio = best[1] / best[threads]
    if ratio >= 1 / PROBE_MARGIN:
        return threads, f"{threads} threads"
    return 1, f"1 thread ({threads} ran {ratio:.2f}x its speed in a probe: other work holds the cores)"


def choose_lstm(model: LMNet, batch: int, block: int, device: torch.device,
                amp_dtype: torch.dtype | None) -> tuple[bool, str]:
    """Whether to train on the table LSTM, and why: :func:`time_paths` of both paths."""
    if device.type != "cpu":
        return False, f"torch's LSTM ({device.type})"
    if batch * model.config.n_embd ** 2 < PROBE_MIN_WORK:
        return False, "torch's LSTM (too small a model to gain from the table LSTM)"
    best = time_paths(model, batch, block, amp_dtype)
    ratio = best[False] / best[True]
    if ratio >= PROBE_MARGIN:
        return True, f"the table LSTM ({ratio:.2f}x torch's in a probe)"
    return False, f"torch's LSTM (the table LSTM ran {ratio:.2f}x its speed in a probe)"


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse instead of handing it back to the kernel.

    A training step allocates and frees the same large buffers (activations, gradients,
    oneDNN's workspaces) every step. glibc serves blocks over its mmap threshold with
    fresh mappings and unmaps them when freed, so every step pays a page fault per 4 KB
    to get them back: 20-25% of a CPU step at 2x512 (B32 x T256, in bf16 and fp32 alike).
    Served from the heap and never trimmed, they are reused in place, as jemalloc would.
    For a process that trains in its main thread (``charlstm-tui train``): the setting is
    process-wide, and its memory stays at its peak until it exits. Returns whether it was
    applied (glibc on Linux only).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 64 << 20)))
