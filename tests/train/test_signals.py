"""Ctrl-C / SIGTERM on a real `charlstm-tui train` process, then the printed resume command."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.train import last_path
from train_helpers import TINY, assert_same_weights, cli_command, curve, load_state, run_cli, subprocess_env

# Long enough that the signal, sent after the first evaluation, lands mid-run.
LONG = [*TINY, "--max-iters", "800", "--eval-interval", "50"]


def interrupt(corpus_file: Path, out: Path, sig: int) -> subprocess.CompletedProcess[str]:
    """Start a run, wait for its first evaluation line, send ``sig``, collect the rest."""
    proc = subprocess.Popen(cli_command("train", "--data", corpus_file, "--out", out, *LONG), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env())
    head = []
    for line in proc.stdout:
        head.append(line)
        if line.startswith("eval"):
            break
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(head) + stdout, stderr)


def check_interrupted(result: subprocess.CompletedProcess[str], corpus_file: Path, out: Path, code: int) -> list[str]:
    """Exit code, the messages, the saved state; returns the resume command."""
    assert result.returncode == code, result.stderr
    stopped = result.stdout.strip().splitlines()[-1]
    assert stopped.startswith("stopped: ") and stopped.endswith(f"saved {out}")
    steps = int(stopped.split()[1].replace(",", ""))
    assert 50 <= steps < 800
    assert load_state(last_path(out)).step == steps  # the step in progress finished and was saved
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == f"Interrupted: best checkpoint {out}, latest state {last_path(out)}."
    command = shlex.split(lines[-1].removeprefix("Resume with: "))
    assert command == ["charlstm-tui", "train", "--data", str(corpus_file), "--out", str(out),
                       "--resume", str(last_path(out))]
    return command


def test_ctrl_c_saves_and_the_printed_resume_matches_an_uninterrupted_run(corpus_file, tmp_path):
    out = tmp_path / "m.pt"
    command = check_interrupted(interrupt(corpus_file, out, signal.SIGINT), corpus_file, out, 130)

    resumed = subprocess.run([sys.executable, "-m", "charlstm_tui", *command[1:]], capture_output=True, text=True,
                             timeout=120, env=subprocess_env())
    assert resumed.returncode == 0, resumed.stderr
    assert "finished: 800 steps" in resumed.stdout

    reference = run_cli("train", "--data", corpus_file, "--out", tmp_path / "ref.pt", *LONG, timeout=120)
    assert reference.returncode == 0, reference.stderr
    assert_same_weights(last_path(tmp_path / "ref.pt"), last_path(out))
    assert_same_weights(tmp_path / "ref.pt", out)
    assert curve(load_state(last_path(out)).history) == curve(load_state(last_path(tmp_path / "ref.pt")).history)


def test_sigterm_saves_and_exits_143(corpus_file, tmp_path):
    out = tmp_path / "m.pt"
    check_interrupted(interrupt(corpus_file, out, signal.SIGTERM), corpus_file, out, 143)
    assert load_state(out).best_val_loss is not None
