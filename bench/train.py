"""Training speed: this trainer against a faithful re-implementation of the lab's loop.

Both train the lab's model and recipe (1x512 LSTM, B128, T256, AdamW lr 3e-4) from the
same initial weights for the same number of steps, so they see equal tokens. The lab
loop samples with a Python list of slices and ``torch.stack`` and runs in fp32; this
trainer gathers batches in one indexing op and uses bf16 autocast where the CPU has it.
A third leg runs this trainer in fp32 (``--no-amp``) on the same batches, to isolate
what bf16 does to the loss. The legs take turns, one step each, so a busy machine slows
them alike. Prints tokens/s, the ratio and the val-loss parity.

    python bench/train.py [--steps 20] [--data ../shared/data/tinyshakespeare.txt]

The first step of each leg is a warm-up and is left out of the timing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch
from torch.nn import functional as F

from core.checkpoint import load_checkpoint
from core.data import TextData, load_text
from core.model import LMNet
from core.train import PRESETS, amp_dtype_for, last_path, train

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"


def lab_loop(data: TextData, steps: int, seed: int) -> Iterator[LMNet | None]:
    """The notebook's training loop, as written there; yields after each step, then the model."""
    lab = PRESETS["lab"]
    batch_size, block_size, lr = lab.batch_size, lab.block_size, lab.lr
    train_data = data.train.long()  # the lab keeps the text as one int64 tensor

    def get_batch(batch_size: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(train_data) - block_size, (batch_size,))
        x = torch.stack([train_data[i:i + block_size] for i in ix])
        y = torch.stack([train_data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    torch.manual_seed(seed)  # the same initial weights as the trainer's legs
    model = LMNet(lab.model_config(data.vocab.size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        x, y = get_batch(batch_size, block_size)
        yhat, _ = model(x)
        B, T, C = yhat.shape
        loss = F.cross_entropy(yhat.view(B * T, C), y.view(B * T))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        yield None
    yield model


def trainer(data: TextData, steps: int, seed: int, amp: bool, folder: Path) -> Iterator[LMNet | None]:
    """This project's trainer on the lab preset; yields after each step, then the model."""
    config = replace(PRESETS["lab"], max_iters=steps, eval_interval=10**9, eval_iters=1, device="cpu", amp=amp,
                     seed=seed)
    out = folder / f"amp{int(amp)}.pt"
    events = train(config, data, out)
    for event in events:
        if event.kind == "step":
            yield None
            if event.step == steps:
                break
    for _ in events:  # the final evaluation and save, outside the timed steps
        pass
    yield load_checkpoint(last_path(out)).build_model()


def interleaved(legs: dict[str, Iterator], steps: int) -> dict[str, tuple[LMNet, float]]:
    """Step every leg in turn, timing each step; a busy machine then slows all legs alike.
    Returns each leg's final model and tokens/s over steps 2..N (step 1 warms up)."""
    spent = dict.fromkeys(legs, 0.0)
    for step in range(steps):
        for name, leg in legs.items():
            start = time.perf_counter()
            next(leg)
            if step > 0:
                spent[name] += time.perf_counter() - start
    tokens = (steps - 1) * PRESETS["lab"].batch_size * PRESETS["lab"].block_size
    results = {}
    for name, leg in legs.items():
        results[name] = (next(leg), tokens / spent[name])
    return results


@torch.no_grad()
def val_loss(model: LMNet, windows: tuple[torch.Tensor, torch.Tensor]) -> float:
    """fp32 loss on fixed val windows: every leg is measured on the same characters."""
    model.eval()
    x, y = windows
    return model.loss(x, y).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--steps", type=int, default=20, help="steps per leg, the first one a warm-up")
    parser.add_argument("--val-windows", type=int, default=64, help="fixed val windows of 256 chars for the loss")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads [default: torch's]")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first is a warm-up)")

    if args.threads:
        torch.set_num_threads(args.threads)
    data = TextData.from_text(load_text(args.data))
    gen = torch.Generator().manual_seed(0)
    windows = data.sample_batch("val", args.val_windows, PRESETS["lab"].block_size, gen)
    amp = amp_dtype_for(torch.device("cpu"), True)
    print(f"lab config: 1x512 LSTM, B128 x T256, AdamW lr 3e-4; {args.steps} steps per leg "
          f"({args.steps * 128 * 256:,} tokens); {torch.get_num_threads()} threads; "
          f"autocast {str(amp).replace('torch.', '') if amp else 'unavailable (fp32)'}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        legs = {
            "lab loop (list get_batch, fp32)": lab_loop(data, args.steps, args.seed),
            "this trainer (--amp)": trainer(data, args.steps, args.seed, True, Path(tmp)),
            "this trainer (--no-amp, fp32)": trainer(data, args.steps, args.seed, False, Path(tmp)),
        }
        results = interleaved(legs, args.steps)
    for name, (model, tokens_per_s) in results.items():
        results[name] = (tokens_per_s, val_loss(model, windows))
        print(f"  {name:<32} {tokens_per_s:>9,.0f} tok/s   val {results[name][1]:.4f}")

    (lab_speed, lab_val), (our_speed, our_val), (fp32_speed, fp32_val) = results.values()
    print(f"speed-up, this trainer vs the lab loop: {our_speed / lab_speed:.2f}x (goal >= 1.8x); "
          f"fp32 alone: {fp32_speed / lab_speed:.2f}x")
    print(f"val parity vs the lab loop at equal tokens: |{our_val:.4f} - {lab_val:.4f}| = {abs(our_val - lab_val):.4f} "
          "(goal <= 0.02)")
    print(f"bf16 vs fp32, same init and batches: |{our_val:.4f} - {fp32_val:.4f}| = {abs(our_val - fp32_val):.4f} "
          "(goal <= 0.02)")


if __name__ == "__main__":
    main()
