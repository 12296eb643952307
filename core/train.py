"""Training as a generator of progress events.

``train()`` knows nothing about printing: it yields :class:`Progress` after every step
and evaluation, and honours a stop event between steps. The CLI renders the events
(progress bar or log lines); the app draws them as live curves.

Checkpoints: ``out`` always holds the best model by val loss; ``<out>.last.pt`` beside
it holds the latest state with the optimizer and RNG states, for an exact resume; and
``<out>.metrics.jsonl`` gets one line per evaluation.

Under torchrun (``WORLD_SIZE > 1``) the same function trains with DDP: every rank
samples its own batches, rank 0 evaluates and saves while the others wait.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.nn import functional as F

from .adapt_stats import store_stats
from .checkpoint import Checkpoint, save_checkpoint, state_digest
from .data import VAL_FRACTION, TextData
from .ema import WeightAverage
from .errors import ConfigError, TrainingError
from .evaluate import estimate_loss, evaluate as evaluate_split
from .files import append_bytes, atomic_write, check_output, claim_outputs
from .machine import choose_lstm, choose_threads, precision
from .memory import training_problem
from .model import RATES, LMNet, ModelConfig
from .options import MAX_SEED
from .schema import dataclass_kwargs


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run. Presets below fill it; CLI options override fields."""

    preset: str = "default"
    # model
    n_embd: int = 512
    n_layers: int = 2
    dropout: float = 0.3  # locked, on each layer's output (see core/model.py)
    weight_drop: float = 0.0  # DropConnect on W_hh
    embed_drop: float = 0.0  # whole embedding rows
    # optimiser and schedule
    batch_size: int = 32
    block_size: int = 256
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    ema: float = 0.0  # decay of the weight average that is evaluated and saved; 0 = off
    # run length and evaluation
    max_iters: int = 6000
    eval_interval: int = 250
    eval_iters: int = 50
    # runtime
    device: str = "auto"
    amp: bool = True
    seed: int = 1337
    time_limit: float | None = None  # minutes; the lr schedule ends with whichever budget ends first

    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first option out of range; return self."""
        for name, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed must be in 0..{MAX_SEED:,}, got {self.seed}")
        positive = ("n_embd", "n_layers", "batch_size", "block_size", "max_iters", "eval_interval", "eval_iters")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in RATES:
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ConfigError(f"need 0 < --lr and 0 <= --min-lr <= --lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.warmup_iters < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("--warmup-iters, --weight-decay and --grad-clip must be >= 0")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"--ema must be in [0, 1) (0 = off; 0.999 averages about the last 1,000 steps), got {self.ema}")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {self.device!r}")
        return self

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size, self.n_embd, self.n_layers, **{name: getattr(self, name) for name in RATES})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """From a checkpoint's ``train.config``; a field of the wrong type raises
        :class:`core.schema.SchemaError` naming it, unknown fields are left out."""
        return cls(**dataclass_kwargs(cls, d, "train.config"))


PRESETS: dict[str, TrainConfig] = {
    # The lab, exactly: a 1-layer LSTM, AdamW(model.parameters(), lr=3e-4) with torch's
    # defaults (betas 0.9/0.999, weight decay 0.01 on every parameter), constant lr, no
    # clipping, no dropout, B128 x T256, 10k iterations, eval every 500 over 200 batches.
    # The notebook hides n_embd; 512 is the size the figures in the issues were measured
    # with, and a multiple of 128 suits cuDNN's persistent LSTM kernels.
    "lab": TrainConfig(
        preset="lab", n_embd=512, n_layers=1, dropout=0.0, batch_size=128, block_size=256,
        lr=3e-4, min_lr=3e-4, warmup_iters=0, weight_decay=0.01, grad_clip=0.0,
        max_iters=10_000, eval_interval=500, eval_iters=200,
    ),
    # Ours, tuned for val loss: a 2x512 LSTM, dropout, weight decay, warm-up, cosine decay, clipping.
    "default": TrainConfig(),
}


def preset(name: str) -> TrainConfig:
    """A preset by name: lab, default or quick."""
    if name == "quick":
        from .quick import QUICK

        return QUICK
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose lab, default or quick")
    return PRESETS[name]


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """``config`` with every non-None override applied."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Progress:
    """One event of a run. ``kind`` is "start" (first, once the run is set up), "step"
    (after every optimizer step), "eval" (after every evaluation, once its checkpoints are
    written) or "done" (last)."""

    kind: str
    step: int
    max_iters: int
    fraction: float = 0.0  # how far the run is, 0..1: by steps or by the time limit, whichever is further
    loss: float | None = None  # step: this step's training loss (mean over ranks)
    train_loss: float | None = None  # eval: estimate over fresh batches
    val_loss: float | None = None
    best_val_loss: float | None = None
    improved: bool = False  # eval: this evaluation set a new best and was saved to ``out``
    lr: float = 0.0
    tokens_per_s: float = 0.0  # all ranks together, since the last evaluation
    elapsed: float = 0.0  # seconds of training in this run and the runs it resumes
    eta: float | None = None  # seconds
    path: str | None = None  # done: the best checkpoint, None if nothing was saved
    reason: str = ""  # done: "finished", "stopped" or "time limit"
    plan: str = ""  # start: the precision and LSTM path this run computes with, and why


