"""Adapting as it reads (dynamic evaluation) beside static scoring: loss, speed and memory.

The bundled model on Tiny Shakespeare's val split (the last 10%), in one run:
1. Loss: the split read as one stream from the '\\n' start, the state carried, by the same
   arithmetic twice: with the trained weights (static) and adapting as it reads.
2. Speed: legs of --leg characters, static and adapted alternating, on 1 and 2 threads
   alternating, each continuing the text; best and median chars/s of each, and the ratios.
3. Memory, in a fresh child process: the bytes of the tensors the adapter holds beyond the
   model, and the growth of the process's resident set (RSS) and of its peak while it
   adapts, each against the bytes of the weights.

    python bench/adapt.py [--chars N] [--legs 5] [--leg 2000] [--segment S --step X --decay D]

Goals (issue 15): adapted val <= 1.26 nats/char (static, the model the issue measured: 1.3958); >= 1,000 chars/s adapting;
extra memory <= 4x the weights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from charlstm_tui import BUNDLED_CHECKPOINT  # noqa: E402
from core.adapt import AdaptConfig, Adapter  # noqa: E402
from core.adapt_stats import stats_for  # noqa: E402
from core.checkpoint import load_checkpoint  # noqa: E402
from core.data import TextData, load_text  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"

CHILD = r"""
import gc, json, sys, warnings
from pathlib import Path
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
torch.set_num_threads(1)
from core.adapt import AdaptConfig, Adapter
from core.adapt_stats import stats_for
from core.checkpoint import load_checkpoint

def status(key):  # bytes, from the kernel's count of this process's pages
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

path, config, ids = Path(sys.argv[1]), AdaptConfig(**json.loads(sys.argv[2])), json.loads(sys.argv[3])
ckpt = load_checkpoint(path)
model = ckpt.build_model()
stats = stats_for(model, ckpt, path)
weights = sum(p.numel() * p.element_size() for p in model.parameters())
with torch.no_grad():
    model(torch.tensor([ids]))  # a static read first: its working set is in the baseline
gc.collect()
before = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the current RSS
    peak_before = status("VmHWM")
except OSError:
    peak_before = None
adapter = Adapter(model, stats, config)
adapter.read(ids)
adapter.read(ids)
print(json.dumps({"weights": weights, "held": adapter.nbytes(), "rss": status("VmRSS") - before,
                  "peak": None if peak_before is None else status("VmHWM") - peak_before}))
"""


def val_text(data: str | None) -> str:
    for candidate in ([Path(data)] if data else []) + [SHARED_DATA]:
        if candidate.is_file():
            return load_text(candidate)
    from core import datasets

    if datasets.is_cached():
        return load_text(datasets.cache_path())
    sys.exit(f"no Tiny Shakespeare here: pass --data FILE (looked in {SHARED_DATA} and {datasets.cache_path()})")


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="Tiny Shakespeare (default: ../shared/data or the user cache)")
    ap.add_argument("--chars", type=int, default=None, help="val characters for the loss (default: all)")
    ap.add_argument("--legs", type=int, default=5, help="timed legs per way")
    ap.add_argument("--leg", type=int, default=2000, help="characters per timed leg")
    ap.add_argument("--segment", type=int, default=None)
    ap.add_argument("--step", type=float, default=None)
    ap.add_argument("--decay", type=float, default=None)
    args = ap.parse_args()
    config = AdaptConfig(**{k: v for k, v in (("segment", args.segment), ("step", args.step),
                                               ("decay", args.decay)) if v is not None})
    torch.set_num_threads(1)
    ckpt = load_checkpoint(BUNDLED_CHECKPOINT)
    val = TextData.from_text(val_text(args.data), vocab=ckpt.vocab).val.tolist()
    model = ckpt.build_model()
    stats = stats_for(model, ckpt, BUNDLED_CHECKPOINT, note=lambda m: print(m, file=sys.stderr))
    adapter = Adapter(model, stats, config, start_id=ckpt.vocab.newline_id, compare=True)
    print(f"bundled model 2x512 LSTM, fp32, torch {torch.__version__}; gradient statistics from {stats.source}; "
          f"segments of {config.segment}, step {config.step:g}, decay {config.decay:g}")

    # 1. Loss over the split: one read, adapting, scored by the trained weights alongside.
    ids = val[: args.chars] if args.chars else val
    reading = adapter.read(ids)
    static, adapted = mean(reading.static), mean(reading.surprise)
    print(f"val ({len(ids):,} chars): static, state carried {static:.4f} nats/char;  adapted as read {adapted:.4f};  "
          f"gain {static - adapted:.4f}   (goal: adapted <= 1.26)")

    # 2. Speed: static and adapted legs alternating, on 1 and 2 threads alternating.
    adapter.reset()
    adapter.compare = False  # each way alone
    rates: dict[tuple[str, int], list[float]] = {}
    pos = 0
    for _ in range(args.legs):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for way in ("static", "adapted"):
                leg = val[pos: pos + args.leg]
                pos = (pos + args.leg) % max(1, len(val) - args.leg)
                start = time.perf_counter()
                adapter.read(leg, learn=way == "adapted")
                rates.setdefault((way, threads), []).append(len(leg) / (time.perf_counter() - start))
    torch.set_num_threads(1)
    print(f"speed: best (median) of {args.legs} legs of {args.leg:,} chars, interleaved")
    for (way, threads), r in sorted(rates.items()):
        print(f"  {way:8} {threads} thread{'s' if threads > 1 else ' '} {max(r):8,.0f} chars/s ({statistics.median(r):,.0f})")
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"  adapted / static (1 thread) {med['adapted', 1] / med['static', 1]:.2f}x;  2 threads / 1, adapting "
          f"{med['adapted', 2] / med['adapted', 1]:.2f}x   (goal: adapting >= 1,000 chars/s)")

    # 3. Memory, in a child process of its own.
    child = subprocess.run([sys.executable, "-c", CHILD, str(BUNDLED_CHECKPOINT),
                            json.dumps({"segment": config.segment, "step": config.step, "decay": config.decay}),
                            json.dumps(val[: args.leg])], capture_output=True, text=True, cwd=REPO)
    if child.returncode != 0:
        sys.exit(f"memory probe failed: {child.stderr.strip().splitlines()[-1:]}")
    m = json.loads(child.stdout)
    mb = 1 / 2**20
    peak = f", peak +{m['peak'] * mb:.1f} MB ({m['peak'] / m['weights']:.2f}x)" if m["peak"] is not None else ""
    print(f"memory: weights {m['weights'] * mb:.1f} MB; the adapter holds {m['held'] * mb:.1f} MB "
          f"({m['held'] / m['weights']:.2f}x); RSS +{m['rss'] * mb:.1f} MB ({m['rss'] / m['weights']:.2f}x){peak}   "
          f"(goal: <= 4x)")


if __name__ == "__main__":
    main()
