"""One checkpoint file: weights, model config, vocabulary and training metadata.

The file is a ``torch.save`` zip of primitives and tensors only, read back with
``torch.load(weights_only=True)``, whose unpickler refuses every global that is not a
tensor or a primitive container. Loading a checkpoint therefore never runs code
from the file. What it holds is then checked once, against :data:`TRAIN_FIELDS` and
the model's own shapes, so every command can trust it. Writes are atomic (see
:mod:`core.files`).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import pickle
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import schema
from .errors import CharLSTMError, CheckpointError
from .files import atomic_write, open_input, os_reason
from .model import LMNet, ModelConfig
from .vocab import CharVocab

FORMAT = "charlstm-tui"
VERSION = 1
DEFAULT_BLOCK_SIZE = 256  # the lab's, for a checkpoint that does not say

# The documented fields of a checkpoint's training metadata (``train``) and of its resume
# state, each checked at load. Fields not named here are kept unchecked: a newer version
# may add some, as it may add entries beside these (tensors of plain data included).
_EVAL = schema.mapping({"step": schema.integer(0), "train_loss": schema.number(finite=False),
                        "val_loss": schema.number(finite=False), "lr": schema.number(finite=False),
                        "tokens_per_s": schema.number(finite=False), "elapsed": schema.number(finite=False)})
TRAIN_FIELDS: dict[str, schema.Check] = {
    "step": schema.integer(0),
    "best_val_loss": schema.optional(schema.number(finite=False)),
    "history": schema.list_of(_EVAL),
    # The whole recipe is checked by TrainConfig.from_dict when a run resumes; what every
    # command reads is checked here.
    "config": schema.mapping({"block_size": schema.integer(1), "preset": schema.text}),
    "elapsed": schema.number(0),
    "tokens_seen": schema.integer(0),
    "data": schema.text,
    "data_chars": schema.integer(0),
    "world_size": schema.integer(1),
}


def _tensor(value: Any, field: str) -> None:
    if not isinstance(value, torch.Tensor):
        schema.fail(field, "a tensor", value)


RESUME_FIELDS: dict[str, schema.Check] = {
    "optimizer": schema.mapping({"state": schema.mapping(), "param_groups": schema.list_of(schema.mapping())}),
    "scaler": schema.optional(schema.mapping()),
    "rng": schema.list_of(schema.mapping(values=_tensor)),  # one per rank
    "ema": schema.mapping(values=_tensor),
}


@dataclass
class Checkpoint:
    """Everything a file holds. ``train`` is free-form metadata of primitives:
    step, best_val_loss, history (list of dicts), config, data; plus, in a "last"
    file, ``optimizer`` and ``rng`` for an exact resume."""

    model_config: ModelConfig
    vocab: CharVocab
    state_dict: dict[str, torch.Tensor]
    train: dict[str, Any] = field(default_factory=dict)
    resume: dict[str, Any] | None = None  # optimizer + RNG states; only in "last" files
    path: Path | None = None  # the file it was read from
    adapt_stats: dict[str, Any] | None = None  # gradient statistics for adapting (core/adapt_stats.py)

    @property
    def best_val_loss(self) -> float | None:
        return self.train.get("best_val_loss")

    @property
    def step(self) -> int:
        return int(self.train.get("step", 0))

    @property
    def val_loss(self) -> float | None:
        """The val loss measured for the weights this file holds. A best file's is its
        ``best_val_loss``. A resume file's ``best_val_loss`` is the run's best, held by the
        best file; its own is the evaluation at its step, if the run evaluated there (not
        when it stopped between evaluations), and if what was evaluated is what it holds:
        with a weight average (``ema``) the average was, which it keeps beside its weights."""
        if self.resume is None:
            return self.best_val_loss
        if self.resume.get("ema") is not None:
            return None
        at_step = [h["val_loss"] for h in self.history if h.get("step") == self.step]
        return float(at_step[-1]) if at_step else None

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.train.get("history", []))

    @property
    def block_size(self) -> int:
        """The context it was trained on: the window of ``window`` mode and ``eval``."""
        return int((self.train.get("config") or {}).get("block_size", DEFAULT_BLOCK_SIZE))

    def build_model(self) -> LMNet:
        """An :class:`LMNet` in eval mode with these weights, upcast to fp32."""
        model = LMNet(self.model_config)
        try:
            model.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint weights do not match its config ({str(e).splitlines()[0]})") from None
        return model.eval()


def save_checkpoint(path: str | Path, ckpt: Checkpoint, half: bool = False) -> Path:
    """Write ``ckpt`` atomically. ``half`` stores float weights as bf16 (half the size).

    On any failure (unwritable folder, full disk) the file at ``path`` is untouched.
    """
    path = Path(path).expanduser()
    weights = {k: (v.detach().to("cpu", torch.bfloat16) if half and v.is_floating_point() else v.detach().cpu())
               for k, v in ckpt.state_dict.items()}
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": ckpt.model_config.to_dict(),
        "vocab": ckpt.vocab.to_dict(),
        "state_dict": weights,
        "train": ckpt.train,
    }
    if ckpt.resume is not None:
        payload["resume"] = ckpt.resume
    if ckpt.adapt_stats is not None:
        payload["adapt_stats"] = ckpt.adapt_stats
    try:
        with atomic_write(path, "checkpoint", check=lambda tmp: _check_loadable(tmp, path)) as f:
            torch.save(payload, f)
    except RuntimeError as e:
        # torch.save reports a failed write (disk full, file too large) as a RuntimeError
        # ("unexpected pos ...") whose context is the OSError.
        if not isinstance(e.__context__, OSError):
            raise
        raise CheckpointError(f"cannot write checkpoint {path}: {os_reason(e.__context__)}; free space or choose "
                              "another path (any earlier file there is intact)") from None
    return path


def _check_loadable(tmp_name: str, path: Path) -> None:
    """Read the new file back the way :func:`load_checkpoint` will. Metadata holding, say,
    a Path or a numpy float saves fine but would then be refused on every load, so
    refuse it here, while the earlier file at ``path`` is still intact."""
    try:
        torch.load(tmp_name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise CheckpointError(
            f"cannot write checkpoint {path}: it would hold objects other than tensors and plain data"
            f"{f' (a {found[1]})' if found else ''}; keep the training metadata to str, int, float, bool, "
            "None, lists, dicts and tensors"
        ) from None


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_MAGIC = b"\x80"  # the legacy format, and a bare pickle: the PROTO opcode first


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint onto the CPU, never executing code from the file, and check
    what it holds; every way this fails is one :class:`CheckpointError` line."""
    path = Path(path).expanduser()
    with open_input(path, "checkpoint", CheckpointError, per_byte=1.5) as f:
        head = f.read(4096)
        if not head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
            looks = "an empty file" if not head else "a text file" if _looks_like_text(head) else "some other kind of file"
            raise CheckpointError(f"{path} is not a checkpoint at all: it is {looks}, not a zip or torch file; "
                                  "pass a .pt file written by charlstm-tui train")
        f.seek(0)
        try:
            with warnings.catch_warnings():  # torch's warnings about odd files would precede our one-line error
                warnings.simplefilter("ignore")
                payload = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  garbage bytes make the unpickler raise anything (KeyError, ...)
            if isinstance(e, MemoryError) or isinstance(e, OSError) and e.errno != errno.EINVAL:
                raise  # a read that failed, not a file that is damaged (a bad offset seeks to EINVAL)
            f.seek(0)
            refused = _refused_object(f.read(), e)
            if refused is not None:
                raise CheckpointError(
                    f"refusing to load {path}: it holds code or objects that are not allowed in a checkpoint "
                    f"({refused}); it was not loaded and nothing in it ran. Only load checkpoints written by "
                    "charlstm-tui"
                ) from None
            raise CheckpointError(
                f"checkpoint {path} is truncated or corrupt ({type(e).__name__}); re-download it or use the 'last' "
                "file from training"
            ) from None
    return _from_payload(payload, path)