CHECKPOINT_MAGIC = (b"PK\x03\x04",)  # torch.save's zip: what an existing --out must be, to be replaced
METRICS_MAGIC = (b"{",)  # a JSON line


def last_path(out: Path) -> Path:
    """The resume file beside the best checkpoint: ``model.pt`` -> ``model.last.pt``."""
    return out.with_name(out.stem + ".last" + out.suffix)


def metrics_path(out: Path) -> Path:
    """The evaluation history beside the best checkpoint: ``model.metrics.jsonl``."""
    return out.with_name(out.stem + ".metrics.jsonl")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu or install a CUDA build of torch")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps asked for, but MPS is not available; use --device cpu")
    return torch.device(name)


def lr_at(config: TrainConfig, progress: float, step: int) -> float:
    """Linear warm-up over the first steps, then cosine from lr to min_lr as ``progress`` goes 0 -> 1."""
    if step < config.warmup_iters:
        return config.lr * (step + 1) / config.warmup_iters
    ratio = min(max(progress, 0.0), 1.0)
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (config.lr - config.min_lr)


# -- distributed ----------------------------------------------------------------------------

@dataclass
class _Dist:
    """This process's place in a torchrun job; every method is a no-op when alone."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def step_sync(self, loss: torch.Tensor, stop: bool, out_of_time: bool) -> tuple[float, bool, bool]:
        """(mean loss over ranks, any rank asked to stop, any rank out of time) in one
        collective, so all ranks see the same NaN and leave the loop at the same step
        for the same reason."""
        if self.world == 1:
            return loss.item(), stop, out_of_time
        flags = torch.tensor([float(stop), float(out_of_time)], device=loss.device)
        both = torch.cat([loss.detach().float().reshape(1), flags])
        torch.distributed.all_reduce(both)
        total, stops, times = both.tolist()
        return total / self.world, stops > 0, times > 0

    def broadcast(self, values: list[float], device: torch.device) -> list[float]:
        """Rank 0's values on every rank."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.broadcast(t, 0)
        return t.tolist()

    def gather(self, state: dict[str, torch.Tensor], device: torch.device) -> list[dict[str, torch.Tensor]]:
        """Every rank's ``state`` (same keys and shapes on all ranks), in rank order, on the CPU."""
        if self.world == 1:
            return [state]
        gathered: list[dict[str, torch.Tensor]] = [{} for _ in range(self.world)]
        for key, tensor in state.items():
            parts = [torch.empty_like(tensor, device=device) for _ in range(self.world)]
            torch.distributed.all_gather(parts, tensor.to(device))
            for rank, part in enumerate(parts):
                gathered[rank][key] = part.cpu()
        return gathered

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()


