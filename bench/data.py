"""Corpus encoding: TextData.from_file (compact, in C) vs the lab's list of Python ints.

Builds a synthetic play-like corpus (65 symbols, like Tiny Shakespeare) in a temp dir,
deleted afterwards. Each measurement runs in a fresh child process, so its peak RSS
(``ru_maxrss``) is its own. The lab's way, ``torch.tensor([stoi[c] for c in text])``,
runs on a smaller slice so it finishes; both ways also run on that slice for the ratio.

    python bench/data.py [--mb 100] [--lab-mb 10]

Goal (issue 2): 100 MB encodes in <= 15 s with <= 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
from core.data import TextData
way, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, after importing torch
start = time.perf_counter()
if way == "textdata":
    data = TextData.from_file(path, block_size=256)
    n = len(data.train) + len(data.val)
else:  # the lab: read, sorted(set(text)), a dict, a list of ints, one long tensor
    text = open(path, encoding="utf-8").read()
    stoi = {ch: i for i, ch in enumerate(sorted(set(text)))}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = len(data)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": elapsed, "peak_mb": peak / 1024, "base_mb": base / 1024, "chars": n}))
"""


def make_corpus(path: Path, mb: int) -> None:
    """Speaker lines and verse over exactly 65 symbols; 1 MB of random text, repeated."""
    rng = random.Random(0)
    alphabet = string.ascii_letters + " .,;:!?'-&()\n"  # 65 symbols, like Tiny Shakespeare
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 9))) for _ in range(3000)]
    lines, size = [alphabet], len(alphabet)  # every symbol appears in every MB
    while size < 1_000_000:
        line = rng.choice(["KING:", "QUEEN:", "ROMEO:", "NURSE:"]) + "\n" + " ".join(
            rng.choice(words) for _ in range(rng.randint(3, 12))).capitalize() + rng.choice(".,;!?") + "\n"
        lines.append(line)
        size += len(line)
    block = "".join(lines)[:1_000_000]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(mb):
            f.write(block)


def measure(way: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, way, str(path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{way} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, r: dict) -> None:
    print(f"{label:34s} {r['s']:7.2f} s  {r['chars'] / r['s'] / 1e6:7.1f} M chars/s   "
          f"peak RSS {r['peak_mb']:7.0f} MB ({r['peak_mb'] - r['base_mb']:6.0f} MB over the {r['base_mb']:.0f} MB of torch)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="corpus size for TextData.from_file")
    ap.add_argument("--lab-mb", type=int, default=10, help="slice for the lab's way (and the ratio)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="charlstm-bench-") as tmp:
        big, small = Path(tmp) / "big.txt", Path(tmp) / "small.txt"
        t0 = time.perf_counter()
        make_corpus(big, args.mb)
        make_corpus(small, args.lab_mb)
        print(f"corpus: {args.mb} MB and {args.lab_mb} MB of 65-symbol text, written in {time.perf_counter() - t0:.1f} s")
        full = measure("textdata", big)
        new = measure("textdata", small)
        lab = measure("lab", small)
    show(f"TextData.from_file, {args.mb} MB", full)
    show(f"TextData.from_file, {args.lab_mb} MB", new)
    show(f"lab list of ints,   {args.lab_mb} MB", lab)
    print(f"ratio on {args.lab_mb} MB: {lab['s'] / new['s']:.1f}x faster, "
          f"{(lab['peak_mb'] - lab['base_mb']) / max(new['peak_mb'] - new['base_mb'], 1):.1f}x less memory over torch's")
    ok = full["s"] <= 15 and full["peak_mb"] <= 1024
    print(f"goal for 100 MB (<= 15 s, <= 1 GB peak): {'met' if ok else 'NOT met'} at {args.mb} MB")


if __name__ == "__main__":
    main()
