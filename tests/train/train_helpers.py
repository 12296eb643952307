"""Helpers for the training tests: tiny recipes, the CLI in-process and as a real
subprocess. Every run is a 1-2 layer LSTM of width <= 32 on the shared tiny corpus.
(A module of its own: ``conftest`` is a name every test folder uses.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm_tui.cli import cli

# The same file tests/conftest.py points at (that module can't be imported by name: every
# test folder's conftest is called "conftest").
TINYSHAKESPEARE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tinyshakespeare.txt"
needs_shared_data = pytest.mark.skipif(not TINYSHAKESPEARE.exists(), reason="../shared/data/tinyshakespeare.txt is absent")

# Options for a run that takes well under a second: a 1x16 LSTM on short windows.
TINY = ["--n-embd", "16", "--n-layers", "1", "--batch-size", "4", "--block-size", "16", "--eval-iters", "1",
        "--device", "cpu", "--seed", "3"]


def invoke(*args: str | Path) -> Result:
    """``charlstm-tui`` in-process (CliRunner): stdout and stderr kept apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This test's environment (its XDG dirs included) for a child process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def cli_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "charlstm_tui", *[str(a) for a in args]]


def run_cli(*args: str | Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``charlstm-tui`` as a real subprocess, to completion."""
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, env=subprocess_env(**env))


def load_state(path: Path):
    from core.checkpoint import load_checkpoint

    return load_checkpoint(path)


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    sa, sb = load_state(a).state_dict, load_state(b).state_dict
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs between {a.name} and {b.name}"


def curve(history: list[dict]) -> list[tuple]:
    """The deterministic part of a history: timing fields left out."""
    return [(h["step"], h["train_loss"], h["val_loss"], h["lr"]) for h in history]


