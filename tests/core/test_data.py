"""Loading text files, the 90/10 split, compact storage and batch sampling."""

from __future__ import annotations

import os

import pytest
import torch

from core.data import VAL_FRACTION, TextData, load_text
from core.errors import DataError, VocabError
from core.vocab import CharVocab


def _error(path, **kw) -> str:
    with pytest.raises(DataError) as err:
        load_text(path, **kw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_load_text_reads_utf8_and_strips_a_bom(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffÀ la claire fontaine\n".encode("utf-8"))
    assert load_text(path) == "À la claire fontaine\n"


def test_load_text_errors_name_the_problem(tmp_path):
    assert "not found" in _error(tmp_path / "nope.txt")
    assert "directory" in _error(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.txt")
    (tmp_path / "bom-only.txt").write_bytes(b"\xef\xbb\xbf")
    assert "empty" in _error(tmp_path / "bom-only.txt")
    (tmp_path / "short.txt").write_text("abcd")
    message = _error(tmp_path / "short.txt", min_chars=5)
    assert "4 characters" in message and "at least 5" in message


def test_not_utf8_names_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("héllo".encode("latin-1"))  # 'é' is 0xe9 at byte 1
    message = _error(path)
    assert "not UTF-8" in message and "0xe9" in message and "at byte 1" in message
    path.write_bytes(b"abc\nabc \xff")
    assert "at byte 8" in _error(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("some text")
    path.chmod(0)
    assert "cannot read" in _error(path)


@pytest.mark.parametrize("block_size", [1, 8, 32, 99])
def test_from_file_needs_block_size_plus_one_in_each_split(tmp_path, block_size):
    """The shortest accepted file gives both splits a full (x, y) window; one char less is refused."""
    path = tmp_path / "t.txt"

    def accepted(n: int) -> TextData | None:
        path.write_text("ab" * n)
        try:
            return TextData.from_file(path, block_size)
        except DataError as e:
            assert "too short" in str(e) and "at least" in str(e)
            return None

    lo, hi = 1, 20 * (block_size + 1)  # accepted(hi); binary search for the shortest accepted text
    assert accepted(hi) is not None and accepted(lo) is None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if accepted(mid) is not None else (mid, hi)
    n, data = hi, accepted(hi)
    for split in ("train", "val"):
        assert len(data.split(split)) >= block_size + 1
        x, y = data.sample_batch(split, 4, block_size)
        assert x.shape == y.shape == (4, block_size)
    path.write_text(("ab" * n)[:-2])
    with pytest.raises(DataError, match="too short"):
        TextData.from_file(path, block_size)


def test_split_is_first_90_percent_train(corpus_text):
    data = TextData.from_text(corpus_text)
    ids = data.vocab.encode(corpus_text)
    n_train = int(len(ids) * (1 - VAL_FRACTION))
    assert data.train.tolist() == ids[:n_train]
    assert data.val.tolist() == ids[n_train:]
    assert abs(len(data.val) / len(ids) - VAL_FRACTION) < 0.01


def test_storage_is_compact(corpus_text):
    assert TextData.from_text(corpus_text).train.dtype == torch.uint8
    wide = "".join(chr(0x100 + i) for i in range(300)) * 3  # 300 symbols: beyond uint8
    data = TextData.from_text(wide)
    assert data.train.dtype == torch.int16
    assert data.vocab.decode(torch.cat([data.train, data.val])) == wide


def test_from_text_with_a_model_vocabulary_refuses_unseen_characters():
    vocab = CharVocab.from_text("abc ")
    assert TextData.from_text("abc cab", vocab).vocab is vocab
    with pytest.raises(VocabError, match="never saw") as err:
        TextData.from_text("abc xyz", vocab)
    assert err.value.unknown == "xyz"


def test_sample_batch_windows_are_real_and_y_is_x_shifted(corpus_text):
    data = TextData.from_text(corpus_text)
    B, T = 16, 24
    gen = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        x, y = data.sample_batch(split, B, T, generator=gen)
        assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        # Every row is a window of this split: x, then its last next character.
        windows = data.split(split).long().unfold(0, T + 1, 1)  # (N - T, T + 1)
        rows = torch.cat([x, y[:, -1:]], 1)  # (B, T + 1)
        assert (rows[:, None, :] == windows[None]).all(-1).any(-1).all()


def test_sample_batch_is_reproducible_and_covers_the_split():
    data = TextData.from_text("".join(chr(0x100 + i) for i in range(200)))  # every char distinct
    a = data.sample_batch("train", 8, 5, torch.Generator().manual_seed(3))
    b = data.sample_batch("train", 8, 5, torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # Starts range over every window, the last one included (it ends on the split's last char):
    # the text counts up, so a window's first id gives its start.
    gen = torch.Generator().manual_seed(0)
    starts = torch.cat([data.sample_batch("train", 64, 5, gen)[0][:, 0] for _ in range(50)]) - data.train[0]
    assert set(starts.tolist()) == set(range(len(data.train) - 5))


def test_sample_batch_lands_on_the_requested_device(corpus_text):
    data = TextData.from_text(corpus_text)
    x, y = data.sample_batch("train", 2, 8, device="meta")
    assert x.device.type == y.device.type == "meta"
    assert data.to("cpu").train.device.type == "cpu"
    with pytest.raises(ValueError):
        data.split("test")
