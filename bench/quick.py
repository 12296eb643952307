"""The quick preset's promise: val <= 1.60 on Tiny Shakespeare within 100 s, start-up included.

Runs the real command as a subprocess and times all of it:

    charlstm-tui train --preset quick --data ../shared/data/tinyshakespeare.txt --out <tmp>/quick.pt

then prints the wall time, the trainer's best val loss (its random-window estimate) and,
as a check on that estimate, the exact loss of the saved model over the whole val split.
The anchor it is compared with, measured on this 2-core machine when the goal was set:
nanoGPT's documented CPU run (4x128 transformer, 2,000 iterations) took 98 s for val 1.886.

    python bench/quick.py [--data ../shared/data/tinyshakespeare.txt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"
GOAL_S, GOAL_VAL = 100.0, 1.60
NANOGPT_S, NANOGPT_VAL = 98.0, 1.886


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no data at {args.data}; pass --data with Tiny Shakespeare")
    exe = shutil.which("charlstm-tui")
    head = [exe] if exe else [sys.executable, "-m", "charlstm_tui"]

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "quick.pt"
        command = [*head, "train", "--preset", "quick", "--data", str(args.data), "--out", str(out)]
        print("$ " + " ".join(command), f"  (load average before: {os.getloadavg()[0]:.2f})", flush=True)
        start = time.perf_counter()
        result = subprocess.run(command)  # its log lines show as it trains
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"the command failed with exit status {result.returncode}")

        from core.checkpoint import load_checkpoint
        from core.data import TextData, load_text
        from core.evaluate import evaluate

        ckpt = load_checkpoint(out)
        block = int(ckpt.train["config"]["block_size"])
        exact = evaluate(ckpt.build_model(), TextData.from_text(load_text(args.data), ckpt.vocab), "val", block).loss
    best = ckpt.best_val_loss
    print(f"wall time {wall:.1f} s (goal <= {GOAL_S:.0f} s): {'ok' if wall <= GOAL_S else 'MISSED'}; "
          f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"best val {best:.4f} (goal <= {GOAL_VAL:.2f}): {'ok' if best <= GOAL_VAL else 'MISSED'}; "
          f"exact loss over the whole val split, windows of {block}: {exact:.4f}")
    print(f"vs nanoGPT's CPU run ({NANOGPT_S:.0f} s, val {NANOGPT_VAL}): {NANOGPT_S / wall:.2f}x less time, "
          f"val {best - NANOGPT_VAL:+.3f}; {ckpt.step:,} steps, {ckpt.train.get('tokens_seen', 0):,} tokens")


if __name__ == "__main__":
    main()
