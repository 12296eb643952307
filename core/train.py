"""Training as a generator of progress events.

``train()`` knows nothing about printing: it yields :class:`Progress` after every step
and evaluation, and honours a stop event between steps. The CLI renders the events
(progress bar or log lines); the app draws them as live curves.

Checkpoints: ``out`` always holds the best model by val loss; ``<out>.last.pt`` beside
it holds the latest state with the optimizer and RNG states, for an exact resume; and
``<out>.metrics.jsonl`` gets one line per evaluation.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator

import torch

from .checkpoint import Checkpoint, save_checkpoint
from .data import TextData
from .errors import ConfigError, TrainingError
from .evaluate import estimate_loss
from .model import LMNet, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run. Presets below fill it; CLI options override fields."""

    preset: str = "default"
    # model
    n_embd: int = 512
    n_layers: int = 2
    dropout: float = 0.3
    # optimiser and schedule
    batch_size: int = 32
    block_size: int = 256
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
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
        positive = ("n_embd", "n_layers", "batch_size", "block_size", "max_iters", "eval_interval", "eval_iters")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ConfigError(f"need 0 < --lr and 0 <= --min-lr <= --lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.warmup_iters < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("--warmup-iters, --weight-decay and --grad-clip must be >= 0")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {self.device!r}")
        return self

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size, self.n_embd, self.n_layers, self.dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# The lab's n_embd is hidden in the notebook; 512 is what the figures in the issues were
# measured with, and a multiple of 128 suits cuDNN's persistent LSTM kernels.
PRESETS: dict[str, TrainConfig] = {
    # The lab, exactly: AdamW(lr=3e-4) with its defaults (weight decay 0.01), constant lr,
    # no clipping, no dropout.
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


@dataclass(frozen=True)
class Progress:
    """One event of a run. ``kind`` is "step", "eval", "saved" or "done"."""

    kind: str
    step: int
    max_iters: int
    loss: float | None = None  # this step's training loss
    train_loss: float | None = None  # eval: estimate over fresh batches
    val_loss: float | None = None
    best_val_loss: float | None = None
    lr: float = 0.0
    tokens_per_s: float = 0.0
    elapsed: float = 0.0  # seconds of training in this run and the runs it resumes
    eta: float | None = None  # seconds
    path: str | None = None  # for "saved" and "done": the best checkpoint
    reason: str = ""  # for "done": "finished", "stopped" or "time limit"


def last_path(out: Path) -> Path:
    """The resume file beside the best checkpoint: ``model.pt`` -> ``model.last.pt``."""
    return out.with_name(out.stem + ".last" + out.suffix)


def metrics_path(out: Path) -> Path:
    return out.with_name(out.stem + ".metrics.jsonl")


def resolve_device(name: str) -> torch.device:
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


def amp_dtype_for(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 on CPUs with native bf16 (AVX-512 BF16/AMX), fp16 on CUDA, else fp32."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and _cpu_has_bf16():
        return torch.bfloat16
    return None


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def lr_at(config: TrainConfig, progress: float, step: int) -> float:
    """Linear warm-up, then cosine from lr to min_lr as ``progress`` goes 0 -> 1."""
    if step < config.warmup_iters:
        return config.lr * (step + 1) / config.warmup_iters
    ratio = min(max(progress, 0.0), 1.0)
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (config.lr - config.min_lr)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


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
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank, world), device


def train(
    config: TrainConfig,
    data: TextData,
    out: str | Path,
    resume: Checkpoint | None = None,
    stop: threading.Event | None = None,
    data_name: str = "",
) -> Iterator[Progress]:
    """Train, yielding :class:`Progress`; returns when done, stopped or out of time.

    Raises :class:`TrainingError` on a non-finite loss (the last good checkpoint stays)
    and :class:`~core.errors.CheckpointError` when a checkpoint cannot be written.
    """
    config.validate()
    out = Path(out).expanduser()
    device = resolve_device(config.device)
    dist, device = _init_distributed(device)
    amp_dtype = amp_dtype_for(device, config.amp)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    if len(data.train) <= config.block_size or len(data.val) <= config.block_size:
        raise ConfigError(
            f"--block-size {config.block_size} is too long for this text "
            f"(train split {len(data.train)}, val split {len(data.val)} chars); use a smaller --block-size"
        )

    torch.manual_seed(config.seed + dist.rank)  # dropout and init; ranks then sync weights
    model_config = config.model_config(data.vocab.size)
    model = LMNet(model_config).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.99) if config.preset != "lab" else (0.9, 0.999),
        **({"fused": True} if device.type == "cuda" else {}),
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    batch_gen = torch.Generator(device=device).manual_seed(config.seed * 1000 + dist.rank)

    step, elapsed_before, history, best_val = 0, 0.0, [], math.inf
    if resume is not None:
        step, elapsed_before, history, best_val = _restore(resume, model, optimizer, scaler, batch_gen, model_config, data, config)

    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        for p in model.parameters():  # every rank starts from rank 0's weights
            torch.distributed.broadcast(p.data, 0)
        model = DistributedDataParallel(model)

    net: LMNet = getattr(model, "module", model)
    data = data.to(device)
    tokens_per_step = config.batch_size * config.block_size * dist.world
    run_start = time.perf_counter()
    time_budget = config.time_limit * 60 if config.time_limit else None

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_start

    def snapshot(with_resume: bool) -> Checkpoint:
        meta = {
            "step": step, "best_val_loss": None if best_val == math.inf else best_val, "history": history,
            "config": config.to_dict(), "elapsed": elapsed(), "tokens_seen": step * tokens_per_step,
            "data": data_name, "data_chars": len(data.train) + len(data.val), "world_size": dist.world,
        }
        resume_state = None
        if with_resume:
            resume_state = {
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(), "batch_rng": batch_gen.get_state().cpu(),
            }
        return Checkpoint(model_config, data.vocab, net.state_dict(), meta, resume_state)

    def save_last() -> None:
        if dist.main:
            save_checkpoint(last_path(out), snapshot(with_resume=True))

    model.train()
    window_start, window_steps = time.perf_counter(), 0
    reason = "finished"
    while step < config.max_iters:
        if stop is not None and stop.is_set():
            reason = "stopped"
            break
        if time_budget is not None and elapsed() >= time_budget:
            reason = "time limit"
            break
        progress = step / config.max_iters if time_budget is None else max(step / config.max_iters, elapsed() / time_budget)
        lr = lr_at(config, progress, step)
        for group in optimizer.param_groups:
            group["lr"] = lr

        x, y = data.sample_batch("train", config.batch_size, config.block_size, batch_gen)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, _ = model(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            where = f"; the last good checkpoint is {last_path(out)}" if last_path(out).exists() else ""
            raise TrainingError(f"loss became {loss_value} at step {step}: lower --lr or --grad-clip{where}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        window_steps += 1

        now = time.perf_counter()
        tokens_per_s = window_steps * tokens_per_step / max(now - window_start, 1e-9)
        eta = _eta(config, step, elapsed(), time_budget)
        yield Progress("step", step, config.max_iters, loss=loss_value, best_val_loss=_finite(best_val),
                       lr=lr, tokens_per_s=tokens_per_s, elapsed=elapsed(), eta=eta)

        if step % config.eval_interval == 0 or step == config.max_iters:
            event = _evaluate(model, data, config, step, lr, tokens_per_s, elapsed(), device, amp_dtype, dist)
            if dist.main:
                history.append(event)
                _append_metrics(out, event)
                improved = event["val_loss"] < best_val
                if improved:
                    best_val = event["val_loss"]
                    save_checkpoint(out, snapshot(with_resume=False))
                save_last()
            if dist.world > 1:
                torch.distributed.barrier()
            yield Progress("eval", step, config.max_iters, train_loss=event["train_loss"], val_loss=event["val_loss"],
                           best_val_loss=_finite(best_val), lr=lr, tokens_per_s=tokens_per_s, elapsed=elapsed(), eta=eta)
            window_start, window_steps = time.perf_counter(), 0

    if step % config.eval_interval != 0 and step > 0 and not (history and history[-1]["step"] == step):
        # Stopped between evaluations: keep the latest state for resume. If nothing was
        # ever evaluated, evaluate now so the best file exists too.
        if not history:
            event = _evaluate(model, data, config, step, lr_at(config, 0, step), 0.0, elapsed(), device, amp_dtype, dist)
            if dist.main:
                history.append(event)
                _append_metrics(out, event)
                best_val = event["val_loss"]
                save_checkpoint(out, snapshot(with_resume=False))
        save_last()
        if dist.world > 1:
            torch.distributed.barrier()
    yield Progress("done", step, config.max_iters, best_val_loss=_finite(best_val), elapsed=elapsed(),
                   path=str(out), reason=reason)


def _evaluate(model, data, config, step, lr, tokens_per_s, elapsed, device, amp_dtype, dist) -> dict[str, float]:
    if not dist.main:
        return {"train_loss": math.nan, "val_loss": math.nan}
    # Fresh batches each time, yet reproducible: the eval RNG depends only on the step,
    # so evaluations never shift the training batch stream (resume stays exact).
    gen = torch.Generator(device=device).manual_seed(config.seed + 7919 * step)
    losses = {split: estimate_loss(model, data, split, config.eval_iters, config.batch_size, config.block_size,
                                   gen, device, amp_dtype) for split in ("train", "val")}
    return {"step": step, "train_loss": losses["train"], "val_loss": losses["val"], "lr": lr,
            "tokens_per_s": tokens_per_s, "elapsed": elapsed}


def _append_metrics(out: Path, event: dict[str, float]) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(metrics_path(out), "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
    except OSError:
        pass  # metrics are a convenience; the checkpoint carries the same history


def _eta(config: TrainConfig, step: int, elapsed: float, time_budget: float | None) -> float | None:
    if step == 0:
        return None
    by_steps = elapsed / step * (config.max_iters - step)
    return by_steps if time_budget is None else min(by_steps, max(time_budget - elapsed, 0.0))


def _finite(x: float) -> float | None:
    return None if x == math.inf else x


def _restore(resume: Checkpoint, model, optimizer, scaler, batch_gen, model_config, data, config):
    """Load a "last" checkpoint's full state; refuse one that does not fit this run."""
    if resume.resume is None:
        raise TrainingError("this checkpoint has no optimizer state; resume from the '.last.pt' file written beside it")
    if resume.vocab != data.vocab:
        raise TrainingError("the checkpoint's vocabulary differs from this data's; resume with the text it was trained on")
    if resume.model_config != model_config:
        raise TrainingError(
            f"the checkpoint's model ({_shape(resume.model_config)}) differs from the options ({_shape(model_config)}); "
            "drop the model options or match them"
        )
    model.load_state_dict(resume.state_dict)
    optimizer.load_state_dict(resume.resume["optimizer"])
    scaler.load_state_dict(resume.resume.get("scaler", {}))
    torch.set_rng_state(resume.resume["torch_rng"])
    batch_gen.set_state(resume.resume["batch_rng"])
    best = resume.best_val_loss
    return resume.step, float(resume.train.get("elapsed", 0.0)), resume.history, best if best is not None else math.inf


def _shape(c: ModelConfig) -> str:
    return f"{c.n_layers}x{c.n_embd}, dropout {c.dropout}"


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """``config`` with every non-None override applied."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
