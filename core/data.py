"""Text corpora: loading with clear errors, compact storage, the 90/10 split and
vectorized batch sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DataError, VocabError
from .files import read_input
from .vocab import CharVocab, describe_chars

if TYPE_CHECKING:
    import torch

VAL_FRACTION = 0.1  # nanoGPT's split: first 90% train, last 10% val.


def load_text(path: str | Path, min_chars: int = 2, what: str = "data file") -> str:
    """Read a UTF-8 text file; each way this can fail raises its own :class:`DataError`,
    naming the file as ``what``. Only a regular file that fits in memory is read (see
    :mod:`core.files`)."""
    p = Path(path).expanduser()
    raw = read_input(p, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{what} {p} is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at byte {e.start}); "
            "convert it, e.g. iconv -t UTF-8"
        ) from None
    except MemoryError:
        raise DataError(f"{what} {p} ({len(raw):,} bytes) is too large for this process's memory; "
                        "use a smaller file") from None
    del raw
    if text.startswith("\ufeff"):  # a BOM is an encoding mark, not text to model
        text = text[1:]
    if not text:
        raise DataError(f"{what} {p} is empty; pass a file with some text in it")
    if len(text) < min_chars:
        raise DataError(
            f"{what} {p} has {len(text)} characters, too short: it needs at least {min_chars} "
            "(block size + 1 for each split); use a longer text or a smaller --block-size"
        )
    return text


@dataclass
class TextData:
    """An encoded corpus, split into train and val, stored in the smallest int dtype."""

    vocab: CharVocab
    train: "torch.Tensor"  # (N_train,) uint8/int16/int32
    val: "torch.Tensor"  # (N_val,)

    @classmethod
    def from_text(cls, text: str, vocab: CharVocab | None = None, val_fraction: float = VAL_FRACTION) -> "TextData":
        """Encode ``text`` (with its own vocabulary unless one is given) and split it."""
        present = set(text)
        if vocab is None:
            vocab = CharVocab(tuple(sorted(present)))
        else:
            unknown = "".join(sorted(present.difference(vocab.chars)))
            if unknown:
                raise VocabError(
                    f"the text has {len(unknown)} character(s) the model never saw: {describe_chars(unknown)}; "
                    "use text in the model's vocabulary or train a model on this text",
                    unknown,
                )
        ids = vocab.encode_tensor(text)
        n_train = int(len(ids) * (1 - val_fraction))
        return cls(vocab, ids[:n_train], ids[n_train:])

    @classmethod
    def from_file(cls, path: str | Path, block_size: int, vocab: CharVocab | None = None) -> "TextData":
        """Load, encode and split a file, checking that both splits hold one block."""
        # Both splits need block_size + 1 characters: the val split is a tenth of the text.
        need = int((block_size + 1) / VAL_FRACTION) + 1
        data = cls.from_text(load_text(path, min_chars=need), vocab)
        return data

    def split(self, name: str) -> "torch.Tensor":
        if name == "train":
            return self.train
        if name == "val":
            return self.val
        raise ValueError(f"unknown split {name!r}")

    def to(self, device: "torch.device | str") -> "TextData":
        """Move both splits to ``device`` once, so batches are sampled there."""
        return TextData(self.vocab, self.train.to(device), self.val.to(device))

    def sample_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int,
        generator: "torch.Generator | None" = None,
        device: "torch.device | str | None" = None,
    ) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Random (x, y) windows, y shifted by one; one gather, no per-sample loop.

        Returns int64 tensors of shape (B, T) on ``device`` (default: where the data is).
        """
        import torch

        data = self.split(split)
        gen_device = generator.device if generator is not None else data.device
        starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator, device=gen_device)
        starts = starts.to(data.device)
        offsets = torch.arange(block_size + 1, device=data.device)
        chunk = data[starts[:, None] + offsets].long()  # (B, T+1)
        if device is not None:
            chunk = chunk.to(device, non_blocking=True)
        return chunk[:, :-1], chunk[:, 1:]
