"""The entry point without a terminal: one clear line, no traceback, no hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENTRY = Path(sys.executable).parent / "charlstm-tui"


def test_no_terminal_is_one_line_and_a_non_zero_exit(tiny_checkpoint: Path) -> None:
    done = subprocess.run([str(ENTRY), "--checkpoint", str(tiny_checkpoint)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip() == ("Error: the interactive app needs a terminal; "
                                   "in scripts use 'charlstm-tui generate'")
    assert "Traceback" not in done.stderr and done.stdout == ""
