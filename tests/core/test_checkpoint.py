"""Checkpoints: round trips, bf16 storage, rejected files (corrupt, foreign, newer,
malicious) and atomic writes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from core.checkpoint import FORMAT, VERSION, Checkpoint, load_checkpoint, save_checkpoint
from core.errors import CheckpointError
from core.model import LMNet, ModelConfig
from core.vocab import CharVocab

REPO = Path(__file__).resolve().parents[2]


def make_ckpt(n_layers: int = 2, seed: int = 0, **train) -> Checkpoint:
    torch.manual_seed(seed)
    vocab = CharVocab.from_text("abcdefgh \n")
    model = LMNet(ModelConfig(vocab.size, 16, n_layers))
    meta = {"step": 42, "best_val_loss": 1.25, "history": [{"step": 0, "val": 2.3}], "config": {"block_size": 8}}
    return Checkpoint(model.config, vocab, model.state_dict(), {**meta, **train})


def logits_of(model: LMNet) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.arange(10).view(2, 5) % model.config.vocab_size)[0]


def rejected(path: Path) -> str:
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    return str(err.value)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_gives_identical_logits(tmp_path):
    ckpt = make_ckpt()
    ckpt.resume = {"optimizer": {"lr": 0.1}, "rng": [{"torch": torch.get_rng_state()}]}
    path = save_checkpoint(tmp_path / "sub" / "m.pt", ckpt)
    back = load_checkpoint(path)
    assert back.model_config == ckpt.model_config and back.vocab == ckpt.vocab
    assert back.step == 42 and back.best_val_loss == 1.25 and back.history == [{"step": 0, "val": 2.3}]
    assert back.train["config"] == {"block_size": 8}
    assert torch.equal(back.resume["rng"][0]["torch"], ckpt.resume["rng"][0]["torch"])
    original = LMNet(ckpt.model_config).eval()  # build_model() gives an eval-mode model
    original.load_state_dict(ckpt.state_dict)
    assert torch.equal(logits_of(back.build_model()), logits_of(original))
    assert not back.build_model().training


def test_half_stores_bf16_and_loads_as_fp32(tmp_path):
    ckpt = make_ckpt()
    full = save_checkpoint(tmp_path / "full.pt", ckpt)
    half = save_checkpoint(tmp_path / "half.pt", ckpt, half=True)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    back = load_checkpoint(half)
    assert all(v.dtype == torch.bfloat16 for v in back.state_dict.values())
    model = back.build_model()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    reference = load_checkpoint(full).build_model()
    a, b = logits_of(model), logits_of(reference)
    assert torch.allclose(a, b, atol=0.05) and not torch.equal(a, b)


def test_missing_and_directory(tmp_path):
    assert "not found" in rejected(tmp_path / "nope.pt")
    assert "directory" in rejected(tmp_path)


def test_corrupt_and_truncated_files(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", make_ckpt())
    data = good.read_bytes()
    for name, content in [("half.pt", data[: len(data) // 2]), ("head.pt", data[:100]),
                          ("legacy-half.pt", _legacy_bytes(tmp_path)[:300])]:
        (tmp_path / name).write_bytes(content)
        message = rejected(tmp_path / name)
        assert str(tmp_path / name) in message and "truncated or corrupt" in message, name


def _legacy_bytes(tmp_path: Path) -> bytes:
    torch.save({"w": torch.zeros(100)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    return (tmp_path / "legacy.pt").read_bytes()


def test_a_file_that_is_no_checkpoint_at_all_says_so(tmp_path):
    """A text renamed .pt is not "truncated or corrupt": it never was a checkpoint."""
    for name, content, looks in [("text.pt", b"just some text\n" * 50, "a text file"),
                                 ("empty.pt", b"", "an empty file"),
                                 ("noise.pt", b"\x00\x01" + os.urandom(5000), "some other kind of file")]:
        (tmp_path / name).write_bytes(content)
        message = rejected(tmp_path / name)
        assert f"is not a checkpoint at all: it is {looks}, not a zip or torch file" in message, name
        assert "corrupt" not in message


def test_wrong_format_files(tmp_path):
    for name, obj in [("dict.pt", {"weights": torch.zeros(3)}), ("tensor.pt", torch.zeros(3)),
                      ("state_dict.pt", make_ckpt().state_dict), ("list.pt", [1, 2, 3])]:
        torch.save(obj, tmp_path / name)
        assert "not a charlstm-tui checkpoint" in rejected(tmp_path / name)


def _payload(path: Path) -> dict:
    return torch.load(save_checkpoint(path, make_ckpt()), weights_only=True)


def test_newer_version_and_malformed_fields(tmp_path):
    payload = _payload(tmp_path / "a.pt")
    cases = {
        "newer.pt": ({**payload, "version": VERSION + 1}, "newer"),
        "noversion.pt": ({k: v for k, v in payload.items() if k != "version"}, "no valid format version"),
        "nostate.pt": ({k: v for k, v in payload.items() if k != "state_dict"}, "malformed"),
        "badvocab.pt": ({**payload, "vocab": {"chars": ["ab"]}}, "malformed"),
        "mismatch.pt": ({**payload, "vocab": {"chars": list("xyz")}}, "inconsistent"),
    }
    for name, (bad, expected) in cases.items():
        torch.save(bad, tmp_path / name)
        assert expected in rejected(tmp_path / name), name
    # Weights that do not fit the config are refused at load, naming the first that does not.
    torch.save({**payload, "model_config": {**payload["model_config"], "n_embd": 8}}, tmp_path / "shape.pt")
    assert "token_embedding.weight is (10, 16), the config needs (10, 8)" in rejected(tmp_path / "shape.pt")


class Touch:
    """Unpickling this calls open(path, "w"): it creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _write_malicious(kind: str, path: Path, marker: Path) -> None:
    if kind == "torch-zip":
        torch.save(Touch(marker), path)
    elif kind == "raw-pickle":
        path.write_bytes(pickle.dumps(Touch(marker), protocol=2))  # torch's own protocol
    else:  # a well-formed checkpoint with the payload hidden in its metadata
        torch.save({"format": FORMAT, "version": VERSION, **{k: v for k, v in _payload(path.with_suffix(".ok")).items()
                                                            if k not in ("format", "version")},
                    "train": {"step": 1, "note": Touch(marker)}}, path)


