"""On a real pseudo-terminal: the rich progress bar, and Ctrl-C typed at the keyboard."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest

from core.train import last_path
from train_helpers import TINY, load_state, subprocess_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(fd: int, needle: str, seen: list[bytes], timeout: float = 60) -> bool:
    """Read the terminal into ``seen`` until ``needle`` shows (True) or the child exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle and needle in ANSI.sub("", b"".join(seen).decode(errors="replace")):
            return True
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return False
            if not chunk:
                return False
            seen.append(chunk)
    return False


def test_rich_bar_on_a_tty_and_ctrl_c(corpus_file: Path, tmp_path: Path):
    out = tmp_path / "m.pt"
    args = [sys.executable, "-m", "charlstm_tui", "train", "--data", str(corpus_file), "--out", str(out),
            *TINY, "--max-iters", "100000", "--eval-interval", "50"]
    env = {**subprocess_env(), "TERM": "xterm-256color", "COLUMNS": "120"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the terminal, which is its controlling tty
        os.execve(sys.executable, args, env)
    seen: list[bytes] = []
    try:
        assert read_until(fd, "tok/s", seen), b"".join(seen).decode(errors="replace")  # the bar's stats
        assert read_until(fd, "eval     50:", seen)  # evaluations print above the bar
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
        read_until(fd, "", seen)  # to the end
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    raw = b"".join(seen).decode(errors="replace")
    text = ANSI.sub("", raw)
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "\x1b[" in raw and "━" in text  # drawn with terminal control codes: a live bar, not log lines
    assert re.search(r"train .*━.*\d+%.*step [\d,]+ +loss \d\.\d{4}.*tok/s +eta", text)
    assert "training 1x16 LSTM (default preset) on plays" in text and "Resume with: charlstm-tui train" in text
    assert re.search(r"stopped: [\d,]+ steps", text) and load_state(last_path(out)).step >= 50
