"""Training speed: this trainer against plain PyTorch loops, side by side, in one run.

Two comparisons, each from the same initial weights for the same number of steps, so the
legs see equal tokens:

1. **The lab's recipe** (1x512 LSTM, B128, T256, AdamW lr 3e-4): the lab's loop exactly as
   the notebook writes it (``nn.Embedding -> nn.LSTM -> nn.Linear``, a Python list of
   slices and ``torch.stack`` for batches, fp32) against this trainer in its chosen
   precision and in fp32 (``--no-amp``).
2. **The bundled recipe** (2x512 LSTM with dropout, B32, T256): a plain PyTorch loop
   (``nn.LSTM(..., dropout=p)`` with ``nn.Dropout`` on the embedding and the output, fp32)
   against this trainer with AWD-LSTM's dropout (locked, weight drop, embedding rows),
   fp32 too.

The legs take turns, one step each, so a busy machine slows them alike. They share this
process, so they share its allocator: ``keep_freed_memory()``, which ``charlstm-tui train``
applies, speeds the plain loops too, and the ratios leave that gain out. Prints tokens/s,
the ratios and, for the lab recipe, the val-loss parity. The first step of each leg is a
warm-up and is left out of the timing.

    python bench/train.py [--steps 20] [--recipe-steps 12] [--data ../shared/data/tinyshakespeare.txt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from core.checkpoint import load_checkpoint
from core.data import TextData, load_text
from core.machine import keep_freed_memory, precision
from core.train import PRESETS, TrainConfig, last_path, train

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"


class PlainLM(nn.Module):
    """The lab's network from stock modules: Embedding -> LSTM -> Linear, with ``nn.Dropout``
    on the embedding and the output and ``nn.LSTM``'s own dropout between layers."""

    def __init__(self, vocab: int, width: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Linear(width, vocab)
        self.drop = nn.Dropout(dropout)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.drop(self.token_embedding(idx)))  # (B, T, C)
        return self.fc(self.drop(x))  # (B, T, V)