@pytest.mark.parametrize("kind", ["torch-zip", "raw-pickle", "nested"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind):
    # The control: loaded the unsafe way, this file does create its marker.
    armed, armed_marker = tmp_path / "armed.pt", tmp_path / "ARMED"
    _write_malicious(kind, armed, armed_marker)
    if kind == "raw-pickle":
        pickle.loads(armed.read_bytes())
    else:
        torch.load(armed, weights_only=False)
    assert armed_marker.exists()
    # The test: load_checkpoint refuses it, and the file it would create never appears.
    evil, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    _write_malicious(kind, evil, marker)
    message = rejected(evil)
    assert "refusing to load" in message
    assert not marker.exists()


def test_failed_save_keeps_the_earlier_file_and_leaves_no_temp_file(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", make_ckpt(seed=0))
    before = path.read_bytes()
    # 1. torch.save itself raises (a lambda cannot be pickled).
    with pytest.raises(Exception):
        save_checkpoint(path, make_ckpt(seed=1, hook=lambda: None))
    # 2. Saved fine, but could never be loaded back: refused before it replaces anything.
    with pytest.raises(CheckpointError, match="pathlib.PosixPath"):
        save_checkpoint(path, make_ckpt(seed=1, data=Path("/data/x.txt")))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert load_checkpoint(path).step == 42
    # 3. The target folder is really a file.
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(tmp_path / "file" / "m.pt", make_ckpt())
    assert leftovers(tmp_path) == []


def test_disk_full_mid_write_is_a_clear_error(tmp_path):
    """A real short write: the file-size limit makes write() fail partway through torch.save."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_checkpoint import make_ckpt
        from core.checkpoint import save_checkpoint
        from core.errors import CheckpointError
        path = save_checkpoint({str(tmp_path / 'm.pt')!r}, make_ckpt(seed=0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            save_checkpoint(path, make_ckpt(seed=1))
        except CheckpointError as e:
            print("CheckpointError:", e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "CheckpointError: cannot write checkpoint" in out.stdout, out.stderr
    assert "File too large" in out.stdout and "intact" in out.stdout
    assert load_checkpoint(tmp_path / "m.pt").step == 42
    assert torch.equal(load_checkpoint(tmp_path / "m.pt").state_dict["fc.bias"], make_ckpt(seed=0).state_dict["fc.bias"])
    assert leftovers(tmp_path) == []
