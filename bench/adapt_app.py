"""Adapt in the app: what it costs to bring adapted weights to whoever samples, how fast the
app's adapter reads beside core's, and key echo while it reads.

1. Weights to the generation process, two ways, interleaved: send them to the child that
   is there (``GenerationProcess.load_weights``: the weights through the pipe, the child
   copies them in and rearranges them for sampling) against forking a new child from the
   adapted app (what re-forking after each read would cost); each way timed from the
   change to the first character of the next run. Median ms of each and the ratio.
2. The app reading a pasted text with Adapt on, on a real pty (the `charlstm-tui` entry
   point): its chars/s as its status line gives it, beside core's Adapter reading the same
   text in a process of its own session (same thread count), legs alternating; and key echo while it
   reads, in legs of their own: a key written to the pty until it shows (goal <= 50 ms,
   issue 15).

    python bench/adapt_app.py [--checkpoint PATH] [--rounds 5] [--chars 3000] [--keys 10]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from app import PtyApp  # noqa: E402  (bench/app.py: the app on a pty)

PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"


def first_char(process, session, sampling) -> None:
    """Generate one character in the child (and land it)."""
    chunks = process.generate(session, sampling, lambda: False)
    for _ in chunks:
        break
    chunks.close()


def weights_legs(checkpoint: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds from a change of the weights to the child's first character, sending the
    weights vs forking anew, interleaved."""
    import torch

    from charlstm_tui.bridge import Sampling, load_model
    from charlstm_tui.generation_process import GenerationProcess
    from charlstm_tui.settings import Settings

    model = load_model(checkpoint)
    sampling = Sampling.of(Settings().with_(length=1, seed=1), model.info.block_size)
    session, params = model.session, dict(model.session.sampler.model.named_parameters())
    session.feed("KING:")
    process = GenerationProcess(session.sampler, model.info.block_size)
    first_char(process, session, sampling)  # warm
    send, fork = [], []
    try:
        for r in range(rounds):
            for way in ("send", "fork"):
                with torch.no_grad():
                    params["fc.bias"].add_(1e-6)  # a change, as a read makes
                session.sampler.refresh()
                start = time.perf_counter()
                if way == "send":
                    process.load_weights(params, r)
                else:
                    process.close()
                    process = GenerationProcess(session.sampler, model.info.block_size)
                first_char(process, session, sampling)
                (send if way == "send" else fork).append(time.perf_counter() - start)
    finally:
        process.close()
    return send, fork


CORE_LEG = r"""
import sys, time, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import torch
from charlstm_tui.bridge import generation_threads
from core.adapt import Adapter
from core.adapt_stats import stats_for
from core.checkpoint import load_checkpoint

torch.set_num_threads(generation_threads())
path, text = Path(sys.argv[1]), sys.stdin.read()
ckpt = load_checkpoint(path)
model = ckpt.build_model()
ids = ckpt.vocab.encode(text)
adapter = Adapter(model, stats_for(model, ckpt, path, ids), start_id=ckpt.vocab.newline_id, compare=True)
start = time.perf_counter()
adapter.read(ids)
print(len(ids) / (time.perf_counter() - start))
"""


def core_rate(checkpoint: Path, text: str) -> float:
    """chars/s of core's Adapter (comparing, as the app's does) reading ``text`` from the
    start, in a process of its own session as the app on its pty is: with autogroup
    scheduling (Linux) each session shares the CPUs as one, so a loaded machine gives each
    session its share, not each thread."""
    out = subprocess.run([sys.executable, "-c", CORE_LEG, str(checkpoint)], input=text, capture_output=True,
                         text=True, cwd=ROOT, start_new_session=True, check=True)
    return float(out.stdout.split()[-1])


