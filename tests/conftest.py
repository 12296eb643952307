"""Shared fixtures: a small synthetic corpus and a tiny checkpoint trained inside the test
session. Everything runs on the CPU, with fixed seeds, in seconds."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Tiny models gain nothing from a second thread, and on a busy 2-core machine OpenMP's
# spinning threads make them many times slower. Set before anything imports torch;
# subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TINYSHAKESPEARE = SHARED / "data" / "tinyshakespeare.txt"

WORDS = ("the king queen lord love night day sword crown heart blood death life speak hear "
         "come go thou thee thy art hath doth good ill fair foul sweet").split()


def make_corpus(n_lines: int = 400, seed: int = 0) -> str:
    """Play-like text: a speaker line, then a few lines of words. Deterministic."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        lines.append(rng.choice(["KING:", "QUEEN:", "LORD:"]))
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + rng.choice(".,!?"))
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return make_corpus()


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, corpus_text: str) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text(corpus_text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    """A 1x32 LSTM trained for 60 steps on the corpus: enough to have learned something."""
    from core.data import TextData
    from core.train import TrainConfig, train

    config = TrainConfig(preset="default", n_embd=32, n_layers=1, dropout=0.0, batch_size=16, block_size=32,
                         lr=1e-2, min_lr=1e-3, warmup_iters=5, max_iters=60, eval_interval=30, eval_iters=4,
                         device="cpu", amp=False, seed=0)
    out = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    data = TextData.from_file(corpus_file, config.block_size)
    for _ in train(config, data, out, data_name="plays"):
        pass
    return out


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user's XDG dirs (history, settings, downloads)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("CHARLSTM_CHECKPOINT", raising=False)


needs_shared_data = pytest.mark.skipif(not TINYSHAKESPEARE.exists(), reason="../shared/data/tinyshakespeare.txt is absent")
