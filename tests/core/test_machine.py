"""What the trainer computes with: bf16 only on CPUs that have it natively, and the table
LSTM only where a probe times it faster. Detection reads a cpuinfo file, so fake ones
stand in for machines other than this one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import core.model
from core.machine import choose_lstm, choose_threads, cpu_flags, precision
from core.model import LMNet, ModelConfig

CPU = torch.device("cpu")
ICE_LAKE = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\n"
            "flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni "
            "avx512_bitalg avx512_vpopcntdq\n\n") * 2
ZEN = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx512f avx512_fp16 amx_tile amx_bf16 amx_int8\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve bf16 i8mm svebf16\nCPU implementer\t: 0x41\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"


@pytest.mark.parametrize("cpuinfo, dtype, why", [
    (ICE_LAKE, None, "fp32 (this CPU has no native bf16: emulated bf16 would be slower)"),
    (ZEN, torch.bfloat16, "bf16 autocast (this CPU has avx512_bf16)"),
    (SAPPHIRE_RAPIDS, torch.bfloat16, "bf16 autocast (this CPU has amx_bf16)"),
    (GRAVITON3, torch.bfloat16, "bf16 autocast (this CPU has bf16)"),
    (GRAVITON2, None, "fp32 (this CPU has no native bf16: emulated bf16 would be slower)"),
])
def test_bf16_only_where_the_cpu_has_it_natively(tmp_path, cpuinfo, dtype, why):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert precision(CPU, True, path) == (dtype, why)
    assert precision(CPU, False, path) == (None, "fp32 (--no-amp)")


def test_no_cpuinfo_means_fp32_and_says_so(tmp_path):
    missing = tmp_path / "none"
    assert cpu_flags(missing) is None
    dtype, why = precision(CPU, True, missing)
    assert dtype is None and str(missing) in why
    assert precision(torch.device("cuda"), True, missing)[0] == torch.float16


def probe_model() -> LMNet:
    torch.manual_seed(0)
    return LMNet(ModelConfig(11, 128, 2, dropout=0.2, weight_drop=0.3, embed_drop=0.1))


def slowed(fn, times: int = 30):
    """``fn`` doing its work ``times`` times over: slower by a ratio that a busy machine keeps."""
    def slow(*args, **kwargs):
        for _ in range(times - 1):
            fn(*args, **kwargs)
        return fn(*args, **kwargs)
    return slow


def test_the_probe_never_picks_the_slower_path(monkeypatch):
    model = probe_model()
    monkeypatch.setattr(core.model, "table_lstm", slowed(core.model.table_lstm))
    table, why = choose_lstm(model, 32, 64, CPU, None)
    assert not table and why.startswith("torch's LSTM (the table LSTM ran 0.")
    monkeypatch.undo()
    monkeypatch.setattr(core.model, "masked_lstm", slowed(core.model.masked_lstm))
    table, why = choose_lstm(model, 32, 64, CPU, None)
    assert table and why.startswith("the table LSTM (") and why.endswith("x torch's in a probe)")


def test_the_probe_leaves_the_model_and_the_random_streams_as_they_were():
    model = probe_model().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    choose_lstm(model, 32, 64, CPU, None)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training and model.table_lstm is False


def test_tiny_models_and_other_devices_skip_the_probe():
    tiny = LMNet(ModelConfig(11, 24, 1))
    assert choose_lstm(tiny, 4, 16, CPU, None) == (False, "torch's LSTM (too small a model to gain from the table LSTM)")
    assert choose_lstm(probe_model(), 32, 64, torch.device("cuda"), None) == (False, "torch's LSTM (cuda)")


FAULTS_PER_STEP = """
import resource, sys, torch
from torch.nn import functional as F
from core.machine import keep_freed_memory
from core.model import LMNet, ModelConfig
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
torch.set_num_threads(1)
model = LMNet(ModelConfig(65, 128, 2, dropout=0.2, weight_drop=0.2)).train()
optimizer = torch.optim.AdamW(model.parameters())
idx = torch.randint(0, 65, (64, 256))  # buffers over glibc's largest mmap threshold (32 MB)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for step in range(10):
    if step == 4:
        before = faults()
    loss = F.cross_entropy(model(idx)[0].reshape(-1, 65), idx.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(applied, (faults() - before) / 6)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_training_steps_reuse_freed_memory_instead_of_faulting_it_back():
    def run(mode: str) -> tuple[str, float]:
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout.split()
        return out[0], float(out[1])

    (_, plain), (applied, kept) = run("plain"), run("keep")
    assert applied == "True"
    assert kept < plain / 4  # page faults per step: each one is a 4 KB page handed back and fetched again


def test_one_thread_where_the_others_only_wait(monkeypatch):
    """A busy machine, as the probe sees it: every step on more than one thread takes far longer."""
    model = probe_model()
    real = core.model.masked_lstm

    def busy(*args, **kwargs):
        for _ in range(1 if torch.get_num_threads() == 1 else 30):
            out = real(*args, **kwargs)
        return out

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(core.model, "masked_lstm", busy)
        threads, why = choose_threads(model, 32, 64, CPU, None)
        assert threads == 1 and why.startswith("1 thread (2 ran 0.") and why.endswith("other work holds the cores)")
        assert torch.get_num_threads() == 2  # the probe leaves the count as it was; the trainer sets it
        monkeypatch.undo()
        assert choose_threads(model, 32, 64, CPU, None)[0] in (1, 2)  # a real probe: whichever is faster
        assert choose_threads(LMNet(ModelConfig(11, 24, 1)), 4, 16, CPU, None) == (
            1, "1 thread (a model this small gains nothing from more)")
    finally:
        torch.set_num_threads(before)