def app_leg(checkpoint: Path, home: Path, text: str, keys: int) -> tuple[float, list[float]]:
    """The app reading ``text`` pasted as a prompt with Adapt on: (its chars/s, key echoes in
    s). The rate is the app's own, the last its status line showed (characters read over
    the time since the read began, in the app process with its UI running); ``keys`` keys
    are typed into the prompt while it reads."""
    app = PtyApp(checkpoint, home, {"adapt": True, "length": 20, "delay_ms": 0, "seed": 1})
    try:
        app.wait(rb"ready \xc2\xb7 0 chars")
        app.send(PASTE_START + text.encode() + PASTE_END)
        time.sleep(1.0)  # the paste lands in the prompt
        since = app.mark()
        app.send(b"\r")
        app.wait(rb"adapting \xc2\xb7 [0-9]", since)  # the status line (the text itself may say "adapting")
        echoes = []
        for marker in b"@#%*+=~|<>{}_`^"[:keys]:  # in no Shakespeare vocabulary: the prompt's echo only
            time.sleep(0.15)
            mark = app.mark()
            sent = app.send(bytes([marker]))
            at, _ = app.wait(re.escape(bytes([marker])), mark)
            echoes.append(at - sent)
        app.wait(rb"(generating|done) \xc2\xb7 [0-9]+ chars", since, timeout=600)
        with app._lock:
            shown = re.compile(rb"adapting \xc2\xb7 [0-9,]+/[0-9,]+ chars \xc2\xb7 ([0-9,]+) chars/s")
            rates = shown.findall(app.text, since)
        if not rates:
            raise SystemExit("bench: the status line never showed the rate of adapting; use a longer --chars")
        return float(rates[-1].replace(b",", b"")), echoes
    finally:
        app.close()


def main() -> None:
    from charlstm_tui import BUNDLED_CHECKPOINT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    ap.add_argument("--rounds", type=int, default=5, help="legs of each way")
    ap.add_argument("--chars", type=int, default=3_000, help="characters pasted per app leg")
    ap.add_argument("--keys", type=int, default=10, choices=range(1, 16), help="keys timed per app leg")
    args = ap.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"bench: no checkpoint at {args.checkpoint}; pass --checkpoint FILE")
    print(f"checkpoint {args.checkpoint}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    send, fork = weights_legs(args.checkpoint, args.rounds)
    ratios = [f / s for s, f in zip(send, fork)]
    print(f"weights to the child, to its first character: send {statistics.median(send) * 1e3:.0f} ms, "
          f"fork anew {statistics.median(fork) * 1e3:.0f} ms (medians of {args.rounds}); fork / send "
          f"{statistics.median(ratios):.2f}x")

    seed = (ROOT.parent / "shared" / "seed" / "char-lstm-lab.txt")
    source = (seed.read_text(encoding="utf-8", errors="ignore") if seed.is_file()
              else "KING:\nThe crown is mine.\n" * 200)
    from core.checkpoint import load_checkpoint

    vocab = load_checkpoint(args.checkpoint).vocab
    text = vocab.decode(vocab.encode_lenient(source)[0])[:args.chars]
    app_rates, core_rates, echoes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # a core leg, an app leg, then an app leg with keys typed
            core_rates.append(core_rate(args.checkpoint, text))
            app_rates.append(app_leg(args.checkpoint, Path(tmp) / f"rate{r}", text, 0)[0])
            echoes += app_leg(args.checkpoint, Path(tmp) / f"keys{r}", text, args.keys)[1]
    print(f"adapting {len(text):,} pasted chars: app {statistics.median(app_rates):,.0f} chars/s (its status line), "
          f"core {statistics.median(core_rates):,.0f} chars/s; app / core "
          f"{statistics.median(a / c for a, c in zip(app_rates, core_rates)):.2f}   goal >= 1,000 chars/s")
    echoes.sort()
    print(f"key echo while adapting: median {statistics.median(echoes) * 1e3:.0f} ms, worst "
          f"{echoes[-1] * 1e3:.0f} ms of {len(echoes)}   goal <= 50 ms")


if __name__ == "__main__":
    main()
