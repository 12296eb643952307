"""DDP under torchrun: 2 CPU ranks (gloo), a few steps of a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.train import REPLICA_DIGEST_ENV, last_path, state_digest
from train_helpers import TINY, load_state, subprocess_env


def test_two_ranks_keep_identical_weights_and_write_one_checkpoint(corpus_file: Path, tmp_path: Path):
    out, digests = tmp_path / "run" / "m.pt", tmp_path / "digests"
    digests.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "charlstm_tui", "train", "--data", str(corpus_file), "--out", str(out),
               *TINY, "--dropout", "0.1", "--max-iters", "6", "--eval-interval", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180,
                            env=subprocess_env(**{REPLICA_DIGEST_ENV: str(digests)}))
    assert result.returncode == 0, result.stdout + result.stderr

    ranks = [json.loads((digests / f"rank{r}.json").read_text()) for r in (0, 1)]
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
