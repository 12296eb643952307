"""DDP under torchrun: 2 CPU ranks (gloo), a few steps of a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.train import REPLICA_DIGEST_ENV, last_path, state_digest
from train_helpers import TINY, load_state, subprocess_env


def torchrun(*args: str | Path, digests: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "charlstm_tui", "train", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180,
                            env=subprocess_env(**{REPLICA_DIGEST_ENV: str(digests)}))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def replicas(digests: Path) -> list[dict]:
    return [json.loads((digests / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_ranks_keep_identical_weights_and_write_one_checkpoint(corpus_file: Path, tmp_path: Path):
    out, digests = tmp_path / "run" / "m.pt", tmp_path / "digests"
    digests.mkdir()
    result = torchrun("--data", corpus_file, "--out", out, *TINY, "--dropout", "0.1", "--max-iters", "6",
                      "--eval-interval", "3", digests=digests)

    ranks = replicas(digests)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # gradients were averaged: the replicas agree
    assert ranks[0]["batch_rng"] != ranks[1]["batch_rng"]  # yet each rank drew its own batches
    last = load_state(last_path(out))
    assert state_digest(last.state_dict) == ranks[0]["weights"]  # and the checkpoint holds those weights
    assert last.train["world_size"] == 2 and last.train["tokens_seen"] == 6 * 4 * 16 * 2
    assert len(last.resume["rng"]) == 2  # both ranks' streams, for a resume on 2 ranks

    assert sorted(p.name for p in out.parent.iterdir()) == ["m.last.pt", "m.metrics.jsonl", "m.pt"]
    lines = result.stdout.splitlines()
    assert sum(line.startswith("training 1x16 LSTM") for line in lines) == 1  # rank 0 alone logs
    assert [line.split(":")[0] for line in lines if line.startswith("eval")] == ["eval      3", "eval      6"]

    # A resume on 2 ranks gives each rank back its own streams, and the replicas stay in step.
    resumed = torchrun("--data", corpus_file, "--resume", last_path(out), "--max-iters", "9", digests=digests)
    assert "resuming at step 6" in resumed.stdout and "finished: 9 steps" in resumed.stdout
    after = replicas(digests)
    assert after[0]["weights"] == after[1]["weights"] != ranks[0]["weights"]
    assert after[0]["batch_rng"] != after[1]["batch_rng"]
    assert state_digest(load_state(last_path(out)).state_dict) == after[0]["weights"]
