"""charlstm core: the model, data, sampling, checkpoints and training.

Pure: never imports textual or click. The public names below load lazily, so
``import core.errors`` (what the CLI needs for ``--help`` and bad input) does not
pay the two seconds of ``import torch``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

# torch warns at import when numpy is absent; nothing here hands tensors to numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

_EXPORTS = {
    "CharLSTMError": "errors", "CheckpointError": "errors", "ConfigError": "errors", "DataError": "errors",
    "TrainingError": "errors", "VocabError": "errors",
    "CharVocab": "vocab",
    "TextData": "data", "load_text": "data",
    "LMNet": "model", "ModelConfig": "model",
    "Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "SampleConfig": "sampling", "Sampler": "sampling",
    "LossReport": "evaluate", "evaluate": "evaluate",
    "TextScore": "score", "score_text": "score",
    "TrainConfig": "train", "PRESETS": "train", "Progress": "train", "train": "train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