def _init_distributed(device: torch.device) -> tuple[_Dist, torch.device]:
    """Under torchrun (WORLD_SIZE > 1), join the process group: nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank, world, owns), device


# -- random streams ---------------------------------------------------------------------------

def _seed(*parts: int) -> int:
    """A 63-bit seed from integers; different tuples give unrelated streams."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def _seed_streams(seed: int, rank: int, step: int, batch_gen: torch.Generator) -> None:
    """Each rank's own dropout (global RNG) and batch streams, reproducible from the seed."""
    torch.manual_seed(_seed(seed, rank, step, 1))
    batch_gen.manual_seed(_seed(seed, rank, step, 2))


def _rng_state(batch_gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "batch": batch_gen.get_state().cpu()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], batch_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    batch_gen.set_state(state["batch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# -- the loop ---------------------------------------------------------------------------------

def train(
    config: TrainConfig,
    data: TextData,
    out: str | Path,
    resume: Checkpoint | None = None,
    stop: threading.Event | None = None,
    data_name: str = "",
    inputs: Sequence[tuple[str, Path]] = (),
    init: Checkpoint | None = None,
) -> Iterator[Progress]:
    """Train, yielding :class:`Progress`; returns after the "done" event.

    ``stop`` ends the run after the step in progress, with the latest state saved.
    ``resume`` is a checkpoint read from a ``.last.pt`` file: the run continues the same
    curve, step for step. Raises :class:`ConfigError` for a block too long for the text,
    :class:`TrainingError` on a non-finite loss or a resume that does not fit (the last
    good checkpoint stays), and :class:`CheckpointError` when ``out`` cannot be written.
    ``inputs``: ``(option, path)`` of the files the run reads (the text); no output may be
    one of them, nor the ``resume`` file, except ``<out>.last.pt``, which continues it.
    ``init``: a checkpoint whose weights a new run starts from (a fine-tune: fresh
    optimizer, schedule and history); its model shape and vocabulary must be this run's.
    """
    config.validate()
    out = Path(out).expanduser()
    device = resolve_device(config.device)
    dist, device = _init_distributed(device)
    too_big = training_problem(config.model_config(data.vocab.size), config.batch_size, config.block_size, device)
    if too_big:  # before the model is built: building it would be the hang
        raise ConfigError(too_big)
    if resume is not None and (resume.resume is None or "rng" not in resume.resume):
        raise TrainingError("this checkpoint has no optimizer state; resume from the '.last.pt' file written beside it")
    if resume is not None and init is not None:
        raise ConfigError("--resume continues a run and --init-from starts a new one; pass one of them")
    if init is not None:
        _check_fits(init, config.model_config(data.vocab.size), data, "--init-from", "start from")
    lock, threads = None, torch.get_num_threads()  # the run may train on fewer (choose_threads)
    try:
        if dist.main:  # every output checked and locked before the first step
            reads = [*inputs, *([("--resume", resume.path)] if resume is not None and resume.path else []),
                     *([("--init-from", init.path)] if init is not None and init.path else [])]
            check_output(out, "checkpoint", reads, starts_with=CHECKPOINT_MAGIC)  # the other names come from it
            lock = claim_outputs([(out, "checkpoint", reads, CHECKPOINT_MAGIC),
                                  (last_path(out), "checkpoint", inputs, CHECKPOINT_MAGIC),
                                  (metrics_path(out), "metrics file", reads, METRICS_MAGIC)])
        yield from _train(config, data, out, resume, stop or threading.Event(), data_name, dist, device, init)
    finally:
        torch.set_num_threads(threads)
        if lock is not None:
            lock.release()
        dist.close()


def _train(config: TrainConfig, data: TextData, out: Path, resume: Checkpoint | None, stop: threading.Event,
           data_name: str, dist: _Dist, device: torch.device, init: Checkpoint | None) -> Iterator[Progress]:
    if len(data.train) <= config.block_size or len(data.val) <= config.block_size:
        splits = f"train split {len(data.train):,}, val split {len(data.val):,} chars"
        if config.block_size == 1:  # no smaller block to suggest: the text itself is too short
            raise ConfigError(f"the text is too short to train on ({splits}: each needs at least 2); "
                              f"use a text of at least {_chars_for_block(1):,} characters")
        raise ConfigError(f"--block-size {config.block_size} is too long for this text ({splits}); use a smaller "
                          "--block-size or a longer text")
    amp_dtype, precision_why = precision(device, config.amp)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    model_config = config.model_config(data.vocab.size)
    torch.manual_seed(config.seed)  # the same init on every rank (DDP broadcasts rank 0's anyway)
    model = LMNet(model_config)
    if init is not None:
        model.load_state_dict({k: v.float() for k, v in init.state_dict.items()})
    model = model.to(device)
    optimizer = _optimizer(model, config, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    batch_gen = torch.Generator(device=device)

    step, elapsed_before, history, best_val = 0, 0.0, [], math.inf
    if resume is None:
        _seed_streams(config.seed, dist.rank, 0, batch_gen)
    else:
        step, elapsed_before, history, best_val = _restore(resume, model, optimizer, scaler, batch_gen,
                                                           model_config, data, config, dist, device)
        if step >= config.max_iters:  # checked before anything is written
            raise ConfigError(f"the resumed run is at step {step:,} already, so --max-iters {config.max_iters:,} "
                              "leaves nothing to train; pass a larger --max-iters")
    average = None
    if config.ema > 0:
        average = WeightAverage(model, config.ema, (resume.resume or {}).get("ema") if resume else None)
    net = model
    threads, threads_why = _threads(net, config, device, amp_dtype, resume)
    torch.set_num_threads(threads)
    net.table_lstm, lstm_why = _lstm_path(net, config, device, amp_dtype, resume, dist)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    data = data.to(device)  # batches are gathered where the model is
    tokens_per_step = config.batch_size * config.block_size * dist.world
    time_budget = config.time_limit * 60 if config.time_limit else None
    run_start = time.perf_counter()
    metrics_synced = False  # the first write of a run replaces the file with the full history
    saved: dict[str, int] = {}  # the step each file holds, of those this run wrote: "best", "last"

    def averaged() -> Any:
        """Evaluations and the best file see the weight average, when the run keeps one."""
        return average.applied() if average is not None else nullcontext()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_start

    def fraction() -> float:
        by_steps = step / config.max_iters
        return by_steps if time_budget is None else min(max(by_steps, elapsed() / time_budget), 1.0)

    def snapshot(rng: list[dict[str, torch.Tensor]] | None) -> Checkpoint:
        meta = {
            "step": step, "best_val_loss": None if best_val == math.inf else best_val, "history": history,
            "config": config.to_dict(), "elapsed": elapsed(), "tokens_seen": step * tokens_per_step,
            "data": data_name, "data_chars": len(data.train) + len(data.val), "world_size": dist.world,
        }
        started_from = str(init.path or "") if init is not None else (resume.train.get("init_from") if resume else None)
        if started_from is not None:
            meta["init_from"] = started_from
        state = None
        if rng is not None:
            state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "rng": rng,
                     "table_lstm": net.table_lstm, "threads": threads}
            if average is not None:
                state["ema"] = average.state_dict()
        return Checkpoint(model_config, data.vocab, net.state_dict(), meta, state)

    def save(best: bool) -> None:
        """Best (if asked), then last, then metrics. Collective: every rank calls it."""
        nonlocal metrics_synced
        rng = dist.gather(_rng_state(batch_gen, device), device)
        if dist.main:
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                raise TrainingError(f"the weights became NaN or inf by step {step}: lower --lr or set --grad-clip; "
                                    f"{_kept(out, saved, history)}")
            if best:
                with averaged():
                    save_checkpoint(out, snapshot(rng=None))
                saved["best"] = step
            save_checkpoint(last_path(out), snapshot(rng))
            saved["last"] = step
            _write_metrics(out, history if not metrics_synced else history[-1:], append=metrics_synced)
            metrics_synced = True
        dist.barrier()  # the other ranks wait while rank 0 writes

    def evaluate(lr: float, tokens_per_s: float) -> Progress:
        nonlocal best_val
        with averaged():
            train_loss, val_loss = _estimate(model, data, config, step, device, amp_dtype, dist)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise TrainingError(f"the loss became {val_loss} at step {step}: lower --lr or set --grad-clip; "
                                f"{_kept(out, saved, history)}")
        history.append({"step": step, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                        "tokens_per_s": tokens_per_s, "elapsed": elapsed()})
        improved = val_loss < best_val
        best_val = min(best_val, val_loss)
        save(best=improved)
        return Progress("eval", step, config.max_iters, fraction(), train_loss=train_loss, val_loss=val_loss,
                        best_val_loss=best_val, improved=improved, lr=lr, tokens_per_s=tokens_per_s,
                        elapsed=elapsed(), eta=_eta(config, step, elapsed(), time_budget))

    yield Progress("start", step, config.max_iters, fraction(), best_val_loss=_finite(best_val),
                   elapsed=elapsed(), plan=f"{device.type}, {threads_why}, {precision_why}; {lstm_why}")
    model.train()
    window_start, window_steps = time.perf_counter(), 0
    lr, tokens_per_s, reason, halt = lr_at(config, fraction(), step), 0.0, "finished", False
    while step < config.max_iters and not halt:
        lr = lr_at(config, fraction(), step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = data.sample_batch("train", config.batch_size, config.block_size, batch_gen)  # (B, T) each
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, _ = model(x)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        # Decide whether to stop before the update, in the same collective on every rank;
        # the step in progress still finishes.
        loss_value, stopped, out_of_time = dist.step_sync(
            loss, stop.is_set(), time_budget is not None and elapsed() >= time_budget)
        halt = stopped or out_of_time
        if not math.isfinite(loss_value):
            raise TrainingError(f"the loss became {loss_value} at step {step}: lower --lr or set --grad-clip; "
                                f"{_kept(out, saved, history)}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        try:
            scaler.step(optimizer)
        except RuntimeError as e:  # an absurd --lr: AdamW's step size itself overflows
            if "overflow" not in str(e):
                raise
            raise TrainingError(f"the update overflowed at step {step} (lr {lr:g}): lower --lr; "
                                   f"{_kept(out, saved, history)}") from None
        scaler.update()
        if average is not None:
            average.update()
        step += 1
        window_steps += 1
        tokens_per_s = window_steps * tokens_per_step / max(time.perf_counter() - window_start, 1e-9)
        yield Progress("step", step, config.max_iters, fraction(), loss=loss_value, best_val_loss=_finite(best_val),
                       lr=lr, tokens_per_s=tokens_per_s, elapsed=elapsed(), eta=_eta(config, step, elapsed(), time_budget))
        if halt:
            reason = "stopped" if stopped else "time limit"
        if step % config.eval_interval == 0 or step == config.max_iters or (halt and reason == "time limit"):
            # A run that ends by its time limit ends with an evaluation, as one at max_iters does.
            yield evaluate(lr, tokens_per_s)
            window_start, window_steps = time.perf_counter(), 0  # tokens/s leaves evaluation out

    if step > 0 and not (history and history[-1]["step"] == step):
        # Stopped between evaluations: keep the latest state for resume. With no best yet,
        # ``out`` gets these weights, unevaluated, so there is always a model to use; the
        # run's best-val record stays empty so a resumed run continues exactly.
        save(best=best_val == math.inf)
    if dist.main and step > 0:
        # What adapting to a text divides its steps by (core/adapt.py), measured once on
        # the best weights, so no user of this file waits for them.
        store_stats(out, data.train.cpu(), f"{data_name or 'training text'} (train split)")
    _write_replica_digest(net, batch_gen, dist)
    yield Progress("done", step, config.max_iters, fraction(), best_val_loss=_finite(best_val), lr=lr,
                   tokens_per_s=tokens_per_s, elapsed=elapsed(), eta=0.0,
                   path=str(out) if step > 0 else None, reason=reason)


def _threads(net: LMNet, config: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None,
             resume: Checkpoint | None) -> tuple[int, str]:
    """Torch threads for the run, and why. A resumed run keeps its run's count where this
    machine has it (a GEMM's sums follow its threads, so the curve stays bit for bit)."""
    recorded = (resume.resume or {}).get("threads") if resume is not None else None
    if isinstance(recorded, int) and not isinstance(recorded, bool) and 1 <= recorded <= torch.get_num_threads():
        return recorded, f"{recorded} thread{'s' if recorded > 1 else ''}, as in the run it resumes"
    return choose_threads(net, config.batch_size, config.block_size, device, amp_dtype)


def _lstm_path(net: LMNet, config: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None,
               resume: Checkpoint | None, dist: _Dist) -> tuple[bool, str]:
    """Whether to train on the table LSTM, and why. A resumed run keeps its run's choice, so
    it continues the same curve bit for bit; every rank takes rank 0's."""
    recorded = (resume.resume or {}).get("table_lstm") if resume is not None else None
    if isinstance(recorded, bool) and (device.type == "cpu" or not recorded):
        return recorded, ("the table LSTM" if recorded else "torch's LSTM") + ", as in the run it resumes"
    table, why = choose_lstm(net, config.batch_size, config.block_size, device, amp_dtype)
    if dist.world > 1:
        chosen = bool(dist.broadcast([float(table)], device)[0])
        table, why = chosen, why if chosen == table else ("the table LSTM" if chosen else "torch's LSTM") + " (rank 0's probe)"
    return table, why


def _chars_for_block(block_size: int) -> int:
    """The shortest text whose train and val splits each hold a block and its target."""
    n = block_size + 1
    while min(int(n * (1 - VAL_FRACTION)), n - int(n * (1 - VAL_FRACTION))) <= block_size:  # TextData's split
        n += 1
    return n


def _optimizer(model: LMNet, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW. The lab decays every parameter with torch's default betas; ours spares
    biases (1-D) the decay and uses nanoGPT's beta2 of 0.99, better for small batches."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.preset == "lab":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **fused)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99), **fused)


def _estimate(model: torch.nn.Module, data: TextData, config: TrainConfig, step: int, device: torch.device,
              amp_dtype: torch.dtype | None, dist: _Dist) -> tuple[float, float]:
    """(train, val) loss on rank 0, shared with every rank: train over fresh random batches;
    val over fresh random batches too, or over the whole split where that reads fewer
    characters: then it is exact (``charlstm-tui eval``'s figure), so the best checkpoint is
    picked by the true val loss rather than by a sample's noise (about ±0.01 at 40 batches)."""
    losses = [math.nan, math.nan]
    if dist.main:
        # Fresh batches each time, yet reproducible: this generator depends only on the
        # step, so evaluations never shift the training streams (resume stays exact).
        gen = torch.Generator(device=device).manual_seed(_seed(config.seed, step, 3))
        losses = [estimate_loss(model, data, "train", config.eval_iters, config.batch_size, config.block_size,
                                gen, device, amp_dtype)]
        if len(data.val) <= config.eval_iters * config.batch_size * config.block_size:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                losses.append(evaluate_split(model, data, "val", config.block_size).loss)
        else:
            losses.append(estimate_loss(model, data, "val", config.eval_iters, config.batch_size, config.block_size,
                                        gen, device, amp_dtype))
    train_loss, val_loss = dist.broadcast(losses, device)
    return train_loss, val_loss


def _write_metrics(out: Path, events: list[dict[str, Any]], append: bool) -> None:
    """Append ``events`` as JSON lines, or replace the file with them (a new or resumed run)."""
    lines = "".join(json.dumps(e) + "\n" for e in events).encode()
    path = metrics_path(out)
    if append:
        append_bytes(path, lines, "metrics file")
    else:
        with atomic_write(path, "metrics file") as f:
            f.write(lines)


def _kept(out: Path, saved: dict[str, int], history: list[dict[str, Any]]) -> str:
    """What a diverged run leaves behind, said as it is: the steps the files this run
    wrote hold, and their val loss where it was measured (a file is saved only with
    finite weights, but a diverging run's last state may already be poor)."""
    if not saved:
        there = [str(p) for p in (out, last_path(out)) if p.exists()]
        return f"this run saved nothing: {' and '.join(there)} are as they were" if there else "no checkpoint was saved"
    val = {h["step"]: h["val_loss"] for h in history}

    def at(step: int) -> str:
        loss = val.get(step)
        return f"step {step:,} " + ("(not evaluated)" if loss is None else f"(val {loss:.4f})" if abs(loss) < 1e6
                                    else f"(val {loss:.3g})")

    last = f"the state at {at(saved['last'])}, the last one saved"
    if "best" not in saved:
        return f"{last_path(out)} holds {last}"
    return f"{out} holds the best model, from {at(saved['best'])}, and {last_path(out)} {last}"


def _eta(config: TrainConfig, step: int, elapsed: float, time_budget: float | None) -> float | None:
    if step == 0:
        return None
    by_steps = elapsed / step * (config.max_iters - step)
    return by_steps if time_budget is None else min(by_steps, max(time_budget - elapsed, 0.0))


def _finite(x: float) -> float | None:
    return None if x == math.inf else x


def _restore(resume: Checkpoint, model: LMNet, optimizer: torch.optim.Optimizer, scaler: Any,
             batch_gen: torch.Generator, model_config: ModelConfig, data: TextData, config: TrainConfig,
             dist: _Dist, device: torch.device) -> tuple[int, float, list[dict[str, Any]], float]:
    """Load a "last" checkpoint's full state; refuse one that does not fit this run."""
    _check_fits(resume, model_config, data, "--resume", "resume with")
    model.load_state_dict(resume.state_dict)
    try:
        optimizer.load_state_dict(resume.resume["optimizer"])
    except ValueError:
        raise TrainingError("the checkpoint's optimizer state does not fit this preset's optimizer; "
                            "resume with the preset it was trained with") from None
    scaler.load_state_dict(resume.resume.get("scaler") or {})
    rng = resume.resume["rng"]
    if len(rng) == dist.world:
        _set_rng_state(rng[dist.rank], batch_gen, device)
    else:  # another number of ranks: fresh, distinct streams from here on
        _seed_streams(config.seed, dist.rank, resume.step, batch_gen)
    best = resume.best_val_loss
    return resume.step, float(resume.train.get("elapsed", 0.0)), resume.history, best if best is not None else math.inf


def _check_fits(ckpt: Checkpoint, model_config: ModelConfig, data: TextData, option: str, verb: str) -> None:
    """Refuse a checkpoint whose vocabulary or model shape is not this run's. Dropout rates
    are regularisers, not shapes: a run may change them, as it may the lr."""
    if ckpt.vocab != data.vocab:
        raise TrainingError(f"{option}: the checkpoint's vocabulary differs from this data's; {verb} the text it "
                            "was trained on")
    if replace(ckpt.model_config, **{name: getattr(model_config, name) for name in RATES}) != model_config:
        raise TrainingError(
            f"{option}: the checkpoint's model ({_shape(ckpt.model_config)}) differs from the options "
            f"({_shape(model_config)}); drop the model options or match them"
        )


def _shape(c: ModelConfig) -> str:
    return f"{c.n_layers}x{c.n_embd}"


REPLICA_DIGEST_ENV = "CHARLSTM_REPLICA_DIGEST_DIR"


def _write_replica_digest(net: LMNet, batch_gen: torch.Generator, dist: _Dist) -> None:
    """For the DDP test: when the env var names a folder, every rank writes there a digest
    of its final weights and of its batch stream's state, so replicas can be compared."""
    folder = os.environ.get(REPLICA_DIGEST_ENV)
    if not folder:
        return
    digest = {"rank": dist.rank, "weights": state_digest(net.state_dict()),
              "batch_rng": state_digest({"batch": batch_gen.get_state()})}
    Path(folder, f"rank{dist.rank}.json").write_text(json.dumps(digest), encoding="utf-8")
