"""A full disk and a read-only folder, made real with a small tmpfs mount (needs root)."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from core.train import last_path, metrics_path
from train_helpers import TINY, invoke


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 1 MiB tmpfs at tmp_path/mnt; skipped where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def train_into(out: Path, corpus_file: Path, seed: str):
    return invoke("train", "--data", corpus_file, "--out", out, *TINY, "--seed", seed, "--max-iters", "2",
                  "--eval-interval", "2")


def snapshot(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (out, last_path(out), metrics_path(out))}


def fill(folder: Path) -> None:
    """Write zeros until the file system says it is full."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_full_disk_is_a_clear_error_and_keeps_the_earlier_checkpoint(tmpfs, corpus_file):
    out = tmpfs / "m.pt"
    assert train_into(out, corpus_file, "1").exit_code == 0
    before = snapshot(out)
    fill(tmpfs)
    result = train_into(out, corpus_file, "2")  # a new run would replace m.pt, if it could
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: cannot write checkpoint {out}: the disk is full; free space or choose another path "
        "(any earlier file there is intact)")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler", "m.last.pt", "m.metrics.jsonl", "m.pt"]  # no temp files


def test_read_only_out_fails_before_training_and_keeps_the_checkpoint(tmpfs, corpus_file):
    out = tmpfs / "m.pt"
    assert train_into(out, corpus_file, "1").exit_code == 0
    before = snapshot(out)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    result = train_into(out, corpus_file, "2")
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: cannot write checkpoint {out}: the file system is read-only; choose a path in a writable folder")
    assert result.exit_code == 1 and "step" not in result.stdout
    assert snapshot(out) == before
