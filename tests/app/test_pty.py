"""The real ``charlstm-tui`` entry point in a real terminal (tmux): type a prompt, read
the generated text back from the screen, stop, quit mid-stream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ENTRY = Path(sys.executable).parent / "charlstm-tui"


class Tmux:
    """One tmux server on a private socket, running one command in a pane of ``size``."""

    def __init__(self, socket: Path, command: list[str], env: dict[str, str], size: tuple[int, int] = (100, 30)) -> None:
        self.base = ["tmux", "-S", str(socket)]
        line = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command)
        self.tmux("new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "-s", "t", f"env {line}")
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)  # literally, not as key names

    def dead(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def wait(self, condition, what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path: Path):
    sessions: list[Tmux] = []

    def start(*args: str, settings: dict | None = None, size: tuple[int, int] = (100, 30)) -> Tmux:
        data = Path(os.environ["XDG_DATA_HOME"])
        if settings:
            (data / "charlstm-tui").mkdir(parents=True, exist_ok=True)
            (data / "charlstm-tui" / "settings.json").write_text(json.dumps(settings))
        env = {"XDG_DATA_HOME": str(data), "TERM": "xterm-256color", "OMP_NUM_THREADS": "1",
               "CHARLSTM_CLIPBOARD": "file"}
        t = Tmux(tmp_path / "tmux.sock", [str(ENTRY), *args], env, size)
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.close()


def test_type_a_prompt_and_read_the_generated_text(tmux, tiny_checkpoint: Path) -> None:
    from .conftest import expected

    t = tmux("--checkpoint", str(tiny_checkpoint), settings={"length": 60, "seed": 5, "delay_ms": 0})
    t.wait(lambda s: "ready · 0 chars" in s, "the model to load")
    t.text("KING:")
    t.keys("Enter")
    screen = t.wait(lambda s: "done · 60 chars" in s, "the run to finish")
    want = "KING:" + expected(tiny_checkpoint, "KING:", length=60, seed=5)
    # The output pane shows the text line by line, inside its border.
    shown = [line.strip("│ ").rstrip() for line in screen.splitlines()]
    for line in want.split("\n"):
        if line.strip():
            assert any(line in row for row in shown), (line, screen)
    assert "tiny · 1×32 LSTM" in screen

    t.keys("C-q")
    t.wait(lambda s: t.dead(), "the app to exit")


def test_escape_stops_and_ctrl_q_quits_mid_stream(tmux, tiny_checkpoint: Path) -> None:
    t = tmux("--checkpoint", str(tiny_checkpoint), settings={"length": 100000, "delay_ms": 20})
    t.wait(lambda s: "ready · 0 chars" in s, "the model to load")
    t.text("LORD:")
    t.keys("Enter")
    t.wait(lambda s: "generating ·" in s, "streaming")
    t.keys("Escape")
    stopped = t.wait(lambda s: "stopped ·" in s, "the stop")
    time.sleep(0.5)  # a stopped stream stays still; compare two screens half a second apart
    assert t.screen() == stopped
    t.keys("C-n")  # continue, then quit while it streams
    t.wait(lambda s: "generating ·" in s, "streaming again")
    t.keys("C-q")
    t.wait(lambda s: t.dead(), "the app to exit promptly", timeout=15)


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_bad_checkpoint_path_shows_the_dialog_at_once(tmux, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.pt" if kind == "missing" else tmp_path
    t = tmux("--checkpoint", str(path))
    screen = t.wait(lambda s: "Cannot open the checkpoint" in s, "the error screen")
    words = " ".join(" ".join(line.strip(" │").split()) for line in screen.splitlines())
    assert {"missing": "does not exist", "folder": "is a folder, not a checkpoint file"}[kind] in words, screen
    assert "Traceback" not in screen
    t.keys("Escape")  # closes the dialog; the app stays
    t.wait(lambda s: "no model loaded" in s, "the main screen")
    assert not t.dead()
    t.keys("C-q")
    t.wait(lambda s: t.dead(), "the app to exit")


def test_80x24_enter_while_loading_a_burst_of_f4_and_ctrl_q_mid_run(tmux, tiny_checkpoint: Path) -> None:
    """The issue's user at 80x24: Enter pressed while the model loads runs once it is
    ready; ten F4s in one write raise the temperature ten steps; Ctrl+Q mid-run gives the
    shell back (the time it took is printed: tests do not assert timings)."""
    t = tmux("--checkpoint", str(tiny_checkpoint), settings={"length": 100000, "delay_ms": 5, "temperature": 0.5},
             size=(80, 24))
    t.wait(lambda s: "loading" in s, "the first frame, the model loading behind it")
    t.text("KING:")
    t.keys("Enter")  # torch takes seconds to import: the model is still loading
    t.wait(lambda s: "generating ·" in s and "KING:" in s, "the run the early Enter asked for")
    first = t.screen()
    t.wait(lambda s: s != first, "text streaming")
    t.keys(*["F4"] * 10)  # one write: a held key
    t.keys("F2")  # at 80 columns the settings show over the output
    screen = t.wait(lambda s: "temperature 1.00" in s, "the temperature ten steps up")
    assert "generating ·" in screen
    t.keys("Escape")  # closes the panel; the run goes on
    t.wait(lambda s: "temperature 1.00" not in s and "generating ·" in s, "the panel folded away")
    start = time.monotonic()
    t.keys("C-q")
    t.wait(lambda s: t.dead(), "the app to exit", timeout=15)
    print(f"Ctrl+Q mid-run to exit: {time.monotonic() - start:.2f} s")


def test_80x24_adapt_to_a_paste_then_ctrl_q_mid_adaptation(tmux, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Adapt on: a pasted prompt is read first (the status line says so), and Ctrl+Q while
    a long paste is being read gives the shell back at once."""
    from .test_adapt import POEM

    t = tmux("--checkpoint", str(tiny_checkpoint), settings={"adapt": True, "length": 30, "delay_ms": 0, "seed": 1},
             size=(80, 24))
    t.wait(lambda s: "ready · 0 chars" in s, "the model to load")

    def paste(text: str) -> None:
        path = tmp_path / "paste.txt"
        path.write_text(text, encoding="utf-8")
        t.tmux("load-buffer", "-b", "p", str(path))
        t.tmux("paste-buffer", "-p", "-b", "p", "-t", "t")  # bracketed, as a terminal pastes

    paste(POEM)
    t.wait(lambda s: "the moon go sailing home." in s, "the paste in the prompt")
    t.keys("Enter")
    screen = t.wait(lambda s: "done · 30 chars" in s, "the run")
    status = screen.splitlines()[-2]
    assert f"adapted {len(POEM)}:" in status and "bits/char" in status, screen
    assert "^G unadapt" in screen.splitlines()[-1]
    paste(POEM * 60)
    t.wait(lambda s: s.count("The owl and the moon") >= 3, "the long paste in the prompt")
    t.keys("Enter")
    t.wait(lambda s: "adapting ·" in s.splitlines()[-2], "the read under way")
    start = time.monotonic()
    t.keys("C-q")
    t.wait(lambda s: t.dead(), "the app to exit mid-read", timeout=15)
    print(f"Ctrl+Q mid-adaptation: the app exited in {time.monotonic() - start:.2f} s")