def plain_loop(data: TextData, recipe: TrainConfig, steps: int, seed: int) -> Iterator[nn.Module | None]:
    """A plain PyTorch training loop, as the lab writes it; yields after each step, then the model."""
    batch_size, block_size = recipe.batch_size, recipe.block_size
    train_data = data.train.long()  # the lab keeps the text as one int64 tensor

    def get_batch(batch_size: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(train_data) - block_size, (batch_size,))
        x = torch.stack([train_data[i:i + block_size] for i in ix])
        y = torch.stack([train_data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    torch.manual_seed(seed)  # the same initial weights as the trainer's legs
    model = PlainLM(data.vocab.size, recipe.n_embd, recipe.n_layers, recipe.dropout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
    for _ in range(steps):
        x, y = get_batch(batch_size, block_size)
        yhat = model(x)
        B, T, C = yhat.shape
        loss = F.cross_entropy(yhat.view(B * T, C), y.view(B * T))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        yield None
    yield model.eval()


def trainer(data: TextData, recipe: TrainConfig, steps: int, seed: int, amp: bool,
            folder: Path) -> Iterator[nn.Module | None]:
    """This project's trainer on ``recipe``; yields after each step, then the model."""
    config = replace(recipe, max_iters=steps, eval_interval=10**9, eval_iters=1, device="cpu", amp=amp, seed=seed,
                     time_limit=None)
    out = folder / f"{recipe.preset}-amp{int(amp)}.pt"
    events = train(config, data, out)
    for event in events:
        if event.kind == "start":
            print(f"    this trainer ({'--amp' if amp else '--no-amp'}): {event.plan}", flush=True)
        if event.kind == "step":
            yield None
            if event.step == steps:
                break
    for _ in events:  # the final evaluation and save, outside the timed steps
        pass
    yield load_checkpoint(last_path(out)).build_model()


def interleaved(legs: dict[str, Iterator], steps: int, tokens_per_step: int) -> dict[str, tuple[nn.Module, float]]:
    """Step every leg in turn, timing each step; a busy machine then slows all legs alike.
    Returns each leg's final model and tokens/s over steps 2..N (step 1 warms up)."""
    spent = dict.fromkeys(legs, 0.0)
    for step in range(steps):
        for name, leg in legs.items():
            start = time.perf_counter()
            next(leg)
            if step > 0:
                spent[name] += time.perf_counter() - start
    return {name: (next(leg), (steps - 1) * tokens_per_step / spent[name]) for name, leg in legs.items()}


@torch.no_grad()
def val_loss(model: nn.Module, windows: tuple[torch.Tensor, torch.Tensor]) -> float:
    """fp32 loss on fixed val windows: every leg is measured on the same characters."""
    x, y = windows
    logits = model(x)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).item()


def compare(title: str, legs: dict[str, Iterator], steps: int, recipe: TrainConfig,
            windows: tuple[torch.Tensor, torch.Tensor]) -> list[tuple[float, float]]:
    """Run ``legs`` interleaved; print and return each one's (tokens/s, val loss)."""
    print(f"{title}; {steps} steps per leg ({steps * recipe.batch_size * recipe.block_size:,} tokens)", flush=True)
    results = []
    for name, (model, tokens_per_s) in interleaved(legs, steps, recipe.batch_size * recipe.block_size).items():
        results.append((tokens_per_s, val_loss(model, windows)))
        print(f"  {name:<40} {tokens_per_s:>9,.0f} tok/s   val {results[-1][1]:.4f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--steps", type=int, default=20, help="lab recipe: steps per leg, the first one a warm-up")
    parser.add_argument("--recipe-steps", type=int, default=12, help="bundled recipe: steps per leg, the first a warm-up")
    parser.add_argument("--val-windows", type=int, default=64, help="fixed val windows of 256 chars for the loss")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads [default: torch's]")
    parser.add_argument("--only", choices=["lab", "recipe"], default=None, help="run one comparison only")
    args = parser.parse_args()
    if min(args.steps, args.recipe_steps) < 2:
        parser.error("--steps and --recipe-steps must be >= 2 (the first is a warm-up)")

    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    data = TextData.from_text(load_text(args.data))
    windows = data.sample_batch("val", args.val_windows, 256, torch.Generator().manual_seed(0))
    _, why = precision(torch.device("cpu"), True)
    print(f"{torch.get_num_threads()} threads; --amp here means {why}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "lab"):
            lab = PRESETS["lab"]
            (lab_speed, lab_val), (our_speed, our_val), (fp32_speed, fp32_val) = compare(
                "lab recipe: 1x512 LSTM, B128 x T256, AdamW lr 3e-4", {
                    "lab loop (stock modules, list batches, fp32)": plain_loop(data, lab, args.steps, args.seed),
                    "this trainer (--amp)": trainer(data, lab, args.steps, args.seed, True, Path(tmp)),
                    "this trainer (--no-amp, fp32)": trainer(data, lab, args.steps, args.seed, False, Path(tmp)),
                }, args.steps, lab, windows)
            print(f"speed-up vs the lab loop: {our_speed / lab_speed:.2f}x (--amp), {fp32_speed / lab_speed:.2f}x (fp32)")
            print(f"val parity vs the lab loop at equal tokens: |{our_val:.4f} - {lab_val:.4f}| = "
                  f"{abs(our_val - lab_val):.4f} (goal <= 0.02)")
            print(f"--amp vs fp32, same init and batches: |{our_val:.4f} - {fp32_val:.4f}| = "
                  f"{abs(our_val - fp32_val):.4f} (goal <= 0.02)\n", flush=True)
        if args.only in (None, "recipe"):
            recipe = PRESETS["default"]
            (plain_speed, _), (our_speed, _) = compare(
                f"bundled recipe: {recipe.n_layers}x{recipe.n_embd} LSTM, B{recipe.batch_size} x T{recipe.block_size}, "
                f"dropout {recipe.dropout:g} (plain: nn.LSTM's and nn.Dropout; ours: locked, weight drop "
                f"{recipe.weight_drop:g}, embedding rows {recipe.embed_drop:g}), fp32", {
                    "plain loop (nn.LSTM(dropout=p), fp32)": plain_loop(data, recipe, args.recipe_steps, args.seed),
                    "this trainer (--no-amp, fp32)": trainer(data, recipe, args.recipe_steps, args.seed, False, Path(tmp)),
                }, args.recipe_steps, recipe, windows)
            print(f"speed-up vs the plain loop, fp32: {our_speed / plain_speed:.2f}x (goal >= 1.6x)")


if __name__ == "__main__":
    main()