def _looks_like_text(head: bytes) -> bool:
    text = head.decode("utf-8", "replace")
    return "\ufffd" not in text[:-1] and all(c.isprintable() or c in "\t\n\r\f\ufffd" for c in text)


def _refused_object(raw: bytes, error: Exception) -> str | None:
    """What the weights-only unpickler refused, when the file is a well-formed pickle
    that asks for a global or an object-building opcode it does not allow; None when
    the file is damaged instead (its pickle does not parse)."""
    if not isinstance(error, pickle.UnpicklingError):
        return None
    named = re.search(r"GLOBAL ([\w.]+)", str(error))
    if named:
        return named[1]
    data = raw
    if raw.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                name = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
                data = z.read(name)
        except (zipfile.BadZipFile, StopIteration, OSError, RuntimeError):
            return None
    building = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD", "EXT1", "EXT2",
                "EXT4"}
    try:
        ops = [op.name for op, _, _ in pickletools.genops(data)]
    except Exception:  # noqa: BLE001  not a whole pickle: damage, not code
        return None
    found = sorted(building.intersection(ops))
    return f"pickle opcodes {', '.join(found)}" if found else None


def _from_payload(payload: Any, path: Path) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a charlstm-tui checkpoint; pass a file written by charlstm-tui train")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"checkpoint {path} has no valid format version ({version!r}); it is corrupt, use another file")
    if version > VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format v{version}, newer than this charlstm-tui reads (v{VERSION}); upgrade charlstm-tui"
        )
    try:
        for key in ("model_config", "vocab", "state_dict"):
            if key not in payload:
                raise schema.SchemaError(f"{key} is missing")
        config = ModelConfig.from_dict(payload["model_config"])
        vocab = CharVocab.from_dict(payload["vocab"])
        state_dict = payload["state_dict"]
        schema.mapping(values=_tensor)(state_dict, "state_dict")
        train = payload.get("train")
        schema.optional(schema.mapping(TRAIN_FIELDS))(train, "train")
        resume = payload.get("resume")
        schema.optional(schema.mapping(RESUME_FIELDS))(resume, "resume")
    except CharLSTMError as e:
        raise CheckpointError(f"checkpoint {path} is malformed: {e}; it is corrupt or was not written by "
                              "charlstm-tui, use another file") from None
    if config.vocab_size != vocab.size:
        raise CheckpointError(f"checkpoint {path} is inconsistent: config says {config.vocab_size} symbols, vocabulary has {vocab.size}")
    _check_weights(state_dict, config, path)
    stats = payload.get("adapt_stats")  # checked where used (and measured anew if unfit): it is optional
    return Checkpoint(config, vocab, state_dict, train or {}, resume, path, stats if isinstance(stats, dict) else None)


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name and bytes: equal digests, equal weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(state_dict.items()):
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()  # exactly this tensor's bytes, in order
        if t.numel():
            # The bytes in one C call: bytes(storage) goes element by element (24 s for 4 MB).
            h.update(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
    return h.hexdigest()


def _check_weights(state_dict: dict[str, torch.Tensor], config: ModelConfig, path: Path) -> None:
    """The weights are exactly the ones an LMNet of ``config`` has, and finite.

    The expected shapes come from a model built on torch's meta device (nothing is
    allocated, so a config claiming a huge model costs nothing), and only when the
    config has no more layers than the file has tensors.
    """
    if config.n_layers > len(state_dict):
        raise CheckpointError(f"checkpoint {path} does not fit its config: {config.n_layers:,} layers, but only "
                              f"{len(state_dict)} weight tensors; it is corrupt, use another file")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in LMNet(config).state_dict().items()}
    problems = [f"{k} is missing" for k in expected if k not in state_dict]
    problems += [f"{k} is not a weight of this model" for k in state_dict if k not in expected]
    problems += [f"{k} is {tuple(v.shape)}, the config needs {expected[k]}" for k, v in state_dict.items()
                 if k in expected and tuple(v.shape) != expected[k]]
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        raise CheckpointError(f"checkpoint {path} has weights that do not fit its config ({config.n_layers}x"
                              f"{config.n_embd}, vocab {config.vocab_size}): {'; '.join(problems[:2])}{more}; "
                              "it is corrupt, use another file")
    for name, t in state_dict.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"checkpoint {path} holds non-finite weights (NaN or inf) in {name}: the model "
                                  "diverged before it was saved and would only write garbage; use an earlier checkpoint")
