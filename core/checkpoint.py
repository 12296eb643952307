"""One checkpoint file: weights, model config, vocabulary and training metadata.

The file is a ``torch.save`` zip of primitives and tensors only, read back with
``torch.load(weights_only=True)``, whose unpickler refuses every global that is not a
tensor or a primitive container. Loading a checkpoint therefore never runs code
from the file. Writes are atomic: temp file in the same folder, fsync, os.replace.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .model import LMNet, ModelConfig
from .vocab import CharVocab

FORMAT = "charlstm-tui"
VERSION = 1


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

    @property
    def best_val_loss(self) -> float | None:
        return self.train.get("best_val_loss")

    @property
    def step(self) -> int:
        return int(self.train.get("step", 0))

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.train.get("history", []))

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
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        _check_loadable(tmp_name, path)
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:
        # torch.save reports a failed write (disk full, file too large) as a RuntimeError
        # ("unexpected pos ...") whose context is the OSError.
        if not isinstance(e, OSError):
            if not isinstance(e.__context__, OSError):
                raise
            e = e.__context__
        what = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise CheckpointError(
            f"cannot write checkpoint {path}: {what}; free space or choose another --out "
            "(any earlier file there is intact)"
        ) from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
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


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint onto the CPU, never executing code from the file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}; pass --checkpoint with an existing .pt file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a directory: {path}; pass the .pt file inside it")
    try:
        with warnings.catch_warnings():  # torch's warnings about odd files would precede our one-line error
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  garbage bytes make the unpickler raise anything (KeyError, ...)
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e):
            # The file names a class or function to call: exactly what weights_only exists to refuse.
            raise CheckpointError(
                f"refusing to load {path}: it holds objects other than tensors and plain data "
                "(possibly code); only load checkpoints written by charlstm-tui"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}); re-download it or use the 'last' file from training"
        ) from None
    return _from_payload(payload, path)


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
        config = ModelConfig.from_dict(payload["model_config"])
        vocab = CharVocab.from_dict(payload["vocab"])
        state_dict = payload["state_dict"]
        assert isinstance(state_dict, dict) and all(isinstance(v, torch.Tensor) for v in state_dict.values())
    except Exception:
        raise CheckpointError(f"checkpoint {path} is missing or has malformed fields; it is corrupt, use another file") from None
    if config.vocab_size != vocab.size:
        raise CheckpointError(f"checkpoint {path} is inconsistent: config says {config.vocab_size} symbols, vocabulary has {vocab.size}")
    train = payload.get("train") or {}
    return Checkpoint(config, vocab, state_dict, train if isinstance(train, dict) else {}, payload.get("resume"))
