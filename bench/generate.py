"""Generation speed: stateful (carried state, fused step) vs window (the lab's re-read).

One 1x512 model (random init: speed does not depend on the weights), vocab 65, fp32 on
the CPU. Window mode is timed at its full 256-character window: its context is primed
past 256 characters first, so every step re-reads all 256.

    python bench/generate.py [--chunks 10] [--chunk 2000] [--window-chunk 20] [--threads N]

Goal (issue 2, 2-core CPU): stateful >= 10,000 chars/s and >= 150x window. Then 64
samples of a 10,000-character prompt against one: at most 2x (issue 13).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from core.model import LMNet, ModelConfig  # noqa: E402
from core.sampling import SampleConfig, Sampler  # noqa: E402
from core.vocab import CharVocab  # noqa: E402

WINDOW = 256


def chars_per_s(sampler: Sampler, prompt: str, config: SampleConfig, chunks: int, chunk: int) -> tuple[float, float]:
    """(best, median) chars/s over ``chunks`` timed chunks of ``chunk`` characters of one
    stream, after priming. The best chunk is the figure on a machine shared with other
    work; the median shows how much that work interfered."""
    stream = sampler.stream(prompt, config.with_(length=chunks * chunk + 1))
    next(stream)  # priming the prompt is not per-character cost
    rates = []
    for _ in range(chunks):
        start = time.perf_counter()
        for _ in range(chunk):
            next(stream)
        rates.append(chunk / (time.perf_counter() - start))
    return max(rates), statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=10, help="timed chunks per mode")
    ap.add_argument("--chunk", type=int, default=2000, help="characters per stateful chunk")
    ap.add_argument("--window-chunk", type=int, default=20, help="characters per window chunk")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    vocab = CharVocab(tuple(chr(32 + i) for i in range(65)))
    sampler = Sampler(LMNet(ModelConfig(vocab.size, n_embd=512, n_layers=1)), vocab)
    prompt = "".join(vocab.chars[i % vocab.size] for i in range(WINDOW + 44))  # > 256: full window from step 1
    cfg = SampleConfig(temperature=0.8, seed=0, block_size=WINDOW)

    stateful, stateful_med = chars_per_s(sampler, prompt, cfg, args.chunks, args.chunk)
    window, window_med = chars_per_s(sampler, prompt, cfg.with_(mode="window"), args.chunks, args.window_chunk)
    print(f"model 1x512 LSTM, vocab 65, fp32, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"best (median) of {args.chunks} chunks")
    print(f"stateful  {stateful:10,.0f} chars/s  ({stateful_med:,.0f})   chunks of {args.chunk:,} chars")
    print(f"window    {window:10,.1f} chars/s  ({window_med:,.1f})   chunks of {args.window_chunk} chars, "
          f"full {WINDOW}-char window")
    print(f"ratio     {stateful / window:10,.0f}x  stateful / window   (goal: >= 10,000 chars/s and >= 150x)")

    # Many samples of one long prompt: the prompt is read once and its state shared, so
    # 64 samples cost about what one does (goal, issue 13: at most 2x, in time and memory).
    long_prompt = "".join(vocab.chars[(i * 7) % vocab.size] for i in range(10_000))
    few = SampleConfig(temperature=0.8, seed=0, length=200)
    times: dict[int, list[float]] = {1: [], 64: []}
    for _ in range(3):  # interleaved, so both see the same machine
        for n in times:
            start = time.perf_counter()
            sampler.generate_batch(long_prompt, few, n)
            times[n].append(time.perf_counter() - start)
    one, many = statistics.median(times[1]), statistics.median(times[64])
    print(f"samples   1 x 200 chars of a 10,000-char prompt {one:.2f} s; 64 x 200 {many:.2f} s: "
          f"{many / one:.2f}x  (goal: <= 2x)")


if __name__ == "__main__":
    main()
